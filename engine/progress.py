"""Progress and cancel tokens: what every long engine call takes to report and to stop.

The GUI (or a script) keeps the token; the engine calls :meth:`CancelToken.check` at every
face, model and tile, which raises :class:`Cancelled` once :meth:`CancelToken.cancel` was called
from any thread, and reports with :meth:`CancelToken.set_progress`. A token without a progress
hook is the no-op token for scripts and tests. (chaiNNer's ``api/node_context.py`` habit.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """The user cancelled the run (not an error: callers show nothing alarming)."""


class CancelToken:
    """Thread-safe cancel flag plus a progress hook, passed into long engine calls.

    The GUI thread calls :meth:`cancel`; the worker thread's engine calls :meth:`check` at every
    face and model, which raises :class:`Cancelled`. Progress goes to ``on_progress`` (or to an
    override of :meth:`set_progress` in a subclass); by default it is dropped.
    """

    def __init__(self, on_progress: Callable[[int, int, str], None] | None = None) -> None:
        self._event = threading.Event()
        self._on_progress = on_progress

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("cancelled")

    def set_progress(self, done: int, total: int, message: str) -> None:
        if self._on_progress is not None:
            self._on_progress(done, total, message)


class PausableToken(CancelToken):
    """A :class:`CancelToken` that can also pause: :meth:`check` blocks while paused.

    :meth:`cancel` also ends a pause, so a paused run can be cancelled.
    """

    def __init__(self, on_progress: Callable[[int, int, str], None] | None = None) -> None:
        super().__init__(on_progress)
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def cancel(self) -> None:
        super().cancel()
        self._running.set()

    def wait_running(self, timeout: float | None = None) -> bool:
        """Wait until not paused (at most ``timeout`` seconds); True if running."""
        return self._running.wait(timeout)

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancelled; wait here while paused."""
        super().check()
        self._running.wait()
        super().check()
