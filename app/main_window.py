"""The main window: a thin shell that builds the widgets and wires them to the controllers.

The session's state lives in one :class:`app.state.SessionState`; each concern has its
controller (:mod:`app.controllers`): opening and face detection, enhancing and comparing,
fidelity checks, exports and reports, the case log and the visible label. The menus and
toolbars come from the tables in :mod:`app.actions`. Every heavy step is a typed job for the
worker (:mod:`app.worker`); :meth:`MainWindow.submit` sends it and routes its answers to the
controller that asked, dropping answers about a still that is no longer on screen, and shows
failures through the one error presenter (:mod:`app.errors`).

Forensic integrity: the worker writes every open, enhancement, export, batch run, label removal,
reproduction and case report to the case log (:mod:`engine.caselog`) under the examiner's name;
the History dock lists the entries of the open still; the Forensics menu verifies the log,
re-runs a logged enhancement and writes the case report (HTML and PDF). Exports carry a visible
label strip unless the examiner removes it and gives a reason, which is logged and written into
the PNG too. Every enhanced face gets its fidelity checks (:mod:`engine.fidelity`), computed in
the worker and shown under it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import qtawesome as qta
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import actions, errors
from app.client import EngineClient, JobHandle
from app.controllers.case_log import CaseLogController
from app.controllers.enhancing import EnhanceController
from app.controllers.evidence import EvidenceController
from app.controllers.exporting import ExportController
from app.controllers.fidelity import FidelityController
from app.controllers.hand_box import HandBoxController
from app.controllers.opening import OpenController
from app.controllers.video import VideoEvidenceController
from app.dialogs import settings as app_settings
from app.dialogs.about import AboutDialog
from app.state import AUTO, RESTORE, SessionState, parse_scale
from app.views.compare_view import INPUT_METHODS, CompareView
from app.views.evidence_info import EvidenceInfo
from app.views.face_list import DetectorBar, FaceList
from app.views.grid_view import GridView
from app.views.hand_box import StillPage
from app.views.history_view import HistoryView
from app.views.image_view import ImageView
from app.worker import default_enhancer

log = logging.getLogger(__name__)

ORGANISATION = "ForensicFaceEnhancer"
APPLICATION = "Forensic Face Enhancer"
ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icons" / "app.svg"
PAGE_STILL, PAGE_COMPARE, PAGE_GRID = 0, 1, 2


def default_settings() -> QSettings:
    """The user's settings (INI file under the user's config folder)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


def app_icon() -> QIcon:
    return QIcon(str(ICON_PATH)) if ICON_PATH.is_file() else qta.icon("mdi6.face-recognition")


def local_paths(urls: list[QUrl]) -> list[Path]:
    """Local files among dropped URLs."""
    return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and u.toLocalFile()]


def _state(name: str) -> property:
    """A window attribute that is the session state's (scripts and tests read them here)."""
    return property(
        lambda self: getattr(self.state, name), lambda self, v: setattr(self.state, name, v)
    )


