"""Faces: detection, 68 landmarks, alignment to one canonical frame, and paste-back.

Every face the project touches — in the app, in training data, in the quality benchmark —
goes through :func:`align`, so a model never sees a face framed differently from how it
was trained. The canonical frame is a similarity transform (rotation, uniform scale,
translation: no shear, so the face's proportions are kept) that puts the eye centres,
the nose tip and the mouth corners as close as possible (least squares) to fixed template
positions. The template frames the whole face with little background, like the aligned
crops of the common face super-resolution datasets (CelebA, Helen): forehead to chin fills
about 80% of the height.

dlib's models come from the ``face-recognition-models`` package and are loaded lazily, once
per process, behind a lock (dlib's detectors are not documented as thread-safe).
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from engine import imaging
from engine.registry import HR_SIZE

# Template in unit coordinates (0..1 spans the crop's edges): eye centres, nose tip, mouth
# corners, as they appear in the image (the subject's right eye is on the image's left).
TEMPLATE_UNIT = np.array(
    [
        [0.3670, 0.4050],  # eye on the image's left (landmarks 36-41)
        [0.6330, 0.4050],  # eye on the image's right (landmarks 42-47)
        [0.5000, 0.5570],  # nose tip (landmark 30)
        [0.3900, 0.6850],  # mouth corner, image left (landmark 48)
        [0.6100, 0.6850],  # mouth corner, image right (landmark 54)
    ],
    dtype=np.float64,
)

# The box, in unit coordinates of the canonical frame, that dlib's HOG detector draws around an
# aligned face (mean over 57 aligned CelebAMask-HQ and UTKFace faces, std about 0.04). The 68-point predictor was trained on such
# boxes, so landmarks of an already-aligned face are found from this fixed box: no detection
# needed, and every model's output is landmarked from the same box.
ALIGNED_BOX_UNIT = (0.192, 0.232, 0.790, 0.830)

# Detection limits: upsampling finds small faces (HOG's window is 80 px: a 24 px face needs 4x),
# but costs time with the square of the factor, so it is capped by the upsampled image's size.
MAX_UPSAMPLED_PIXELS = 12_000_000
MAX_UPSAMPLE = 3
DEFAULT_MIN_SCORE = {"hog": 0.15, "cnn": 0.3}

# Paste-back refuses to build an output larger than this (e.g. x8 of a 4K still).
MAX_PASTE_PIXELS = 150_000_000


class FaceError(ValueError):
    """A face could not be found, landmarked, aligned or pasted back; the message says why."""


@dataclass(frozen=True)
class Face:
    """One face in a still. Coordinates are in the still's pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # detector confidence (HOG margin or MMOD confidence); NaN for a hand-drawn box
    landmarks: np.ndarray  # (68, 2) float32 x, y in dlib's 68-point order
    manual: bool = False
    # A hand-drawn face: every box the analyst drew or adjusted, in order (the landmarks were
    # fitted in the last one, made square), and what looked implausible about the fit.
    drawn_boxes: tuple[tuple[float, float, float, float], ...] = ()
    fit_warnings: tuple[str, ...] = ()

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def native_frame_px(self) -> float:
        """Side, in the still's pixels, of the canonical 128-px frame placed on this face: how
        many recorded pixels span what a model's 128-px output shows."""
        zoom = math.sqrt(abs(float(np.linalg.det(alignment_matrix(self, HR_SIZE)[:, :2]))))
        return HR_SIZE / zoom

    @property
    def interocular_px(self) -> float:
        """Distance between the eye centres in the still's pixels."""
        points = five_points(self.landmarks)
        return float(np.linalg.norm(points[0] - points[1]))


@dataclass(frozen=True)
class AlignedFace:
    """A face resampled into the canonical frame."""

    pixels: np.ndarray  # (size, size, 3) uint8
    matrix: np.ndarray  # (2, 3) float64 affine: still (x, y) -> aligned (u, v), pixel centres
    size: int
    valid: np.ndarray  # (size, size) bool: False where the crop lies outside the still (padded)

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


# --------------------------------------------------------------------------- dlib models


