"""How many pixels the evidence holds for a face, and which enlargement that allows.

Every model reads a face aligned into the canonical frame at ``128 / scale`` pixels (32 px at x4,
16 px at x8). A face that covers more pixels than that in the still would have to be *shrunk*
before the model sees it: evidence thrown away, then re-invented by the model. This module
measures each face's **native frame** -- the side, in the still's own pixels, of the canonical
128-px frame placed on the face (from the alignment matrix) -- and turns it into a
:class:`Plan` for one model:

* ``"scale"`` -- the model runs at a scale ``s`` whose input frame ``128 / s`` holds the native
  frame (less :data:`TOLERANCE`). Auto picks the largest such offered, installed scale.
* ``"native"`` -- the face falls between the model's largest input frame and 128 px (e.g. a
  75 px face: too big for x2's 64 px frame). The face is aligned at its own size (no shrinking)
  and the model runs on it there, where that was measured to beat plain bicubic enlargement:
  the interpolation baselines take any factor; a model that reads a pre-upsampled input (S1)
  runs at factors of at least :data:`MIN_UPSAMPLED_FACTOR`; the other networks are fully
  convolutional, so their smallest installed scale runs on the larger frame -- up to
  :data:`MAX_NATIVE_STRETCH` times the face size it was trained on, less for the files
  listed in :data:`NATIVE_STRETCH_LIMITS` (never for :data:`NEVER_NATIVE`) -- and its output (``s``
  times the native frame, larger than 128 px) is resampled to the 128-px canonical frame,
  still more pixels than the evidence. Beyond those limits the model is skipped for the face.
* ``"none"`` -- the face is already 128 px or more: no super-resolution applies. Enlarging it
  would only interpolate; the analyst views it at native resolution (or chooses x1 restore).
* ``"restore"`` -- scale 1, chosen by the analyst only (``--scale 1``, the GUI's "x1 restore"),
  never by Auto: a restoration model (:attr:`engine.registry.ModelEntry.restores`) cleans the
  face at its recorded size. It runs on the **axis-aligned crop of the recorded pixels** around
  the face (:func:`restore_box`: the canonical frame's box plus :data:`RESTORE_MARGIN`), with no
  alignment warp and no resampling at all, and its output lies on the same pixel grid: pasted
  back, it replaces exactly the crop's pixels.

A scale forced by the analyst that shrinks the face beyond the tolerance is refused unless
``allow_shrink`` is given; the shrink factor is then recorded (``evidence_shrink``) and the
fidelity panel's resolution check fails.

The measurements behind both limits are in ``benchmarks/native_size.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import faces as facelib
from engine.registry import HR_SIZE, RESTORE_SCALE

TOLERANCE = 0.10
"""A model's input frame may be this much smaller than the native frame (a 10% shrink is within
the alignment's own uncertainty) before the face counts as shrunk."""
MAX_NATIVE_STRETCH = 3.5
"""In "native" mode a fixed-scale network reads faces up to this many times larger (in pixels)
than its training faces: the largest stretch measured. benchmarks/native_size.md (20 held-out
faces, clean bicubic evidence): the x4 RAFSR and IDRN files on faces of 36-112 px (stretch
1.1-3.5) gain +2.8 to +4.1 dB over bicubic and 1.8 to 13 dB over shrinking the face into
their 32 px frame."""
NATIVE_STRETCH_LIMITS: dict[str, float] = {
    "s0_srresnet_att_robust": 2.0,
    "s3_prior_guided_robust": 2.5,
    "s4_idrn_robust": 2.0,
}
"""Files whose native-mode limit is below :data:`MAX_NATIVE_STRETCH`: the largest measured
stretch at which each still gains at least 0.3 dB over bicubic on the evidence it is meant for.
A robust file is meant for damaged evidence, and there its gain falls as the face grows:
benchmarks/native_size_degraded.md (20 held-out faces recorded at 32-112 px, then JPEG q40, or
blur, noise and JPEG like a CCTV frame): S4 robust x4 gains +0.46 / +0.91 dB (jpeg / cctv) at
stretch 2.0, +0.18 / +0.90 at 2.5 and -0.01 / +0.72 at 3.0; S0 robust +0.53 / +0.74 at 2.0 and
+0.04 / +0.47 at 2.5; S3 robust +0.34 / +0.60 at 2.5 and +0.05 / +0.11 at 3.0. S2 robust keeps
+1.0 / +1.1 dB up to 3.5 and takes the general limit. Their x2 files (S0, S4) never stretch
beyond 2 (a 127 px face on a 64 px frame)."""
NEVER_NATIVE = frozenset({"s1_mffcn_robust"})
"""Files that never run at a face's native size, only at their own frames: the robust MFFCN
file, whose later stages trained at x4 and x8 only, loses to bicubic on damaged evidence read
at any other factor (benchmarks/native_size_degraded.md: jpeg +0.24 dB at x3.6 (36 px), -0.93
at x2.7, -1.94 at x2.3; cctv +1.21, +0.63, -0.03)."""
MIN_UPSAMPLED_FACTOR = 1.8
"""In "native" mode a pre-upsampled model (S1) runs only at factors of at least this much.
Measured: MFFCN gains +0.8 to +1.5 dB over bicubic at factors 2-3.6, nothing at 1.78 (a 72 px
face: -0.03 dB), and loses 0.7 dB at 1.6 and 5.1 dB at 1.14: on nearly full-size faces it is
worse than bicubic. (Its x2 already covers faces up to 71 px, so at Auto it runs at its
offered scales only.)"""
RESTORE_MARGIN = 8
"""Pixels of recorded context added on every side of the face's frame box before an x1 restore
(one JPEG block), so the network's borders fall outside the face."""
RESTORE = "restore"
SHRINK_LIMIT = 1.0 / (1.0 - TOLERANCE)
"""An input frame this many times smaller than the native frame or more counts as shrinking."""
AUTO = "auto"


