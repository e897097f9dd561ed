"""The clip timeline above the viewer: slider, +-1 frame, previous/next I-frame, keyboard.

The timeline only *asks* for frames (:attr:`Timeline.frameRequested`); decoding happens in the
video controller's worker thread (:mod:`app.video_controller`), which answers with
:meth:`Timeline.show_frame_info` once the frame is on screen. Under the slider a strip shows the
I-frames (ticks), a face track (a band) and the frames chosen for fusion (bright marks).

Keys (when the timeline has focus): Left/Right one frame, Shift+Left/Right or Page Up/Down the
previous/next I-frame, Home/End the first/last frame, Enter "Use this frame".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class TrackStrip(QWidget):
    """A thin strip under the slider: I-frames, the face track, the frames fused."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.count = 0
        self.key_frames: list[int] = []
        self.track: list[int] = []
        self.chosen: list[int] = []
        self.current = 0
        self.setMinimumHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(200, 14)

    def x_of(self, index: int) -> float:
        """Centre of frame ``index`` in widget pixels (aligned with the slider's range)."""
        if self.count <= 1:
            return self.width() / 2
        margin = 6.0
        return margin + (self.width() - 2 * margin) * index / (self.count - 1)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 40))
        h = self.height()
        step = max(1.0, (self.x_of(1) - self.x_of(0)) if self.count > 1 else 1.0)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(70, 130, 200))
        for i in self.track:
            painter.drawRect(QRectF(self.x_of(i) - step / 2, h * 0.35, step, h * 0.4))
        painter.setBrush(QColor(255, 200, 40))
        for i in self.chosen:
            painter.drawRect(
                QRectF(self.x_of(i) - max(1.0, step / 4), 1, max(2.0, step / 2), h - 2)
            )
        painter.setPen(QPen(QColor(220, 220, 220), 1))
        for i in self.key_frames:
            x = self.x_of(i)
            painter.drawLine(int(x), 0, int(x), int(h * 0.3))
        painter.setPen(QPen(QColor(255, 80, 80), 2))
        x = self.x_of(self.current)
        painter.drawLine(int(x), 0, int(x), h)
        painter.end()


