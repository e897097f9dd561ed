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
  Laplacian-difference kernel that cancels smooth image content, in grey levels, on the luma,
  taken over the smoother half of the image (Sobel gradient at or below its median, after Tai
  and Yang 2008): edges and texture would otherwise read as noise, most on small images.
  Measured on 20 held-out aligned faces: clean 1.1 (median) / 2.0 (p90) levels; the same with
  Gaussian noise of sigma 5 added: 4.8 (p10) / 5.2 (median); pure noise of sigma 5: 5.05. JPEG
  smooths noise away, so a compressed file reads less noisy than the sensor was. A rough
  guide, not a measurement.
- **block grid** (:func:`block_grid`): a lossless file (PNG, BMP, TIFF: a DVR export, a
  screenshot) says nothing about the compression its pixels went through before. Block coding
  (JPEG, MPEG) leaves a step at every 8th pixel boundary; after Fan and de Queiroz (2003), the
  luma's step across each boundary phase (mod 8) is compared with the steps beside it, for rows
  and for columns. A grid is reported when one phase stands out in both directions by at least
  ``BLOCK_GRID_SCORE``; its phase gives the grid's offset (a cropped frame shifts it). Measured
  (benchmarks/block_grid.md, 70 photos from each of 4 source sizes, shrunk so that no earlier
  grid survives): a grid in 1 of the 280 never-compressed versions (score 0.175); JPEG quality
  40 found in 90-100%, 60 in 66-100%, 75 in 33-100%, 90 in 0-59% (larger images more often),
  always at the right offset. A file resampled after its compression shows no grid (the check
  cannot see that history). Pixelation (a nearest-neighbour enlargement) reads as a grid too,
  and also calls for the robust variant.

Recommendation (:func:`recommend`): the clean-trained variant only for a JPEG file of quality
``CLEAN_JPEG_QUALITY`` (95) or better with noise at most ``CLEAN_NOISE_SIGMA`` (3 grey levels);
the robust variant for everything else: a lower JPEG quality, noise, video frames (always
codec-compressed), pixels without a file, and lossless files (PNG, BMP, TIFF), whose pixels
alone miss most earlier damage: measured in benchmarks/pixel_damage.md on 200 held-out faces,
a CCTV-like chain (JPEG then H.264) is seen in 0-10% of faces, a JPEG resized after
compression in 2-16%, and a 32 px clean face reads as damaged in 66% (noise and texture cannot
be told apart at that size). The block grid and the noise still go into the reason.
:func:`model_choice` turns the recommended *variant* into a model (the twin of the analyst's
model in that variant, else the first installed one of ``engine.registry.DEFAULT_ORDER``: driven
by the registry, no model ids here) and states the choice and its reason for the provenance
record.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

# JPEG standard (ITU T.81, Annex K.1) luminance table, natural (row-major) order.
# fmt: off
STD_LUMA = np.array(
    [
         16,  11,  10,  16,  24,  40,  51,  61,
         12,  12,  14,  19,  26,  58,  60,  55,
         14,  13,  16,  24,  40,  57,  69,  56,
         14,  17,  22,  29,  51,  87,  80,  62,
         18,  22,  37,  56,  68, 109, 103,  77,
         24,  35,  55,  64,  81, 104, 113,  92,
         49,  64,  78,  87, 103, 121, 120, 101,
         72,  92,  95,  98, 112, 100, 103,  99,
    ],
    dtype=np.float64,
)
# fmt: on

