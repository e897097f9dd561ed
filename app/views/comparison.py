"""One labelled PNG of a comparison (issue 28): the recorded pixels, the model input and the
outputs side by side, each captioned, with the AI label on every enhanced tile and a header
naming the evidence -- for a report or a briefing. Drawn with Qt in the GUI thread; the worker
writes it like any export (PNG text, case log)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from app.views.common import qimage_to_rgb, rgb_to_qimage

TILE = 192  # px per face tile
COLUMNS = 4


@dataclass(frozen=True)
class Tile:
    rgb: np.ndarray  # (h, w, 3) uint8, shown with nearest neighbour (no smoothing added)
    title: str
    detail: str = ""
    label: str | None = None  # the red label ("AI-enhanced — not original evidence")


def comparison_image(header: Sequence[str], tiles: Sequence[Tile]) -> np.ndarray:
    """The tiles in rows of :data:`COLUMNS` under a header; (H, W, 3) uint8."""
    columns = min(COLUMNS, max(1, len(tiles)))
    rows = (len(tiles) + columns - 1) // columns
    caption_h, pad, head_h = 64, 8, 20 * len(header) + 12
    width = columns * (TILE + pad) + pad
    height = head_h + rows * (TILE + caption_h + pad) + pad
    canvas = QImage(width, height, QImage.Format.Format_RGB888)
    canvas.fill(QColor(32, 33, 36))
    painter = QPainter(canvas)
    try:
        font = QFont()
        font.setPixelSize(14)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        for i, line in enumerate(header):
            painter.drawText(QRect(pad, 6 + 20 * i, width - 2 * pad, 20), 0, line)
        for k, tile in enumerate(tiles):
            x = pad + (k % columns) * (TILE + pad)
            y = head_h + (k // columns) * (TILE + caption_h + pad)
            image = rgb_to_qimage(np.ascontiguousarray(tile.rgb)).scaled(
                TILE,
                TILE,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
            painter.drawImage(x + (TILE - image.width()) // 2, y, image)
            painter.setPen(QColor("white"))
            font.setPixelSize(12)
            font.setBold(True)
            painter.setFont(font)
            painter.drawText(QRect(x, y + TILE + 2, TILE, 16), 0, tile.title)
            font.setBold(False)
            painter.setFont(font)
            painter.drawText(QRect(x, y + TILE + 18, TILE, 16), 0, tile.detail)
            if tile.label:
                painter.fillRect(QRect(x, y + TILE + 36, TILE, 24), QColor(180, 20, 20))
                font.setPixelSize(11)
                painter.setFont(font)
                painter.drawText(
                    QRect(x + 3, y + TILE + 36, TILE - 6, 24),
                    int(Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap),
                    tile.label,
                )
    finally:
        painter.end()
    return qimage_to_rgb(canvas)
