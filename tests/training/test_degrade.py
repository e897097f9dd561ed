"""The degradation model (training/degrade.py): shapes, determinism, ranges, real 4:2:0 JPEG."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from engine import imaging
from training import data
from training import degrade as dg
from training.metrics import psnr


@pytest.fixture(scope="module")
def hr() -> np.ndarray:
    """A smooth synthetic 'face' with some edges: gradients, a disc and stripes (128x128 RGB)."""
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    img = np.stack([x * 1.5 + 30, y * 1.2 + 40, (x + y) * 0.6 + 20], -1)
    img[(x - 64) ** 2 + (y - 60) ** 2 < 30**2] = (200, 150, 120)
    img[40:44, 30:100] = 20
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("family", dg.FAMILIES + dg.UNSEEN)
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_every_family_gives_the_lr_shape(hr, family, scale):
    lr = dg.family_lr(hr, scale, family, 0)
    assert lr.shape == (128 // scale, 128 // scale, 3) and lr.dtype == np.uint8


def test_clean_is_the_apps_downscale(hr):
    assert np.array_equal(dg.family_lr(hr, 4, "clean", 7), imaging.downscale(hr, 4))
    assert np.array_equal(
        data.degrade(hr, 4, "clean", np.random.default_rng(0)), imaging.downscale(hr, 4)
    )


@pytest.mark.parametrize("family", dg.DEGRADED + dg.UNSEEN)
def test_families_are_deterministic_per_face_and_differ_between_faces(hr, family):
    a = dg.family_lr(hr, 4, family, 3)
    assert np.array_equal(a, dg.family_lr(hr, 4, family, 3))  # same face: same LR, every model
    assert not np.array_equal(a, imaging.downscale(hr, 4))  # it did degrade
    others = [dg.family_lr(hr, 4, family, k) for k in range(4, 8)]
    assert any(not np.array_equal(a, o) for o in others)  # grid offsets / noise differ per face


@pytest.mark.parametrize("family", dg.FAMILIES + dg.UNSEEN)
def test_a_face_recorded_between_the_frames_gets_the_family_at_its_own_size(hr, family):
    """benchmarks/native_size.py --degrade: any side, seeded, damaged there; a side that is a
    frame (32 px) takes the integer path, so it matches the benchmark's own downscale when clean."""
    for side in (37, 101):
        lr = dg.family_native_lr(hr, side, family, 2)
        assert lr.shape == (side, side, 3) and lr.dtype == np.uint8
        assert np.array_equal(lr, dg.family_native_lr(hr, side, family, 2))
        clean = imaging.resize(hr, side, side, "bicubic")
        assert np.array_equal(lr, clean) == (family == "clean")
    if family == "clean":
        assert np.array_equal(dg.family_native_lr(hr, 32, family, 2), imaging.downscale(hr, 4))


def test_degraded_families_are_worse_than_clean(hr):
    clean = psnr(imaging.upscale(dg.family_lr(hr, 4, "clean", 0), 4, "bicubic"), hr)
    for family in dg.DEGRADED:
        damaged = psnr(imaging.upscale(dg.family_lr(hr, 4, family, 0), 4, "bicubic"), hr)
        assert damaged < clean, family


def test_mix_is_seeded_and_keeps_its_ranges():
    draws = [dg.draw_mix(np.random.default_rng(s)) for s in range(4000)]
    again = [dg.draw_mix(np.random.default_rng(s)) for s in range(50)]
    assert draws[:50] == again
    clean = sum(p == dg.Params() for p in draws) / len(draws)
    mild = sum(
        p.jpeg_quality >= 80 and not p.blur_sigma and not p.motion_len and not p.second
        for p in draws
    ) / len(draws)
    assert 0.12 < clean < 0.18 and 0.20 < clean + mild < 0.35
    for p in draws:
        assert p.blur_sigma == 0 or 0.2 <= p.blur_sigma <= 1.2
        assert p.motion_len == 0 or 1.0 <= p.motion_len <= 3.0
        assert 0 <= p.noise_a <= 0.6 and 0 <= p.noise_b <= 4.0 and 0 <= p.chroma <= 1.0
        assert p.jpeg_quality == 0 or 20 <= p.jpeg_quality <= 95
        assert p.second in ("", "jpeg", "h264")
        assert p.second != "jpeg" or 30 <= p.second_quality <= 90
        assert p.second != "h264" or 20 <= p.second_quality <= 36
        assert all(0 <= o < dg.GRID for o in (*p.jpeg_offset, *p.second_offset))


