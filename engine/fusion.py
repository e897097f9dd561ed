"""Multi-frame fusion: several frames of one face registered to a reference and integrated.

Why: a single CCTV frame carries sensor noise and compression damage that a super-resolution
model, trained on clean images, enlarges along with the face. The frames around it recorded the
same face with independent noise, different compression and a different sub-pixel position.
Registering them onto one frame and averaging recovers what the camera recorded instead of
inventing it -- the method forensic video suites teach.

How (classical and deterministic, the same frames give the same bytes):

1. **Coarse fit.** Each frame's face is put into the canonical frame by its 68 landmarks, with
   the same 5-point similarity as every still (:func:`engine.faces.alignment_matrix`).
2. **Refinement.** At ``work_factor`` times the model's input size (128 px for x4), each frame's
   crop is matched to the reference's by OpenCV's ECC (``findTransformECC``, affine, fixed
   iteration count and stopping rule, single-threaded) over the face only (the landmark hull:
   the background does not move with the face). Landmarks on a 30 px face are a pixel off;
   ECC brings the fit to a small fraction of a pixel.
3. **Outliers.** A frame whose ECC correlation is low, whose refinement moved far from its
   landmarks, or whose residual (RMS grey difference to the reference after registration)
   stands out from the others is rejected and listed with the reason.
4. **Integration.** Each kept frame is resampled once (bicubic, antialiased when shrinking, as
   :func:`engine.faces.align`) straight from its own pixels into the canonical frame at the
   model's input size and the frames are averaged per pixel; with ``passes=2`` the frames are
   registered a second time, to that mean, which is less noisy than any single frame.
   Then (``method="reconstruct"``; ``"auto"``, the default, chooses it where the frames
   sample the face at least about as finely as the model's input) classical multi-frame
   super-resolution
   (:func:`reconstruct`): the face on a grid 4x finer whose pixel footprints, seen from every
   frame at its registered sub-pixel position, best reproduce all the frames' pixels (least
   squares, Huber-reweighted so that outlying pixels count less, small smoothness penalty).
   That estimate is "fusion alone"; shrunk by the project's degradation it is the model's input.
   The per-pixel means (``trimmed``: without each pixel's lowest and highest value when there
   are 5 frames or more, what ``auto`` uses for smaller faces; ``median``; ``mean``) are
   the conservative alternatives.

The fused face is an aligned LR face in the reference frame's canonical frame: it goes through
the same model, paste-back and records as any face. :func:`fuse` also returns, per frame, the
registration (matrix, ECC correlation, refinement, residual) for provenance and the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from engine import faces as facelib
from engine import imaging

#: "reconstruct": multi-frame super-resolution (least squares over every frame's pixels, see
#: :func:`reconstruct`), shrunk to the model's input; the others: per-pixel robust means.
#: "auto" (the default): "reconstruct" where the frames sample the face at least about as
#: finely as the model's input, else "trimmed" (see :data:`AUTO_MAX_ZOOM`).
METHODS = ("auto", "reconstruct", "trimmed", "median", "mean")
#: "auto" reconstructs only when the face is enlarged at most this much from the frames into
#: the model's input (the canonical crop spans at least 80% of the input's side in frame
#: pixels). Beyond it the frames under-sample the fine grid, and on real footage (the corridor
#: clip: faces of ~15 px in palette-dithered GIF frames, changing scale) the least-squares fit
#: showed a moire pattern the scene does not have; the per-pixel mean stayed clean. One real
#: clip chose this limit: it is a caution, not a measured optimum.
AUTO_MAX_ZOOM = 1.25
#: Reconstruction: fine grid (times the model's input side), Laplacian penalty, CG steps.
FINE_FACTOR = 4
SMOOTHNESS = 0.02
CG_ITERATIONS = 40
#: ECC stopping rule: at most this many iterations, or an increment in correlation below EPS.
ECC_ITERATIONS = 100
ECC_EPS = 1e-6
ECC_BLUR = 1  # ECC's own Gaussian pre-filter (1 = none: the crops are already bicubic-smooth)
#: Rejection thresholds.
MIN_CORRELATION = 0.75
MAX_REFINEMENT_PX = 2.0  # LR pixels: a refinement this large means the landmarks were wrong
RESIDUAL_MADS = 4.0  # residual above median + this many MADs (robust sigmas) is an outlier


class FusionError(ValueError):
    """Fusion could not be done (too few frames, no frame registered...); the message says why."""


@dataclass(frozen=True)
class FrameInput:
    """One frame given to :func:`fuse`: its pixels, its face, and what identifies it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    face: facelib.Face
    record: dict[str, Any] = field(default_factory=dict)  # e.g. engine.video.Frame.record()


