"""A QGraphicsView with wheel zoom, fit, 1:1 and hand panning, plus a caption that never scales.

Every image view of the app derives from :class:`ZoomView`: the whole still, both halves of the
side-by-side view and the wipe view. The caption (e.g. the AI label and the model name) is
painted in viewport coordinates, so it stays readable and visible at any zoom and appears in
screenshots taken with ``grab()``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from app.views.common import LANDMARK_COLOURS, LANDMARK_REGIONS

MIN_ZOOM = 0.02
MAX_ZOOM = 64.0
ZOOM_STEP = 1.25


class ZoomView(QGraphicsView):
    """Zoom with the wheel (anchored under the mouse), fit, 1:1, pan by dragging.

    ``viewChanged`` fires after any zoom or scroll, so two views can be kept in step
    (see :class:`ViewSync`). While "fit" is on, resizing the view refits the image.
    """

    viewChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor("#202124"))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._fit = True
        self._caption: list[str] = []
        self._caption_colour = QColor("#ffffff")
        self._caption_background = QColor(180, 20, 20, 210)
        self._placeholder = ""
        self.horizontalScrollBar().valueChanged.connect(self.viewChanged)
        self.verticalScrollBar().valueChanged.connect(self.viewChanged)

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return self.transform().m11()

    @property
    def fitting(self) -> bool:
        return self._fit

    def set_zoom(self, zoom: float) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self._fit = False
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self._update_smoothing()
        self.viewChanged.emit()

    def zoom_by(self, factor: float) -> None:
        target = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        factor = target / self.zoom
        self._fit = False
        self.scale(factor, factor)
        self._update_smoothing()
        self.viewChanged.emit()

    def zoom_in(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def zoom_out(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(1 / ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def actual_size(self) -> None:
        """1:1 — one image pixel per screen pixel."""
        self.set_zoom(1.0)

    def fit(self) -> None:
        """Show the whole image; stays fitted when the view is resized until the user zooms."""
        self._fit = True
        rect = self.content_rect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._update_smoothing()
        self.viewChanged.emit()

    def content_rect(self) -> QRectF:
        """The scene rectangle 'fit' shows (the image)."""
        return self.sceneRect()

    def _update_smoothing(self) -> None:
        # Enlarged: nearest neighbour, so the analyst sees the real pixels. Shrunk: smooth,
        # because nearest-neighbour shrinking aliases and shows detail that is not there.
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.0)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        delta = event.angleDelta().y()
        if delta == 0:
            return
        self.zoom_by(ZOOM_STEP ** (delta / 120))
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._fit:
            self.fit()

    # ------------------------------------------------------------------ caption
    def set_caption(self, lines: list[str], warning: bool = True) -> None:
        """Text drawn at the top-left of the viewport; red background when ``warning``."""
        self._caption = list(lines)
        self._caption_background = QColor(180, 20, 20, 215) if warning else QColor(20, 20, 20, 190)
        self.viewport().update()

    def caption(self) -> list[str]:
        return list(self._caption)

    def set_placeholder(self, text: str) -> None:
        """Text shown centred when the scene is empty (what to do next)."""
        self._placeholder = text
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        super().drawForeground(painter, rect)
        if not self._caption and not self._placeholder:
            return
        painter.save()
        painter.resetTransform()  # viewport pixels: the text does not zoom
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        if self._placeholder and not self.scene().items():
            painter.setPen(QColor("#bbbbbb"))
            painter.drawText(
                self.viewport().rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
        if self._caption:
            pad = 6
            width = max(metrics.horizontalAdvance(line) for line in self._caption) + 2 * pad
            height = metrics.height() * len(self._caption) + 2 * pad
            box = QRectF(8, 8, width, height)
            painter.fillRect(box, self._caption_background)
            painter.setPen(self._caption_colour)
            for i, line in enumerate(self._caption):
                baseline = box.top() + pad + metrics.ascent() + i * metrics.height()
                painter.drawText(QPointF(box.left() + pad, baseline), line)
        painter.restore()


class ViewSync:
    """Keeps several ZoomViews on the same zoom and the same scene point at their centre.

    Used for the input and enhanced faces: both scenes are in the same 128-pixel aligned
    frame, so the same scene point is the same place on the face.
    """

    def __init__(self, *views: ZoomView) -> None:
        self._views = list(views)
        self._busy = False
        for view in self._views:
            view.viewChanged.connect(lambda v=view: self._follow(v))

    def _follow(self, source: ZoomView) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            centre = source.mapToScene(source.viewport().rect().center())
            for view in self._views:
                if view is source:
                    continue
                if source.fitting:
                    view.fit()
                else:
                    view.set_zoom(source.zoom)
                    view.centerOn(centre)
        finally:
            self._busy = False


class LandmarkItem(QGraphicsItem):
    """The 68 landmarks drawn as coloured polylines and dots of a fixed on-screen size.

    ``points`` are in the pixel-centre convention of the image they belong to (dlib's: pixel
    (i, j) has its centre at (i, j)); the pixmap item covers [i, i+1), hence the half-pixel shift.
    """

    DOT_RADIUS = 2.5  # screen pixels

    def __init__(
        self, points: np.ndarray, frame: QRectF, parent: QGraphicsItem | None = None
    ) -> None:
        super().__init__(parent)
        self._points = [QPointF(float(x) + 0.5, float(y) + 0.5) for x, y in np.asarray(points)]
        if len(self._points) != 68:
            raise ValueError(f"expected 68 landmarks, got {len(self._points)}")
        # Dots keep their screen size, so at low zoom they reach beyond the points: bound by
        # the whole frame plus a margin rather than the points' hull.
        self._bounds = frame.adjusted(-8, -8, 8, 8)
        self.setZValue(10)

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def paint(self, painter: QPainter, option, widget=None) -> None:
        transform = painter.transform()
        screen = [transform.map(p) for p in self._points]
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for region, runs in LANDMARK_REGIONS:
            colour = LANDMARK_COLOURS[region]
            line = QPen(colour, 1.4)
            line.setCosmetic(True)
            for first, last, closed in runs:
                pts = screen[first : last + 1]
                painter.setPen(line)
                for a, b in zip(pts, pts[1:], strict=False):
                    painter.drawLine(a, b)
                if closed:
                    painter.drawLine(pts[-1], pts[0])
                painter.setPen(QPen(QColor(0, 0, 0, 160), 1.0))
                painter.setBrush(colour)
                for p in pts:
                    painter.drawEllipse(p, self.DOT_RADIUS, self.DOT_RADIUS)
        painter.restore()
