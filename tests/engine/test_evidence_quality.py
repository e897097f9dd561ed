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


@pytest.mark.parametrize("quality", [10, 25, 40, 50, 63, 75, 85, 95, 100])
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
