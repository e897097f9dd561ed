"""The window's actions, menus and toolbars as tables: one row per action, one list per menu.

An :class:`ActionSpec` names the window attribute the QAction is kept under, its text, icon,
shortcut and tip, and the slot it triggers as a dotted path from the window
(``"opening.open_dialog"``) with optional arguments. :func:`build` turns the tables into
QActions, menus and toolbars; the controllers enable and check them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QToolBar

from app.state import SCALES, scale_text
from app.views.compare_view import INPUT_METHOD_NAMES, INPUT_METHODS

if TYPE_CHECKING:
    from app.main_window import MainWindow

K = QKeySequence.StandardKey
ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


@dataclass(frozen=True)
class ActionSpec:
    name: str  # the window attribute, e.g. "act_open"
    text: str
    icon: str | None = None
    shortcut: Any = None  # a key sequence, a standard key, or a tuple of keys
    slot: str | None = None  # dotted path from the window, e.g. "opening.open_dialog"
    args: tuple = ()  # the slot is called with these (and not with the checked state)
    checkable: bool = False
    tip: str = ""


# fmt: off
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("act_open", "&Open\u2026", "mdi6.folder-open-outline", K.Open,
               "opening.open_dialog", tip="Open a still image"),
    ActionSpec("act_export_face", "Export enhanced &face\u2026", "mdi6.content-save-outline",
               "Ctrl+E", "exporting.export_dialog", ("face",),
               tip="Save the enhanced face as PNG with its provenance"),
    ActionSpec("act_export_full", "Export f&ull image\u2026", "mdi6.file-export-outline",
               "Ctrl+Shift+E", "exporting.export_dialog", ("full",),
               tip="Save the whole still, enlarged, with the enhanced face pasted in"),
    ActionSpec("act_export_comparison", "Export &comparison\u2026", "mdi6.view-grid-plus-outline",
               slot="exporting.comparison_dialog",
               tip="Save the comparison on screen (side by side, or the grid of all models) as "
               "one labelled PNG for a report or a briefing"),
    ActionSpec("act_label_exports", "Add visible AI &label to exports",
               slot="case_log.label_triggered", checkable=True,
               tip="Append a red strip with the AI label below exported images "
               "(turning it off needs a reason, which is logged)"),
    ActionSpec("act_settings", "&Settings\u2026", "mdi6.cog-outline", K.Preferences,
               "case_log.open_settings", (False,),
               tip="Examiner name, case reference, case-log folder, default scale"),
    ActionSpec("act_verify_log", "&Verify case log", "mdi6.shield-check-outline",
               slot="case_log.verify_log",
               tip="Check the case log's hash chain: is every entry as it was written?"),
    ActionSpec("act_reproduce", "&Reproduce selected entry", "mdi6.replay",
               slot="case_log.reproduce_selected",
               tip="Re-run the enhancement selected in History and check the output is "
               "identical"),
    ActionSpec("act_report", "Export case &report\u2026", "mdi6.file-document-outline",
               "Ctrl+R", "exporting.report_dialog",
               tip="Write the case report (HTML and PDF) for the open still and its "
               "enhancements"),
    ActionSpec("act_quit", "&Quit", "mdi6.exit-to-app", K.Quit, "close"),
    ActionSpec("act_enhance", "&Enhance", "mdi6.auto-fix", ENTER, "enhancing.enhance",
               tip="Enhance the selected face with the chosen model (Enter)"),
    ActionSpec("act_compare", "&Compare all models", "mdi6.view-grid-outline", "Ctrl+G",
               "enhancing.compare_all",
               tip="Run the selected face through every model that has weights"),
    ActionSpec("act_cancel", "Cancel", "mdi6.stop-circle-outline", Qt.Key.Key_Escape,
               "cancel", tip="Stop the running job (Esc)"),
    ActionSpec("act_landmarks", "&Landmarks overlay", "mdi6.vector-polyline", "L",
               "compare_view.set_landmarks_visible", checkable=True,
               tip="Show the 68 facial landmarks on input and output"),
    ActionSpec("act_draw", "&Draw face box", "mdi6.selection-drag", "B",
               "image_view.set_draw_mode", checkable=True,
               tip="Drag a box around a face the detector missed"),
    ActionSpec("act_fit", "&Fit", "mdi6.fit-to-screen-outline", "Ctrl+0", "zoom", ("fit",)),
    ActionSpec("act_actual", "&Actual size (1:1)", "mdi6.numeric-1-box-outline", "Ctrl+1",
               "zoom", ("actual",)),
    ActionSpec("act_zoom_in", "Zoom &in", "mdi6.magnify-plus-outline", K.ZoomIn,
               "zoom", ("in",)),
    ActionSpec("act_zoom_out", "Zoom &out", "mdi6.magnify-minus-outline", K.ZoomOut,
               "zoom", ("out",)),
    ActionSpec("act_page_still", "Whole &still", "mdi6.image-outline", "F2",
               "show_page", ("still",), checkable=True),
    ActionSpec("act_page_side", "&Side by side", "mdi6.compare-horizontal", "F3",
               "show_page", ("side",), checkable=True),
    ActionSpec("act_page_wipe", "&Wipe", "mdi6.compare", "F4", "show_page", ("wipe",),
               checkable=True),
    ActionSpec("act_page_grid", "&Grid of all models", "mdi6.view-grid-outline", "F5",
               "show_page", ("grid",), checkable=True),
    ActionSpec("act_track_fuse", "&Track and fuse this face", "mdi6.filmstrip-box-multiple",
               "Ctrl+T", "video.track_and_fuse",
               tip="Follow the selected face of the frame in use through the clip, fuse its best "
               "frames and run the model on the fused face and on this frame alone"),
    ActionSpec("act_refresh", "&Recheck installed weights", "mdi6.refresh",
               slot="enhancing.check_engine"),
    ActionSpec("act_batch", "&Batch process folder\u2026", "mdi6.folder-multiple-image",
               "Ctrl+B", "exporting.open_batch",
               tip="Enhance every face in a folder of stills with chosen models"),
    ActionSpec("act_about", "&About and papers\u2026", "mdi6.information-outline",
               slot="show_about"),
)
PAGE_ACTIONS = ("act_page_still", "act_page_side", "act_page_wipe", "act_page_grid")
ZOOM_ACTIONS = ("act_fit", "act_actual", "act_zoom_in", "act_zoom_out")

# Menus: action names; None is a separator; "@..." are built from the session (see _fill).
MENUS: tuple[tuple[str, str, tuple], ...] = (
    ("file_menu", "&File", ("act_open", "@recent", None, "act_export_face", "act_export_full",
                            "act_export_comparison", "act_label_exports", None, "act_batch",
                            None, "act_settings", None, "act_quit")),
    ("view_menu", "&View", (*ZOOM_ACTIONS, None, "act_landmarks", "act_draw", None,
                            *PAGE_ACTIONS, None, "@input_methods", None, "@faces_dock",
                            "@history_dock")),
    ("models_menu", "&Models", ("@models", None, "@scales", None, "act_enhance",
                                "act_compare", "act_track_fuse", "act_refresh")),
    ("forensics_menu", "F&orensics", ("act_verify_log", "act_reproduce", None, "act_report",
                                      "act_label_exports", None, "@history_dock",
                                      "act_settings")),
    ("help_menu", "&Help", ("act_about",)),
)
MAIN_TOOLBAR = ("act_open", None, "@model_combo", "@scale_combo", "act_enhance", "act_compare",
                "act_cancel", None, "act_landmarks", "act_draw", None)
VIEW_TOOLBAR = ("act_zoom_in", "act_zoom_out", "act_fit", "act_actual")
HISTORY_TOOLBAR = ("act_reproduce", "act_verify_log")
# fmt: on


def make_action(window: MainWindow, spec: ActionSpec) -> QAction:
    action = QAction(spec.text, window)
    if spec.icon:
        action.setIcon(qta.icon(spec.icon))
    if isinstance(spec.shortcut, tuple):
        action.setShortcuts([QKeySequence(key) for key in spec.shortcut])
    elif spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
    action.setCheckable(spec.checkable)
    if spec.tip:
        action.setStatusTip(spec.tip)
        action.setToolTip(spec.tip)
    if spec.slot is not None:
        slot = operator.attrgetter(spec.slot)(window)
        if spec.args:
            action.triggered.connect(lambda _=False, f=slot, a=spec.args: f(*a))
        else:
            action.triggered.connect(slot)
    return action


def build(window: MainWindow) -> None:
    """Create every action, the menus and the toolbars of ``window``."""
    for spec in ACTIONS:
        setattr(window, spec.name, make_action(window, spec))
    pages = QActionGroup(window)
    for name in PAGE_ACTIONS:
        pages.addAction(getattr(window, name))
    window.act_page_still.setChecked(True)
    window.act_label_exports.setChecked(True)  # on at every start; see CaseLogController
    window.input_method_group = QActionGroup(window)
    window.input_method_actions = {}
    for method in INPUT_METHODS:
        spec = ActionSpec("", f"Input shown as: {INPUT_METHOD_NAMES[method]}", checkable=True,
                          slot="compare_view.set_input_method", args=(method,))  # fmt: skip
        action = make_action(window, spec)
        window.input_method_group.addAction(action)
        window.input_method_actions[method] = action
    window.input_method_actions["nearest"].setChecked(True)
    _build_model_actions(window)
    _build_combos(window)
    bar = window.menuBar()
    for attribute, title, items in MENUS:
        menu = bar.addMenu(title)
        setattr(window, attribute, menu)
        _fill(window, menu, items)
    window.models_menu.setToolTipsVisible(True)
    main = QToolBar("Main", window)
    main.setObjectName("mainToolbar")
    main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    window.addToolBar(main)
    _fill(window, main, MAIN_TOOLBAR)
    view = QToolBar("View", window)
    view.setObjectName("viewToolbar")
    window.addToolBar(view)
    _fill(window, view, VIEW_TOOLBAR)
    _fill(window, window.history_toolbar, HISTORY_TOOLBAR)


def _build_model_actions(window: MainWindow) -> None:
    window.model_group = QActionGroup(window)
    window.model_group.setExclusive(True)
    window.model_actions = {}
    for entry in window.state.entries:
        action = QAction(entry.label.replace("&", "&&"), window, checkable=True)
        action.setToolTip(entry.citation)
        action.triggered.connect(lambda _=False, m=entry.id: window.enhancing.set_model(m))
        window.model_group.addAction(action)
        window.model_actions[entry.id] = action
    window.scale_group = QActionGroup(window)
    window.scale_actions = {}
    for scale in SCALES:
        action = QAction(f"Scale {scale_text(scale)}", window, checkable=True)
        action.triggered.connect(lambda _=False, s=scale: window.enhancing.set_scale(s))
        window.scale_group.addAction(action)
        window.scale_actions[scale] = action


def _build_combos(window: MainWindow) -> None:
    combo = window.model_combo = QComboBox()
    combo.setToolTip("Model used by Enhance")
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(30)
    for entry in window.state.entries:
        combo.addItem(entry.label, entry.id)
    combo.activated.connect(lambda i: window.enhancing.set_model(combo.itemData(i)))
    scales = window.scale_combo = QComboBox()
    scales.setToolTip(
        "Enlargement factor. Auto (recommended) picks, per face, the largest factor whose model "
        "input still holds every recorded pixel of the face (x8 for 16 px faces, x4 for 32 px, "
        "x2 for 64 px; nothing for faces of 128 px or more). A fixed factor that would shrink "
        "the face first asks before it runs. x1 restore (chosen by hand only, never by Auto) "
        "enlarges nothing: it cleans compression blocking, noise and mild blur on the still's "
        "own pixels around a face of any size, for faces of 128 px or more that need clean-up "
        "rather than enlargement."
    )
    for scale in SCALES:
        scales.addItem(scale_text(scale), scale)
    scales.activated.connect(lambda i: window.enhancing.set_scale(scales.itemData(i)))


def _fill(window: MainWindow, target: Any, items: tuple) -> None:
    """Add ``items`` (action names, None for a separator, "@..." specials) to a menu/toolbar."""
    for item in items:
        if item is None:
            target.addSeparator()
        elif item == "@recent":
            window.recent_menu = target.addMenu(qta.icon("mdi6.history"), "Open &Recent")
        elif item == "@input_methods":
            target.addActions(list(window.input_method_actions.values()))
        elif item == "@faces_dock":
            target.addAction(window.faces_dock.toggleViewAction())
        elif item == "@history_dock":
            target.addAction(window.history_dock.toggleViewAction())
        elif item == "@models":
            target.addActions(list(window.model_actions.values()))
        elif item == "@scales":
            target.addActions(list(window.scale_actions.values()))
        elif item in ("@model_combo", "@scale_combo"):
            target.addWidget(getattr(window, item[1:]))
        else:
            target.addAction(getattr(window, item))
