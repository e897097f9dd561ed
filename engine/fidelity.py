"""Fidelity checks shown beside every enhanced face: does the output still agree with the evidence?

Super-resolution invents detail; these checks say where the invention contradicts what the
low-resolution (LR) evidence shows. Each returns a :class:`Check` with the value, the threshold,
"pass" / "warn" (or "unavailable") and one sentence a person can read in the app or in court.

(a) **Data consistency** -- the output shrunk back to the LR size with the project's degradation
    (:func:`engine.imaging.downscale`) must reproduce the LR input. PSNR below
    :data:`CONSISTENCY_MIN_DB` means the output shows something the evidence does not contain.
    Passing is necessary, not sufficient: many different faces shrink to the same pixels.
    For an **x1 restore** (output and input the same size, on the same pixel grid) there is
    nothing to shrink: both are low-passed with the same Gaussian (sigma
    :data:`RESTORE_LOWPASS_SIGMA` px) and compared at that size, so the compression blocking and
    noise a restoration is meant to remove (fine, high-frequency structure) do not count as
    inconsistency, while a changed shape, shade or feature still does.
(b) **Landmark drift** -- dlib's 68 landmarks found on the output versus the input face's
    landmarks in the same 128x128 frame, mean distance over the inter-ocular distance; above
    :data:`DRIFT_MAX` the model moved the face's features.
(c) **Agreement** -- dlib's 128-D face descriptor (ResNet) of every model's output and of the
    bicubic-enlarged input, all computed with the *same* landmarks (the input's) so only the
    pixels differ. A model's score is its median distance to the rest; above
    :func:`agreement_threshold` the models disagree about what this face looks like.

How the thresholds were chosen (60 CelebAMask-HQ faces, aligned to 128 px, LR made by
:func:`engine.faces.align` at 32 px (x4) and 16 px (x8); min / max over the faces. The models
were not trained yet, so outputs were simulated; re-measure on real outputs when they exist):

* consistency, PSNR dB (x4 / x8): the true HR face 54.6 / 56.0 minimum; HR plus Gaussian noise
  sigma 10: 39.4 / 42.3 min; bicubic enlargement of the LR (the blurriest faithful output):
  33.9 / 31.1 min; the HR shifted by 2 / 4 px: 22.7 / 20.4 max; another person's face:
  13.8 / 14.7 max. -> warn below **30 dB**: every faithful output passes, every misplaced or
  different face is flagged. A synthetic "hallucination" (bicubic LR plus another person's high
  frequencies) scores 30.9-35.9 / 27.4-34.2 dB: detail invented *consistently with* the
  evidence passes this check, as it must -- that is check (c)'s job and the report's warning.
* drift (fraction of eye distance): true HR 0.013-0.052, bicubic x4 at most 0.047, bicubic x8
  0.040-0.104 (blur makes landmarks uncertain), another person 0.048-0.322 (median 0.095) ->
  warn above **0.10**. Alignment pins eyes, nose and mouth, so drift catches changed geometry
  (jaw, brows, mouth shape) rather than identity.
* agreement (median descriptor distance to the other outputs + enlarged input; simulated zoo of
  bicubic, Lanczos, a soft HR and a noisy HR): x4 faithful outputs at most 0.573 (p95 0.54),
  hallucinated detail 0.44-0.81 (median 0.62), another person 0.66-1.05 -> **0.55** for x2,
  x3, x4 (not measured separately at x2/x3, where more evidence means smaller distances). At x8
  (16 px faces) faithful outputs reach 0.81 because dlib sees blurry and sharp versions of one
  face as far apart; another person 0.67-1.02, hallucinated 0.59-0.93 -> **0.75** (p95 of
  faithful 0.74): at x8 the check flags only gross disagreement. dlib's own line for "different
  people" is 0.6.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np

from engine import faces as facelib
from engine import imaging

CONSISTENCY_MIN_DB = 30.0
DRIFT_MAX = 0.10
AGREEMENT_MAX = {2: 0.55, 3: 0.55, 4: 0.55, 8: 0.75}
DLIB_SAME_PERSON = 0.6  # dlib's documented decision line for its face descriptor
RESTORE_LOWPASS_SIGMA = 1.5
"""x1 restore: the Gaussian low-pass (px) applied to output and input before they are compared.
At sigma 1.5 an 8-px JPEG block edge and pixel noise are mostly gone (noise of sigma 6.5 grey
levels falls to about 1.2), a feature the size of an eye (10+ px) is not."""
DIFF_GAIN = 4  # the difference image is |downscaled output - input| x 4, so 1 level in 64 shows

PASS, WARN, UNAVAILABLE = "pass", "warn", "unavailable"
REFERENCE_ID = "input (bicubic)"

_MEANING = {
    "consistency": (
        "Shrunk back to the input's size, the enhanced face should reproduce the evidence pixels; "
        "below {threshold:g} dB it shows something the evidence does not contain (passing does "
        "not prove the added detail is real)."
    ),
    "drift": (
        "How far the facial landmarks moved from where they are in the input, as a fraction of "
        "the distance between the eyes; above {threshold:g} the model changed the face's shape."
    ),
    "agreement": (
        "Face-recognition distance (dlib) from this output to the other models' outputs and the "
        "enlarged input; above {threshold:g} the models disagree about what this face looks "
        "like, so the identity shown is not settled by the evidence. {threshold:g} is the line "
        "measured for this scale on enhanced faces (0.55 up to x4, 0.75 at x8), not dlib's 0.6 "
        "for two photographs."
    ),
    "resolution": (
        "How many times the face was shrunk from the evidence before the model saw it; above "
        "{threshold:.2f} recorded detail was discarded and the model re-invented it, so the output "
        "shows less of the evidence than the recorded pixels do."
    ),
}
RESOLUTION_MAX = 1.0 / 0.9  # engine.resolution.TOLERANCE: a 10% shrink is within alignment noise


@dataclass(frozen=True)
class Check:
    """One fidelity check of one output."""

    name: str  # "consistency" | "drift" | "agreement" | "resolution"
    value: float | None  # None when the check could not run
    threshold: float
    status: str  # "pass" | "warn" | "unavailable"
    unit: str
    meaning: str
    detail: str = ""  # why unavailable, or extra numbers

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.value is not None:
            out["value"] = round(float(self.value), 4)
        return out


def _check(
    name: str, value: float | None, threshold: float, warn: bool, unit: str, detail: str = ""
) -> Check:
    status = UNAVAILABLE if value is None else (WARN if warn else PASS)
    meaning = _MEANING[name].format(threshold=threshold)
    return Check(name, value, threshold, status, unit, meaning, detail)


# --------------------------------------------------------------------------- (a) consistency


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 RGB images on [0, 255]; inf when identical."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def shrink_to(sr: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """``sr`` brought to ``lr``'s size with the project's degradation.

    :func:`engine.imaging.downscale` when the sizes divide (x2, x4, x8); the same antialiased
    bicubic resize otherwise (x3: 128 px -> 42 px).
    """
    h, w = lr.shape[:2]
    if sr.shape[0] % h == 0 and sr.shape[1] % w == 0 and sr.shape[0] // h == sr.shape[1] // w:
        return imaging.downscale(sr, sr.shape[0] // h)
    return imaging.resize(sr, w, h, "bicubic")


@dataclass(frozen=True)
class ConsistencyCheck(Check):
    """Data consistency plus the difference image (LR size, uint8 RGB, x :data:`DIFF_GAIN`)."""

    difference: np.ndarray | None = field(default=None, repr=False, compare=False)
    max_difference: int | None = None  # largest |difference| in grey levels (before the gain)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("difference", None)
        if self.value is not None and math.isinf(self.value):
            out["value"] = None
            out["detail"] = "identical to the input when shrunk back (infinite PSNR)"
        return out


def low_pass(rgb: np.ndarray, sigma: float = RESTORE_LOWPASS_SIGMA) -> np.ndarray:
    """The x1 consistency check's low-pass: a Gaussian of ``sigma`` px (reflected borders)."""
    import cv2

    return cv2.GaussianBlur(
        np.ascontiguousarray(rgb, dtype=np.uint8), (0, 0), sigma, borderType=cv2.BORDER_REFLECT
    )


