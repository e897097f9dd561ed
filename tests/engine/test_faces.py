"""Faces: detection across face sizes, landmarks against a checked reference, alignment round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import faces, imaging

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "astronaut.png"
REFERENCE = Path(__file__).with_name("data") / "astronaut_landmarks.json"


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


@pytest.fixture(scope="module")
def face(rgb) -> faces.Face:
    found = faces.detect(rgb)
    assert len(found) == 1
    return found[0]


def still_with_face_of_width(rgb: np.ndarray, width: float, face_width: float) -> np.ndarray:
    """The sample scaled so its face is ``width`` px wide, on a grey 640x480 still."""
    side = max(8, round(rgb.shape[0] * width / face_width))
    small = imaging.resize(rgb, side, side, "lanczos")
    canvas = np.full((480, 640, 3), 128, np.uint8)
    h = min(side, 480)
    w = min(side, 640)
    y0, x0 = (480 - h) // 2, (640 - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = small[:h, :w]
    return canvas


@pytest.mark.parametrize("width", [24, 32, 48, 64, 96, 128])
def test_detects_the_face_at_widths_24_to_128(rgb, face, width):
    still = still_with_face_of_width(rgb, width, face.width)
    found = faces.detect(still)
    assert len(found) == 1, [f.box for f in found]
    assert found[0].width == pytest.approx(width, rel=0.25)
    assert found[0].landmarks.shape == (68, 2)


def test_a_16_px_face_is_found_once_weak_detections_are_allowed(rgb, face):
    """At 16 px HOG's margin is as low as that of false alarms, so the default filter drops it."""
    still = still_with_face_of_width(rgb, 16, face.width)
    found = faces.detect(still, min_score=0.0)
    centre = np.array([320, 240 - 16 * 0.4])  # the face sits a little above the still's centre
    near = [f for f in found if np.linalg.norm(f.landmarks.mean(0) - centre) < 20]
    assert len(near) == 1 and near[0].width == pytest.approx(16, rel=0.3)


def test_landmarks_match_the_checked_reference(face):
    reference = np.array(json.loads(REFERENCE.read_text())["landmarks"], dtype=np.float32)
    error = np.linalg.norm(face.landmarks - reference, axis=1)
    assert error.max() < 2.0


def test_alignment_puts_eyes_nose_mouth_on_the_template(rgb, face):
    aligned = faces.align(rgb, face, 128)
    assert aligned.pixels.shape == (128, 128, 3) and aligned.pixels.dtype == np.uint8
    moved = faces.transform_points(faces.five_points(face.landmarks), aligned.matrix)
    # A similarity cannot fit five points exactly; the residual is a few pixels at most.
    assert np.linalg.norm(moved - faces.template_points(128), axis=1).max() < 6.0
    assert aligned.valid.all()


def test_similarity_matrix_recovers_a_known_transform():
    src = np.array([[10, 20], [50, 22], [30, 40], [15, 60], [45, 61]], dtype=np.float64)
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -8.0])
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    dst = src @ rot.T + shift
    m = faces.similarity_matrix(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_small_crop_equals_the_lr_degradation_of_the_large_one(rgb, face):
    """Aligning straight to 32 px frames the face like downscaling the 128 px crop by 4."""
    hr = faces.align(rgb, face, 128).pixels
    lr = faces.align(rgb, face, 32).pixels
    diff = np.abs(lr.astype(int) - imaging.downscale(hr, 4).astype(int))
    assert diff.mean() < 1.0


def test_align_then_paste_back_restores_the_still(rgb, face):
    aligned = faces.align(rgb, face, 128)
    pasted = faces.paste_back(rgb, aligned, aligned.pixels)
    diff = np.abs(pasted.astype(int) - rgb.astype(int))
    # Stated round-trip error: two cubic resamplings cost well under one grey level on average.
    assert diff.mean() < 0.5
    assert diff.max() <= 16


def test_paste_back_at_scale_enlarges_and_changes_only_the_face(rgb, face):
    aligned = faces.align(rgb, face, 32)
    white = np.full((128, 128, 3), 255, np.uint8)
    pasted = faces.paste_back(rgb, aligned, white, scale=4)
    assert pasted.shape == (rgb.shape[0] * 4, rgb.shape[1] * 4, 3)
    x0, y0, x1, y1 = (int(v * 4) for v in face.box)
    centre = pasted[(y0 + y1) // 2, (x0 + x1) // 2]
    assert (centre == 255).all()
    corner = pasted[:40, :40].astype(int)
    background = imaging.upscale(rgb, 4)[:40, :40].astype(int)
    assert np.abs(corner - background).max() <= 3
    assert rgb.flags.writeable is False or rgb.sum() > 0  # the input array is not modified


def test_aligned_landmarks_agree_with_the_stills_landmarks(rgb, face):
    aligned = faces.align(rgb, face, 128)
    found = faces.aligned_landmarks(aligned.pixels)
    expected = faces.transform_points(face.landmarks, aligned.matrix)
    iod = np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0))
    assert np.linalg.norm(found - expected, axis=1).mean() / iod < 0.05


