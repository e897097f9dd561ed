"""The enhancement pipeline: a still, a face, a model and a scale -> a :class:`Result`.

For one face and one model: the face is aligned into the canonical frame at the LR size
(128 // scale) with :func:`engine.faces.align` -- the same framing used to train and evaluate
every model -- then super-resolved to 128x128 by the model's :meth:`LoadedModel.run`, pasted
back into the whole still enlarged by the scale, and landmarked again so the app can show how
far the output's facial geometry moved from the input's. Every result carries its timings and a
provenance record.

An **x1 restore** (scale 1, a restoration model, :mod:`engine.resolution`'s "restore" plan)
takes another path: no alignment -- the model reads the axis-aligned crop of the recorded pixels
around the face (:func:`engine.resolution.restore_box`) as it is, its output has the crop's
size and lies on the still's own pixel grid, and pasting it back replaces exactly the crop's
pixels (no blend, no resampling). Landmarks are then in the crop's pixels.

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
    # An x1 restore (plan.mode "restore"): the box (x0, y0, x1, y1) of recorded pixels it read
    # and replaced; ``lr`` is that crop as recorded, ``sr`` its restored pixels on the same grid
    # (both (y1 - y0, x1 - x0, 3)), landmarks are in the crop's pixels, ``aligned`` is None.
    crop_box: tuple[int, int, int, int] | None = None

    @property
    def evidence_shrink(self) -> float:
        """How many times the face was shrunk from the evidence before the model saw it."""
        return 1.0 if self.plan is None else self.plan.evidence_shrink

    @property
    def restored(self) -> bool:
        """An x1 restore: the output replaces exactly ``crop_box``'s pixels, nothing resampled."""
        return self.crop_box is not None


def paste_scale(plan: resolution.Plan) -> int:
    """The whole still's enlargement for a face's result: the model's factor, or for a face run
    at its native size the whole factor that holds the 128-px output (2 for 64-127 px); 1 for an
    x1 restore."""
    if plan.mode == resolution.RESTORE:
        return 1
    assert plan.scale is not None and plan.lr_size is not None
    if plan.mode == "native":
        return max(1, math.ceil(facelib.HR_SIZE / plan.lr_size - 1e-9))
    return plan.scale


