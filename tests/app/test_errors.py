"""app.errors: every kind of failure becomes a message an analyst can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import errors
from engine.batch import BatchError
from engine.caselog import CaseLogDamaged
from engine.enhance import Cancelled
from engine.faces import FaceError
from engine.io import ImageLoadError, OutputError
from engine.weights import WeightsError


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError, recognised by name."""


@pytest.mark.parametrize(
    ("exc", "title", "words"),
    [
        (
            ImageLoadError(Path("/x/still.jpg"), "the file is truncated or damaged"),
            "Cannot open the image",
            "Cannot open still.jpg: the file is truncated or damaged",
        ),
        (FaceError("the box drawn around the face is too small"), "Face problem", "Draw face box"),
        (
            WeightsError(Path("/w/s2_rafsr_x4.safetensors"), "its SHA-256 does not match"),
            "Model weights problem",
            "s2_rafsr_x4.safetensors",
        ),
        (
            OutputError(Path("/o/face.png"), "the disk is full"),
            "Cannot write the file",
            "Nothing was overwritten",
        ),
        (MemoryError(), "Out of memory", "x4 scale"),
        (
            CaseLogDamaged("the case log ends with a half-written entry"),
            "Case log problem",
            "can be repaired",
        ),
        (OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "Out of memory", "x8"),
        (
            BatchError("the output folder /a/b is inside the input folder /a"),
            "The batch run cannot start",
            "inside the input folder",
        ),
        (PermissionError(13, "Permission denied", "/root/x"), "Permission denied", "/root/x"),
        (KeyError("boom"), "Unexpected error", "KeyError"),
    ],
)
def test_describe(exc, title, words):
    message = errors.describe(exc)
    assert message.title == title
    assert words in message.full()
    assert message.hint  # always says what to do next


def test_cancellation_is_not_an_error(qtbot):
    from PySide6.QtWidgets import QMainWindow, QMessageBox

    assert errors.is_cancellation(Cancelled("cancelled"))
    assert not errors.is_cancellation(ValueError("x"))
    window = QMainWindow()
    qtbot.addWidget(window)
    presenter = errors.ErrorPresenter(window, window.statusBar())
    presenter.exception(Cancelled("cancelled"))
    assert window.statusBar().currentMessage() == "Cancelled"
    assert not window.findChildren(QMessageBox)
    presenter.exception(FaceError("no landmarks"))
    boxes = window.findChildren(QMessageBox)
    assert len(boxes) == 1 and boxes[0].windowTitle() == "Face problem" and boxes[0].isVisible()
    boxes[0].close()