def data_consistency(lr: np.ndarray, sr: np.ndarray) -> ConsistencyCheck:
    """(a) PSNR between the LR input and the output shrunk back to the LR size; for an x1
    restore (same size) between the two after the same low-pass (see the module)."""
    same_size = sr.shape == lr.shape
    if same_size:
        back, lr = low_pass(sr), low_pass(lr)
    else:
        back = shrink_to(sr, lr)
    value = psnr(back, lr)
    diff = np.abs(back.astype(np.int16) - lr.astype(np.int16))
    image = np.clip(diff * DIFF_GAIN, 0, 255).astype(np.uint8)
    detail = (
        f"x1 restore: output and input compared at the same size after a Gaussian low-pass "
        f"(sigma {RESTORE_LOWPASS_SIGMA:g} px), so removed compression blocking and noise do "
        "not count against it"
        if same_size
        else ""
    )
    base = _check(
        "consistency", value, CONSISTENCY_MIN_DB, value < CONSISTENCY_MIN_DB, "dB", detail
    )
    return ConsistencyCheck(
        **{k: getattr(base, k) for k in base.__dataclass_fields__},
        difference=image,
        max_difference=int(diff.max()),
    )


# --------------------------------------------------------------------------- (b) landmark drift


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres (mean of points 36-41 and 42-47)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def landmark_drift(input_landmarks: np.ndarray, output_landmarks: np.ndarray | None) -> Check:
    """(b) Mean landmark distance over the input's inter-ocular distance (same frame)."""
    if output_landmarks is None:
        return _check(
            "drift", None, DRIFT_MAX, False, "x eye distance", "no landmarks found on the output"
        )
    a = np.asarray(input_landmarks, dtype=np.float64)
    b = np.asarray(output_landmarks, dtype=np.float64)
    if a.shape != (68, 2) or b.shape != (68, 2):
        raise ValueError(f"expected two (68, 2) landmark arrays, got {a.shape} and {b.shape}")
    iod = inter_ocular(a)
    if iod <= 0:
        raise ValueError("the input landmarks put both eyes in one place")
    value = float(np.linalg.norm(a - b, axis=1).mean() / iod)
    return _check("drift", value, DRIFT_MAX, value > DRIFT_MAX, "x eye distance")


