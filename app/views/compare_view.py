"""Input face beside the enhanced face (synchronised zoom and pan), or a split-slider wipe,
with the output's fidelity checks in a panel below (:mod:`app.views.fidelity_panel`).

The input side shows, as the analyst chooses, one of two things, each labelled for what it is:
the **recorded pixels** (the still's own pixels around the face: axis-aligned, no rotation, no
resampling, each shown as a square block) or the **model input** (the face aligned and
resampled to the model's input size -- not the recorded pixels). The model input lives in the
same 128-pixel aligned frame as the output: it is enlarged for display only (nearest neighbour
by default, bicubic on request), so the same scene point is the same place on the face in both
views, which is what makes synchronised zoom and the landmark overlay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.views.common import LANDMARK_COLOURS, LANDMARK_REGIONS, ms_text, rgb_to_pixmap
from app.views.fidelity_panel import FidelityPanel, PanelScroll
from app.views.zoom_view import LandmarkItem, ViewSync, ZoomView
from engine import imaging

INPUT_METHODS = ("nearest", "bicubic", "recorded")
INPUT_METHOD_NAMES = {
    "nearest": "Model input (nearest)",
    "bicubic": "Model input (bicubic)",
    "recorded": "Recorded pixels",
}


@dataclass(frozen=True)
class ComparePair:
    """What the compare view shows: one model's output for one face, with its input."""

    lr: np.ndarray  # (s, s, 3) uint8 aligned low-resolution input
    sr: np.ndarray  # (128, 128, 3) uint8 output
    input_landmarks: np.ndarray | None  # (68, 2) in the output's frame
    output_landmarks: np.ndarray | None  # (68, 2) in the output's frame, None if not found
    model_name: str  # e.g. "RAFSR (Che et al. 2023)"
    label: str  # the evidence label (AI_LABEL or INTERPOLATED_LABEL)
    scale: int
    time_ms: float | None = None
    evidence: np.ndarray | None = None  # the recorded pixels around the face (axis-aligned crop)
    plan: object | None = None  # engine.resolution.Plan: how the face's size set the scale
    fused_frames: int = 0  # the input is this many frames of a clip fused (0: one still)


RECORDED_DETAIL = 8  # the recorded crop is drawn this many times finer than the 128 px frame


def evidence_view(crop: np.ndarray, side: int) -> np.ndarray:
    """The recorded crop on a ``side`` square for display: each recorded pixel a square block
    (nearest neighbour, whole factors where it fits), centred on black. Nothing interpolated."""
    h, w = crop.shape[:2]
    factor = max(1, side // max(h, w))
    big = np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)
    if max(big.shape[:2]) > side:  # larger than the frame: nearest-neighbour reduction to fit
        scale = side / max(h, w)
        big = imaging.resize(crop, max(1, round(w * scale)), max(1, round(h * scale)), "nearest")
    out = np.zeros((side, side, 3), np.uint8)
    y, x = (side - big.shape[0]) // 2, (side - big.shape[1]) // 2
    out[y : y + big.shape[0], x : x + big.shape[1]] = big
    return out


