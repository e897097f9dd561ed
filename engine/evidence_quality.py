"""How damaged is the evidence? JPEG quality from the file's quantisation tables, a noise level
from the pixels, and which model variant that calls for (issue 24).

Why: the clean-trained models sharpen JPEG blocks and sensor noise into false detail, the robust
variants were trained on such damage (training/degrade.py). The analyst should see, on load,
what the file says about its own compression and what the pixels say about their noise, and
get a recommendation with its reason, which they may override (the choice and the reason belong
in the provenance record).

- **JPEG quality**: a JPEG file carries its quantisation tables. Most encoders (libjpeg/IJG,
  PIL, OpenCV, most cameras and phones) scale the two standard tables of the JPEG standard
  (Annex K) by the IJG quality formula, so the quality is the one (1-100) whose scaled luma
  table is nearest the file's (:func:`jpeg_quality_from_tables`); ``exact`` says whether a
  quality reproduces the file's luma table exactly (otherwise a custom table and an
  approximate quality). PNG, TIFF and other lossless files have none (``None``).
- **noise sigma**: Immerkær's fast estimator (1996): the mean absolute response of a
  Laplacian-difference kernel that cancels smooth image content, in grey levels, on the luma.
  Edges inflate it a little; JPEG smooths noise away, so a compressed file reads less noisy
  than the sensor was. A rough guide, not a measurement.

Recommendation (:func:`recommend`): the robust variant when the JPEG quality is below
``CLEAN_JPEG_QUALITY`` (85) or the noise sigma is above ``CLEAN_NOISE_SIGMA`` (3 grey levels),
or for video frames (always codec-compressed); otherwise the clean-trained one.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# JPEG standard (ITU T.81, Annex K.1) luminance table, natural (row-major) order.
STD_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
)

CLEAN_JPEG_QUALITY = 85
CLEAN_NOISE_SIGMA = 3.0
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm", ".ts", ".m4v", ".h264"}


@dataclass(frozen=True)
class EvidenceQuality:
    """What the file and its pixels say about their damage, and the variant that suits them."""

    jpeg_quality: int | None  # IJG-equivalent quality of the luma table; None: not a JPEG
    jpeg_exact: bool  # the file's luma table is exactly the IJG table at that quality
    chroma_subsampling: str | None  # "4:2:0", "4:2:2", "4:4:4" (JPEG only)
    noise_sigma: float  # Immerkær's estimate on the luma, grey levels (0-255)
    video: bool
    recommended: str  # "robust" or "psnr" (the registry's variant names)
    reason: str  # in plain words, for the panel and the provenance record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ijg_table(quality: int) -> np.ndarray:
    """The standard luma table scaled as libjpeg does for `quality` (1-100), baseline-clamped."""
    q = min(100, max(1, int(quality)))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((STD_LUMA * scale + 50) / 100), 1, 255)


def jpeg_quality_from_tables(tables: dict[int, Any]) -> tuple[int, bool]:
    """(quality, exact) from PIL's ``Image.quantization`` (table 0 = luma, natural order)."""
    luma = np.asarray(list(tables[0]), dtype=np.float64)
    if luma.size != 64:
        raise ValueError(f"a JPEG luma table has 64 entries, not {luma.size}")
    errors = [float(np.abs(np.log(ijg_table(q)) - np.log(luma)).mean()) for q in range(1, 101)]
    best = int(np.argmin(errors)) + 1
    return best, bool(np.array_equal(ijg_table(best), luma))


def noise_sigma(rgb: np.ndarray) -> float:
    """Immerkær's fast noise estimate (grey levels) on the BT.601 luma of an (H, W, 3) image."""
    import cv2

    x = np.asarray(rgb, np.float64)
    grey = x @ np.array([0.299, 0.587, 0.114]) if x.ndim == 3 else x
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    resp = cv2.filter2D(grey, -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(resp).sum() / (6.0 * (w - 2) * (h - 2)))


def _jpeg_info(data: bytes) -> tuple[int | None, bool, str | None]:
    from PIL import Image, JpegImagePlugin

    try:
        im = Image.open(io.BytesIO(data))
    except OSError:
        return None, False, None
    if im.format != "JPEG" or not getattr(im, "quantization", None):
        return None, False, None
    quality, exact = jpeg_quality_from_tables(im.quantization)
    sampling = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(im))
    return quality, exact, sampling


def recommend(jpeg_quality: int | None, sigma: float, video: bool) -> tuple[str, str]:
    """("robust" | "psnr", the reason in plain words)."""
    reasons = []
    if video:
        reasons.append("a video frame (always codec-compressed)")
    if jpeg_quality is not None and jpeg_quality < CLEAN_JPEG_QUALITY:
        reasons.append(f"JPEG quality about {jpeg_quality} (below {CLEAN_JPEG_QUALITY})")
    if sigma > CLEAN_NOISE_SIGMA:
        reasons.append(f"noise about {sigma:.1f} grey levels (above {CLEAN_NOISE_SIGMA:g})")
    if reasons:
        return "robust", (
            "Robust variant recommended: " + "; ".join(reasons) + ". Clean-trained "
            "models would sharpen the compression and noise into false detail."
        )
    what = (
        f"JPEG quality about {jpeg_quality}"
        if jpeg_quality is not None
        else "no lossy compression recorded in the file"
    )
    return "psnr", (
        f"Clean-trained variant recommended: {what}, noise about {sigma:.1f} grey "
        "levels. If the image was compressed before it was saved this way, prefer "
        "the robust variant."
    )


def assess(rgb: np.ndarray, data: bytes | None = None, name: str = "") -> EvidenceQuality:
    """Assess decoded pixels `rgb` (H, W, 3) uint8, with the file's bytes when there are any
    (the quantisation tables are read from them) and its name (video suffixes)."""
    quality, exact, sampling = _jpeg_info(data) if data else (None, False, None)
    video = Path(name).suffix.lower() in VIDEO_SUFFIXES
    sigma = noise_sigma(rgb)
    variant, reason = recommend(quality, sigma, video)
    return EvidenceQuality(quality, exact, sampling, round(sigma, 2), video, variant, reason)


def assess_file(path: str | Path, rgb: np.ndarray | None = None) -> EvidenceQuality:
    """:func:`assess` for a file on disk (read-only; decodes it if `rgb` is not given)."""
    from PIL import Image

    path = Path(path)
    data = path.read_bytes()
    if rgb is None:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return assess(rgb, data, path.name)