@dataclass(frozen=True)
class NativeSize:
    """What the still holds for one face, in the still's own pixels."""

    frame_px: float  # side of the canonical 128-px frame placed on the face
    interocular_px: float  # distance between the eye centres

    def to_dict(self) -> dict[str, float]:
        return {
            "native_frame_px": round(self.frame_px, 2),
            "interocular_px": round(self.interocular_px, 2),
        }


def measure(face: facelib.Face) -> NativeSize:
    """The native frame and the inter-ocular distance of ``face`` (detected or drawn)."""
    return NativeSize(frame_px=face.native_frame_px, interocular_px=face.interocular_px)


def input_frame(scale: int) -> int:
    """The side of the aligned face a model reads at ``scale`` (64, 42, 32, 16)."""
    return HR_SIZE // scale


def fits(native_px: float, scale: int, tolerance: float = TOLERANCE) -> bool:
    """Whether the model input frame at ``scale`` holds the native frame (less the tolerance)."""
    return input_frame(scale) >= native_px * (1.0 - tolerance)


class NotEnhanced(Exception):
    """Nothing was run for this face and model; ``plan`` says why in plain words."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan.message)
        self.plan = plan


class ShrinkRefused(NotEnhanced):
    """A forced scale would shrink the evidence; run again with ``allow_shrink`` to proceed."""


@dataclass(frozen=True)
class Plan:
    """How one model meets one face. ``mode`` is "scale", "native", "restore" or "none"; see
    the module. A "restore" plan has no ``lr_size``: the model reads the crop of the recorded
    pixels (:func:`restore_box`) as it is."""

    model_id: str
    mode: str
    requested: str  # "auto" or "x4" etc.
    native: NativeSize
    scale: int | None  # the network's factor (the weights file used); None when nothing runs
    lr_size: int | None  # side of the aligned face the model reads
    message: str = ""  # plain words for the analyst (always set when mode is "none")
    skipped: bool = False  # Auto found no file of this model for this face

    @property
    def runs(self) -> bool:
        return self.mode != "none"

    @property
    def factor(self) -> float | None:
        """The enlargement from the model's input to the 128-px output (1 for a restore)."""
        if self.mode == RESTORE:
            return 1.0
        return None if self.lr_size is None else HR_SIZE / self.lr_size

    @property
    def evidence_shrink(self) -> float:
        """How many times the face was shrunk from the evidence before the model saw it (>= 1)."""
        if self.lr_size is None:
            return 1.0
        return max(1.0, self.native.frame_px / self.lr_size)

    @property
    def shrinks(self) -> bool:
        return self.evidence_shrink > SHRINK_LIMIT + 1e-9

    def to_dict(self) -> dict[str, Any]:
        out = {
            "mode": self.mode,
            "requested_scale": self.requested,
            "scale_used": self.scale,
            "lr_size": self.lr_size,
            "factor": None if self.factor is None else round(self.factor, 4),
            "evidence_shrink": round(self.evidence_shrink, 4),
            "tolerance": TOLERANCE,
            "message": self.message,
        }
        return self.native.to_dict() | out


