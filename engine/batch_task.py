"""One photo of a folder run as a pure task: what goes in, what comes out, and the function.

:func:`process_photo` takes a :class:`PhotoTask` (the input's path and SHA-256, each model's id
and the SHA-256 of its weights at every scale it may run, the run's parameters) and returns a
:class:`PhotoResult` (the summary rows, with every output's name and SHA-256, the fidelity
metrics, counters and messages). It reads the input, detects, plans, aligns (an x1 restore crops
instead: :func:`engine.enhance.restore_face`), runs the models and writes its output files into
its own folder under the run's staging folder; it writes nothing else. The driver
(:mod:`engine.batch`) checks each output's SHA-256 against the result, moves the files into
place, and alone writes ``summary.csv``, ``run.json`` and the case log. The same function runs
in the app's process or on a Dask worker (:mod:`engine.batch_exec`), so both give the same
bytes.

Why a staging folder: a task may be run twice (a Dask worker that dies mid-photo has its task
run again elsewhere) or finish after the run was cancelled. Each attempt writes under a name of
its own, so no attempt can leave a final output behind that the summary does not list; the
driver publishes one attempt's files and removes the rest.

Models come from a provider: the caller's :class:`engine.enhance.Enhancer` in the app's
process, or :data:`WORKER_MODELS` (one cache per worker process, keyed by model, scale, weights
folder and the weights' SHA-256) on a worker. Either way the loaded weights must have the
SHA-256 the driver recorded, or the photo gets an error row.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine import __version__, export, fidelity, io, provenance, registry, resolution
from engine import device as devices
from engine import faces as facelib
from engine.enhance import (
    Enhancer,
    Result,
    paste_all,
    paste_scale,
    pipeline_parameters,
    plan_face,
    restore_face,
)
from engine.progress import Cancelled, CancelToken
from engine.weights import LoadedModel

log = logging.getLogger(__name__)

OK, NO_FACE, ERROR, SKIPPED_DONE = "ok", "no_face", "error", "skipped_done"
SUMMARY_FIELDS = (
    "file",
    "sha256",
    "faces",
    "model",
    "scale",
    "weights_sha256",
    "status",
    "error",
    "outputs",
    "outputs_sha256",
    "native_frame_px",
    "interocular_px",
    "scales_used",
    "evidence_shrink",
    "consistency_db",
    "landmark_drift",
    "fidelity",
)


@dataclass
class SummaryRow:
    """One row of ``summary.csv``: one input file with one model. Paths are relative, POSIX."""

    file: str
    sha256: str
    faces: int | None  # None when the file could not be read far enough to detect
    model: str
    scale: int | str  # the factor asked for, or "auto"
    weights_sha256: str
    status: str
    error: str = ""
    outputs: list[str] = field(default_factory=list)
    outputs_sha256: list[str] = field(default_factory=list)  # as written, one per output
    # Face by face, ";"-separated (engine.resolution): what the evidence holds, what was used.
    native_frame_px: str = ""
    interocular_px: str = ""
    scales_used: str = ""  # "x4", "native75", "none" (not enlarged) or "refused" (would shrink)
    evidence_shrink: str = ""
    # Fidelity checks (engine.fidelity), face by face: the output shrunk back vs what the
    # model saw (PSNR, dB), landmark drift (x eye distance), and "pass"/"warn" for both.
    consistency_db: str = ""
    landmark_drift: str = ""
    fidelity: str = ""

    def to_csv(self) -> dict[str, str]:
        row = {
            "file": self.file,
            "sha256": self.sha256,
            "faces": "" if self.faces is None else str(self.faces),
            "model": self.model,
            "scale": str(self.scale),
            "weights_sha256": self.weights_sha256,
            "status": self.status,
            "error": self.error,
            "outputs": ";".join(self.outputs),
            "outputs_sha256": ";".join(self.outputs_sha256),
            "native_frame_px": self.native_frame_px,
            "interocular_px": self.interocular_px,
            "scales_used": self.scales_used,
            "evidence_shrink": self.evidence_shrink,
            "consistency_db": self.consistency_db,
            "landmark_drift": self.landmark_drift,
            "fidelity": self.fidelity,
        }
        # Every value as UTF-8-writable text (a name that is not valid UTF-8 gets escapes).
        return {k: io.display_path(v) for k, v in row.items()}

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> SummaryRow:
        faces = row["faces"]
        return cls(
            file=row["file"],
            sha256=row["sha256"],
            faces=int(faces) if faces else None,
            model=row["model"],
            scale="auto" if row["scale"] == "auto" else int(row["scale"]),
            weights_sha256=row["weights_sha256"],
            status=row["status"],
            error=row["error"],
            outputs=[p for p in row["outputs"].split(";") if p],
            outputs_sha256=[h for h in row["outputs_sha256"].split(";") if h],
            native_frame_px=row.get("native_frame_px", ""),
            interocular_px=row.get("interocular_px", ""),
            scales_used=row.get("scales_used", ""),
            evidence_shrink=row.get("evidence_shrink", ""),
            consistency_db=row.get("consistency_db", ""),
            landmark_drift=row.get("landmark_drift", ""),
            fidelity=row.get("fidelity", ""),
        )


class WeightsDiffer(ValueError):
    """The weights a worker loaded are not the ones the driver verified (by SHA-256)."""


# --------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class ModelSpec:
    """A model as the driver verified it: the weights' SHA-256 at each scale it may run."""

    id: str
    weights_sha256: tuple[tuple[int, str], ...]  # (scale, SHA-256; "" for a baseline)
    fingerprint: str  # the summary's weights_sha256 column (what resume compares)
    weights_dir: str | None = None

    @property
    def installed(self) -> list[int]:
        return [s for s, _ in self.weights_sha256]

    def expected(self, scale: int) -> str:
        return dict(self.weights_sha256).get(scale, "")


