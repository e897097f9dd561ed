"""The case log as the examiner sees it: its state, verification, reproduction, the visible label.

The worker writes every entry (:mod:`app.worker`); this controller opens the log under the
examiner's name, shows its state in the status bar and History, offers the repair of a
half-written last line, and turns the exports' visible AI label off only once a reason for it
is in the log.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from app.controllers import Controller
from app.dialogs import settings as app_settings
from app.dialogs.settings import SettingsDialog, SettingsValues
from app.jobs import (
    CaseLogArgs,
    CaseLogState,
    LogArgs,
    RepairLogArgs,
    ReproduceArgs,
    ReproduceOutcome,
    VerifyLogArgs,
)
from app.state import ENLARGE_SCALES, scale_text
from engine import caselog

log = logging.getLogger(__name__)

MIN_REASON_CHARS = 5  # "x" is not a reason for removing the evidence label


class CaseLogController(Controller):
    def __init__(self, window) -> None:
        super().__init__(window)
        self._label_job: tuple[int, str] | None = None  # (job id, reason) while it is logged
        self._history_for: str | None = None  # the still whose history the log job brings
        window.client.logged.connect(self._on_logged)
        window.client.log_failed.connect(self._on_log_failed)
        window.log_label.setTextFormat(Qt.TextFormat.RichText)
        window.log_label.linkActivated.connect(lambda _link: self.verify_log())

    def path(self) -> Path:
        """The case log in the configured folder (see app.dialogs.settings.case_dir)."""
        return caselog.default_path(app_settings.case_dir(self.w.settings))

    def configure(self) -> int:
        """(Re)open the case log in the worker with the examiner and case from the settings."""
        self.w.log_label.setText("Case log: opening\u2026")
        self.w.log_label.setStyleSheet("")
        still = self.state.still
        args = CaseLogArgs(
            path=str(self.path()),
            examiner=app_settings.examiner(self.w.settings),
            case_reference=app_settings.case_reference(self.w.settings),
            still_sha256=None if still is None else still.sha256,
        )
        self._history_for = args.still_sha256
        return self.w.submit(args, on_result=self._ready, on_failed=self._unusable)

    def _unusable(self, error: Any) -> None:
        self.state.log_problem = "cannot be opened"
        self.update_label()
        self.errors.failure(error, "The case log cannot be used")

    def _ready(self, state: CaseLogState) -> None:
        session = self.state
        session.caselog_state = state
        session.log_entries = state.verification.entries
        session.log_problem = None
        session.log_checked = _now()
        if not state.is_new and not state.verification.ok:
            session.log_problem = "half-written" if state.truncated else "NOT intact"
        self.update_label()
        # History lists the entries of this log (another folder: another log, other entries).
        still = session.still
        if state.history is not None and still is not None and still.sha256 == self._history_for:
            self.w.history_view.set_entries(state.history, "")
        self.w.update_actions()
        if state.repaired is not None:
            self.errors.dialog(
                "Case log repaired",
                "The half-written last line was moved to "
                f"{state.repaired['details'].get('saved_to')} and the repair was logged as "
                f"entry {state.repaired.get('seq')}.\n\n{state.verification.summary()}",
            )
        elif state.truncated:
            self.offer_repair(state.verification.summary())
        elif session.log_problem:
            self.errors.dialog(
                "The case log is not intact",
                f"{state.verification.summary()}\n\nNew entries are still added, but the log's "
                "earlier content cannot be trusted. Keep this file as it is for examination.",
            )

    def offer_repair(self, summary: str) -> QMessageBox:
        """Tell the examiner the log ends half-written (a crash) and offer caselog.repair."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "The case log is damaged",
            "The case log ends with a half-written entry: the program stopped while writing it. "
            "Until it is repaired, nothing can be added to the log.\n\n"
            f"{summary}\n\nRepair moves the incomplete line to a separate file (kept, with its "
            "SHA-256 logged) and records the repair in the log.",
            QMessageBox.StandardButton.NoButton,
            self.w,
        )
        box.setObjectName("repairDialog")
        repair = box.addButton("Repair", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: button is repair and self.repair())
        box.open()
        return box

    def repair(self) -> int:
        return self.w.submit(RepairLogArgs(), on_result=self._ready)

    def _on_logged(self, job_id: int, entry: dict) -> None:
        state = self.state
        state.log_entries = max(state.log_entries, int(entry.get("seq") or 0))
        if state.log_problem == "not recording":
            state.log_problem = None
        self.update_label()
        if state.still is not None and caselog.touches(entry, state.still.sha256):
            self.w.history_view.add_entry(entry)

    def _on_log_failed(self, job_id: int, message: str, damaged: bool) -> None:
        first = self.state.log_problem != "not recording"
        self.state.log_problem = "not recording"
        self.update_label()
        if damaged:
            self.offer_repair(message)
        elif first:  # one dialog, not one per model of a comparison
            self.errors.dialog("Not recorded in the case log", message)
        else:
            self.errors.status(message)

    def update_label(self) -> None:
        state, label = self.state, self.w.log_label
        if state.caselog_state is None:
            return
        if state.log_problem:
            # A verdict is as of its check: say when, and offer the check again in one click
            # (the file may have been restored since).
            when = f" at {state.log_checked}" if state.log_checked else ""
            label.setText(
                f"\u26a0 Case log: {state.log_problem} (checked{when}) "
                "<a href='verify'>verify again</a>"
            )
            label.setStyleSheet("color: #b36b00; font-weight: bold")
        else:
            count = state.log_entries
            label.setText(f"Case log: {count} entr{'y' if count == 1 else 'ies'}")
            label.setStyleSheet("")
        label.setToolTip(f"{state.caselog_state.path}\nExaminer: {state.caselog_state.examiner}")

    # ------------------------------------------------------------------ examiner and case
    def open_settings(self, first_start: bool = False) -> SettingsDialog:
        """The examiner/case dialog (window-modal, non-blocking)."""
        values = app_settings.read_values(self.w.settings, ENLARGE_SCALES)
        if first_start and app_settings.has_examiner(self.w.settings):
            first_start = False
        dialog = SettingsDialog(values, ENLARGE_SCALES, first_start, self.w)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.values()))
        if first_start:  # asked once: a dismissed first dialog keeps the OS user name
            dialog.rejected.connect(lambda: self.apply_settings(values))
        dialog.open()
        return dialog

    def apply_settings(self, values: SettingsValues) -> None:
        """Keep the values; reopen the case log under the new name, case or folder."""
        before = app_settings.read_values(self.w.settings, ENLARGE_SCALES)
        app_settings.write_values(self.w.settings, values)
        after = app_settings.read_values(self.w.settings, ENLARGE_SCALES)
        changed = (after.examiner, after.case_reference, after.case_dir) != (
            before.examiner,
            before.case_reference,
            before.case_dir,
        )
        if changed or self.state.caselog_state is None:
            self.configure()
        self.errors.status(
            f"Examiner: {after.examiner}; case log in {after.case_dir}; "
            f"new sessions start at {scale_text(after.default_scale)}",
            10000,
        )

    # ------------------------------------------------------------------ verify and reproduce
    def verify_log(self) -> int | None:
        """Check the whole hash chain in the worker; the verdict is shown in a dialog."""
        if self.state.caselog_state is None:
            return None
        self.w.statusBar().showMessage("Verifying the case log\u2026")
        return self.w.submit(VerifyLogArgs(), on_result=self._verified)

    def _verified(self, report: Any) -> QMessageBox:
        state = self.state
        state.log_entries = report.entries
        state.log_checked = _now()
        if report.ok:
            state.log_problem = None
            text = (
                f"The case log is intact: {report.entries} entries, every line as it was written."
            )
        elif report.reason == "missing":
            if state.log_problem == "NOT intact":
                state.log_problem = None
            text = "The case log has no entries yet."
        else:
            first = report.problems[0]
            state.log_problem = "NOT intact"
            text = (
                f"The case log is NOT intact. First bad line: {first.line} ({first.kind}): "
                f"{first.message}."
            )
            if len(report.problems) > 1:
                text += f"\n{len(report.problems) - 1} further problem(s)."
        self.update_label()
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
            self.w,
        )
        box.setObjectName("verifyDialog")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def reproduce_selected(self) -> int | None:
        """Re-run the "enhance" entry selected in History (caselog.reproduce, in the worker)."""
        entry = self.w.history_view.selected_entry()
        if entry is None or entry.get("action") != "enhance":
            self.errors.status("Select an \u201center\u201d entry in History first")
            return None
        self.w.statusBar().showMessage(f"Re-running case-log entry {entry.get('seq')}\u2026")
        return self.w.submit(ReproduceArgs(entry=entry), on_result=self._reproduced)

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
            self.w,
        )
        box.setObjectName("reproduceDialog")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    # ------------------------------------------------------------------ the visible label
    def label_triggered(self, checked: bool) -> None:
        """The menu item was toggled: on is immediate; off needs a reason that is logged first."""
        if checked:
            if self.state.label_removal is not None:
                self.state.label_removal = None
                self.errors.status("Exports carry the visible AI label again", 8000)
            return
        self.w.act_label_exports.setChecked(True)  # stays on until the removal is in the log
        self.remove_label()

    def label_back_on(self) -> None:
        """Another still: a reason given for one still does not carry over to the next."""
        if self.state.label_removal is not None:
            self.state.label_removal = None
            self.w.act_label_exports.setChecked(True)
            log.info("visible export label back on for the new still")

    def remove_label(self, reason: str | None = None) -> int | None:
        """Ask why the visible label should go (QInputDialog), log it, then turn the label off.

        Returns the id of the job writing the "label_removed" entry, None when refused.
        """
        if self._label_job is not None:
            return None
        if reason is None:
            reason, ok = QInputDialog.getText(
                self.w,
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
        still = self.state.still
        if still is not None:
            fields["input_path"] = str(still.path) if still.path is not None else None
            fields["input_sha256"] = still.sha256
        job_id = self.w.submit(
            LogArgs(action="label_removed", fields=fields),
            on_result=lambda entry: self._label_logged(job_id, entry),
            on_finished=self._label_finished,
        )
        self._label_job = (job_id, reason)
        return job_id

    def _label_finished(self) -> None:
        self._label_job = None

    def _label_logged(self, job_id: int, entry: dict) -> None:
        if self._label_job is None or self._label_job[0] != job_id:
            return
        self.state.label_removal = {
            "reason": self._label_job[1],
            "examiner": entry.get("examiner"),
            "time_utc": entry.get("time_utc"),
            "case_log_seq": entry.get("seq"),
            "case_log_hash": entry.get("hash"),
        }
        self.w.act_label_exports.setChecked(False)
        self.errors.status(
            f"Exports go without the visible label (logged as entry {entry.get('seq')})", 15000
        )


def _now() -> str:
    """The local time of a check, "14:05:09", as the status bar shows it."""
    return datetime.now().strftime("%H:%M:%S")