@dataclass(frozen=True)
class Registration:
    """How one frame was registered to the reference."""

    position: int  # index into the frames given to fuse()
    matrix: np.ndarray  # (2, 3): frame pixels -> canonical frame at lr_size (like AlignedFace)
    correlation: float  # ECC correlation coefficient (1 = identical up to contrast)
    refinement_px: float  # mean move of the face's points from the landmark fit, LR pixels
    residual: float  # RMS grey difference to the reference after registration (0..255)
    rejected: str | None = None  # why the frame was left out, or None when it was used

    def record(self) -> dict[str, Any]:
        return {
            "matrix": [[round(float(v), 6) for v in row] for row in self.matrix],
            "ecc_correlation": round(self.correlation, 5),
            "refinement_lr_px": round(self.refinement_px, 4),
            "residual_rms": round(self.residual, 3),
            "used": self.rejected is None,
            "rejected": self.rejected,
        }


@dataclass
class Fused:
    """The fused face and how it was made."""

    lr: np.ndarray  # (lr_size, lr_size, 3) uint8: the fused aligned face (the model's input)
    aligned: facelib.AlignedFace  # the reference frame's alignment, with ``lr`` as pixels
    reference: int  # position (in the frames given) of the reference frame
    registrations: list[Registration]
    single: np.ndarray  # the reference frame alone, aligned the same way (for comparison)
    record: dict[str, Any]
    # "reconstruct": the multi-frame super-resolved face at lr_size * FINE_FACTOR (fusion
    # alone, no model); None for the per-pixel means
    fine: np.ndarray | None = None

    @property
    def used(self) -> list[int]:
        return [r.position for r in self.registrations if r.rejected is None]