@dataclass(frozen=True)
class PhotoTask:
    """Everything one photo's processing depends on (nothing else is read but the file)."""

    index: int
    path: Path
    rel: str  # relative POSIX path, display-safe (the summary's ``file``)
    stem: str  # relative output stem (engine.batch.output_stems)
    sha256: str  # as the driver read it ("" when it could not)
    models: tuple[ModelSpec, ...]
    scale: int | str
    detector: str
    allow_shrink: bool
    full: bool
    batch_faces: int
    staging: Path  # the run's staging folder; this task writes under a folder of its own
    device: str | None = None  # None: the worker's own choice (engine.device.resolve)
    time_utc: str | None = None  # stamp every record with this time (reproducible bytes)

    @property
    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]


@dataclass
class PhotoResult:
    """What a task did. Output paths in ``rows`` are relative to the output folder; the files
    are in ``staging / folder`` under the same relative paths until the driver moves them."""

    index: int
    rel: str
    sha256: str
    rows: list[SummaryRow]
    folder: str = ""  # this attempt's folder under the staging folder ("" when none)
    faces: int = 0
    forward_passes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    worker: str = ""  # host:pid that ran it

    @property
    def outputs(self) -> list[tuple[str, str]]:
        """Every (relative path, SHA-256) the rows list, once each, in order."""
        seen: dict[str, str] = {}
        for row in self.rows:
            for rel, sha in zip(row.outputs, row.outputs_sha256, strict=False):
                seen.setdefault(rel, sha)
        return list(seen.items())


# --------------------------------------------------------------------------- worker models


