"""Fidelity checks shown beside every enhanced face: does the output still agree with the evidence?

Super-resolution invents detail; these checks say where the invention contradicts what the
low-resolution (LR) evidence shows. Each returns a :class:`Check` with the value, the threshold,
"pass" / "warn" (or "unavailable") and one sentence a person can read in the app or in court.

(a) **Data consistency** -- the output shrunk back to the LR size with the project's degradation
    (:func:`engine.imaging.downscale`) must reproduce the LR input, both compared after a
    Gaussian blur of :data:`CONSISTENCY_LOWPASS` LR pixel (issue 24: a model that removes JPEG
    blocking and noise must not be called inconsistent for it; before, the true face itself
    failed on 100% of JPEG-40 and CCTV-like inputs). PSNR below :func:`consistency_threshold`
    (:data:`CONSISTENCY_MIN_DB_CLEAN` for clean lossless evidence, :data:`CONSISTENCY_MIN_DB`
    for compressed, noisy, video or unknown evidence) means the output shows something the
    evidence does not contain. Passing is necessary, not sufficient: many different faces shrink
    to the same pixels. Measured in benchmarks/consistency_compressed.md.
    For an **x1 restore** (output and input the same size, on the same pixel grid) there is
    nothing to shrink: both are low-passed with a Gaussian of :data:`RESTORE_LOWPASS_SIGMA` px
    and compared at that size, with the same evidence-dependent line.
(b) **Landmark drift** -- dlib's 68 landmarks found on the output versus the input face's
    landmarks in the same 128x128 frame, mean distance over the inter-ocular distance; above
    :data:`DRIFT_MAX` the model moved the face's features.
(c) **Agreement** -- dlib's 128-D face descriptor (ResNet) of every model's output and of the
    bicubic-enlarged input, all computed with the *same* landmarks (the input's) so only the
    pixels differ. A model's score is its median distance to the rest; above
    :func:`agreement_threshold` the models disagree about what this face looks like.

How the thresholds were first chosen (before issue 24's blur and evidence lines: the
consistency numbers below are that first version's pixel-level PSNR) (60 CelebAMask-HQ faces,
aligned to 128 px, LR made by :func:`engine.faces.align` at 32 px (x4) and 16 px (x8); min /
max over the faces. The models were not trained yet, so outputs were simulated):

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
from engine.evidence_quality import EvidenceQuality

# (a) is judged after a Gaussian low-pass of CONSISTENCY_LOWPASS LR pixels on both sides (the
# output shrunk back and the input): JPEG blocking, ringing and sensor noise live in the finest
# LR detail, which a model that cleans the input rightly removes; faces, features and anything
# invented at the scale of the evidence stay. The line depends on what the file says about its
# damage (engine.evidence_quality): CONSISTENCY_MIN_DB_CLEAN for clean lossless evidence,
# CONSISTENCY_MIN_DB for compressed, noisy, video or unknown evidence, whose own pixels are
# several dB off the true face's. Both chosen on held-out faces 0-99 and reported on faces
# 100-199 by benchmarks/consistency_compressed.py (-> benchmarks/consistency_compressed.md).
CONSISTENCY_LOWPASS = 1.0
# The features judged on their own as well as the whole face (dlib-68 landmark indices).
CONSISTENCY_REGIONS = {
    "left eye": range(36, 42),
    "right eye": range(42, 48),
    "nose": range(27, 36),
    "mouth": range(48, 68),
}
REGION_MARGIN = 1.0  # LR pixels around a feature's landmarks
CONSISTENCY_MIN_DB = 27.0
CONSISTENCY_MIN_DB_CLEAN = 39.5
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
        "Shrunk back to the input's size, the enhanced face should reproduce the evidence. Both "
        "are compared after a blur of 1 input pixel, so JPEG blocks and noise the model removed "
        "do not count, while a different face or changed features do (the whole face and each "
        "eye, the nose and the mouth are judged; the worst counts); below {threshold:g} dB "
        "it shows something the evidence does not contain (the line is stricter for clean "
        "lossless evidence). Passing does not prove added detail is real: detail finer than "
        "the evidence's pixels, or small changes hidden in heavy compression, cannot be checked."
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


def lowpass(rgb: np.ndarray, sigma: float = CONSISTENCY_LOWPASS) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels (mirrored edges), float64: what consistency compares."""
    import cv2

    x = np.asarray(rgb, np.float64)
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma else x


def evidence_is_clean(evidence: Any) -> bool:
    """Whether the evidence assessment (an :class:`engine.evidence_quality.EvidenceQuality` or
    its dict) says clean input: lossless without a block grid or a good JPEG, little noise, not
    a video frame. Unknown evidence (None) is not clean."""
    if evidence is None:
        return False
    if isinstance(evidence, dict):
        evidence = EvidenceQuality.from_dict(evidence)
    return evidence.clean


