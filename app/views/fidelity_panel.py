"""The fidelity panel under the enhanced face: does this output still agree with the evidence?

It shows the three checks of :mod:`engine.fidelity` for the output on screen -- data consistency
(PSNR of the output shrunk back against the input), landmark drift, and agreement between
models -- each with its value, its threshold, pass or warning, and the one-sentence meaning the
engine gives; warnings are amber with an alert icon. The data-consistency difference image is
shown as a thumbnail and can be opened larger; after "Compare all models" the pairwise agreement
matrix of the outputs is shown too.

The checks are computed in the engine worker (0.3-0.9 s per output) and arrive by signal; this
widget only formats what it is given. It reads the engine's objects by attribute and does not
import :mod:`engine.fidelity`, which would load dlib in the GUI thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.views.common import rgb_to_pixmap
from app.views.zoom_view import ZoomView

AMBER = "#b36b00"
AMBER_FILL = "#ffe0a3"
GREEN = "#2e7d32"
GREY = "#777777"
DIFF_THUMB = 96  # screen pixels for the difference thumbnail
PANEL_SHARE = 0.38  # at most this share of the window's height, at first (the rest scrolls)
NAME_CHARS = 18  # model names in the matrix's row headers (the tooltip has them in full)
CHECK_NAMES = {
    "consistency": "Data consistency",
    "drift": "Landmark drift",
    "agreement": "Model agreement",
    "resolution": "Evidence resolution",
}
STATUS_WORDS = {"pass": "pass", "warn": "WARNING", "unavailable": "not available"}


def value_text(check: Any) -> str:
    """The check's value for people: "34.2 dB", "0.033 \u00d7 eye distance", "0.412"."""
    value = check.value
    if value is None:
        return "\u2014"
    if check.name == "consistency":
        return "identical (\u221e dB)" if math.isinf(value) else f"{value:.1f} dB"
    if check.name == "drift":
        return f"{value:.3f} \u00d7 eye dist."
    if check.name == "resolution":
        return "not shrunk" if value <= check.threshold else f"shrunk {value:.2f}\u00d7"
    return f"{value:.3f}"


def threshold_text(check: Any) -> str:
    """The line the value is judged against: "warn below 30 dB", "warn above 0.1"."""
    if check.name == "consistency":
        return f"warn below {check.threshold:g} dB"
    if check.name == "resolution":
        return f"warn above {check.threshold:.2f}\u00d7"
    return f"warn above {check.threshold:g}"


def meaning_text(check: Any) -> str:
    """The engine's one-sentence meaning, plus why the value is missing or extra numbers."""
    text = check.meaning
    if check.detail:
        text += f" ({check.detail})"
    return text


def _status_icon(status: str):
    if status == "warn":
        return qta.icon("mdi6.alert", color=AMBER)
    if status == "pass":
        return qta.icon("mdi6.check-circle", color=GREEN)
    return qta.icon("mdi6.minus-circle-outline", color=GREY)


class WrapLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at its current width.

    Box layouts size a wrapped QLabel from a width guessed before the panel's other columns
    (the difference image, the matrix) took their room, and then clip the last line.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        needed = self.heightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        super().setText(text)
        if self.isVisible() and self.width() > 100:  # laid out: its width is the real one
            self.setMinimumHeight(max(0, self.heightForWidth(self.width())))
        else:
            self.setMinimumHeight(0)  # resizeEvent sets it once the width is known