class WorkerModels:
    """A process's loaded models, each loaded once (and verified) per weights file and hash."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int, str, str | None], LoadedModel] = {}
        self._lock = threading.Lock()
        self._ready = False

    def setup(self) -> None:
        """Pin what could change bytes or oversubscribe the CPU in a worker process: torch and
        OpenCV use one thread each (a worker is one thread; run more workers for more cores),
        deterministic algorithms. Done once per process."""
        with self._lock:
            if self._ready:
                return
            import cv2
            import torch

            torch.set_num_threads(1)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # already set, or parallel work already started
                pass
            cv2.setNumThreads(1)
            devices.make_deterministic()
            self._ready = True

    def get(self, spec: ModelSpec, scale: int, device: str | None) -> LoadedModel:
        from engine import weights

        dev = devices.resolve(device)
        key = (spec.id, scale, dev, spec.weights_dir)
        with self._lock:
            model = self._models.get(key)
        if model is None or (model.weights_sha256 or "") != spec.expected(scale):
            model = weights.load(registry.get(spec.id), scale, dev, spec.weights_dir)
            with self._lock:
                self._models[key] = model
        return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


#: The models of this process when it is a Dask worker (see :func:`run_on_worker`).
WORKER_MODELS = WorkerModels()


def warm_up() -> str:
    """Prepare a worker process before its first photo (run on every worker when a run opens
    its cluster): pinned threads, torch imported, dlib's models loaded. Returns host:pid."""
    WORKER_MODELS.setup()
    facelib.load_models()
    return f"{os.uname().nodename}:{os.getpid()}"


def run_on_worker(task: PhotoTask) -> PhotoResult:
    """The task as a Dask worker runs it: pinned threads, models from the process's cache."""
    WORKER_MODELS.setup()
    return process_photo(task, WORKER_MODELS.get)


def enhancer_models(enhancer: Any) -> Callable[[ModelSpec, int, str | None], LoadedModel]:
    """A provider from an :class:`engine.enhance.Enhancer` (the app's process: its cache)."""

    def get(spec: ModelSpec, scale: int, device: str | None) -> LoadedModel:
        return enhancer.model(spec.id, scale, device=device)

    return get


# --------------------------------------------------------------------------- the function


def process_photo(
    task: PhotoTask,
    models: Callable[[ModelSpec, int, str | None], LoadedModel],
    token: CancelToken | None = None,
) -> PhotoResult:
    """Process one photo (see the module docstring). Every failure becomes a row; only
    :class:`Cancelled` (from ``token``, checked between forward passes and faces) is raised."""
    return _Photo(task, models, token or CancelToken()).run()


@dataclass
class _Model:
    spec: ModelSpec
    plans: list[resolution.Plan] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)
    sr: dict[int, np.ndarray] = field(default_factory=dict)
    # x1 restores (engine.enhance.restore_face): each face's result, with its crop and record
    restored: dict[int, Result] = field(default_factory=dict)
    error: str = ""
    batch_size: int = 0
    notes: list[str] = field(default_factory=list)

    def runs(self) -> list[int]:
        return [k for k, p in enumerate(self.plans) if p.runs and k not in self.refused]


