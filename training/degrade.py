"""The degradation model: how a clean aligned HR face becomes the low-resolution evidence.

Why: every file shipped before issue 24 was trained on clean, antialiased-bicubic LR faces,
and on compressed, noisy or blurred input those models sharpen JPEG blocks and noise into
false detail. This module is the one place that says how real evidence is damaged; training
(``degrade: "mix"`` in a config) and the benchmark (``python -m training.evaluate --degrade``)
both use it.

The chain, in the order a camera applies it (every step optional; ``Params`` holds one draw):

1. **optical blur** of the HR face: a Gaussian of ``blur_sigma`` and a motion streak of
   ``motion_len`` at ``motion_angle`` degrees. Both are given in *LR pixels* (the camera's
   sensor pixels) and applied at the HR size (times the scale), so a blur means the same at
   x2, x4 and x8;
2. **the downscale**: ``engine.imaging.downscale`` (antialiased bicubic, the app's and the
   papers' protocol); none at scale 1 (restoration at the native size);
3. **sensor noise**, signal-dependent: luma sigma = sqrt(``noise_a`` * I + ``noise_b``^2) grey
   levels (I = the pixel's grey level, 0-255: shot noise plus read noise), the same luma noise
   added to R, G and B, plus independent per-channel (chroma) noise of ``chroma`` times that
   sigma. Then the camera's own processing, never in ``mix``: **noise reduction**
   (``denoise``: a bilateral filter; the ``nr_jpeg`` family only) and **sharpening**
   (``sharpen``: an unsharp mask; ``sharp_jpeg`` and ``mix_wide``);
4. **JPEG** with 4:2:0 chroma subsampling at ``jpeg_quality`` (libjpeg's scale, PIL), the face
   placed at ``jpeg_offset`` (dy, dx in 0..15) inside a mirror-padded frame, so the 8x8 / 16x16
   block grid does not line up with the face crop (in a real frame it never does);
5. **a second, codec-like pass** (``second``): another JPEG at ``second_quality`` on a different
   grid offset (a re-saved or re-exported still), or **H.264 intra** coding through PyAV /
   libx264 (yuv420p, CRF ``second_quality``, one I-frame; a frame grabbed from a recorder).

Evaluation families (``FAMILIES``; fixed parameters, only the noise pattern, the motion angle and
the grid offsets are drawn per face from a generator seeded by (family, face index, scale), so
every model sees the very same LR):

==============  ==========================================================================
``clean``       the antialiased bicubic downscale only (the benchmark so far)
``jpeg``        JPEG quality 40
``noise_jpeg``  noise a=0.3, b=2 (sigma ~6.5 grey levels at mid-grey), chroma 0.5; JPEG 50
``blur_jpeg``   Gaussian blur sigma 0.7 LR px; JPEG 50
``cctv``        blur sigma 0.5 + motion 1.5 LR px (random angle); noise a=0.2, b=2, chroma 0.5;
                JPEG 60; then H.264 intra at CRF 28
==============  ==========================================================================

The training mix (``"mix"``; :func:`draw_mix`, one draw per face from the trainer's generator):

- 15% **clean** (bicubic only), 10% **mild** (JPEG quality 80-95, sometimes a little noise):
  the 25% that keep the clean-input quality;
- 75% **damaged**: Gaussian blur with p 0.6, sigma U(0.2, 1.2) LR px; motion blur with p 0.2,
  length U(1, 3) LR px at a random angle; noise with p 0.6, a U(0, 0.6), b U(0, 4), chroma
  U(0, 1); JPEG with p 0.9, quality U(20, 90); a second pass with p 0.3, half JPEG quality
  U(30, 90) on another grid, half H.264 intra CRF U(20, 36).

Every family of ``FAMILIES`` lies inside the mix's ranges.

The wider mix (``"mix_wide"``; :func:`draw_mix_wide`): one ``mix`` draw, then, on every draw
that is not clean, in-camera **sharpening** (unsharp mask, sigma 1 LR px) with p 0.25, amount
U(0.3, 1.5), after the noise; and on draws with a JPEG, with p 0.15, the compression done at
U(0.6, 0.9) of the size and the result **enlarged back with bilinear interpolation** (a
recording exported at another size). It covers the first two unseen families below, so a file
trained on it is judged on ``nr_jpeg`` alone as unseen damage (``unseen_families``). The
shipped configs name ``"mix"`` and keep reproducing their files.

Families *outside* the mix (``UNSEEN``; ``--degrade unseen``): damage the training mix never
draws, to check that the robust files generalise past it rather than to a test set. They are
reported beside the others but are not part of issue 24's aims:

==================  ======================================================================
``sharp_jpeg``      mild noise (a=0.1, b=1.5, chroma 0.3), then in-camera sharpening (unsharp
                    mask, amount 1.0, sigma 1 LR px: the mix only ever blurs); JPEG 50
``upscaled_jpeg``   compressed at 3/4 of the size (JPEG 50), then enlarged to it with bilinear
                    interpolation (a CIF recording exported at D1 size: blocks of 10.7 px,
                    softened; the mix's block grids are always 8 px and sharp)
``nr_jpeg``         strong noise (a=0.4, b=3, chroma 0.6) flattened by in-camera noise
                    reduction (an edge-preserving bilateral filter, 30 grey levels, 1.5 LR
                    px: waxy skin, smeared fine texture; neither mix draws it); JPEG 45
==================  ======================================================================

``"surveillance"`` (training/data.py) is the older, simpler experiment kept for its tests; the
shipped robust files use ``"mix"``.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from engine import imaging

FAMILIES = ("clean", "jpeg", "noise_jpeg", "blur_jpeg", "cctv")
DEGRADED = FAMILIES[1:]
UNSEEN = ("sharp_jpeg", "upscaled_jpeg", "nr_jpeg")  # evaluation only: damage "mix" never makes
MIXES = ("mix", "mix_wide")
GRID = 16  # the JPEG MCU (4:2:0) and the H.264 macroblock: offsets are drawn in 0..GRID-1


@dataclass(frozen=True)
class Params:
    """One degradation (see the module docstring for each step); the defaults do nothing."""

    blur_sigma: float = 0.0  # Gaussian optical blur, LR pixels
    motion_len: float = 0.0  # motion streak length, LR pixels (0: none)
    motion_angle: float = 0.0  # degrees
    noise_a: float = 0.0  # signal-dependent variance per grey level (shot noise)
    noise_b: float = 0.0  # signal-independent sigma, grey levels (read noise)
    chroma: float = 0.0  # per-channel noise sigma relative to the luma sigma
    jpeg_quality: int = 0  # 0: no JPEG
    jpeg_offset: tuple[int, int] = (0, 0)
    second: str = ""  # "", "jpeg" or "h264"
    second_quality: int = 0  # JPEG quality or H.264 CRF
    second_offset: tuple[int, int] = (0, 0)
    denoise: float = 0.0  # in-camera noise reduction: bilateral filter, this many grey levels
    sharpen: float = 0.0  # unsharp-mask amount (sigma SHARPEN_SIGMA LR px); not in "mix"
    size_ratio: float = 1.0  # compressed at this times the LR size, then resized (bilinear) to it

    def describe(self) -> str:
        """A short text for logs and model cards."""
        parts = []
        if self.blur_sigma:
            parts.append(f"blur {self.blur_sigma:.2f}")
        if self.motion_len:
            parts.append(f"motion {self.motion_len:.1f}@{self.motion_angle:.0f}")
        if self.noise_a or self.noise_b:
            parts.append(f"noise a={self.noise_a:.2f} b={self.noise_b:.1f} c={self.chroma:.2f}")
        if self.denoise:
            parts.append(f"noise reduction {self.denoise:.0f}")
        if self.sharpen:
            parts.append(f"sharpen {self.sharpen:.1f}")
        if self.jpeg_quality:
            parts.append(f"jpeg q{self.jpeg_quality}")
        if self.second:
            parts.append(f"{self.second} {self.second_quality}")
        if self.size_ratio != 1.0:
            parts.append(f"at {self.size_ratio:.2f}x the size, then resized (bilinear)")
        return ", ".join(parts) or "clean"


# Fixed parameters of each evaluation family; per-face draws fill the random parts.
_FAMILY_PARAMS = {
    "clean": Params(),
    "jpeg": Params(jpeg_quality=40),
    "noise_jpeg": Params(noise_a=0.3, noise_b=2.0, chroma=0.5, jpeg_quality=50),
    "blur_jpeg": Params(blur_sigma=0.7, jpeg_quality=50),
    "cctv": Params(
        blur_sigma=0.5,
        motion_len=1.5,
        noise_a=0.2,
        noise_b=2.0,
        chroma=0.5,
        jpeg_quality=60,
        second="h264",
        second_quality=28,
    ),
    "sharp_jpeg": Params(noise_a=0.1, noise_b=1.5, chroma=0.3, sharpen=1.0, jpeg_quality=50),
    "upscaled_jpeg": Params(jpeg_quality=50, size_ratio=0.75),
    "nr_jpeg": Params(noise_a=0.4, noise_b=3.0, chroma=0.6, denoise=30.0, jpeg_quality=45),
}
SHARPEN_SIGMA = 1.0  # LR pixels
DENOISE_SIGMA = 1.5  # LR pixels: the spatial reach of the in-camera noise reduction


def _offset(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(0, GRID)), int(rng.integers(0, GRID))


def family_params(family: str, rng: np.random.Generator) -> Params:
    """The parameters of evaluation family `family`, its random parts drawn from `rng`."""
    if family not in _FAMILY_PARAMS:
        raise ValueError(f"unknown degradation family {family!r}; known: {', '.join(FAMILIES)}")
    p = _FAMILY_PARAMS[family]
    return replace(
        p,
        motion_angle=float(rng.uniform(0, 180)) if p.motion_len else 0.0,
        jpeg_offset=_offset(rng),
        second_offset=_offset(rng),
    )


def draw_mix(rng: np.random.Generator) -> Params:
    """One random degradation of the training mix (ranges in the module docstring)."""
    u = rng.random()
    if u < 0.15:
        return Params()
    if u < 0.25:  # mild: a good JPEG, sometimes a little noise
        noisy = rng.random() < 0.3
        return Params(
            noise_a=float(rng.uniform(0, 0.1)) if noisy else 0.0,
            noise_b=float(rng.uniform(0, 1.5)) if noisy else 0.0,
            chroma=float(rng.uniform(0, 0.5)) if noisy else 0.0,
            jpeg_quality=int(rng.integers(80, 96)),
            jpeg_offset=_offset(rng),
        )
    blur = float(rng.uniform(0.2, 1.2)) if rng.random() < 0.6 else 0.0
    motion = float(rng.uniform(1.0, 3.0)) if rng.random() < 0.2 else 0.0
    noisy = rng.random() < 0.6
    q = int(rng.integers(20, 91)) if rng.random() < 0.9 else 0
    second, second_q = "", 0
    if rng.random() < 0.3:
        if rng.random() < 0.5:
            second, second_q = "jpeg", int(rng.integers(30, 91))
        else:
            second, second_q = "h264", int(rng.integers(20, 37))
    return Params(
        blur_sigma=blur,
        motion_len=motion,
        motion_angle=float(rng.uniform(0, 180)),
        noise_a=float(rng.uniform(0, 0.6)) if noisy else 0.0,
        noise_b=float(rng.uniform(0, 4.0)) if noisy else 0.0,
        chroma=float(rng.uniform(0, 1.0)) if noisy else 0.0,
        jpeg_quality=q,
        jpeg_offset=_offset(rng),
        second=second,
        second_quality=second_q,
        second_offset=_offset(rng),
    )


def draw_mix_wide(rng: np.random.Generator) -> Params:
    """One draw of the wider mix: a ``mix`` draw plus, when damaged, in-camera sharpening and a
    recording at another size (ranges in the module docstring)."""
    p = draw_mix(rng)
    if p == Params():
        return p
    if rng.random() < 0.25:
        p = replace(p, sharpen=float(rng.uniform(0.3, 1.5)))
    if p.jpeg_quality and rng.random() < 0.15:
        p = replace(p, size_ratio=float(rng.uniform(0.6, 0.9)))
    return p


def unseen_families(mix: str) -> tuple[str, ...]:
    """The evaluation families whose damage a file trained on `mix` never saw."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; known: {', '.join(MIXES)}")
    return UNSEEN if mix == "mix" else ("nr_jpeg",)


