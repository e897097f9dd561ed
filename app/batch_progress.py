"""How a batch run's progress reaches the batch dialog.

The run (``engine.batch``) reports each file it finishes; the worker turns those events into
"File 9 of 11: sub/c.jpg" (:func:`app.worker.batch_progress_text`), the file being worked on.
Two things would spoil that:

* the run also reports through its token ("sub/b.jpg: ok", the file just finished) a moment
  before the worker's line, and the throttle (:class:`app.client._ThrottledProgress`) then keeps
  the run's line and drops the worker's. :class:`QuietToken` gives the run the job's pause and
  cancel but not its progress hook, so only the worker's line is sent;
* between two finished files the bar would stand still for as long as a file takes.
  :class:`FileProgress` moves it within the file by the average time a file has taken so far
  (an estimate, capped short of the next file; frozen while paused); the first file, with no
  time measured yet, shows a busy bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QProgressBar

from engine.progress import CancelToken, PausableToken

STEPS = 1000  # bar units per file
CAP = 0.95  # within a file the estimate stops here until the file is finished
TICK_MS = 250
TIP = (
    "Finished files of all files. Within a file the bar moves by the average time a file has "
    "taken so far (an estimate); the first file shows a busy bar."
)


class QuietToken(PausableToken):
    """The job's token for ``engine.batch.run_batch``: pause and cancel reach the run, the
    run's own progress lines do not (the worker reports from the run's events instead)."""

    def __init__(self, token: CancelToken) -> None:
        super().__init__()
        self._token = token

    def set_progress(self, done: int, total: int, message: str) -> None:
        """Dropped: the worker reports the file being worked on from the run's events."""

    def cancel(self) -> None:
        self._token.cancel()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def check(self) -> None:
        self._token.check()

    def pause(self) -> None:
        if isinstance(self._token, PausableToken):
            self._token.pause()

    def resume(self) -> None:
        if isinstance(self._token, PausableToken):
            self._token.resume()

    @property
    def paused(self) -> bool:
        return isinstance(self._token, PausableToken) and self._token.paused

    def wait_running(self, timeout: float | None = None) -> bool:
        if isinstance(self._token, PausableToken):
            return self._token.wait_running(timeout)
        return True


class FileProgress(QObject):
    """Drives the batch dialog's bar: finished files, and an estimate within the current one."""

    def __init__(self, bar: QProgressBar, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(bar)
        self._bar, self._clock = bar, clock
        self._bar.setToolTip(TIP)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)
        self.reset()

    def reset(self) -> None:
        self._timer.stop()
        self._done: int | None = None
        self._total = 0
        self._file_start = self._clock()
        self._seconds: list[float] = []  # per finished file, this run
        self._paused_at: float | None = None

    def update(self, done: int, total: int) -> None:
        """The run's count of finished files (``done`` of ``total``)."""
        now = self._clock()
        if self._done is not None and done > self._done and self._paused_at is None:
            self._seconds.append((now - self._file_start) / (done - self._done))
        if done != self._done:
            self._done, self._file_start = done, now
        self._total = total
        if total <= 0 or (done < total and not self._seconds):
            self._timer.stop()
            self._bar.setRange(0, 0)  # busy: nothing measured yet
            return
        self._bar.setRange(0, total * STEPS)
        self._bar.setFormat(f"{min(done, total)}/{total} files")
        if done >= total:
            self._timer.stop()
            self._bar.setValue(total * STEPS)
            return
        if self._paused_at is None:
            self._timer.start()
        self.tick()

    def fraction(self) -> float:
        """How far into the current file the estimate is (0 .. :data:`CAP`)."""
        if not self._seconds:
            return 0.0
        now = self._paused_at if self._paused_at is not None else self._clock()
        mean = sum(self._seconds) / len(self._seconds)
        return min(CAP, max(0.0, (now - self._file_start) / max(mean, 1e-3)))

    def tick(self) -> None:
        if self._done is None or not self._seconds or self._done >= self._total:
            return
        self._bar.setValue(int((self._done + self.fraction()) * STEPS))

    def set_paused(self, paused: bool) -> None:
        """A paused run does not move on: the estimate freezes, and resumes where it was."""
        now = self._clock()
        if paused and self._paused_at is None:
            self._paused_at = now
            self._timer.stop()
        elif not paused and self._paused_at is not None:
            self._file_start += now - self._paused_at
            self._paused_at = None
            if self._seconds and self._done is not None and self._done < self._total:
                self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
