"""File > Settings: who the examiner is, the case, where the case log lives, the default scale.

The examiner's name goes into every case-log entry and every case report, so the app asks for it
once, on the first start (pre-filled with the operating-system user name), and keeps it in the
user's settings. The case-log folder defaults to the per-user application data folder
(``QStandardPaths.AppDataLocation``); the environment variable ``FFE_CASE_DIR`` overrides both the
default and the setting (used by tests and scripted runs), and the dialog says so.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

CASE_DIR_ENV = "FFE_CASE_DIR"
KEY_EXAMINER = "examiner"
KEY_CASE_REFERENCE = "caseReference"
KEY_CASE_DIR = "caseDir"
KEY_DEFAULT_SCALE = "defaultScale"


def os_user() -> str:
    """The operating-system user name ("examiner" when there is none, e.g. in a container)."""
    try:
        return getpass.getuser() or "examiner"
    except (KeyError, OSError):
        return "examiner"


def default_case_dir() -> Path:
    """The per-user application data folder (the home folder if Qt knows none)."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location) if location else Path.home() / ".forensic-face-enhancer"


def case_dir(settings: QSettings) -> Path:
    """Where the case log is: $FFE_CASE_DIR, else the setting, else :func:`default_case_dir`."""
    env = os.environ.get(CASE_DIR_ENV)
    if env:
        return Path(env)
    saved = str(settings.value(KEY_CASE_DIR, "") or "")
    return Path(saved) if saved else default_case_dir()


def examiner(settings: QSettings) -> str:
    """The examiner's name for log entries and reports (the OS user name until one is set)."""
    return str(settings.value(KEY_EXAMINER, "") or "").strip() or os_user()


def has_examiner(settings: QSettings) -> bool:
    """True once the examiner has been asked (first start) and the answer kept."""
    return bool(str(settings.value(KEY_EXAMINER, "") or "").strip())


def case_reference(settings: QSettings) -> str:
    return str(settings.value(KEY_CASE_REFERENCE, "") or "").strip()


@dataclass(frozen=True)
class SettingsValues:
    """What the dialog edits."""

    examiner: str
    case_reference: str
    case_dir: Path
    default_scale: int | str  # a factor or "auto"


def read_values(settings: QSettings, scales: Sequence[int | str]) -> SettingsValues:
    from app.state import parse_scale

    scale = parse_scale(settings.value(KEY_DEFAULT_SCALE, scales[0]), scales[0])
    return SettingsValues(
        examiner=examiner(settings),
        case_reference=case_reference(settings),
        case_dir=case_dir(settings),
        default_scale=scale if scale in scales else scales[0],
    )


def write_values(settings: QSettings, values: SettingsValues) -> None:
    settings.setValue(KEY_EXAMINER, values.examiner)
    settings.setValue(KEY_CASE_REFERENCE, values.case_reference)
    if not os.environ.get(CASE_DIR_ENV):  # an override is not a choice to remember
        settings.setValue(KEY_CASE_DIR, str(values.case_dir))
    settings.setValue(KEY_DEFAULT_SCALE, str(values.default_scale))
    settings.sync()


class SettingsDialog(QDialog):
    """Edits :class:`SettingsValues`; OK is only possible with an examiner name."""

    def __init__(
        self,
        values: SettingsValues,
        scales: Sequence[int],
        first_start: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Examiner and case settings")
        self.setMinimumWidth(560)
        self.examiner_edit = QLineEdit(values.examiner)
        self.examiner_edit.setPlaceholderText("Your name, as it should appear in the case log")
        self.case_edit = QLineEdit(values.case_reference)
        self.case_edit.setPlaceholderText("e.g. the case or exhibit number (optional)")
        self.folder_edit = QLineEdit(str(values.case_dir))
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        overridden = bool(os.environ.get(CASE_DIR_ENV))
        self.folder_edit.setEnabled(not overridden)
        browse.setEnabled(not overridden)
        self.scale_box = QComboBox()
        from app.state import scale_text

        for scale in scales:
            self.scale_box.addItem(scale_text(scale), scale)
        self.scale_box.setCurrentIndex(max(0, self.scale_box.findData(values.default_scale)))

        form = QFormLayout()
        form.addRow("Examiner name:", self.examiner_edit)
        form.addRow("Case reference:", self.case_edit)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        form.addRow("Case-log folder:", row)
        form.addRow("Default scale:", self.scale_box)

        intro = QLabel(
            "Every action on the evidence (opening, enhancing, exporting, removing the AI label) "
            "is written to a tamper-evident case log under the examiner's name."
            + (
                "<br><b>Welcome.</b> Please confirm your name; it is asked only once."
                if first_start
                else ""
            )
        )
        intro.setWordWrap(True)
        note = QLabel(
            f"The case-log folder is set by the environment variable {CASE_DIR_ENV}."
            if overridden
            else "A new folder starts a new case log; the old one stays where it is."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #666666")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.examiner_edit.textChanged.connect(self._update_ok)
        self.folder_edit.textChanged.connect(self._update_ok)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self._update_ok()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Case-log folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _update_ok(self) -> None:
        ok = bool(self.examiner_edit.text().strip()) and bool(self.folder_edit.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def values(self) -> SettingsValues:
        return SettingsValues(
            examiner=self.examiner_edit.text().strip(),
            case_reference=self.case_edit.text().strip(),
            case_dir=Path(self.folder_edit.text().strip()).expanduser(),
            default_scale=self.scale_box.currentData(),
        )