def output_landmarks(sr: np.ndarray) -> np.ndarray | None:
    """dlib landmarks of an output in the canonical frame, None if dlib places none."""
    try:
        return facelib.aligned_landmarks(sr)
    except facelib.FaceError:
        return None


# --------------------------------------------------------------------------- (c) agreement

_lock = threading.Lock()


@cache
def _recogniser():
    import dlib

    path = facelib.dlib_models_dir() / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        raise facelib.FaceError(f"dlib's face descriptor model is missing ({path})")
    return dlib.face_recognition_model_v1(str(path))


def face_descriptor(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 128-D face descriptor of the face at ``landmarks`` (68 points, in ``rgb``'s pixels).

    The model is loaded once per process; calls are serialised (dlib is not documented as
    thread-safe). No jitter: the same pixels always give the same descriptor.
    """
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
    x0, y0 = np.floor(lm.min(0)).astype(int)
    x1, y1 = np.ceil(lm.max(0)).astype(int)
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), points)
    image = np.ascontiguousarray(rgb, dtype=np.uint8)
    with _lock:
        vector = _recogniser().compute_face_descriptor(image, shape, 0, 0.25)
    return np.asarray(vector, dtype=np.float64)


def agreement_threshold(scale: int) -> float:
    """The agreement line for ``scale`` (the closest measured scale at or above it)."""
    for known in sorted(AGREEMENT_MAX):
        if scale <= known:
            return AGREEMENT_MAX[known]
    return AGREEMENT_MAX[max(AGREEMENT_MAX)]


def enlarged_input(lr: np.ndarray, size: int = facelib.HR_SIZE) -> np.ndarray:
    """The LR input bicubic-enlarged to the output size: the reference with no invented detail."""
    return imaging.resize(lr, size, size, "bicubic")


def agreement(
    lr: np.ndarray, outputs: dict[str, np.ndarray], landmarks: np.ndarray, scale: int
) -> tuple[dict[str, Check], list[str], list[list[float]]]:
    """(c) Each output's median descriptor distance to the others and the enlarged input.

    Returns the checks per model, the labels of the matrix (:data:`REFERENCE_ID` first) and the
    symmetric pairwise distance matrix. The enlarged input joins the pool once, unless an
    output is pixel-identical to it (the bicubic baseline), which would count it twice.
    """
    first = next(iter(outputs.values()))
    # x1 restore: the reference is the recorded crop itself (nothing to enlarge)
    reference = lr if first.shape == lr.shape else enlarged_input(lr, first.shape[0])
    ids = list(outputs)
    labels = [REFERENCE_ID, *ids]
    vectors = [face_descriptor(reference, landmarks)]
    vectors += [face_descriptor(outputs[m], landmarks) for m in ids]
    n = len(vectors)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = float(np.linalg.norm(vectors[i] - vectors[j]))
    duplicate = any(np.array_equal(outputs[m], reference) for m in ids)
    threshold = agreement_threshold(scale)
    checks = {}
    for k, model_id in enumerate(ids, start=1):
        pool = [j for j in range(n) if j != k and not (j == 0 and duplicate)]
        if not pool:  # e.g. bicubic alone: nothing independent to agree with
            checks[model_id] = _check(
                "agreement",
                None,
                threshold,
                False,
                "",
                "nothing to compare with: this output is the enlarged input itself; "
                "compare it with other models",
            )
            continue
        value = float(np.median(matrix[k, pool]))
        detail = f"distance to the enlarged input {matrix[k, 0]:.3f}"
        checks[model_id] = _check("agreement", value, threshold, value > threshold, "", detail)
    return checks, labels, np.round(matrix, 4).tolist()


# --------------------------------------------------------------------------- (d) resolution


def resolution_check(evidence_shrink: float) -> Check:
    """(d) Did the model see the face at the evidence's resolution? (see engine.resolution)"""
    from engine.resolution import times

    shrink = float(evidence_shrink)
    warn = shrink > RESOLUTION_MAX + 1e-9
    detail = (
        f"the model saw the face shrunk {times(shrink)} from the evidence"
        if warn
        else "the model saw every recorded pixel of the face (no shrinking)"
    )
    return _check("resolution", shrink, RESOLUTION_MAX, warn, "x", detail)


# --------------------------------------------------------------------------- all together


@dataclass(frozen=True)
class ModelFidelity:
    """The three checks of one model's output."""

    model_id: str
    consistency: ConsistencyCheck
    drift: Check
    agreement: Check
    resolution: Check | None = None  # None when the caller did not say how the face was sized

    @property
    def checks(self) -> tuple[Check, ...]:
        base = (self.consistency, self.drift, self.agreement)
        return base if self.resolution is None else (*base, self.resolution)

    @property
    def flagged(self) -> bool:
        """True if any check warns."""
        return any(c.status == WARN for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "flagged": self.flagged,
            "consistency": self.consistency.to_dict(),
            "drift": self.drift.to_dict(),
            "agreement": self.agreement.to_dict(),
        } | ({} if self.resolution is None else {"resolution": self.resolution.to_dict()})


@dataclass(frozen=True)
class FidelityReport:
    """Checks for every model's output of one face; ``to_dict()`` is JSON-serialisable."""

    scale: int
    models: dict[str, ModelFidelity]
    labels: list[str]  # row/column names of ``distances``
    distances: list[list[float]]  # pairwise descriptor distances

    def model(self, model_id: str) -> ModelFidelity:
        return self.models[model_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "thresholds": {
                "consistency_min_db": CONSISTENCY_MIN_DB,
                "drift_max": DRIFT_MAX,
                "agreement_max": agreement_threshold(self.scale),
            },
            "models": {k: v.to_dict() for k, v in self.models.items()},
            "distance_labels": list(self.labels),
            "distances": [list(row) for row in self.distances],
        }


def check_all(
    lr: np.ndarray,
    outputs: dict[str, np.ndarray],
    input_landmarks: np.ndarray,
    output_landmarks_by_model: dict[str, np.ndarray | None] | None = None,
    evidence_shrink: dict[str, float] | None = None,
    lrs: dict[str, np.ndarray] | None = None,
) -> FidelityReport:
    """Run the three checks on every output of one face.

    ``lr`` is the aligned LR face the models saw, ``outputs`` maps model id -> (128, 128, 3) uint8
    output, ``input_landmarks`` the input face's 68 landmarks in the output's frame
    (:attr:`engine.enhance.Result.input_landmarks`). Landmarks already found on the outputs
    (:attr:`engine.enhance.Result.output_landmarks`) can be passed to save time; the others are
    found here. ``evidence_shrink`` (model id -> :attr:`engine.enhance.Result.evidence_shrink`)
    adds the resolution check for those models. ``lrs`` gives a model its own input where the
    models saw the face at different sizes (Auto: x4 for one, the native size for another);
    the data-consistency check then compares each output with what that model saw.
    """
    if not outputs:
        raise ValueError("no outputs to check")
    shape = next(iter(outputs.values())).shape
    restore = shape == lr.shape  # x1 restores: crops of recorded pixels, any aspect
    if any(o.shape != shape for o in outputs.values()) or not (
        restore or (len(shape) == 3 and shape[0] == shape[1] and shape[2] == 3)
    ):
        raise ValueError("all outputs must be square RGB images of one size (or x1 restores)")
    scale = 1 if restore else max(1, round(shape[0] / lr.shape[0]))
    given = output_landmarks_by_model or {}
    drift = {}
    for model_id, sr in outputs.items():
        found = given[model_id] if model_id in given else output_landmarks(sr)
        drift[model_id] = landmark_drift(input_landmarks, found)
    agree, labels, matrix = agreement(lr, outputs, input_landmarks, scale)
    shrink = evidence_shrink or {}
    models = {
        m: ModelFidelity(
            m,
            data_consistency((lrs or {}).get(m, lr), sr),
            drift[m],
            agree[m],
            resolution_check(shrink[m]) if m in shrink else None,
        )
        for m, sr in outputs.items()
    }
    return FidelityReport(scale=scale, models=models, labels=labels, distances=matrix)