class _Photo:
    def __init__(self, task: PhotoTask, models: Callable, token: CancelToken) -> None:
        self.task, self.models, self.token = task, models, token
        self.still: io.Still | None = None
        self.faces: list[facelib.Face] = []
        self.detector_used = task.detector  # "hog" or "cnn" once detection ran ("auto" before)
        self.aligned: dict[tuple[int, int], facelib.AlignedFace] = {}
        self.m = {spec.id: _Model(spec) for spec in task.models}
        self.timings = dict.fromkeys(("load", "detect", "model", "write", "fidelity"), 0.0)
        self.passes = dict.fromkeys(self.m, 0)
        self.messages: list[str] = []
        self.device_for: dict[str, str | None] = {}
        self.folder = ""
        self.written: list[Path] = []

    def _add_time(self, stage: str, start: float) -> None:
        self.timings[stage] += time.perf_counter() - start

    def result(self, rows: list[SummaryRow]) -> PhotoResult:
        return PhotoResult(
            index=self.task.index,
            rel=self.task.rel,
            sha256=self.still.sha256 if self.still is not None else self.task.sha256,
            rows=rows,
            folder=self.folder if any(r.outputs for r in rows) else "",
            faces=len(self.faces),
            forward_passes=self.passes,
            timings={k: round(v, 4) for k, v in self.timings.items()},
            messages=self.messages,
            worker=f"{os.uname().nodename}:{os.getpid()}",
        )

    def run(self) -> PhotoResult:
        task = self.task
        error = self._prepare()
        if error:
            self._discard()
            return self.result([self._row(m, ERROR, error) for m in self.m])
        try:
            if not self.faces:
                rel = _provenance_name(task)
                sha = self._save_json(rel, self._document([], []))
                rows = [self._row(m, NO_FACE, "no face found") for m in self.m]
                for row in rows:
                    row.outputs, row.outputs_sha256 = [rel], [sha]
                return self.result(rows)
            self._compute()
            return self.result(self._write())
        except BaseException as exc:
            self._discard()
            if not isinstance(exc, Exception) or isinstance(exc, Cancelled):
                raise
            if not isinstance(exc, OSError):
                log.exception("writing the results of %s failed", task.rel)
            message = f"results not written: {fault_words(exc)}"
            return self.result([self._row(m, ERROR, message) for m in self.m])

    # ------------------------------------------------------------------ read, detect, plan
    def _prepare(self) -> str:
        """Load, check the hash, detect, plan and align; the error in words, or ""."""
        task = self.task
        try:
            t = time.perf_counter()
            self.still = io.load(task.path)
            self._add_time("load", t)
            if task.sha256 and self.still.sha256 != task.sha256:
                return (
                    "the file changed while the run was on it (SHA-256 "
                    f"{self.still.sha256[:12]}... now, {task.sha256[:12]}... when listed)"
                )
            t = time.perf_counter()
            self.faces, self.detector_used = facelib.detect_with(self.still.rgb, task.detector)
            for model in self.m.values():
                self._plan(model)
            self._add_time("detect", t)
        except io.ImageLoadError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the run goes on
            log.exception("preparing %s failed", task.rel)
            return f"{type(exc).__name__}: {exc}"
        return ""

    def _plan(self, model: _Model) -> None:
        """Each face's plan (the Enhancer's own :func:`engine.enhance.plan_face`) and its
        aligned crop, once per size."""
        entry = registry.get(model.spec.id)
        for k, face in enumerate(self.faces):
            plan, refused = plan_face(
                face, entry, self.task.scale, model.spec.installed, self.task.allow_shrink
            )
            model.plans.append(plan)
            if refused:
                model.refused.add(k)
            elif plan.mode == resolution.RESTORE:
                pass  # an x1 restore reads the recorded pixels: nothing is aligned
            elif plan.runs and (k, plan.lr_size) not in self.aligned:
                self.aligned[(k, plan.lr_size)] = facelib.align(
                    self.still.rgb, face, size=plan.lr_size
                )

    # ------------------------------------------------------------------ networks
    def _model(self, model: _Model, scale: int) -> LoadedModel:
        device = self.device_for.get(model.spec.id, self.task.device)
        loaded = self.models(model.spec, scale, device)
        expected = model.spec.expected(scale)
        if (loaded.weights_sha256 or "") != expected:
            raise WeightsDiffer(  # caught per model below: an error row, never other bytes
                f"{model.spec.id} x{scale}: the weights here have SHA-256 "
                f"{(loaded.weights_sha256 or '')[:12]}..., the run verified {expected[:12]}..."
            )
        return loaded

    def _compute(self) -> None:
        for model in self.m.values():
            jobs: dict[tuple[int, int], list[int]] = {}
            for k in model.runs():
                plan = model.plans[k]
                jobs.setdefault((plan.scale, plan.lr_size), []).append(k)
            try:
                for (scale, lr_size), faces in sorted(jobs.items()):
                    if lr_size is None:  # x1 restore (a restoring model plans nothing else)
                        self._run_restores(model, faces)
                    else:
                        self._run_jobs(model, scale, lr_size, faces)
            except (OSError, ValueError) as exc:  # weights missing, invalid or different
                model.error = f"{model.spec.id}: {exc}"

    def _run_jobs(self, model: _Model, scale: int, lr_size: int, faces: list[int]) -> None:
        start, step = 0, self.task.batch_faces
        while start < len(faces):
            self.token.check()  # between forward passes: pause waits here
            chunk = faces[start : start + step]
            t = time.perf_counter()
            loaded = self._model(model, scale)
            try:
                srs = loaded.run_batch([self.aligned[(k, lr_size)].pixels for k in chunk])
            except Exception as exc:  # noqa: BLE001 - see the branches
                self._add_time("model", t)
                if devices.is_cuda_out_of_memory(exc):
                    step = self._after_oom(model, step)
                    continue
                if len(chunk) > 1:  # find the failing face(s): one at a time
                    step = 1
                    continue
                log.exception("%s on %s face %d failed", model.spec.id, self.task.rel, chunk[0])
                model.error = f"{model.spec.id} failed on face {chunk[0]}: {exc}"
                return
            self._add_time("model", t)
            self.passes[model.spec.id] += 1 if loaded.module is not None else len(chunk)
            for k, sr in zip(chunk, srs, strict=True):
                model.sr[k] = sr
            model.batch_size = max(model.batch_size, len(chunk))
            start += len(chunk)

    def _run_restores(self, model: _Model, faces: list[int]) -> None:
        """x1 restore: each face through the still path's own :func:`restore_face` (the crops
        differ in size, so one face per pass; its record is made there, as for a still)."""
        for k in faces:
            self.token.check()  # between forward passes: pause waits here
            t = time.perf_counter()
            loaded = self._model(model, resolution.RESTORE_SCALE)
            try:
                result = restore_face(
                    loaded,
                    self.still,
                    self.faces[k],
                    model.plans[k],
                    face_index=k,
                    parameters=self._parameters(model),
                    model_choice=self._model_choice(model.spec, k),
                    notes=model.notes,
                )
            except Exception as exc:  # noqa: BLE001 - the model's error row, the run goes on
                self._add_time("model", t)
                log.exception("%s on %s face %d failed", model.spec.id, self.task.rel, k)
                model.error = f"{model.spec.id} failed on face {k}: {exc}"
                return
            self._add_time("model", t)  # the crop, the pass, the output's landmarks
            self.passes[model.spec.id] += 1
            # Not the whole-still copy of each face: the full image is pasted once, later.
            model.restored[k], model.sr[k] = replace(result, pasted=None), result.sr
            model.batch_size = 1

    def _after_oom(self, model: _Model, step: int) -> int:
        """Out of GPU memory: halve the batch; at one face, this model goes to the CPU."""
        import torch

        torch.cuda.empty_cache()
        if step > 1:
            return step // 2
        self.device_for[model.spec.id] = "cpu"
        model.notes.append("CUDA out of memory; from here on computed on the CPU")
        self.messages.append(f"{model.spec.id}: out of GPU memory, continued on the CPU")
        return self.task.batch_faces

    # ------------------------------------------------------------------ writing
    def _parameters(self, model: _Model) -> dict[str, Any]:
        """What a batch run adds to every record's parameters."""
        return {
            "detector": self.detector_used,
            "detector_setting": self.task.detector,
            "batch": {
                "input_file": self.task.rel,
                "faces_per_forward_pass": model.batch_size or 1,
            },
        }

    def _record(self, model: _Model, k: int) -> dict[str, Any]:
        if k in model.restored:  # made by restore_face, like a still's
            return self._stamp(model.restored[k].provenance)
        plan = model.plans[k]
        loaded = self._model(model, plan.scale)
        params = pipeline_parameters(loaded.entry, plan.scale, plan) | self._parameters(model)
        notes = list(model.notes) + ([plan.message] if plan.message else [])
        record = provenance.record(
            still=self.still,
            face=self.faces[k],
            face_index=k,
            entry=loaded.entry,
            scale=plan.scale,
            weights_file=loaded.path.name if loaded.path is not None else None,
            weights_sha256=loaded.weights_sha256,
            weights_metadata=loaded.metadata,
            parameters=params,
            device=devices.describe(loaded.device),
            notes=notes,
            model_choice=self._model_choice(model.spec, k),
        )
        record["resolution"] = plan.to_dict()
        return self._stamp(record)

    def _model_choice(self, spec: ModelSpec, k: int) -> dict[str, Any]:
        """What the evidence recommends against the model this run uses (the same rule as
        the GUI's and ``enhance``'s; batch itself always runs the model it was asked for)."""
        planner = Enhancer(device="cpu", weights_dir=spec.weights_dir)
        return planner.model_choice(self.still, spec.id, self.task.scale, self.faces[k])

    def _stamp(self, document: dict[str, Any]) -> dict[str, Any]:
        if self.task.time_utc:  # a fixed time says so, as SOURCE_DATE_EPOCH's does
            document["time_utc"] = self.task.time_utc
            document["time_fixed_by"] = "time_utc"
        return document

    def _row(self, model_id: str, status: str = OK, error: str = "") -> SummaryRow:
        """A row for ``model_id``, with every face's resolution columns."""
        model = self.m[model_id]

        def used(k: int, plan: resolution.Plan) -> str:
            if k in model.refused:
                return "refused"
            return export.scale_tag(plan) if plan.runs else "none"

        return SummaryRow(
            file=self.task.rel,
            sha256=self.still.sha256 if self.still is not None else self.task.sha256,
            faces=len(self.faces) if self.still is not None else None,
            model=model_id,
            scale=self.task.scale,
            weights_sha256=model.spec.fingerprint,
            status=status,
            error=error,
            native_frame_px=";".join(f"{f.native_frame_px:.1f}" for f in self.faces),
            interocular_px=";".join(f"{f.interocular_px:.1f}" for f in self.faces),
            scales_used=";".join(used(k, p) for k, p in enumerate(model.plans)),
            evidence_shrink=";".join(
                f"{p.evidence_shrink:.3f}" if p.runs and k not in model.refused else ""
                for k, p in enumerate(model.plans)
            ),
        )

    def _write(self) -> list[SummaryRow]:
        """Write the photo's outputs into this attempt's folder; returns its rows."""
        assert self.still is not None
        task, stem = self.task, PurePosixPath(self.task.stem)
        rows: list[SummaryRow] = []
        records: list[dict[str, Any]] = []
        outputs: list[dict[str, str]] = []
        for model_id, model in self.m.items():
            row = self._row(model_id)
            rows.append(row)
            if model.error:
                row.status, row.error = ERROR, model.error
                continue
            model_records = []
            checks: dict[int, tuple[fidelity.Check, fidelity.Check]] = {}
            done = model.runs()
            for k in done:
                self.token.check()  # between faces
                plan = model.plans[k]
                rec = self._record(model, k)
                rel = export.output_name(stem, model_id, export.scale_tag(plan), "face", k)
                image, label_text = export.labelled(model.sr[k], registry.get(model_id))
                sha = self._save(rel, image, provenance.png_text(rec) | label_text)
                provenance.add_output(rec, "face", rel, sha)
                outputs.append({"role": "face", "path": rel, "sha256": sha})
                row.outputs.append(rel)
                row.outputs_sha256.append(sha)
                model_records.append(rec)
                checks[k] = self._fidelity(model, k)
            fidelity_columns(row, checks, len(self.faces))
            notes = [f"face {k}: {p.message}" for k, p in enumerate(model.plans) if k not in done]
            # Only faces the model saw unshrunk may replace the recorded pixels.
            pasted = [k for k in done if not model.plans[k].shrinks]
            if pasted and task.full:  # (the command line writes faces only by default)
                notes += self._write_full(model, pasted, model_records, outputs, row)
            elif done and not pasted:
                notes.append("full image not written: every face was shrunk for the model")
            row.error = "; ".join(notes)
            records.extend(model_records)
        rel = _provenance_name(task)
        sha = self._save_json(rel, self._document(records, outputs))
        for row in rows:
            row.outputs.append(rel)
            row.outputs_sha256.append(sha)
        return rows

    def _write_full(
        self,
        model: _Model,
        pasted: list[int],
        records: list[dict[str, Any]],
        outputs: list[dict[str, str]],
        row: SummaryRow,
    ) -> list[str]:
        """The whole photo enlarged with the faces pasted in; the notes for the row."""
        h, w = self.still.height, self.still.width
        scale = max(paste_scale(model.plans[k]) for k in pasted)
        if h * w * scale * scale > facelib.MAX_PASTE_PIXELS:
            return [
                f"full image not written: {w * scale}x{h * scale} pixels is too large; the "
                "faces were written"
            ]
        t = time.perf_counter()
        if model.restored:  # x1 restores: each output replaces exactly its crop's pixels
            results = [model.restored[k] for k in pasted]
            full = paste_all(self.still.rgb, results)
            regions = [export.result_region(r, scale) for r in results]
        else:
            crops = [self.aligned[(k, model.plans[k].lr_size)] for k in pasted]
            pairs = [(a, model.sr[k]) for a, k in zip(crops, pasted, strict=True)]
            full = facelib.paste_many(self.still.rgb, scale, pairs)
            regions = [export.replaced_region(a, scale) for a in crops]
        self._add_time("write", t)  # "write" = paste-back, encoding, writing
        rel = export.output_name(
            PurePosixPath(self.task.stem), model.spec.id, self.task.scale, "full"
        )
        document = self._stamp(provenance.bundle(records))
        image, label_text = export.labelled(full, registry.get(model.spec.id), regions)
        sha = self._save(rel, image, provenance.png_text(document) | label_text)
        for rec in records:
            if rec["resolution"]["evidence_shrink"] <= resolution.SHRINK_LIMIT:
                provenance.add_output(rec, "full", rel, sha)
        outputs.append({"role": "full", "path": rel, "sha256": sha})
        row.outputs.append(rel)
        row.outputs_sha256.append(sha)
        return []

    def _fidelity(self, model: _Model, k: int) -> tuple[fidelity.Check, fidelity.Check]:
        """Data consistency (against what the model saw) and landmark drift of one face."""
        t = time.perf_counter()
        if k in model.restored:  # x1 restore: in the crop's pixels, as the still path checks it
            r = model.restored[k]
            lr, sr, expected, found = r.lr, r.sr, r.input_landmarks, r.output_landmarks
        else:
            face, sr = self.faces[k], model.sr[k]
            lr = self.aligned[(k, model.plans[k].lr_size)].pixels
            expected = facelib.transform_points(
                face.landmarks, facelib.alignment_matrix(face, facelib.HR_SIZE)
            )
            found = fidelity.output_landmarks(sr)
        consistency = fidelity.data_consistency(lr, sr, self.still.evidence, expected)
        drift = fidelity.landmark_drift(expected, found)
        self._add_time("fidelity", t)
        return consistency, drift

    def _document(
        self, records: list[dict[str, Any]], outputs: list[dict[str, str]]
    ) -> dict[str, Any]:
        """The per-image provenance JSON: every face record, the run's settings, every output."""
        if records:
            document = self._stamp(provenance.bundle(records))
        else:  # no face found (or every model failed): still say what was examined and how
            still = self.still
            assert still is not None
            document = self._stamp(
                {
                    "record_version": provenance.RECORD_VERSION,
                    "label": provenance.AI_LABEL,
                    "software": {"name": provenance.SOFTWARE, "version": __version__},
                    **provenance.record_time(),
                    "input": {
                        "path": io.display_path(still.path),
                        "name": still.name,
                        "sha256": still.sha256,
                        "original_mode": still.original_mode,
                        "bits_per_sample": still.bits_per_sample,
                        "format": still.format,
                        "width": still.width,
                        "height": still.height,
                    },
                    "faces": [],
                    "outputs": [],
                }
            )
        document["batch"] = {
            "input_file": self.task.rel,
            "models": self.task.model_ids,
            "scale": self.task.scale,
            "detector": self.detector_used,
            "detector_setting": self.task.detector,
            "faces_found": len(self.faces),
        }
        document["outputs"] = outputs
        return document

    # ------------------------------------------------------------------ files
    def _path(self, rel: str) -> Path:
        """Where ``rel`` is written: under this attempt's own folder in the staging folder."""
        if not self.folder:
            folder = f"{self.task.index:07d}.{secrets.token_hex(6)}"
            # Not parents=True: once the driver has removed the staging folder (the run ended
            # or was cancelled) a task still running on a worker fails instead of writing.
            (self.task.staging / folder).mkdir()
            self.folder = folder
        elif not (self.task.staging / self.folder).is_dir():
            raise FileNotFoundError(errno.ENOENT, "the run's staging folder is gone (it ended)")
        path = self.task.staging / self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _save(self, rel: str, rgb: np.ndarray, text: dict[str, str]) -> str:
        t = time.perf_counter()
        path = self._path(rel)
        sha = io.save_png(path, rgb, text)
        self.written.append(path)
        self._add_time("write", t)
        return sha

    def _save_json(self, rel: str, document: dict[str, Any]) -> str:
        t = time.perf_counter()
        path = self._path(rel)
        sha = io.write_bytes_atomic(path, provenance.to_json(document).encode("utf-8"))
        self.written.append(path)
        self._add_time("write", t)
        return sha

    def _discard(self) -> None:
        """Remove what this attempt wrote (an error or a cancel: nothing half-done stays)."""
        if self.folder:
            shutil.rmtree(self.task.staging / self.folder, ignore_errors=True)
            self.folder = ""


