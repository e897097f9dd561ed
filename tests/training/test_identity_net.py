"""training/identity_net.py against dlib itself: chip geometry, chip pixels, descriptors, gradients.

The faces are the astronaut sample and shifted/scaled/brightened copies of it (conftest.variants),
both as photos (landmarks from engine.faces.detect) and as aligned 128 px faces (landmarks from
engine.faces.aligned_landmarks, as training.evaluate measures identity), plus one photo cut so
that the chip reaches past its border.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import faces
from training import evaluate
from training import identity_net as idn

from .conftest import variants


@pytest.fixture(scope="module")
def samples(astronaut: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8 image, 68 landmarks rounded like evaluate.descriptor) pairs."""
    out = []
    for photo in [astronaut, *variants(astronaut, 3)]:
        face = max(faces.detect(photo), key=lambda f: f.width * f.height)
        out.append((photo, np.round(face.landmarks).astype(np.float64)))
        aligned = faces.align(photo, face, faces.HR_SIZE).pixels
        out.append((aligned, np.round(faces.aligned_landmarks(aligned)).astype(np.float64)))
    # A photo cut just above and left of the face: the chip reaches past the image border,
    # where dlib writes zeros.
    photo, landmarks = out[0]
    x0, y0 = landmarks.min(0).astype(int) - 3
    out.append((np.ascontiguousarray(photo[y0:, x0:]), landmarks - [x0, y0]))
    return out


def _detection(landmarks: np.ndarray):
    import dlib

    x0, y0 = np.floor(landmarks.min(0)).astype(int)
    x1, y1 = np.ceil(landmarks.max(0)).astype(int)
    pts = [dlib.point(int(x), int(y)) for x, y in landmarks]
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def test_chip_affine_matches_dlib_chip_details(samples):
    import dlib

    for _, landmarks in samples:
        details = dlib.get_face_chip_details(_detection(landmarks), idn.CHIP_SIZE, idn.CHIP_PADDING)
        inv = np.linalg.inv(np.vstack([idn.chip_affine(landmarks), [0, 0, 1]]))[:2]
        # dlib's rectangle: chip pixel 0 and size-1 land on its (rotated) corners.
        half = (idn.CHIP_SIZE - 1) / 2
        centre = inv @ [half, half, 1]
        side = np.hypot(*inv[:, 0]) * (idn.CHIP_SIZE - 1)
        rect = details.rect
        assert np.allclose(
            centre, [(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2]
        )
        assert np.isclose(side, rect.right() - rect.left())
        assert np.isclose(np.arctan2(inv[1, 0], inv[0, 0]), details.angle, atol=1e-7)


def test_extract_chips_matches_dlib_face_chip(samples):
    import dlib

    for rgb, landmarks in samples:
        want = dlib.get_face_chip(rgb, _detection(landmarks), idn.CHIP_SIZE, idn.CHIP_PADDING)
        affine = torch.from_numpy(idn.chip_affine(landmarks))[None]
        chip = idn.extract_chips(_tensor(rgb), affine, quantize=True)
        got = np.round(chip[0].permute(1, 2, 0).numpy() * 255).astype(int)
        # Only float rounding at exact integers may differ, by one level.
        assert np.abs(got - want).max() <= 1
        assert (got != want).mean() < 0.005


def test_network_matches_dlib_on_the_same_chip(samples):
    import dlib

    net = idn.load()
    model = evaluate._face_descriptor_model()
    chips = [
        dlib.get_face_chip(rgb, _detection(lm), idn.CHIP_SIZE, idn.CHIP_PADDING)
        for rgb, lm in samples
    ]
    want = np.array([model.compute_face_descriptor(c) for c in chips])
    with torch.no_grad():
        got = net(torch.cat([_tensor(c) for c in chips])).double().numpy()
    assert np.abs(got - want).max() < 1e-5
    assert np.linalg.norm(got - want, axis=1).max() < 1e-5


@pytest.mark.parametrize("quantize, max_abs, max_dist", [(True, 5e-4, 2e-3), (False, 2e-3, 1e-2)])
def test_descriptor_matches_evaluate(samples, quantize, max_abs, max_dist):
    """The whole path from the photo vs training.evaluate.descriptor (dlib's uint8 chip)."""
    net = idn.load()
    for rgb, landmarks in samples:
        want = evaluate.descriptor(rgb, landmarks)
        affine = torch.from_numpy(idn.chip_affine(landmarks))[None]
        with torch.no_grad():
            got = net(idn.extract_chips(_tensor(rgb), affine, quantize=quantize))[0].double()
        diff = got.numpy() - want
        assert np.abs(diff).max() < max_abs
        assert np.linalg.norm(diff) < max_dist


def test_gradients_flow_to_the_input(samples):
    net = idn.load()
    rgb, landmarks = samples[1]
    image = _tensor(rgb).repeat(2, 1, 1, 1)
    image[1] = image[1].flip(-1)  # a different face position, still a valid input
    image.requires_grad_(True)
    affines = torch.from_numpy(np.stack([idn.chip_affine(landmarks)] * 2))
    target = torch.from_numpy(evaluate.descriptor(rgb, landmarks)).float()
    loss = (net(idn.extract_chips(image, affines)) - target).norm(dim=1).sum()
    loss.backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()
    assert image.grad[0].abs().sum() > 0 and image.grad[1].abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    assert not net.training
    assert idn.load() is net


def test_identity_loss_measures_the_metric_and_trains(samples) -> None:
    """training.losses.IdentityLoss: zero for the face itself, the evaluate.descriptor distance
    (within the float-chip tolerance) for a blurred copy without jitter, a different chip per
    call with jitter, and a gradient on the prediction only."""
    import cv2

    from training import losses

    aligned = [(img, lm) for img, lm in samples if img.shape[:2] == (faces.HR_SIZE,) * 2][:3]
    hr = np.stack([img for img, _ in aligned])
    blurred = np.stack([cv2.GaussianBlur(img, (0, 0), 2.5) for img in hr])
    # IdentityLoss takes landmarks in training/data.py's [0, 1] units (pixel centre at i + 0.5).
    norm = torch.tensor(np.stack([(lm + 0.5) / faces.HR_SIZE for _, lm in aligned]))

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255

    exact = losses.IdentityLoss(jitter=False)
    assert exact(t(hr), t(hr), norm).item() < 1e-5
    want = np.mean(
        [
            np.linalg.norm(evaluate.descriptor(b, lm) - evaluate.descriptor(h, lm))
            for b, h, (_, lm) in zip(blurred, hr, aligned, strict=True)
        ]
    )
    got = exact(t(blurred), t(hr), norm).item()
    assert want > 0.05 and abs(got - want) < 0.01

    jittered = losses.IdentityLoss()
    torch.manual_seed(0)
    first = jittered(t(blurred), t(hr), norm).item()
    second = jittered(t(blurred), t(hr), norm).item()
    assert first != second and abs(first - want) < 0.1

    pred = t(blurred).requires_grad_(True)
    jittered(pred, t(hr), norm).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