def times(value: float) -> str:
    """A shrink or enlargement factor in words: 2.4x, 1.16x."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "x"


def _px(value: float) -> str:
    return f"{value:.0f} px"


def plan(
    face_or_native: facelib.Face | NativeSize,
    entry: Any,
    requested: int | str,
    installed: Iterable[int] | None = None,
    allow_shrink: bool = False,
) -> Plan:
    """The :class:`Plan` for model ``entry`` (a registry entry) on one face.

    ``requested`` is "auto" or a scale. ``installed`` lists the scales the model can run at
    (weights present); default: every offered scale. Raises :class:`ShrinkRefused` for a
    forced scale that shrinks the face unless ``allow_shrink``; ValueError for a scale the model
    does not offer.
    """
    native = face_or_native if isinstance(face_or_native, NativeSize) else measure(face_or_native)
    n = native.frame_px
    offered = tuple(sorted(entry.scales))
    usable = sorted(set(offered) & set(installed if installed is not None else offered))

    if getattr(entry, "restores", False):
        if requested == AUTO:  # never chosen silently: the analyst asks for x1 restore
            return _nothing(
                entry,
                native,
                f"{entry.label} runs only when chosen: pick the scale x1 restore. Auto never "
                "picks it.",
                skipped=True,
            )
        if int(requested) != RESTORE_SCALE:
            raise ValueError(f"{entry.label} is offered at x1 restore only, not x{requested}")
        return Plan(
            entry.id,
            RESTORE,
            "x1",
            native,
            1,
            None,
            f"x1 restore: the recorded pixels around this {_px(n)} face are cleaned at their own "
            "size (no alignment, no resampling); nothing is enlarged.",
        )
    if requested != AUTO:
        scale = int(requested)
        if scale not in offered:
            raise ValueError(f"{entry.label} is offered at {_scales(offered)}, not x{scale}")
        chosen = Plan(entry.id, "scale", f"x{scale}", native, scale, input_frame(scale))
        if chosen.shrinks:
            message = (
                f"x{scale} shrinks this face {times(chosen.evidence_shrink)} from the evidence "
                f"(native {_px(n)}, model input {input_frame(scale)} px) before the model sees "
                "it: recorded detail is discarded and re-invented."
            )
            chosen = Plan(
                entry.id, "scale", f"x{scale}", native, scale, input_frame(scale), message
            )
            if not allow_shrink:
                raise ShrinkRefused(chosen)
        return chosen

    if n >= HR_SIZE * (1.0 - 1e-9):
        return _nothing(
            entry,
            native,
            f"This face is already {_px(n)}; enlarging it would only interpolate, so nothing is "
            "enlarged. View it at native resolution, or choose the scale x1 restore to clean "
            "compression blocking, noise and mild blur at its recorded size.",
        )
    fitting = [s for s in usable if fits(n, s)]
    if fitting:
        scale = max(fitting)
        return Plan(entry.id, "scale", AUTO, native, scale, input_frame(scale))
    if not usable:
        return _nothing(entry, native, f"{entry.label} has no installed weights.", skipped=True)
    smallest = min(usable)  # the largest input frame this model has
    lr_size = min(HR_SIZE - 1, max(input_frame(smallest), math.ceil(n - 1e-6)))
    if entry.is_baseline:
        fits_native, how = True, "interpolation takes any factor"
    elif entry.id in NEVER_NATIVE:
        fits_native, how = False, ""
    elif entry.input == "upsampled":
        fits_native = HR_SIZE / lr_size >= MIN_UPSAMPLED_FACTOR - 1e-9
        how = "it reads the face enlarged to 128 px"
    else:
        limit = NATIVE_STRETCH_LIMITS.get(entry.id, MAX_NATIVE_STRETCH)
        fits_native = lr_size <= input_frame(smallest) * limit
        how = f"its x{smallest} network runs on the face at that size"
    if fits_native:
        return Plan(
            entry.id,
            "native",
            AUTO,
            native,
            smallest,
            lr_size,
            f"Between the model frames: enhanced at its native {lr_size} px ({how}), "
            f"x{HR_SIZE / lr_size:.2f} to the 128 px frame.",
        )
    frames = ", ".join(f"{input_frame(s)} px (x{s})" for s in usable)
    stretch = lr_size / input_frame(smallest)
    return _nothing(
        entry,
        native,
        f"{entry.label} has no weights for a {_px(n)} face (its inputs: {frames}). Run at the "
        f"face's own size ({stretch:.1f}x the faces it was trained on) it was not measured to "
        "beat bicubic on such evidence, and shrinking the face would discard recorded pixels. "
        "Use a model with weights for this size, or Bicubic.",
        skipped=True,
    )


def _nothing(entry: Any, native: NativeSize, message: str, skipped: bool = False) -> Plan:
    """The plan of a face no model run is for, with the reason in plain words."""
    return Plan(entry.id, "none", AUTO, native, None, None, message, skipped=skipped)


def _scales(scales: Iterable[int]) -> str:
    return ", ".join(f"x{s}" for s in scales)


def evidence_crop(
    rgb: np.ndarray,
    face: facelib.Face | None = None,
    *,
    matrix: np.ndarray | None = None,
    size: int = HR_SIZE,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The recorded pixels around a face: the axis-aligned box that holds its canonical frame.

    The frame comes from ``face`` or from an alignment ``matrix`` for a ``size``-px frame (e.g.
    :attr:`engine.faces.AlignedFace.matrix`: every frame size covers the same region). No
    rotation, no resampling: the still's own pixels, clipped to the still. Returns the crop (a
    copy) and its box (x0, y0, x1, y1) in still pixels. Show it enlarged with nearest neighbour
    only, so every block is one recorded pixel.
    """
    if matrix is None:
        if face is None:
            raise ValueError("evidence_crop needs a face or an alignment matrix")
        matrix, size = facelib.alignment_matrix(face, HR_SIZE), HR_SIZE
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = frame_box(matrix, size, (w, h))
    if x1 <= x0 or y1 <= y0:
        raise facelib.FaceError("the face lies outside the still")
    return rgb[y0:y1, x0:x1].copy(), (x0, y0, x1, y1)


