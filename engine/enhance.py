"""The enhancement pipeline: a still, a face, a model and a scale -> a :class:`Result`.

For one face and one model: the face is aligned into the canonical frame at the LR size
(128 // scale) with :func:`engine.faces.align` -- the same framing used to train and evaluate
every model -- then super-resolved to 128x128 by the model's :meth:`LoadedModel.run`, pasted
back into the whole still enlarged by the scale, and landmarked again so the app can show how
far the output's facial geometry moved from the input's. Every result carries its timings and a
provenance record.

Only weights that passed :func:`engine.weights.load`'s checks are ever run: a model without
installed weights raises :class:`engine.weights.MissingWeightsError`; random initialisations
are never used. Inference is fp32 and deterministic (same input -> same bytes). Long runs are
cancelled through a :class:`CancelToken` checked before every face and every model.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import device as devices
from engine import faces as facelib
from engine import provenance, registry, resolution, weights
from engine.progress import Cancelled as Cancelled  # re-exported for callers
from engine.progress import CancelToken
from engine.registry import ModelEntry
from engine.weights import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class Result:
    """One enhanced face. Images are uint8 RGB; landmark coordinates are in the 128x128 SR frame."""

    model_id: str
    scale: int
    face_index: int
    lr: np.ndarray  # (plan.lr_size) square: the aligned face the model saw (128 // scale usually)
    sr: np.ndarray  # (128, 128, 3)
    # (H * scale, W * scale, 3): the whole still enlarged, SR face blended in; None when that
    # image would be too large to build (e.g. x8 of a 4000x3000 still): the face alone still is
    pasted: np.ndarray | None
    input_landmarks: np.ndarray  # (68, 2): the input face's landmarks mapped into the 128 frame
    output_landmarks: np.ndarray | None  # (68, 2) found on ``sr``; None if dlib found none
    timings: dict[str, float]  # milliseconds: align, model, paste, landmarks (+ load, total)
    provenance: dict[str, Any]
    aligned: facelib.AlignedFace | None = field(default=None, repr=False)  # the LR crop's frame
    device: str = "cpu"
    plan: resolution.Plan | None = None  # how the face's native resolution set the scale
    # A face fused from several frames of a clip (engine.video_enhance.fused_result): the
    # fusion's record (frames used, hashes, residuals) and the same model on the reference
    # frame alone, for the side-by-side; None for a face of one still.
    fusion: dict[str, Any] | None = field(default=None, repr=False)
    single: np.ndarray | None = field(default=None, repr=False)

    @property
    def evidence_shrink(self) -> float:
        """How many times the face was shrunk from the evidence before the model saw it."""
        return 1.0 if self.plan is None else self.plan.evidence_shrink


def paste_scale(plan: resolution.Plan) -> int:
    """The whole still's enlargement for a face's result: the model's factor, or for a face run
    at its native size the whole factor that holds the 128-px output (2 for 64-127 px)."""
    assert plan.scale is not None and plan.lr_size is not None
    if plan.mode == "native":
        return max(1, math.ceil(facelib.HR_SIZE / plan.lr_size - 1e-9))
    return plan.scale


def pipeline_parameters(
    entry: registry.ModelEntry, scale: int, plan: resolution.Plan | None = None
) -> dict[str, Any]:
    """The processing parameters every provenance record states (GUI, CLI and batch alike)."""
    lr_size = plan.lr_size if plan is not None and plan.lr_size else facelib.HR_SIZE // scale
    return {
        "scale": scale,
        "scale_mode": plan.mode if plan is not None else "scale",
        "requested_scale": plan.requested if plan is not None else f"x{scale}",
        "lr_size": lr_size,
        "evidence_shrink": round(plan.evidence_shrink, 4) if plan is not None else None,
        "hr_size": facelib.HR_SIZE,
        "input": entry.input,
        "precision": "float32",
        "deterministic": True,
        "alignment": "engine.faces.align (5-point similarity to the canonical template)",
        "paste_back": "bicubic enlargement of the still, feathered blend",
    }


def plan_face(
    face: facelib.Face,
    entry: registry.ModelEntry,
    scale: int | str,
    installed: Sequence[int] | None,
    allow_shrink: bool = False,
) -> tuple[resolution.Plan, bool]:
    """How ``entry`` meets ``face`` at ``scale`` ("auto" or a factor; ``installed``: the scales
    with weights, which Auto chooses among) and whether it was refused because a fixed factor
    would shrink the face. The one planning step of :meth:`Enhancer.enhance` and of batch runs
    (:mod:`engine.batch_task`), so both choose the same scale for the same face."""
    try:
        return resolution.plan(face, entry, scale, installed, allow_shrink=allow_shrink), False
    except resolution.ShrinkRefused as exc:
        return exc.plan, True


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class Enhancer:
    """Runs models on faces; owns the loaded models (cached per model and scale).

    Use one Enhancer per thread (the GUI's worker owns one). ``device`` is resolved by
    :func:`engine.device.resolve` (CUDA if present, ``FFE_DEVICE`` overrides); ``weights_dir``
    defaults to :func:`engine.weights.get_weights_dir` (``$FFE_WEIGHTS_DIR`` or resources/weights).
    """

    def __init__(self, device: str | None = None, weights_dir: str | None = None) -> None:
        self.device = devices.resolve(device)
        self.weights_dir = weights_dir
        self._models: dict[tuple[str, int, str], tuple[LoadedModel, tuple | None]] = {}
        self._lock = threading.Lock()
        devices.make_deterministic()

    # ----------------------------------------------------------------------- models

    def models(self) -> list[tuple[ModelEntry, dict[int, str]]]:
        """Every registered model with its status per scale ("installed", "missing", "invalid: ...")."""
        return [
            (entry, {s: weights.status(entry, s, self.weights_dir) for s in entry.scales})
            for entry in registry.MODELS
        ]

    def model(self, model_id: str, scale: int, device: str | None = None) -> LoadedModel:
        """The verified, loaded model (from the cache unless its weights file changed on disk).

        Raises KeyError (unknown id), ValueError (scale not offered), MissingWeightsError or
        WeightsError.
        """
        entry = registry.get(model_id)
        scale = registry.check_scale(entry, scale)
        device = device or self.device
        signature = self._file_signature(entry, scale)
        key = (entry.id, scale, device)
        with self._lock:
            cached = self._models.get(key)
        if cached is not None and cached[1] == signature:
            return cached[0]
        loaded = weights.load(entry, scale, device, self.weights_dir)
        with self._lock:
            self._models[key] = (loaded, signature)
        return loaded

    def _file_signature(self, entry: ModelEntry, scale: int) -> tuple | None:
        if entry.is_baseline:
            return None
        try:
            st = weights.weights_path(entry, scale, self.weights_dir).stat()
        except OSError:
            return ("missing",)
        return (st.st_mtime_ns, st.st_size)

    def clear(self) -> None:
        """Forget every loaded model (frees their memory once no Result refers to them)."""
        with self._lock:
            self._models.clear()

    # ----------------------------------------------------------------------- running

    def installed_scales(self, model_id: str) -> list[int]:
        """The scales ``model_id`` can run at here (weights present and valid; all for baselines)."""
        entry = registry.get(model_id)
        if entry.is_baseline:
            return list(entry.scales)
        return [s for s in entry.scales if self.scale_status(entry, s) == "installed"]

    def scale_status(self, entry: ModelEntry, scale: int) -> str:
        return weights.status(entry, scale, self.weights_dir)

    def model_choice(
        self, still: Any, model_id: str, scale: int | str, face: facelib.Face | None = None
    ) -> dict[str, Any]:
        """The model the evidence calls for against ``model_id`` (engine.evidence_quality):
        {"recommended", "chosen", "variant", "reason"} for the provenance record. A model is
        available when it would run ``face`` at ``scale`` (engine.resolution's plan, no
        shrinking), or without a face when its weights are installed at ``scale`` (at "auto":
        at any scale). The GUI asks the same question with the same rule."""
        from engine import evidence_quality

        def available(candidate: str) -> bool:
            if face is not None:
                try:
                    planned = self.plan(face, candidate, scale)
                except (resolution.ShrinkRefused, ValueError, KeyError):
                    return False
                return planned.runs and planned.scale in self.installed_scales(candidate)
            if scale == resolution.AUTO:
                return bool(self.installed_scales(candidate))
            entry = registry.get(candidate)
            return scale in entry.scales and self.scale_status(entry, int(scale)) == "installed"

        evidence = getattr(still, "evidence", None)
        return evidence_quality.model_choice(evidence, model_id, available)

    def plan(
        self, face: facelib.Face, model_id: str, scale: int | str, allow_shrink: bool = False
    ) -> resolution.Plan:
        """How ``model_id`` meets ``face`` at ``scale`` ("auto" or a factor); see
        :func:`engine.resolution.plan` (raises :class:`resolution.ShrinkRefused`)."""
        entry = registry.get(model_id)
        installed = self.installed_scales(model_id) if scale == resolution.AUTO else None
        plan, refused = plan_face(face, entry, scale, installed, allow_shrink)
        if refused:
            raise resolution.ShrinkRefused(plan)
        return plan

    def enhance(
        self,
        still: Any,
        face: facelib.Face,
        model_id: str,
        scale: int | str,
        token: CancelToken | None = None,
        face_index: int = 0,
        parameters: dict[str, Any] | None = None,
        allow_shrink: bool = False,
    ) -> Result:
        """Enhance one face of ``still`` (an :class:`engine.io.Still`) with one model.

        ``scale`` is "auto" (chosen from the face's native resolution, see
        :mod:`engine.resolution`) or a factor. Raises :class:`resolution.NotEnhanced` when
        nothing should run (the face is already 128 px or more, or the model has no file for a
        face this size) and :class:`resolution.ShrinkRefused` when a forced factor would shrink
        the face, unless ``allow_shrink``. ``parameters`` are extra settings to record in the
        provenance (e.g. the detector used).
        """
        token = token or CancelToken()
        token.check()
        start = time.perf_counter()
        requested = scale  # "auto" or the factor asked for (the model choice is judged at it)
        entry = registry.get(model_id)
        if scale != resolution.AUTO:
            registry.check_scale(entry, scale)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        if scale != resolution.AUTO:
            self.model(model_id, scale)  # a missing or invalid weights file fails first
        plan = self.plan(face, model_id, scale, allow_shrink=allow_shrink)
        if not plan.runs:
            raise resolution.NotEnhanced(plan)
        scale = plan.scale
        assert scale is not None and plan.lr_size is not None
        model = self.model(model_id, scale)  # before aligning: a missing model fails fast
        timings["load"] = _ms(t)

        t = time.perf_counter()
        aligned = facelib.align(still.rgb, face, size=plan.lr_size)
        timings["align"] = _ms(t)

        token.check()
        notes: list[str] = []
        if plan.message:
            notes.append(plan.message)
        t = time.perf_counter()
        sr, model = self._run(model, aligned.pixels, notes)
        timings["model"] = _ms(t)

        t = time.perf_counter()
        pasted: np.ndarray | None = None
        if plan.shrinks:
            # The output came from a shrunk face: pasting it would replace recorded pixels with
            # a face of lower resolution than the evidence had there.
            notes.append(
                "full image not built: the model saw this face shrunk "
                f"{plan.evidence_shrink:.1f}x, so its output may not replace the recorded pixels"
            )
        else:
            try:
                pasted = facelib.paste_back(still.rgb, aligned, sr, scale=paste_scale(plan))
            except facelib.FaceError as exc:  # too large to build: the SR face stands alone
                notes.append(f"full image not built: {exc}")
        timings["paste"] = _ms(t)

        t = time.perf_counter()
        try:
            output_landmarks: np.ndarray | None = facelib.aligned_landmarks(sr)
        except facelib.FaceError as exc:
            log.info("no landmarks on the %s output: %s", model_id, exc)
            output_landmarks = None
        input_landmarks = facelib.transform_points(
            face.landmarks, facelib.alignment_matrix(face, facelib.HR_SIZE)
        ).astype(np.float32)
        timings["landmarks"] = _ms(t)
        timings["total"] = _ms(start)

        params = pipeline_parameters(entry, scale, plan) | dict(parameters or {})
        record = provenance.record(
            still=still,
            face=face,
            face_index=face_index,
            entry=entry,
            scale=scale,
            weights_file=model.path.name if model.path is not None else None,
            weights_sha256=model.weights_sha256,
            weights_metadata=model.metadata,
            parameters=params,
            device=devices.describe(model.device),
            notes=notes,
            model_choice=self.model_choice(still, entry.id, requested, face),
        )
        record["resolution"] = plan.to_dict()
        return Result(
            model_id=entry.id,
            scale=scale,
            face_index=face_index,
            lr=aligned.pixels,
            sr=sr,
            pasted=pasted,
            input_landmarks=input_landmarks,
            output_landmarks=output_landmarks,
            timings=timings,
            provenance=record,
            aligned=aligned,
            device=model.device,
            plan=plan,
        )

    def _run(
        self, model: LoadedModel, lr: np.ndarray, notes: list[str]
    ) -> tuple[np.ndarray, LoadedModel]:
        """Run ``model``; on CUDA out-of-memory free the cache and retry once on the CPU."""
        if model.module is None or not str(model.device).startswith("cuda"):
            return model.run(lr), model
        import torch

        try:
            return model.run(lr), model
        except Exception as exc:
            if not devices.is_cuda_out_of_memory(exc):
                raise
            log.warning(
                "%s x%d: CUDA out of memory, retrying on the CPU", model.entry.id, model.scale
            )
            torch.cuda.empty_cache()
            notes.append(f"CUDA out of memory on {model.device}; this face was computed on the CPU")
            cpu_model = self.model(model.entry.id, model.scale, device="cpu")
            return cpu_model.run(lr), cpu_model


def paste_all(still_rgb: np.ndarray, results: Sequence[Result]) -> np.ndarray:
    """The still enlarged once with every result's SR face blended in (one model).

    The still is enlarged by the largest of the results' factors (:func:`paste_scale`); a face
    run at a smaller factor is resampled into it. A result computed from a shrunk face is not
    pasted (its output would replace recorded pixels with a lower-resolution face), and if no
    result may be pasted, ValueError says so.
    """
    if not results:
        raise ValueError("no results to paste")
    if any(r.aligned is None for r in results):
        raise ValueError("a result without its alignment cannot be pasted")
    usable = [r for r in results if r.plan is None or not r.plan.shrinks]
    if not usable:
        raise ValueError(
            "no face may be pasted back: every model input was shrunk from the evidence"
        )
    scale = max(r.scale if r.plan is None else paste_scale(r.plan) for r in usable)
    w, h = still_rgb.shape[1] * scale, still_rgb.shape[0] * scale
    if w * h > facelib.MAX_PASTE_PIXELS:
        raise ValueError(
            f"the full image at x{scale} ({w}x{h}) is too large to build; export the faces"
        )
    return facelib.paste_many(still_rgb, scale, [(r.aligned, r.sr) for r in usable])