# Measured (benchmarks/jpeg_crossover.md, x4, 200 held-out faces, JPEG only, every paper's
# twins; session 22's files): the robust twins beat the clean-trained ones by +0.7 to
# +1.0 dB at quality 75, +0.5 to +0.7 at 85 and still +0.29 to +0.43 at 90; at 95 they tie
# (-0.08 to +0.07 dB): clean-trained from 95 up. (The first robust files tied at 90.)
CLEAN_JPEG_QUALITY = 95
CLEAN_NOISE_SIGMA = 3.0
# benchmarks/block_grid.md: never-compressed versions score median 0.01-0.06, 1 of 280 above
# 0.15; JPEG quality 60 scores median 0.20-0.50, quality 75 0.11-0.35 (by image size).
BLOCK_GRID_SCORE = 0.15
BLOCK = 8  # JPEG's and MPEG's transform block, in pixels
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
    blocking: float = 0.0  # block_grid's score (the weaker direction); 0: no grid at all
    block_offset: tuple[int, int] | None = None  # (x, y) of the grid when one is found

    @property
    def clean(self) -> bool:
        """Nothing seen of compression or noise: a lossless file without a block grid or a
        good JPEG, little noise, not a video frame. (Not the recommendation: a clean-looking
        lossless file still gets the robust variant, see :func:`recommend`.)"""
        return self.verdict.startswith("clean")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvidenceQuality:
        """The assessment back from :meth:`to_dict` (e.g. a provenance record's)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("block_offset") is not None:
            values["block_offset"] = tuple(values["block_offset"])
        return cls(**values)

    @property
    def earlier_compression(self) -> bool:
        """A lossless file whose pixels carry a block grid: compressed before it was saved."""
        return self.jpeg_quality is None and not self.video and self.block_offset is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def verdict(self) -> str:
        """ "compressed evidence", "noisy evidence", "video frame (codec-compressed)" or "clean
        lossless evidence" / "clean evidence (good JPEG)"."""
        if self.video:
            return "video frame (codec-compressed)"
        compressed = self.jpeg_quality is not None and self.jpeg_quality < CLEAN_JPEG_QUALITY
        noisy = self.noise_sigma > CLEAN_NOISE_SIGMA
        compressed = compressed or self.earlier_compression
        if compressed and noisy:
            return "compressed and noisy evidence"
        if self.earlier_compression:
            return "previously compressed evidence"
        if compressed:
            return "compressed evidence"
        if noisy:
            return "noisy evidence"
        if self.jpeg_quality is not None:
            return "clean evidence (good JPEG)"
        return "clean lossless evidence"

    def summary(self) -> str:
        """One line for the image info: "JPEG quality \u2248 45, noise \u03c3 \u2248 3 levels:
        compressed evidence"."""
        parts = []
        if self.jpeg_quality is not None:
            approx = "" if self.jpeg_exact else " (custom tables)"
            sub = f", {self.chroma_subsampling} colour" if self.chroma_subsampling else ""
            parts.append(f"JPEG quality \u2248 {self.jpeg_quality}{approx}{sub}")
        elif not self.video:
            parts.append("no lossy compression recorded in the file")
            if self.block_offset is not None:
                x, y = self.block_offset
                parts.append(f"but an {BLOCK}-px block grid in the pixels (offset {x}, {y})")
        parts.append(f"noise \u03c3 \u2248 {self.noise_sigma:.0f} levels")
        return ", ".join(parts) + f": {self.verdict}"


def ijg_table(quality: int) -> np.ndarray:
    """The standard luma table scaled as libjpeg does for `quality` (1-100), baseline-clamped."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q  # integer, as libjpeg computes it
    return np.clip(np.floor((STD_LUMA * scale + 50) / 100), 1, 255)


def jpeg_quality_from_tables(tables: dict[int, Any]) -> tuple[int, bool]:
    """(quality, exact) from PIL's ``Image.quantization`` (table 0 = luma, natural order)."""
    luma = np.asarray(list(tables[0]), dtype=np.float64)
    if luma.size != 64:
        raise ValueError(f"a JPEG luma table has 64 entries, not {luma.size}")
    errors = [float(np.abs(np.log(ijg_table(q)) - np.log(luma)).mean()) for q in range(1, 101)]
    best = int(np.argmin(errors)) + 1
    return best, bool(np.array_equal(ijg_table(best), luma))


NOISE_MAX_SIDE = 1536  # noise and block grid are measured on the central square this big


def _central_luma(rgb: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The BT.601 luma (float64) of the central :data:`NOISE_MAX_SIDE` square of an (H, W, 3)
    or (H, W) image, and that square's (x0, y0) in the image (memory and time stay small)."""
    x = np.asarray(rgb)
    h, w = x.shape[:2]
    y0, x0 = max(0, (h - NOISE_MAX_SIDE) // 2), max(0, (w - NOISE_MAX_SIDE) // 2)
    x = x[y0 : y0 + NOISE_MAX_SIDE, x0 : x0 + NOISE_MAX_SIDE].astype(np.float64)
    return (x @ np.array([0.299, 0.587, 0.114]) if x.ndim == 3 else x), x0, y0


def noise_sigma(rgb: np.ndarray) -> float:
    """Immerkær's fast noise estimate (grey levels) on the BT.601 luma of an (H, W, 3) image,
    over its smoother half (see the module docstring), on its central :data:`NOISE_MAX_SIDE`
    square for large stills (memory and time stay small)."""
    import cv2

    grey, _, _ = _central_luma(rgb)
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    resp = np.abs(cv2.filter2D(grey, -1, kernel)[1:-1, 1:-1])
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))
    gradient = gradient[1:-1, 1:-1]
    smooth = gradient <= np.median(gradient)  # edges and texture out (Tai & Yang 2008)
    return float(np.sqrt(np.pi / 2) * resp[smooth].mean() / 6.0)


