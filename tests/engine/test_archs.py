"""Tests of the five papers' networks and the SRGAN discriminator (engine.archs).

Random weights only (no trained files): small configurations at every supported scale for
shapes, gradients, determinism and a safetensors round trip; each paper-default configuration
once for its parameter count and a forward at the real 128x128 size. None of the papers states
a parameter count, so the expected counts are derived layer by layer from MODELS.md /
the papers' tables with the formulas below, independently of the modules' code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.archs.common import bicubic_upsample
from engine.archs.discriminators import SRGANDiscriminator
from engine.archs.s0_srresnet_att import (
    SelfAttention,
    SRResNetAttention,
    landmarks_to_unit,
    unit_to_landmarks,
)
from engine.archs.s1_mffcn import MFFCN
from engine.archs.s2_rafsr import RAFSR
from engine.archs.s3_prior_guided import PriorGuidedSR
from engine.archs.s4_idrn import IDRN

HR = 128


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these tensors are tiny and the 2 cores are shared, where OpenMP
    threads spin-wait for each other (measured: 10 s CPU with one thread, 50 s with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Small settings per architecture: (class, kwargs without scale, takes a scale argument).
SMALL: dict[str, tuple[type[nn.Module], dict, bool]] = {
    "s0": (SRResNetAttention, {"channels": 8, "blocks": 2, "attention_at": [1, 2]}, True),
    "s1": (MFFCN, {"channels": 8, "levels": 3, "mff_per_level": 2}, False),
    "s2": (RAFSR, {"channels": 8, "n_ram": 2, "reduction": 1}, True),
    "s3": (
        PriorGuidedSR,
        {
            "channels": 8,
            "blocks": 2,
            "prior_channels": 8,
            "prior_blocks": 1,
            "hourglass_depth": 2,
            "reduction": 1,
        },
        True,
    ),
    "s4": (IDRN, {"channels": 8, "units": 2}, True),
}


def small_cases() -> list[tuple[str, int]]:
    cases = []
    for name, (cls, _, takes_scale) in SMALL.items():
        scales = cls.SCALES if takes_scale else (4,)
        cases += [(name, s) for s in scales]
    return cases


def build_small(name: str, scale: int, seed: int = 0, **extra) -> nn.Module:
    cls, kwargs, takes_scale = SMALL[name]
    torch.manual_seed(seed)
    kwargs = {**kwargs, **extra}
    return cls(scale=scale, **kwargs) if takes_scale else cls(**kwargs)


def small_input(name: str, scale: int, n: int = 2, seed: int = 1) -> torch.Tensor:
    """LR input making a 32x32 output (S1: the upsampled 32x32 image itself)."""
    g = torch.Generator().manual_seed(seed)
    side = 32 if name == "s1" else 32 // scale
    if scale == 3 and name != "s1":
        side = 10  # 30x30 output
    return torch.rand(n, 3, side, side, generator=g)


def run_all_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every output a model has (S0 landmarks, S3 coarse/parsing/final)."""
    if isinstance(model, SRResNetAttention) and model.landmarks is not None:
        return list(model.forward_with_landmarks(x))
    if isinstance(model, PriorGuidedSR):
        return list(model.forward_all(x))
    return [model(x)]


# ---------------------------------------------------------------- small configurations


@pytest.mark.parametrize(("name", "scale"), small_cases())
def test_small_output_shape_and_eval_determinism(name: str, scale: int) -> None:
    model = build_small(name, scale).eval()
    x = small_input(name, scale)
    with torch.no_grad():
        first = run_all_outputs(model, x)
        second = run_all_outputs(model, x.clone())
    y = first[2] if name == "s3" else first[0]
    side = x.shape[-1] if name == "s1" else x.shape[-1] * scale
    assert y.shape == (2, 3, side, side)
    assert y.dtype == torch.float32
    assert all(torch.isfinite(o).all() for o in first)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "scale"), [c for c in small_cases() if c[0] != "s1"])
