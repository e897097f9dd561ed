"""Fidelity checks: faithful outputs pass, outputs that are not the evidence's face are flagged."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine import faces, fidelity, imaging
from engine.evidence_quality import EvidenceQuality

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "astronaut.png"
REFERENCE = Path(__file__).with_name("data") / "astronaut_landmarks.json"


@pytest.fixture(scope="module")
def sample():
    """The sample face aligned at 128 (HR) and 32 (the x4 LR input), with its landmarks."""
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    ref = json.loads(REFERENCE.read_text())
    face = faces.Face(
        box=tuple(ref["box"]), score=1.0, landmarks=np.asarray(ref["landmarks"], np.float32)
    )
    hr = faces.align(rgb, face, 128).pixels
    lr = faces.align(rgb, face, 32).pixels
    landmarks = faces.transform_points(face.landmarks, faces.alignment_matrix(face, 128))
    return hr, lr, landmarks


def narrower_jaw(hr: np.ndarray) -> np.ndarray:
    """A different face made from the sample: lower face pinched in and pulled up."""
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    w = np.clip((yy - 60) / 50, 0, 1)
    map_x = 64 + (xx - 64) / (1 + 0.35 * w)
    map_y = yy - 10 * w
    return cv2.remap(hr, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def noise_face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (128, 128, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- (a) consistency


def test_faithful_outputs_reproduce_the_evidence(sample):
    hr, lr, _ = sample
    bicubic = fidelity.data_consistency(lr, imaging.upscale(lr, 4))
    truth = fidelity.data_consistency(lr, hr)
    assert bicubic.status == "pass" and bicubic.value > fidelity.CONSISTENCY_MIN_DB
    assert truth.status == "pass" and truth.value > 45  # the HR the LR was made from
    assert truth.difference.shape == lr.shape and truth.difference.dtype == np.uint8


@pytest.mark.parametrize(
    "make",
    [
        lambda hr: hr[:, ::-1].copy(),  # mirrored
        lambda hr: np.roll(hr, 6, axis=1),  # misplaced by 6 px (1.5 LR pixels)
        narrower_jaw,  # a different face shape
        lambda hr: noise_face(),
    ],
    ids=["mirrored", "shifted", "other-face", "noise"],
)
def test_outputs_that_are_not_the_evidence_are_flagged(sample, make):
    hr, lr, _ = sample
    check = fidelity.data_consistency(lr, make(hr))
    assert check.status == "warn" and check.value < 20
    assert check.max_difference > 60
    assert "evidence" in check.meaning


# EvidenceQuality.to_dict() of a JPEG-40 file and of a clean lossless one (both get the robust
# variant recommended; the consistency line follows what was seen, not the recommendation)
COMPRESSED = EvidenceQuality(40, True, "4:2:0", 2.0, False, "robust", "JPEG 40").to_dict()
CLEAN = EvidenceQuality(None, False, None, 1.0, False, "robust", "lossless").to_dict()


def jpeg40(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=40, subsampling="4:2:0")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_the_true_face_passes_on_compressed_evidence(sample):
    """Issue 24: the JPEG's blocks are not the face; the true face is not called inconsistent
    for lacking them (the check before issue 24 failed it on every such input)."""
    hr, _, landmarks = sample
    lr = jpeg40(imaging.downscale(hr, 4))
    assert fidelity.psnr(imaging.downscale(hr, 4), lr) < 30  # what the old check compared
    check = fidelity.data_consistency(lr, hr, COMPRESSED, landmarks)
    assert check.status == "pass" and check.threshold == fidelity.CONSISTENCY_MIN_DB
    assert "compressed" in check.detail and "pixel-level PSNR" in check.detail
    # the clean line is for clean evidence only: this JPEG's own damage exceeds it
    strict = fidelity.data_consistency(lr, hr, CLEAN, landmarks)
    assert strict.threshold == fidelity.CONSISTENCY_MIN_DB_CLEAN and strict.status == "warn"
    assert fidelity.consistency_threshold(None) == fidelity.CONSISTENCY_MIN_DB  # unknown


def test_an_altered_feature_is_flagged_through_the_compression(sample):
    """The eyes replaced by the skin and brows above them: a small part of the face, flagged
    because each feature is judged on its own (the whole face's average hides it)."""
    hr, _, landmarks = sample
    lr = jpeg40(imaging.downscale(hr, 4))
    (x0, y0), (x1, y1) = landmarks[36:48].min(0) - 4, landmarks[36:48].max(0) + 4
    x0, y0, x1, y1 = int(x0), int(y0), int(x1) + 1, int(y1) + 1
    altered = hr.copy()
    altered[y0:y1, x0:x1] = hr[y0 - 10 : y1 - 10, x0:x1]
    check = fidelity.data_consistency(lr, altered, COMPRESSED, landmarks)
    assert check.status == "warn" and "eye" in check.detail
    whole = fidelity.data_consistency(lr, altered, COMPRESSED)  # no landmarks: whole face only
    assert whole.value > check.value + 3
    other = fidelity.data_consistency(lr, narrower_jaw(hr), COMPRESSED, landmarks)
    assert other.status == "warn"


def test_the_report_names_the_line_it_used(sample):
    hr, lr, landmarks = sample
    for evidence, line in ((CLEAN, fidelity.CONSISTENCY_MIN_DB_CLEAN), (None, 27.0)):
        report = fidelity.check_all(lr, {"truth": hr}, landmarks, evidence=evidence)
        data = report.to_dict()
        assert data["thresholds"]["consistency_min_db"] == line
        assert data["models"]["truth"]["consistency"]["threshold"] == line
        assert data["thresholds"]["consistency_lowpass_lr_px"] == fidelity.CONSISTENCY_LOWPASS


def test_consistency_handles_x3_sizes():
    lr = np.full((42, 42, 3), 90, np.uint8)
    check = fidelity.data_consistency(lr, np.full((128, 128, 3), 90, np.uint8))
    assert check.value == float("inf") and check.status == "pass"
    assert check.to_dict()["value"] is None  # JSON has no infinity
    json.dumps(check.to_dict())


# --------------------------------------------------------------------------- (b) drift


def test_drift_is_zero_for_identical_landmarks(sample):
    *_, landmarks = sample
    check = fidelity.landmark_drift(landmarks, landmarks.copy())
    assert check.value == 0.0 and check.status == "pass"


def test_drift_is_measured_in_eye_distances(sample):
    *_, landmarks = sample
    iod = fidelity.inter_ocular(landmarks)
    moved = landmarks + np.array([0.15 * iod, 0.0])
    check = fidelity.landmark_drift(landmarks, moved)
    assert check.value == pytest.approx(0.15) and check.status == "warn"


def test_drift_is_unavailable_without_output_landmarks(sample):
    *_, landmarks = sample
    check = fidelity.landmark_drift(landmarks, None)
    assert check.status == "unavailable" and check.value is None and not check.passed


# --------------------------------------------------------------------------- (c) descriptors


def test_descriptor_of_the_same_image_is_identical(sample):
    hr, _, landmarks = sample
    a = fidelity.face_descriptor(hr, landmarks)
    b = fidelity.face_descriptor(hr.copy(), landmarks)
    assert a.shape == (128,) and np.linalg.norm(a - b) == 0.0
    other = fidelity.face_descriptor(noise_face(1), landmarks)
    assert np.linalg.norm(a - other) > fidelity.DLIB_SAME_PERSON


def test_agreement_threshold_depends_on_scale():
    assert fidelity.agreement_threshold(2) == fidelity.agreement_threshold(4) == 0.55
    assert fidelity.agreement_threshold(3) == 0.55
    assert fidelity.agreement_threshold(8) == 0.75


@pytest.fixture(scope="module")
def report(sample):
    hr, lr, landmarks = sample
    outputs = {
        "bicubic": imaging.upscale(lr, 4),
        "truth": hr,
        "other_face": narrower_jaw(hr),
        "noise": noise_face(),
    }
    return fidelity.check_all(lr, outputs, landmarks)


def test_check_all_passes_faithful_and_flags_the_rest(report):
    assert report.scale == 4
    for model_id in ("bicubic", "truth"):
        assert not report.model(model_id).flagged, report.model(model_id).to_dict()
    other = report.model("other_face")
    assert other.consistency.status == "warn" and other.drift.status == "warn"
    noise = report.model("noise")
    assert noise.flagged and noise.agreement.status == "warn"
    assert noise.agreement.value > fidelity.DLIB_SAME_PERSON


def test_distance_matrix_is_symmetric_with_the_input_first(report):
    matrix = np.array(report.distances)
    assert report.labels == [fidelity.REFERENCE_ID, "bicubic", "truth", "other_face", "noise"]
    assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    # the bicubic baseline *is* the enlarged input: distance exactly 0
    assert matrix[0, 1] == 0.0


def test_report_is_json_serialisable(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["thresholds"]["consistency_min_db"] == fidelity.CONSISTENCY_MIN_DB
    assert data["models"]["noise"]["flagged"] is True
    assert set(data["models"]["truth"]) >= {"consistency", "drift", "agreement"}
    assert data["models"]["truth"]["consistency"]["meaning"]


def test_given_output_landmarks_are_used(sample):
    hr, lr, landmarks = sample
    shifted = landmarks + np.array([10.0, 0.0])
    report = fidelity.check_all(lr, {"truth": hr}, landmarks, {"truth": shifted})
    assert report.model("truth").drift.value == pytest.approx(
        10.0 / fidelity.inter_ocular(landmarks)
    )


def test_agreement_is_unavailable_for_bicubic_alone(sample):
    """Bicubic is the enlarged input itself: with nothing else there is no agreement to measure."""
    _, lr, landmarks = sample
    report = fidelity.check_all(lr, {"bicubic": imaging.upscale(lr, 4)}, landmarks)
    check = report.models["bicubic"].agreement
    assert check.status == fidelity.UNAVAILABLE and check.value is None


def test_each_output_is_checked_against_what_its_model_saw(sample):
    """At Auto one model may read the face at 32 px (x4) and another at 64 px (x2)."""
    hr, landmarks = sample[0], sample[2]
    lr32, lr64 = imaging.downscale(hr, 4), imaging.downscale(hr, 2)
    outputs = {"x4": imaging.upscale(lr32, 4), "x2": imaging.upscale(lr64, 2)}
    report = fidelity.check_all(
        lr64, outputs, landmarks, lrs={"x4": lr32, "x2": lr64}, evidence_shrink={"x4": 1.0}
    )
    for name, lr in (("x4", lr32), ("x2", lr64)):
        expected = fidelity.data_consistency(lr, outputs[name], None, landmarks).value
        assert report.model(name).consistency.value == pytest.approx(expected)
    assert report.model("x4").resolution.status == fidelity.PASS
    assert report.model("x2").resolution is None  # not given: no resolution row
