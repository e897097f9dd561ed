"""A face box drawn by hand, refined before anything runs: the box, its handles, the landmarks
fitted in it, and the banner above the still that asks the analyst to use it or discard it.

:class:`HandBoxItem` is the adjustable box on the still (drag inside to move, drag a handle to
resize; ``adjusted`` fires once, when the mouse is let go). It shows the 68 landmarks the
worker fitted in it and, dotted, the square the landmark predictor used. :class:`HandBoxBanner`
sits above the still (:class:`StillPage`; the image is never hidden under it) and says what to
do, and what looks wrong with the fit. :mod:`app.controllers.hand_box` ties them to the worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsObject,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.views.zoom_view import LandmarkItem

BOX_COLOUR = QColor("#ff9100")  # the hand-drawn face's colour in the still (image_view)
WARN_COLOUR = QColor("#ff1744")
HANDLE = 5.0  # half a handle's side, screen pixels; also how near an edge a press grabs it
MIN_SIDE = 4.0  # still pixels; engine.faces refuses smaller boxes
CURSORS = {
    "move": Qt.CursorShape.SizeAllCursor,
    "l": Qt.CursorShape.SizeHorCursor,
    "r": Qt.CursorShape.SizeHorCursor,
    "t": Qt.CursorShape.SizeVerCursor,
    "b": Qt.CursorShape.SizeVerCursor,
    "tl": Qt.CursorShape.SizeFDiagCursor,
    "br": Qt.CursorShape.SizeFDiagCursor,
    "tr": Qt.CursorShape.SizeBDiagCursor,
    "bl": Qt.CursorShape.SizeBDiagCursor,
}


def box_tuple(rect: QRectF) -> tuple[float, float, float, float]:
    return (rect.left(), rect.top(), rect.right(), rect.bottom())


class HandBoxItem(QGraphicsObject):
    """The box being refined, in still pixels, kept inside ``bounds`` (the still)."""

    adjusted = Signal(tuple)  # (x0, y0, x1, y1) after a move or a resize

    def __init__(self, box: Sequence[float], bounds: QRectF) -> None:
        super().__init__()
        x0, y0, x1, y1 = (float(v) for v in box)
        self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        self._bounds = QRectF(bounds)
        self._square: QRectF | None = None
        self._landmarks: LandmarkItem | None = None
        self._warn = False
        self._mode: str | None = None
        self._press = QPointF()
        self._start = QRectF()
        self.setAcceptHoverEvents(True)
        self.setZValue(15)

    # ------------------------------------------------------------------ content
    def box(self) -> tuple[float, float, float, float]:
        return box_tuple(self._rect)

    def set_fit(
        self,
        landmarks: np.ndarray | None,
        square: Sequence[float] | None = None,
        warn: bool = False,
    ) -> None:
        """Show the fitted landmarks and the square they were fitted in (None: none yet)."""
        if self._landmarks is not None:
            self._landmarks.setParentItem(None)
            if self.scene() is not None:
                self.scene().removeItem(self._landmarks)
            self._landmarks = None
        self._square = None
        if landmarks is not None:
            self._landmarks = LandmarkItem(landmarks, self._bounds, parent=self)
            self._landmarks.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        if square is not None:
            x0, y0, x1, y1 = (float(v) for v in square)
            self._square = QRectF(x0, y0, x1 - x0, y1 - y0)
        self._warn = warn
        self.update()

    def landmarks_shown(self) -> bool:
        return self._landmarks is not None

    # ------------------------------------------------------------------ geometry
    def _scale(self) -> float:
        views = self.scene().views() if self.scene() is not None else []
        return max(1e-6, views[0].transform().m11()) if views else 1.0

    def boundingRect(self) -> QRectF:  # noqa: N802
        # Handles keep their screen size: bound by the still plus a margin, not by the box.
        return self._bounds.adjusted(-64, -64, 64, 64)

    def shape(self) -> QPainterPath:
        grab = HANDLE / self._scale()
        path = QPainterPath()
        path.addRect(self._rect.adjusted(-grab, -grab, grab, grab))
        return path

    def _handles(self) -> dict[str, QPointF]:
        r = self._rect
        cx, cy = r.center().x(), r.center().y()
        return {
            "tl": r.topLeft(), "tr": r.topRight(), "bl": r.bottomLeft(), "br": r.bottomRight(),
            "t": QPointF(cx, r.top()), "b": QPointF(cx, r.bottom()),
            "l": QPointF(r.left(), cy), "r": QPointF(r.right(), cy),
        }  # fmt: skip

    def hit(self, point: QPointF) -> str | None:
        """What a press at ``point`` (still pixels) grabs: a handle, an edge, the inside
        ("move"), or nothing."""
        grab = HANDLE / self._scale()
        for name, at in self._handles().items():  # corners first
            if abs(point.x() - at.x()) <= grab and abs(point.y() - at.y()) <= grab:
                return name
        r = self._rect
        inside_x = r.left() - grab <= point.x() <= r.right() + grab
        inside_y = r.top() - grab <= point.y() <= r.bottom() + grab
        if inside_y and abs(point.x() - r.left()) <= grab:
            return "l"
        if inside_y and abs(point.x() - r.right()) <= grab:
            return "r"
        if inside_x and abs(point.y() - r.top()) <= grab:
            return "t"
        if inside_x and abs(point.y() - r.bottom()) <= grab:
            return "b"
        return "move" if r.contains(point) else None

    def _dragged(self, delta: QPointF) -> QRectF:
        r, b, mode = QRectF(self._start), self._bounds, self._mode or ""
        if mode == "move":
            dx = min(max(delta.x(), b.left() - r.left()), b.right() - r.right())
            dy = min(max(delta.y(), b.top() - r.top()), b.bottom() - r.bottom())
            return r.translated(dx, dy)
        if "l" in mode:
            r.setLeft(min(max(b.left(), r.left() + delta.x()), r.right() - MIN_SIDE))
        if "r" in mode:
            r.setRight(max(min(b.right(), r.right() + delta.x()), r.left() + MIN_SIDE))
        if "t" in mode:
            r.setTop(min(max(b.top(), r.top() + delta.y()), r.bottom() - MIN_SIDE))
        if "b" in mode:
            r.setBottom(max(min(b.bottom(), r.bottom() + delta.y()), r.top() + MIN_SIDE))
        return r

    # ------------------------------------------------------------------ mouse
    def hoverMoveEvent(self, event) -> None:  # noqa: N802
        mode = self.hit(event.pos())
        self.setCursor(CURSORS.get(mode or "", Qt.CursorShape.ArrowCursor))

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._mode = self.hit(event.pos()) if event.button() == Qt.MouseButton.LeftButton else None
        if self._mode is None:
            event.ignore()
            return
        self._press, self._start = event.pos(), QRectF(self._rect)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._mode is None:
            return
        self._rect = self._dragged(event.pos() - self._press)
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._mode is None:
            return
        self._rect = self._dragged(event.pos() - self._press)
        self._mode = None
        self.update()
        if self._rect != self._start:
            self.adjusted.emit(self.box())

    # ------------------------------------------------------------------ painting
    def paint(self, painter: QPainter, option, widget=None) -> None:
        transform = painter.transform()
        box = transform.mapRect(self._rect)
        square = transform.mapRect(self._square) if self._square is not None else None
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if square is not None:
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1, Qt.PenStyle.DotLine))
            painter.drawRect(square)
        colour = WARN_COLOUR if self._warn else BOX_COLOUR
        painter.setPen(QPen(colour, 2, Qt.PenStyle.DashLine))
        painter.drawRect(box)
        painter.setPen(QPen(QColor("#000000"), 1))
        painter.setBrush(colour)
        for at in self._handles().values():
            p = transform.map(at)
            painter.drawRect(QRectF(p.x() - HANDLE, p.y() - HANDLE, 2 * HANDLE, 2 * HANDLE))
        painter.restore()


class HandBoxBanner(QFrame):
    """Above the still while a drawn box is refined: what to do, and what looks wrong."""

    confirmed = Signal()
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("handBoxBanner")
        self.setStyleSheet(
            "#handBoxBanner { background: #2b2d31; border-bottom: 2px solid #ff9100; }"
            "QLabel { color: #f1f3f4; }"
        )
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.use_button = QPushButton("Use this face (Enter)")
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.use_button.clicked.connect(self.confirmed)
        self.cancel_button.clicked.connect(self.cancelled)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.message)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        row.addLayout(text, 1)
        row.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def show_state(self, title: str, lines: Sequence[str], warn: bool, can_use: bool) -> None:
        """Show (or refresh) the banner: a title, lines (warnings in red), and whether the
        face may be used yet."""
        self.title.setText(title)
        colour = "#ff8a80" if warn else "#c8e6c9"
        self.message.setText("<br>".join(f'<span style="color:{colour}">{t}</span>' for t in lines))
        self.use_button.setEnabled(can_use)
        self.show()

    def text(self) -> str:
        return f"{self.title.text()}\n{self.message.text()}"


class StillPage(QWidget):
    """The still's page: the banner of a box being refined, above the image view (so the
    image is never hidden under it)."""

    def __init__(self, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.banner = HandBoxBanner()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(view, 1)


def is_item_alive(item: QGraphicsItem | None) -> bool:
    """False for None, or an item whose scene was cleared (its C++ object is gone)."""
    if item is None:
        return False
    try:
        item.scene()
    except RuntimeError:
        return False
    return True