# --------------------------------------------------------------------------- the steps


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised, antialiased line of `length` pixels at `angle` degrees (odd square)."""
    size = max(3, int(math.ceil(length)) | 1)
    k = np.zeros((size * 4, size * 4), np.float32)  # drawn 4x larger, then reduced: antialiased
    c = (size * 4 - 1) / 2
    dx = math.cos(math.radians(angle)) * length * 2
    dy = math.sin(math.radians(angle)) * length * 2
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 2, cv2.LINE_AA)
    k = cv2.resize(k, (size, size), interpolation=cv2.INTER_AREA)
    return k / max(float(k.sum()), 1e-8)


def blur(hr: np.ndarray, sigma_hr: float, motion_hr: float, angle: float) -> np.ndarray:
    """Gaussian then motion blur of a uint8 image (sizes in its own pixels)."""
    out = hr
    if sigma_hr > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigma_hr, borderType=cv2.BORDER_REFLECT)
    if motion_hr > 0:
        out = cv2.filter2D(out, -1, motion_kernel(motion_hr, angle), borderType=cv2.BORDER_REFLECT)
    return out


def sharpen(img: np.ndarray, amount: float) -> np.ndarray:
    """An in-camera unsharp mask: img + amount * (img - Gaussian(img, SHARPEN_SIGMA))."""
    x = img.astype(np.float32)
    soft = cv2.GaussianBlur(x, (0, 0), SHARPEN_SIGMA, borderType=cv2.BORDER_REFLECT)
    return np.clip(np.rint(x + amount * (x - soft)), 0, 255).astype(np.uint8)


def reduce_noise(img: np.ndarray, strength: float) -> np.ndarray:
    """In-camera noise reduction: an edge-preserving bilateral filter (`strength` grey levels,
    DENOISE_SIGMA px) that flattens noise and fine texture alike."""
    return cv2.bilateralFilter(img, 0, float(strength), DENOISE_SIGMA)


def add_noise(
    img: np.ndarray, a: float, b: float, chroma: float, rng: np.random.Generator
) -> np.ndarray:
    """Signal-dependent luma noise + chroma noise on a uint8 RGB image."""
    x = img.astype(np.float32)
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    sigma = np.sqrt(np.maximum(a * grey + b * b, 0.0))
    noise = rng.standard_normal(grey.shape).astype(np.float32) * sigma
    x += noise[..., None]
    if chroma > 0:
        x += rng.standard_normal(x.shape).astype(np.float32) * (chroma * sigma)[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _pad_to_grid(img: np.ndarray, offset: tuple[int, int]) -> tuple[np.ndarray, slice, slice]:
    """`img` placed at `offset` in a mirror-padded frame whose sides are multiples of GRID."""
    h, w = img.shape[:2]
    dy, dx = offset
    hh = -(-(h + dy) // GRID) * GRID
    ww = -(-(w + dx) // GRID) * GRID
    pad = ((dy, hh - h - dy), (dx, ww - w - dx), (0, 0))
    # mirror padding (like content continuing around the face); "symmetric" needs pads no
    # larger than the image, so a tiny image is edge-padded instead
    mode = "symmetric" if max(max(p) for p in pad) <= min(h, w) else "edge"
    out = np.pad(img, pad, mode=mode)
    return out, slice(dy, dy + h), slice(dx, dx + w)


def jpeg_bytes(img: np.ndarray, quality: int, offset: tuple[int, int] = (0, 0)) -> bytes:
    """The JPEG file (4:2:0, `quality`) of `img` placed at `offset` in a padded frame."""
    frame, _, _ = _pad_to_grid(img, offset)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=int(quality), subsampling="4:2:0")
    return buf.getvalue()


def jpeg(img: np.ndarray, quality: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """`img` through JPEG (4:2:0) at `quality`, on the block grid shifted by `offset`."""
    frame, ys, xs = _pad_to_grid(img, offset)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=int(quality), subsampling="4:2:0")
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(out[ys, xs])


def h264_intra(img: np.ndarray, crf: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """`img` through one H.264 I-frame (libx264 via PyAV, yuv420p, constant rate factor `crf`)."""
    import av

    frame, ys, xs = _pad_to_grid(img, offset)
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height = frame.shape[1], frame.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "crf": str(int(crf)),
            "preset": "medium",
            "keyint": "1",
            "threads": "1",
            "tune": "zerolatency",
        }
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in stream.encode(vf):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(io.BytesIO(buf.getvalue()), "r", format="h264") as src:
        decoded = next(src.decode(video=0)).to_ndarray(format="rgb24")
    return np.ascontiguousarray(decoded[ys, xs])


# --------------------------------------------------------------------------- the chain


def apply(hr: np.ndarray, scale: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """HR (H, W, 3) uint8 -> LR (H/scale, W/scale, 3) uint8 through the chain of `p`.

    An integer `scale` is the benchmark's and training's (LR side = HR side // scale); any other
    factor (a face recorded between the model frames, benchmarks/native_size.py) gives the
    rounded side, through the same antialiased bicubic."""
    if hr.dtype != np.uint8 or hr.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {hr.dtype} {hr.shape}")
    x = blur(np.ascontiguousarray(hr), p.blur_sigma * scale, p.motion_len * scale, p.motion_angle)
    if float(scale).is_integer():
        out_h, out_w = x.shape[0] // int(scale), x.shape[1] // int(scale)
    else:
        out_h, out_w = round(x.shape[0] / scale), round(x.shape[1] / scale)
    if p.size_ratio != 1.0:  # recorded at another size: the chain runs there
        lr = imaging.resize(x, _ratio_side(out_w, p), _ratio_side(out_h, p), "bicubic")
    elif scale == 1:
        lr = x.copy()
    else:  # the same antialiased bicubic as imaging.downscale, to the side computed above
        lr = imaging.resize(x, out_w, out_h, "bicubic")
    if p.noise_a > 0 or p.noise_b > 0:
        lr = add_noise(lr, p.noise_a, p.noise_b, p.chroma, rng)
    if p.denoise:
        lr = reduce_noise(lr, p.denoise)
    if p.sharpen:
        lr = sharpen(lr, p.sharpen)
    if p.jpeg_quality:
        lr = jpeg(lr, p.jpeg_quality, p.jpeg_offset)
    if p.second == "jpeg":
        lr = jpeg(lr, p.second_quality, p.second_offset)
    elif p.second == "h264":
        lr = h264_intra(lr, p.second_quality, p.second_offset)
    elif p.second:
        raise ValueError(f"unknown second pass {p.second!r}")
    if lr.shape[:2] != (out_h, out_w):  # a player's or exporter's plain bilinear resize
        lr = cv2.resize(lr, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return lr


def _ratio_side(n: int, p: Params) -> int:
    return max(8, round(n * p.size_ratio))


def family_rng(family: str, index: int, scale: int) -> np.random.Generator:
    """The generator of face `index` in `family` at `scale`: the same LR for every model."""
    return np.random.default_rng([zlib.crc32(family.encode()), int(index), int(scale)])


def family_native_lr(hr: np.ndarray, side: int, family: str, index: int) -> np.ndarray:
    """Face `index` of `family` recorded at `side` px (any size, e.g. between the model frames):
    the family's chain with its blur and motion in pixels of that recording. Seeded by the side,
    so every model and route sees the same evidence."""
    if family == "clean":
        return imaging.resize(hr, side, side, "bicubic")
    rng = np.random.default_rng([zlib.crc32(family.encode()), int(index), 1000 + int(side)])
    return apply(hr, hr.shape[0] / side, family_params(family, rng), rng)


def family_lr(hr: np.ndarray, scale: int, family: str, index: int) -> np.ndarray:
    """The benchmark's LR of face `index` (its position in the sorted test set) in `family`."""
    if family == "clean":
        return imaging.downscale(hr, scale) if scale > 1 else hr.copy()
    rng = family_rng(family, index, scale)
    return apply(hr, scale, family_params(family, rng), rng)


def degrade(hr: np.ndarray, scale: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Training: a family's fixed parameters (random parts from `rng`) or one mix draw."""
    if kind == "mix":
        return apply(hr, scale, draw_mix(rng), rng)
    if kind == "mix_wide":
        return apply(hr, scale, draw_mix_wide(rng), rng)
    return apply(hr, scale, family_params(kind, rng), rng)


def parse_families(spec: str) -> list[str]:
    """ "clean,jpeg" / "all" / "degraded" / "unseen" -> a checked list of family names ("all" is
    the families of the aims; the unseen ones are asked for by name or as "unseen")."""
    if spec == "all":
        return list(FAMILIES)
    if spec == "degraded":
        return list(DEGRADED)
    if spec == "unseen":
        return list(UNSEEN)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    known = FAMILIES + UNSEEN
    for name in names:
        if name not in known:
            raise ValueError(f"unknown degradation family {name!r}; known: {', '.join(known)}")
    return names


def describe_family(family: str, scale: int | None = None) -> str:
    """The fixed parameters of an evaluation family, in words (benchmark tables); at scale 1
    (restoration at the native size) there is no downscale."""
    if family == "clean":
        if scale == 1:
            return "no damage: the 128 px HR face itself (at x1 there is no downscale)"
        return "antialiased bicubic downscale only"
    p = _FAMILY_PARAMS[family]
    text = replace(p, motion_angle=0.0).describe()
    if p.motion_len:
        text = text.replace("@0", " at a random angle")
    if family in unseen_families("mix_wide"):
        text += " (outside the training mix)"
    elif family in UNSEEN:  # the later files' wider mix draws it; which file saw it: their cards
        text += " (outside the training mix `mix`; `mix_wide` draws it)"
    if scale == 1:
        text += ", at the face's own size (no downscale)"
    return text + "; block grids at a random offset per face"
