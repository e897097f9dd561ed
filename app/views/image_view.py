"""The whole still with the detected faces outlined; click a face to select it, or draw a box.

When the detector finds nothing (small, turned or blurred faces), the analyst switches on
"draw face box" (it switches on by itself when no face is found) and drags a rectangle around
the face; :attr:`ImageView.boxDrawn` carries it, in still pixels, to
:mod:`app.controllers.hand_box`, where it is refined (landmarks shown, box adjustable) before
the face is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsView,
    QWidget,
)

from app.views.common import rgb_to_pixmap
from app.views.zoom_view import ZoomView

FACE_COLOUR = QColor("#00e5ff")
SELECTED_COLOUR = QColor("#ffea00")
MANUAL_COLOUR = QColor("#ff9100")
MIN_BOX = 4  # still pixels; engine.faces refuses smaller boxes too
CLICK_SLOP = 4  # screen pixels a press may move and still count as a click


class FaceTag(QGraphicsItem):
    """The face's number on a coloured tab just above the box's top-left corner.

    Drawn in screen pixels (ItemIgnoresTransformations), so it is readable at every zoom.
    """

    def __init__(self, text: str, font: QFont) -> None:
        super().__init__()
        self._text = text
        self._font = font
        self._colour = FACE_COLOUR
        metrics = QFontMetricsF(font)
        self._rect = QRectF(
            0, -metrics.height() - 4, metrics.horizontalAdvance(text) + 10, metrics.height() + 4
        )
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(6)

    def set_colour(self, colour: QColor) -> None:
        self._colour = colour
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter, option, widget=None) -> None:
        painter.fillRect(self._rect, self._colour)
        painter.setFont(self._font)
        painter.setPen(QColor("#000000"))
        painter.drawText(self._rect, int(Qt.AlignmentFlag.AlignCenter), self._text)


class ImageView(ZoomView):
    """The still, zoomable, with one outlined, numbered rectangle per face."""

    faceClicked = Signal(int)
    boxDrawn = Signal(tuple)  # (x0, y0, x1, y1) in still pixels
    imageReplaced = Signal()  # before the scene is cleared: items others added are gone

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap_item: QGraphicsPixmapItem | None = None
        self._face_items: list[tuple[QGraphicsRectItem, FaceTag, bool]] = []
        self._boxes: list[tuple[float, float, float, float]] = []
        self._selected: int | None = None
        self._draw_mode = False
        self._band: QGraphicsRectItem | None = None
        self._band_origin: QPointF | None = None
        self._press_pos = None
        self.set_placeholder("Open a still (File \u25b8 Open\u2026) or drop an image file here")

    # ------------------------------------------------------------------ content
    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show a new still (or nothing); clears the faces and fits the view."""
        self.imageReplaced.emit()
        scene = self.scene()
        scene.clear()
        self._face_items = []
        self._boxes = []
        self._selected = None
        self._band = None
        self._pixmap_item = None
        if rgb is None:
            scene.setSceneRect(QRectF())
            self.viewport().update()
            return
        self._pixmap_item = scene.addPixmap(rgb_to_pixmap(rgb))
        self._pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        scene.setSceneRect(QRectF(0, 0, rgb.shape[1], rgb.shape[0]))
        self.fit()

    def has_image(self) -> bool:
        return self._pixmap_item is not None

    def set_faces(
        self,
        boxes: Sequence[tuple[float, float, float, float]],
        manual: Sequence[bool] | None = None,
    ) -> None:
        """Outline the faces (boxes in still pixels), numbered from 1 in list order."""
        for rect_item, text_item, _ in self._face_items:
            self.scene().removeItem(rect_item)
            self.scene().removeItem(text_item)
        self._face_items = []
        self._boxes = [tuple(float(v) for v in b) for b in boxes]
        manual = list(manual) if manual is not None else [False] * len(self._boxes)
        font = QFont(self.font())
        font.setBold(True)
        for i, (x0, y0, x1, y1) in enumerate(self._boxes):
            rect_item = self.scene().addRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            rect_item.setZValue(5)
            text_item = FaceTag(str(i + 1), font)
            text_item.setPos(x0, y0)
            self.scene().addItem(text_item)
            self._face_items.append((rect_item, text_item, manual[i]))
        self._restyle()

    def select_face(self, index: int | None) -> None:
        """Highlight one face (None: none)."""
        self._selected = index
        self._restyle()

    def selected_face(self) -> int | None:
        return self._selected

    def face_count(self) -> int:
        return len(self._boxes)

    def _restyle(self) -> None:
        for i, (rect_item, text_item, manual) in enumerate(self._face_items):
            colour = (
                SELECTED_COLOUR
                if i == self._selected
                else (MANUAL_COLOUR if manual else FACE_COLOUR)
            )
            pen = QPen(colour, 3 if i == self._selected else 2)
            pen.setCosmetic(True)  # same width on screen at every zoom
            rect_item.setPen(pen)
            text_item.set_colour(colour)

    # ------------------------------------------------------------------ drawing a box
    def set_draw_mode(self, on: bool) -> None:
        """In draw mode a left drag draws a face box instead of panning."""
        self._draw_mode = bool(on)
        self.setDragMode(
            QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag
        )
        self.viewport().setCursor(
            Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor
        )

    def draw_mode(self) -> bool:
        return self._draw_mode

    def face_at(self, scene_pos: QPointF) -> int | None:
        """The smallest face box containing a scene point (faces may nest)."""
        best, best_area = None, math.inf
        for i, (x0, y0, x1, y1) in enumerate(self._boxes):
            if x0 <= scene_pos.x() <= x1 and y0 <= scene_pos.y() <= y1:
                area = (x1 - x0) * (y1 - y0)
                if area < best_area:
                    best, best_area = i, area
        return best

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._press_pos = event.position()
        if self._draw_mode and event.button() == Qt.MouseButton.LeftButton and self.has_image():
            self._band_origin = self._clamp(self.mapToScene(event.position().toPoint()))
            pen = QPen(MANUAL_COLOUR, 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._band = self.scene().addRect(QRectF(self._band_origin, self._band_origin), pen)
            self._band.setZValue(20)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._band is not None and self._band_origin is not None:
            corner = self._clamp(self.mapToScene(event.position().toPoint()))
            self._band.setRect(QRectF(self._band_origin, corner).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._band is not None:
            rect = self._band.rect()
            self.scene().removeItem(self._band)
            self._band, self._band_origin = None, None
            event.accept()
            if rect.width() >= MIN_BOX and rect.height() >= MIN_BOX:
                self.boxDrawn.emit((rect.left(), rect.top(), rect.right(), rect.bottom()))
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press_pos is not None:
            moved = (event.position() - self._press_pos).manhattanLength()
            if moved <= CLICK_SLOP:
                index = self.face_at(self.mapToScene(event.position().toPoint()))
                if index is not None:
                    self.faceClicked.emit(index)
        self._press_pos = None

    def _clamp(self, point: QPointF) -> QPointF:
        rect = self.sceneRect()
        return QPointF(
            min(max(point.x(), rect.left()), rect.right()),
            min(max(point.y(), rect.top()), rect.bottom()),
        )
