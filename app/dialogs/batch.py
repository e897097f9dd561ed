"""File > Batch process folder: every face of every image in a folder, through chosen models.

The dialog only collects the settings and shows what the worker reports; the run itself is
``engine.batch.run_batch`` in the engine worker (the main window submits it). The engine
refuses an output folder that is, contains or lies inside the input folder, writes every output
atomically, keeps a ``summary.csv`` with one row per (file, model) and resumes a folder it has
already partly done; faults (damaged files, no face, a full disk) are listed here as they come.

*Run on* chooses where the photos are processed (``engine.batch_exec``): this computer in the
app, a local Dask cluster of N worker processes, or an existing Dask scheduler. Dask is not
imported here (only checked for): the engine starts it in the worker when a run asks for it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.batch_progress import FileProgress
from app.state import RESTORE, parse_scale, scale_text
from app.views.common import ms_text
from engine.batch_exec import NEEDS_SOURCE, ClusterError, dask_available, parse_spec

#: The "Run on" choices: (data, text). "local" and "scheduler" need Dask (engine.batch_exec).
RUN_ON = (
    ("in-process", "This computer (in the app)"),
    ("local", "Local cluster with N workers"),
    ("scheduler", "Existing Dask scheduler at tcp://\u2026"),
)


def clock(seconds: float | None) -> str:
    """ "mm:ss" or "h:mm:ss"; "--:--" when unknown."""
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class BatchDialog(QDialog):
    """Non-modal: the analyst can look at other results while it runs. Closing it does not stop
    the run (the status bar keeps its progress and Cancel button); reopening shows it again."""

    startRequested = Signal(dict)  # in_dir, out_dir, model_ids, scale, detector, recursive, ...
    pauseToggled = Signal(bool)
    cancelRequested = Signal()

    def __init__(
        self,
        entries: Sequence,
        state: Callable[[str, int], str],
        scales: Sequence[int | str],
        settings: QSettings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch process folder")
        self.resize(640, 620)
        self._entries = list(entries)
        self._state = state
        self._settings = settings
        self._running = False
        self._out_dir: Path | None = None

        self.in_edit = QLineEdit(str(settings.value("batchIn", "")))
        self.out_edit = QLineEdit(str(settings.value("batchOut", "")))
        self.in_edit.setPlaceholderText("Folder with the stills (never modified)")
        self.out_edit.setPlaceholderText("Folder for the results (outside the input folder)")
        self.in_browse = in_browse = QPushButton("Browse\u2026")
        self.out_browse = out_browse = QPushButton("Browse\u2026")
        in_browse.clicked.connect(lambda: self._browse(self.in_edit, "Folder with the stills"))
        out_browse.clicked.connect(lambda: self._browse(self.out_edit, "Folder for the results"))
        self.recursive_box = QCheckBox("Include sub-folders")
        self.recursive_box.setChecked(settings.value("batchRecursive", True, type=bool))
        self.scale_box = QComboBox()
        self.scale_box.setToolTip(
            "Auto (recommended): per face, the largest factor that does not shrink it. A fixed "
            "factor skips the faces it would shrink (listed in summary.csv). \u00d71 restore "
            "(restoration models only, never chosen by Auto): each face's recorded pixels are "
            "cleaned at their own size and replace exactly those pixels."
        )
        for scale in scales:
            self.scale_box.addItem(scale_text(scale), scale)
        saved_scale = parse_scale(settings.value("batchScale", scales[0]), scales[0])
        if saved_scale == RESTORE:  # as in the window: x1 restore is chosen anew, never inherited
            saved_scale = scales[0]
        self.scale_box.setCurrentIndex(max(0, self.scale_box.findData(saved_scale)))
        self.scale_box.currentIndexChanged.connect(lambda _: self.refresh_models())
        self.detector_box = QComboBox()
        self.detector_box.setToolTip(
            "HOG (default): dlib's fast detector for frontal faces. Auto: HOG, then the slower CNN "
            "on a photo where HOG finds no face (small, turned or blurred faces). CNN: the CNN "
            "on every photo. The detector is part of a run's settings: a run resumes only with "
            "the one it started with."
        )
        for text, value in (("HOG", "hog"), ("Auto (HOG, then CNN)", "auto"), ("CNN", "cnn")):
            self.detector_box.addItem(text, value)
        saved_detector = str(settings.value("batchDetector", "hog"))
        self.detector_box.setCurrentIndex(max(0, self.detector_box.findData(saved_detector)))
        self.model_list = QListWidget()
        self.model_list.itemChanged.connect(lambda _: self._update_buttons())
        self.overwrite_box = QCheckBox("Overwrite existing outputs")
        self.overwrite_box.setToolTip(
            "Replace the results of another run in the output folder (its files listed in "
            "summary.csv). Off: an output folder belongs to one run, and only that run resumes "
            "in it."
        )
        self._build_run_on(settings)

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.in_edit, 1)
        row.addWidget(in_browse)
        form.addRow("Input folder:", row)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(out_browse)
        form.addRow("Output folder:", row)
        form.addRow("", self.recursive_box)
        form.addRow("", self.overwrite_box)
        form.addRow("Scale:", self.scale_box)
        form.addRow("Face detector:", self.detector_box)
        form.addRow("Models:", self.model_list)
        row = QHBoxLayout()
        row.addWidget(self.run_on_box, 1)
        row.addWidget(self.workers_box)
        row.addWidget(self.scheduler_edit, 1)
        form.addRow("Run on:", row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.file_progress = FileProgress(self.progress)  # moves within a file too
        self.status = QLabel("Choose the folders and models, then Start.")
        self.status.setWordWrap(True)
        self.faults = QListWidget()
        self.faults.setToolTip("Files that could not be processed, and why (also in summary.csv)")

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.cancel_button = QPushButton("Cancel run")
        self.open_button = QPushButton("Open output folder")
        close_button = QPushButton("Close")
        self.start_button.clicked.connect(self._start)
        self.pause_button.toggled.connect(self._pause)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.open_button.clicked.connect(self._open_output)
        close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Faults:"))
        layout.addWidget(self.faults, 1)
        layout.addLayout(buttons)
        self.in_edit.textChanged.connect(lambda _: self._update_buttons())
        self.out_edit.textChanged.connect(lambda _: self._update_buttons())
        self.refresh_models()

    # ------------------------------------------------------------------ settings
    def _build_run_on(self, settings: QSettings) -> None:
        self.run_on_box = QComboBox()
        have_dask = dask_available()
        for i, (data, text) in enumerate(RUN_ON):
            self.run_on_box.addItem(text, data)
            if data != "in-process" and not have_dask:
                item = self.run_on_box.model().item(i)
                item.setEnabled(False)
                item.setToolTip(NEEDS_SOURCE)
        self.run_on_box.setToolTip(
            "Where the photos are processed. A cluster gives the same output files; "
            "summary.csv and the case log are written by the app."
            + ("" if have_dask else f"\n{NEEDS_SOURCE}")
        )
        self.workers_box = QSpinBox()
        self.workers_box.setRange(1, 256)
        self.workers_box.setSuffix(" workers")
        self.workers_box.setValue(int(settings.value("batchWorkers", 2)))
        self.workers_box.setToolTip("Worker processes on this computer, one thread each")
        self.scheduler_edit = QLineEdit(str(settings.value("batchScheduler", "")))
        self.scheduler_edit.setPlaceholderText("tcp://HOST:8786")
        self.scheduler_edit.setToolTip(
            "A running `dask scheduler`; its workers must see the input and output folders "
            "under the same paths"
        )
        saved = str(settings.value("batchRunOn", "in-process"))
        index = self.run_on_box.findData(saved) if have_dask else 0
        self.run_on_box.setCurrentIndex(max(0, index))
        self.run_on_box.currentIndexChanged.connect(lambda _: self._update_buttons())
        self.scheduler_edit.textChanged.connect(lambda _: self._update_buttons())

    def dask(self) -> str | None:
        """The engine's ``dask`` argument: None (in the app), "local:N" or the scheduler."""
        kind = self.run_on_box.currentData()
        if kind == "local":
            return f"local:{self.workers_box.value()}"
        if kind == "scheduler":
            return self.scheduler_edit.text().strip()
        return None

    def _dask_problem(self) -> str:
        """Why the "Run on" choice cannot be used, or ""."""
        try:
            parse_spec(self.dask())
        except ClusterError as exc:
            return str(exc)
        return ""

    def scale(self) -> int | str:
        return parse_scale(self.scale_box.currentData())

    def chosen_models(self) -> list[str]:
        chosen = []
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            if (
                item.checkState() == Qt.CheckState.Checked
                and item.flags() & Qt.ItemFlag.ItemIsEnabled
            ):
                chosen.append(item.data(Qt.ItemDataRole.UserRole))
        return chosen

    def set_chosen_models(self, model_ids: Sequence[str]) -> None:
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in model_ids
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def refresh_models(self) -> None:
        """List the models for the chosen scale; those that cannot run are shown disabled."""
        saved = self._settings.value("batchModels", ["bicubic"])
        previous = (
            self.chosen_models()
            if self.model_list.count()
            else ([saved] if isinstance(saved, str) else list(saved or []))
        )
        states = {entry.id: self._state(entry.id, self.scale()) for entry in self._entries}
        installed = [model_id for model_id, state in states.items() if state == "installed"]
        if self.scale() == RESTORE and not set(previous) & set(installed):
            # As in the window: at x1 restore (no enlarging model is offered there) the first
            # restoration model is picked.
            previous = installed[:1]
        self.model_list.blockSignals(True)
        self.model_list.clear()
        for entry in self._entries:
            state = states[entry.id]
            text = entry.label
            if state != "installed":
                text += {
                    "missing": " (no trained weights)",
                    "not offered": f" (not offered at {scale_text(self.scale())})",
                    "unknown": " (checking weights\u2026)",
                }.get(state, " (weights invalid)")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            item.setToolTip(entry.citation)
            flags = Qt.ItemFlag.ItemIsUserCheckable
            if state == "installed":
                flags |= Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags)
            on = state == "installed" and entry.id in previous
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.model_list.addItem(item)
        self.model_list.blockSignals(False)
        checked = [self.model_list.item(i) for i in range(self.model_list.count())]
        checked = [item for item in checked if item.checkState() == Qt.CheckState.Checked]
        if checked:  # e.g. x1 restore's model, last in the list: show what will run
            self.model_list.scrollToItem(checked[0])
        self._update_buttons()

    def _browse(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    def _update_buttons(self) -> None:
        ready = bool(
            self.in_edit.text().strip() and self.out_edit.text().strip() and self.chosen_models()
        )
        kind = self.run_on_box.currentData()
        self.workers_box.setVisible(kind == "local")
        self.scheduler_edit.setVisible(kind == "scheduler")
        problem = self._dask_problem() if kind == "scheduler" else ""
        self.scheduler_edit.setStyleSheet("color: #b00020;" if problem else "")
        self.start_button.setToolTip(problem)
        self.start_button.setEnabled(ready and not problem and not self._running)
        self.pause_button.setEnabled(self._running)
        self.cancel_button.setEnabled(self._running)
        self.open_button.setEnabled(self._out_dir is not None and self._out_dir.is_dir())
        for widget in (  # a running batch's folders and settings cannot change under it
            self.in_edit,
            self.in_browse,
            self.out_edit,
            self.out_browse,
            self.scale_box,
            self.detector_box,
            self.model_list,
            self.recursive_box,
            self.overwrite_box,
            self.run_on_box,
            self.workers_box,
            self.scheduler_edit,
        ):
            widget.setEnabled(not self._running)

    # ------------------------------------------------------------------ run
    def request(self) -> dict:
        """The run the dialog describes (also what :attr:`startRequested` carries)."""
        return {
            "in_dir": self.in_edit.text().strip(),
            "out_dir": self.out_edit.text().strip(),
            "model_ids": self.chosen_models(),
            "scale": self.scale(),
            "detector": self.detector_box.currentData(),
            "recursive": self.recursive_box.isChecked(),
            "overwrite": self.overwrite_box.isChecked(),
            "dask": self.dask(),
        }

    def _start(self) -> None:
        request = self.request()
        s = self._settings
        s.setValue("batchIn", request["in_dir"])
        s.setValue("batchOut", request["out_dir"])
        s.setValue("batchModels", request["model_ids"])
        s.setValue("batchScale", request["scale"])
        s.setValue("batchRecursive", request["recursive"])
        s.setValue("batchDetector", request["detector"])
        s.setValue("batchRunOn", self.run_on_box.currentData())  # (overwrite is never kept)
        s.setValue("batchWorkers", self.workers_box.value())
        s.setValue("batchScheduler", self.scheduler_edit.text().strip())
        self.startRequested.emit(request)

    def _pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.status.setText(
            "Paused (the current image finishes first)" if paused else "Running\u2026"
        )
        self.file_progress.set_paused(paused)
        self.pauseToggled.emit(paused)

    def _open_output(self) -> None:
        if self._out_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._out_dir)))

    def is_running(self) -> bool:
        return self._running

    def started(self) -> None:
        """The main window accepted the run and gave it to the worker."""
        self._running = True
        self._out_dir = Path(self.out_edit.text().strip()).expanduser()
        self.faults.clear()
        self.file_progress.reset()
        self.progress.setRange(0, 0)  # busy until the file count is known
        self.status.setText(
            "Listing the files and loading the models\u2026"
            if self.dask() is None
            else "Starting the Dask cluster and loading the models\u2026"
        )
        self.pause_button.setChecked(False)
        self._update_buttons()

    def on_progress(self, done: int, total: int, message: str) -> None:
        """``message`` names the file being worked on; the bar moves within it too
        (:class:`app.batch_progress.FileProgress`: a busy bar for the first file)."""
        self.file_progress.update(done, total)
        if not self.pause_button.isChecked():
            self.status.setText(message)

    def on_fault(self, event) -> None:
        """A BatchEvent of kind "fault": one file (or the summary) had a problem."""
        where = f"{event.file}: " if event.file else ""
        item = QListWidgetItem(f"{event.status or 'fault'} \u2014 {where}{event.message}")
        item.setToolTip(event.message)
        self.faults.addItem(item)

    def finished(self, summary=None, message: str | None = None) -> None:
        """The run ended: ``summary`` (an engine BatchSummary, also of a cancelled run), the
        error ``message``, or neither (cancelled before it started)."""
        self._running = False
        self.pause_button.setChecked(False)
        self.file_progress.stop()
        self.progress.setRange(0, 1)
        self.progress.setFormat("%v/%m files")
        if summary is None:
            self.progress.setValue(0)
            if message is None:  # cancelled while it waited for the worker
                self.status.setText("<b>Cancelled before the run started</b>: nothing was written.")
            else:
                self.status.setText(f"<b>The run failed:</b> {html.escape(message)}")
        else:
            self.progress.setRange(0, max(1, summary.files_total))
            self.progress.setValue(summary.files_done)
            where = html.escape(str(summary.summary_path or summary.out_dir))
            if summary.cancelled:
                left = summary.files_total - summary.files_done
                head = (
                    f"<b>Cancelled after {summary.files_done} of {summary.files_total} files</b>"
                    f" ({clock(summary.elapsed_s)}). The outputs of the finished files and "
                    "summary.csv are kept; start the same run again to do the remaining "
                    f"{left} (finished files are skipped).<br>"
                )
            else:
                head = (
                    f"<b>Done</b>: {summary.files_done}/{summary.files_total} files in "
                    f"{clock(summary.elapsed_s)} ({html.escape(summary.executor)}); "
                )
            self.status.setText(
                head + f"{summary.faces} faces; {summary.ok} ok, "
                f"{summary.no_face} without a face, {summary.errors} errors, {summary.skipped} "
                f"already done (resumed).<br>Summary: {where}"
                + (
                    f"<br>Model time {ms_text(summary.timings.get('model', 0) * 1000)}"
                    if summary.timings
                    else ""
                )
            )
            self._out_dir = Path(summary.out_dir)
        self._update_buttons()