def test_a_hand_drawn_box_goes_through_the_same_alignment(rgb, face):
    x0, y0, x1, y1 = face.box
    loose = (x0 - 6, y0 - 3, x1 + 8, y1 + 5)
    manual = faces.face_from_box(rgb, loose)
    assert manual.manual and math.isnan(manual.score)
    a = faces.align(rgb, manual, 128)
    b = faces.align(rgb, face, 128)
    assert np.abs(a.pixels.astype(int) - b.pixels.astype(int)).mean() < 12


def test_a_hand_box_around_the_face_fits_without_warnings(rgb, face):
    x0, y0, x1, y1 = face.box
    drawn = (x0 - 5, y0 - 8, x1 + 5, y1 + 4)
    manual = faces.face_from_box(rgb, drawn)
    assert manual.fit_warnings == ()
    assert manual.drawn_boxes == (tuple(float(v) for v in drawn),)


@pytest.mark.parametrize(
    "shift",
    [(0, 0.6, 0, 0.6), (-0.4, 0, -0.4, 0), (-0.1, -0.7, 0.1, -0.1)],
    ids=["below the face", "left of the face", "over the hair"],
)
def test_a_hand_box_off_the_face_is_warned_about_in_words(rgb, face, shift):
    x0, y0, x1, y1 = face.box
    side = x1 - x0
    box = tuple(v + d * side for v, d in zip(face.box, shift, strict=True))
    manual = faces.face_from_box(rgb, box)
    wrong = np.linalg.norm(manual.landmarks - face.landmarks, axis=1).mean()
    assert wrong > 0.5 * face.interocular_px  # the fit really is off the face
    assert any("do not follow a face" in text for text in manual.fit_warnings)


def test_a_box_far_wider_than_the_face_is_warned_about(rgb, face):
    x0, y0, x1, y1 = face.box
    wide = (max(0.0, x0 - 2.5 * (x1 - x0)), y0, min(rgb.shape[1], x1 + 2.5 * (x1 - x0)), y1)
    manual = faces.face_from_box(rgb, wide)
    assert any("much larger than the face" in text for text in manual.fit_warnings)


def test_the_fit_warnings_name_each_implausible_fit(rgb, face):
    """Each check on its own: eyes low in the box, eyes close for the box, points outside."""
    x0, y0, x1, y1 = face.box
    points = face.landmarks.copy()
    assert faces.fit_warnings(rgb, face, face.box) == ()
    high = (x0, y0 - (y1 - y0), x1, y1 - 0.5 * (y1 - y0))  # the eyes in the lower half
    assert any("lower half" in t for t in faces.fit_warnings(rgb, face, high))
    shrunk = faces.Face(face.box, face.score, points, manual=True)
    tiny = (x0 + 0.4 * (x1 - x0), y0 + 0.3 * (y1 - y0), x0 + 0.6 * (x1 - x0), y0 + 0.5 * (y1 - y0))
    assert any("outside the box" in t for t in faces.fit_warnings(rgb, shrunk, tiny))


def test_crop_past_the_border_is_marked_invalid(rgb, face):
    cut = np.ascontiguousarray(rgb[:, 105:])  # the face's left half is gone
    shifted = faces.Face(
        box=(0, face.box[1], face.box[2] - 105, face.box[3]),
        score=face.score,
        landmarks=face.landmarks - np.array([105, 0], np.float32),
    )
    aligned = faces.align(cut, shifted, 64)
    assert 0.2 < aligned.valid_fraction < 0.9


def test_no_face_in_a_blank_still():
    assert faces.detect(np.full((200, 300, 3), 90, np.uint8)) == []


def test_bad_inputs_raise_clear_errors(rgb):
    with pytest.raises(faces.FaceError):
        faces.face_from_box(rgb, (10, 10, 12, 12))
    with pytest.raises(faces.FaceError):
        faces.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        faces.detect(rgb, method="magic")
