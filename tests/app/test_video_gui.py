"""Video evidence in the window: a clip in the timeline, "Use this frame", track and fusion.

The clip is made on the fly (the sample's face, moving sub-pixel, H.264 through PyAV), small
enough that detection over every frame takes a second.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine import video
from engine.enhance import Enhancer
from tests.app.conftest import JOB_MS, SAMPLE, wait_engine
from tests.clips import face_clip, moving_frames

FRAMES = 8


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    """8 frames of the sample's face region (128x128, face native 81 px), moving sub-pixel."""
    return face_clip(tmp_path_factory.mktemp("case") / "cam1.mp4", FRAMES, seed=5)


def log_entries(path: Path, action: str) -> list[dict]:
    lines = path.read_text("utf-8").splitlines() if path.is_file() else []
    return [e for e in map(json.loads, lines) if e["action"] == action]


def open_clip(qtbot, window, path: Path) -> None:
    assert window.open_file(path) is None  # a clip opens in the timeline, not as a still
    qtbot.waitUntil(lambda: window.video.frame is not None, timeout=JOB_MS)


def show_frame(qtbot, window, index: int) -> None:
    window.video.timeline.go_to(index)
    qtbot.waitUntil(
        lambda: window.video.frame is not None and window.video.frame.index == index,
        timeout=JOB_MS,
    )


def test_a_clip_opens_in_the_timeline_decoded_off_the_gui_thread(
    make_window, qtbot, run_job, clip_path, monkeypatch
) -> None:
    decoded_in: list[int] = []
    real_frame = video.Clip.frame

    def frame(self, index):
        decoded_in.append(threading.get_ident())
        return real_frame(self, index)

    monkeypatch.setattr(video.Clip, "frame", frame)
    window = make_window()
    timeline = window.video.timeline
    assert not timeline.isVisible()
    open_clip(qtbot, window, clip_path)
    assert timeline.isVisible() and timeline.frame_count == FRAMES
    with video.open_clip(clip_path) as clip:
        info = clip.info
        sha0 = real_frame(clip, 0).sha256
        sha3 = real_frame(clip, 3).sha256
    details = timeline.details.text()
    for text in ("cam1.mp4", "mov", "h264", "25.000 fps", f"{FRAMES} frames", info.sha256[:16]):
        assert text in details
    assert f"{info.duration_s:.2f} s" in details
    assert info.sha256 in timeline.details.toolTip()
    assert window.video.frame.sha256 == sha0
    assert "frame 0 / 7" in timeline.position.text() and "I" in timeline.position.text()
    assert sha0[:12] in timeline.position.text()
    assert window.image_view._pixmap_item is not None
    timeline.setFocus()
    for _ in range(3):
        qtbot.keyClick(timeline, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.video.frame.index == 3, timeout=JOB_MS)
    assert window.video.frame.sha256 == sha3
    assert "frame 3 / 7" in timeline.position.text()
    assert decoded_in and threading.get_ident() not in decoded_in
    assert str(clip_path) in window.recent_files()
    assert window.state.still is None and not window.act_track_fuse.isEnabled()
    # A still afterwards: the timeline goes.
    wait_engine(qtbot, window)
    run_job(window, lambda: window.open_file(SAMPLE))
    assert not timeline.isVisible() and window.state.still.path == SAMPLE


def test_a_damaged_clip_opens_with_a_warning(make_window, qtbot, clip_path, tmp_path) -> None:
    data = clip_path.read_bytes()
    cut = tmp_path / "cut.mkv"
    with video.open_clip(clip_path) as clip:
        video.encode_clip(cut, [clip.frame(i).rgb for i in range(FRAMES)], gop=2)
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) * 55 // 100])
    assert data  # the original is untouched
    window = make_window()
    open_clip(qtbot, window, cut)
    assert "\u26a0" in window.video.timeline.details.text()
    assert "truncated or damaged" in window.video.timeline.details.text()
    assert "damaged" in window.errors.last_message


