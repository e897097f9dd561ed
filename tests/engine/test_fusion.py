"""Multi-frame fusion: sub-pixel registration, determinism, outlier rejection, less noise."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine import faces as facelib
from engine import fusion, imaging

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def sample():
    rgb = np.array(Image.open(SAMPLE).convert("RGB"))
    return rgb, facelib.detect(rgb, upsample=1)[0]


def shifted(rgb: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float64)
    return cv2.warpAffine(
        rgb, m, rgb.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def noisy(rgb: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(np.rint(rgb + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def test_registration_recovers_a_known_sub_pixel_shift(sample) -> None:
    rgb, face = sample
    shifts = [(0.0, 0.0), (0.37, -0.21), (-0.63, 0.48), (0.12, 0.91)]
    # every frame is given the *reference's* landmarks: the coarse fit knows nothing of the
    # shift, so only the ECC refinement can find it
    frames = [
        fusion.FrameInput(shifted(rgb, dx, dy), face, {"n": i}) for i, (dx, dy) in enumerate(shifts)
    ]
    fused = fusion.fuse(frames, 32, passes=1, method="mean")
    m0 = fused.registrations[0].matrix
    points = facelib.five_points(face.landmarks)
    zoom = np.sqrt(abs(np.linalg.det(m0[:, :2])))
    for reg, (dx, dy) in zip(fused.registrations, shifts, strict=True):
        # a point p of frame 0 is at p + d in frame k: both must land on the same spot
        here = facelib.transform_points(points + [dx, dy], reg.matrix)
        there = facelib.transform_points(points, m0)
        error_px = np.linalg.norm(here - there, axis=1).mean() / zoom  # in frame pixels
        assert error_px < 0.1, (dx, dy, error_px)
        assert reg.rejected is None and reg.correlation > 0.99
    assert fused.registrations[3].refinement_px > 0.1  # the refinement did move it


def test_fusion_is_deterministic_and_recorded(sample) -> None:
    rgb, face = sample
    rng = np.random.default_rng(3)
    frames = []
    for i in range(5):
        frame = noisy(shifted(rgb, *rng.uniform(-1, 1, 2)), rng, 4.0)
        frames.append(fusion.FrameInput(frame, facelib.detect(frame, upsample=1)[0], {"index": i}))
    a = fusion.fuse(frames, 32, reference=2)
    cv2.setNumThreads(2)
    b = fusion.fuse(frames, 32, reference=2)
    assert a.lr.tobytes() == b.lr.tobytes() and a.fine.tobytes() == b.fine.tobytes()
    assert a.record == b.record
    assert a.lr.shape == (32, 32, 3) and a.fine.shape == (128, 128, 3)
    rec = a.record
    assert rec["frames_used"] == 5 and rec["reference_position"] == 2
    assert [f["index"] for f in rec["frames"]] == list(range(5))
    assert all("residual_rms" in f["registration"] for f in rec["frames"])
    assert rec["fused_sha256"] == __import__("hashlib").sha256(a.lr.tobytes()).hexdigest()


def test_fusion_removes_noise_and_rejects_a_wrong_frame(sample) -> None:
    rgb, face = sample
    rng = np.random.default_rng(5)
    clean_frames, frames = [], []
    for i in range(8):
        d = rng.uniform(-1, 1, 2)
        clean = shifted(rgb, *d)
        frame = noisy(clean, rng, 8.0)
        clean_frames.append(clean)
        frames.append(fusion.FrameInput(frame, facelib.detect(frame, upsample=1)[0], {"index": i}))
    # a frame whose pixels are not this face (e.g. a passer-by crossing), with the face's landmarks
    other = np.ascontiguousarray(rgb[::-1, ::-1])
    frames.append(fusion.FrameInput(other, frames[0].face, {"index": 8}))
    for method in ("reconstruct", "trimmed", "median"):
        fused = fusion.fuse(frames, 32, reference=0, method=method)
        assert fused.registrations[8].rejected is not None, method
        assert 8 not in fused.used and len(fused.used) == 8
        truth = fusion.warp(clean_frames[0], fused.aligned.matrix, 32)
        err_single = np.abs(fused.single.astype(float) - truth).mean()
        err_fused = np.abs(fused.lr.astype(float) - truth).mean()
        assert err_fused < 0.75 * err_single, (method, err_fused, err_single)


def test_combine_and_refusals() -> None:
    stack = np.stack([np.full((2, 2, 3), v, np.float32) for v in (0, 10, 11, 12, 250)])
    assert fusion.combine(stack, "median")[0, 0, 0] == 11
    assert fusion.combine(stack, "trimmed")[0, 0, 0] == 11  # 0 and 250 dropped
    assert fusion.combine(stack, "mean")[0, 0, 0] == 57
    with pytest.raises(ValueError):
        fusion.combine(stack, "reconstruct")
    with pytest.raises(fusion.FusionError):
        fusion.fuse([], 32)
    frame = fusion.FrameInput(np.zeros((64, 64, 3), np.uint8), None, {})  # type: ignore[arg-type]
    with pytest.raises(fusion.FusionError):
        fusion.fuse([frame], 32, reference=3)


def test_psf_kernel_matches_the_projects_degradation() -> None:
    # one LR pixel of imaging.downscale(x4) = the 1-D kernel applied on both axes
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    lr = imaging.downscale(hr, 4).astype(float)
    k = fusion.psf_kernel(4.0)  # centred on HR coordinate 4 j + 1.5
    half = len(k) // 2
    j = 8
    c = 4 * j + 1.5  # the LR pixel's centre in HR pixel coordinates
    xs = np.arange(len(k)) - half + c  # sample positions (half-integers)
    weights = fusion._cubic((np.arange(64) - c) / 4.0)
    weights /= weights.sum()
    expected = np.einsum("i,j,ijc->c", weights, weights, hr.astype(float))
    assert np.abs(lr[j, j] - expected).max() < 1.0
    assert xs.size == len(k)


def test_auto_reconstructs_only_well_sampled_faces(sample) -> None:
    rgb, _ = sample
    # the sample's canonical crop spans about 77 px of the frame: shrunk into a 32 px input,
    # enlarged 1.7x into a 128 px one
    rng = np.random.default_rng(9)
    frames = []
    for _ in range(5):
        frame = noisy(shifted(rgb, *rng.uniform(-1, 1, 2)), rng, 2.0)
        frames.append(fusion.FrameInput(frame, facelib.detect(frame, upsample=1)[0], {}))
    well = fusion.fuse(frames, 32, method="auto")
    assert well.record["fusion_method"] == "reconstruct" and well.fine is not None
    assert well.record["face_zoom_into_model_input"] < 1
    explicit = fusion.fuse(frames, 32, method="reconstruct")
    assert explicit.lr.tobytes() == well.lr.tobytes()
    under = fusion.fuse(frames, 128, method="auto")  # under-sampled
    assert under.record["fusion_method"] == "trimmed" and under.fine is None
    assert under.record["method_requested"] == "auto"
    assert under.lr.tobytes() == fusion.fuse(frames, 128, method="trimmed").lr.tobytes()
