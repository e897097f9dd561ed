"""Open a still, detect its faces (faces drawn by hand: :mod:`.hand_box`); the recent-files list."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from app.controllers import Controller
from app.jobs import DetectArgs, DetectOutcome, OpenArgs, OpenOutcome
from app.views.face_list import DETECTORS
from engine import video

log = logging.getLogger(__name__)

MAX_RECENT = 10
IMAGE_PATTERNS = "*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp *.gif"
VIDEO_PATTERNS = " ".join(f"*{s}" for s in video.VIDEO_SUFFIXES)
IMAGE_FILTER = (
    f"Images and video clips ({IMAGE_PATTERNS} {VIDEO_PATTERNS});;Images ({IMAGE_PATTERNS});;"
    f"Video clips ({VIDEO_PATTERNS});;All files (*)"
)


class OpenController(Controller):
    def open_dialog(self) -> None:
        folder = str(self.w.settings.value("lastOpenDir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(
            self.w, "Open a still or a video clip", folder, IMAGE_FILTER
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> int | None:
        """Load a still and find its faces in the worker; returns the job id (None for a
        clip, which opens in the timeline: :mod:`app.controllers.video`)."""
        path = Path(path)
        if video.is_video(path) or video.is_animated_image(path):
            return self.w.video.open_clip(path)
        self.w.video.hide()
        self.w.settings.setValue("lastOpenDir", str(path.parent))
        self.w.cancel_still_jobs()  # a new still makes every job for the old one pointless
        self.state.generation += 1
        self.w.statusBar().showMessage(f"Opening {path.name}\u2026")
        return self.w.submit(
            OpenArgs(path=str(path), detector=self.state.detector),
            on_result=self._opened,
            on_failed=lambda error: self._not_opened(path, error),
        )

    def _not_opened(self, path: Path, error: Any) -> None:
        """The dialog says why; the status bar says what is on screen now (not "Reading the
        image", the last step the worker had reported)."""
        self.errors.failure(error, "Cannot open the image")
        still = self.state.still
        shown = (
            f"{still.name or 'the previous image'} is still on screen"
            if still
            else "no image is open"
        )
        self.errors.status(f"{path.name} was not opened; {shown}.", 30000)

    def _opened(self, outcome: OpenOutcome) -> None:
        w, state = self.w, self.state
        state.new_still(outcome.still, outcome.faces)
        w.fidelity.forget()
        w.fidelity_panel.clear()
        w.history_view.set_entries(
            outcome.history,
            "" if state.caselog_state is not None else "The case log is not open: nothing logged.",
        )
        w.case_log.label_back_on()
        w.image_view.set_image(state.still.rgb)
        w.compare_view.set_pair(None)
        w.grid_view.clear()
        if state.still.path is not None:
            self.add_recent(Path(state.still.path))
        name = state.still.name or "image"
        w.setWindowTitle(f"{name} \u2014 {w.APPLICATION}")
        w.show_page("still")
        size = f"{state.still.width}\u00d7{state.still.height}"
        self._found(f"{name} ({size})", outcome.detector, outcome.fallback)
        w.evidence.still_opened()  # the evidence line; the recommended model chosen

    def _found(self, what: str, detector: str, fallback: bool) -> None:
        """Faces listed, the first selected (or draw mode on), and the status line saying
        which detector found them."""
        w, state = self.w, self.state
        state.detector_used = detector
        self.show_faces()
        if state.faces:
            self.select_face(0)
            w.act_draw.setChecked(False)
            w.image_view.set_draw_mode(False)
            found = f"{len(state.faces)} face(s) found"
            if fallback:
                found += " by the CNN (HOG found none)"
            else:
                found += f" ({detector.upper()})"
            other = "" if detector == "cnn" else "; missed faces? Try the CNN"
            self.errors.status(
                f"{what}: {found}. Press Enter to enhance the selected face{other}.", 15000
            )
        else:
            w.act_draw.setChecked(True)
            w.image_view.set_draw_mode(True)
            tried = "HOG or CNN" if fallback or detector == "cnn" else detector.upper()
            self.errors.status(
                f"{what}: no face found ({tried}). Drag a box around a face: its landmarks are "
                "shown before it is used.",
                30000,
            )
        w.update_actions()

    # ------------------------------------------------------------------ detector
    def set_detector(self, detector: str) -> None:
        """The detector for the next open or Detect again ("auto", "hog" or "cnn")."""
        self.state.detector = detector if detector in DETECTORS else "auto"
        self.w.detector_bar.set_detector(self.state.detector)

    def detect_again(self) -> int | None:
        """Find the faces of the still on screen again with the chosen detector. Its results
        and hand-drawn faces are dropped: face numbers change."""
        still = self.state.still
        if still is None:
            return None
        self.w.cancel_still_jobs()
        self.state.generation += 1  # answers about the old face list are dropped
        self.w.statusBar().showMessage(
            f"Looking for faces ({DETECTORS[self.state.detector]})\u2026"
        )
        return self.w.submit(
            DetectArgs(still=still, detector=self.state.detector), on_result=self._redetected
        )

    def _redetected(self, outcome: DetectOutcome) -> None:
        w, state = self.w, self.state
        state.new_still(state.still, outcome.faces)
        w.fidelity.forget()
        w.fidelity_panel.clear()
        w.compare_view.set_pair(None)
        w.grid_view.clear()
        w.show_page("still")
        self._found(state.still.name or "image", outcome.detector, outcome.fallback)

    def show_faces(self) -> None:
        faces, still = self.state.faces, self.state.still
        self.w.image_view.set_faces([f.box for f in faces], [f.manual for f in faces])
        rgb = still.rgb if still is not None else None
        self.w.face_list.set_faces(rgb, faces, self.state.detector_used)

    def select_face(self, index: int) -> None:
        if not 0 <= index < len(self.state.faces):
            return
        self.state.face_index = index
        self.w.image_view.select_face(index)
        self.w.face_list.select(index)
        self.w.enhancing.show_cached()
        self.w.update_actions()

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        value = self.w.settings.value("recentFiles", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: Path) -> None:
        name = str(path)
        files = [f for f in self.recent_files() if f != name]
        self.w.settings.setValue("recentFiles", [name, *files][:MAX_RECENT])
        self.rebuild_recent_menu()

    def rebuild_recent_menu(self) -> None:
        menu = self.w.recent_menu
        menu.clear()
        files = self.recent_files()
        for name in files:
            action = menu.addAction(Path(name).name)
            action.setToolTip(name)
            action.setStatusTip(name)
            action.triggered.connect(lambda _=False, p=name: self.open_file(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear list", self._clear_recent)
        menu.setEnabled(bool(files))

    def _clear_recent(self) -> None:
        self.w.settings.setValue("recentFiles", [])
        self.rebuild_recent_menu()
