"""The clip timeline (keys, I-frames, track strip) and the decoding thread behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from app.video_controller import VideoController, describe
from app.views.timeline import Timeline
from engine import video

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    rgb = np.array(Image.open(SAMPLE).convert("RGB"))[:128, :128]
    frames = [np.roll(rgb, i, axis=1) for i in range(12)]
    folder = tmp_path_factory.mktemp("clip")
    return video.encode_clip(folder / "c.mkv", frames, gop=4, b_frames=1, bit_rate=300_000)


@pytest.fixture
def index(clip_path):
    with video.open_clip(clip_path) as clip:
        return clip.info, list(clip.frames)


def test_timeline_keys_and_i_frames(qtbot, index) -> None:
    info, frames = index
    keys = [f.index for f in frames if f.key]
    assert keys[:3] == [0, 4, 8]
    timeline = Timeline()
    qtbot.addWidget(timeline)
    requested: list[int] = []
    timeline.frameRequested.connect(requested.append)
    timeline.set_clip(frames, describe(info))
    assert requested == [0] and timeline.frame_count == 12
    assert not timeline.prev_frame.isEnabled() and timeline.next_frame.isEnabled()
    assert "c.mkv" in timeline.details.text() and "h264" in timeline.details.text()
    timeline.setFocus()
    qtbot.keyClick(timeline, Qt.Key.Key_Right)
    qtbot.keyClick(timeline, Qt.Key.Key_Right)
    assert timeline.index == 2
    qtbot.keyClick(timeline, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert timeline.index == 4  # next I-frame
    qtbot.keyClick(timeline, Qt.Key.Key_PageDown)
    assert timeline.index == 8
    qtbot.keyClick(timeline, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert timeline.index == 4
    qtbot.keyClick(timeline, Qt.Key.Key_End)
    assert timeline.index == 11 and not timeline.next_frame.isEnabled()
    qtbot.keyClick(timeline, Qt.Key.Key_Right)  # clamped
    assert timeline.index == 11
    qtbot.keyClick(timeline, Qt.Key.Key_Home)
    assert timeline.index == 0 and not timeline.prev_key.isEnabled()
    assert requested == [0, 1, 2, 4, 8, 4, 11, 0]
    assert f"{frames[0].time:.3f} s" in timeline.position.text()
    with qtbot.waitSignal(timeline.useFrameRequested) as blocker:
        qtbot.keyClick(timeline, Qt.Key.Key_Return)
    assert blocker.args == [0]
    timeline.set_track([2, 3, 4, 5, 6], chosen=[3, 5])
    assert timeline.strip.track == [2, 3, 4, 5, 6] and timeline.strip.chosen == [3, 5]
    timeline.grab()  # paints without error
    timeline.show_frame_info({"index": 0, "pixels_sha256": "ab" * 32})
    assert "abababababab" in timeline.position.text()
    timeline.clear()
    assert timeline.position.text() == "no clip" and not timeline.use_button.isEnabled()


def test_controller_decodes_off_the_gui_thread_latest_wins(qtbot, clip_path, index) -> None:
    controller = VideoController()
    try:
        with qtbot.waitSignal(controller.opened, timeout=20_000) as opened:
            controller.open(clip_path)
        info, frames = opened.args
        assert info.sha256 == video.io.sha256_file(clip_path) and len(frames) == 12
        got = []
        controller.frameReady.connect(got.append)
        for i in range(12):  # a fast scrub
            controller.request_frame(i)
        qtbot.waitUntil(lambda: bool(got) and got[-1].index == 11, timeout=20_000)
        assert len(got) <= 12
        with video.open_clip(clip_path) as clip:
            assert got[-1].sha256 == clip.frame(11).sha256
        junk = clip_path.parent / "junk.mp4"
        junk.write_bytes(b"not a video" * 20)
        with qtbot.waitSignal(controller.failed, timeout=20_000) as failed:
            controller.open(junk)
        assert "junk.mp4" in failed.args[0]
    finally:
        controller.shutdown()
    assert not controller._thread.isRunning()
