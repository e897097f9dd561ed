"""A face drawn by hand, refined before anything runs.

The analyst drags a box (:attr:`ImageView.boxDrawn`); the worker fits dlib's 68 landmarks in it
(job "box", ``engine.faces.face_from_box``) and the still shows them with the box, which stays
adjustable: each move or resize fits the landmarks again. The banner above the still says in
plain words when the fit looks implausible (``Face.fit_warnings``). Only "Use this face"
(Enter) adds the face to the list, where it can be enhanced; "Cancel" (Esc) discards it. The
boxes drawn and adjusted, and the warnings shown, go into the face's provenance.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut

from app.controllers import Controller
from app.jobs import BoxArgs
from app.views.hand_box import HandBoxItem, is_item_alive

if TYPE_CHECKING:
    from app.main_window import MainWindow

TITLE = "Face drawn by hand: check the landmarks before using it"
FITTING = "Placing the 68 landmarks in the box\u2026"
HOW = (
    "Drag inside the box to move it, drag a handle to resize it: the landmarks are placed "
    "again after each change."
)


class HandBoxController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        view = window.image_view
        self.banner = window.still_page.banner
        self.banner.confirmed.connect(self.confirm)
        self.banner.cancelled.connect(self.cancel)
        view.boxDrawn.connect(self.start)
        view.imageReplaced.connect(self.discard)
        self._item: HandBoxItem | None = None
        self._fit: Any = None  # the engine.faces.Face fitted in the box as it is now
        self._boxes: list[tuple[float, float, float, float]] = []  # drawn, then adjusted
        self._request = 0  # the latest fit asked for; older answers are dropped
        self._pending = False  # that fit has not answered yet
        self._shortcuts = []
        for key, slot in ((Qt.Key.Key_Return, self.confirm), (Qt.Key.Key_Enter, self.confirm),
                          (Qt.Key.Key_Escape, self.cancel)):  # fmt: skip
            shortcut = QShortcut(QKeySequence(key), window)
            shortcut.setEnabled(False)  # while refining; the window's Enhance and Cancel are off
            shortcut.activated.connect(slot)
            self._shortcuts.append(shortcut)

    def refining(self) -> bool:
        return self._item is not None

    def boxes(self) -> list[tuple[float, float, float, float]]:
        return list(self._boxes)

    def item(self) -> HandBoxItem | None:
        return self._item

    def fitted(self) -> Any:
        """The face fitted in the box as it is now (None while fitting, or with no box)."""
        return self._fit

    # ------------------------------------------------------------------ steps
    def start(self, box: tuple) -> int | None:
        """A box was drawn: show it, adjustable, and fit the landmarks in it (nothing else)."""
        if self.state.still is None:
            return None
        self.discard()
        view = self.w.image_view
        box = tuple(float(v) for v in box)
        self._item = HandBoxItem(box, view.sceneRect())
        self._item.adjusted.connect(self._adjusted)
        view.scene().addItem(self._item)
        self._boxes = [box]
        self.w.act_draw.setChecked(False)
        view.set_draw_mode(False)
        for shortcut in self._shortcuts:
            shortcut.setEnabled(True)
        self.w.update_actions()
        return self._fit_box(box)

    def _adjusted(self, box: tuple) -> None:
        self._boxes.append(tuple(float(v) for v in box))
        self._fit_box(self._boxes[-1])

    def _fit_box(self, box: tuple) -> int:
        self._request += 1
        request = self._request
        self._fit, self._pending = None, True
        if self._item is not None:
            self._item.set_fit(None)
        self.banner.show_state(TITLE, [FITTING], warn=False, can_use=False)
        self.w.statusBar().showMessage(FITTING)
        return self.w.submit(
            BoxArgs(still=self.state.still, box=box),
            on_result=lambda face: self._fitted(request, face),
            on_failed=lambda error: self._not_fitted(request, error),
            on_finished=lambda: self._finished(request),
        )

    def _fitted(self, request: int, face: Any) -> None:
        if request != self._request or not is_item_alive(self._item):
            return
        self._fit, self._pending = face, False
        warnings = list(face.fit_warnings)
        self._item.set_fit(face.landmarks, face.box, warn=bool(warnings))
        if warnings:
            lines = ["The landmark fit looks implausible: tighten the box.", *warnings]
        else:
            lines = ["The landmarks follow the face. " + HOW]
        self.banner.show_state(TITLE, lines, warn=bool(warnings), can_use=True)
        self.errors.status(
            "Landmarks placed: press Enter to use this face, Esc to discard it.", 15000
        )

    def _not_fitted(self, request: int, error: Any) -> None:
        if request != self._request or self._item is None:
            return
        self._pending = False
        text = getattr(error, "text", str(error))
        self.banner.show_state(TITLE, [f"No landmarks: {text}", HOW], warn=True, can_use=False)

    def _finished(self, request: int) -> None:
        """The fit ended without an answer shown (cancelled, or another still): say so."""
        if request == self._request and self._item is not None and self._pending:
            self._pending = False
            stopped = "The landmarks were not placed (stopped). " + HOW
            self.banner.show_state(TITLE, [stopped], warn=True, can_use=False)

    def confirm(self) -> int | None:
        """Add the refined face to the list and select it; returns its index."""
        if self._fit is None or self._item is None:
            return None
        face = replace(self._fit, drawn_boxes=tuple(self._boxes))
        self.discard()
        self.state.faces.append(face)
        index = len(self.state.faces) - 1
        self.w.opening.show_faces()
        self.w.opening.select_face(index)
        self.errors.status(
            f"Face {index + 1} added (drawn by hand). Press Enter to enhance it.", 15000
        )
        self.w.update_actions()
        return index

    def cancel(self) -> None:
        if self._item is None:
            return
        self.discard()
        self.errors.status("The drawn box was discarded.", 8000)

    def discard(self) -> None:
        """Forget the box being refined (its late answers are dropped)."""
        self._request += 1
        item, self._item, self._fit = self._item, None, None
        if is_item_alive(item) and item.scene() is not None:
            item.scene().removeItem(item)
        self.banner.hide()
        for shortcut in self._shortcuts:
            shortcut.setEnabled(False)
        self.w.update_actions()