@pytest.mark.parametrize("side", [9, 13])
def test_odd_input_sizes_keep_the_output_size(name: str, scale: int, side: int) -> None:
    """A face run at its native size may have any side (engine.weights.LoadedModel.accepts):
    every LR-input network must give side x scale, not fail or lose a row (S3's prior branch
    halved an odd map and came back short)."""
    model = build_small(name, scale).eval()
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, side * scale, side * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "scale"), small_cases())
def test_gradients_reach_every_parameter(name: str, scale: int) -> None:
    model = build_small(name, scale).train()
    x = small_input(name, scale)
    loss = sum(out.square().mean() for out in run_all_outputs(model, x))
    loss.backward()
    zero = []
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        if not p.grad.any():
            zero.append(pname)
    # Only the attention projections may have zero gradients: gamma starts at 0, so they are
    # switched off until gamma moves (gamma's own gradient is non-zero).
    assert all(".attention." in n and not n.endswith("gamma") for n in zero), zero


@pytest.mark.parametrize(("name", "scale"), small_cases())
def test_safetensors_round_trip_is_bit_exact(name: str, scale: int, tmp_path: Path) -> None:
    """Weights + JSON constructor arguments rebuild a model with identical outputs."""
    model = build_small(name, scale, seed=0).eval()
    path = tmp_path / "w.safetensors"
    cls, kwargs, takes_scale = SMALL[name]
    kwargs = {**kwargs, "scale": scale} if takes_scale else dict(kwargs)
    save_file(model.state_dict(), str(path), metadata={"kwargs": json.dumps(kwargs)})

    torch.manual_seed(123)  # different random init, overwritten by the loaded weights
    clone = cls(**json.loads(json.dumps(kwargs))).eval()
    x = small_input(name, scale)
    with torch.no_grad():
        assert not torch.equal(model(x), clone(x))
        clone.load_state_dict(load_file(str(path)), strict=True)
        for a, b in zip(run_all_outputs(model, x), run_all_outputs(clone, x), strict=True):
            assert torch.equal(a, b)


def test_discriminator_small() -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator(in_size=32, channels=8, n_convs=4, dense=16)
    x = torch.rand(3, 3, 32, 32)
    out = d(x)
    assert out.shape == (3, 1)
    out.sum().backward()
    for pname, p in d.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), pname
    d.eval()
    with torch.no_grad():
        assert torch.equal(d(x), d(x))
    with pytest.raises(ValueError):
        d(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError):
        SRGANDiscriminator(in_size=100)
    with pytest.raises(ValueError):
        SRGANDiscriminator(n_convs=7)


def test_discriminator_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator(in_size=32, channels=8, n_convs=4, dense=16)
    d.train()
    d(torch.rand(4, 3, 32, 32))  # moves the batch-norm running statistics off their defaults
    d.eval()
    save_file(d.state_dict(), str(tmp_path / "d.safetensors"))
    clone = SRGANDiscriminator(in_size=32, channels=8, n_convs=4, dense=16).eval()
    clone.load_state_dict(load_file(str(tmp_path / "d.safetensors")))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(d(x), clone(x))


# ---------------------------------------------------------------- behaviour of the parts


@pytest.mark.parametrize(
    ("cls", "scale"),
    [
        (SRResNetAttention, 3),
        (SRResNetAttention, 16),
        (RAFSR, 2),
        (RAFSR, 3),
        (PriorGuidedSR, 2),
        (PriorGuidedSR, 16),
        (IDRN, 5),
        (IDRN, 16),
        (IDRN, 4.5),
    ],
)
def test_unsupported_scale_raises(cls: type[nn.Module], scale: int) -> None:
    with pytest.raises(ValueError, match="supports scales"):
        cls(scale=scale, channels=8)


def test_s0_attention_index_checked() -> None:
    with pytest.raises(ValueError):
        SRResNetAttention(channels=8, blocks=4, attention_at=(5,))