def test_use_this_frame_makes_it_the_still_logged_with_clip_and_frame(
    opened, qtbot, run_job, clip_path, case_log_path
) -> None:
    window = opened()
    open_clip(qtbot, window, clip_path)
    show_frame(qtbot, window, 2)
    run_job(window, lambda: window.video.use_frame(2))
    still = window.state.still
    assert isinstance(still, video.FrameStill) and still.video["frame"]["index"] == 2
    assert still.sha256 == window.video.frame.sha256 and len(window.state.faces) == 1
    assert window.state.face_index == 0 and window.video.timeline.isVisible()
    assert "in use: frame 2" in window.video.timeline.position.text()
    assert window.act_track_fuse.isEnabled() and window.act_enhance.isEnabled()
    # Scrubbing on: the frame in use stays named; Enter in the timeline uses the frame on
    # screen (not "Enhance", whose shortcut it also is).
    show_frame(qtbot, window, 3)
    assert "frame 3 / 7" in window.video.timeline.position.text()
    assert "in use: frame 2" in window.video.timeline.position.text()
    window.video.timeline.setFocus()
    with qtbot.waitSignal(window.video.timeline.useFrameRequested) as used:
        qtbot.keyClick(window.video.timeline, Qt.Key.Key_Return)
    assert used.args == [3] and "enhance" not in window.busy_kinds()
    qtbot.waitUntil(lambda: window.state.still.video["frame"]["index"] == 3, timeout=JOB_MS)
    qtbot.waitUntil(lambda: not window.busy_kinds() - {"init", "caselog"}, timeout=JOB_MS)
    show_frame(qtbot, window, 2)
    run_job(window, lambda: window.video.use_frame(2))
    entry = log_entries(case_log_path, "open")[-1]
    with video.open_clip(clip_path) as clip:
        frame2 = clip.frame(2)
        assert entry["details"]["clip"]["sha256"] == clip.info.sha256
    assert entry["input_sha256"] == frame2.sha256
    assert entry["details"]["frame"] == frame2.record()
    assert entry["details"]["faces_found"] == 1
    # Every still feature works on it: enhance, and its provenance names the clip and frame.
    run_job(window, window.enhance)
    result = window.state.current
    assert result is not None
    assert result.provenance["input"]["video"]["frame"]["index"] == 2
    window.show_page("side")
    show_frame(qtbot, window, 4)  # moving in the clip shows its frames again
    assert window.tabs.currentIndex() == 0 and window.state.current is result