class DifferenceDialog(QDialog):
    """The data-consistency difference image, zoomable, with what it shows.

    It follows the output on screen: another output replaces its image and title, and with no
    output on screen (another still, another model without a result) it is emptied and says so.
    """

    def __init__(self, difference: np.ndarray, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("differenceDialog")
        self.resize(520, 580)
        self.view = ZoomView()
        self.title = ""
        note = QLabel(
            "Black where the enhanced face, shrunk back to the input's size, reproduces the "
            "evidence pixels; bright where it does not. Brightness is the difference "
            "multiplied by 4, so one grey level in 64 is visible. Each square is one input pixel."
        )
        note.setWordWrap(True)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(note)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.set_difference(difference, title)

    def set_difference(self, difference: np.ndarray | None, title: str) -> None:
        """Show ``difference`` (None: nothing, with ``title`` saying why)."""
        self.title = title
        scene = self.view.scene()
        scene.clear()
        if difference is None:
            self.setWindowTitle("Difference image \u2014 no output on screen")
            self.view.set_caption([], False)
            self.view.set_placeholder(title or "No enhanced output on screen.")
            return
        self.setWindowTitle(f"Difference image \u2014 {title}")
        h, w = difference.shape[:2]
        scene.addPixmap(rgb_to_pixmap(difference))
        scene.setSceneRect(QRectF(0, 0, w, h))
        self.view.set_placeholder("")
        self.view.set_caption([f"|output shrunk to {w}\u00d7{h} \u2212 input| \u00d7 4"], False)

    def has_image(self) -> bool:
        return bool(self.view.scene().items())


class PanelScroll(QScrollArea):
    """The fidelity panel in a vertical scroll area that asks for at most
    :data:`PANEL_SHARE` of the window's height, so the faces above keep theirs."""

    def __init__(self, panel: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def sizeHint(self):  # noqa: N802 (Qt override)
        hint = super().sizeHint()
        window = self.window()
        limit = int(window.height() * PANEL_SHARE) if window is not self else hint.height()
        panel = self.widget()
        wanted = (
            max(panel.minimumHeight(), panel.minimumSizeHint().height()) + 2 * self.frameWidth()
        )
        hint.setHeight(max(120, min(wanted, limit)))
        return hint


class FidelityPanel(QFrame):
    """Three checks, the difference thumbnail and (after a comparison) the agreement matrix."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fidelityPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._check_objects: list[Any] = []
        self._difference: np.ndarray | None = None
        self._title = ""
        self.dialog: DifferenceDialog | None = None

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(self.header)
        top.addStretch(1)
        top.addWidget(self.summary)

        # Per check: icon, name, value, threshold on one line; the meaning below, full width.
        # (Plain boxes, not one grid: a grid under-sizes word-wrapped labels that span columns.)
        checks = QVBoxLayout()
        checks.setSpacing(1)
        self._rows: list[dict[str, QLabel]] = []
        for _ in range(4):  # consistency, drift, agreement and (when known) resolution
            cells = {
                "icon": QLabel(),
                "name": QLabel(),
                "value": QLabel(),
                "threshold": QLabel(),
                "meaning": WrapLabel(),
            }
            cells["meaning"].setStyleSheet("color: #555555; font-size: 11px")
            cells["meaning"].setContentsMargins(0, 0, 0, 3)
            cells["threshold"].setStyleSheet(f"color: {GREY}")
            cells["icon"].setFixedWidth(22)
            cells["name"].setFixedWidth(140)
            cells["value"].setFixedWidth(112)
            line = QHBoxLayout()
            line.setSpacing(6)
            for key in ("icon", "name", "value", "threshold"):
                line.addWidget(cells[key])
            line.addStretch(1)
            meaning = QHBoxLayout()
            meaning.addSpacing(28)  # under the name, past the icon
            meaning.addWidget(cells["meaning"], 1)
            checks.addLayout(line)
            checks.addLayout(meaning)
            self._rows.append(cells)
        checks_box = QWidget()
        checks_box.setLayout(checks)

        self.diff_image = QLabel()
        self.diff_image.setFixedSize(DIFF_THUMB, DIFF_THUMB)
        self.diff_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.diff_image.setStyleSheet("background: #202124")
        self.diff_image.setToolTip("|output shrunk back \u2212 input| \u00d7 4: black = consistent")
        self.diff_button = QPushButton(qta.icon("mdi6.magnify-plus-outline"), "Difference\u2026")
        self.diff_button.setToolTip("View the data-consistency difference image larger")
        self.diff_button.clicked.connect(self.show_difference)
        diff_box = QVBoxLayout()
        diff_box.addWidget(QLabel("Difference \u00d74"))
        diff_box.addWidget(self.diff_image)
        diff_box.addWidget(self.diff_button)
        diff_box.addStretch(1)

        self.matrix_title = QLabel()
        self.matrix_title.setWordWrap(True)
        self.matrix_title.setMaximumWidth(520)
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.matrix.setStyleSheet("font-size: 11px")  # ten outputs fit on a 1280 px screen
        self.matrix.verticalHeader().setMinimumSectionSize(15)
        self.matrix.horizontalHeader().setMinimumSectionSize(28)
        self.matrix.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.matrix.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.matrix.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.matrix_hint = QLabel(
            "Compare all models (Ctrl+G) to see how far the models' outputs disagree."
        )
        self.matrix_hint.setWordWrap(True)
        self.matrix_hint.setMaximumWidth(220)
        self.matrix_hint.setStyleSheet(f"color: {GREY}")
        matrix_box = QVBoxLayout()
        matrix_box.addWidget(self.matrix_title)
        matrix_box.addWidget(self.matrix)
        matrix_box.addWidget(self.matrix_hint)
        matrix_box.addStretch(1)

        self.body = QWidget()
        body = QHBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(checks_box, 1)
        body.addLayout(diff_box)
        body.addLayout(matrix_box)

        self.message = QLabel()
        self.message.setStyleSheet(f"color: {GREY}")
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.body)
        self.clear()

    # ------------------------------------------------------------------ state
    def clear(self, message: str = "Fidelity checks appear here after an enhancement.") -> None:
        """No output on screen."""
        self._check_objects = []
        self._difference = None
        self._title = ""
        if self.dialog is not None:  # it shows the output on screen, and there is none now
            self.dialog.set_difference(None, message)
        self.header.setText("<b>Fidelity checks</b>")
        self.summary.setText("")
        self.message.setText(message)
        self.message.setVisible(True)
        self.body.setVisible(False)
        self._fit_height()

    def set_pending(self, title: str) -> None:
        """Checks for the output on screen are being computed in the worker."""
        self.clear(
            "Computing the fidelity checks in the background (about half a second per output)\u2026"
        )
        self.header.setText(f"<b>Fidelity checks</b> \u00b7 {title}")

    def set_fidelity(
        self,
        model_fidelity: Any,
        report: Any,
        title: str,
        model_names: Mapping[str, str] | None = None,
    ) -> None:
        """Show one model's checks (an ``engine.fidelity.ModelFidelity``) and, when ``report``
        holds several outputs, the agreement matrix across them."""
        names = dict(model_names or {})
        checks = list(model_fidelity.checks)
        self._check_objects = checks
        self._title = title
        self.header.setText(f"<b>Fidelity checks</b> \u00b7 {title}")
        warnings = sum(1 for c in checks if c.status == "warn")
        if warnings:
            self.summary.setText(
                f"<span style='color:{AMBER}'><b>\u26a0 {warnings} warning"
                f"{'s' if warnings > 1 else ''}</b>: this output contradicts the evidence "
                "or the other models</span>"
            )
        else:
            self.summary.setText(
                f"<span style='color:{GREEN}'>No warnings</span> <span style='color:{GREY}'>"
                "(passing does not prove the added detail is real)</span>"
            )
        for index, cells in enumerate(self._rows):  # a row without a check is hidden
            for cell in cells.values():
                cell.setVisible(index < len(checks))
        for cells, check in zip(self._rows, checks, strict=False):
            colour = AMBER if check.status == "warn" else "#000000"
            cells["icon"].setPixmap(_status_icon(check.status).pixmap(18, 18))
            cells["icon"].setToolTip(STATUS_WORDS.get(check.status, check.status))
            cells["name"].setText(f"<b>{CHECK_NAMES.get(check.name, check.name)}</b>")
            cells["value"].setText(value_text(check))
            cells["value"].setStyleSheet(
                f"color: {colour}; font-weight: {'bold' if check.status == 'warn' else 'normal'}"
            )
            cells["threshold"].setText(threshold_text(check))
            cells["meaning"].setText(meaning_text(check))
        difference = getattr(model_fidelity.consistency, "difference", None)
        self._difference = difference
        if difference is not None:
            self.diff_image.setPixmap(
                rgb_to_pixmap(difference).scaled(
                    DIFF_THUMB,
                    DIFF_THUMB,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )
            )
        else:
            self.diff_image.clear()
        self.diff_button.setEnabled(difference is not None)
        if self.dialog is not None:
            self.dialog.set_difference(difference, title)
        self._show_matrix(report, model_fidelity.model_id, names)
        self.message.setVisible(False)
        self.body.setVisible(True)
        self._fit_height()

    def _fit_height(self) -> None:
        """Tall enough for the wrapped meanings at the current width.

        A splitter sizes its panes by their minimum size hints, which do not account for word
        wrapping; without this the meanings are cut off.
        """
        layout = self.layout()
        width = max(self.width(), 200)
        needed = (
            layout.heightForWidth(width)
            if layout.hasHeightForWidth()
            else layout.sizeHint().height()
        )
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def _show_matrix(self, report: Any, model_id: str, names: Mapping[str, str]) -> None:
        labels = list(getattr(report, "labels", []) or [])
        distances = getattr(report, "distances", None) or []
        compared = len(labels) - 1  # the first label is the enlarged input
        show = compared >= 2
        self.matrix.setVisible(show)
        self.matrix_hint.setVisible(not show)
        if not show:
            self.matrix_title.setText("")
            self.matrix.clear()
            self.matrix.setRowCount(0)
            self.matrix.setColumnCount(0)
            return
        model = getattr(report, "models", {}).get(model_id)
        threshold = model.agreement.threshold if model is not None else None
        short = [names.get(label, label) for label in labels]
        self.matrix_title.setText(
            f"<b>Agreement</b> between {compared} outputs and the enlarged input "
            "(dlib distance"
            + (f"; amber above {threshold:g}" if threshold is not None else "")
            + ")"
        )
        n = len(labels)
        self.matrix.clear()
        self.matrix.setRowCount(n)
        self.matrix.setColumnCount(n)
        self.matrix.setHorizontalHeaderLabels([str(i + 1) for i in range(n)])
        self.matrix.setVerticalHeaderLabels(
            [f"{i + 1} {_elide(s, NAME_CHARS)}" for i, s in enumerate(short)]
        )
        for i in range(n):
            for j in range(n):
                value = float(distances[i][j])
                item = QTableWidgetItem("" if i == j else f"{value:.2f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(f"{short[i]} \u2194 {short[j]}: {value:.3f}")
                if i != j and threshold is not None and value > threshold:
                    item.setBackground(QColor(AMBER_FILL))
                    item.setForeground(QColor(AMBER))
                if labels[i] == model_id or labels[j] == model_id:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.matrix.setItem(i, j, item)
        # As large as its contents (up to a limit), so no cell hides behind a scroll bar. Size
        # hints, not current sizes: the table may not have been laid out yet.
        self.matrix.resizeColumnsToContents()
        self.matrix.resizeRowsToContents()
        frame = 2 * self.matrix.frameWidth()
        vertical, horizontal = self.matrix.verticalHeader(), self.matrix.horizontalHeader()
        width = (
            vertical.sizeHint().width()
            + frame
            + sum(
                max(self.matrix.sizeHintForColumn(c), horizontal.sectionSizeHint(c))
                for c in range(n)
            )
        )
        height = (
            horizontal.sizeHint().height()
            + frame
            + sum(max(self.matrix.sizeHintForRow(r), vertical.sectionSizeHint(r)) for r in range(n))
        )
        # the headers' lengths are the laid-out sizes (size hints can be a few pixels short)
        width = max(width, vertical.sizeHint().width() + horizontal.length() + frame)
        height = max(height, horizontal.sizeHint().height() + vertical.length() + frame)
        self.matrix.setFixedSize(min(width + 2, 520), min(height + 2, 260))

    # ------------------------------------------------------------------ for people and tests
    def show_difference(self) -> DifferenceDialog | None:
        """Open the difference image larger (non-modal)."""
        if self._difference is None:
            return None
        if self.dialog is not None:
            self.dialog.set_difference(self._difference, self._title)
            self.dialog.raise_()
            return self.dialog
        self.dialog = DifferenceDialog(self._difference, self._title, self)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog.destroyed.connect(lambda: setattr(self, "dialog", None))
        self.dialog.show()
        return self.dialog

    def rows(self) -> list[dict[str, str]]:
        """What each check row shows: name, value, threshold, status, meaning (empty if none)."""
        return [
            {
                "name": check.name,
                "value": cells["value"].text(),
                "threshold": cells["threshold"].text(),
                "status": check.status,
                "meaning": cells["meaning"].text(),
                "colour": AMBER if check.status == "warn" else "",
            }
            for cells, check in zip(self._rows, self._check_objects, strict=False)
        ]

    def has_values(self) -> bool:
        """True when checks (not a placeholder message) are shown."""
        return bool(self._check_objects)

    def matrix_size(self) -> int:
        return self.matrix.rowCount() if self.matrix.isVisibleTo(self) else 0


def _elide(text: str, chars: int) -> str:
    """ "SRResNet+attention G\u2026" for a row header; short names unchanged."""
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "\u2026"
