"""The GUI thread's handle on the engine worker: submit typed jobs, cancel, pause, shut down.

:meth:`EngineClient.submit` takes a job's argument dataclass (:mod:`app.jobs`), looks its kind
up in :data:`app.worker.JOBS` and returns a :class:`JobHandle` whose signals belong to that job
alone (``progress``, ``partial``, ``result``, ``failed`` with an :class:`app.errors.ErrorMessage`,
``cancelled``, then ``finished`` on every path). The client also relays every job's signals
with the job id first, for callers that watch all jobs (tests, the smoke test).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.jobs import Job, JobSpec
from app.worker import JOBS, EngineWorker, default_enhancer
from engine.progress import CancelToken, PausableToken

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2  # at most five progress updates a second reach the GUI


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


class JobHandle(QObject):
    """One submitted job: its spec, its cancel token, and signals for this job only."""

    progress = Signal(int, int, str)  # done, total, message
    partial = Signal(object)
    result = Signal(object)
    failed = Signal(object)  # app.errors.ErrorMessage
    cancelled = Signal()
    finished = Signal()

    def __init__(self, job_id: int, spec: JobSpec, token: CancelToken) -> None:
        super().__init__()  # no parent: the client holds it until it finishes, then lets go
        self.id = job_id
        self.spec = spec
        self.token = token

    @property
    def kind(self) -> str:
        return self.spec.kind

    def cancel(self) -> None:
        """Ask the job to stop (thread-safe: sets its token's flag; the engine checks it)."""
        self.token.cancel()

    def pause(self, paused: bool) -> None:
        """Pause or resume a pausable job (thread-safe; it stops at its next check)."""
        if isinstance(self.token, PausableToken):
            self.token.pause() if paused else self.token.resume()


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
    failed = Signal(int, object)  # job id, app.errors.ErrorMessage
    cancelled = Signal(int)
    finished = Signal(int)
    logged = Signal(int, object)
    log_failed = Signal(int, str, bool)

    _submit = Signal(object)

    def __init__(
        self, enhancer_factory: Callable[[], Any] = default_enhancer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._handles: dict[int, JobHandle] = {}
        self.thread = WorkerThread()
        self.thread.setObjectName("engine-worker")
        self.worker = EngineWorker(enhancer_factory)
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        # Relay the worker's signals (queued across threads) through this GUI-thread object:
        # first to the job's own handle, then to the client's all-jobs signals.
        self.worker.progress.connect(self._on_progress)
        self.worker.partial.connect(self._on_partial)
        self.worker.result.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.logged.connect(self.logged)
        self.worker.log_failed.connect(self.log_failed)
        self.worker.finished.connect(self._forget)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.start()

    # ------------------------------------------------------------------ jobs
    def submit(self, args: Any) -> JobHandle:
        """Queue a job for the worker (``args``: an argument dataclass from :mod:`app.jobs`)."""
        if not self.thread.isRunning():
            raise RuntimeError("the engine worker has been shut down")
        spec = JOBS.get(type(args))
        if spec is None:
            raise ValueError(f"unknown job kind {type(args).__name__!r}")
        job_id = next(self._ids)
        progress = _ThrottledProgress(
            lambda done, total, message: self.worker.progress.emit(job_id, done, total, message)
        )
        token_type = PausableToken if spec.pausable else CancelToken
        token = token_type(on_progress=progress)
        handle = JobHandle(job_id, spec, token)
        self._handles[job_id] = handle
        self._submit.emit(Job(id=job_id, spec=spec, args=args, token=token))
        return handle

    def handle(self, job_id: int) -> JobHandle | None:
        return self._handles.get(job_id)

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop (thread-safe: sets its token's flag; the engine checks it)."""
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.cancel()

    def pause(self, job_id: int, paused: bool) -> None:
        """Pause or resume a pausable job (thread-safe; it stops at its next check)."""
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.pause(paused)

    def cancel_all(self) -> None:
        for handle in list(self._handles.values()):
            handle.cancel()

    def pending(self) -> dict[int, str]:
        """Jobs submitted and not finished yet: id -> kind."""
        return {job_id: h.kind for job_id, h in self._handles.items()}

    def is_busy(self) -> bool:
        return bool(self._handles)

    # ------------------------------------------------------------------ relays
    @Slot(int, int, int, str)
    def _on_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        if (handle := self._handles.get(job_id)) is not None:
            handle.progress.emit(done, total, message)
        self.progress.emit(job_id, done, total, message)

    @Slot(int, object)
    def _on_partial(self, job_id: int, payload: Any) -> None:
        if (handle := self._handles.get(job_id)) is not None:
            handle.partial.emit(payload)
        self.partial.emit(job_id, payload)

    @Slot(int, object)
    def _on_result(self, job_id: int, payload: Any) -> None:
        if (handle := self._handles.get(job_id)) is not None:
            handle.result.emit(payload)
        self.result.emit(job_id, payload)

    @Slot(int, object)
    def _on_failed(self, job_id: int, error: Any) -> None:
        if (handle := self._handles.get(job_id)) is not None:
            handle.failed.emit(error)
        self.failed.emit(job_id, error)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if (handle := self._handles.get(job_id)) is not None:
            handle.cancelled.emit()
        self.cancelled.emit(job_id)

    @Slot(int)
    def _forget(self, job_id: int) -> None:
        handle = self._handles.pop(job_id, None)
        if handle is not None:
            handle.finished.emit()
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
