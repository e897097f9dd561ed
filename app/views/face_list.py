"""The list of faces in the dock: a thumbnail, the face's number and the detector's score."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

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


def face_caption(index: int, score: float, manual: bool, native_px: float | None = None) -> str:
    """ "#1  native 41 px \u00b7 score 1.23" or "#2  native 18 px \u00b7 drawn by hand".

    The native size is the side, in the still's pixels, of the frame a model's 128 px output
    shows (engine.resolution): what the evidence holds for this face."""
    size = "" if native_px is None else f"native {native_px:.0f} px \u00b7 "
    if manual or score is None or (isinstance(score, float) and math.isnan(score)):
        return f"#{index + 1}  {size}drawn by hand"
    return f"#{index + 1}  {size}score {score:.2f}"


class FaceList(QListWidget):
    """One row per face; selecting a row emits :attr:`faceSelected` with the face's index."""

    faceSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.currentRowChanged.connect(self._row_changed)

    def set_faces(self, rgb: np.ndarray | None, faces: Sequence) -> None:
        """Fill the list from engine Face objects (``box``, ``score``, ``manual``)."""
        self.blockSignals(True)
        try:
            self.clear()
            for i, face in enumerate(faces):
                native = getattr(face, "native_frame_px", None)
                item = QListWidgetItem(face_caption(i, face.score, face.manual, native))
                if rgb is not None:
                    thumb = rgb_to_pixmap(face_thumbnail(rgb, face.box)).scaled(
                        THUMB,
                        THUMB,
                        Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
                    item.setIcon(QIcon(thumb))
                tip = "Box x0={:.0f} y0={:.0f} x1={:.0f} y1={:.0f} (still pixels)".format(*face.box)
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
