"""The one background thread that owns the engine: every load, detection, model run and export.

The GUI thread never runs torch or dlib. It talks to :class:`EngineWorker` (a QObject living
in its own QThread) only through :class:`EngineClient`:

* jobs go in by a queued signal carrying a :class:`Job` (kind, arguments, id, cancel token);
* answers come back as signals: ``progress(job_id, done, total, message)`` (throttled to a few
  a second), ``partial(job_id, payload)`` (one model's output as soon as it is ready),
  ``result(job_id, payload)``, ``failed(job_id, message)`` or ``cancelled(job_id)``, then
  ``finished(job_id)`` on every path (try/finally);
* cancel sets the job's :class:`engine.enhance.CancelToken` directly from the GUI thread
  (a thread-safe flag): a queued "cancel" slot would only run after the job it should stop.

Jobs run one at a time, in the order submitted, so the engine and its loaded models are only
ever touched by this one thread.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from app import errors
from engine.enhance import Cancelled, CancelToken

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2  # at most five progress updates a second reach the GUI


@dataclass
class Job:
    """One unit of work for the worker. ``token`` is shared with the GUI thread for cancelling."""

    id: int
    kind: str  # "init", "open", "box", "enhance", "export"
    args: dict[str, Any]
    token: CancelToken


@dataclass(frozen=True)
class EngineInfo:
    """Answer to "init": the device and every registered model with its status per scale."""

    device: str  # e.g. "cpu" or "cuda:0 (NVIDIA ...)"
    models: list  # [(ModelEntry, {scale: "installed" | "missing" | "invalid: ..."})]


@dataclass(frozen=True)
class OpenOutcome:
    """Answer to "open": the loaded still and the faces found in it (left to right)."""

    still: Any  # engine.io.Still
    faces: list  # [engine.faces.Face]
    detect_ms: float


@dataclass
class EnhanceOutcome:
    """Answer to "enhance": one Result per model that ran, and a message per model that failed."""

    face_index: int
    scale: int
    results: list = field(default_factory=list)  # [engine.enhance.Result]
    errors: dict[str, str] = field(default_factory=dict)  # model id -> message


@dataclass(frozen=True)
class ModelFailure:
    """A ``partial`` payload: one model of a multi-model job failed (the others go on)."""

    model_id: str
    message: str


@dataclass(frozen=True)
class ExportOutcome:
    """Answer to "export": the file written and its SHA-256."""

    path: Path
    sha256: str


class _ThrottledProgress:
    """Forwards progress at most every ``interval`` seconds, plus the first and the last update."""

    def __init__(
        self, emit: Callable[[int, int, str], None], interval: float = PROGRESS_INTERVAL_S
    ):
        self._emit = emit
        self._interval = interval
        self._last = -1e9

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done == 0 or done >= total or now - self._last >= self._interval:
            self._last = now
            self._emit(done, total, message)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str] | None) -> bool:
    """True if two paths name the same file (resolving links; by inode when both exist)."""
    if b is None:
        return False
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
        if minutes >= 60
        else f"{minutes}:{secs:02d}"
    )


def default_enhancer():
    """The real engine (imports torch: called in the worker thread only)."""
    from engine.enhance import Enhancer

    return Enhancer()


class EngineWorker(QObject):
    """Lives in the worker thread; owns the Enhancer (created there on the first job)."""

    progress = Signal(int, int, int, str)
    partial = Signal(int, object)
    result = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    finished = Signal(int)

    def __init__(self, enhancer_factory: Callable[[], Any] = default_enhancer) -> None:
        super().__init__()
        self._factory = enhancer_factory
        self._enhancer: Any = None

    @property
    def enhancer(self) -> Any:
        if self._enhancer is None:
            self._enhancer = self._factory()
        return self._enhancer

    @Slot(object)
    def run(self, job: Job) -> None:
        """Run one job; always ends with ``finished(job.id)``."""
        try:
            job.token.check()  # cancelled while it waited in the queue
            handler = getattr(self, f"_job_{job.kind}")
            payload = handler(job)
            job.token.check()  # cancelled during the last step: drop the answer
        except Cancelled:
            self.cancelled.emit(job.id)
        except Exception as exc:  # every failure becomes a message; the thread lives on
            log.warning("job %d (%s) failed: %s", job.id, job.kind, exc, exc_info=True)
            self.failed.emit(job.id, errors.user_message(exc))
        else:
            self.result.emit(job.id, payload)
        finally:
            self.finished.emit(job.id)

    # ------------------------------------------------------------------ jobs
    def _job_init(self, job: Job) -> EngineInfo:
        from engine import device as devices
        from engine import faces

        enhancer = self.enhancer
        device = str(getattr(enhancer, "device", "cpu"))
        try:
            described = devices.describe(device)
        except Exception:  # a test double may report a device torch does not know
            described = device
        faces.load_models()  # dlib's models load now rather than on the first open
        models = list(enhancer.models())
        # torch, dlib and Qt leave about a million long-lived objects. A full (generation 2)
        # garbage collection walks them all while holding the GIL: 300-500 ms measured on this
        # machine, during which the GUI thread freezes. Freezing them moves them out of the
        # collector's reach (they live as long as the process anyway); see scripts/ui_latency.py.
        gc.freeze()
        return EngineInfo(device=described, models=models)

    def _job_open(self, job: Job) -> OpenOutcome:
        from engine import faces, io

        job.token.set_progress(0, 2, "Reading the image")
        still = io.load(job.args["path"])
        job.token.check()
        job.token.set_progress(1, 2, "Looking for faces")
        start = time.perf_counter()
        found = faces.detect(still.rgb)
        detect_ms = (time.perf_counter() - start) * 1000
        job.token.set_progress(2, 2, f"{len(found)} face(s) found")
        return OpenOutcome(still=still, faces=found, detect_ms=detect_ms)

    def _job_box(self, job: Job) -> Any:
        from engine import faces

        return faces.face_from_box(job.args["still"].rgb, job.args["box"])

    def _job_enhance(self, job: Job) -> EnhanceOutcome:
        still, face = job.args["still"], job.args["face"]
        model_ids: Sequence[str] = job.args["model_ids"]
        scale: int = job.args["scale"]
        index: int = job.args["face_index"]
        keep_going: bool = job.args.get("keep_going", False)
        enhancer = self.enhancer
        outcome = EnhanceOutcome(face_index=index, scale=scale)
        total = len(model_ids)
        for i, model_id in enumerate(model_ids):
            job.token.check()
            job.token.set_progress(i, total, f"Running {model_id} \u00d7{scale} ({i + 1}/{total})")
            try:
                result = enhancer.enhance(still, face, model_id, scale, job.token, face_index=index)
            except Cancelled:
                raise
            except Exception as exc:
                if not keep_going:
                    raise
                message = errors.user_message(exc)
                log.warning("%s x%d failed: %s", model_id, scale, exc)
                outcome.errors[model_id] = message
                self.partial.emit(job.id, ModelFailure(model_id, message))
                continue
            # Result.pasted is the whole still enlarged by the scale: 400 MB for a 1080p still at
            # x8, for every model of a comparison. It is dropped here and rebuilt on export.
            result = dataclasses.replace(result, pasted=None)
            outcome.results.append(result)
            self.partial.emit(job.id, result)
        job.token.set_progress(total, total, "Done")
        return outcome

    def _job_batch(self, job: Job) -> Any:
        """A folder run (engine.batch); faults go out as ``partial`` payloads as they happen."""
        from engine import batch

        def on_event(event) -> None:
            if event.kind == "fault":
                self.partial.emit(job.id, event)
                return
            eta = "" if event.eta_s is None else f", about {_clock(event.eta_s)} left"
            job.token.set_progress(
                event.files_done,
                max(1, event.files_total),
                f"Batch: {event.files_done}/{event.files_total} files, "
                f"{event.faces_done} faces{eta}",
            )

        return batch.run_batch(
            job.args["in_dir"],
            job.args["out_dir"],
            job.args["model_ids"],
            job.args["scale"],
            recursive=job.args.get("recursive", True),
            token=job.token,
            on_event=on_event,
            enhancer=self.enhancer,
        )

    def _job_export(self, job: Job) -> ExportOutcome:
        """Write a PNG: ``rgb`` as given, or the full still rebuilt from ``still`` + ``results``.

        ``strip`` (optional) is the visible label, stacked below the image here.
        """
        from engine import io

        path = Path(job.args["path"])
        forbidden = job.args.get("forbidden")
        if same_file(path, forbidden):
            raise io.OutputError(
                path, "this is the evidence file that was opened; outputs are never written over it"
            )
        rgb = job.args.get("rgb")
        if rgb is None:
            rgb = full_image(job.args["still"], job.args["results"])
        strip = job.args.get("strip")
        if strip is not None:
            if strip.shape[1] != rgb.shape[1]:
                raise ValueError(f"label strip is {strip.shape[1]} px wide, image {rgb.shape[1]}")
            rgb = np.vstack([rgb, strip])
        sha = io.save_png(path, rgb, job.args.get("text"))
        return ExportOutcome(path=path, sha256=sha)


def full_image(still: Any, results: Sequence[Any]) -> np.ndarray:
    """The still enlarged by the results' scale with every result's face pasted in.

    The worker drops ``Result.pasted`` after each run (see ``_job_enhance``), so it is rebuilt
    here from the alignment each Result keeps, only when a full image is exported.
    """
    from engine import enhance, faces

    first = results[0]
    canvas = faces.paste_back(still.rgb, first.aligned, first.sr, scale=first.scale)
    return enhance.paste_all(still.rgb, [dataclasses.replace(first, pasted=canvas), *results[1:]])


class WorkerThread(QThread):
    """The worker's thread; its event loop runs inside a Python ``run``.

    Overriding ``run`` keeps one Python thread state alive for the thread's whole life. With
    QThread's C++ ``run``, each queued slot call creates and destroys a thread state, and
    dlib's pybind11 bindings crash (segfault in ``tstate_delete_common``) when they first
    initialise their numpy API from such a short-lived state.
    """

    def run(self) -> None:
        self.exec()


class EngineClient(QObject):
    """GUI-thread handle on the worker: starts the thread, submits jobs, cancels, shuts down."""

    progress = Signal(int, int, int, str)
    partial = Signal(int, object)
    result = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    finished = Signal(int)

    _submit = Signal(object)

    def __init__(
        self, enhancer_factory: Callable[[], Any] = default_enhancer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._tokens: dict[int, CancelToken] = {}
        self._kinds: dict[int, str] = {}
        self.thread = WorkerThread()
        self.thread.setObjectName("engine-worker")
        self.worker = EngineWorker(enhancer_factory)
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        # Relay the worker's signals (queued across threads) through this GUI-thread object.
        self.worker.progress.connect(self.progress)
        self.worker.partial.connect(self.partial)
        self.worker.result.connect(self.result)
        self.worker.failed.connect(self.failed)
        self.worker.cancelled.connect(self.cancelled)
        self.worker.finished.connect(self._forget)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.start()

    # ------------------------------------------------------------------ jobs
    def submit(self, kind: str, *, pausable: bool = False, **args: Any) -> int:
        """Queue a job for the worker; returns its id (the signals carry it back).

        ``pausable`` gives the job an ``engine.batch.PausableToken`` (see :meth:`pause`).
        """
        if not self.thread.isRunning():
            raise RuntimeError("the engine worker has been shut down")
        if not hasattr(EngineWorker, f"_job_{kind}"):
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = next(self._ids)
        progress = _ThrottledProgress(
            lambda done, total, message: self.worker.progress.emit(job_id, done, total, message)
        )
        if pausable:
            from engine.batch import PausableToken

            token: CancelToken = PausableToken(on_progress=progress)
        else:
            token = CancelToken(on_progress=progress)
        self._tokens[job_id] = token
        self._kinds[job_id] = kind
        self._submit.emit(Job(id=job_id, kind=kind, args=args, token=token))
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop (thread-safe: sets its token's flag; the engine checks it)."""
        token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def pause(self, job_id: int, paused: bool) -> None:
        """Pause or resume a pausable job (thread-safe; it stops at its next check)."""
        token = self._tokens.get(job_id)
        if token is not None and hasattr(token, "pause"):
            token.pause() if paused else token.resume()

    def cancel_all(self) -> None:
        for token in list(self._tokens.values()):
            token.cancel()

    def pending(self) -> dict[int, str]:
        """Jobs submitted and not finished yet: id -> kind."""
        return dict(self._kinds)

    def is_busy(self) -> bool:
        return bool(self._kinds)

    @Slot(int)
    def _forget(self, job_id: int) -> None:
        self._tokens.pop(job_id, None)
        self._kinds.pop(job_id, None)
        self.finished.emit(job_id)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every job, stop the thread and wait for it; True if it stopped in time."""
        self.cancel_all()
        if not self.thread.isRunning():
            return True
        self.thread.quit()
        stopped = self.thread.wait(timeout_ms)
        if not stopped:
            log.error("the engine worker did not stop within %d ms", timeout_ms)
        return bool(stopped)
