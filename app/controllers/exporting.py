"""Outputs: PNG exports (with the visible label), the case report and batch runs.

The records are the engine's (:mod:`engine.export`); this controller asks where, and sends
the job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from app.controllers import Controller
from app.dialogs import settings as app_settings
from app.dialogs.batch import BatchDialog
from app.jobs import BatchArgs, ExportArgs, ExportOutcome, ReportArgs, ReportOutcome
from app.state import SCALES, result_key, scale_text
from app.views.common import AI_LABEL, label_strip, output_label
from app.worker import same_file
from engine import export as records
from engine.export import fused_frames


def full_scale(results: list) -> int:
    """The enlargement of a full image holding ``results`` (engine.enhance.paste_all's rule)."""
    from engine.enhance import paste_scale

    scales = [
        r.scale if getattr(r, "plan", None) is None else paste_scale(r.plan)
        for r in results
        if getattr(r, "plan", None) is None or not r.plan.shrinks
    ]
    return max(scales, default=results[0].scale)


class ExportController(Controller):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.batch_dialog: BatchDialog | None = None
        self.batch_job: int | None = None

    # ------------------------------------------------------------------ PNG exports
    def export_dialog(self, role: str) -> None:
        state = self.state
        if state.current is None or state.still is None:
            self.errors.status("Enhance a face first")
            return
        r = state.current
        stem = Path(state.still.name or "still").stem
        name = records.result_output_name(stem, r, role)
        folder = str(self.w.settings.value("lastExportDir", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(
            self.w,
            "Export enhanced face" if role == "face" else "Export full image",
            str(Path(folder) / name),
            "PNG image (*.png)",
        )
        if path:
            self.export(role, path)

    def export(self, role: str, path: str | Path) -> int | None:
        """Write the current result ("face" or "full") as PNG (worker); never over the input."""
        state = self.state
        if state.current is None or state.still is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = (
                path.with_suffix(path.suffix + ".png") if path.suffix else path.with_suffix(".png")
            )
        if same_file(path, state.still.path):
            self.errors.dialog(
                "Export refused",
                f"{path} is the evidence file that was opened. "
                "Outputs are never written over the input; choose another name.",
            )
            return None
        self.w.settings.setValue("lastExportDir", str(path.parent))
        result = state.current
        entry = state.entry(result.model_id)
        label = output_label(entry.id, entry.paper)
        visible = self.w.act_label_exports.isChecked() or state.label_removal is None
        # A full image: every face of this still enhanced with the same model and scale asked.
        asked = result_key(result)[2]
        others = [
            r
            for (index, model_id, scale), r in sorted(
                state.results.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))
            )
            if model_id == result.model_id and scale == asked and index != result.face_index
        ]
        record = records.export_record(
            result,
            role,
            visible_label=visible,
            label=label,
            app_label=AI_LABEL,
            examiner=app_settings.examiner(self.w.settings),
            label_removed=state.label_removal,
            others=others if role == "full" else (),
        )
        if role == "face":
            pixels: dict[str, Any] = {"rgb": result.sr}
            width = result.sr.shape[1]
        else:
            pixels = {"still": state.still, "results": [result, *others]}
            width = state.still.width * full_scale([result, *others])
        strip = None
        if visible:
            lines = [label, f"{entry.label} {scale_text(result.scale)}"]
            if getattr(result, "fusion", None) is not None:  # the frames, in the picture too
                used = [f["index"] for f in fused_frames(result)["fusion"]["frames_used"]]
                lines.append(f"fused from {len(used)} frames")
                if role == "full":  # wide enough to list them (a face's provenance does)
                    lines[-1] += f": {', '.join(map(str, used))}"
            if role == "full":  # the worker outlines the pasted faces (app.views.common)
                lines[1] += " \u00b7 outlined: the region the model replaced"
            strip = label_strip(width, lines)
        self.w.statusBar().showMessage(f"Saving {path.name}\u2026")
        args = ExportArgs(
            path=str(path),
            forbidden=str(state.still.path) if state.still.path is not None else None,
            strip=strip,
            text=records.export_png_text(record),
            role=role,
            log_fields=records.export_log_fields(state.still, result, record),
            **pixels,
        )
        return self.w.submit(args, on_result=self._exported)

    def _exported(self, outcome: ExportOutcome) -> None:
        logged = "" if outcome.log_entry is not None else "; NOT in the case log"
        self.errors.status(
            f"Saved {outcome.path} (SHA-256 {outcome.sha256[:16]}\u2026){logged}", 15000
        )

    # ------------------------------------------------------------------ comparison
    def comparison_results(self) -> list:
        """The outputs a comparison shows: every model's for this face and scale on the grid
        page, else the output on screen."""
        state = self.state
        if self.w.tabs.currentIndex() == 2:  # the grid of all models
            return [
                r
                for (f, _, s), r in state.results.items()
                if f == state.face_index and s == state.scale
            ]
        return [] if state.current is None else [state.current]

    def comparison_dialog(self) -> None:
        if not self.comparison_results() or self.state.still is None:
            self.errors.status("Enhance a face (or compare all models) first")
            return
        stem = Path(self.state.still.name or "still").stem
        folder = str(self.w.settings.value("lastExportDir", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(
            self.w,
            "Export comparison",
            str(Path(folder) / f"{stem}_face{(self.state.face_index or 0) + 1}_comparison.png"),
            "PNG image (*.png)",
        )
        if path:
            self.export_comparison(path)

    def export_comparison(self, path: str | Path) -> int | None:
        """The comparison on screen as one labelled PNG (app.views.comparison), logged."""
        from app.views.comparison import Tile, comparison_image
        from engine import imaging, resolution

        state, results = self.state, self.comparison_results()
        if not results or state.still is None:
            return None
        path = Path(path).with_suffix(".png")
        if same_file(path, state.still.path):
            self.errors.dialog("Export refused", f"{path} is the evidence file that was opened.")
            return None
        first = results[0]
        if getattr(first, "crop_box", None) is not None:  # x1 restore: it read the recorded pixels
            tiles = [
                Tile(first.lr, "Recorded pixels (model input)",
                     f"{first.lr.shape[1]}\u00d7{first.lr.shape[0]} px, not resampled"),
            ]  # fmt: skip
        else:
            crop, _ = resolution.evidence_crop(state.still.rgb, state.faces[first.face_index])
            side = first.sr.shape[0]
            tiles = [
                Tile(crop, "Recorded pixels",
                     f"{crop.shape[1]}\u00d7{crop.shape[0]} px, as recorded"),
                Tile(imaging.resize(first.lr, side, side, "nearest"), "Model input",
                     f"resampled to {first.lr.shape[0]} px"),
            ]  # fmt: skip
        for r in results:
            entry = state.entry(r.model_id)
            tiles.append(
                Tile(r.sr, entry.label, scale_text(r.scale), output_label(entry.id, entry.paper))
            )
        still = state.still
        header = [
            f"{still.name} \u00b7 face {first.face_index + 1} \u00b7 scale {state.scale}",
            f"SHA-256 {still.sha256}",
            f"Examiner {app_settings.examiner(self.w.settings)} \u00b7 {AI_LABEL}: "
            "enhanced faces are not evidence of identity",
        ]
        rgb = comparison_image(header, tiles)
        fields = {
            "input_path": str(still.path) if still.path is not None else None,
            "input_sha256": still.sha256,
            "parameters": {
                "role": "comparison",
                "face_index": int(first.face_index),
                "models": [r.model_id for r in results],
                "scale": str(state.scale),
            },
        }
        text = {
            "Description": f"{AI_LABEL}. Comparison of " + ", ".join(fields["parameters"]["models"])
        }
        self.w.settings.setValue("lastExportDir", str(path.parent))
        args = ExportArgs(
            path=str(path),
            forbidden=str(still.path) if still.path is not None else None,
            rgb=rgb,
            text=text,
            role="comparison",
            log_fields=fields,
        )
        return self.w.submit(args, on_result=self._exported)

    # ------------------------------------------------------------------ case report
    def report_dialog(self) -> None:
        still = self.state.still
        if still is None:
            self.errors.status("Open a still first")
            return
        stem = Path(still.name or "still").stem
        settings = self.w.settings
        folder = str(settings.value("lastReportDir", settings.value("lastExportDir", "")))
        folder = folder or str(Path.home())
        path, _ = QFileDialog.getSaveFileName(
            self.w,
            "Export case report (HTML and PDF)",
            str(Path(folder) / f"{stem}_case_report.html"),
            "HTML report (*.html)",
        )
        if path:
            self.export_report(path)

    def report_groups(self) -> list[tuple[str, list, dict]]:
        """engine.export.report_groups for this session's results and checks."""
        order = [e.id for e in self.state.entries]
        return records.report_groups(self.state.results.values(), self.state.model_fidelity, order)

    def export_report(self, path: str | Path) -> int | None:
        """Write ``path`` (.html) and the same name with .pdf (worker); never over the input.

        Outputs whose fidelity checks are still missing get them first; the report is then
        written when they arrive (``reportWritten`` says when).
        """
        state, fidelity = self.state, self.w.fidelity
        if state.still is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".html":
            path = path.with_name(path.name + ".html")
        targets = [path.with_suffix(".html"), path.with_suffix(".pdf")]
        if any(same_file(t, state.still.path) for t in targets):
            self.errors.dialog(
                "Report refused",
                f"{path.stem} would be written over the evidence file that was opened. "
                "Choose another name.",
            )
            return None
        if any(same_file(t, self.w.case_log.path()) for t in targets):
            self.errors.dialog("Report refused", "That is the case log. Choose another name.")
            return None
        self.w.settings.setValue("lastReportDir", str(path.parent))
        missing = [r for key, r in state.results.items() if key not in state.model_fidelity]
        pending = fidelity.pending()
        todo: dict[tuple, list] = {}
        for r in missing:
            key = result_key(r)
            if key not in pending:
                todo.setdefault((key[0], key[2]), []).append(r)
        for group in todo.values():
            fidelity.request(group)
        if fidelity.jobs:
            fidelity.then = lambda: self.export_report(path)
            self.w.statusBar().showMessage("Finishing the fidelity checks for the report\u2026")
            return None
        self.w.statusBar().showMessage(f"Writing {path.name} and its PDF\u2026")
        args = ReportArgs(
            path=str(path),
            still=state.still,
            groups=self.report_groups(),
            examiner=app_settings.examiner(self.w.settings),
            case_reference=app_settings.case_reference(self.w.settings),
            forbidden=str(state.still.path) if state.still.path is not None else None,
            faces=len(state.faces),
        )
        return self.w.submit(args, on_result=self._report_written)

    def _report_written(self, outcome: ReportOutcome) -> None:
        names = ", ".join(p.name for p, _ in outcome.files)
        verdict = ""
        if outcome.verification is not None:
            verdict = " (case log intact)" if outcome.verification.ok else " (case log NOT intact)"
        self.errors.status(f"Case report written: {names}{verdict}", 20000)
        self.w.reportWritten.emit(outcome)

    # ------------------------------------------------------------------ batch
    def open_batch(self) -> BatchDialog:
        """Show the (single, non-modal) batch window."""
        if self.batch_dialog is None:
            dialog = BatchDialog(
                self.state.entries, self.state.model_state, SCALES, self.w.settings, self.w
            )
            dialog.startRequested.connect(self.start_batch)
            dialog.pauseToggled.connect(
                lambda paused: self.batch_job and self.w.client.pause(self.batch_job, paused)
            )
            dialog.cancelRequested.connect(
                lambda: self.batch_job and self.w.client.cancel(self.batch_job)
            )
            self.batch_dialog = dialog
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def start_batch(self, request: dict) -> int | None:
        """Run engine.batch in the worker with a pausable token; progress goes to the dialog."""
        if self.batch_job is not None:
            return None
        self.batch_job = self.w.submit(
            BatchArgs(**request),
            on_progress=self._batch_progress,
            on_partial=self._batch_fault,
            on_result=self._batch_done,
            on_failed=self._batch_failed,
            on_cancelled=self._batch_cancelled,
            on_finished=self._batch_finished,
        )
        if self.batch_dialog is not None:
            self.batch_dialog.started()
        return self.batch_job

    def _batch_progress(self, done: int, total: int, message: str) -> None:
        if self.batch_dialog is not None:
            self.batch_dialog.on_progress(done, total, message)

    def _batch_fault(self, event: Any) -> None:
        if self.batch_dialog is not None:
            self.batch_dialog.on_fault(event)

    def _batch_done(self, summary: Any) -> None:
        if self.batch_dialog is not None:
            self.batch_dialog.finished(summary)
        head = "Batch cancelled" if summary.cancelled else "Batch done"
        self.errors.status(
            f"{head}: {summary.files_done}/{summary.files_total} files, {summary.errors} "
            f"error(s); summary in {summary.summary_path or summary.out_dir}",
            30000,
        )

    def _batch_failed(self, error: Any) -> None:
        if self.batch_dialog is None:
            self.errors.failure(error, "The batch run did not start")
            return
        self.batch_dialog.finished(None, error.full())  # shown in the dialog the run belongs to
        self.errors.status("The batch run did not start: see the batch window")

    def _batch_cancelled(self) -> None:
        if self.batch_dialog is not None:
            self.batch_dialog.finished(None)

    def _batch_finished(self) -> None:
        self.batch_job = None