def test_self_attention_matches_equations_13_to_16() -> None:
    """beta_ij = softmax over sources i of f(x_i)^T g(x_j); o_j = sum_i beta_ij h(x_i)."""
    torch.manual_seed(0)
    att = SelfAttention(16)
    with torch.no_grad():
        att.gamma.fill_(0.7)
        x = torch.randn(2, 16, 5, 6)
        f = att.f(x).flatten(2)  # (N, C', HW)
        g = att.g(x).flatten(2)
        h = att.h(x).flatten(2)  # (N, C, HW)
        s = f.transpose(1, 2) @ g  # s[n, i, j]
        beta = torch.softmax(s, dim=1)  # normalised over i
        o = (h @ beta).view_as(x)  # o[:, :, j] = sum_i h[:, :, i] beta[i, j]
        expected = 0.7 * o + x
        torch.testing.assert_close(att(x), expected, rtol=1e-5, atol=1e-5)


def test_attention_starts_switched_off() -> None:
    model = build_small("s0", 4)
    gammas = [m.gamma for m in model.modules() if isinstance(m, SelfAttention)]
    assert len(gammas) == 2 and all(g.item() == 0.0 for g in gammas)


def test_s0_landmarks() -> None:
    model = build_small("s0", 8).eval()
    x = small_input("s0", 8, n=3)
    with torch.no_grad():
        sr, marks = model.forward_with_landmarks(x)
        assert torch.equal(sr, model(x))
    assert marks.shape == (3, 68, 2)
    assert (marks >= 0).all() and (marks <= 1).all()
    pts = torch.tensor([[0.0, 127.0], [63.5, 10.25]])
    torch.testing.assert_close(unit_to_landmarks(landmarks_to_unit(pts)), pts)
    assert landmarks_to_unit(torch.tensor([63.5])).item() == 0.5  # image centre

    plain = build_small("s0", 4, landmark_head=False)
    assert not any(k.startswith("landmarks.") for k in plain.state_dict())
    with pytest.raises(RuntimeError):
        plain.forward_with_landmarks(small_input("s0", 4))


def test_s3_forward_all_shapes() -> None:
    model = build_small("s3", 8).eval()
    x = small_input("s3", 8, n=2)
    with torch.no_grad():
        coarse, parsing, final = model.forward_all(x)
        assert torch.equal(final, model(x))
    assert coarse.shape == (2, 3, 32, 32)
    assert parsing.shape == (2, 11, 32, 32)
    assert final.shape == (2, 3, 32, 32)


def test_s3_fuse_residual_starts_at_the_coarse_sr_and_adds_to_it() -> None:
    """fuse_residual: a new network's final SR is its coarse SR; once the fusing module's output
    conv is non-zero, the final SR is the coarse SR plus that module's output."""
    model = build_small("s3", 4, image_residual=True, fuse_residual=True).eval()
    x = small_input("s3", 4, n=2)
    with torch.no_grad():
        coarse, parsing, final = model.forward_all(x)
        assert torch.equal(final, coarse)
        torch.nn.init.normal_(model.fuse[-1].weight, std=0.1)
        coarse, parsing, final = model.forward_all(x)
        correction = model.fuse(torch.cat((coarse, parsing), dim=1))
        assert correction.abs().max() > 1e-3
        torch.testing.assert_close(final, coarse + correction)


@pytest.mark.parametrize(("name", "scale"), [("s0", 4), ("s2", 8), ("s4", 3), ("s3", 4)])
def test_image_residual_adds_bicubic(name: str, scale: int) -> None:
    """With the same weights, image_residual=True shifts the output by exactly bicubic."""
    plain = build_small(name, scale).eval()
    resid = build_small(name, scale, image_residual=True).eval()
    resid.load_state_dict(plain.state_dict())
    x = small_input(name, scale)
    up = bicubic_upsample(x, scale)
    with torch.no_grad():
        if name == "s3":
            # coarse SR shifts by bicubic; with the fusing module's output conv zeroed the
            # final SR is exactly bicubic (on) or zero (off).
            c0, _, _ = plain.forward_all(x)
            c1, _, _ = resid.forward_all(x)
            torch.testing.assert_close(c1, c0 + up)
            for m in (plain, resid):
                m.fuse[-1].weight.zero_()
                m.fuse[-1].bias.zero_()
            assert torch.equal(plain(x), torch.zeros_like(up))
            torch.testing.assert_close(resid(x), up)
        else:
            torch.testing.assert_close(resid(x), plain(x) + up)