# --------------------------------------------------------------------------- helpers


def _provenance_name(task: PhotoTask) -> str:
    """``<stem>_<models>_<scale>_provenance.json``: like every output, the name says which
    models and scale made it (``img_bicubic+s2_rafsr_x4_provenance.json``)."""
    scale = task.scale if task.scale == resolution.AUTO else f"x{task.scale}"
    return f"{task.stem}_{'+'.join(task.model_ids)}_{scale}_provenance.json"


def fidelity_columns(
    row: SummaryRow, checks: dict[int, tuple[fidelity.Check, fidelity.Check]], n: int
) -> None:
    """The summary's fidelity columns, face by face ("" for a face that did not run)."""

    def number(check: fidelity.Check, digits: int) -> str:
        if check.value is None:
            return ""
        return "inf" if math.isinf(check.value) else f"{check.value:.{digits}f}"

    cons, drift, verdict = [], [], []
    for k in range(n):
        if k not in checks:
            cons.append("")
            drift.append("")
            verdict.append("")
            continue
        c, d = checks[k]
        cons.append(number(c, 2))
        drift.append(number(d, 3))
        verdict.append("warn" if fidelity.WARN in (c.status, d.status) else "pass")
    row.consistency_db, row.landmark_drift = ";".join(cons), ";".join(drift)
    row.fidelity = ";".join(verdict)


def fault_words(exc: BaseException) -> str:
    """What went wrong, for the summary: the file named, a full disk called a full disk."""
    if isinstance(exc, io.OutputError):
        return f"{io.display_path(exc.path.name)}: {os_reason(exc)}"
    if isinstance(exc, OSError):
        name = io.display_path(Path(exc.filename).name) if exc.filename else ""
        return f"{name}: {os_reason(exc)}" if name else os_reason(exc)
    return f"{type(exc).__name__}: {exc}"


def os_reason(exc: BaseException) -> str:
    """Plain words for a failed write, naming a full disk as such."""
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, OSError) and chain.errno == errno.ENOSPC:
            return "the disk is full (no space left on device)"
        chain = chain.__cause__ or chain.__context__
    if isinstance(exc, io.OutputError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