def dlib_models_dir() -> Path:
    """The folder holding dlib's model files (from the face-recognition-models package).

    ``import face_recognition_models`` fails under new setuptools (it imports pkg_resources),
    so the package is located without importing it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FaceError("dlib's face models are not installed (package face-recognition-models)")
    return Path(spec.origin).parent / "models"


_lock = threading.Lock()


@cache
def _hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@cache
def _cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(str(dlib_models_dir() / "mmod_human_face_detector.dat"))


@cache
def _predictor():
    import dlib

    return dlib.shape_predictor(str(dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"))


def load_models() -> None:
    """Load the detector and the landmark predictor now (e.g. in a background thread)."""
    with _lock:
        _hog_detector()
        _predictor()


# --------------------------------------------------------------------------- detection


def auto_upsample(width: int, height: int) -> int:
    """The largest upsampling (0..3, each step doubles the side) that keeps detection affordable."""
    n = 0
    while n < MAX_UPSAMPLE and width * height * 4 ** (n + 1) <= MAX_UPSAMPLED_PIXELS:
        n += 1
    return n


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise FaceError(f"expected an RGB uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def detect(
    rgb: np.ndarray,
    method: str = "hog",
    min_score: float | None = None,
    upsample: int | None = None,
) -> list[Face]:
    """Find faces with dlib and landmark each; sorted left to right.

    ``method`` is "hog" (fast, frontal faces) or "cnn" (dlib's MMOD detector: slower, finds
    harder faces). ``upsample`` defaults to :func:`auto_upsample` so that small faces (down to
    about 20 px wide in a 640x480 still) are found. Detections scoring below ``min_score`` are
    dropped as too weak.
    """
    import dlib

    rgb = _check_rgb(rgb)
    if method not in DEFAULT_MIN_SCORE:
        raise ValueError(f"unknown detector {method!r}; use 'hog' or 'cnn'")
    if min_score is None:
        min_score = DEFAULT_MIN_SCORE[method]
    if upsample is None:
        upsample = auto_upsample(rgb.shape[1], rgb.shape[0])
        if method == "cnn":  # the CNN's window is smaller (about 40 px) and it is far slower
            upsample = min(upsample, 1)
    found: list[tuple[dlib.rectangle, float]] = []
    with _lock:
        if method == "hog":
            rects, scores, _ = _hog_detector().run(rgb, upsample, min(min_score, 0.0))
            found = list(zip(rects, scores, strict=True))
        else:
            found = [(d.rect, d.confidence) for d in _cnn_detector()(rgb, upsample)]
    faces = []
    for rect, score in found:
        if score < min_score:
            continue
        box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
        faces.append(Face(box=box, score=float(score), landmarks=landmarks_in_box(rgb, box)))
    faces.sort(key=lambda f: (f.box[0], f.box[1]))
    return faces


DETECTORS = ("auto", "hog", "cnn")
"""The detector settings offered to the analyst: "auto" (the app's default) is HOG, then the
CNN when HOG finds no face."""


def detect_with(
    rgb: np.ndarray, detector: str, before_cnn_fallback: Callable[[], None] | None = None
) -> tuple[list[Face], str]:
    """Faces found with the setting ``detector`` (one of :data:`DETECTORS`) and the detector
    that found them ("hog" or "cnn"; for "auto", "cnn" means HOG found none).
    ``before_cnn_fallback`` is called when "auto" turns to the CNN (the app shows progress and
    checks for Cancel there)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; use {', '.join(DETECTORS)}")
    first = "cnn" if detector == "cnn" else "hog"
    found = detect(rgb, method=first)
    if found or detector != "auto":
        return found, first
    if before_cnn_fallback is not None:
        before_cnn_fallback()
    return detect(rgb, method="cnn"), "cnn"


def landmarks_in_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 68 landmarks of the face inside ``box`` (x0, y0, x1, y1): (68, 2) float32."""
    import dlib

    rgb = _check_rgb(rgb)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise FaceError(f"the face box {box} is too small to place landmarks")
    with _lock:
        shape = _predictor()(rgb, dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def face_from_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> Face:
    """A face from a box drawn by hand (when detection fails): landmarked and aligned like any other.

    A loose hand-drawn box is tightened to the proportions of dlib's detector boxes (square,
    centred) because the landmark predictor was trained on those. The predictor places 68
    points in any box, face or not: :func:`fit_warnings` says in words when the fit looks
    implausible, and the face carries those words (and the box as drawn) into its provenance.
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((max(0.0, x0), min(float(w), x1)))
    y0, y1 = sorted((max(0.0, y0), min(float(h), y1)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise FaceError("the box drawn around the face is too small (less than 4 pixels)")
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    square = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    drawn = (x0, y0, x1, y1)
    face = Face(
        box=square,
        score=float("nan"),
        landmarks=landmarks_in_box(rgb, square),
        manual=True,
        drawn_boxes=(drawn,),
    )
    return replace(face, fit_warnings=fit_warnings(rgb, face, drawn))


# Plausibility of a landmark fit in a hand-drawn box (measured on 55 UTKFace and CelebAMask-HQ
# faces: dlib's own boxes never trip FIT_UNSTABLE, boxes shifted by 40% of the face trip it 48
# and 53 times out of 55).
FIT_MIN_EYE_SPAN = 0.2  # eye distance / the box's longer side (about 0.4 on a framed face)
FIT_OUTSIDE_MARGIN = 0.15  # of the box's longer side: the chin and jaw often pass the box
FIT_MAX_OUTSIDE = 8  # landmarks beyond that margin
FIT_UNSTABLE = 0.1  # mean landmark move, in eye distances, when fitted again from the face


def implied_box(face: Face) -> tuple[float, float, float, float]:
    """The box dlib's detector would draw around the face the landmarks describe (the canonical
    frame's :data:`ALIGNED_BOX_UNIT` mapped back into the still)."""
    inverse = cv2.invertAffineTransform(alignment_matrix(face, HR_SIZE))
    u0, v0, u1, v1 = (c * HR_SIZE for c in ALIGNED_BOX_UNIT)
    corners = transform_points(np.array([[u0, v0], [u1, v0], [u0, v1], [u1, v1]]), inverse)
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def fit_warnings(
    rgb: np.ndarray, face: Face, box: tuple[float, float, float, float]
) -> tuple[str, ...]:
    """What looks implausible about ``face``'s landmarks in the hand-drawn ``box``, in plain
    words (empty when nothing does): eyes low in the box, eyes close together for the box,
    landmarks beyond the box, or landmarks that move when fitted again from the box the face
    they describe would have (they then follow no face: hair, background)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    longer = max(x1 - x0, y1 - y0)
    points = np.asarray(face.landmarks, dtype=np.float64)
    eyes = five_points(points)[:2]
    eye_span = float(np.linalg.norm(eyes[0] - eyes[1]))
    found = []
    if eyes[:, 1].mean() > (y0 + y1) / 2:
        found.append(
            "The eyes were placed in the lower half of the box: it probably starts above the "
            "face (hair, forehead). Move its top edge down to the eyebrows."
        )
    if eye_span < FIT_MIN_EYE_SPAN * longer:
        found.append(
            f"The eyes are only {eye_span / longer:.0%} of the box apart (about 40% when the box "
            "frames a face): the box is much larger than the face. Tighten it from the eyebrows "
            "to the chin."
        )
    margin = FIT_OUTSIDE_MARGIN * longer
    outside = int(
        (
            (points[:, 0] < x0 - margin)
            | (points[:, 0] > x1 + margin)
            | (points[:, 1] < y0 - margin)
            | (points[:, 1] > y1 + margin)
        ).sum()
    )
    if outside > FIT_MAX_OUTSIDE:
        found.append(
            f"{outside} of the 68 landmarks fall outside the box: the box is smaller than the "
            "face, or the landmarks are not on a face."
        )
    if eye_span > 0:
        try:
            again = landmarks_in_box(rgb, implied_box(face))
        except FaceError:
            again = None
        moved = (
            float(np.linalg.norm(again - points, axis=1).mean()) / eye_span
            if again is not None
            else math.inf
        )
        if moved > FIT_UNSTABLE:
            found.append(
                "Fitted again from where they landed, the landmarks move by "
                f"{moved:.0%} of the eye distance: they probably do not follow a face (hair, "
                "background). Tighten the box around the face."
                if math.isfinite(moved)
                else "The landmarks describe a face too small to fit again: they probably do "
                "not follow a face. Tighten the box around the face."
            )
    return tuple(found)


# --------------------------------------------------------------------------- alignment


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners from the 68 landmarks: (5, 2) float64."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise FaceError(f"expected 68 landmarks, got an array of shape {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def template_points(size: int) -> np.ndarray:
    """The template's five points in pixel coordinates of a ``size`` x ``size`` crop."""
    return TEMPLATE_UNIT * size - 0.5


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping src (N,2) onto dst (N,2): (2, 3).

    Closed form, no random sampling, so the same landmarks always give the same matrix.
    """
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    if var_src <= 0:
        raise FaceError("the landmarks are degenerate (all in one place)")
    scale = (s * d).sum() / var_src
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def alignment_matrix(face: Face, size: int) -> np.ndarray:
    """The (2, 3) still -> canonical-frame matrix for a ``size`` x ``size`` crop."""
    return similarity_matrix(five_points(face.landmarks), template_points(size))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _valid_mask(matrix: np.ndarray, size: int, width: int, height: int) -> np.ndarray:
    """True where the crop's pixel centre maps inside the still."""
    inverse = cv2.invertAffineTransform(matrix)
    v, u = np.mgrid[0:size, 0:size]
    grid = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)
    xy = transform_points(grid, inverse)
    inside = (
        (xy[:, 0] >= -0.5)
        & (xy[:, 0] <= width - 0.5)
        & (xy[:, 1] >= -0.5)
        & (xy[:, 1] <= height - 0.5)
    )
    return inside.reshape(size, size)


def align(rgb: np.ndarray, face: Face, size: int = HR_SIZE) -> AlignedFace:
    """Resample ``face`` into the canonical frame at ``size`` x ``size``.

    When the face is larger in the still than in the crop, it is warped at an integer multiple
    k of ``size`` first and then shrunk by k with :func:`engine.imaging.resize` (antialiased
    bicubic), so the crop does not alias and a small crop equals the project's LR degradation of
    a large one. Pixels outside the still are filled by replicating the border and marked False
    in ``valid``.
    """
    rgb = _check_rgb(rgb)
    if size < 4:
        raise ValueError(f"crop size {size} is too small")
    h, w = rgb.shape[:2]
    matrix = alignment_matrix(face, size)
    zoom = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    k = max(1, math.ceil(1.0 / zoom - 1e-6)) if zoom < 1 else 1
    k = min(k, 16)
    if k == 1:
        pixels = cv2.warpAffine(
            rgb, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
    else:
        big = alignment_matrix(face, size * k)
        large = cv2.warpAffine(
            rgb, big, (size * k, size * k), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        pixels = imaging.resize(large, size, size, "bicubic")
    pixels = np.ascontiguousarray(pixels)
    return AlignedFace(
        pixels=pixels, matrix=matrix, size=size, valid=_valid_mask(matrix, size, w, h)
    )


def aligned_landmarks(pixels: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of a face already in the canonical frame (any size), from a fixed box.

    Small crops are enlarged to 128 px first (bicubic) because the predictor needs some pixels.
    Returned coordinates are in ``pixels``' own frame: (68, 2) float32.
    """
    pixels = _check_rgb(pixels)
    size = pixels.shape[0]
    work, factor = pixels, 1.0
    if size < HR_SIZE:
        factor = HR_SIZE / size
        work = imaging.resize(pixels, HR_SIZE, HR_SIZE, "bicubic")
    side = work.shape[0]
    box = tuple(v * side for v in ALIGNED_BOX_UNIT)
    points = landmarks_in_box(work, box)
    return ((points + 0.5) / factor - 0.5).astype(np.float32)


# --------------------------------------------------------------------------- paste-back


def feather_mask(size: int, margin: float = 0.08) -> np.ndarray:
    """(size, size) float32 mask: 1 in the middle, falling smoothly to 0 at the crop's edges."""
    ramp = max(1.0, margin * size)
    idx = np.arange(size, dtype=np.float32) + 0.5
    edge = np.minimum(idx, size - idx)  # distance to the nearest edge, per axis
    axis = np.clip(edge / ramp, 0.0, 1.0)
    axis = axis * axis * (3 - 2 * axis)  # smoothstep: no visible seam
    return np.outer(axis, axis).astype(np.float32)


def paste_back(
    rgb: np.ndarray, aligned: AlignedFace, processed: np.ndarray, scale: int = 1
) -> np.ndarray:
    """The still enlarged by ``scale`` (bicubic) with ``processed`` warped back into the face.

    ``processed`` is a square image in the canonical frame of ``aligned`` (any side: the SR
    face is 128 px while the LR crop may be 16 or 32). It is blended in under a feathered mask
    so that no seam shows. Returns a new (H*scale, W*scale, 3) uint8 image; ``rgb`` is untouched.
    """
    rgb = _check_rgb(rgb)
    processed = _check_rgb(processed)
    h, w = rgb.shape[:2]
    out_w, out_h = w * scale, h * scale
    if out_w * out_h > MAX_PASTE_PIXELS:
        raise FaceError(
            f"the full image at x{scale} would be {out_w}x{out_h} pixels, too large to build; "
            "export the enhanced face alone"
        )
    if scale == 1:
        canvas = rgb.copy()
    else:
        canvas = imaging.upscale(rgb, scale, "bicubic")
    side = processed.shape[0]
    # Output pixel x' -> still x = (x' + 0.5) / scale - 0.5 -> aligned u = M x -> processed
    # p = (u + 0.5) * side / size - 0.5. Compose into one matrix from output to processed.
    to_still = np.array(
        [[1 / scale, 0, 0.5 / scale - 0.5], [0, 1 / scale, 0.5 / scale - 0.5], [0, 0, 1]]
    )
    m = np.vstack([aligned.matrix, [0, 0, 1]])
    r = side / aligned.size
    to_processed = np.array([[r, 0, 0.5 * r - 0.5], [0, r, 0.5 * r - 0.5], [0, 0, 1]])
    out_to_proc = (to_processed @ m @ to_still)[:2]
    # Only the face's bounding box in the output needs warping.
    corners = np.array(
        [[-0.5, -0.5], [side - 0.5, -0.5], [-0.5, side - 0.5], [side - 0.5, side - 0.5]]
    )
    out_pts = transform_points(corners, cv2.invertAffineTransform(out_to_proc))
    x0 = int(max(0, math.floor(out_pts[:, 0].min())))
    y0 = int(max(0, math.floor(out_pts[:, 1].min())))
    x1 = int(min(out_w, math.ceil(out_pts[:, 0].max()) + 1))
    y1 = int(min(out_h, math.ceil(out_pts[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return canvas
    shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]])
    roi_to_proc = (np.vstack([out_to_proc, [0, 0, 1]]) @ shift)[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    size_roi = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(
        processed, roi_to_proc, size_roi, flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    mask = cv2.warpAffine(
        feather_mask(side), roi_to_proc, size_roi, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    mask = np.clip(mask, 0.0, 1.0)[..., None]
    roi = canvas[y0:y1, x0:x1].astype(np.float32)
    blended = roi * (1 - mask) + face.astype(np.float32) * mask
    canvas[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return canvas


def paste_many(
    rgb: np.ndarray, scale: int, pairs: list[tuple[AlignedFace, np.ndarray]]
) -> np.ndarray:
    """The still enlarged by ``scale`` once, with every (aligned face, processed face) blended in.

    The same as chaining :func:`paste_back` per face, without enlarging the still per face.
    """
    rgb = _check_rgb(rgb)
    if not pairs:
        raise ValueError("no faces to paste")
    first, first_processed = pairs[0]
    canvas = paste_back(rgb, first, first_processed, scale=scale)
    # enlarged pixel x' -> still x = (x' + 0.5) / scale - 0.5 (pixel centres, as paste_back)
    to_still = np.array(
        [[1 / scale, 0, 0.5 / scale - 0.5], [0, 1 / scale, 0.5 / scale - 0.5], [0, 0, 1]]
    )
    for aligned, processed in pairs[1:]:
        matrix = (np.vstack([aligned.matrix, [0, 0, 1]]) @ to_still)[:2]
        moved = AlignedFace(
            pixels=aligned.pixels, matrix=matrix, size=aligned.size, valid=aligned.valid
        )
        canvas = paste_back(canvas, moved, processed, scale=1)
    return canvas