class MainWindow(QMainWindow):
    """The application window. ``enhancer_factory`` exists for tests (a slow double for cancel)."""

    APPLICATION = APPLICATION
    reportWritten = Signal(object)  # the ReportOutcome, when a case report has been written

    still = _state("still")
    faces = _state("faces")
    face_index = _state("face_index")
    results = _state("results")
    current = _state("current")
    model_fidelity = _state("model_fidelity")
    model_id = _state("model_id")
    scale = _state("scale")
    device = _state("device")
    entries = _state("entries")
    caselog_state = _state("caselog_state")
    label_removal = _state("label_removal")

    def __init__(
        self,
        enhancer_factory=default_enhancer,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.setWindowTitle(APPLICATION)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1280, 820)
        # The examiner's default scale starts each session; without one, the last scale used.
        scale = parse_scale(
            self.settings.value(app_settings.KEY_DEFAULT_SCALE, self.settings.value("scale", AUTO))
        )
        scale = AUTO if scale == RESTORE else scale  # x1 restore is chosen anew, never inherited
        self.state = SessionState(
            model_id=str(self.settings.value("model", "bicubic")), scale=scale
        )
        self._jobs: dict[int, JobHandle] = {}  # submitted and not finished
        self.errors = errors.ErrorPresenter(self, self.statusBar())
        self.client = EngineClient(enhancer_factory, self)
        self._build_views()
        self._build_status_bar()
        self.opening = OpenController(self)
        self.hand_box = HandBoxController(self)  # a drawn box, refined before it is used
        self.enhancing = EnhanceController(self)
        self.fidelity = FidelityController(self)
        self.exporting = ExportController(self)
        self.case_log = CaseLogController(self)
        self.evidence = EvidenceController(self)
        self.video = VideoEvidenceController(self)  # the clip timeline above the pages
        actions.build(self)
        self._wire()
        self._restore_settings()
        self.enhancing.refresh_models()
        self.update_actions()
        self.enhancing.check_engine()
        self.case_log.configure()
        if not app_settings.has_examiner(self.settings):
            # Asked once, after the window is up; until then the OS user name is used.
            QTimer.singleShot(0, lambda: self.case_log.open_settings(first_start=True))

    # ================================================================== construction
    def _build_views(self) -> None:
        self.image_view = ImageView()
        self.image_view.setAcceptDrops(False)  # drops go to the window
        self.image_view.viewport().setAcceptDrops(False)
        self.compare_view = CompareView()
        self.grid_view = GridView()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.still_page = StillPage(self.image_view)  # a drawn box's banner above the still
        self.tabs.addTab(self.still_page, qta.icon("mdi6.image-outline"), "Still")
        self.tabs.addTab(
            self.compare_view, qta.icon("mdi6.compare-horizontal"), "Input vs enhanced"
        )
        self.tabs.addTab(self.grid_view, qta.icon("mdi6.view-grid-outline"), "All models")
        self.tabs.currentChanged.connect(lambda _: self.update_actions())
        self.setCentralWidget(self.tabs)

        self.face_list = FaceList()
        self.detector_bar = DetectorBar()
        faces_box = QWidget()
        column = QVBoxLayout(faces_box)
        column.setContentsMargins(0, 0, 0, 0)
        self.evidence_info = EvidenceInfo()  # JPEG quality, noise, the variant recommended
        column.addWidget(self.evidence_info)
        column.addWidget(self.detector_bar)
        column.addWidget(self.face_list, 1)
        self.faces_dock = QDockWidget("Faces", self)
        self.faces_dock.setObjectName("facesDock")
        self.faces_dock.setWidget(faces_box)
        self.faces_dock.setMinimumWidth(170)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.faces_dock)

        self.fidelity_panel = self.compare_view.fidelity_panel
        self.history_view = HistoryView()
        self.history_view.set_model_names({e.id: e.label for e in self.state.entries})
        self.history_view.selectionChanged.connect(self.update_actions)
        self.history_toolbar = QToolBar("History")
        self.history_toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        history_box = QWidget()
        box = QVBoxLayout(history_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.history_toolbar)
        box.addWidget(self.history_view, 1)
        self.history_dock = QDockWidget("History (case log)", self)
        self.history_dock.setObjectName("historyDock")
        self.history_dock.setWidget(history_box)
        # Below the pages, beside the faces: wide enough for every column, and the
        # side-by-side faces are limited by the window's width rather than its height.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.history_dock)
        self.resizeDocks([self.history_dock], [120], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.model_label = QLabel()
        self.device_label = QLabel("Device: starting\u2026")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton(qta.icon("mdi6.stop-circle-outline"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setVisible(False)
        self.log_label = QLabel("Case log: opening\u2026")
        for widget in (
            self.log_label,
            self.model_label,
            self.device_label,
            self.progress_bar,
            self.cancel_button,
        ):
            status.addPermanentWidget(widget)

    def _wire(self) -> None:
        """Views to controllers, and the verbs scripts and tests call on the window."""
        self.image_view.faceClicked.connect(self.opening.select_face)
        self.face_list.faceSelected.connect(self.opening.select_face)
        self.detector_bar.detectorChanged.connect(self.opening.set_detector)
        self.detector_bar.detectRequested.connect(self.opening.detect_again)
        self.grid_view.tileClicked.connect(self.enhancing.tile_clicked)
        self.compare_view.landmarksToggled.connect(self.act_landmarks.setChecked)
        self.compare_view.inputMethodChanged.connect(
            lambda m: self.input_method_actions[m].setChecked(True)
        )
        self.compare_view.modeChanged.connect(lambda m: self._sync_page_actions())
        self.open_file = self.opening.open_file
        self.recent_files = self.opening.recent_files
        self.set_model = self.enhancing.set_model
        self.set_scale = self.enhancing.set_scale
        self.enhance = self.enhancing.enhance
        self.compare_all = self.enhancing.compare_all
        self.export = self.exporting.export
        self.export_report = self.exporting.export_report
        self.report_groups = self.exporting.report_groups
        self.open_batch = self.exporting.open_batch
        self.start_batch = self.exporting.start_batch
        self.case_log_path = self.case_log.path
        self.verify_log = self.case_log.verify_log
        self.reproduce_selected = self.case_log.reproduce_selected
        self.entry = self.state.entry
        self.runnable_models = self.state.runnable_models

    # ================================================================== settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = s.value("windowState")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.act_landmarks.setChecked(s.value("landmarks", False, type=bool))
        self.compare_view.set_landmarks_visible(self.act_landmarks.isChecked())
        method = str(s.value("inputMethod", "nearest"))
        if method in INPUT_METHODS:
            self.compare_view.set_input_method(method)
        mode = str(s.value("compareMode", "side"))
        if mode in ("side", "wipe"):
            self.compare_view.set_mode(mode)
        # The visible export label is not restored: it is on at every start, and only a logged
        # reason turns it off (for this still).
        self.opening.rebuild_recent_menu()
        self.opening.set_detector(str(s.value("detector", "auto")))

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        s.setValue("model", self.state.model_id)
        s.setValue("scale", self.state.scale)
        s.setValue("detector", self.state.detector)
        s.setValue("landmarks", self.compare_view.landmarks_visible())
        s.setValue("inputMethod", self.compare_view.input_method())
        s.setValue("compareMode", self.compare_view.mode())
        s.sync()

    # ================================================================== jobs
    def submit(
        self,
        args: Any,
        *,
        on_result: Callable[[Any], Any] | None = None,
        on_partial: Callable[[Any], Any] | None = None,
        on_failed: Callable[[Any], Any] | None = None,
        on_progress: Callable[[int, int, str], Any] | None = None,
        on_cancelled: Callable[[], Any] | None = None,
        on_finished: Callable[[], Any] | None = None,
    ) -> int:
        """Send a job (an argument dataclass of :mod:`app.jobs`); returns its id.

        Its answers go to the given callbacks, unless the job is about a still that is no
        longer on screen. A failure without ``on_failed`` goes to the error presenter under
        the job's failure title; cancelling is not an error ("Cancelled" in the status bar).
        """
        handle = self.client.submit(args)
        spec, generation, job_id = handle.spec, self.state.generation, handle.id

        def live() -> bool:
            return spec.survives_new_still or generation == self.state.generation

        def failed(error: Any) -> None:
            if not live():
                return
            if on_failed is not None:
                on_failed(error)
            else:
                self.errors.failure(error, spec.failure_title)

        self._jobs[job_id] = handle
        if spec.cancellable:  # busy until the job's own first report (not the last job's "done")
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat("")
        handle.progress.connect(lambda d, t, m: self._on_progress(d, t, m, on_progress))
        if on_partial is not None:
            handle.partial.connect(lambda payload: live() and on_partial(payload))
        if on_result is not None:
            handle.result.connect(lambda payload: live() and on_result(payload))
        handle.failed.connect(failed)
        handle.cancelled.connect(lambda: self._on_cancelled(job_id, on_cancelled))
        handle.finished.connect(lambda: self._on_finished(job_id, on_finished))
        self.update_actions()
        return job_id

    def busy_kinds(self) -> set[str]:
        return {handle.kind for handle in self._jobs.values()}

    def cancel_still_jobs(self) -> None:
        """Cancel the jobs about the still on screen (another one is being opened)."""
        for handle in list(self._jobs.values()):
            if not handle.spec.survives_new_still:
                handle.cancel()

    def _on_progress(self, done: int, total: int, message: str, then: Callable | None) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done}/{total}")
        self.statusBar().showMessage(message)
        if then is not None:
            then(done, total, message)

    def _on_cancelled(self, job_id: int, then: Callable | None) -> None:
        if then is not None:
            then()
        if job_id in self._jobs:
            self.errors.status("Cancelled")

    def _on_finished(self, job_id: int, then: Callable | None) -> None:
        self._jobs.pop(job_id, None)
        if then is not None:
            then()
        self.update_actions()

    def cancel(self) -> None:
        """Stop every running or queued job (the engine stops at its next check)."""
        cancelled = False
        for handle in list(self._jobs.values()):
            if handle.spec.cancellable:
                handle.cancel()
                cancelled = True
        if cancelled:
            self.statusBar().showMessage("Cancelling\u2026")

    def update_actions(self) -> None:
        state, kinds = self.state, self.busy_kinds()
        has_face = state.still is not None and state.face_index is not None
        # A batch run holds the worker for a long time: jobs queued behind it would look hung.
        batching = "batch" in kinds
        enhancing = "enhance" in kinds or batching
        refining = self.hand_box.refining()  # Enter uses the drawn face, Esc discards it
        self.act_enhance.setEnabled(
            has_face and not enhancing and not refining and state.runnable(state.model_id)
        )
        self.act_compare.setEnabled(has_face and not enhancing)
        self.act_open.setEnabled(not batching)
        self.recent_menu.setEnabled(not batching and bool(self.opening.recent_files()))
        self.act_draw.setEnabled(state.still is not None and not batching)
        self.detector_bar.button.setEnabled(
            state.still is not None and not batching and not kinds & {"open", "detect"}
        )
        user_jobs = any(handle.spec.cancellable for handle in self._jobs.values())
        self.act_cancel.setEnabled(user_jobs and not refining)
        self.cancel_button.setVisible(user_jobs)
        self.progress_bar.setVisible(user_jobs)
        exporting = "export" in kinds
        self.act_export_face.setEnabled(state.current is not None and not exporting)
        self.act_export_full.setEnabled(state.current is not None and not exporting)
        self.act_export_comparison.setEnabled(state.still is not None and not exporting)
        log_ready = state.caselog_state is not None
        self.act_verify_log.setEnabled(log_ready and "verify_log" not in kinds)
        selected = self.history_view.selected_entry()
        self.act_reproduce.setEnabled(
            log_ready
            and not batching
            and "reproduce" not in kinds
            and selected is not None
            and selected.get("action") == "enhance"
        )
        self.act_report.setEnabled(state.still is not None and "report" not in kinds)
        self.video.update_actions(kinds)
        zoomable = self.tabs.currentIndex() != PAGE_GRID
        for name in actions.ZOOM_ACTIONS:
            getattr(self, name).setEnabled(zoomable)
        self._sync_page_actions()

    # ================================================================== pages and zoom
    def show_page(self, page: str) -> None:
        """ "still", "side", "wipe" or "grid"."""
        if page in ("side", "wipe"):
            self.compare_view.set_mode(page)
            self.tabs.setCurrentIndex(PAGE_COMPARE)
        elif page == "grid":
            self.tabs.setCurrentIndex(PAGE_GRID)
        elif page == "still":
            self.tabs.setCurrentIndex(PAGE_STILL)
        else:
            raise ValueError(f"unknown page {page!r}")
        self._sync_page_actions()

    def _sync_page_actions(self) -> None:
        if not hasattr(self, "act_page_still"):  # called while the actions are being built
            return
        index = self.tabs.currentIndex()
        if index == PAGE_STILL:
            self.act_page_still.setChecked(True)
        elif index == PAGE_GRID:
            self.act_page_grid.setChecked(True)
        elif self.compare_view.mode() == "wipe":
            self.act_page_wipe.setChecked(True)
        else:
            self.act_page_side.setChecked(True)

    def zoom(self, how: str) -> None:
        """ "fit", "actual", "in" or "out", on the still or the compare page."""
        index = self.tabs.currentIndex()
        target = {PAGE_STILL: self.image_view, PAGE_COMPARE: self.compare_view}.get(index)
        if target is None:
            return
        {
            "fit": target.fit,
            "actual": target.actual_size,
            "in": target.zoom_in,
            "out": target.zoom_out,
        }[how]()

    # ================================================================== help
    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.state.entries, self.state.statuses, self.device or None, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # ================================================================== window events
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if local_paths(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = local_paths(event.mimeData().urls())
        if paths:
            event.acceptProposedAction()
            self.opening.open_file(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._save_settings()
        self.hide()  # gone at once for the user, even while the worker finishes its current step
        self.client.shutdown()
        self.video.shutdown()
        super().closeEvent(event)
