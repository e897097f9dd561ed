"""Video evidence in the window: the clip timeline, "Use this frame", face track and fusion.

A clip (``engine.video.is_video``) opens in the timeline above the pages; the timeline is hidden
while a still is open. Decoding runs in :class:`app.video_controller.VideoController`'s thread
(the GUI thread never decodes); the frame on screen is shown in the still view with its index,
time, type and pixel hash, the clip's container, codec, rate, frames, duration, SHA-256 and any
damage above it.

"Use this frame" makes the decoded frame (an ``engine.video.FrameStill``, whose provenance names
the clip and the frame) the still on screen through the worker's "open" job, so its faces are
found off the GUI thread, it is logged ("open", with the clip's SHA-256, the frame's index,
time and pixel hash), and every still feature works on it.

"Track and fuse this face" (the selected face of a used frame) runs the worker's "track" job
(:mod:`app.video_jobs`) with the settings of the track window (frames to fuse, frames
searched, detector, frames ticked or unticked): the track is drawn on the timeline, the fused
result is shown beside the single-frame result with the ranked frames
(:class:`app.views.track_view.TrackDialog`), and the fused output joins the session's results
(compare page, fidelity, export, case report) under the key (face, model, "fused").
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from app.controllers import Controller
from app.dialogs import settings as app_settings
from app.jobs import ExportArgs, OpenArgs, OpenOutcome, TrackArgs, TrackOutcome
from app.state import result_key
from app.video_controller import VideoController, describe
from app.views.common import label_strip
from app.views.timeline import Timeline
from app.views.track_view import TrackDialog
from app.worker import same_file
from engine import export as records
from engine import video
from engine.video_enhance import FUSED_LABEL

VIDEO_FILTER = "Video clips (" + " ".join(f"*{s}" for s in video.VIDEO_SUFFIXES) + ")"


class VideoEvidenceController(Controller):
    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.timeline = Timeline()
        self.timeline.setVisible(False)
        self.timeline.frameRequested.connect(self._request_frame)
        self.timeline.useFrameRequested.connect(self.use_frame)
        pages = window.takeCentralWidget()
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.timeline)
        layout.addWidget(pages, 1)
        window.setCentralWidget(box)
        self.decoder: VideoController | None = None  # started with the first clip
        self.info: video.ClipInfo | None = None
        self.frame: video.Frame | None = None  # the decoded frame on screen
        self.used: int | None = None  # the frame index made the still on screen
        self.dialog: TrackDialog | None = None
        self.outcome: TrackOutcome | None = None
        self._pending_use: int | None = None

    # ------------------------------------------------------------------ open, show
    def open_clip(self, path: str | Path) -> None:
        """Open a clip in the timeline (hashing and indexing run in the decoding thread)."""
        path = Path(path)
        w = self.w
        w.settings.setValue("lastOpenDir", str(path.parent))
        w.cancel_still_jobs()
        self.state.generation += 1  # the still on screen is gone: its answers are dropped
        self.state.new_still(None, [])
        w.opening.show_faces()
        w.fidelity.forget()
        w.fidelity_panel.clear()
        w.compare_view.set_pair(None)
        w.grid_view.clear()
        w.image_view.set_image(None)
        self.info, self.frame, self.used, self._pending_use = None, None, None, None
        self.timeline.clear()
        self.timeline.details.setText(f"Opening {path.name}: SHA-256 and frame index\u2026")
        self.timeline.setVisible(True)
        w.show_page("still")
        if self.decoder is None:
            self.decoder = VideoController(self.w)
            self.decoder.opened.connect(self._opened)
            self.decoder.frameReady.connect(self._frame_ready)
            self.decoder.failed.connect(self._failed)
        self.errors.status(f"Opening {path.name}\u2026")
        self.decoder.open(path)
        w.update_actions()

    def hide(self) -> None:
        """A still is being opened: the timeline goes (the clip stays open until the next)."""
        self.timeline.setVisible(False)
        self.used = None

    def shutdown(self) -> None:
        if self.decoder is not None:
            self.decoder.shutdown()

    def _opened(self, info: video.ClipInfo, frames: list) -> None:
        self.info = info
        text = describe(info)
        self.timeline.set_clip(frames, text)  # asks for frame 0
        self.timeline.details.setToolTip(f"File SHA-256: {info.sha256}\n{info.path}")
        self.w.opening.add_recent(info.path)
        self.w.setWindowTitle(f"{info.path.name} \u2014 {self.w.APPLICATION}")
        self.timeline.setFocus()
        if info.damage:
            self.errors.status(f"{info.path.name}: damaged clip: {info.damage}", 30000)
        else:
            self.errors.status(
                f"{info.path.name}: {info.frame_count} frames. Find a frame with the face, "
                "then \u201cUse this frame\u201d (Enter).",
                15000,
            )

    def _failed(self, message: str) -> None:
        self.timeline.details.setText(f"\u26a0 {message}")
        self.errors.dialog("Cannot open the clip", message)

    def _request_frame(self, index: int) -> None:
        if self.decoder is not None and self.info is not None:
            self.decoder.request_frame(index)
            self.w.show_page("still")  # moving in the clip shows its frames

    def _frame_ready(self, frame: video.Frame) -> None:
        if self.info is None or self.timeline.isHidden():
            return
        self.frame = frame
        self.w.image_view.set_image(frame.rgb)
        self.timeline.show_frame_info(frame.record())
        if frame.index == self.used:
            self.w.opening.show_faces()
        self._mark_used()
        if self._pending_use == frame.index:
            self._pending_use = None
            self.use_frame(frame.index)

    # ------------------------------------------------------------------ use this frame
    def use_frame(self, index: int) -> int | None:
        """Make decoded frame ``index`` the still on screen (faces found in the worker)."""
        if self.info is None:
            return None
        if self.frame is None or self.frame.index != index:
            self._pending_use = index  # used as soon as it is decoded
            self._request_frame(index)
            return None
        clip = SimpleNamespace(path=self.info.path, info=self.info, name=self.info.path.name)
        still = video.to_still(clip, self.frame)  # type: ignore[arg-type]
        self.w.cancel_still_jobs()
        self.state.generation += 1
        self.errors.status(f"Using frame {index}: looking for faces\u2026")
        return self.w.submit(
            OpenArgs(still=still, detector=self.state.detector), on_result=self._used
        )

    def _used(self, outcome: OpenOutcome) -> None:
        frame = outcome.still.video["frame"]
        self.used = int(frame["index"])
        self.w.opening._opened(outcome)
        self.timeline.set_track([], [])
        self._mark_used()
        self.w.update_actions()

    def _mark_used(self) -> None:
        """Say which frame is the still on screen (the one enhance, export and report use)."""
        if self.used is not None:
            position = self.timeline.position
            position.setText(position.text() + f"  \u00b7  in use: frame {self.used}")

    # ------------------------------------------------------------------ track and fuse
    def track_dialog(self) -> TrackDialog:
        if self.dialog is None:
            self.dialog = TrackDialog(self.w)
            self.dialog.fuseRequested.connect(self.track_and_fuse)
            self.dialog.exportRequested.connect(self.export_fused_dialog)
        return self.dialog

    def track_and_fuse(self) -> int | None:
        """Track the selected face of the used frame, fuse its frames, run the model (the
        settings, picks and exclusions of the track window; the stills' detector at first)."""
        state = self.state
        still = state.still
        if not self.can_track():
            return None
        face = state.faces[state.face_index]
        frame_index = int(still.video["frame"]["index"])
        box = tuple(float(v) for v in face.box)
        count = int(still.video["clip"].get("frame_count") or frame_index + 1)
        dialog = self.track_dialog()
        dialog.prepare(frame_index, count, box, state.detector)
        args = TrackArgs(
            clip_path=str(still.path),
            clip_sha256=still.video["clip"]["sha256"],
            frame_index=frame_index,
            box=box,  # type: ignore[arg-type]
            model_id=state.model_id,
            scale=state.scale,
            face_index=state.face_index,
            **dialog.settings(),
        )
        self.errors.status(f"Tracking the face around frame {args.frame_index}\u2026")
        return self.w.submit(args, on_result=self._tracked)

    def can_track(self) -> bool:
        state = self.state
        return (
            getattr(state.still, "video", None) is not None
            and bool(state.still.video)
            and state.face_index is not None
            and not state.faces[state.face_index].manual
        )

    def _tracked(self, outcome: TrackOutcome) -> None:
        self.outcome = outcome
        self.timeline.set_track(outcome.track.frames, outcome.used)
        dialog = self.track_dialog()
        dialog.set_outcome(outcome)
        dialog.show()
        dialog.raise_()
        result = outcome.result
        if result is not None:  # first-class: compare, fidelity, export, report take it
            key = result_key(result)
            self.state.results[key] = result
            self.state.model_fidelity.pop(key, None)
            self.w.enhancing.show_result(result)
            self.w.show_page("side" if self.w.compare_view.mode() == "side" else "wipe")
        self.errors.status(
            f"Track of {len(outcome.track.faces)} frames; {outcome.scale_note}", 20000
        )

    def export_fused_dialog(self) -> None:
        outcome = self.outcome
        if outcome is None or self.state.still is None:
            return
        folder = str(self.w.settings.value("lastExportDir", str(Path.home())))
        name = f"{Path(self.state.still.name or 'frame').stem}_fused{len(outcome.used)}.png"
        path, _ = QFileDialog.getSaveFileName(
            self.w, "Export fused face", str(Path(folder) / name), "PNG image (*.png)"
        )
        if path:
            self.export_fused(path)

    def export_fused(self, path: str | Path) -> int | None:
        """Save the fused face no model enlarged (a face of 128 px or more): labelled as fused
        frames, with the provenance and the frames in its PNG text, logged as an export."""
        outcome, state = self.outcome, self.state
        if outcome is None or outcome.result is not None or state.still is None:
            return None
        path = Path(path).with_suffix(".png")
        if same_file(path, state.still.path):
            self.errors.dialog("Export refused", f"{path} is the evidence file that was opened.")
            return None
        e = outcome.enhancement
        fused = SimpleNamespace(  # what engine.export reads of a result
            model_id=outcome.model_id,
            scale=1,
            face_index=e.face_index,
            provenance=e.record_fused,
            fusion=e.record_fused["parameters"]["fusion"],
            lr=e.fused.lr,
            aligned=e.fused.aligned,
            plan=e.plan,
        )
        record = records.export_record(
            fused,
            "face",
            visible_label=True,
            label=FUSED_LABEL,
            app_label=FUSED_LABEL,
            examiner=app_settings.examiner(self.w.settings),
        )
        frames = ", ".join(map(str, outcome.used))
        strip = label_strip(e.fused.lr.shape[1], [FUSED_LABEL, f"frames {frames}, not enlarged"])
        self.w.settings.setValue("lastExportDir", str(path.parent))
        args = ExportArgs(
            path=str(path),
            forbidden=str(state.still.path) if state.still.path is not None else None,
            rgb=e.fused.lr,
            strip=strip,
            text=records.export_png_text(record),
            role="fused",
            log_fields=records.export_log_fields(state.still, fused, record),
        )
        return self.w.submit(args, on_result=self.w.exporting._exported)

    def update_actions(self, kinds: set[str]) -> None:
        busy = bool(kinds & {"track", "batch", "enhance", "box"})
        self.w.act_track_fuse.setEnabled(self.can_track() and not busy)