def test_track_and_fuse_draws_the_track_and_shows_fused_beside_single(
    opened, qtbot, run_job, clip_path, case_log_path, tmp_path
) -> None:
    window = opened()
    assert window.state.scale == "auto"
    open_clip(qtbot, window, clip_path)
    show_frame(qtbot, window, 5)
    run_job(window, lambda: window.video.use_frame(5))
    face = window.state.faces[0]
    # the rule the engine follows: the scales whose weights are installed (Enhancer.plan)
    plan = Enhancer().plan(face, window.state.model_id, "auto")
    run_job(window, window.video.track_and_fuse, timeout=180_000)
    outcome = window.video.outcome
    # Auto: the scale the face's native size allows, as for stills (not "x4 or else")
    assert outcome is not None and outcome.scale == plan.scale and outcome.frame_index == 5
    assert outcome.args.detector == window.state.detector and outcome.args.fuse == 8
    assert plan.mode == "native"  # an 81 px face: between x2's 64 px frame and 128 px
    assert "native 81 px" in outcome.scale_note and "no recorded pixel" in outcome.scale_note
    assert outcome.track.frames == list(range(FRAMES))
    assert 5 in outcome.used and len(outcome.chosen) == FRAMES
    strip = window.video.timeline.strip
    assert strip.track == list(range(FRAMES)) and strip.chosen == sorted(outcome.used)
    dialog = window.video.dialog
    assert dialog.isVisible()
    assert dialog.single_caption.text().startswith("single frame 5")
    assert dialog.fused_caption.text().startswith(f"fused from {len(outcome.used)} frames")
    assert outcome.scale_note in dialog.summary.text()
    assert dialog.ranking.topLevelItemCount() == FRAMES
    assert "sharpness" in dialog.ranking.topLevelItem(0).text(3)
    assert outcome.enhancement.sr_fused.shape == (128, 128, 3)
    entry = log_entries(case_log_path, "track_fuse")[-1]
    assert entry == outcome.log_entry
    assert entry["scale"] == plan.scale and entry["model_id"] == window.state.model_id
    assert entry["details"]["reference_frame"] == 5
    assert entry["details"]["frames_fused"] == len(outcome.used)
    assert entry["details"]["clip"]["sha256"] == video.io.sha256_file(clip_path)
    assert entry["parameters"]["fusion"]["frames"]  # every frame fused or rejected, and why
    # First-class: the fused face is the output on screen, kept with the session's results.
    result = outcome.result
    assert window.state.current is result and window.state.results[(0, result.model_id, "fused")]
    assert "fused from" in window.compare_view._pair.model_name
    shown = " ".join(window.compare_view.input_view.caption())
    assert f"{len(outcome.used)} frames registered and fused" in shown
    # Exported through the File menu's path: labelled, with the frames in its provenance.
    out = tmp_path / "out"
    out.mkdir()
    run_job(window, lambda: window.export("face", out / "fused.png"))
    with Image.open(out / "fused.png") as im:
        text = dict(im.text)
    first_hash = outcome.log_entry["details"]["frames_used"][0]["pixels_sha256"]
    assert "fusion_method" in json.dumps(text) and first_hash in json.dumps(text)
    exported = log_entries(case_log_path, "export")[-1]
    assert [f["index"] for f in exported["details"]["fusion"]["frames_used"]] == outcome.used
    # The case report: a page for the fused output, single frame beside it, the frame table.
    with qtbot.waitSignal(window.reportWritten, timeout=120_000) as written:
        window.export_report(out / "report.html")
    page = (out / "report.html").read_text("utf-8")
    assert [p.name for p, _ in written.args[0].files] == ["report.html", "report.pdf"]
    assert "Single frame 5, same model" in page and "Multi-frame fusion" in page
    assert f"fused from {len(outcome.used)} frames" in page and "No fidelity checks" not in page


def test_fusion_settings_picks_and_exclusions_reach_the_engine(
    opened, qtbot, run_job, clip_path
) -> None:
    window = opened()
    open_clip(qtbot, window, clip_path)
    show_frame(qtbot, window, 3)
    run_job(window, lambda: window.video.use_frame(3))
    dialog = window.video.track_dialog()
    dialog.prepare(3, FRAMES, tuple(window.state.faces[0].box), "auto")
    dialog.fuse.setValue(3)
    dialog.first.setValue(1)
    dialog.last.setValue(6)
    dialog.detector.setCurrentIndex(dialog.detector.findData("hog"))
    run_job(window, window.video.track_and_fuse, timeout=180_000)
    outcome = window.video.outcome
    assert outcome.searched == (1, 7) and len(outcome.chosen) == 3 and 3 in outcome.chosen
    analyst = outcome.result.provenance["parameters"]
    assert analyst["detector"] == "hog" and analyst["frames_searched"] == "1:7"
    assert analyst["analyst"]["fuse"] == 3
    # Tick two more frames, untick one of the chosen: exactly the ticked ones are fused.
    items = {
        int(dialog.ranking.topLevelItem(i).text(0)): dialog.ranking.topLevelItem(i)
        for i in range(dialog.ranking.topLevelItemCount())
    }
    dropped = next(i for i in outcome.chosen if i != 3)
    added = [i for i in sorted(items) if i not in outcome.chosen][:2]
    items[dropped].setCheckState(0, Qt.CheckState.Unchecked)
    for i in added:
        items[i].setCheckState(0, Qt.CheckState.Checked)
    assert not items[3].flags() & Qt.ItemFlag.ItemIsUserCheckable  # the frame in use stays
    wanted = sorted({*outcome.chosen, *added} - {dropped})
    dialog.again.click()  # "Fuse again": the controller submits the job
    qtbot.waitUntil(lambda: window.video.outcome is not outcome, timeout=180_000)
    qtbot.waitUntil(lambda: "track" not in window.busy_kinds(), timeout=JOB_MS)
    again = window.video.outcome
    assert again is not outcome and again.chosen == wanted
    recorded = again.result.provenance["parameters"]["analyst"]
    assert recorded["picked"] == wanted and recorded["excluded"] == [dropped]