def _boundary_contrast(grey: np.ndarray, axis: int) -> np.ndarray:
    """Per phase p (0-7): the mean step between pixels p and p+1 (mod 8) along `axis`, less
    the mean of the steps on either side, over the image's mean step. Texture and noise raise
    the three steps alike; a block edge raises only the one across it."""
    step = np.abs(np.diff(grey, axis=axis))
    if axis == 0:
        step = step.T
    excess = step[:, 1:-1] - 0.5 * (step[:, :-2] + step[:, 2:])  # column j: step j + 1
    n = excess.shape[1] // BLOCK * BLOCK
    per_phase = np.array([excess[:, p:n:BLOCK].mean() for p in range(BLOCK)])
    phases = (np.arange(BLOCK) + 1) % BLOCK  # the step each column of `per_phase` measures
    profile = np.empty(BLOCK)
    profile[phases] = per_phase
    return profile / (step.mean() + 1e-6)


def block_grid(rgb: np.ndarray) -> tuple[float, tuple[int, int] | None]:
    """(score, (x, y) offset or None): how much one 8-pixel boundary phase stands out from the
    other phases in both directions (the weaker one's lead over the runner-up phase), on the
    central :data:`NOISE_MAX_SIDE` square of the BT.601 luma; the grid's offset when the score
    reaches :data:`BLOCK_GRID_SCORE` (a block starts at x, y modulo 8)."""
    if min(np.shape(rgb)[:2]) < 4 * BLOCK:
        return 0.0, None
    grey, x0, y0 = _central_luma(rgb)
    leads, offsets = [], []
    for axis, origin in ((1, x0), (0, y0)):
        profile = _boundary_contrast(grey, axis)
        top, second = np.sort(profile)[-2:][::-1]
        leads.append(float(top - second))
        # the step after pixel p ends a block: blocks start at p + 1, in the full image's frame
        offsets.append(int((np.argmax(profile) + 1 + origin) % BLOCK))
    score = max(0.0, min(leads))
    return score, (offsets[0], offsets[1]) if score >= BLOCK_GRID_SCORE else None


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


def recommend(
    jpeg_quality: int | None,
    sigma: float,
    video: bool,
    block_offset: tuple[int, int] | None = None,
) -> tuple[str, str]:
    """("robust" | "psnr", the reason in plain words). `block_offset`: :func:`block_grid`'s
    finding, which counts for a file that records no lossy compression of its own."""
    reasons = []
    if video:
        reasons.append(
            "a video frame (always lossy: codec-compressed, or cut to a 256-colour dithered "
            "palette in a GIF)"
        )
    elif jpeg_quality is None and block_offset is not None:
        reasons.append(
            f"an {BLOCK}-pixel block grid in the pixels, so they were compressed (or "
            "pixelated) before this lossless file was saved"
        )
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
    if jpeg_quality is None:
        return "robust", (
            f"Robust variant recommended: {what}, no block grid found in the pixels, noise "
            f"about {sigma:.1f} grey levels, but a lossless file (a DVR export, a screenshot, "
            "a crop) does not say what happened to its pixels before it was saved, and pixels "
            "alone miss most earlier compression (a grid resized after it, video coding, "
            "small faces). The robust variant costs about 1 dB on a face that really is "
            "clean; the clean-trained one would sharpen hidden compression into false "
            "detail. Choose the clean-trained variant for a face known never to have been "
            "compressed."
        )
    return "psnr", (
        f"Clean-trained variant recommended: {what}, noise about {sigma:.1f} grey levels. "
        "If the image was compressed before it was saved this way, prefer the robust variant."
    )


