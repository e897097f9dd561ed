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
    strip goes below the picture, so no pixel of the output is covered. Its text grows with the
    image (up to a 40th of the width), so the label stays readable when a large export is fitted
    to a screen, instead of shrinking to a thin red line. Rendered with Qt in the GUI thread;
    the worker only stacks it under the image.
    """
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QFont, QFontMetrics, QPainter

    font = QFont()
    # The largest font (6 px up to 16 px or a 40th of the width) at which the longest line fits.
    size = max(16, width // 40)
    while size > 6:
        font.setPixelSize(size)
        if max(QFontMetrics(font).horizontalAdvance(line) for line in lines) <= width - 8:
            break
        size -= 1
    font.setPixelSize(size)
    line_height = QFontMetrics(font).height()
    pad = max(4, size // 4)
    canvas = QImage(width, line_height * len(lines) + 2 * pad, QImage.Format.Format_RGB888)
    canvas.fill(QColor(180, 20, 20))
    painter = QPainter(canvas)
    try:
        painter.setFont(font)
        painter.setPen(QColor("white"))
        for i, line in enumerate(lines):
            painter.drawText(
                QRect(pad, pad + i * line_height, width - 2 * pad, line_height),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                line,
            )
    finally:
        painter.end()
    return qimage_to_rgb(canvas)


def add_label_strip(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """``rgb`` with :func:`label_strip` appended below it (``rgb`` itself is not changed)."""
    return np.vstack([rgb, label_strip(rgb.shape[1], lines)])


OUTLINE = (255, 40, 40)  # the replaced region's outline on a labelled full-image export


def outline_pasted(rgb: np.ndarray, results: list, still_width: int) -> np.ndarray:
    """A copy of ``rgb`` (the still enlarged, enhanced faces pasted in) with the outline of each
    pasted face's region, so a reader sees which part of the picture the model replaced.

    The region is the aligned frame of each result (``aligned.matrix`` maps still pixels to it)
    mapped back into the enlarged still; results not pasted (their face was shrunk) get none.
    The line is about a 400th of the width (at least 2 px). Drawn on labelled exports only: the
    logged pixels are those without it.
    """
    from PIL import Image, ImageDraw

    scale = rgb.shape[1] / float(still_width)
    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    width = max(2, rgb.shape[1] // 400)
    for result in results:
        aligned, plan = getattr(result, "aligned", None), getattr(result, "plan", None)
        box = getattr(result, "crop_box", None)
        if box is not None:  # an x1 restore replaced exactly this box of still pixels
            x0, y0, x1, y1 = box
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            draw.polygon([(x * scale - 0.5, y * scale - 0.5) for x, y in corners],
                         outline=OUTLINE, width=width)  # fmt: skip
            continue
        if aligned is None or (plan is not None and plan.shrinks):
            continue
        matrix = np.asarray(aligned.matrix, dtype=np.float64)
        inverse = np.linalg.inv(matrix[:, :2])
        edge = aligned.size - 0.5
        corners = np.array([[-0.5, -0.5], [edge, -0.5], [edge, edge], [-0.5, edge]])
        still = (corners - matrix[:, 2]) @ inverse.T
        points = [(float(x), float(y)) for x, y in (still + 0.5) * scale - 0.5]
        draw.polygon(points, outline=OUTLINE, width=width)
    return np.asarray(image)