def test_a_fixed_scale_that_would_shrink_the_face_is_refused(
    opened, qtbot, run_job, clip_path
) -> None:
    window = opened()
    window.set_scale(8)  # an 81 px face into x8's 16 px frame: the evidence would be shrunk
    open_clip(qtbot, window, clip_path)
    run_job(window, lambda: window.video.use_frame(0))
    run_job(window, window.video.track_and_fuse, timeout=180_000)
    assert window.video.outcome is None
    assert "shrinks this face" in window.errors.last_message


def test_a_dropped_clip_and_a_recent_clip_open_in_the_timeline(make_window, qtbot, clip_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clip_path))])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert event.isAccepted()
    qtbot.waitUntil(lambda: window.video.frame is not None, timeout=JOB_MS)
    assert window.video.timeline.isVisible() and window.video.info.path == clip_path
    recent = [a for a in window.recent_menu.actions() if a.toolTip() == str(clip_path)]
    assert len(recent) == 1
    first = window.video.frame
    window.video.frame = None
    recent[0].trigger()  # reopened from the recent files
    qtbot.waitUntil(lambda: window.video.frame is not None, timeout=JOB_MS)
    assert window.video.frame.sha256 == first.sha256 and window.video.frame.index == 0


def test_an_animated_gif_opens_as_a_clip(make_window, qtbot, clip_path, tmp_path) -> None:
    with video.open_clip(clip_path) as clip:
        images = [Image.fromarray(clip.frame(i).rgb) for i in range(3)]
    gif = tmp_path / "cctv.gif"
    images[0].save(gif, save_all=True, append_images=images[1:], duration=80, loop=0)
    single = tmp_path / "still.gif"
    images[0].save(single)
    assert video.is_animated_image(gif) and not video.is_animated_image(single)
    assert not video.is_animated_image(SAMPLE)
    window = make_window()
    open_clip(qtbot, window, gif)
    assert window.video.timeline.frame_count == 3 and "gif" in window.video.timeline.details.text()


def test_a_large_face_is_fused_not_enlarged_and_can_be_exported(
    opened, qtbot, run_job, tmp_path, case_log_path
) -> None:
    frames = [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in moving_frames(5, 3)]
    clip = video.encode_clip(tmp_path / "near.mp4", frames, bit_rate=2_000_000, gop=5)
    window = opened()
    open_clip(qtbot, window, clip)
    show_frame(qtbot, window, 2)
    run_job(window, lambda: window.video.use_frame(2))
    assert window.state.faces[0].native_frame_px >= 128
    run_job(window, window.video.track_and_fuse, timeout=180_000)
    outcome = window.video.outcome
    assert outcome.result is None and outcome.scale == 1  # averaged, not enlarged
    assert "does not enlarge" in outcome.scale_note
    dialog = window.video.dialog
    assert "not enlarged" in dialog.fused_caption.text() and dialog.export.isVisibleTo(dialog)
    assert outcome.log_entry["details"]["pixels_sha256"] is None
    run_job(window, lambda: window.video.export_fused(tmp_path / "fused.png"))
    with Image.open(tmp_path / "fused.png") as im:
        assert "Fused from several frames" in json.dumps(dict(im.text))
        assert im.width == outcome.enhancement.fused.lr.shape[1]
    exported = log_entries(case_log_path, "export")[-1]
    assert [f["index"] for f in exported["details"]["fusion"]["frames_used"]] == outcome.used


def test_track_and_fuse_refuses_an_x1_restoration_model() -> None:
    """Fusion registers and resamples frames: x1 restore works on one still's pixels only."""
    from types import SimpleNamespace

    from app.video_jobs import job_track

    job = SimpleNamespace(args=SimpleNamespace(model_id="s4_idrn_restore"), token=None)
    with pytest.raises(ValueError, match="track and fuse needs a model that enlarges"):
        job_track(None, job)