def assess(rgb: np.ndarray, data: bytes | None = None, name: str = "") -> EvidenceQuality:
    """Assess decoded pixels `rgb` (H, W, 3) uint8, with the file's bytes when there are any
    (the quantisation tables are read from them) and its name (video suffixes)."""
    quality, exact, sampling = _jpeg_info(data) if data else (None, False, None)
    video = Path(name).suffix.lower() in VIDEO_SUFFIXES
    sigma = noise_sigma(rgb)
    blocking, offset = block_grid(rgb)
    variant, reason = recommend(quality, sigma, video, offset)
    return EvidenceQuality(
        quality,
        exact,
        sampling,
        round(sigma, 2),
        video,
        variant,
        reason,
        round(blocking, 3),
        offset,
    )


def assess_file(path: str | Path, rgb: np.ndarray | None = None) -> EvidenceQuality:
    """:func:`assess` for a file on disk (read-only; decodes it if `rgb` is not given)."""
    from PIL import Image

    path = Path(path)
    data = path.read_bytes()
    if rgb is None:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return assess(rgb, data, path.name)


def unknown_reason() -> str:
    """Why the robust variant is recommended when nothing is known about the evidence."""
    return (
        "Robust variant recommended: the evidence's compression and noise are unknown (pixels "
        "without a file). Clean-trained models would sharpen any compression and noise into "
        "false detail."
    )


def variant_model(variant: str, current: str, available: Callable[[str], bool]) -> str | None:
    """The model of `variant` ("robust" or "psnr") to use when the analyst has `current`: its
    twin of that variant (same paper) if `available`, else the first available one of that
    variant in ``engine.registry.DEFAULT_ORDER``, then in registry order; None if none is."""
    from engine import registry

    entry = registry.get(current)
    if entry.variant == variant and available(entry.id):
        return entry.id
    base = entry.twin or entry.id  # a robust or GAN entry names its clean-trained twin
    twins = [base] if variant == "psnr" else [registry.robust_twin(base)]
    candidates = [*twins, *registry.DEFAULT_ORDER, *registry.ids()]
    for model_id in candidates:
        candidate = registry.get(model_id) if model_id else None
        # an x1 restoration model is never a stand-in for an enlarging one (chosen by hand)
        if candidate and candidate.variant == variant and not candidate.restores:
            if available(model_id):
                return model_id
    return None


def model_choice(
    evidence: EvidenceQuality | None, chosen: str, available: Callable[[str], bool]
) -> dict[str, Any]:
    """{"recommended", "chosen", "variant", "reason"}: the model the evidence calls for, the one
    used, and why, in plain words (the provenance record's "model_choice"). `available(id)`
    says whether a model can run here (weights installed at the scale in use)."""
    from engine import registry

    if evidence is None:
        variant, reason = "robust", unknown_reason()
    else:
        variant, reason = evidence.recommended, evidence.reason
    recommended = variant_model(variant, chosen, available)
    if recommended is None:
        other = "psnr" if variant == "robust" else "robust"
        fallback = variant_model(other, chosen, available)
        if fallback is None:  # not even bicubic runs: the face is too large to enlarge
            recommended, note = _nothing_enlarges(variant, chosen)
            reason += note
        else:
            recommended = fallback
            words = {"robust": "robust", "psnr": "clean-trained"}
            reason += (
                f" No {words[variant]} model is installed at this scale, so "
                f"{registry.get(recommended).label} is the closest fit."
            )
    # pointing to x1 restore is advice, not an override: that scale is chosen by hand
    by_hand = registry.get(recommended).restores and not registry.get(chosen).restores
    if chosen != recommended and not by_hand:
        reason += (
            f" The analyst chose {registry.get(chosen).label} instead of the recommended "
            f"{registry.get(recommended).label}."
        )
    return {"recommended": recommended, "chosen": chosen, "variant": variant, "reason": reason}


def _nothing_enlarges(variant: str, chosen: str) -> tuple[str, str]:
    """(recommended model, sentence) for a face no model enlarges at the scale in use (128 px
    or more at Auto): damaged evidence is pointed to the x1 restoration model of the variant,
    clean evidence needs nothing (the chosen model stays, it just does not run)."""
    from engine import registry

    restore = next((e for e in registry.restoration_models() if e.variant == variant), None)
    if restore is None:
        return chosen, (
            " No model enlarges this face at this scale: it is shown at its recorded size."
        )
    return restore.id, (
        " No model enlarges this face at this scale (it needs clean-up, not enlargement): "
        f"{restore.label} at the scale x1 restore removes compression, noise and blur at the "
        "recorded size, enlarging nothing. Auto never picks it: choose it by hand."
    )