class Timeline(QWidget):
    """Frame navigation for a clip. Knows only the frame index, never decodes."""

    frameRequested = Signal(int)  # the analyst moved to this frame
    useFrameRequested = Signal(int)  # "Use this frame": send it to the still features

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frames: list[Any] = []  # engine.video.FrameInfo (index, time, key, pict_type)
        self._keys: list[int] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the timeline
        self.slider.setMinimum(0)
        self.slider.setMaximum(0)
        self.slider.valueChanged.connect(self._on_slider)
        self.strip = TrackStrip()

        def button(text: str, tip: str, slot) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            return b

        self.prev_key = button("|<", "Previous I-frame (Shift+Left)", lambda: self.step_key(-1))
        self.prev_frame = button("<", "Previous frame (Left)", lambda: self.step(-1))
        self.next_frame = button(">", "Next frame (Right)", lambda: self.step(1))
        self.next_key = button(">|", "Next I-frame (Shift+Right)", lambda: self.step_key(1))
        self.use_button = QPushButton("Use this frame")
        self.use_button.setToolTip(
            "Send this frame to faces, enhance, compare, export and the report (Enter)"
        )
        self.use_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.use_button.clicked.connect(lambda: self.useFrameRequested.emit(self.index))
        self.position = QLabel("no clip")
        self.position.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        row = QHBoxLayout()
        for w in (self.prev_key, self.prev_frame):
            row.addWidget(w)
        bar = QVBoxLayout()
        bar.setSpacing(0)
        bar.addWidget(self.slider)
        bar.addWidget(self.strip)
        row.addLayout(bar, 1)
        for w in (self.next_frame, self.next_key, self.use_button):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(row)
        layout.addWidget(self.position)
        layout.addWidget(self.details)
        self._update_enabled()

    # ----------------------------------------------------------------------- content

    def set_clip(self, frames: Sequence[Any], description: str = "") -> None:
        """Show a clip's frame index (``engine.video.Clip.frames``) and a line about it."""
        self._frames = list(frames)
        self._keys = [f.index for f in self._frames if f.key or f.pict_type == "I"]
        self.strip.count = len(self._frames)
        self.strip.key_frames = self._keys
        self.strip.track, self.strip.chosen = [], []
        self.details.setText(description)
        self.slider.blockSignals(True)
        self.slider.setMaximum(max(0, len(self._frames) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self._update_enabled()
        self._show_position(0)
        self.strip.update()
        if self._frames:
            self.frameRequested.emit(0)

    def clear(self) -> None:
        self.set_clip([], "")
        self.position.setText("no clip")

    def set_track(self, frames: Sequence[int], chosen: Sequence[int] = ()) -> None:
        """Draw a face track (its frames) and the frames chosen for fusion."""
        self.strip.track = sorted(frames)
        self.strip.chosen = sorted(chosen)
        self.strip.update()

    # ----------------------------------------------------------------------- navigation

    @property
    def index(self) -> int:
        return int(self.slider.value())

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    def go_to(self, index: int) -> None:
        """Move to frame ``index`` (clamped); emits :attr:`frameRequested` when it changes."""
        if not self._frames:
            return
        self.slider.setValue(max(0, min(len(self._frames) - 1, int(index))))

    def step(self, delta: int) -> None:
        self.go_to(self.index + delta)

    def step_key(self, direction: int) -> None:
        """To the previous (-1) or next (+1) I-frame; stays put when there is none."""
        if direction > 0:
            target = next((k for k in self._keys if k > self.index), None)
        else:
            target = next((k for k in reversed(self._keys) if k < self.index), None)
        if target is not None:
            self.go_to(target)

    NAVIGATION_KEYS = (
        Qt.Key.Key_Left,
        Qt.Key.Key_Right,
        Qt.Key.Key_PageUp,
        Qt.Key.Key_PageDown,
        Qt.Key.Key_Home,
        Qt.Key.Key_End,
        Qt.Key.Key_Return,
        Qt.Key.Key_Enter,
    )

    def event(self, event: QEvent) -> bool:
        """The timeline's keys win over window shortcuts (Enter is also "Enhance") while it
        has the focus."""
        if event.type() == QEvent.Type.ShortcutOverride and self._frames:
            mods = event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier
            if event.key() in self.NAVIGATION_KEYS and mods in (
                Qt.KeyboardModifier.NoModifier,
                Qt.KeyboardModifier.KeypadModifier,
            ):
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt)
        key = event.key()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key == Qt.Key.Key_Left:
            self.step_key(-1) if shift else self.step(-1)
        elif key == Qt.Key.Key_Right:
            self.step_key(1) if shift else self.step(1)
        elif key == Qt.Key.Key_PageUp:
            self.step_key(-1)
        elif key == Qt.Key.Key_PageDown:
            self.step_key(1)
        elif key == Qt.Key.Key_Home:
            self.go_to(0)
        elif key == Qt.Key.Key_End:
            self.go_to(self.frame_count - 1)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._frames:
            self.useFrameRequested.emit(self.index)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # ----------------------------------------------------------------------- display

    def show_frame_info(self, record: dict[str, Any]) -> None:
        """Show a decoded frame's record (``engine.video.Frame.record()``): its hash included."""
        sha = record.get("pixels_sha256", "")
        self.position.setToolTip(f"SHA-256 of the decoded pixels: {sha}")
        self._show_position(int(record.get("index", self.index)), sha)

    def _on_slider(self, value: int) -> None:
        self._show_position(value)
        self._update_enabled()
        self.strip.current = value
        self.strip.update()
        self.frameRequested.emit(value)

    def _show_position(self, index: int, sha: str = "") -> None:
        if not self._frames:
            self.position.setText("no clip")
            return
        f = self._frames[index]
        text = f"frame {index} / {len(self._frames) - 1}  ·  {f.time:.3f} s  ·  {f.pict_type}"
        if sha:
            text += f"  ·  pixels {sha[:12]}…"
        self.position.setText(text)

    def _update_enabled(self) -> None:
        has = bool(self._frames)
        i = self.index
        self.prev_frame.setEnabled(has and i > 0)
        self.next_frame.setEnabled(has and i < len(self._frames) - 1)
        self.prev_key.setEnabled(has and any(k < i for k in self._keys))
        self.next_key.setEnabled(has and any(k > i for k in self._keys))
        self.use_button.setEnabled(has)
        self.slider.setEnabled(has)
