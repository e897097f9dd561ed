"""The "History" dock: what the case log says was done to the open image, newest first.

Each row is one case-log entry touching the still (as the input, or as an output: an exported
file opened again shows the export that made it): local time, action, model, scale and the files
written. The full entry (examiner, hashes, parameters) is in the row's tooltip. Selecting an
"enhance" row enables Forensics > Reproduce selected entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("Time", "Action", "Model", "Scale", "Outputs")
ACTION_WORDS = {"label_removed": "label removed", "repaired": "log repaired"}
ENTRY_ROLE = Qt.ItemDataRole.UserRole


def local_time(utc_iso: str | None) -> str:
    """ "2025-11-25T15:03:07.123+00:00" -> "2025-11-25 16:03:07" in the computer's time zone."""
    if not utc_iso:
        return "?"
    try:
        return datetime.fromisoformat(utc_iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(utc_iso)


def entry_tooltip(entry: Mapping[str, Any]) -> str:
    """Plain text: the entry's identity, who, what, and every output with its SHA-256."""
    lines = [
        f"Entry {entry.get('seq')} \u00b7 {entry.get('action')} \u00b7 {entry.get('time_utc')} UTC",
        f"Examiner: {entry.get('examiner')}",
    ]
    if entry.get("input_path"):
        lines.append(f"Input: {entry.get('input_path')}")
    if entry.get("input_sha256"):
        lines.append(f"Input SHA-256: {entry.get('input_sha256')}")
    if entry.get("weights_sha256"):
        lines.append(f"Weights SHA-256: {entry.get('weights_sha256')}")
    if entry.get("device"):
        lines.append(f"Device: {entry.get('device')}")
    for out in entry.get("outputs") or []:
        lines.append(f"Output: {out.get('path')}\n  SHA-256 {out.get('sha256')}")
    details = entry.get("details") or {}
    if details.get("reason"):
        lines.append(f"Reason: {details['reason']}")
    if "ok" in details and entry.get("action") == "reproduce":
        lines.append("Reproduced bit-identically" if details["ok"] else "NOT reproduced")
    lines.append(f"Entry hash: {entry.get('hash')}")
    return "\n".join(lines)


class HistoryView(QWidget):
    """A list of case-log entries, newest first."""

    selectionChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(True)
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self.selectionChanged)
        self.placeholder = QLabel("Open a still: its case-log entries appear here.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #777777")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.tree, 1)
        self._model_names: dict[str, str] = {}
        self._seen: set[tuple[Any, Any]] = set()

    def set_model_names(self, names: Mapping[str, str]) -> None:
        """Model id -> readable name for the Model column."""
        self._model_names = dict(names)

    def set_entries(self, entries: Iterable[Mapping[str, Any]], placeholder: str = "") -> None:
        """Replace the list; ``entries`` in log order (oldest first), shown newest first."""
        self.tree.clear()
        self._seen.clear()
        for entry in entries:
            self.add_entry(entry)
        self.placeholder.setText(placeholder or "No case-log entries for this image yet.")
        self.placeholder.setVisible(self.count() == 0)

    def add_entry(self, entry: Mapping[str, Any]) -> bool:
        """Put a newly written entry at the top; False if it is already listed."""
        key = (entry.get("seq"), entry.get("hash"))
        if key in self._seen:
            return False
        self._seen.add(key)
        model_id = entry.get("model_id")
        scale = entry.get("scale")
        outputs = [PurePath(str(o.get("path"))).name for o in entry.get("outputs") or []]
        action = str(entry.get("action"))
        item = QTreeWidgetItem(
            [
                local_time(entry.get("time_utc")),
                ACTION_WORDS.get(action, action),
                self._model_names.get(model_id, model_id) if model_id else "",
                f"\u00d7{scale}" if scale else "",
                ", ".join(outputs),
            ]
        )
        item.setData(0, ENTRY_ROLE, dict(entry))
        tip = entry_tooltip(entry)
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tip)
        self.tree.insertTopLevelItem(0, item)
        self.placeholder.setVisible(False)
        return True

    def count(self) -> int:
        return self.tree.topLevelItemCount()

    def entry(self, row: int) -> dict[str, Any]:
        """The entry shown in ``row`` (0 = newest)."""
        return self.tree.topLevelItem(row).data(0, ENTRY_ROLE)

    def entries(self) -> list[dict[str, Any]]:
        """Every listed entry, newest first."""
        return [self.entry(i) for i in range(self.count())]

    def row_texts(self, row: int) -> list[str]:
        item = self.tree.topLevelItem(row)
        return [item.text(c) for c in range(len(COLUMNS))]

    def select_row(self, row: int) -> None:
        self.tree.setCurrentItem(self.tree.topLevelItem(row))

    def selected_entry(self) -> dict[str, Any] | None:
        items = self.tree.selectedItems()
        return items[0].data(0, ENTRY_ROLE) if items else None