def test_every_evaluation_family_lies_inside_the_mix():
    rng = np.random.default_rng(0)
    for family in dg.DEGRADED:
        p = dg.family_params(family, rng)
        assert p.blur_sigma <= 1.2 and p.motion_len <= 3.0
        assert p.noise_a <= 0.6 and p.noise_b <= 4.0 and p.chroma <= 1.0
        assert 20 <= p.jpeg_quality <= 90
        assert p.second in ("", "h264") and (not p.second or 20 <= p.second_quality <= 36)


def test_mix_training_draws_follow_the_generator(hr):
    a = data.degrade(hr, 4, "mix", np.random.default_rng(5))
    b = data.degrade(hr, 4, "mix", np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == (32, 32, 3)


def test_jpeg_is_really_420_and_on_a_shifted_grid(hr):
    lr = imaging.downscale(hr, 4)
    raw = dg.jpeg_bytes(lr, 40, (5, 11))
    im = Image.open(io.BytesIO(raw))
    assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
    assert im.size == (48, 48)  # 32 + offset, padded to the 16-px grid
    out = dg.jpeg(lr, 40, (5, 11))
    assert out.shape == lr.shape
    assert not np.array_equal(out, dg.jpeg(lr, 40, (0, 0)))  # the grid really moved


def test_h264_pass_keeps_the_shape_and_loses_detail(hr):
    lr = imaging.downscale(hr, 4)
    out = dg.h264_intra(lr, 36, (3, 9))
    assert out.shape == lr.shape and out.dtype == np.uint8
    assert 20 < psnr(out, lr) < 60


def test_noise_grows_with_the_signal():
    rng = np.random.default_rng(0)
    dark = np.full((64, 64, 3), 20, np.uint8)
    bright = np.full((64, 64, 3), 220, np.uint8)
    sd_dark = dg.add_noise(dark, 0.5, 1.0, 0.0, rng).astype(float).std()
    sd_bright = dg.add_noise(bright, 0.5, 1.0, 0.0, rng).astype(float).std()
    assert sd_bright > 2 * sd_dark
    grey = dg.add_noise(bright, 0.5, 1.0, 0.0, rng).astype(int)
    assert (grey[..., 0] == grey[..., 1]).all()  # chroma 0: the same noise on R, G and B
    colour = dg.add_noise(bright, 0.5, 1.0, 1.0, rng).astype(int)
    assert (colour[..., 0] != colour[..., 1]).any()


def test_blur_is_in_lr_pixels(hr):
    # the same blur in LR pixels costs about as much at x2 as at x4, measured at the LR size
    sharp = dg.Params()
    soft = replace(sharp, blur_sigma=1.0)
    rng = np.random.default_rng(0)
    for scale in (2, 4):
        a, b = dg.apply(hr, scale, sharp, rng), dg.apply(hr, scale, soft, rng)
        assert psnr(a, b) < 35
    k = dg.motion_kernel(5.0, 30.0)
    assert k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-5


def test_unknown_names_are_refused(hr):
    with pytest.raises(ValueError, match="unknown degradation family"):
        dg.family_lr(hr, 4, "fog", 0)
    with pytest.raises(ValueError, match="unknown degradation family"):
        dg.parse_families("clean,fog")
    assert dg.parse_families("all") == list(dg.FAMILIES)
    assert dg.parse_families("degraded") == list(dg.DEGRADED)


def test_unseen_families_hold_damage_the_mix_never_draws(hr):
    draws = [dg.draw_mix(np.random.default_rng(s)) for s in range(4000)]
    assert all(d.sharpen == 0 and d.size_ratio == 1.0 for d in draws)
    assert dg.parse_families("unseen") == list(dg.UNSEEN)
    assert dg.parse_families("sharp_jpeg,clean") == ["sharp_jpeg", "clean"]
    assert not set(dg.UNSEEN) & set(dg.parse_families("all"))  # "all" = the aims' families
    with pytest.raises(ValueError, match="unknown degradation"):  # never trained on
        data.degrade(hr, 4, "sharp_jpeg", np.random.default_rng(0))
    # sharpening adds contrast at edges that a plain JPEG of the same quality does not have
    sharp = dg.family_lr(hr, 4, "sharp_jpeg", 0).astype(np.float32)
    plain = dg.apply(hr, 4, dg.Params(jpeg_quality=50), np.random.default_rng(0))
    assert (
        np.abs(np.diff(sharp, axis=0)).mean()
        > np.abs(np.diff(plain.astype(np.float32), axis=0)).mean()
    )
    # the upscaled family was compressed smaller: softer than the same JPEG at full size
    up = dg.family_lr(hr, 4, "upscaled_jpeg", 0).astype(np.float32)
    assert (
        np.abs(np.diff(up, axis=1)).mean()
        < np.abs(np.diff(plain.astype(np.float32), axis=1)).mean()
    )
    assert "outside the training mix `mix`; `mix_wide` draws it" in dg.describe_family(
        "upscaled_jpeg", 4
    )


def test_the_wide_mix_adds_sharpening_and_resizing_on_top_of_a_mix_draw():
    draws = [dg.draw_mix_wide(np.random.default_rng(s)) for s in range(4000)]
    assert draws[:50] == [dg.draw_mix_wide(np.random.default_rng(s)) for s in range(50)]
    for s, wide in enumerate(draws[:200]):  # the mix draw underneath is the same one
        base = dg.draw_mix(np.random.default_rng(s))
        assert replace(wide, sharpen=0.0, size_ratio=1.0) == base
    clean = sum(p == dg.Params() for p in draws) / len(draws)
    sharpened = sum(p.sharpen > 0 for p in draws) / len(draws)
    resized = sum(p.size_ratio != 1.0 for p in draws) / len(draws)
    assert 0.12 < clean < 0.18  # the clean share is kept
    assert 0.17 < sharpened < 0.25 and 0.08 < resized < 0.15
    for p in draws:
        assert p.sharpen == 0 or 0.3 <= p.sharpen <= 1.5
        assert p.size_ratio == 1.0 or (0.6 <= p.size_ratio <= 0.9 and p.jpeg_quality)
        assert p.denoise == 0  # noise reduction stays unseen
    assert dg.unseen_families("mix") == dg.UNSEEN
    assert dg.unseen_families("mix_wide") == ("nr_jpeg",)
    with pytest.raises(ValueError, match="unknown mix"):
        dg.unseen_families("fog")


@pytest.mark.parametrize("kind", dg.MIXES)
def test_training_draws_from_each_mix_give_the_lr_shape(hr, kind):
    for seed in range(12):
        lr = data.degrade(hr, 4, kind, np.random.default_rng(seed))
        assert lr.shape == (32, 32, 3) and lr.dtype == np.uint8


def test_noise_reduction_flattens_noise_but_keeps_strong_edges(hr):
    rng = np.random.default_rng(0)
    noisy = dg.add_noise(imaging.downscale(hr, 2), 0.4, 3.0, 0.6, rng)
    smooth = dg.reduce_noise(noisy, 30.0)
    clean = imaging.downscale(hr, 2)
    assert psnr(smooth, clean) > psnr(noisy, clean) + 1.0  # noise flattened
    # the dark bar (rows 20-21 at x2) keeps its contrast against the background
    assert smooth[20:22, 20:45].mean() < smooth[14:17, 20:45].mean() - 60
    assert "noise reduction 30" in dg.describe_family("nr_jpeg", 4)
    assert "outside the training mix" in dg.describe_family("nr_jpeg", 4)
