"""The one place that turns exceptions into messages an analyst can act on, and shows them.

The worker thread calls :func:`describe` (pure Python, no widgets) and sends the
:class:`ErrorMessage` object over its ``failed`` signal; the GUI thread shows it with
:class:`ErrorPresenter`, either as a dialog (a job the user started failed, titled by the job's
``failure_title`` in :data:`app.worker.JOBS`) or in the status bar (something in the
background). Cancelling is
not an error: :func:`is_cancellation` lets callers say "Cancelled" quietly instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from engine.device import is_out_of_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorMessage:
    """What to tell the analyst: a title, what happened, and what to do about it."""

    title: str
    text: str
    hint: str = ""

    def full(self) -> str:
        return f"{self.text}\n\n{self.hint}" if self.hint else self.text


def _engine_classes() -> dict[str, tuple[type, ...]]:
    """The engine's exception classes, imported lazily (the worker has them loaded already)."""
    found: dict[str, tuple[type, ...]] = {}
    for key, module, name in (
        ("image", "engine.io", "ImageLoadError"),
        ("output", "engine.io", "OutputError"),
        ("face", "engine.faces", "FaceError"),
        ("weights", "engine.weights", "WeightsError"),
        ("cancelled", "engine.progress", "Cancelled"),
        ("batch", "engine.batch", "BatchError"),
        ("caselog", "engine.caselog", "CaseLogError"),
    ):
        try:
            cls = getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):  # that part of the engine is not installed
            continue
        found[key] = found.get(key, ()) + (cls,)
    return found


def is_cancellation(exc: BaseException) -> bool:
    """True for the engine's Cancelled (the user asked to stop: not an error)."""
    cancelled = _engine_classes().get("cancelled", ())
    return bool(cancelled) and isinstance(exc, cancelled)


def describe(exc: BaseException) -> ErrorMessage:
    """Turn any exception into a message for the analyst. Never raises."""
    classes = _engine_classes()
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, classes.get("image", ())):
        return ErrorMessage(
            "Cannot open the image",
            text,
            "The file may be damaged, truncated or in a format the app cannot read "
            "(PNG, JPEG, TIFF, BMP, WebP and GIF are supported). The file itself was not changed.",
        )
    if isinstance(exc, classes.get("face", ())):
        return ErrorMessage(
            "Face problem",
            text,
            "If the face was not found or was placed badly, switch on \u201cDraw face box\u201d "
            "and drag a rectangle around the face.",
        )
    if isinstance(exc, classes.get("batch", ())):
        return ErrorMessage(
            "The batch run cannot start",
            text,
            "Nothing was written. Check the folders (the output must be outside the input "
            "folder) and that every chosen model has trained weights at this scale.",
        )
    if isinstance(exc, classes.get("caselog", ())):
        return ErrorMessage(
            "Case log problem",
            text,
            "Nothing was recorded for this step. Use Forensics > Verify case log to see the "
            "log's state; a half-written last line (after a crash) can be repaired there.",
        )
    if isinstance(exc, classes.get("weights", ())):
        return ErrorMessage(
            "Model weights problem",
            text,
            "This model's weight file is missing, damaged or not the expected one, so the model "
            "cannot run. The other models are not affected.",
        )
    if isinstance(exc, classes.get("output", ())):
        return ErrorMessage(
            "Cannot write the file",
            text,
            "Nothing was overwritten. Choose another folder, or check the disk space "
            "and permissions.",
        )
    if is_out_of_memory(exc):
        return ErrorMessage(
            "Out of memory",
            "There was not enough memory to finish this step.",
            "Try the x4 scale instead of x8, one model at a time, or close other programs. "
            "The image and the models already loaded are unaffected.",
        )
    if isinstance(exc, FileNotFoundError):
        return ErrorMessage("File not found", text, "The file may have been moved or deleted.")
    if isinstance(exc, PermissionError):
        return ErrorMessage(
            "Permission denied", text, "Check that you may read or write this location."
        )
    return ErrorMessage(
        "Unexpected error",
        f"{type(exc).__name__}: {text}",
        "This is a fault in the application, not in your image. The details are in the log.",
    )


def user_message(exc: BaseException) -> str:
    """:func:`describe` as one string (text and hint), e.g. for a ``failed`` signal."""
    return describe(exc).full()


class ErrorPresenter:
    """Shows messages in the GUI thread: a window-modal dialog or a status-bar line.

    Dialogs are opened with ``open()`` (not ``exec()``) so the event loop keeps running: the
    window stays responsive and tests can find and close the dialog.
    """

    DIALOG_NAME = "errorDialog"

    def __init__(self, parent: QWidget, status_bar: QStatusBar | None = None) -> None:
        self._parent = parent
        self._status = status_bar
        self.last_message: str | None = None

    def dialog(self, title: str, message: str) -> QMessageBox:
        """Show ``message`` in a warning dialog titled ``title``."""
        self.last_message = message
        log.warning("%s: %s", title, message)
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self._parent
        )
        box.setObjectName(self.DIALOG_NAME)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def failure(self, error: ErrorMessage, title: str | None = None) -> QMessageBox:
        """A job's failure (sent by the worker as an object): a dialog titled by the job."""
        return self.dialog(title or error.title, error.full())

    def status(self, message: str, timeout_ms: int = 8000) -> None:
        """A passing message in the status bar (for things the user did not directly ask for)."""
        self.last_message = message
        if self._status is not None:
            self._status.showMessage(message, timeout_ms)

    def exception(self, exc: BaseException, title: str | None = None) -> None:
        """Present an exception caught in the GUI thread (cancellation: status bar only)."""
        if is_cancellation(exc):
            self.status("Cancelled")
            return
        msg = describe(exc)
        if msg.title == "Unexpected error":
            log.error("unexpected error", exc_info=exc)
        self.dialog(title or msg.title, msg.full())