def restore_box(
    face: facelib.Face, still_size: tuple[int, int], margin: int = RESTORE_MARGIN
) -> tuple[int, int, int, int]:
    """The crop an x1 restore reads and replaces: the whole still pixels (x0, y0, x1, y1) of the
    face's canonical frame (:func:`frame_box`) plus ``margin`` on every side, clipped to the
    still (width, height). Axis-aligned, on the still's own grid: no pixel is resampled."""
    w, h = still_size
    x0, y0, x1, y1 = frame_box(facelib.alignment_matrix(face, HR_SIZE), HR_SIZE)
    box = (max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise facelib.FaceError("the face lies outside the still")
    return box


def frame_box(
    matrix: np.ndarray, size: int, still_size: tuple[int, int] | None = None
) -> tuple[int, int, int, int]:
    """The whole still pixels (x0, y0, x1, y1) whose centres the ``size``-px frame of ``matrix``
    covers, clipped to ``still_size`` (width, height) when given."""
    import cv2

    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    edge = size - 0.5
    corners = np.array([[-0.5, -0.5], [edge, -0.5], [-0.5, edge], [edge, edge]])
    xy = facelib.transform_points(corners, inverse)
    x0 = math.floor(xy[:, 0].min() + 0.5)
    y0 = math.floor(xy[:, 1].min() + 0.5)
    x1 = math.ceil(xy[:, 0].max() + 0.5)
    y1 = math.ceil(xy[:, 1].max() + 0.5)
    if still_size is not None:
        w, h = still_size
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return int(x0), int(y0), int(x1), int(y1)
