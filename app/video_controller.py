"""Decoding a clip off the GUI thread, latest request wins.

:class:`VideoController` owns one :class:`QThread` that opens clips (SHA-256 of the whole file,
one decoding pass for the frame index: seconds for a long clip) and decodes the frame the
timeline asks for. Scrubbing the slider sends many requests; only the most recent one not yet
started is decoded, so the picture follows the slider instead of replaying its whole path.

Signals (all delivered in the GUI thread): ``opened(clip_info, frames)``,
``frameReady(frame)`` (an :class:`engine.video.Frame`), ``failed(message)`` (a person's words:
:class:`engine.video.VideoError` says what is wrong with the file), ``busy(bool)``.

Detection, tracking, fusion and the models are *not* run here: they belong to the engine worker
(:mod:`app.worker`), which owns dlib and torch. This thread only touches PyAV and numpy.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from engine import video

log = logging.getLogger(__name__)


class _DecodeThread(QThread):
    opened = Signal(object, object)  # ClipInfo, [FrameInfo]
    frameReady = Signal(object)  # engine.video.Frame
    failed = Signal(str)
    busy = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._open: Path | None = None
        self._frame: int | None = None
        self._stop = False
        self.clip: video.Clip | None = None

    # called from the GUI thread
    def request_open(self, path: Path) -> None:
        with self._cond:
            self._open, self._frame = Path(path), None
            self._cond.notify()

    def request_frame(self, index: int) -> None:
        with self._cond:
            self._frame = int(index)  # replaces any request not started yet
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def run(self) -> None:  # the thread's loop
        try:
            while True:
                with self._cond:
                    while not self._stop and self._open is None and self._frame is None:
                        self._cond.wait()
                    if self._stop:
                        return
                    path, self._open = self._open, None
                    index = None if path is not None else self._frame
                    if path is None:
                        self._frame = None
                self.busy.emit(True)
                try:
                    if path is not None:
                        self._do_open(path)
                    elif index is not None:
                        self._do_frame(index)
                except video.VideoError as exc:
                    self.failed.emit(str(exc))
                except Exception as exc:  # noqa: BLE001 - every failure reaches the analyst
                    log.exception("decoding failed")
                    self.failed.emit(f"Decoding failed: {type(exc).__name__}: {exc}")
                finally:
                    self.busy.emit(False)
        finally:
            if self.clip is not None:
                self.clip.close()
                self.clip = None

    def _do_open(self, path: Path) -> None:
        if self.clip is not None:
            self.clip.close()
            self.clip = None
        clip = video.open_clip(path)
        self.clip = clip
        self.opened.emit(clip.info, list(clip.frames))

    def _do_frame(self, index: int) -> None:
        if self.clip is None:
            return
        self.frameReady.emit(self.clip.frame(index))


class VideoController(QObject):
    """The GUI's handle on the decoding thread (see the module's description)."""

    opened = Signal(object, object)
    frameReady = Signal(object)
    failed = Signal(str)
    busy = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = _DecodeThread()
        self._thread.opened.connect(self.opened)
        self._thread.frameReady.connect(self.frameReady)
        self._thread.failed.connect(self.failed)
        self._thread.busy.connect(self.busy)
        self._thread.start()

    def open(self, path: Path | str) -> None:
        self._thread.request_open(Path(path))

    def request_frame(self, index: int) -> None:
        self._thread.request_frame(index)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop the thread and close the clip (call before the window closes)."""
        self._thread.stop()
        self._thread.wait(timeout_ms)


def describe(info: video.ClipInfo) -> str:
    """One line about a clip for the timeline: container, codec, size, rate, frames, hash."""
    fps = f"{info.fps:.3f} fps" if info.fps else "rate unknown"
    text = (
        f"{info.path.name}: {info.container.split(',')[0]} / {info.codec}"
        f"{' ' + info.profile if info.profile else ''}, {info.width}x{info.height}, {fps}, "
        f"{info.frame_count} frames ({info.key_frames} key), SHA-256 {info.sha256[:16]}…"
    )
    if info.damage:
        text += f"  ⚠ {info.damage}"
    return text