def test_s1_global_residual_and_size_check() -> None:
    model = build_small("s1", 4).eval()
    with torch.no_grad():
        model.tail.fuse.weight.zero_()
        model.tail.fuse.bias.zero_()
        x = small_input("s1", 4)
        assert torch.equal(model(x), x)  # network output 0 -> the input comes through
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 33, 33))


def test_bicubic_upsample_matches_interpolate() -> None:
    x = torch.rand(1, 3, 7, 9)
    y = bicubic_upsample(x, 3)
    assert y.shape == (1, 3, 21, 27)
    ref = nn.functional.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    torch.testing.assert_close(y, ref)


# ---------------------------------------------------------------- paper configurations


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def res_block(c: int) -> int:
    return 2 * conv(c, c, 3)


def s0_params(scale: int) -> int:
    c, blocks, n_att = 64, 16, 2
    n = conv(3, c, 3) + blocks * res_block(c) + conv(c, c, 3)
    n += n_att * (2 * conv(c, c // 8, 1) + conv(c, c, 1) + 1)  # f, g, h, gamma
    n += {4: 2, 8: 3}[scale] * (c * c * 16 + c)  # ConvTranspose2d(k=4)
    n += conv(c, 3, 3)
    n += 2 * conv(c, c, 3) + conv(c, 68, 1)  # landmark head
    return n


def s1_params() -> int:
    def mff(cin: int, cout: int) -> int:
        return (
            conv(cin, cout, 1) + conv(cin, cout, 3) + conv(cin, cout, 5) + conv(3 * cout, cout, 1)
        )

    # one MFF per level: 128 -> 64 -> 32 (widths 64, 128, 256) and back, concat skips
    enc = mff(3, 64) + mff(64, 128) + mff(128, 256)
    up = mff(256, 128) + mff(128, 64)
    dec = mff(256, 128) + mff(128, 64)
    return enc + up + dec + mff(64, 3)


def s2_params(scale: int) -> int:
    c, rams = 64, 8
    cbam = conv(c, c // 16, 1) + conv(c // 16, c, 1) + conv(2, 1, 7)
    n = conv(3, c, 3) + rams * (res_block(c) + cbam)
    n += conv(rams * c, c, 1) + conv(c, c, 3) + conv(c, c, 1)  # fusion + adaptive residual
    n += {4: 2, 8: 3}[scale] * conv(c, 4 * c, 3) + conv(c, 3, 3)
    return n


def s3_params(scale: int) -> int:
    c = 64
    basic = 3 * conv(c, c, 3) + (c * 4 + 4) + (4 * c + c)  # two convs + dilated conv, FC1, FC2
    sr = conv(3, c, 3) + 16 * basic + conv(c, c, 3) + {4: 2, 8: 3}[scale] * conv(c, 4 * c, 3)
    sr += conv(c, 3, 3)
    hourglass_res = 3 * 3 + 1  # depth 3: three residual blocks per level + the innermost one
    prior = conv(3, c, 3) + conv(c, c, 3) + (3 + hourglass_res + 1) * res_block(c)
    prior += conv(c, 4 * c, 3) + conv(c, 11, 3)
    fuse = conv(14, c, 3) + res_block(c) + conv(c, 3, 3)  # table 3.3
    return sr + prior + fuse


def s4_params(scale: int) -> int:
    c = 128
    unit = conv(c, c, 3) + conv(2 * c, c, 3) + conv(3 * c, c, 1)
    up = {
        2: conv(c, 4 * c, 3),
        3: conv(c, 9 * c, 3),
        4: 2 * conv(c, 4 * c, 3),
        8: 3 * conv(c, 4 * c, 3),
    }[scale]
    return conv(3, c, 3) + 16 * unit + up + conv(c, 3, 3)


def disc_params() -> int:
    chans = [64, 64, 128, 128, 256, 256, 512, 512]
    n = conv(3, 64, 3)
    for cin, cout in zip(chans[:-1], chans[1:], strict=True):
        n += conv(cin, cout, 3, bias=False) + 2 * cout  # conv + batch-norm affine
    return n + (512 * 8 * 8 * 1024 + 1024) + (1024 + 1)  # table 3.4: dense 1024, dense 1


DEFAULTS = [
    ("s0", SRResNetAttention, 4, s0_params(4)),
    ("s0", SRResNetAttention, 8, s0_params(8)),
    ("s1", MFFCN, None, s1_params()),
    ("s2", RAFSR, 4, s2_params(4)),
    ("s2", RAFSR, 8, s2_params(8)),
    ("s3", PriorGuidedSR, 4, s3_params(4)),
    ("s3", PriorGuidedSR, 8, s3_params(8)),
    ("s4", IDRN, 4, s4_params(4)),
    ("s4", IDRN, 8, s4_params(8)),
]


@pytest.mark.parametrize(("name", "cls", "scale", "expected"), DEFAULTS)
def test_paper_default_config(name: str, cls: type, scale: int | None, expected: int) -> None:
    """Default constructor = the paper's configuration: parameter count and a real-size face."""
    torch.manual_seed(0)
    model = (cls() if scale is None else cls(scale=scale)).eval()
    if scale is not None:
        assert model.scale == scale
    assert sum(p.numel() for p in model.parameters()) == expected
    side = HR if scale is None else HR // scale
    x = torch.rand(1, 3, side, side)
    with torch.no_grad():
        outs = run_all_outputs(model, x)
    assert outs[-1 if name == "s3" else 0].shape == (1, 3, HR, HR)
    if name == "s0":
        assert outs[1].shape == (1, 68, 2)
    if name == "s3":
        assert outs[0].shape == (1, 3, HR, HR) and outs[1].shape == (1, 11, HR, HR)
    assert all(torch.isfinite(o).all() for o in outs)


def test_paper_defaults_of_constructors() -> None:
    """The defaults the contract and MODELS.md name (S3 is an x8 paper, the others x4)."""
    assert SRResNetAttention().scale == 4
    assert PriorGuidedSR(channels=8, blocks=1, prior_channels=8).scale == 8
    s4 = IDRN(channels=8)
    assert s4.scale == 4 and len(s4.units) == 16
    assert len(RAFSR(channels=8).rams) == 8


def test_discriminator_paper_config() -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator().eval()
    assert sum(p.numel() for p in d.parameters()) == disc_params()
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [m.stride[0] for m in convs] == [1, 2] * 4
    with torch.no_grad():
        assert d(torch.rand(2, 3, HR, HR)).shape == (2, 1)


@pytest.mark.parametrize(("name", "scale"), [("s0", 4), ("s1", 4), ("s2", 8), ("s3", 8), ("s4", 3)])
def test_bf16_autocast_channels_last_training_step(name: str, scale: int) -> None:
    """The training recipe (bf16 autocast on CPU, channels_last) runs and yields finite grads."""
    model = build_small(name, scale, image_residual=True) if name != "s1" else build_small(name, 4)
    model = model.to(memory_format=torch.channels_last)
    x = small_input(name, scale).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = run_all_outputs(model, x)
    sum(o.float().square().mean() for o in outs).backward()
    assert all(torch.isfinite(o.float()).all() for o in outs)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    if name == "s0":
        assert outs[1].dtype == torch.float32  # landmarks keep full precision


def test_s0_has_an_x2_variant_with_one_upsampling_stage() -> None:
    """x2 (issue 23's middle sizes): one transposed-conv stage, output twice the input."""
    net = SRResNetAttention(scale=2, channels=8, blocks=2, attention_at=(1, 2)).eval()
    with torch.inference_mode():
        out = net(torch.rand(1, 3, 20, 20))
    assert out.shape == (1, 3, 40, 40)
    stages = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(stages) == 1
