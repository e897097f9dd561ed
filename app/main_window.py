"""The main window: menus, toolbar, status bar, the faces and history docks and three pages.

It holds the GUI state (the still, its faces, the results so far, their fidelity checks) and
wires the views to the engine worker. Every heavy step is a job for
:class:`app.worker.EngineClient`; this class only reacts to the worker's signals, so the window
stays responsive while models run.

Forensic integrity: the worker writes every open, enhancement, export, batch run, label removal,
reproduction and case report to the case log (:mod:`engine.caselog`) under the examiner's name;
the History dock lists the entries of the open still; the Forensics menu verifies the log,
re-runs a logged enhancement and writes the case report (HTML and PDF). Exports carry a visible
label strip unless the examiner removes it and gives a reason, which is logged and written into
the PNG too. Every enhanced face gets its fidelity checks (:mod:`engine.fidelity`), computed in
the worker and shown under it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import qtawesome as qta
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import errors
from app.dialogs import settings as app_settings
from app.dialogs.about import AboutDialog
from app.dialogs.batch import BatchDialog
from app.dialogs.settings import SettingsDialog, SettingsValues
from app.views.common import AI_LABEL, label_strip, ms_text, output_label
from app.views.compare_view import INPUT_METHODS, ComparePair, CompareView
from app.views.face_list import FaceList
from app.views.fidelity_panel import CHECK_NAMES, value_text
from app.views.grid_view import GridView
from app.views.history_view import HistoryView
from app.views.image_view import ImageView
from app.worker import (
    CaseLogState,
    EngineClient,
    EngineInfo,
    EnhanceOutcome,
    ExportOutcome,
    FidelityOutcome,
    ModelFailure,
    OpenOutcome,
    ReportOutcome,
    ReproduceOutcome,
    default_enhancer,
    same_file,
)
from engine import caselog, provenance, registry

log = logging.getLogger(__name__)

ORGANISATION = "ForensicFaceEnhancer"
APPLICATION = "Forensic Face Enhancer"
SCALES = (4, 8)
MAX_RECENT = 10
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp *.gif);;All files (*)"
ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icons" / "app.svg"

PAGE_STILL, PAGE_COMPARE, PAGE_GRID = 0, 1, 2
MIN_REASON_CHARS = 5  # "x" is not a reason for removing the evidence label
PNG_KEY_LABEL_REMOVED = "ffe-label-removed"
# Jobs whose answers stay valid when another still is opened meanwhile.
INDEPENDENT_JOBS = ("init", "export", "batch", "caselog", "repair_log", "verify_log", "log")
INDEPENDENT_JOBS += ("reproduce", "report")
# Short bookkeeping jobs that Cancel leaves alone: a cancelled "caselog" job would leave the
# session without a case log, a cancelled "log" job would half-do a label removal.
UNCANCELLABLE_JOBS = ("init", "caselog", "repair_log", "log")


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


class MainWindow(QMainWindow):
    """The application window. ``enhancer_factory`` exists for tests (a slow double for cancel)."""

    reportWritten = Signal(object)  # the ReportOutcome, when a case report has been written

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

        # GUI state. Results are cached per (face index, model id, scale): models are
        # deterministic, so re-running one would only give the same bytes again.
        self.still: Any = None
        self.faces: list = []
        self.face_index: int | None = None
        self.results: dict[tuple[int, str, int], Any] = {}
        self.current: Any = None  # the Result shown in the compare page
        self.entries = list(registry.MODELS)
        self.statuses: dict[str, dict[int, str]] = {}
        self.device = ""
        self._jobs: dict[int, tuple[str, int]] = {}  # job id -> (kind, still generation)
        self._generation = 0
        self._grid_job: int | None = None
        self._batch_job: int | None = None
        self.batch_dialog: BatchDialog | None = None
        # Fidelity: (face, model, scale) -> (ModelFidelity, the FidelityReport it came from).
        self.model_fidelity: dict[tuple[int, str, int], tuple[Any, Any]] = {}
        self._fidelity_jobs: dict[int, list[tuple[int, str, int]]] = {}
        self._report_waiting: Path | None = None  # a case report waiting for fidelity checks
        # Case log state as the worker reports it.
        self.caselog_state: CaseLogState | None = None
        self.last_verification: Any = None
        self.log_entries = 0
        self.log_problem: str | None = None
        self.label_removal: dict[str, Any] | None = None  # set while the label is off
        self._label_job: tuple[int, str] | None = None
        # issue 24: a robust variant where installed (engine.registry.DEFAULT_ORDER)
        self.model_id = str(self.settings.value("model", registry.default_model_id()))
        # The examiner's default scale starts each session; without one, the last scale used.
        self.scale = int(
            self.settings.value(app_settings.KEY_DEFAULT_SCALE, self.settings.value("scale", 4))
        )
        if self.scale not in SCALES:
            self.scale = 4

        self.errors = errors.ErrorPresenter(self, self.statusBar())
        self.client = EngineClient(enhancer_factory, self)
        self.client.progress.connect(self._on_progress)
        self.client.partial.connect(self._on_partial)
        self.client.result.connect(self._on_result)
        self.client.failed.connect(self._on_failed)
        self.client.cancelled.connect(self._on_cancelled)
        self.client.finished.connect(self._on_finished)
        self.client.logged.connect(self._on_logged)
        self.client.log_failed.connect(self._on_log_failed)

        self._build_views()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._restore_settings()
        self._refresh_models()
        self._update_actions()
        self._submit("init")
        self.configure_case_log()
        if not app_settings.has_examiner(self.settings):
            # Asked once, after the window is up; until then the OS user name is used.
            QTimer.singleShot(0, lambda: self.open_settings(first_start=True))

    # ================================================================== construction
    def _build_views(self) -> None:
        self.image_view = ImageView()
        self.image_view.faceClicked.connect(self.select_face)
        self.image_view.boxDrawn.connect(self.face_from_box)
        self.image_view.setAcceptDrops(False)  # drops go to the window
        self.image_view.viewport().setAcceptDrops(False)
        self.compare_view = CompareView()
        self.grid_view = GridView()
        self.grid_view.tileClicked.connect(self._tile_clicked)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.image_view, qta.icon("mdi6.image-outline"), "Still")
        self.tabs.addTab(
            self.compare_view, qta.icon("mdi6.compare-horizontal"), "Input vs enhanced"
        )
        self.tabs.addTab(self.grid_view, qta.icon("mdi6.view-grid-outline"), "All models")
        self.tabs.currentChanged.connect(lambda _: self._update_actions())
        self.setCentralWidget(self.tabs)

        self.face_list = FaceList()
        self.face_list.faceSelected.connect(self.select_face)
        self.faces_dock = QDockWidget("Faces", self)
        self.faces_dock.setObjectName("facesDock")
        self.faces_dock.setWidget(self.face_list)
        self.faces_dock.setMinimumWidth(170)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.faces_dock)

        self.fidelity_panel = self.compare_view.fidelity_panel
        self.history_view = HistoryView()
        self.history_view.set_model_names({e.id: e.label for e in self.entries})
        self.history_view.selectionChanged.connect(self._update_actions)
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
        self.resizeDocks([self.history_dock], [150], Qt.Orientation.Vertical)

    def _action(
        self,
        text: str,
        icon: str | None = None,
        shortcut=None,
        slot=None,
        checkable: bool = False,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(qta.icon(icon))
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if slot is not None:
            action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey  # noqa: N806
        self.act_open = self._action(
            "&Open\u2026",
            "mdi6.folder-open-outline",
            K.Open,
            self.open_dialog,
            tip="Open a still image",
        )
        self.act_export_face = self._action(
            "Export enhanced &face\u2026",
            "mdi6.content-save-outline",
            "Ctrl+E",
            lambda: self.export_dialog("face"),
            tip="Save the enhanced face as PNG with its provenance",
        )
        self.act_export_full = self._action(
            "Export f&ull image\u2026",
            "mdi6.file-export-outline",
            "Ctrl+Shift+E",
            lambda: self.export_dialog("full"),
            tip="Save the whole still, enlarged, with the enhanced face pasted in",
        )
        self.act_label_exports = self._action(
            "Add visible AI &label to exports",
            checkable=True,
            tip="Append a red strip with the AI label below exported images "
            "(turning it off needs a reason, which is logged)",
        )
        self.act_label_exports.setChecked(True)  # on at every start; see _label_triggered
        self.act_label_exports.triggered.connect(self._label_triggered)
        self.act_settings = self._action(
            "&Settings\u2026",
            "mdi6.cog-outline",
            QKeySequence.StandardKey.Preferences,
            lambda: self.open_settings(),
            tip="Examiner name, case reference, case-log folder, default scale",
        )
        self.act_verify_log = self._action(
            "&Verify case log",
            "mdi6.shield-check-outline",
            slot=self.verify_log,
            tip="Check the case log's hash chain: is every entry as it was written?",
        )
        self.act_reproduce = self._action(
            "&Reproduce selected entry",
            "mdi6.replay",
            slot=self.reproduce_selected,
            tip="Re-run the enhancement selected in History and check the output is identical",
        )
        self.act_report = self._action(
            "Export case &report\u2026",
            "mdi6.file-document-outline",
            "Ctrl+R",
            self.report_dialog,
            tip="Write the case report (HTML and PDF) for the open still and its enhancements",
        )
        self.act_quit = self._action("&Quit", "mdi6.exit-to-app", K.Quit, self.close)
        self.act_enhance = self._action(
            "&Enhance",
            "mdi6.auto-fix",
            [QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)],
            self.enhance,
            tip="Enhance the selected face with the chosen model (Enter)",
        )
        self.act_compare = self._action(
            "&Compare all models",
            "mdi6.view-grid-outline",
            "Ctrl+G",
            self.compare_all,
            tip="Run the selected face through every model that has weights",
        )
        self.act_cancel = self._action(
            "Cancel",
            "mdi6.stop-circle-outline",
            Qt.Key.Key_Escape,
            self.cancel,
            tip="Stop the running job (Esc)",
        )
        self.act_landmarks = self._action(
            "&Landmarks overlay",
            "mdi6.vector-polyline",
            "L",
            self.compare_view.set_landmarks_visible,
            checkable=True,
            tip="Show the 68 facial landmarks on input and output",
        )
        self.compare_view.landmarksToggled.connect(self.act_landmarks.setChecked)
        self.act_draw = self._action(
            "&Draw face box",
            "mdi6.selection-drag",
            "B",
            self.image_view.set_draw_mode,
            checkable=True,
            tip="Drag a box around a face the detector missed",
        )
        self.act_fit = self._action(
            "&Fit", "mdi6.fit-to-screen-outline", "Ctrl+0", lambda: self._zoom("fit")
        )
        self.act_actual = self._action(
            "&Actual size (1:1)",
            "mdi6.numeric-1-box-outline",
            "Ctrl+1",
            lambda: self._zoom("actual"),
        )
        self.act_zoom_in = self._action(
            "Zoom &in", "mdi6.magnify-plus-outline", K.ZoomIn, lambda: self._zoom("in")
        )
        self.act_zoom_out = self._action(
            "Zoom &out", "mdi6.magnify-minus-outline", K.ZoomOut, lambda: self._zoom("out")
        )
        self.act_page_still = self._action(
            "Whole &still",
            "mdi6.image-outline",
            "F2",
            lambda: self.show_page("still"),
            checkable=True,
        )
        self.act_page_side = self._action(
            "&Side by side",
            "mdi6.compare-horizontal",
            "F3",
            lambda: self.show_page("side"),
            checkable=True,
        )
        self.act_page_wipe = self._action(
            "&Wipe", "mdi6.compare", "F4", lambda: self.show_page("wipe"), checkable=True
        )
        self.act_page_grid = self._action(
            "&Grid of all models",
            "mdi6.view-grid-outline",
            "F5",
            lambda: self.show_page("grid"),
            checkable=True,
        )
        group = QActionGroup(self)
        for action in (
            self.act_page_still,
            self.act_page_side,
            self.act_page_wipe,
            self.act_page_grid,
        ):
            group.addAction(action)
        self.act_page_still.setChecked(True)
        self.input_method_group = QActionGroup(self)
        self.input_method_actions: dict[str, QAction] = {}
        for method in INPUT_METHODS:
            action = self._action(
                f"Input enlarged with {method}",
                checkable=True,
                slot=lambda _=False, m=method: self.compare_view.set_input_method(m),
            )
            self.input_method_group.addAction(action)
            self.input_method_actions[method] = action
        self.input_method_actions["nearest"].setChecked(True)
        self.compare_view.inputMethodChanged.connect(
            lambda m: self.input_method_actions[m].setChecked(True)
        )
        self.compare_view.modeChanged.connect(lambda m: self._sync_page_actions())
        self.act_refresh = self._action(
            "&Recheck installed weights", "mdi6.refresh", slot=lambda: self._submit("init")
        )
        self.act_batch = self._action(
            "&Batch process folder\u2026",
            "mdi6.folder-multiple-image",
            "Ctrl+B",
            self.open_batch,
            tip="Enhance every face in a folder of stills with chosen models",
        )
        self.act_about = self._action(
            "&About and papers\u2026", "mdi6.information-outline", slot=self.show_about
        )

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.act_open)
        self.recent_menu = file_menu.addMenu(qta.icon("mdi6.history"), "Open &Recent")
        file_menu.addSeparator()
        file_menu.addAction(self.act_export_face)
        file_menu.addAction(self.act_export_full)
        file_menu.addAction(self.act_label_exports)
        file_menu.addSeparator()
        file_menu.addAction(self.act_batch)
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        view_menu = bar.addMenu("&View")
        for action in (self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out):
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.act_landmarks)
        view_menu.addAction(self.act_draw)
        view_menu.addSeparator()
        for action in (
            self.act_page_still,
            self.act_page_side,
            self.act_page_wipe,
            self.act_page_grid,
        ):
            view_menu.addAction(action)
        view_menu.addSeparator()
        for action in self.input_method_actions.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.faces_dock.toggleViewAction())
        view_menu.addAction(self.history_dock.toggleViewAction())

        self.models_menu = bar.addMenu("&Models")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)
        self.model_actions: dict[str, QAction] = {}
        for entry in self.entries:
            action = QAction(entry.label.replace("&", "&&"), self, checkable=True)
            action.setToolTip(entry.citation)
            action.triggered.connect(lambda _=False, mid=entry.id: self.set_model(mid))
            self.model_group.addAction(action)
            self.models_menu.addAction(action)
            self.model_actions[entry.id] = action
        self.models_menu.setToolTipsVisible(True)
        self.models_menu.addSeparator()
        self.scale_group = QActionGroup(self)
        self.scale_actions: dict[int, QAction] = {}
        for scale in SCALES:
            action = QAction(f"Scale \u00d7{scale}", self, checkable=True)
            action.triggered.connect(lambda _=False, s=scale: self.set_scale(s))
            self.scale_group.addAction(action)
            self.models_menu.addAction(action)
            self.scale_actions[scale] = action
        self.models_menu.addSeparator()
        self.models_menu.addAction(self.act_enhance)
        self.models_menu.addAction(self.act_compare)
        self.models_menu.addAction(self.act_refresh)

        forensics_menu = bar.addMenu("F&orensics")
        forensics_menu.addAction(self.act_verify_log)
        forensics_menu.addAction(self.act_reproduce)
        forensics_menu.addSeparator()
        forensics_menu.addAction(self.act_report)
        forensics_menu.addAction(self.act_label_exports)
        forensics_menu.addSeparator()
        forensics_menu.addAction(self.history_dock.toggleViewAction())
        forensics_menu.addAction(self.act_settings)
        self.forensics_menu = forensics_menu
        self.history_toolbar.addAction(self.act_reproduce)
        self.history_toolbar.addAction(self.act_verify_log)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("mainToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(bar)
        bar.addAction(self.act_open)
        bar.addSeparator()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Model used by Enhance")
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setMinimumContentsLength(30)
        for entry in self.entries:
            self.model_combo.addItem(entry.label, entry.id)
        self.model_combo.activated.connect(lambda i: self.set_model(self.model_combo.itemData(i)))
        self.scale_combo = QComboBox()
        self.scale_combo.setToolTip(
            "Enlargement factor (the face is reduced to 128/scale pixels first)"
        )
        for scale in SCALES:
            self.scale_combo.addItem(f"\u00d7{scale}", scale)
        self.scale_combo.activated.connect(lambda i: self.set_scale(self.scale_combo.itemData(i)))
        bar.addWidget(self.model_combo)
        bar.addWidget(self.scale_combo)
        bar.addAction(self.act_enhance)
        bar.addAction(self.act_compare)
        bar.addAction(self.act_cancel)
        bar.addSeparator()
        bar.addAction(self.act_landmarks)
        bar.addAction(self.act_draw)
        bar.addSeparator()
        view_bar = QToolBar("View", self)
        view_bar.setObjectName("viewToolbar")
        self.addToolBar(view_bar)
        for action in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual):
            view_bar.addAction(action)

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
        status.addPermanentWidget(self.log_label)
        status.addPermanentWidget(self.model_label)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.progress_bar)
        status.addPermanentWidget(self.cancel_button)

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
        self._rebuild_recent_menu()

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        s.setValue("model", self.model_id)
        s.setValue("scale", self.scale)
        s.setValue("landmarks", self.compare_view.landmarks_visible())
        s.setValue("inputMethod", self.compare_view.input_method())
        s.setValue("compareMode", self.compare_view.mode())
        s.sync()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        name = str(path)
        files = [f for f in self.recent_files() if f != name]
        self.settings.setValue("recentFiles", [name, *files][:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for name in files:
            action = self.recent_menu.addAction(Path(name).name)
            action.setToolTip(name)
            action.setStatusTip(name)
            action.triggered.connect(lambda _=False, p=name: self.open_file(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(files))

    def _clear_recent(self) -> None:
        self.settings.setValue("recentFiles", [])
        self._rebuild_recent_menu()

    # ================================================================== models and scale
    def entry(self, model_id: str):
        return registry.get(model_id)

    def model_state(self, model_id: str, scale: int) -> str:
        """ "installed", "missing", "invalid: ...", "not offered" or "unknown" (not checked yet)."""
        entry = self.entry(model_id)
        if scale not in entry.scales:
            return "not offered"
        if entry.is_baseline:
            return "installed"
        return self.statuses.get(model_id, {}).get(scale, "unknown")

    def runnable(self, model_id: str, scale: int | None = None) -> bool:
        return self.model_state(model_id, self.scale if scale is None else scale) == "installed"

    def runnable_models(self, scale: int | None = None) -> list[str]:
        return [e.id for e in self.entries if self.runnable(e.id, scale)]

    def _model_text(self, entry) -> str:
        state = self.model_state(entry.id, self.scale)
        suffix = {
            "installed": "",
            "missing": " (no trained weights)",
            "unknown": " (checking weights\u2026)",
            "not offered": f" (not offered at \u00d7{self.scale})",
        }.get(state, " (weights invalid)")
        return entry.label + suffix

    def _unavailable_reason(self, entry) -> str:
        state = self.model_state(entry.id, self.scale)
        if state == "missing":
            return f"no trained weights at \u00d7{self.scale}"
        if state == "not offered":
            return f"not offered at \u00d7{self.scale}"
        if state == "unknown":
            return "weights not checked yet"
        return f"weights unusable: {state.removeprefix('invalid: ')}"

    def _refresh_models(self) -> None:
        """Label and enable the model pickers for the current scale; fall back if needed."""
        if (
            not self.runnable(self.model_id)
            and self.model_state(self.model_id, self.scale) != "unknown"
        ):
            previous = self.model_id
            self.model_id = registry.default_model_id(self.runnable)
            if previous != self.model_id:
                self.errors.status(
                    f"{self.entry(previous).label} cannot run at \u00d7{self.scale}; "
                    f"using {self.entry(self.model_id).label}"
                )
        for i, entry in enumerate(self.entries):
            state = self.model_state(entry.id, self.scale)
            text = self._model_text(entry)
            # which input the model is for, in plain words (engine.registry.USE_WHEN)
            tip = f"{entry.use_when}\n\n{entry.citation}" if state == "installed" else f"{text}. {state}"
            action = self.model_actions[entry.id]
            action.setText(text.replace("&", "&&"))  # "Wu & Chen": not a mnemonic
            action.setEnabled(state == "installed")
            action.setToolTip(tip)
            action.setChecked(entry.id == self.model_id)
            self.model_combo.setItemText(i, text)
            self.model_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
            item = self.model_combo.model().item(i)
            item.setEnabled(state == "installed")
        self.model_combo.setCurrentIndex(self.model_combo.findData(self.model_id))
        self.scale_combo.setCurrentIndex(self.scale_combo.findData(self.scale))
        self.scale_actions[self.scale].setChecked(True)
        self.model_label.setText(
            f"Model: {self.entry(self.model_id).label} \u00b7 \u00d7{self.scale}"
        )
        self._update_actions()

    @Slot(str)
    def set_model(self, model_id: str) -> None:
        if not self.runnable(model_id):
            self.errors.status(f"{self._model_text(self.entry(model_id))}: it cannot run")
            self._refresh_models()
            return
        self.model_id = model_id
        self._refresh_models()
        self._show_cached()

    @Slot(int)
    def set_scale(self, scale: int) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}")
        self.scale = int(scale)
        self._refresh_models()
        self._show_cached()

    # ================================================================== jobs
    def _submit(self, kind: str, **args: Any) -> int:
        job_id = self.client.submit(kind, **args)
        self._jobs[job_id] = (kind, self._generation)
        self._update_actions()
        return job_id

    def busy_kinds(self) -> set[str]:
        return {kind for kind, _ in self._jobs.values()}

    def _current(self, job_id: int) -> str | None:
        """The job's kind if its answer still applies to the still on screen."""
        kind, generation = self._jobs.get(job_id, (None, -1))
        if kind is None or (kind not in INDEPENDENT_JOBS and generation != self._generation):
            return None
        return kind

    @Slot(int, int, int, str)
    def _on_progress(self, job_id: int, done: int, total: int, message: str) -> None:
        if job_id not in self._jobs:
            return
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done}/{total}")
        self.statusBar().showMessage(message)
        if job_id == self._batch_job and self.batch_dialog is not None:
            self.batch_dialog.on_progress(done, total, message)

    @Slot(int, object)
    def _on_partial(self, job_id: int, payload: Any) -> None:
        kind = self._current(job_id)
        if kind == "batch" and self.batch_dialog is not None:
            self.batch_dialog.on_fault(payload)
            return
        if kind != "enhance":
            return
        if isinstance(payload, ModelFailure):
            tile = self.grid_view.tile(payload.model_id)
            if tile is not None and job_id == self._grid_job:
                tile.set_failed(payload.message.split("\n")[0])
            return
        self.results[(payload.face_index, payload.model_id, payload.scale)] = payload
        if job_id == self._grid_job:
            self._fill_tile(payload)

    @Slot(int, object)
    def _on_result(self, job_id: int, payload: Any) -> None:
        kind = self._current(job_id)
        if kind is None:
            return
        if isinstance(payload, EngineInfo):
            self._engine_ready(payload)
        elif isinstance(payload, OpenOutcome):
            self._opened(payload)
        elif kind == "box":
            self._box_face(payload)
        elif isinstance(payload, EnhanceOutcome):
            self._enhanced(job_id, payload)
        elif isinstance(payload, ExportOutcome):
            logged = "" if payload.log_entry is not None else "; NOT in the case log"
            self.errors.status(
                f"Saved {payload.path} (SHA-256 {payload.sha256[:16]}\u2026){logged}", 15000
            )
        elif isinstance(payload, CaseLogState):
            self._case_log_ready(payload)
        elif isinstance(payload, FidelityOutcome):
            self._fidelity_done(payload)
        elif isinstance(payload, ReproduceOutcome):
            self._reproduced(payload)
        elif isinstance(payload, ReportOutcome):
            self._report_written(payload)
        elif kind == "verify_log":
            self._verified(payload)
        elif kind == "log":
            self._label_logged(job_id, payload)
        elif kind == "batch":
            if self.batch_dialog is not None:
                self.batch_dialog.finished(payload)
            head = "Batch cancelled" if payload.cancelled else "Batch done"
            self.errors.status(
                f"{head}: {payload.files_done}/{payload.files_total} files, {payload.errors} "
                f"error(s); summary in {payload.summary_path or payload.out_dir}",
                30000,
            )

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        kind = self._current(job_id)
        if kind is None:
            return
        titles = {
            "open": "Cannot open the image",
            "box": "No face in that box",
            "enhance": "Enhancement failed",
            "export": "Export failed",
            "caselog": "The case log cannot be used",
            "repair_log": "The case log was not repaired",
            "verify_log": "The case log cannot be verified",
            "reproduce": "The entry cannot be re-run",
            "report": "The case report was not written",
            "log": "The visible label stays on",
        }
        if kind == "fidelity":  # background: the panel says it, no dialog
            keys = self._fidelity_jobs.get(job_id, [])
            if self._current_key() in keys:
                self.fidelity_panel.clear(f"The fidelity checks failed: {message}")
            self.errors.status("Fidelity checks failed (see the panel under the output)")
            return
        if kind == "caselog":
            self.log_problem = "cannot be opened"
            self._update_log_label()
        if kind == "init":
            self.device_label.setText("Device: engine failed")
            self.errors.dialog("The engine could not start", message)
        elif kind == "batch" and self.batch_dialog is not None:
            self.batch_dialog.finished(None, message)  # shown in the dialog the run belongs to
            self.errors.status("The batch run did not start: see the batch window")
        else:
            self.errors.dialog(titles.get(kind, "Error"), message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if self._current_key() in self._fidelity_jobs.get(job_id, []):
            self.fidelity_panel.clear(
                "The fidelity checks were cancelled; show this output again to compute them."
            )
        if job_id == self._grid_job:
            self.grid_view.mark_cancelled()
        if job_id == self._batch_job and self.batch_dialog is not None:
            self.batch_dialog.finished(None, "Cancelled before it started.")
        if job_id in self._jobs:
            self.errors.status("Cancelled")

    @Slot(int)
    def _on_finished(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        self._fidelity_jobs.pop(job_id, None)
        if self._label_job is not None and self._label_job[0] == job_id:
            self._label_job = None
        if self._report_waiting is not None and not self._fidelity_jobs:
            path, self._report_waiting = self._report_waiting, None
            self.export_report(path)
        if job_id == self._grid_job:
            self._grid_job = None
        if job_id == self._batch_job:
            self._batch_job = None
        self._update_actions()

    @Slot()
    def cancel(self) -> None:
        """Stop every running or queued job (the engine stops at its next check)."""
        cancelled = False
        for job_id in list(self._jobs):
            if self._jobs[job_id][0] not in UNCANCELLABLE_JOBS:
                self.client.cancel(job_id)
                cancelled = True
        if cancelled:
            self.statusBar().showMessage("Cancelling\u2026")

    def _update_actions(self) -> None:
        kinds = self.busy_kinds()
        has_face = self.still is not None and self.face_index is not None
        # A batch run holds the worker for a long time: jobs queued behind it would look hung.
        batching = "batch" in kinds
        enhancing = "enhance" in kinds or "box" in kinds or batching
        self.act_enhance.setEnabled(has_face and not enhancing and self.runnable(self.model_id))
        self.act_compare.setEnabled(has_face and not enhancing)
        self.act_open.setEnabled(not batching)
        self.recent_menu.setEnabled(not batching and bool(self.recent_files()))
        self.act_draw.setEnabled(self.still is not None and not batching)
        user_jobs = kinds - set(UNCANCELLABLE_JOBS)
        self.act_cancel.setEnabled(bool(user_jobs))
        self.cancel_button.setVisible(bool(user_jobs))
        self.progress_bar.setVisible(bool(user_jobs))
        exporting = "export" in kinds
        self.act_export_face.setEnabled(self.current is not None and not exporting)
        self.act_export_full.setEnabled(self.current is not None and not exporting)
        log_ready = self.caselog_state is not None
        self.act_verify_log.setEnabled(log_ready and "verify_log" not in kinds)
        selected = self.history_view.selected_entry()
        self.act_reproduce.setEnabled(
            log_ready
            and not batching
            and "reproduce" not in kinds
            and selected is not None
            and selected.get("action") == "enhance"
        )
        self.act_report.setEnabled(self.still is not None and "report" not in kinds)
        zoomable = self.tabs.currentIndex() != PAGE_GRID
        for action in (self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out):
            action.setEnabled(zoomable)
        self._sync_page_actions()

    # ================================================================== engine ready
    def _engine_ready(self, info: EngineInfo) -> None:
        self.device = info.device
        shown = "CPU" if info.device == "cpu" else f"CUDA \u00b7 {info.device}"
        self.device_label.setText(f"Device: {shown}")
        self.device_label.setToolTip(info.device)
        self.statuses = {entry.id: dict(states) for entry, states in info.models}
        self._refresh_models()
        if self.batch_dialog is not None and not self.batch_dialog.is_running():
            self.batch_dialog.refresh_models()
        missing = [e.label for e in self.entries if not e.is_baseline and not self.runnable(e.id)]
        if missing:
            log.info("models without usable weights at x%d: %s", self.scale, ", ".join(missing))

    # ================================================================== opening
    @Slot()
    def open_dialog(self) -> None:
        folder = str(self.settings.value("lastOpenDir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open a still", folder, IMAGE_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> int:
        """Load a still and find its faces in the worker; returns the job id."""
        path = Path(path)
        self.settings.setValue("lastOpenDir", str(path.parent))
        # A new still makes every queued or running job for the old one pointless.
        for job_id, (kind, _) in list(self._jobs.items()):
            if kind in ("open", "box", "enhance", "fidelity"):
                self.client.cancel(job_id)
        self._generation += 1
        self.statusBar().showMessage(f"Opening {path.name}\u2026")
        return self._submit("open", path=str(path))

    def _opened(self, outcome: OpenOutcome) -> None:
        self.still = outcome.still
        self.faces = list(outcome.faces)
        self.results = {}
        self.model_fidelity = {}
        self._fidelity_jobs = {}
        self._report_waiting = None
        self.current = None
        self.face_index = None
        self.fidelity_panel.clear()
        self.history_view.set_entries(
            outcome.history,
            "" if self.caselog_state is not None else "The case log is not open: nothing logged.",
        )
        if self.label_removal is not None:
            # A reason given for one still does not carry over to the next piece of evidence.
            self.label_removal = None
            self.act_label_exports.setChecked(True)
            log.info("visible export label back on for the new still")
        self.image_view.set_image(self.still.rgb)
        self.compare_view.set_pair(None)
        self.grid_view.clear()
        self._show_faces()
        if self.still.path is not None:
            self._add_recent(Path(self.still.path))
        name = self.still.name or "image"
        self.setWindowTitle(f"{name} \u2014 {APPLICATION}")
        self.show_page("still")
        size = f"{self.still.width}\u00d7{self.still.height}"
        if self.faces:
            self.select_face(0)
            self.act_draw.setChecked(False)
            self.image_view.set_draw_mode(False)
            self.errors.status(
                f"{name} ({size}): {len(self.faces)} face(s) found. "
                "Press Enter to enhance the selected face.",
                15000,
            )
        else:
            self.act_draw.setChecked(True)
            self.image_view.set_draw_mode(True)
            self.errors.status(
                f"{name} ({size}): no face found. Drag a box around a face to enhance it.", 30000
            )
        self._update_actions()

    def _show_faces(self) -> None:
        self.image_view.set_faces([f.box for f in self.faces], [f.manual for f in self.faces])
        self.face_list.set_faces(self.still.rgb if self.still is not None else None, self.faces)

    @Slot(int)
    def select_face(self, index: int) -> None:
        if not 0 <= index < len(self.faces):
            return
        self.face_index = index
        self.image_view.select_face(index)
        self.face_list.select(index)
        self._show_cached()
        self._update_actions()

    @Slot(tuple)
    def face_from_box(self, box: tuple) -> int | None:
        """A box drawn by hand -> engine.faces.face_from_box in the worker -> enhanced."""
        if self.still is None:
            return None
        self.statusBar().showMessage("Placing landmarks in the drawn box\u2026")
        return self._submit("box", still=self.still, box=tuple(float(v) for v in box))

    def _box_face(self, face: Any) -> None:
        self.faces.append(face)
        self._show_faces()
        self.act_draw.setChecked(False)
        self.image_view.set_draw_mode(False)
        self.select_face(len(self.faces) - 1)
        self.enhance()

    # ================================================================== enhancing
    @Slot()
    def enhance(self) -> int | None:
        """Enhance the selected face with the chosen model (cached results are shown at once)."""
        if self.still is None or self.face_index is None:
            self.errors.status("Open a still and select a face first")
            return None
        if not self.runnable(self.model_id):
            self.errors.status(f"{self._model_text(self.entry(self.model_id))}: it cannot run")
            return None
        if self._show_cached():
            self.show_page("side" if self.compare_view.mode() == "side" else "wipe")
            return None
        return self._submit(
            "enhance",
            still=self.still,
            face=self.faces[self.face_index],
            face_index=self.face_index,
            model_ids=[self.model_id],
            scale=self.scale,
        )

    @Slot()
    def compare_all(self) -> int | None:
        """Every model with installed weights at this scale, plus bicubic and lanczos, in a grid."""
        if self.still is None or self.face_index is None:
            self.errors.status("Open a still and select a face first")
            return None
        model_ids = self.runnable_models()
        unavailable = [e for e in self.entries if e.id not in model_ids]
        self.grid_view.set_tiles(
            [("input", "Input (aligned, nearest)")]
            + [(mid, self.entry(mid).label) for mid in model_ids]
            + [(e.id, e.label) for e in unavailable]
        )
        for entry in unavailable:  # shown, so the analyst sees what is not there and why
            self.grid_view.tile(entry.id).set_unavailable(self._unavailable_reason(entry))
        cached = [self.results.get((self.face_index, mid, self.scale)) for mid in model_ids]
        for result in cached:
            if result is not None:
                self._fill_tile(result)
        todo = [mid for mid, result in zip(model_ids, cached, strict=True) if result is None]
        self.show_page("grid")
        if not todo:
            self._grid_job = None
            self._compare_fidelity(self.face_index, self.scale)
            return None
        self._grid_job = self._submit(
            "enhance",
            still=self.still,
            face=self.faces[self.face_index],
            face_index=self.face_index,
            model_ids=todo,
            scale=self.scale,
            keep_going=True,
        )
        return self._grid_job

    def _enhanced(self, job_id: int, outcome: EnhanceOutcome) -> None:
        for result in outcome.results:
            self.results[(result.face_index, result.model_id, result.scale)] = result
        if job_id == self._grid_job:
            failed = len(outcome.errors)
            shown = sum(1 for tile in self.grid_view.tiles()[1:] if tile.has_image())
            self.errors.status(
                f"Compared {shown} model(s) at \u00d7{outcome.scale}"
                + (f"; {failed} failed (see their tiles)" if failed else ""),
                15000,
            )
            self._compare_fidelity(outcome.face_index, outcome.scale)
            return
        if outcome.results:
            self.show_result(outcome.results[-1])
            self.show_page("side" if self.compare_view.mode() == "side" else "wipe")
            t = outcome.results[-1].timings
            self.errors.status(
                f"Enhanced in {ms_text(t.get('total'))} (model {ms_text(t.get('model'))})", 15000
            )

    def _show_cached(self) -> bool:
        """Show the cached result of the current face, model and scale, if there is one."""
        if self.face_index is None:
            return False
        result = self.results.get((self.face_index, self.model_id, self.scale))
        if result is None:
            self.current = None
            self.compare_view.set_pair(None)
            self.fidelity_panel.clear()
            self._update_actions()
            return False
        self.show_result(result)
        return True

    def show_result(self, result: Any) -> None:
        """Put one Result in the compare page, with its fidelity checks (computed if needed)."""
        self.current = result
        self._show_fidelity()
        entry = self.entry(result.model_id)
        self.compare_view.set_pair(
            ComparePair(
                lr=result.lr,
                sr=result.sr,
                input_landmarks=result.input_landmarks,
                output_landmarks=result.output_landmarks,
                model_name=entry.label,
                label=output_label(entry.id, entry.paper),
                scale=result.scale,
                time_ms=result.timings.get("model"),
            )
        )
        self._update_actions()

    def _fill_tile(self, result: Any) -> None:
        from engine import imaging

        input_tile = self.grid_view.tile("input")
        if input_tile is not None and not input_tile.has_image():
            side = result.sr.shape[0]
            shown = imaging.resize(result.lr, side, side, "nearest")
            input_tile.set_image(
                shown,
                f"{result.lr.shape[1]}\u00d7{result.lr.shape[0]} px aligned input",
                None,
                clickable=False,
            )
        tile = self.grid_view.tile(result.model_id)
        if tile is None:
            return
        entry = self.entry(result.model_id)
        t = result.timings
        tile.set_image(
            result.sr,
            f"\u00d7{result.scale} \u00b7 model {ms_text(t.get('model'))} "
            f"\u00b7 total {ms_text(t.get('total'))}",
            output_label(entry.id, entry.paper),
        )

    @Slot(str)
    def _tile_clicked(self, model_id: str) -> None:
        result = (
            self.results.get((self.face_index, model_id, self.scale))
            if self.face_index is not None
            else None
        )
        if result is None:
            return
        self.show_result(result)
        self.show_page("side")

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
        index = self.tabs.currentIndex()
        if index == PAGE_STILL:
            self.act_page_still.setChecked(True)
        elif index == PAGE_GRID:
            self.act_page_grid.setChecked(True)
        elif self.compare_view.mode() == "wipe":
            self.act_page_wipe.setChecked(True)
        else:
            self.act_page_side.setChecked(True)

    def _zoom(self, how: str) -> None:
        index = self.tabs.currentIndex()
        target = (
            self.image_view
            if index == PAGE_STILL
            else self.compare_view
            if index == PAGE_COMPARE
            else None
        )
        if target is None:
            return
        {
            "fit": target.fit,
            "actual": target.actual_size,
            "in": target.zoom_in,
            "out": target.zoom_out,
        }[how]()

    # ================================================================== export
    def export_dialog(self, role: str) -> None:
        if self.current is None or self.still is None:
            self.errors.status("Enhance a face first")
            return
        result = self.current
        stem = Path(self.still.name or "still").stem
        suffix = "face" if role == "face" else "full"
        name = f"{stem}_face{result.face_index + 1}_{result.model_id}_x{result.scale}_{suffix}.png"
        folder = str(self.settings.value("lastExportDir", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export enhanced face" if role == "face" else "Export full image",
            str(Path(folder) / name),
            "PNG image (*.png)",
        )
        if path:
            self.export(role, path)

    def export(self, role: str, path: str | Path) -> int | None:
        """Write the current result ("face" or "full") as PNG (worker); never over the input."""
        if self.current is None or self.still is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = (
                path.with_suffix(path.suffix + ".png") if path.suffix else path.with_suffix(".png")
            )
        if same_file(path, self.still.path):
            self.errors.dialog(
                "Export refused",
                f"{path} is the evidence file that was opened. "
                "Outputs are never written over the input; choose another name.",
            )
            return None
        self.settings.setValue("lastExportDir", str(path.parent))
        result = self.current
        entry = self.entry(result.model_id)
        label = output_label(entry.id, entry.paper)
        visible = self.act_label_exports.isChecked() or self.label_removal is None
        record = copy.deepcopy(result.provenance)
        record["export"] = {
            "role": role,
            "visible_label": visible,
            "label": label,
            "app_label": AI_LABEL,
            "examiner": app_settings.examiner(self.settings),
            "note": (
                "a red label strip was appended below the image"
                if visible
                else "no visible label; the label is in this file's PNG text"
            ),
        }
        if not visible:
            # Why the examiner removed the visible label, and the case-log entry that says so.
            record["export"]["label_removed"] = dict(self.label_removal or {})
        args: dict[str, Any] = {}
        if role == "face":
            args["rgb"] = result.sr
            width = result.sr.shape[1]
        else:
            # Every face of this still enhanced with the same model and scale goes in.
            others = [
                r
                for (index, model_id, scale), r in sorted(self.results.items())
                if model_id == result.model_id
                and scale == result.scale
                and index != result.face_index
            ]
            args["still"], args["results"] = self.still, [result, *others]
            record["export"]["faces"] = [r.face_index for r in args["results"]]
            record["export"]["other_faces"] = [r.provenance for r in others]
            width = self.still.width * result.scale
        if visible:
            args["strip"] = label_strip(width, [label, f"{entry.label} \u00d7{result.scale}"])
        text = provenance.png_text(record)
        if not visible:
            text[PNG_KEY_LABEL_REMOVED] = str(record["export"]["label_removed"].get("reason"))
        log_fields = {
            "input_path": str(self.still.path) if self.still.path is not None else None,
            "input_sha256": self.still.sha256,
            "model_id": result.model_id,
            "weights_sha256": (result.provenance.get("model") or {}).get("weights_sha256"),
            "scale": int(result.scale),
            "device": result.provenance.get("device"),
            "parameters": {
                "role": role,
                "face_index": int(result.face_index),
                "faces": record["export"].get("faces", [int(result.face_index)]),
                "visible_label": visible,
            },
            "details": {"label_removed": record["export"].get("label_removed")},
        }
        self.statusBar().showMessage(f"Saving {path.name}\u2026")
        return self._submit(
            "export",
            path=str(path),
            text=text,
            forbidden=str(self.still.path) if self.still.path is not None else None,
            role=role,
            log_fields=log_fields,
            **args,
        )

    # ================================================================== the visible label
    @Slot(bool)
    def _label_triggered(self, checked: bool) -> None:
        """The menu item was toggled: on is immediate; off needs a reason that is logged first."""
        if checked:
            if self.label_removal is not None:
                self.label_removal = None
                self.errors.status("Exports carry the visible AI label again", 8000)
            return
        self.act_label_exports.setChecked(True)  # stays on until the removal is in the log
        self.remove_label()

    def remove_label(self, reason: str | None = None) -> int | None:
        """Ask why the visible label should go (QInputDialog), log it, then turn the label off.

        Returns the id of the job writing the "label_removed" entry, None when refused.
        """
        if self._label_job is not None:
            return None
        if reason is None:
            reason, ok = QInputDialog.getText(
                self,
                "Remove the visible AI label",
                "Exported images normally carry a red strip saying they are AI-enhanced and not "
                "original evidence.\nWhy should exports of this still go without it? The reason "
                "is written to the case log and into every exported PNG.",
                QLineEdit.EchoMode.Normal,
                "",
            )
            if not ok:
                self.errors.status("The visible label stays on")
                return None
        reason = " ".join(str(reason).split())
        if len(reason) < MIN_REASON_CHARS:
            self.errors.dialog(
                "The visible label stays on",
                "Removing the visible AI label needs a reason (at least "
                f"{MIN_REASON_CHARS} characters), which is written to the case log.",
            )
            return None
        fields: dict[str, Any] = {
            "details": {
                "reason": reason,
                "applies_to": "exports of this still until the label is turned on again or "
                "another still is opened",
            }
        }
        if self.still is not None:
            fields["input_path"] = str(self.still.path) if self.still.path is not None else None
            fields["input_sha256"] = self.still.sha256
        job_id = self._submit("log", action="label_removed", fields=fields)
        self._label_job = (job_id, reason)
        return job_id

    def _label_logged(self, job_id: int, entry: dict) -> None:
        if self._label_job is None or self._label_job[0] != job_id:
            return
        reason = self._label_job[1]
        self.label_removal = {
            "reason": reason,
            "examiner": entry.get("examiner"),
            "time_utc": entry.get("time_utc"),
            "case_log_seq": entry.get("seq"),
            "case_log_hash": entry.get("hash"),
        }
        self.act_label_exports.setChecked(False)
        self.errors.status(
            f"Exports go without the visible label (logged as entry {entry.get('seq')})", 15000
        )

    # ================================================================== fidelity
    def _current_key(self) -> tuple[int, str, int] | None:
        r = self.current
        return None if r is None else (r.face_index, r.model_id, r.scale)

    def _fidelity_title(self, result: Any) -> str:
        label = self.entry(result.model_id).label
        return f"{label} \u00d7{result.scale} \u00b7 face {result.face_index + 1}"

    def _show_fidelity(self) -> None:
        """The panel for the output on screen; a job for its checks if they are not known yet."""
        result = self.current
        if result is None:
            self.fidelity_panel.clear()
            return
        key = self._current_key()
        known = self.model_fidelity.get(key)
        if known is not None:
            self.fidelity_panel.set_fidelity(
                known[0],
                known[1],
                self._fidelity_title(result),
                {e.id: e.label for e in self.entries},
            )
            return
        self.fidelity_panel.set_pending(self._fidelity_title(result))
        if not any(key in keys for keys in self._fidelity_jobs.values()):
            self._request_fidelity([result])

    def _request_fidelity(self, results: list) -> int:
        job_id = self._submit("fidelity", results=list(results))
        self._fidelity_jobs[job_id] = [(r.face_index, r.model_id, r.scale) for r in results]
        return job_id

    def _compare_fidelity(self, face_index: int | None, scale: int) -> int | None:
        """Checks across every output of a face at a scale (agreement needs them together)."""
        if face_index is None:
            return None
        results = [
            r for (f, _, s), r in sorted(self.results.items()) if f == face_index and s == scale
        ]
        if len(results) < 2:
            return None
        wanted = {r.model_id for r in results}
        for (f, _, s), (_, report) in self.model_fidelity.items():
            if f == face_index and s == scale and set(report.models) >= wanted:
                self._mark_tiles(face_index, scale)
                return None  # already checked together
        for keys in self._fidelity_jobs.values():
            if {k[1] for k in keys if k[0] == face_index and k[2] == scale} >= wanted:
                return None  # on its way
        return self._request_fidelity(results)

    def _fidelity_done(self, outcome: FidelityOutcome) -> None:
        report = outcome.report
        for model_id, model_fidelity in report.models.items():
            key = (outcome.face_index, model_id, outcome.scale)
            known = self.model_fidelity.get(key)
            # A check against more outputs replaces one against fewer, never the other way.
            if known is None or len(known[1].models) <= len(report.models):
                self.model_fidelity[key] = (model_fidelity, report)
        if self._current_key() in {(outcome.face_index, m, outcome.scale) for m in report.models}:
            self._show_fidelity()
        self._mark_tiles(outcome.face_index, outcome.scale)
        flagged = [m for m, mf in report.models.items() if mf.flagged]
        if flagged:
            names = ", ".join(self.entry(m).label for m in flagged)
            self.errors.status(f"Fidelity warning: {names} (see the checks under the output)")

    def _mark_tiles(self, face_index: int, scale: int) -> None:
        """Fidelity line on the grid's tiles, when the grid shows this face and scale."""
        if face_index != self.face_index or scale != self.scale:
            return
        for tile in self.grid_view.tiles()[1:]:
            known = self.model_fidelity.get((face_index, tile.key, scale))
            if known is None or not tile.has_image():
                continue
            warnings = [
                f"{CHECK_NAMES[c.name].lower()} {value_text(c)}"
                for c in known[0].checks
                if c.status == "warn"
            ]
            tile.set_fidelity(warnings)

    # ================================================================== case log
    def case_log_path(self) -> Path:
        """The case log in the configured folder (see app.dialogs.settings.case_dir)."""
        return caselog.default_path(app_settings.case_dir(self.settings))

    def configure_case_log(self) -> int:
        """(Re)open the case log in the worker with the examiner and case from the settings."""
        self.log_label.setText("Case log: opening\u2026")
        return self._submit(
            "caselog",
            path=str(self.case_log_path()),
            examiner=app_settings.examiner(self.settings),
            case_reference=app_settings.case_reference(self.settings),
        )

    def _case_log_ready(self, state: CaseLogState) -> None:
        self.caselog_state = state
        self.log_entries = state.verification.entries
        self.log_problem = None
        if not state.is_new and not state.verification.ok:
            self.log_problem = "half-written" if state.truncated else "NOT intact"
        self.last_verification = None if state.is_new else state.verification
        self._update_log_label()
        self._update_actions()
        if state.repaired is not None:
            self.errors.dialog(
                "Case log repaired",
                "The half-written last line was moved to "
                f"{state.repaired['details'].get('saved_to')} and the repair was logged as "
                f"entry {state.repaired.get('seq')}.\n\n{state.verification.summary()}",
            )
        elif state.truncated:
            self._offer_repair(state.verification.summary())
        elif self.log_problem:
            self.errors.dialog(
                "The case log is not intact",
                f"{state.verification.summary()}\n\nNew entries are still added, but the log's "
                "earlier content cannot be trusted. Keep this file as it is for examination.",
            )

    def _offer_repair(self, summary: str) -> QMessageBox:
        """Tell the examiner the log ends half-written (a crash) and offer caselog.repair."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "The case log is damaged",
            "The case log ends with a half-written entry: the program stopped while writing it. "
            "Until it is repaired, nothing can be added to the log.\n\n"
            f"{summary}\n\nRepair moves the incomplete line to a separate file (kept, with its "
            "SHA-256 logged) and records the repair in the log.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("repairDialog")
        repair = box.addButton("Repair", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: button is repair and self.repair_log())
        box.open()
        return box

    def repair_log(self) -> int:
        return self._submit("repair_log")

    @Slot(int, object)
    def _on_logged(self, job_id: int, entry: dict) -> None:
        self.log_entries = max(self.log_entries, int(entry.get("seq") or 0))
        if self.log_problem == "not recording":
            self.log_problem = None
        self._update_log_label()
        if self.still is not None and caselog.touches(entry, self.still.sha256):
            self.history_view.add_entry(entry)

    @Slot(int, str, bool)
    def _on_log_failed(self, job_id: int, message: str, damaged: bool) -> None:
        first = self.log_problem != "not recording"
        self.log_problem = "not recording"
        self._update_log_label()
        if damaged:
            self._offer_repair(message)
        elif first:  # one dialog, not one per model of a comparison
            self.errors.dialog("Not recorded in the case log", message)
        else:
            self.errors.status(message)

    def _update_log_label(self) -> None:
        state = self.caselog_state
        if state is None:
            return
        if self.log_problem:
            self.log_label.setText(f"\u26a0 Case log: {self.log_problem}")
            self.log_label.setStyleSheet("color: #b36b00; font-weight: bold")
        else:
            count = self.log_entries
            self.log_label.setText(f"Case log: {count} entr{'y' if count == 1 else 'ies'}")
            self.log_label.setStyleSheet("")
        self.log_label.setToolTip(f"{state.path}\nExaminer: {state.examiner}")

    @Slot()
    def verify_log(self) -> int | None:
        """Check the whole hash chain in the worker; the verdict is shown in a dialog."""
        if self.caselog_state is None:
            return None
        self.statusBar().showMessage("Verifying the case log\u2026")
        return self._submit("verify_log")

    def _verified(self, report: Any) -> QMessageBox:
        self.last_verification = report
        self.log_entries = report.entries
        if report.ok:
            self.log_problem = None
            text = (
                f"The case log is intact: {report.entries} entries, every line as it was written."
            )
        elif report.reason == "missing":
            text = "The case log has no entries yet."
        else:
            first = report.problems[0]
            self.log_problem = "NOT intact"
            text = (
                f"The case log is NOT intact. First bad line: {first.line} ({first.kind}): "
                f"{first.message}."
            )
            if len(report.problems) > 1:
                text += f"\n{len(report.problems) - 1} further problem(s)."
        self._update_log_label()
        notes = "\n".join(report.notes)
        box = QMessageBox(
            QMessageBox.Icon.Information if report.ok else QMessageBox.Icon.Warning,
            "Case log verification",
            f"{text}\n\nChain head (SHA-256 of the last line):\n{report.head_sha256}\n\n"
            "Write the head down outside the log (e.g. in the case file): finding the same head "
            "later shows no entry up to it was altered."
            + (f"\n\n{notes}" if notes else "")
            + f"\n\nFile: {report.path}",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setObjectName("verifyDialog")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    @Slot()
    def reproduce_selected(self) -> int | None:
        """Re-run the "enhance" entry selected in History (caselog.reproduce, in the worker)."""
        entry = self.history_view.selected_entry()
        if entry is None or entry.get("action") != "enhance":
            self.errors.status("Select an \u201center\u201d entry in History first")
            return None
        self.statusBar().showMessage(f"Re-running case-log entry {entry.get('seq')}\u2026")
        return self._submit("reproduce", entry=entry)

    def _reproduced(self, outcome: ReproduceOutcome) -> QMessageBox:
        report, entry = outcome.report, outcome.entry
        if report.ok:
            head = (
                f"Entry {entry.get('seq')} reproduced: the re-run's output pixels have the logged "
                f"SHA-256\n{report.reproduced_pixels_sha256}"
            )
        else:
            head = f"Entry {entry.get('seq')} was NOT reproduced."
        details = "\n".join(f"\u2022 {m}" for m in report.messages)
        box = QMessageBox(
            QMessageBox.Icon.Information if report.ok else QMessageBox.Icon.Warning,
            "Reproduce case-log entry",
            f"{head}\n\n{details}\n\nThe re-run was logged.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setObjectName("reproduceDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    # ================================================================== settings
    def open_settings(self, first_start: bool = False) -> SettingsDialog:
        """The examiner/case dialog (window-modal, non-blocking)."""
        values = app_settings.read_values(self.settings, SCALES)
        if first_start and app_settings.has_examiner(self.settings):
            first_start = False
        dialog = SettingsDialog(values, SCALES, first_start, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.values()))
        if first_start:  # asked once: a dismissed first dialog keeps the OS user name
            dialog.rejected.connect(lambda: self.apply_settings(values))
        dialog.open()
        return dialog

    def apply_settings(self, values: SettingsValues) -> None:
        """Keep the values; reopen the case log under the new name, case or folder."""
        before = app_settings.read_values(self.settings, SCALES)
        app_settings.write_values(self.settings, values)
        after = app_settings.read_values(self.settings, SCALES)
        if (after.examiner, after.case_reference, after.case_dir) != (
            before.examiner,
            before.case_reference,
            before.case_dir,
        ) or self.caselog_state is None:
            self.configure_case_log()
        self.errors.status(
            f"Examiner: {after.examiner}; case log in {after.case_dir}; "
            f"new sessions start at \u00d7{after.default_scale}",
            10000,
        )

    # ================================================================== case report
    def report_dialog(self) -> None:
        if self.still is None:
            self.errors.status("Open a still first")
            return
        stem = Path(self.still.name or "still").stem
        folder = str(self.settings.value("lastReportDir", self.settings.value("lastExportDir", "")))
        folder = folder or str(Path.home())
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export case report (HTML and PDF)",
            str(Path(folder) / f"{stem}_case_report.html"),
            "HTML report (*.html)",
        )
        if path:
            self.export_report(path)

    def report_groups(self) -> list[tuple[str, list, dict]]:
        """(file suffix, results, {face index: FidelityReport}) for each report file.

        engine.report looks fidelity up by face and model, not scale; when one model ran on one
        face at two scales, a single report would show one scale's checks under both, so such a
        session gets one report per scale (suffix "_x4", "_x8").
        """
        order = {e.id: i for i, e in enumerate(self.entries)}
        results = sorted(
            self.results.values(), key=lambda r: (r.face_index, r.scale, order.get(r.model_id, 99))
        )
        pairs = [(r.face_index, r.model_id) for r in results]
        if len(set(pairs)) == len(pairs):
            return [("", results, self._fidelity_map(results))]
        scales = sorted({r.scale for r in results})
        groups = []
        for scale in scales:
            chosen = [r for r in results if r.scale == scale]
            groups.append((f"_x{scale}", chosen, self._fidelity_map(chosen)))
        return groups

    def _fidelity_map(self, results: list) -> dict[int, Any]:
        """One FidelityReport per face holding the checks of exactly these results."""
        out: dict[int, Any] = {}
        for face_index in sorted({r.face_index for r in results}):
            known = [
                self.model_fidelity.get((r.face_index, r.model_id, r.scale))
                for r in results
                if r.face_index == face_index
            ]
            known = [k for k in known if k is not None]
            if not known:
                continue
            base = max((k[1] for k in known), key=lambda rep: len(rep.models))
            models = {mf.model_id: mf for mf, _ in known}
            out[face_index] = dataclasses.replace(base, models=models)
        return out

    def export_report(self, path: str | Path) -> int | None:
        """Write ``path`` (.html) and the same name with .pdf (worker); never over the input.

        Outputs whose fidelity checks are still missing get them first; the report is then
        written when they arrive (``reportWritten`` says when).
        """
        if self.still is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".html":
            path = path.with_name(path.name + ".html")
        targets = [path.with_suffix(".html"), path.with_suffix(".pdf")]
        if any(same_file(t, self.still.path) for t in targets):
            self.errors.dialog(
                "Report refused",
                f"{path.stem} would be written over the evidence file that was opened. "
                "Choose another name.",
            )
            return None
        if any(same_file(t, self.case_log_path()) for t in targets):
            self.errors.dialog("Report refused", "That is the case log. Choose another name.")
            return None
        self.settings.setValue("lastReportDir", str(path.parent))
        missing = [r for key, r in self.results.items() if key not in self.model_fidelity]
        pending = {k for keys in self._fidelity_jobs.values() for k in keys}
        todo: dict[tuple[int, int], list] = {}
        for r in missing:
            if (r.face_index, r.model_id, r.scale) not in pending:
                todo.setdefault((r.face_index, r.scale), []).append(r)
        for group in todo.values():
            self._request_fidelity(group)
        if self._fidelity_jobs:
            self._report_waiting = path
            self.statusBar().showMessage("Finishing the fidelity checks for the report\u2026")
            return None
        self.statusBar().showMessage(f"Writing {path.name} and its PDF\u2026")
        return self._submit(
            "report",
            path=str(path),
            still=self.still,
            groups=self.report_groups(),
            examiner=app_settings.examiner(self.settings),
            case_reference=app_settings.case_reference(self.settings),
            forbidden=str(self.still.path) if self.still.path is not None else None,
        )

    def _report_written(self, outcome: ReportOutcome) -> None:
        names = ", ".join(p.name for p, _ in outcome.files)
        verdict = ""
        if outcome.verification is not None:
            verdict = " (case log intact)" if outcome.verification.ok else " (case log NOT intact)"
        self.errors.status(f"Case report written: {names}{verdict}", 20000)
        self.reportWritten.emit(outcome)

    # ================================================================== batch
    def open_batch(self) -> BatchDialog:
        """Show the (single, non-modal) batch window."""
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(
                self.entries, self.model_state, SCALES, self.settings, self
            )
            self.batch_dialog.startRequested.connect(self.start_batch)
            self.batch_dialog.pauseToggled.connect(
                lambda paused: self._batch_job and self.client.pause(self._batch_job, paused)
            )
            self.batch_dialog.cancelRequested.connect(
                lambda: self._batch_job and self.client.cancel(self._batch_job)
            )
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    @Slot(dict)
    def start_batch(self, request: dict) -> int | None:
        """Run engine.batch in the worker with a pausable token; progress goes to the dialog."""
        if self._batch_job is not None:
            return None
        self._batch_job = self._submit("batch", pausable=True, **request)
        if self.batch_dialog is not None:
            self.batch_dialog.started()
        return self._batch_job

    # ================================================================== help
    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.entries, self.statuses, self.device or None, self)
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
            self.open_file(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._save_settings()
        self.hide()  # gone at once for the user, even while the worker finishes its current step
        self.client.shutdown()
        super().closeEvent(event)