def consistency_threshold(evidence: Any = None) -> float:
    """The consistency line (dB) for this evidence (see :data:`CONSISTENCY_LOWPASS`)."""
    return CONSISTENCY_MIN_DB_CLEAN if evidence_is_clean(evidence) else CONSISTENCY_MIN_DB


def _db(mse: float) -> float:
    return math.inf if mse < 1e-12 else 10.0 * math.log10(255.0**2 / mse)


def consistency_value(
    lr: np.ndarray,
    sr: np.ndarray,
    landmarks: np.ndarray | None = None,
    sigma: float = CONSISTENCY_LOWPASS,
) -> tuple[float, np.ndarray, str]:
    """(PSNR dB after the low-pass, |difference| after it (LR-sized float), where).

    With the input face's 68 ``landmarks`` (in ``sr``'s frame) the value is the worst of the
    whole face and each feature of :data:`CONSISTENCY_REGIONS` (its landmarks' box plus
    :data:`REGION_MARGIN` LR pixel): a pasted or altered eye or mouth is a small part of the
    face's pixels and would hide in the whole face's average. ``where`` names the worst."""
    a, b = lowpass(shrink_to(sr, lr), sigma), lowpass(lr, sigma)
    d2 = ((a - b) ** 2).mean(axis=-1)
    values = {"whole face": _db(float(d2.mean()))}
    if landmarks is not None:
        f = lr.shape[0] / sr.shape[0]
        h, w = d2.shape
        for name, idx in CONSISTENCY_REGIONS.items():
            pts = np.asarray(landmarks, np.float64)[list(idx)] * f
            x0, y0 = np.floor(pts.min(0) - REGION_MARGIN).astype(int)
            x1, y1 = np.ceil(pts.max(0) + REGION_MARGIN).astype(int)
            box = d2[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
            if box.size:
                values[name] = _db(float(box.mean()))
    where = min(values, key=lambda k: values[k])
    return values[where], np.abs(a - b), where


def data_consistency(
    lr: np.ndarray, sr: np.ndarray, evidence: Any = None, landmarks: np.ndarray | None = None
) -> ConsistencyCheck:
    """(a) PSNR between the LR input and the output shrunk back to the LR size, both low-passed
    by :data:`CONSISTENCY_LOWPASS` LR pixels, the worst of the whole face and (with the input
    face's ``landmarks``) its eyes, nose and mouth; the line from :func:`consistency_threshold`.
    ``detail`` names the worst part and gives the pixel-level PSNR (compression and noise
    included)."""
    restore = sr.shape == lr.shape  # an x1 restore: the same pixel grid, nothing to shrink
    sigma = RESTORE_LOWPASS_SIGMA if restore else CONSISTENCY_LOWPASS
    value, diff, where = consistency_value(lr, sr, landmarks, sigma)
    threshold = consistency_threshold(evidence)
    pixel = psnr(shrink_to(sr, lr), lr)
    kind = (
        "clean lossless evidence: the stricter line"
        if evidence_is_clean(evidence)
        else "compressed, noisy or unknown evidence: the line allows for its damage"
    )
    detail = f"worst part: {where}; {kind}; pixel-level PSNR {pixel:.1f} dB without the blur"
    if restore:
        detail = (
            f"x1 restore: output and input compared at the same size after a Gaussian "
            f"low-pass (sigma {RESTORE_LOWPASS_SIGMA:g} px), so removed compression blocking "
            f"and noise do not count against it; {detail}"
        )
    image = np.clip(np.rint(diff) * DIFF_GAIN, 0, 255).astype(np.uint8)
    base = _check("consistency", value, threshold, value < threshold, "dB", detail)
    return ConsistencyCheck(
        **{k: getattr(base, k) for k in base.__dataclass_fields__},
        difference=image,
        max_difference=int(np.rint(diff.max())),
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
    evidence: Any = None  # the evidence assessment the consistency line came from (or None)

    def model(self, model_id: str) -> ModelFidelity:
        return self.models[model_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "thresholds": {
                "consistency_min_db": consistency_threshold(self.evidence),
                "consistency_lowpass_lr_px": CONSISTENCY_LOWPASS,
                "consistency_evidence": "clean"
                if evidence_is_clean(self.evidence)
                else ("compressed, noisy or unknown"),
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
    evidence: Any = None,
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
    ``evidence`` (the still's :class:`engine.evidence_quality.EvidenceQuality` or its dict, as
    recorded in the provenance) sets the consistency line: :func:`consistency_threshold`.
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
            data_consistency((lrs or {}).get(m, lr), sr, evidence, input_landmarks),
            drift[m],
            agree[m],
            resolution_check(shrink[m]) if m in shrink else None,
        )
        for m, sr in outputs.items()
    }
    return FidelityReport(
        scale=scale, models=models, labels=labels, distances=matrix, evidence=evidence
    )