def enlarge_input(lr: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """The LR face enlarged to the output's (width, height) for display (PIL, no torch)."""
    if method not in ("nearest", "bicubic"):
        raise ValueError(f"unknown display interpolation {method!r}")
    return imaging.resize(lr, size[0], size[1], method)


def _restored(pair: ComparePair) -> bool:
    """An x1 restore: the input is the recorded crop itself, the output lies on its grid."""
    return getattr(pair.plan, "mode", "") == "restore"


def _input_caption(pair: ComparePair, method: str) -> list[str]:
    if _restored(pair):
        h, w = pair.lr.shape[:2]
        return [
            f"Recorded pixels: {w}\u00d7{h} px of the still, as recorded (the model's input)",
            "x1 restore: not aligned, not resampled, shown at the same size as the output",
        ]
    if method == "recorded" and pair.evidence is not None:
        h, w = pair.evidence.shape[:2]
        return [
            f"Recorded pixels: {w}\u00d7{h} px of the still, as recorded",
            "each block is one pixel (not aligned, not resampled)",
        ]
    h, w = pair.lr.shape[:2]
    made = (
        f"{pair.fused_frames} frames registered and fused at {w} px"
        if pair.fused_frames
        else f"aligned and resampled to {w} px"
    )
    return [
        f"Model input: {made} \u2014 not the recorded pixels",
        f"enlarged {pair.sr.shape[1] / w:.3g}\u00d7 ({method}) for display",
    ]


def _output_caption(pair: ComparePair) -> list[str]:
    plan = pair.plan
    how = f"\u00d7{pair.scale}"
    if plan is not None and getattr(plan, "mode", "") == "native":
        how = f"at its native {plan.lr_size} px (\u00d7{plan.factor:.2f})"
    elif _restored(pair):
        how = "\u00d71 restore at the recorded size: nothing enlarged"
    lines = [pair.label, f"{pair.model_name} \u00b7 {how}"]
    if plan is not None and getattr(plan, "shrinks", False):
        lines.append(f"\u26a0 the model saw the face shrunk {plan.evidence_shrink:.2f}\u00d7")
    if pair.time_ms is not None:
        lines[-1] += f" \u00b7 {ms_text(pair.time_ms)}"
    return lines


class _ClipRect(QGraphicsRectItem):
    """An invisible rectangle that clips its children: one half of the wipe."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)


class WipeView(ZoomView):
    """Input on the left of a movable split, output on the right, same frame, one view.

    The split line can be dragged on the image itself (the cursor changes near it); elsewhere a
    drag pans as in every view. :attr:`fractionDragged` tells the slider below."""

    fractionDragged = Signal(float)
    GRAB_PX = 8  # screen pixels either side of the line that pick it up

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dragging = False
        self.viewport().setMouseTracking(True)
        self._left = _ClipRect()
        self._right = _ClipRect()
        self._line = None
        self._fraction = 0.5
        self._size = (0, 0)

    def set_images(
        self,
        left_rgb: np.ndarray,
        right_rgb: np.ndarray,
        left_landmarks: np.ndarray | None,
        right_landmarks: np.ndarray | None,
        landmarks_visible: bool,
    ) -> None:
        scene = self.scene()
        scene.clear()
        h, w = right_rgb.shape[:2]
        self._size = (w, h)
        frame = QRectF(0, 0, w, h)
        self._left, self._right = _ClipRect(), _ClipRect()
        for clip, rgb, points in (
            (self._left, left_rgb, left_landmarks),
            (self._right, right_rgb, right_landmarks),
        ):
            scene.addItem(clip)
            pixmap = scene.addPixmap(rgb_to_pixmap(rgb))
            pixmap.setParentItem(clip)
            if points is not None and landmarks_visible:
                LandmarkItem(points, frame, parent=clip)
        pen = QPen(QColor("#ffffff"), 2)
        pen.setCosmetic(True)
        self._line = scene.addLine(0, 0, 0, h, pen)
        self._line.setZValue(30)
        scene.setSceneRect(frame)
        self.set_fraction(self._fraction)
        if self.fitting:
            self.fit()

    def set_fraction(self, fraction: float) -> None:
        """Where the split is, 0 (all output) .. 1 (all input)."""
        self._fraction = min(1.0, max(0.0, fraction))
        w, h = self._size
        x = self._fraction * w
        self._left.setRect(QRectF(0, 0, x, h))
        self._right.setRect(QRectF(x, 0, w - x, h))
        if self._line is not None:
            self._line.setLine(x, 0, x, h)

    def fraction(self) -> float:
        return self._fraction

    def _near_line(self, pos) -> bool:
        if self._line is None or not self._size[0]:
            return False
        x = self.mapFromScene(self._fraction * self._size[0], 0).x()
        return abs(pos.x() - x) <= self.GRAB_PX

    def _drag_to(self, pos) -> None:
        fraction = self.mapToScene(pos.toPoint()).x() / self._size[0]
        self.set_fraction(fraction)
        self.fractionDragged.emit(self._fraction)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton and self._near_line(event.position()):
            self._dragging = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._dragging:
            self._drag_to(event.position())
            event.accept()
            return
        near = self._near_line(event.position())
        self.viewport().setCursor(
            Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor
        )
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._dragging:
            self._drag_to(event.position())
            self._dragging = False
            event.accept()
            return
        super().mouseReleaseEvent(event)


class CompareView(QWidget):
    """Side-by-side (two synchronised views) or wipe (one view with a split slider)."""

    modeChanged = Signal(str)
    inputMethodChanged = Signal(str)
    landmarksToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pair: ComparePair | None = None
        self._mode = "side"
        self._method = "nearest"
        self._landmarks = False

        # Controls row
        self._side_button = QRadioButton("Side by side")
        self._wipe_button = QRadioButton("Wipe")
        self._side_button.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self._side_button)
        group.addButton(self._wipe_button)
        self._side_button.toggled.connect(lambda on: on and self.set_mode("side"))
        self._wipe_button.toggled.connect(lambda on: on and self.set_mode("wipe"))
        self._method_box = QComboBox()
        self._method_box.addItems([INPUT_METHOD_NAMES[m] for m in INPUT_METHODS])
        self._method_box.setToolTip(
            "The input side: the model input (the face aligned and resampled to the model's "
            "input size, enlarged for display) or the recorded pixels of the still"
        )
        self._method_box.currentIndexChanged.connect(
            lambda i: self.set_input_method(INPUT_METHODS[i])
        )
        self._landmark_box = QCheckBox("Landmarks")
        self._landmark_box.toggled.connect(self.set_landmarks_visible)
        self._legend = QLabel(self._legend_html())
        self._legend.setVisible(False)
        self._note = QLabel()
        self._note.setStyleSheet("color: #b36b00")
        controls = QHBoxLayout()
        controls.addWidget(self._side_button)
        controls.addWidget(self._wipe_button)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Input shown as:"))
        controls.addWidget(self._method_box)
        controls.addSpacing(16)
        controls.addWidget(self._landmark_box)
        controls.addWidget(self._legend)
        controls.addStretch(1)
        controls.addWidget(self._note)

        # Side by side
        self.input_view = ZoomView()
        self.output_view = ZoomView()
        self.input_view.set_placeholder("Select a face and press Enhance (Enter)")
        self.output_view.set_placeholder("The enhanced face appears here")
        self._sync = ViewSync(self.input_view, self.output_view)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.input_view)
        splitter.addWidget(self.output_view)
        splitter.setChildrenCollapsible(False)

        # Wipe
        self.wipe_view = WipeView()
        self.wipe_slider = QSlider(Qt.Orientation.Horizontal)
        self.wipe_slider.setRange(0, 1000)
        self.wipe_slider.setValue(500)
        self.wipe_slider.setToolTip(
            "Drag to move the split: left of it the input, right of it the output"
        )
        self.wipe_slider.valueChanged.connect(lambda v: self.wipe_view.set_fraction(v / 1000))
        self.wipe_view.fractionDragged.connect(lambda f: self.wipe_slider.setValue(round(f * 1000)))
        wipe_page = QWidget()
        wipe_layout = QVBoxLayout(wipe_page)
        wipe_layout.setContentsMargins(0, 0, 0, 0)
        wipe_layout.addWidget(self.wipe_view, 1)
        wipe_layout.addWidget(self.wipe_slider)

        self._stack = QStackedWidget()
        self._stack.addWidget(splitter)
        self._stack.addWidget(wipe_page)

        # The fidelity checks of the output on screen, below it in both modes.
        # In a scroll area: on a 1280x800 screen the faces keep half the height and the
        # panel scrolls rather than clipping its text or the agreement matrix.
        self.fidelity_panel = FidelityPanel()
        self.fidelity_scroll = PanelScroll(self.fidelity_panel)
        self._vertical = QSplitter(Qt.Orientation.Vertical)
        self._vertical.addWidget(self._stack)
        self._vertical.addWidget(self.fidelity_scroll)
        self._vertical.setStretchFactor(0, 1)
        self._vertical.setStretchFactor(1, 0)
        self._vertical.setCollapsible(0, False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self._vertical, 1)

    @staticmethod
    def _legend_html() -> str:
        spans = [
            f'<span style="color:{LANDMARK_COLOURS[name].name()}">\u25cf</span> {name}'
            for name, _ in LANDMARK_REGIONS
        ]
        return "&nbsp;&nbsp;".join(spans)

    # ------------------------------------------------------------------ state
    def pair(self) -> ComparePair | None:
        return self._pair

    def mode(self) -> str:
        return self._mode

    def input_method(self) -> str:
        return self._method

    def landmarks_visible(self) -> bool:
        return self._landmarks

    def set_pair(self, pair: ComparePair | None) -> None:
        """Show a model's output for a face (None: clear)."""
        self._pair = pair
        self._render()

    def show_native(self, crop: np.ndarray, box: tuple, message: str) -> None:
        """No model runs on this face: its recorded pixels on the left, why on the right."""
        self._pair = None
        self._render()
        side = max(128, *crop.shape[:2])
        view = self.input_view
        view.scene().addPixmap(rgb_to_pixmap(evidence_view(crop, side)))
        view.scene().setSceneRect(QRectF(0, 0, side, side))
        view.fit()
        h, w = crop.shape[:2]
        view.set_caption(
            [f"Recorded pixels: {w}\u00d7{h} px of the still, as recorded", "native resolution"],
            warning=False,
        )
        self.output_view.set_placeholder(message)
        self._note.setText(message)

    def set_mode(self, mode: str) -> None:
        if mode not in ("side", "wipe"):
            raise ValueError(f"unknown compare mode {mode!r}")
        if mode == self._mode:
            return
        self._mode = mode
        (self._side_button if mode == "side" else self._wipe_button).setChecked(True)
        self._stack.setCurrentIndex(0 if mode == "side" else 1)
        self._render()
        self.modeChanged.emit(mode)

    def set_input_method(self, method: str) -> None:
        if method == self._method:
            return
        if method not in INPUT_METHODS:
            raise ValueError(f"unknown display interpolation {method!r}")
        self._method = method
        self._method_box.setCurrentIndex(INPUT_METHODS.index(method))
        self._render()
        self.inputMethodChanged.emit(method)

    def set_landmarks_visible(self, on: bool) -> None:
        on = bool(on)
        if on == self._landmarks:
            return
        self._landmarks = on
        self._landmark_box.setChecked(on)
        self._legend.setVisible(on)
        self._render()
        self.landmarksToggled.emit(on)

    # ------------------------------------------------------------ zoom (of what is shown)
    def active_views(self) -> list[ZoomView]:
        return [self.input_view, self.output_view] if self._mode == "side" else [self.wipe_view]

    def zoom_in(self) -> None:
        self.active_views()[0].zoom_in()

    def zoom_out(self) -> None:
        self.active_views()[0].zoom_out()

    def fit(self) -> None:
        self.active_views()[0].fit()

    def actual_size(self) -> None:
        self.active_views()[0].actual_size()

    # ------------------------------------------------------------------ drawing
    def _render(self) -> None:
        pair = self._pair
        if pair is None:
            for view in (self.input_view, self.output_view, self.wipe_view):
                view.scene().clear()
                view.set_caption([])
            self.output_view.set_placeholder("The enhanced face appears here")
            self._note.setText("")
            return
        h, w = pair.sr.shape[:2]
        recorded = self._method == "recorded" and pair.evidence is not None
        input_scale = 1.0
        if recorded:  # another frame than the output's: no landmarks drawn on it
            # drawn RECORDED_DETAIL times finer, then scaled into the frame: whole-pixel blocks
            shown_input = evidence_view(pair.evidence, w * RECORDED_DETAIL)
            input_scale = 1.0 / RECORDED_DETAIL
        else:
            method = "nearest" if self._method == "recorded" else self._method
            shown_input = enlarge_input(pair.lr, (w, h), method)
        in_points = pair.input_landmarks if self._landmarks and not recorded else None
        out_points = pair.output_landmarks if self._landmarks else None
        frame = QRectF(0, 0, w, h)
        if self._landmarks and pair.output_landmarks is None:
            self._note.setText("No landmarks could be placed on this output")
        else:
            self._note.setText("")
        if self._mode == "side":
            for view, rgb, points, scale in (
                (self.input_view, shown_input, in_points, input_scale),
                (self.output_view, pair.sr, out_points, 1.0),
            ):
                keep_zoom = not view.fitting and view.scene().items()
                centre = view.mapToScene(view.viewport().rect().center())
                view.scene().clear()
                view.scene().addPixmap(rgb_to_pixmap(rgb)).setScale(scale)
                if points is not None:
                    view.scene().addItem(LandmarkItem(points, frame))
                view.scene().setSceneRect(frame)
                if keep_zoom:
                    view.centerOn(centre)
                else:
                    view.fit()
            self.input_view.set_caption(_input_caption(pair, self._method), warning=False)
            self.output_view.set_caption(_output_caption(pair), warning=True)
        else:
            if recorded:  # the wipe shares one frame: the recorded crop fitted into it
                shown_input = evidence_view(pair.evidence, w)
            self.wipe_view.set_images(shown_input, pair.sr, in_points, out_points, self._landmarks)
            caption = _output_caption(pair)
            shown = INPUT_METHOD_NAMES[self._method].lower()
            caption.append(f"\u25c0 {shown}  |  output \u25b6")
            self.wipe_view.set_caption(caption, warning=True)
