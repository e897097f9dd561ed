"""The weight files in resources/weights: every paper's PSNR-oriented model is shipped at x4 and
x8 (a GAN fine-tune only where it measured better than its twin, see resources/weights/README.md),
each file passes the full load checks, says how it was trained, and does better than bicubic on a
real face that no model was trained on (the committed NASA portrait)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import faces, imaging, io, registry, weights
from training.metrics import psnr

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
LEARNED = [registry.get(i) for i in registry.ids() if not registry.get(i).is_baseline]
REQUIRED = [(e, s) for e in LEARNED if e.variant == "psnr" for s in (4, 8)]
SHIPPED = REQUIRED + [
    (e, s)
    for e in LEARNED
    if e.variant == "gan"
    for s in (4, 8)
    if weights.status(e, s) == "installed"
]
# Robust variants (issue 24) and x2 files (issue 23) where they are shipped.
SHIPPED += [
    (e, s)
    for e in LEARNED
    for s in e.scales
    if (e.variant == "robust" or (s == 2 and not e.shared_weights))
    and not e.restores  # x1: measured against its damaged input below, not against bicubic
    and weights.status(e, s) == "installed"
]
RESTORES = [e for e in LEARNED if e.restores]


@pytest.fixture(scope="module")
def hr_face() -> np.ndarray:
    still = io.load(SAMPLE)
    (face,) = faces.detect(still.rgb)
    return faces.align(still.rgb, face, faces.HR_SIZE).pixels


def test_every_paper_ships_weights_at_x4_and_x8():
    missing = [
        f"{e.id} x{s}: {weights.status(e, s)}"
        for e, s in REQUIRED
        if weights.status(e, s) != "installed"
    ]
    assert not missing
    assert {e.paper for e, _ in REQUIRED} == {"S0", "S1", "S2", "S3", "S4"}


@pytest.mark.parametrize(("entry", "scale"), SHIPPED, ids=lambda v: getattr(v, "id", f"x{v}"))
def test_shipped_model_beats_bicubic_on_an_unseen_face(entry, scale, hr_face):
    model = weights.load(entry, scale, "cpu")  # the full check: manifest hash, header, strict load
    training = json.loads(model.metadata["training"])
    assert training["steps"] > 0 and training["wall_minutes"] > 0 and training["hardware"]
    lr = imaging.downscale(hr_face, scale)
    gain = psnr(model.run(lr), hr_face) - psnr(imaging.upscale(lr, scale, "bicubic"), hr_face)
    # An adversarial fine-tune trades some PSNR for texture; it must still not fall far behind.
    floor = -1.0 if entry.variant == "gan" else 0.3
    assert gain > floor, f"{entry.id} x{scale}: {gain:+.2f} dB over bicubic"


@pytest.mark.parametrize("entry", RESTORES, ids=lambda e: e.id)
def test_shipped_restore_cleans_a_damaged_face_and_leaves_a_clean_one(entry, hr_face):
    """Issue 24's x1 restore on the committed portrait (unseen; aligned from a 78 px face, so
    softer than the 128 px training faces). Measured when shipped: JPEG q20 30.62 -> 31.22 dB,
    noise + JPEG 50 31.72 -> 32.79 dB, the clean face kept at 36.4 dB; on this soft face it
    loses 0.2-0.8 dB at JPEG q40-60 (resources/weights/README.md says so)."""
    from training import degrade as dg

    if weights.status(entry, 1) != "installed":
        pytest.fail(f"{entry.id} x1: {weights.status(entry, 1)} (no x1 restoration file shipped)")
    model = weights.load(entry, 1, "cpu")
    training = json.loads(model.metadata["training"])
    assert training["steps"] > 0 and training["wall_minutes"] > 0 and training["hardware"]
    heavy = dg.jpeg(hr_face, 20, (3, 5))
    restored = model.restore(heavy)
    assert restored.shape == heavy.shape
    gain = psnr(restored, hr_face) - psnr(heavy, hr_face)
    assert gain > 0.3, f"{entry.id}: {gain:+.2f} dB over the JPEG q20 input"
    rng = np.random.default_rng(0)
    noisy = dg.jpeg(dg.add_noise(hr_face, 0.3, 2.0, 0.5, rng), 50, (3, 5))
    gain = psnr(model.restore(noisy), hr_face) - psnr(noisy, hr_face)
    assert gain > 0.5, f"{entry.id}: {gain:+.2f} dB over the noisy JPEG 50 input"
    clean = psnr(model.restore(hr_face), hr_face)
    assert clean > 35.0, f"{entry.id} changes a clean face to {clean:.1f} dB PSNR"
