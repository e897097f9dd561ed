"""Face tracks: linking by overlap and landmarks, gaps, quality ranking, a real clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine import faces as facelib
from engine import tracks, video

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


def _face(x: float, y: float, side: float = 40.0) -> facelib.Face:
    """A synthetic face: a box and landmarks spread over it (a fixed pattern)."""
    rng = np.random.default_rng(0)
    unit = rng.uniform(0.1, 0.9, (68, 2))
    lm = (unit * side + [x, y]).astype(np.float32)
    return facelib.Face(box=(x, y, x + side, y + side), score=1.0, landmarks=lm)


Q = tracks.Quality(sharpness=100.0, size=20.0, frontalness=1.0, nose_offset=0.0)


def test_two_people_walking_give_two_tracks_and_a_gap_is_bridged() -> None:
    detections = {}
    for i in range(8):
        found = [(_face(10 + 3 * i, 50), Q), (_face(200 - 4 * i, 60), Q)]
        if i == 4:
            found = found[:1]  # the second face is missed in frame 4 (occluded)
        detections[i] = found
    detections[9] = [(_face(300, 300), Q)]  # a stranger appears far away
    found = tracks.link(detections)
    assert len(found) == 3
    left, right, stranger = found
    assert left.frames == list(range(8))
    assert right.frames == [0, 1, 2, 3, 5, 6, 7]
    assert all(f.face.box[0] > 150 for f in right.faces)
    assert stranger.frames == [9]
    assert [t.id for t in found] == [0, 1, 2]
    assert tracks.choose_track(found).frames == left.frames
    assert tracks.choose_track(found, 1) is right
    with pytest.raises(facelib.FaceError):
        tracks.choose_track(found, 5)
    with pytest.raises(facelib.FaceError):
        tracks.choose_track([])


def test_a_long_gap_starts_a_new_track() -> None:
    detections = {0: [(_face(10, 10), Q)], 1: [(_face(11, 10), Q)], 9: [(_face(12, 10), Q)]}
    assert [t.frames for t in tracks.link(detections, max_gap=3)] == [[0, 1], [9]]
    assert [t.frames for t in tracks.link(detections, max_gap=8)] == [[0, 1, 9]]


def test_quality_prefers_sharp_large_frontal_faces() -> None:
    rgb = np.array(Image.open(SAMPLE).convert("RGB"))
    face = facelib.detect(rgb, upsample=1)[0]
    sharp = tracks.quality(rgb, face)
    blurred = tracks.quality(cv2.GaussianBlur(rgb, (0, 0), 2.0), face)
    assert sharp.sharpness > 2 * blurred.sharpness
    assert sharp.size == pytest.approx(
        np.linalg.norm(face.landmarks[42:48].mean(0) - face.landmarks[36:42].mean(0)), rel=1e-4
    )
    assert 0.6 < sharp.frontalness <= 1.0
    turned = face.landmarks.copy()
    turned[30, 0] += 0.4 * sharp.size  # nose well off the eyes' midline: a turned head
    side = tracks.quality(rgb, facelib.Face(face.box, face.score, turned))
    assert side.frontalness < sharp.frontalness - 0.3
    track = tracks.Track(
        0,
        [
            tracks.TrackFace(0, face, blurred),
            tracks.TrackFace(1, face, sharp),
            tracks.TrackFace(2, face, side),
        ],
    )
    ranked = track.ranked()
    assert ranked[0].frame_index == 1
    assert ranked[0].score == pytest.approx(0.7 + 0.3 * sharp.frontalness, abs=1e-4)
    assert [r.frame_index for r in ranked] == [1, 2, 0]  # the blurred one is last
    assert "sharpness" in ranked[0].words and "frontal" in ranked[0].words
    assert track.best(2) == sorted(r.frame_index for r in ranked[:2])


def test_track_faces_follows_the_face_through_a_clip(tmp_path) -> None:
    rgb = np.array(Image.open(SAMPLE).convert("RGB"))
    frames = []
    for i in range(5):
        m = np.array([[1, 0, 2.5 * i], [0, 1, -1.5 * i]], dtype=np.float64)
        frames.append(cv2.warpAffine(rgb, m, (256, 256), borderMode=cv2.BORDER_REFLECT))
    path = video.encode_clip(tmp_path / "walk.mp4", frames, bit_rate=500_000)
    with video.open_clip(path) as clip:
        found = tracks.track_faces(clip, upsample=1)
    track = tracks.choose_track(found)
    assert track.frames == [0, 1, 2, 3, 4]
    xs = [f.face.landmarks[30, 0] for f in track.faces]
    assert np.allclose(np.diff(xs), 2.5, atol=1.5)  # the nose moves with the face
    assert track.record()["frames"] == [0, 1, 2, 3, 4]
