"""What is on screen follows the session (issue 28): no view keeps showing an earlier state.

The difference dialog, the model picker, History after another case-log folder, the status line
after a failed open, the case log's "NOT intact" verdict, and the batch window's progress and
cancel message.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.dialogs import settings as app_settings
from app.state import SCALES

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"


def _checked(qtbot, window) -> None:
    qtbot.waitUntil(window.fidelity_panel.has_values, timeout=60_000)


def test_difference_dialog_follows_the_output_on_screen(opened, run_job, qtbot, tmp_path):
    window = opened()
    window.set_scale(4)
    window.set_model("bicubic")
    run_job(window, window.enhance)
    _checked(qtbot, window)
    dialog = window.fidelity_panel.show_difference()
    assert dialog is not None and "Bicubic" in dialog.windowTitle() and dialog.has_image()
    window.set_model("lanczos")  # nothing computed yet for it: no output on screen
    assert not dialog.has_image() and "no output on screen" in dialog.windowTitle()
    run_job(window, window.enhance)
    _checked(qtbot, window)
    assert "Lanczos" in dialog.windowTitle() and dialog.has_image()
    # Another still: the previous file's face is not shown any more.
    other = tmp_path / "other.png"
    other.write_bytes(SAMPLE.read_bytes())
    run_job(window, lambda: window.open_file(other))
    assert not dialog.has_image()
    dialog.close()


def test_the_model_picker_names_the_output_shown(opened, run_job):
    window = opened()
    window.set_scale(4)
    window.set_model("bicubic")
    run_job(window, window.compare_all)
    window.grid_view.tile("lanczos").clicked.emit("lanczos")
    assert window.current.model_id == "lanczos"
    assert window.model_id == "lanczos"
    assert window.model_combo.currentData() == "lanczos"
    assert "Lanczos" in window.model_label.text()
    assert window.model_actions["lanczos"].isChecked()


def test_history_follows_a_new_case_log_folder(opened, run_job, qtbot, tmp_path, monkeypatch):
    window = opened()
    assert window.history_view.count() >= 1  # the "open" entry of the first log
    monkeypatch.delenv("FFE_CASE_DIR")  # the folder comes from the settings now
    values = app_settings.read_values(window.settings, SCALES)
    window.case_log.apply_settings(replace(values, case_dir=tmp_path / "other_case"))
    qtbot.waitUntil(lambda: window.history_view.count() == 0, timeout=30_000)
    assert window.caselog_state.path.parent == tmp_path / "other_case"


def test_a_failed_open_says_what_is_on_screen(opened, run_job, tmp_path):
    window = opened()
    bad = tmp_path / "evidence.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    run_job(window, lambda: window.open_file(bad))
    message = window.statusBar().currentMessage()
    assert "Reading the image" not in message
    assert "evidence.jpg was not opened" in message
    assert "astronaut_small.png is still on screen" in message


def test_not_intact_says_when_and_clears_on_a_new_check(opened, run_job, qtbot, case_log_path):
    window = opened()
    original = case_log_path.read_bytes()
    case_log_path.write_bytes(original.replace(b"Test Examiner", b"Someone Else", 1))
    run_job(window, window.verify_log)
    text = window.log_label.text()
    assert "NOT intact" in text and "checked at" in text and "verify again" in text
    case_log_path.write_bytes(original)  # the file is restored
    window.log_label.linkActivated.emit("verify")  # the link in the status bar
    qtbot.waitUntil(lambda: window.log_label.text().startswith("Case log: "), timeout=30_000)
    assert "NOT intact" not in window.log_label.text()


def _event(kind: str, done: int, total: int, eta: float | None = None):
    return SimpleNamespace(
        kind=kind, files_done=done, files_total=total, faces_done=2 * done, eta_s=eta
    )


def test_batch_progress_names_the_file_being_worked_on():
    from app.worker import batch_progress_text

    names = ["a.png", "b.png", "sub/c.png"]
    assert batch_progress_text(_event("start", 0, 3), names).startswith("File 1 of 3: a.png")
    text = batch_progress_text(_event("file", 2, 3, eta=40), names)
    assert text.startswith("File 3 of 3: sub/c.png") and "2 done" in text and "0:40 left" in text
    assert batch_progress_text(_event("done", 3, 3), names) == "Batch: 3/3 files, 6 faces"


def test_batch_cancel_message_says_what_was_done(make_window, qtbot):
    window = make_window()
    dialog = window.open_batch()
    dialog.started()
    dialog.on_progress(0, 11, "File 1 of 11: a.png")
    assert dialog.progress.maximum() == 0  # busy while the first file runs, not a fixed 0%
    dialog.on_progress(8, 11, "File 9 of 11: i.png")
    assert dialog.progress.format() == "8/11 files" and "i.png" in dialog.status.text()
    assert 8 * 1000 <= dialog.progress.value() < 9 * 1000  # and on within the ninth file
    summary = SimpleNamespace(
        cancelled=True,
        files_done=8,
        files_total=11,
        elapsed_s=95.0,
        faces=9,
        ok=7,
        no_face=1,
        errors=0,
        skipped=0,
        summary_path=Path("/out/summary.csv"),
        out_dir=Path("/out"),
        timings={},
    )
    dialog.finished(summary)
    text = dialog.status.text()
    assert "Cancelled after 8 of 11 files" in text and "remaining 3" in text
    assert "did not start" not in text
    assert dialog.progress.value() == 8 and dialog.progress.maximum() == 11
    dialog.finished(None)  # cancelled while it waited for the worker
    assert "Cancelled before the run started" in dialog.status.text()
    dialog.close()


def test_a_cancelled_batch_still_answers_with_its_summary(make_window, qtbot, run_job, tmp_path):
    from app.jobs import BatchArgs
    from app.worker import JOBS

    assert JOBS[BatchArgs].reports_cancel  # only the batch: other answers are dropped on cancel
    assert not any(spec.reports_cancel for args, spec in JOBS.items() if args is not BatchArgs)
    inputs = tmp_path / "case"
    inputs.mkdir()
    for i in range(40):
        (inputs / f"{i:02d}.png").write_bytes(SAMPLE.read_bytes())
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(tmp_path / "out"))
    dialog.scale_box.setCurrentIndex(dialog.scale_box.findData(4))
    dialog.set_chosen_models(["bicubic"])

    def start_then_cancel() -> int:
        job = window.start_batch(dialog.request())
        qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=120_000)
        dialog.cancelRequested.emit()
        return job

    run_job(window, start_then_cancel, timeout=120_000)
    text = dialog.status.text()
    assert "Cancelled after" in text and "of 40 files" in text, text
    assert "did not start" not in text
    assert 1 <= dialog.progress.value() < 40
    dialog.close()