@contextlib.contextmanager
def _single_threaded():
    """OpenCV on one thread while fusing: no reduction-order differences between runs."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _scale_matrix(matrix: np.ndarray, ratio: float) -> np.ndarray:
    """A (2, 3) map into a canonical frame of side s -> the same map for side s * ratio."""
    # u' = (u + 0.5) * ratio - 0.5 (pixel centres)
    s = np.array([[ratio, 0, 0.5 * ratio - 0.5], [0, ratio, 0.5 * ratio - 0.5], [0, 0, 1]])
    return (s @ np.vstack([matrix, [0, 0, 1]]))[:2]


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(2, 3) a after b."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample ``rgb`` into a ``size`` square canonical frame given by ``matrix`` (frame -> crop).

    Bicubic; when the face is larger in the frame than in the crop it is warped at an integer
    multiple of ``size`` and shrunk with the project's antialiased bicubic, as faces.align.
    """
    zoom = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    k = min(16, max(1, math.ceil(1.0 / zoom - 1e-6))) if zoom < 1 else 1
    if k == 1:
        return cv2.warpAffine(
            rgb, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
    large = cv2.warpAffine(
        rgb,
        _scale_matrix(matrix, k),
        (size * k, size * k),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return imaging.resize(large, size, size, "bicubic")


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def face_mask(landmarks: np.ndarray, size: int, grow: float = 0.06) -> np.ndarray:
    """(size, size) uint8 0/1: the hull of ``landmarks`` (canonical-frame coordinates), grown
    by ``grow`` x size so the face's outline is inside."""
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.rint(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    radius = max(1, int(round(grow * size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel)


def combine(stack: np.ndarray, method: str = "trimmed") -> np.ndarray:
    """Per-pixel robust combination of (N, H, W, C) float32 frames -> (H, W, C) uint8."""
    if method not in METHODS or method in ("reconstruct", "auto"):
        raise ValueError(f"unknown fusion method {method!r}; use one of {METHODS}")
    n = stack.shape[0]
    if method == "median":
        out = np.median(stack, axis=0)
    elif method == "trimmed" and n >= 5:
        ordered = np.sort(stack, axis=0)
        out = ordered[1:-1].mean(axis=0)
    else:
        out = stack.mean(axis=0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _ecc(template: np.ndarray, image: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Affine E with template(x) ~ image(E x); (correlation, E). Raises cv2.error on failure."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, ECC_ITERATIONS, ECC_EPS)
    warp_matrix = np.eye(2, 3, dtype=np.float32)
    cc, warp_matrix = cv2.findTransformECC(
        template, image, warp_matrix, cv2.MOTION_AFFINE, criteria, mask, ECC_BLUR
    )
    return float(cc), warp_matrix.astype(np.float64)


def _register(
    frames: Sequence[FrameInput],
    template: np.ndarray,
    mask: np.ndarray,
    coarse: list[np.ndarray],
    reference: int,
    work: int,
    factor: int,
    lr_size: int,
) -> list[Registration]:
    """Register every frame to ``template`` (grey, work x work); matrices -> lr canonical frame."""
    points = np.argwhere(mask > 0)[:, ::-1].astype(np.float64)  # (x, y) of the face's pixels
    points = points[:: max(1, len(points) // 400)]
    out = []
    for pos, frame in enumerate(frames):
        crop = _grey(warp(frame.rgb, coarse[pos], work))
        try:
            cc, e = _ecc(template, crop, mask)
        except cv2.error as exc:
            matrix = _scale_matrix(coarse[pos], lr_size / work)
            reason = f"registration did not converge ({str(exc).splitlines()[-1][:80]})"
            out.append(Registration(pos, matrix, 0.0, 0.0, float("nan"), reason))
            continue
        # template coords -> coarse crop coords is e; frame -> template = e^-1 o coarse
        full = _compose(cv2.invertAffineTransform(e), coarse[pos])
        moved = facelib.transform_points(points, e) - points
        refinement = float(np.linalg.norm(moved, axis=1).mean()) / factor
        registered = _grey(warp(frame.rgb, full, work))
        diff = (registered - template)[mask > 0]
        residual = float(np.sqrt(np.mean(diff * diff)))
        matrix = _scale_matrix(full, lr_size / work)
        reason = None
        if pos != reference:
            if cc < MIN_CORRELATION:
                reason = (
                    f"does not match the reference (ECC correlation {cc:.2f} < {MIN_CORRELATION})"
                )
            elif refinement > MAX_REFINEMENT_PX:
                reason = (
                    f"refinement moved the face {refinement:.1f} px from its landmarks "
                    f"(more than {MAX_REFINEMENT_PX}): landmarks or registration unreliable"
                )
        out.append(Registration(pos, matrix, cc, refinement, residual, reason))
    # Residual outliers among the frames still in: median + RESIDUAL_MADS robust sigmas.
    kept = [r for r in out if r.rejected is None and r.position != reference]
    if len(kept) >= 4:
        res = np.array([r.residual for r in kept])
        med = float(np.median(res))
        mad = 1.4826 * float(np.median(np.abs(res - med)))
        limit = med + RESIDUAL_MADS * max(mad, 0.5)
        out = [
            _reject(r, f"residual {r.residual:.1f} is an outlier (limit {limit:.1f})")
            if r.rejected is None and r.position != reference and r.residual > limit
            else r
            for r in out
        ]
    return out


def _reject(r: Registration, reason: str) -> Registration:
    return Registration(r.position, r.matrix, r.correlation, r.refinement_px, r.residual, reason)


def fuse(
    frames: Sequence[FrameInput],
    lr_size: int,
    reference: int = 0,
    method: str = "auto",
    work_factor: int = 4,
    passes: int = 2,
) -> Fused:
    """Register ``frames`` (each with its face) to ``frames[reference]`` and fuse them.

    Returns the fused face at ``lr_size`` (the model's input side, 128 // scale) in the
    reference's canonical frame. Deterministic: the same frames give the same bytes.
    """
    if not frames:
        raise FusionError("no frames to fuse")
    if not 0 <= reference < len(frames):
        raise FusionError(f"reference {reference} is not one of the {len(frames)} frames")
    if method not in METHODS:
        raise FusionError(f"unknown fusion method {method!r}; use one of {METHODS}")
    work = lr_size * work_factor
    with _single_threaded():
        coarse = [facelib.alignment_matrix(f.face, work) for f in frames]
        # how much the face is enlarged from the frames into the model's input (landmark fit)
        zoom = float(
            np.median([math.sqrt(abs(np.linalg.det(m[:, :2]))) * lr_size / work for m in coarse])
        )
        requested = method
        if method == "auto":
            method = "reconstruct" if zoom <= AUTO_MAX_ZOOM else "trimmed"
        ref = frames[reference]
        ref_work = warp(ref.rgb, coarse[reference], work)
        ref_lm = facelib.transform_points(ref.face.landmarks, coarse[reference])
        mask = face_mask(ref_lm, work)
        template = _grey(ref_work)
        registrations: list[Registration] = []
        fused = None
        for _ in range(max(1, passes)):
            registrations = _register(
                frames, template, mask, coarse, reference, work, work_factor, lr_size
            )
            used = [r for r in registrations if r.rejected is None]
            stack = np.stack(
                [warp(frames[r.position].rgb, r.matrix, lr_size).astype(np.float32) for r in used]
            )
            fused = combine(stack, method if method in ("trimmed", "median", "mean") else "mean")
            # next pass: register to the fused face (less noisy), at the working size
            template = _grey(imaging.resize(fused, work, work, "bicubic"))
        assert fused is not None
        fine = None
        if method == "reconstruct":
            side = lr_size * FINE_FACTOR
            estimate = reconstruct(
                frames,
                registrations,
                lr_size,
                FINE_FACTOR,
                start=imaging.resize(fused, side, side, "bicubic"),
                smoothness=SMOOTHNESS,
                iterations=CG_ITERATIONS,
            )
            fine = np.clip(np.rint(estimate), 0, 255).astype(np.uint8)
            fused = imaging.downscale(fine, FINE_FACTOR)
    ref_matrix = _scale_matrix(coarse[reference], lr_size / work)
    ref_reg = registrations[reference]
    # The fused face lives in the reference's refined frame (identity refinement for it, up to
    # the second pass's small correction): use the reference's final matrix for paste-back.
    h, w = ref.rgb.shape[:2]
    aligned = facelib.AlignedFace(
        pixels=fused,
        matrix=ref_reg.matrix,
        size=lr_size,
        valid=facelib._valid_mask(ref_reg.matrix, lr_size, w, h),
    )
    single = warp(ref.rgb, ref_reg.matrix, lr_size)
    used_n = sum(r.rejected is None for r in registrations)
    record = {
        "method": "multi-frame fusion (register to a reference frame, robust per-pixel mean)",
        "registration": (
            "5-point landmark similarity (engine.faces.alignment_matrix), then OpenCV "
            f"findTransformECC affine on the grey face (landmark hull) at {work}x{work}, "
            f"{ECC_ITERATIONS} iterations max, eps {ECC_EPS}, Gaussian {ECC_BLUR}"
        ),
        "fusion": {
            "reconstruct": (
                f"multi-frame super-resolution at {lr_size * FINE_FACTOR}x{lr_size * FINE_FACTOR}: "
                "least squares over every used frame's pixels (footprint = antialiased bicubic "
                f"of the frame's pixel size), Laplacian penalty {SMOOTHNESS}, {CG_ITERATIONS} "
                "conjugate-gradient steps per colour from the mean of the registered frames, "
                "then one Huber-reweighted solve (k = 1.345 robust sigmas); shrunk to "
                f"{lr_size}x{lr_size} by engine.imaging.downscale for the model"
            ),
            "trimmed": "per-pixel mean without the lowest and highest value (5+ frames)",
            "median": "per-pixel median",
            "mean": "per-pixel mean",
        }[method],
        "fusion_method": method,
        "method_requested": requested,
        "face_zoom_into_model_input": round(zoom, 4),
        "auto_max_zoom": AUTO_MAX_ZOOM,
        "passes": passes,
        "work_size": work,
        "lr_size": lr_size,
        "resampling": "bicubic (antialiased when shrinking), once per frame, from its own pixels",
        "rejection": {
            "min_ecc_correlation": MIN_CORRELATION,
            "max_refinement_lr_px": MAX_REFINEMENT_PX,
            "residual_outlier_mads": RESIDUAL_MADS,
        },
        "reference_position": reference,
        "reference_landmark_matrix": [[round(float(v), 6) for v in row] for row in ref_matrix],
        "frames_given": len(frames),
        "frames_used": used_n,
        "frames": [
            {**frames[r.position].record, "registration": r.record()} for r in registrations
        ],
        "fused_sha256": hashlib.sha256(fused.tobytes()).hexdigest(),
        "fine_sha256": hashlib.sha256(fine.tobytes()).hexdigest() if fine is not None else None,
    }
    return Fused(
        lr=fused,
        aligned=aligned,
        reference=reference,
        registrations=registrations,
        single=single,
        record=record,
        fine=fine,
    )


# --------------------------------------------------------------------------- reconstruction


def _cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic kernel (a = -0.5, as PIL's bicubic)."""
    t = np.abs(t)
    return np.where(
        t <= 1,
        (a + 2) * t**3 - (a + 3) * t**2 + 1,
        np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0),
    )


def psf_kernel(width: float) -> np.ndarray:
    """1-D pixel footprint at the fine grid: the antialiased bicubic of a ``width`` x shrink
    (the project's degradation, :func:`engine.imaging.downscale`), normalised to sum 1."""
    width = max(1.0, float(width))
    half = int(math.ceil(2 * width))
    t = np.arange(-half, half + 1, dtype=np.float64)
    k = _cubic(t / width)
    return (k / k.sum()).astype(np.float64)


class _Sampler:
    """Bilinear sampling of a (S, S) image at fixed points, and its exact adjoint (splatting)."""

    def __init__(self, points: np.ndarray, side: int) -> None:
        x, y = points[:, 0], points[:, 1]
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = x - x0, y - y0
        idx, wts = [], []
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                xi, yi = np.clip(x0 + dx, 0, side - 1), np.clip(y0 + dy, 0, side - 1)
                idx.append(yi * side + xi)
                wts.append(wx * wy)
        self.idx = np.stack(idx)  # (4, N)
        self.wts = np.stack(wts)
        self.side = side

    def forward(self, img: np.ndarray) -> np.ndarray:
        flat = img.reshape(-1)
        return (flat[self.idx] * self.wts).sum(0)

    def adjoint(self, values: np.ndarray) -> np.ndarray:
        out = np.bincount(
            self.idx.reshape(-1), (self.wts * values[None]).reshape(-1), self.side * self.side
        )
        return out.reshape(self.side, self.side)


def reconstruct(
    frames: Sequence[FrameInput],
    registrations: Sequence[Registration],
    lr_size: int,
    factor: int,
    start: np.ndarray,
    smoothness: float = 0.02,
    iterations: int = 40,
    robust: bool = True,
) -> np.ndarray:
    """Multi-frame super-resolution of the face at ``lr_size * factor`` (classical, linear).

    Finds the fine image X whose pixel footprints, seen from every used frame at its registered
    position, best reproduce that frame's pixels (least squares), with a small Laplacian penalty
    ``smoothness`` for what no frame constrains: ``min sum_k |S_k (h * X) - y_k|^2 + l |L X|^2``,
    h the footprint of one frame pixel on the fine grid (antialiased bicubic, as the project's
    degradation), S_k bilinear sampling at frame k's pixel centres. Solved per colour channel by
    a fixed number of conjugate-gradient steps from ``start`` (fine, (side, side, 3)): no
    randomness, the same frames give the same bytes. With ``robust``, a second solve weights
    each frame pixel by Huber's rule (k = 1.345 robust sigmas of the first solve's residuals),
    so a pixel that disagrees with the others (a compression block, a glint, a mis-registered
    edge) counts less. Returns (side, side, 3) float64.
    """
    side = lr_size * factor
    margin = 4 * factor
    big = side + 2 * margin
    samplers, values, kernels = [], [], []
    for r in registrations:
        if r.rejected is not None:
            continue
        rgb = frames[r.position].rgb
        fine = _scale_matrix(r.matrix, factor)  # frame px -> fine canonical px
        zoom = math.sqrt(abs(np.linalg.det(fine[:, :2])))
        kernels.append(zoom)
        h, w = rgb.shape[:2]
        inverse = cv2.invertAffineTransform(fine)
        corners = facelib.transform_points(
            np.array(
                [
                    [-margin / 2, -margin / 2],
                    [side + margin / 2] * 2,
                    [-margin / 2, side + margin / 2],
                    [side + margin / 2, -margin / 2],
                ]
            ),
            inverse,
        )
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w - 1, x1), min(h - 1, y1)
        ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
        pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        q = facelib.transform_points(pts, fine) + margin
        inside = (
            (q[:, 0] >= margin / 2)
            & (q[:, 0] <= big - 1 - margin / 2)
            & (q[:, 1] >= margin / 2)
            & (q[:, 1] <= big - 1 - margin / 2)
        )
        samplers.append(_Sampler(q[inside], big))
        values.append(rgb[ys.ravel()[inside], xs.ravel()[inside]].astype(np.float64))
    if not samplers:
        raise FusionError("no registered frame to reconstruct from")
    kernel = psf_kernel(float(np.median(kernels)))

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)

    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)

    def laplacian(img: np.ndarray) -> np.ndarray:
        return cv2.filter2D(img, cv2.CV_64F, lap, borderType=cv2.BORDER_CONSTANT)

    n_obs = sum(len(v) for v in values)
    weight = smoothness * n_obs / (big * big)  # penalty per fine pixel, relative to the data

    def solve(x: np.ndarray, c: int, weights: list[np.ndarray] | None) -> np.ndarray:
        ws = weights or [None] * len(samplers)

        def normal(img: np.ndarray) -> np.ndarray:
            b = blur(img)
            acc = np.zeros_like(img)
            for s, w in zip(samplers, ws, strict=True):
                f = s.forward(b)
                acc += s.adjoint(f if w is None else w * f)
            return blur(acc) + weight * laplacian(laplacian(img))

        rhs = np.zeros((big, big))
        for s, v, w in zip(samplers, values, ws, strict=True):
            rhs += s.adjoint(v[:, c] if w is None else w * v[:, c])
        rhs = blur(rhs)
        r = rhs - normal(x)
        p = r.copy()
        rr = float((r * r).sum())
        for _ in range(iterations):
            ap = normal(p)
            denom = float((p * ap).sum())
            if denom <= 0 or rr == 0:
                break
            alpha = rr / denom
            x = x + alpha * p
            r = r - alpha * ap
            rr_new = float((r * r).sum())
            p = r + (rr_new / rr) * p
            rr = rr_new
        return x

    start_big = cv2.copyMakeBorder(
        np.asarray(start, np.float64), margin, margin, margin, margin, cv2.BORDER_REPLICATE
    )
    out = np.zeros((side, side, 3))
    for c in range(3):
        x = solve(np.ascontiguousarray(start_big[..., c]), c, None)
        if robust:
            b = blur(x)
            residuals = [s.forward(b) - v[:, c] for s, v in zip(samplers, values, strict=True)]
            flat = np.concatenate(residuals)
            sigma = max(1.4826 * float(np.median(np.abs(flat - np.median(flat)))), 0.5)
            k = 1.345 * sigma
            weights = [np.minimum(1.0, k / np.maximum(np.abs(e), 1e-9)) for e in residuals]
            x = solve(x, c, weights)
        out[..., c] = x[margin : margin + side, margin : margin + side]
    return out
