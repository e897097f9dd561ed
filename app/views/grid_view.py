"""The selected face through every runnable model, one tile each, filled in as results arrive.

Each output tile names the model, the time it took and carries the evidence label; clicking a
tile opens that output side by side with the input.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.views.common import rgb_to_pixmap

WAITING = "waiting\u2026"
TILE_IMAGE = 200  # screen pixels: 128 px outputs enlarged by about 1.5


class Tile(QFrame):
    """One output (or the input) with its caption; clickable when it holds an output."""

    clicked = Signal(str)

    def __init__(self, key: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("tile")
        self._image = QLabel(WAITING)
        self._image.setFixedSize(TILE_IMAGE, TILE_IMAGE)
        self._image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._image.setStyleSheet("background: #202124; color: #aaaaaa")
        self._title = QLabel(f"<b>{title}</b>")
        self._title.setWordWrap(True)
        self._detail = QLabel("")
        self._label = QLabel("")
        self._label.setWordWrap(True)
        self._label.setStyleSheet("color: white; background: #b41414; padding: 1px 4px")
        self._label.setVisible(False)
        self._fidelity = QLabel("")
        self._fidelity.setWordWrap(True)
        self._fidelity.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(2)
        layout.addWidget(self._image)
        layout.addWidget(self._title)
        layout.addWidget(self._detail)
        layout.addWidget(self._fidelity)
        layout.addWidget(self._label)
        self.setFixedWidth(TILE_IMAGE + 14)
        self._clickable = False

    def set_image(
        self, rgb: np.ndarray, detail: str, label: str | None, clickable: bool = True
    ) -> None:
        """Fill the tile. Nearest-neighbour enlargement: no smoothing that is not in the output."""
        pixmap = rgb_to_pixmap(rgb).scaled(
            TILE_IMAGE,
            TILE_IMAGE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        self._image.setPixmap(pixmap)
        self._detail.setText(detail)
        self._label.setText(label or "")
        self._label.setVisible(bool(label))
        self._clickable = clickable
        if clickable:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.setToolTip("Click to compare with the input, side by side")

    def set_fidelity(self, warnings: list[str]) -> None:
        """One line under the output: the fidelity checks that warn (amber), or that all pass."""
        if warnings:
            self._fidelity.setText("\u26a0 " + "; ".join(warnings))
            self._fidelity.setStyleSheet("color: #b36b00; font-weight: bold")
        else:
            self._fidelity.setText("\u2713 fidelity checks pass")
            self._fidelity.setStyleSheet("color: #2e7d32")
        self._fidelity.setVisible(True)

    def fidelity(self) -> str:
        return self._fidelity.text()

    def set_unavailable(self, reason: str) -> None:
        """A model that cannot run (e.g. no trained weights): shown, greyed, never clickable."""
        self._image.setText(reason)
        self._image.setWordWrap(True)
        self._title.setEnabled(False)
        self._clickable = False

    def set_failed(self, message: str) -> None:
        self._image.setText("failed")
        self._detail.setText(message)
        self._detail.setWordWrap(True)

    def set_cancelled(self) -> None:
        if not self.has_image() and self._image.text() == WAITING:
            self._image.setText("cancelled")

    def has_image(self) -> bool:
        pixmap = self._image.pixmap()
        return pixmap is not None and not pixmap.isNull()

    def detail(self) -> str:
        return self._detail.text()

    def label(self) -> str:
        return self._label.text()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._clickable and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.key)
        super().mouseReleaseEvent(event)


class GridView(QScrollArea):
    """Tiles in as many columns as fit the width."""

    tileClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._layout = QGridLayout(self._inner)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._layout.setSpacing(8)
        self.setWidget(self._inner)
        self._tiles: dict[str, Tile] = {}
        self._order: list[str] = []
        self._columns = 0
        self._empty = QLabel("Select a face and choose Compare all models")
        self._empty.setStyleSheet("color: #888888")
        self._layout.addWidget(self._empty, 0, 0)

    def clear(self) -> None:
        for tile in self._tiles.values():
            self._layout.removeWidget(tile)
            tile.deleteLater()
        self._tiles, self._order = {}, []
        self._empty.setVisible(True)

    def set_tiles(self, entries: list[tuple[str, str]]) -> None:
        """Lay out empty tiles, one per (key, title), in order; they fill in later."""
        self.clear()
        self._empty.setVisible(False)
        for key, title in entries:
            tile = Tile(key, title)
            tile.clicked.connect(self.tileClicked)
            self._tiles[key] = tile
            self._order.append(key)
        self._columns = 0
        self._relayout()

    def tile(self, key: str) -> Tile | None:
        return self._tiles.get(key)

    def tiles(self) -> list[Tile]:
        return [self._tiles[k] for k in self._order]

    def mark_cancelled(self) -> None:
        for tile in self._tiles.values():
            tile.set_cancelled()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        width = max(1, self.viewport().width())
        columns = max(1, width // (TILE_IMAGE + 14 + self._layout.spacing()))
        if columns == self._columns:
            return
        self._columns = columns
        for key in self._order:
            self._layout.removeWidget(self._tiles[key])
        for i, key in enumerate(self._order):
            self._layout.addWidget(self._tiles[key], i // columns, i % columns)
