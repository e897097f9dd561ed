"""engine.evidence_quality: JPEG quality from the quantisation tables, noise, the recommendation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import evidence_quality as eq

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


def _jpeg(rgb: np.ndarray, quality: int, subsampling: str = "4:2:0") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [10, 25, 33, 40, 45, 50, 63, 75, 85, 95, 100])
def test_jpeg_quality_is_read_from_the_tables(rgb, quality):
    found = eq.assess(rgb, _jpeg(rgb, quality), "x.jpg")
    assert found.jpeg_quality == quality and found.jpeg_exact
    assert found.chroma_subsampling == "4:2:0"


def test_custom_tables_give_an_approximate_quality():
    tables = {0: list(np.clip(eq.ijg_table(60) + 1, 1, 255).astype(int))}
    quality, exact = eq.jpeg_quality_from_tables(tables)
    assert 55 <= quality <= 62 and not exact


def test_png_has_no_jpeg_quality_and_noise_is_measured(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    found = eq.assess(rgb, buf.getvalue(), "x.png")
    assert found.jpeg_quality is None and found.chroma_subsampling is None
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 10, rgb.shape), 0, 255)
    sigma = eq.noise_sigma(noisy.astype(np.uint8))
    assert sigma > eq.noise_sigma(rgb) + 3  # RGB sigma 10 is luma sigma ~6.7
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert eq.noise_sigma(flat) == 0.0
    grain = np.clip(128 + np.random.default_rng(1).normal(0, 5, (256, 256)), 0, 255)
    assert 4.0 < eq.noise_sigma(np.repeat(grain[..., None], 3, -1)) < 6.0


def test_recommendation_and_reason(rgb):
    low = eq.assess(rgb, _jpeg(rgb, 40), "still.jpg")
    assert low.recommended == "robust" and "JPEG quality about 40" in low.reason
    high = eq.recommend(95, 1.0, False)
    assert high[0] == "psnr" and "Clean-trained" in high[1]
    # benchmarks/jpeg_crossover.md: the robust twins still win by 0.15-0.43 dB at quality 90
    at_90 = eq.recommend(90, 1.0, False)
    assert at_90[0] == "robust" and "JPEG quality about 90 (below 95)" in at_90[1]
    assert eq.recommend(None, 1.0, True)[0] == "robust"
    assert eq.recommend(None, 8.0, False)[0] == "robust"
    assert eq.assess(rgb, None, "frame.mp4").video
    assert set(low.to_dict()) >= {"jpeg_quality", "noise_sigma", "recommended", "reason"}


def test_assess_file_reads_without_changing_the_file(rgb, tmp_path):
    path = tmp_path / "evidence.jpg"
    path.write_bytes(_jpeg(rgb, 30))
    before = path.read_bytes()
    found = eq.assess_file(path)
    assert found.jpeg_quality == 30 and found.recommended == "robust"
    assert path.read_bytes() == before


def test_summary_says_in_plain_words_what_the_file_is(rgb):
    low = eq.assess(rgb, _jpeg(rgb, 45), "still.jpg")
    assert low.summary().startswith("JPEG quality \u2248 45, 4:2:0 colour, noise \u03c3 \u2248")
    assert low.summary().endswith(": compressed evidence")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    clean = eq.assess(rgb, buf.getvalue(), "still.png")
    assert clean.verdict == "clean lossless evidence" and clean.clean
    # ...and still the robust variant: a lossless file does not tell its history
    assert clean.recommended == "robust" and "lossless file" in clean.reason
    assert eq.EvidenceQuality.from_dict(clean.to_dict()) == clean
    assert "no lossy compression recorded" in clean.summary()
    frame = eq.assess(rgb, None, "clip.mp4")
    assert frame.verdict.startswith("video frame") and frame.recommended == "robust"


def test_noise_estimate_ignores_edges_and_finds_added_noise():
    """Measured on the 20 first held-out faces (module docstring): clean faces read about 1-2
    levels, the same faces with sigma-5 noise about 5. Here: a sharp synthetic face-like
    pattern (edges, no noise) reads low, and the same with sigma-5 noise reads near 5."""
    yy, xx = np.mgrid[0:128, 0:128]
    shapes = ((xx - 64) ** 2 / 40**2 + (yy - 64) ** 2 / 55**2 < 1) * 120 + 60
    shapes = shapes + ((xx // 16 + yy // 16) % 2) * 40  # hard edges everywhere
    img = np.repeat(np.clip(shapes, 0, 255).astype(np.uint8)[..., None], 3, -1)
    assert eq.noise_sigma(img) < 1.0
    noisy = img + np.random.default_rng(2).normal(0, 5, img.shape[:2])[..., None]
    assert 4.0 < eq.noise_sigma(np.clip(noisy, 0, 255).astype(np.uint8)) < 6.0


def _pairs():
    """Every clean-trained model with a robust twin, from the registry (no ids here); x1
    restoration models are robust too but never stand in for an enlarging model."""
    from engine import registry

    return [(e.twin, e.id) for e in registry.MODELS if e.variant == "robust" and not e.restores]


def test_variant_model_follows_the_registry_twins():
    from engine import registry

    assert _pairs(), "the registry has robust variants"
    for clean, robust in _pairs():
        everything = lambda m: True  # noqa: E731
        assert eq.variant_model("robust", clean, everything) == robust
        assert eq.variant_model("psnr", robust, everything) == clean
        assert eq.variant_model("robust", robust, everything) == robust
        # the twin missing: the first installed one of that variant in DEFAULT_ORDER
        others = lambda m, r=robust: m != r  # noqa: E731
        expected = next(
            m
            for m in registry.DEFAULT_ORDER
            if m != robust and registry.get(m).variant == "robust" and not registry.get(m).restores
        )
        assert eq.variant_model("robust", clean, others) == expected
    assert eq.variant_model("robust", "bicubic", lambda m: False) is None
    gan = next(e for e in registry.MODELS if e.variant == "gan")
    assert eq.variant_model("psnr", gan.id, lambda m: True) == gan.twin


def test_model_choice_records_recommendation_override_and_unknown(rgb):
    clean, robust = _pairs()[0]
    everything = lambda m: True  # noqa: E731
    compressed = eq.assess(rgb, _jpeg(rgb, 40), "still.jpg")
    choice = eq.model_choice(compressed, robust, everything)
    assert choice == {
        "recommended": robust,
        "chosen": robust,
        "variant": "robust",
        "reason": compressed.reason,
    }
    override = eq.model_choice(compressed, clean, everything)
    assert override["recommended"] == robust and override["chosen"] == clean
    assert "The analyst chose" in override["reason"]
    unknown = eq.model_choice(None, clean, everything)
    assert unknown["recommended"] == robust and "unknown" in unknown["reason"]
    # no robust file installed (e.g. at x8): the clean twin is the closest fit, said so
    no_robust = eq.model_choice(compressed, clean, lambda m: m == clean)
    assert (
        no_robust["recommended"] == clean and "No robust model is installed" in no_robust["reason"]
    )


def test_load_assesses_the_file_and_arrays_are_unknown(rgb, tmp_path):
    from engine import io as eio

    path = tmp_path / "evidence.jpg"
    path.write_bytes(_jpeg(rgb, 35))
    still = eio.load(path)
    assert still.evidence.jpeg_quality == 35 and still.evidence.recommended == "robust"
    assert eio.still_from_array(rgb).evidence is None


def _lossless(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_a_lossless_file_of_once_compressed_pixels_shows_its_block_grid(rgb):
    """A JPEG decoded, cropped 3 px from the left and 5 from the top (a DVR export or a
    screenshot) and saved as PNG: the file records no compression, the pixels do."""
    once = _decoded(_jpeg(rgb, 40))[5:, 3:]
    found = eq.assess(once, _lossless(once), "export.png")
    assert found.jpeg_quality is None
    assert found.block_offset == (5, 3)  # blocks start at x = -3, y = -5 modulo 8
    assert found.earlier_compression and found.recommended == "robust"
    assert "block grid" in found.reason and "block grid" in found.summary()
    assert found.verdict.startswith("previously compressed")


def test_never_compressed_pixels_show_no_grid(rgb):
    clean = eq.assess(rgb, _lossless(rgb), "still.png")
    assert clean.block_offset is None and clean.blocking < eq.BLOCK_GRID_SCORE
    assert clean.recommended == "robust" and "no block grid found" in clean.reason
    noisy = np.clip(rgb + np.random.default_rng(3).normal(0, 6, rgb.shape), 0, 255)
    assert eq.block_grid(noisy.astype(np.uint8))[1] is None  # noise is not a grid
    assert eq.block_grid(rgb[:20, :20]) == (0.0, None)  # too small to tell


def test_pixelation_reads_as_a_grid_and_a_jpeg_file_keeps_its_tables_rule(rgb):
    blocks = np.repeat(np.repeat(rgb[::8, ::8], 8, axis=0), 8, axis=1)
    assert eq.block_grid(blocks)[1] == (0, 0)
    good = eq.assess(rgb, _jpeg(rgb, 95), "still.jpg")  # the file's own tables decide
    assert good.recommended == "psnr" and not good.earlier_compression and good.clean


def test_a_face_nothing_enlarges_is_pointed_to_x1_restore_not_to_bicubic(rgb):
    """A face of 128 px or more at Auto: no model (not even bicubic) runs. Damaged evidence is
    pointed to the x1 restoration model, as advice (that scale is chosen by hand, so it is no
    override); clean evidence keeps the model in use, which simply does not run."""
    from engine import registry

    clean, robust = _pairs()[0]
    nothing = lambda m: False  # noqa: E731
    compressed = eq.assess(rgb, _jpeg(rgb, 40), "still.jpg")
    choice = eq.model_choice(compressed, robust, nothing)
    restore = registry.get(choice["recommended"])
    assert restore.restores and restore.variant == "robust"
    assert "x1 restore" in choice["reason"] and "The analyst chose" not in choice["reason"]
    good = eq.assess(rgb, _jpeg(rgb, 95), "still.jpg")
    kept = eq.model_choice(good, clean, nothing)
    assert kept["recommended"] == kept["chosen"] == clean
    assert "recorded size" in kept["reason"]