def pipeline_parameters(
    entry: registry.ModelEntry, scale: int, plan: resolution.Plan | None = None
) -> dict[str, Any]:
    """The processing parameters every provenance record states (GUI, CLI and batch alike)."""
    if plan is not None and plan.mode == resolution.RESTORE:
        return {
            "scale": scale,
            "scale_mode": plan.mode,
            "requested_scale": plan.requested,
            "lr_size": None,
            "evidence_shrink": 1.0,
            "hr_size": None,
            "input": entry.input,
            "precision": "float32",
            "deterministic": True,
        }
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
        if plan.mode == resolution.RESTORE:
            return self._restore(still, face, entry, plan, token, face_index, parameters, start)
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

    def _restore(
        self,
        still: Any,
        face: facelib.Face,
        entry: ModelEntry,
        plan: resolution.Plan,
        token: CancelToken,
        face_index: int,
        parameters: dict[str, Any] | None,
        start: float,
    ) -> Result:
        """An x1 restore (:func:`restore_face`) with this Enhancer's model and model choice."""
        t = time.perf_counter()
        model = self.model(entry.id, resolution.RESTORE_SCALE)
        timings = {"load": _ms(t)}
        choice = self.model_choice(still, entry.id, resolution.RESTORE_SCALE, face)
        return restore_face(
            model,
            still,
            face,
            plan,
            face_index=face_index,
            parameters=parameters,
            model_choice=choice,
            token=token,
            timings=timings,
            start=start,
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


def restore_face(
    model: LoadedModel,
    still: Any,
    face: facelib.Face,
    plan: resolution.Plan,
    *,
    face_index: int = 0,
    parameters: dict[str, Any] | None = None,
    model_choice: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    token: CancelToken | None = None,
    timings: dict[str, float] | None = None,
    start: float | None = None,
) -> Result:
    """An x1 restore of one face with a loaded restoration ``model`` (the one function of
    :meth:`Enhancer.enhance` and of batch runs, :mod:`engine.batch_task`, so both give the same
    bytes): the model runs on the axis-aligned crop of the recorded pixels around the face
    (:func:`engine.resolution.restore_box`), no warp, no resampling; the output lies on the
    still's own grid and replaces exactly the crop's pixels. ``notes`` go before the plan's
    message in the record; ``timings`` (milliseconds) are added to, ``start`` begins "total"."""
    start = time.perf_counter() if start is None else start
    timings = {} if timings is None else timings
    entry = model.entry
    t = time.perf_counter()
    box = resolution.restore_box(face, (still.width, still.height))
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(still.rgb[y0:y1, x0:x1])
    timings["align"] = _ms(t)  # the crop: no alignment
    if token is not None:
        token.check()
    t = time.perf_counter()
    restored = model.restore(crop)
    timings["model"] = _ms(t)
    t = time.perf_counter()
    pasted = np.array(still.rgb, dtype=np.uint8, copy=True)
    pasted[y0:y1, x0:x1] = restored
    timings["paste"] = _ms(t)
    t = time.perf_counter()
    offset = np.array([x0, y0], dtype=np.float32)
    input_landmarks = (np.asarray(face.landmarks, dtype=np.float32) - offset).astype(np.float32)
    fx0, fy0, fx1, fy1 = face.box
    try:  # the same predictor on the restored pixels, in the face's own box
        output_landmarks: np.ndarray | None = facelib.landmarks_in_box(
            restored, (fx0 - x0, fy0 - y0, fx1 - x0, fy1 - y0)
        )
    except facelib.FaceError as exc:
        log.info("no landmarks on the %s output: %s", entry.id, exc)
        output_landmarks = None
    timings["landmarks"] = _ms(t)
    timings["total"] = _ms(start)

    params = (
        pipeline_parameters(entry, resolution.RESTORE_SCALE, plan)
        | {
            "crop_box": [int(v) for v in box],
            "crop_margin": resolution.RESTORE_MARGIN,
            "resampled": False,
            "alignment": "none: the axis-aligned crop of the recorded pixels (plus the margin)",
            "paste_back": "the output replaces exactly the crop's pixels (no blend, no resampling)",
            "tiling": {"tile": weights.RESTORE_TILE, "context": weights.RESTORE_CONTEXT},
        }
        | dict(parameters or {})
    )
    record = provenance.record(
        still=still,
        face=face,
        face_index=face_index,
        entry=entry,
        scale=resolution.RESTORE_SCALE,
        weights_file=model.path.name if model.path is not None else None,
        weights_sha256=model.weights_sha256,
        weights_metadata=model.metadata,
        parameters=params,
        device=devices.describe(model.device),
        notes=[*notes, plan.message],
        model_choice=model_choice,
    )
    record["resolution"] = plan.to_dict()
    record["restore"] = {
        "mode": resolution.RESTORE,
        "crop_box": [int(v) for v in box],
        "crop_size": [int(x1 - x0), int(y1 - y0)],
        "margin_px": resolution.RESTORE_MARGIN,
        "pixels_resampled": False,
        "output_grid": "the still's own pixel grid: output pixel (x, y) replaces still pixel "
        "(x0 + x, y0 + y)",
    }
    return Result(
        model_id=entry.id,
        scale=resolution.RESTORE_SCALE,
        face_index=face_index,
        lr=crop,
        sr=restored,
        pasted=pasted,
        input_landmarks=input_landmarks,
        output_landmarks=output_landmarks,
        timings=timings,
        provenance=record,
        aligned=None,
        device=model.device,
        plan=plan,
        crop_box=(int(x0), int(y0), int(x1), int(y1)),
    )


def paste_all(still_rgb: np.ndarray, results: Sequence[Result]) -> np.ndarray:
    """The still enlarged once with every result's SR face blended in (one model).

    The still is enlarged by the largest of the results' factors (:func:`paste_scale`); a face
    run at a smaller factor is resampled into it. A result computed from a shrunk face is not
    pasted (its output would replace recorded pixels with a lower-resolution face), and if no
    result may be pasted, ValueError says so.
    """
    if not results:
        raise ValueError("no results to paste")
    restored = [r for r in results if r.crop_box is not None]
    if restored:  # x1 restores: each output replaces exactly its crop's pixels
        if len(restored) != len(results):
            raise ValueError("x1 restores and enlargements cannot be pasted into one image")
        canvas = np.array(still_rgb, dtype=np.uint8, copy=True)
        for r in restored:
            x0, y0, x1, y1 = r.crop_box
            canvas[y0:y1, x0:x1] = r.sr
        return canvas
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
