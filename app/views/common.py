"""Small pieces every view shares: numpy -> Qt images, output labels, landmark regions.

Kept in one module so the AI label, the landmark colours and the pixel conventions are
identical in the side-by-side view, the wipe view, the grid and the screenshots.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage, QPixmap

AI_LABEL = "AI-enhanced \u2014 not original evidence"
"""Shown on every view of a model's output and written into every exported file."""

INTERPOLATED_LABEL = "Interpolated \u2014 not original evidence"
"""On bicubic / lanczos outputs: enlarged, not AI-enhanced, and not evidence either."""

# dlib's 68-point order, grouped by facial region: (region, [(first, last_inclusive, closed)]).
LANDMARK_REGIONS: tuple[tuple[str, tuple[tuple[int, int, bool], ...]], ...] = (
    ("jaw", ((0, 16, False),)),
    ("brows", ((17, 21, False), (22, 26, False))),
    ("nose", ((27, 30, False), (31, 35, False))),
    ("eyes", ((36, 41, True), (42, 47, True))),
    ("mouth", ((48, 59, True), (60, 67, True))),
)

# One colour per region, chosen to stay distinct on skin tones and for common colour blindness.
LANDMARK_COLOURS: dict[str, QColor] = {
    "jaw": QColor("#ffd400"),
    "brows": QColor("#ff7f0e"),
    "nose": QColor("#2ecc40"),
    "eyes": QColor("#21a6ff"),
    "mouth": QColor("#ff2d95"),
}


def output_label(model_id: str, paper: str | None = None) -> str:
    """The evidence label for an output: interpolation baselines are not called "AI"."""
    if paper == "baseline" or model_id in ("bicubic", "lanczos", "nearest"):
        return INTERPOLATED_LABEL
    return AI_LABEL


def ms_text(ms: float | None) -> str:
    """Milliseconds for people: "0.4 ms", "12 ms", "1.3 s"."""
    if ms is None:
        return "?"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns its pixels (safe after ``rgb`` is freed)."""
    array = np.ascontiguousarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    h, w = array.shape[:2]
    image = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.copy()  # detach from the numpy buffer


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """(H, W, 3) uint8 RGB -> QPixmap (GUI thread only)."""
    return QPixmap.fromImage(rgb_to_qimage(rgb))


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """QImage -> (H, W, 3) uint8 RGB copy (used to burn the label strip into an export)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buffer[:, : 3 * w].reshape(h, w, 3).copy()


def label_strip(width: int, lines: list[str]) -> np.ndarray:
    """A red (h, width, 3) uint8 strip carrying ``lines`` in white, to append below an export.

    Exports carry the evidence label visibly, not only in PNG metadata that viewers hide; the
    strip goes below the picture, so no pixel of the output is covered. Rendered with Qt in the
    GUI thread; the worker only stacks it under the image.
    """
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QFont, QFontMetrics, QPainter

    font = QFont()
    # The largest font (6 to 16 px) at which the longest line fits the width.
    size = 16
    while size > 6:
        font.setPixelSize(size)
        if max(QFontMetrics(font).horizontalAdvance(line) for line in lines) <= width - 8:
            break
        size -= 1
    font.setPixelSize(size)
    line_height = QFontMetrics(font).height()
    canvas = QImage(width, line_height * len(lines) + 8, QImage.Format.Format_RGB888)
    canvas.fill(QColor(180, 20, 20))
    painter = QPainter(canvas)
    try:
        painter.setFont(font)
        painter.setPen(QColor("white"))
        for i, line in enumerate(lines):
            painter.drawText(
                QRect(4, 4 + i * line_height, width - 8, line_height),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                line,
            )
    finally:
        painter.end()
    return qimage_to_rgb(canvas)


def add_label_strip(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """``rgb`` with :func:`label_strip` appended below it (``rgb`` itself is not changed)."""
    return np.vstack([rgb, label_strip(rgb.shape[1], lines)])
