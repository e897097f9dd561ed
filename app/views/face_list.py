"""The faces dock: the detector to use, and one row per face (thumbnail, number, native size,
and the detector's score in words)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from app.views.common import rgb_to_pixmap

THUMB = 72


def face_thumbnail(
    rgb: np.ndarray, box: tuple[float, float, float, float], size: int = THUMB
) -> np.ndarray:
    """A square crop around ``box`` (with 20% margin), still pixels only; no resampling here."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * 1.2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(max(0, math.floor(cx - side / 2)))
    top = int(max(0, math.floor(cy - side / 2)))
    right = int(min(w, math.ceil(cx + side / 2)))
    bottom = int(min(h, math.ceil(cy + side / 2)))
    if right <= left or bottom <= top:
        return np.zeros((size, size, 3), np.uint8)
    return np.ascontiguousarray(rgb[top:bottom, left:right])


DETECTORS = {  # id -> what the analyst chooses
    "auto": "Auto (HOG, CNN)",
    "hog": "HOG (fast)",
    "cnn": "CNN (slower)",
}
SCORE_MEANING = {
    "hog": "how strongly dlib's HOG detector matched a frontal face (its SVM margin: 0 is the "
    "decision line, clear faces score about 1 or more)",
    "cnn": "the confidence of dlib's CNN (MMOD) detector (0 is the decision line, clear faces "
    "score about 1 or more)",
}


def score_words(score: float, detector: str = "hog") -> str:
    """ "strong", "fair" or "weak": the detector's score in words (neither a probability nor a
    statement about who the face is)."""
    if score >= 1.0:
        return "strong"
    return "fair" if score >= (0.5 if detector == "hog" else 0.6) else "weak"


def face_caption(
    index: int,
    score: float,
    manual: bool,
    native_px: float | None = None,
    detector: str = "hog",
) -> str:
    """ "#1  native 41 px \u00b7 strong match (HOG score 1.23)" or "#2  native 18 px \u00b7
    drawn by hand".

    The native size is the side, in the still's pixels, of the frame a model's 128 px output
    shows (engine.resolution): what the evidence holds for this face."""
    size = "" if native_px is None else f"native {native_px:.0f} px \u00b7 "
    if manual or score is None or (isinstance(score, float) and math.isnan(score)):
        return f"#{index + 1}  {size}drawn by hand"
    words = score_words(score, detector)
    return f"#{index + 1}  {size}{words} match ({detector.upper()} score {score:.2f})"


class DetectorBar(QWidget):
    """The detector to use for this still and the next ones, and "Detect again"."""

    detectorChanged = Signal(str)
    detectRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        for key, text in DETECTORS.items():
            self.combo.addItem(text, key)
        self.combo.setToolTip(
            "Face detector. HOG is fast and finds frontal faces; the CNN is slower and finds "
            "smaller, turned and blurred faces. Auto runs HOG and, when it finds no face, the CNN."
        )
        self.combo.activated.connect(lambda i: self.detectorChanged.emit(self.combo.itemData(i)))
        self.button = QPushButton("Detect again")
        self.button.setToolTip(
            "Look for faces again with the chosen detector (faces drawn by hand and results "
            "for this still are dropped; the detection is logged)"
        )
        self.button.clicked.connect(self.detectRequested)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        row.addWidget(self.combo, 1)
        row.addWidget(self.button)

    def detector(self) -> str:
        return str(self.combo.currentData())

    def set_detector(self, detector: str) -> None:
        index = self.combo.findData(detector)
        self.combo.setCurrentIndex(max(0, index))


class FaceList(QListWidget):
    """One row per face; selecting a row emits :attr:`faceSelected` with the face's index."""

    faceSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)  # the caption in two lines in a narrow dock
        self.currentRowChanged.connect(self._row_changed)

    def set_faces(self, rgb: np.ndarray | None, faces: Sequence, detector: str = "hog") -> None:
        """Fill the list from engine Face objects (``box``, ``score``, ``manual``) found by
        ``detector``."""
        self.blockSignals(True)
        try:
            self.clear()
            for i, face in enumerate(faces):
                native = getattr(face, "native_frame_px", None)
                item = QListWidgetItem(face_caption(i, face.score, face.manual, native, detector))
                if rgb is not None:
                    thumb = rgb_to_pixmap(face_thumbnail(rgb, face.box)).scaled(
                        THUMB,
                        THUMB,
                        Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
                    item.setIcon(QIcon(thumb))
                tip = "Box x0={:.0f} y0={:.0f} x1={:.0f} y1={:.0f} (still pixels)".format(*face.box)
                if not face.manual:
                    tip += f"\nScore: {SCORE_MEANING.get(detector, detector)}"
                if native is not None:
                    tip += (
                        f"\nNative frame {native:.1f} px, eyes {face.interocular_px:.1f} px apart: "
                        "Auto enlarges it without shrinking it first"
                    )
                item.setToolTip(tip)
                self.addItem(item)
        finally:
            self.blockSignals(False)

    def select(self, index: int | None) -> None:
        """Select a row without emitting :attr:`faceSelected` (the caller already knows)."""
        self.blockSignals(True)
        try:
            self.setCurrentRow(-1 if index is None else index)
        finally:
            self.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.faceSelected.emit(row)
