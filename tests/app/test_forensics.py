"""Forensic integrity in the GUI: case log and History dock, verification, reproduction, the
visible label and its logged removal, the fidelity panel, the case report, the settings."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QInputDialog, QMessageBox

from app.dialogs.settings import SettingsDialog, os_user
from app.views.common import INTERPOLATED_LABEL
from engine import registry, weights

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"
REASON = "Printed for the lab's side-by-side comparison sheet only"


def log_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def dialog_named(window, name: str) -> QMessageBox | None:
    boxes = [
        b for b in window.findChildren(QMessageBox) if b.objectName() == name and b.isVisible()
    ]
    return boxes[-1] if boxes else None


def wait_fidelity(qtbot, window) -> None:
    """Until the fidelity checks of the output on screen are shown (computed in the worker)."""
    qtbot.waitUntil(window.fidelity_panel.has_values, timeout=60_000)


@pytest.fixture
def enhanced(opened, run_job, tmp_path):
    """A copy of the sample opened as evidence and its first face enhanced with bicubic x4."""

    def make(name: str = "evidence.png", **kwargs):
        evidence = tmp_path / name
        shutil.copyfile(SAMPLE, evidence)
        window = opened(evidence, **kwargs)
        window.set_scale(4)
        window.set_model("bicubic")
        run_job(window, window.enhance)
        return window, evidence

    return make


def test_open_and_enhance_are_logged_and_shown_in_history(enhanced, run_job, case_log_path):
    window, evidence = enhanced()
    entries = log_entries(case_log_path)
    assert [e["action"] for e in entries] == ["open", "enhance"]
    sha = hashlib.sha256(evidence.read_bytes()).hexdigest()
    assert all(e["input_sha256"] == sha and e["examiner"] == "Test Examiner" for e in entries)
    enhance = entries[1]
    assert enhance["model_id"] == "bicubic" and enhance["scale"] == 4
    assert enhance["parameters"]["face"]["landmarks"]  # what reproduce needs to re-run the crop
    assert len(enhance["details"]["pixels_sha256"]) == 64
    # The dock: newest first, with time, action, model, scale.
    history = window.history_view
    assert history.count() == 2
    time_text, action, model, scale, _ = history.row_texts(0)
    assert (action, model, scale) == ("enhance", "Bicubic", "\u00d74")
    assert time_text[:2] == "20" and ":" in time_text
    assert history.row_texts(1)[1] == "open"
    assert window.log_label.text() == "Case log: 2 entries"
    # Opened again, the still brings its history from the log: the new open, then the old ones.
    run_job(window, lambda: window.open_file(evidence))
    assert [history.row_texts(i)[1] for i in range(history.count())] == [
        "open",
        "enhance",
        "open",
    ]


def test_verify_reports_intact_then_the_first_edited_line(enhanced, run_job, case_log_path):
    window, _ = enhanced()
    run_job(window, window.verify_log)
    box = dialog_named(window, "verifyDialog")
    assert box is not None and "intact: 2 entries" in box.text()
    last_line = case_log_path.read_bytes().splitlines()[-1]
    assert hashlib.sha256(last_line).hexdigest() in box.text()  # the chain head
    box.close()
    # Someone changes the examiner of the first entry.
    lines = case_log_path.read_text("utf-8").splitlines(keepends=True)
    lines[0] = lines[0].replace("Test Examiner", "Someone Else")
    case_log_path.write_text("".join(lines), "utf-8")
    run_job(window, window.verify_log)
    box = dialog_named(window, "verifyDialog")
    assert box is not None
    assert "NOT intact. First bad line: 1 (edited)" in box.text()
    assert "NOT intact" in window.log_label.text()
    box.close()


def test_reproduce_the_selected_enhancement(enhanced, run_job, case_log_path):
    window, evidence = enhanced()
    assert not window.act_reproduce.isEnabled()  # nothing selected yet
    window.history_view.select_row(1)  # the "open" entry cannot be re-run
    assert not window.act_reproduce.isEnabled()
    window.history_view.select_row(0)
    assert window.act_reproduce.isEnabled()
    run_job(window, window.reproduce_selected)
    box = dialog_named(window, "reproduceDialog")
    assert box is not None and "reproduced" in box.text() and "NOT" not in box.text()
    entry = log_entries(case_log_path)[-1]
    assert entry["action"] == "reproduce" and entry["details"]["ok"] is True
    assert entry["details"]["entry_seq"] == 2
    assert window.history_view.row_texts(0)[1] == "reproduce"
    box.close()
    # The evidence file changes on disk: the same entry no longer reproduces, and says why.
    evidence.write_bytes(evidence.read_bytes() + b"appended")
    window.history_view.select_row(1)  # the enhancement again (the reproduce entry is on top)
    run_job(window, window.reproduce_selected)
    box = dialog_named(window, "reproduceDialog")
    assert box is not None and "was NOT reproduced" in box.text()
    assert "not the same file" in box.text()
    assert log_entries(case_log_path)[-1]["details"]["ok"] is False
    box.close()


def test_export_with_the_label_carries_provenance_and_is_logged(enhanced, run_job, tmp_path):
    window, evidence = enhanced()
    assert window.act_label_exports.isChecked()  # on by default
    out = tmp_path / "out"
    out.mkdir()
    run_job(window, lambda: window.export("face", out / "face.png"))
    data = (out / "face.png").read_bytes()
    with Image.open(out / "face.png") as image:
        assert image.height > 128  # the red strip below the 128 px face
        strip = np.asarray(image.convert("RGB"))[130:, :, :]
        assert strip[..., 0].mean() > 120 and strip[..., 1].mean() < 100  # red
        record = json.loads(image.text["ffe-provenance"])
        assert "ffe-label-removed" not in image.text
    assert record["input"]["sha256"] == window.still.sha256
    assert record["export"]["visible_label"] is True
    assert record["export"]["label"] == INTERPOLATED_LABEL
    assert record["export"]["examiner"] == "Test Examiner"
    entries = log_entries(window.case_log_path())
    export = entries[-1]
    assert export["action"] == "export"
    assert export["outputs"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    # The face pixels without the strip are the ones the enhance entry logged.
    assert export["details"]["image_pixels_sha256"] == entries[1]["details"]["pixels_sha256"]
    assert window.history_view.row_texts(0)[1] == "export"
    assert "face.png" in window.history_view.row_texts(0)[4]


def test_label_removal_needs_a_reason_which_is_logged_and_embedded(
    enhanced, run_job, qtbot, monkeypatch, tmp_path
):
    window, _ = enhanced()
    log_path = window.case_log_path()
    asked: list[str] = []

    def answer(text):
        def get_text(parent, title, label, *args, **kwargs):
            asked.append(title)
            return text, True

        monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))

    answer("   ")
    window.act_label_exports.trigger()  # the menu item: off
    assert asked == ["Remove the visible AI label"]
    assert window.act_label_exports.isChecked()  # refused: still on
    box = dialog_named(window, "errorDialog")
    assert box is not None and "needs a reason" in box.text()
    box.close()
    assert "label_removed" not in [e["action"] for e in log_entries(log_path)]

    answer(REASON)
    window.act_label_exports.trigger()
    assert window.act_label_exports.isChecked()  # still on until the entry is written
    qtbot.waitUntil(lambda: not window.act_label_exports.isChecked(), timeout=30_000)
    entry = log_entries(log_path)[-1]
    assert entry["action"] == "label_removed" and entry["details"]["reason"] == REASON
    assert entry["input_sha256"] == window.still.sha256
    assert window.history_view.row_texts(0)[1] == "label removed"

    out = tmp_path / "out"
    out.mkdir()
    run_job(window, lambda: window.export("face", out / "face.png"))
    with Image.open(out / "face.png") as image:
        assert image.size == (128, 128)  # no strip
        assert image.text["ffe-label-removed"] == REASON
        assert image.text["Disclaimer"].startswith("AI-enhanced")  # still in the metadata
        record = json.loads(image.text["ffe-provenance"])
    removed = record["export"]["label_removed"]
    assert removed["reason"] == REASON and removed["case_log_seq"] == entry["seq"]
    export = log_entries(log_path)[-1]
    assert export["parameters"]["visible_label"] is False
    assert export["details"]["label_removed"]["reason"] == REASON

    # Back on without a question; opening another still also turns it back on.
    window.act_label_exports.trigger()
    assert window.act_label_exports.isChecked() and window.label_removal is None


def test_fidelity_panel_shows_values_thresholds_and_meanings(enhanced, qtbot):
    window, _ = enhanced()
    wait_fidelity(qtbot, window)
    rows = {row["name"]: row for row in window.fidelity_panel.rows()}
    assert set(rows) == {"consistency", "drift", "agreement", "resolution"}
    # the small sample's 32 px face fits x4's input: the panel says nothing was shrunk
    assert rows["resolution"]["status"] == "pass" and rows["resolution"]["value"] == "not shrunk"
    assert "saw every recorded pixel" in rows["resolution"]["meaning"]
    consistency = rows["consistency"]
    assert consistency["value"].endswith(" dB") and float(consistency["value"][:-3]) > 30
    # the small sample is a clean lossless PNG: the stricter line (engine.fidelity)
    assert consistency["threshold"] == "warn below 39.5 dB" and consistency["status"] == "pass"
    assert "stricter for clean" in consistency["meaning"]
    assert "clean lossless evidence" in consistency["meaning"]  # the detail says which line
    assert consistency["meaning"].startswith("Shrunk back to the input's size")
    assert rows["drift"]["threshold"] == "warn above 0.1"
    assert "eye dist" in rows["drift"]["value"]
    # Bicubic alone has nothing to agree with (its output is the enlarged input): not a pass.
    assert rows["agreement"]["status"] == "unavailable"
    assert "nothing to compare with" in rows["agreement"]["meaning"]
    assert window.fidelity_panel.matrix_size() == 0
    dialog = window.fidelity_panel.show_difference()
    assert dialog is not None and dialog.isVisible()
    assert dialog.view.scene().items()  # the difference image
    dialog.close()


def test_compare_all_adds_the_agreement_matrix(enhanced, run_job, qtbot):
    window, _ = enhanced()
    run_job(window, window.compare_all)
    qtbot.waitUntil(lambda: bool(window.grid_view.tile("lanczos").fidelity()), timeout=60_000)
    assert "fidelity checks pass" in window.grid_view.tile("lanczos").fidelity()
    window.grid_view.tile("lanczos").clicked.emit("lanczos")
    wait_fidelity(qtbot, window)
    # the enlarged input plus every model with weights at x4 (bicubic, lanczos, trained ones)
    runnable = [e for e in registry.MODELS if 4 in e.scales and weights.status(e, 4) == "installed"]
    assert window.fidelity_panel.matrix_size() == 1 + len(runnable)
    rows = {row["name"]: row for row in window.fidelity_panel.rows()}
    assert rows["agreement"]["status"] == "pass" and float(rows["agreement"]["value"]) < 0.55


def test_case_report_writes_html_and_pdf_and_is_logged(enhanced, qtbot, tmp_path):
    window, evidence = enhanced()
    out = tmp_path / "reports"
    out.mkdir()
    # Forget any fidelity checks that already arrived, so that, however fast the worker was,
    # the report has checks to wait for (and must not be written without them).
    window.model_fidelity.clear()
    with qtbot.waitSignal(window.reportWritten, timeout=60_000) as blocker:
        assert window.export_report(out / "case 42") is None
    html_path, pdf_path = out / "case 42.html", out / "case 42.pdf"
    assert [p for p, _ in blocker.args[0].files] == [html_path, pdf_path]
    page = html_path.read_text("utf-8")
    assert window.still.sha256 in page and "Data consistency" in page
    assert "INTACT" in page and "Test Examiner" in page
    assert "No fidelity checks were computed" not in page and "PASS" in page
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    entry = log_entries(window.case_log_path())[-1]
    assert entry["action"] == "report"
    assert [o["sha256"] for o in entry["outputs"]] == [
        hashlib.sha256(html_path.read_bytes()).hexdigest(),
        hashlib.sha256(pdf).hexdigest(),
    ]


def test_one_model_at_two_scales_gets_one_report_per_scale(enhanced, run_job, qtbot, tmp_path):
    window, _ = enhanced()
    wait_fidelity(qtbot, window)
    window.set_scale(8)
    assert not window.fidelity_panel.has_values()  # no x8 output yet: no stale x4 checks
    # x8 shrinks the 32 px face 2x: nothing runs before the analyst says so
    assert window.enhance() is None
    box = window.findChild(QMessageBox, "shrinkDialog")
    assert box is not None and "shrinks this face 1.98x" in box.text()
    anyway = next(b for b in box.buttons() if b.text() == "Enhance anyway")
    anyway.click()
    qtbot.waitUntil(lambda: (0, "bicubic", 8) in window.results, timeout=60_000)
    wait_fidelity(qtbot, window)
    shrink = window.model_fidelity[(0, "bicubic", 8)][0].resolution
    assert shrink.status == "warn" and "shrunk 1.98x" in shrink.detail
    groups = window.report_groups()
    assert [(suffix, [r.scale for r in results]) for suffix, results, _ in groups] == [
        ("_x4", [4]),
        ("_x8", [8]),
    ]
    for _, results, fidelity in groups:  # each report carries its own scale's checks
        assert (
            fidelity[0].models["bicubic"]
            is window.model_fidelity[(0, "bicubic", results[0].scale)][0]
        )
    with qtbot.waitSignal(window.reportWritten, timeout=60_000) as blocker:
        window.export_report(tmp_path / "report.html")
    names = [p.name for p, _ in blocker.args[0].files]
    assert names == ["report_x4.html", "report_x4.pdf", "report_x8.html", "report_x8.pdf"]


def test_cancel_leaves_the_case_log_alone(make_window, qtbot, run_job):
    window = make_window()
    window.cancel()  # Esc while the engine starts: the case log must still open
    qtbot.waitUntil(lambda: window.caselog_state is not None, timeout=180_000)
    run_job(window, lambda: window.open_file(SAMPLE))
    assert log_entries(window.case_log_path())[-1]["action"] == "open"


def test_case_report_never_replaces_the_input(enhanced, tmp_path):
    window, evidence = enhanced("evidence.pdf")  # a PNG with an unlucky name
    before = evidence.read_bytes()
    assert window.export_report(tmp_path / "evidence.html") is None
    box = dialog_named(window, "errorDialog")
    assert box is not None and "evidence file" in box.text()
    box.close()
    assert evidence.read_bytes() == before and not (tmp_path / "evidence.html").exists()


def test_a_half_written_log_is_reported_and_repaired(make_window, qtbot, run_job, case_log_path):
    from engine.caselog import CaseLog

    case_log_path.parent.mkdir(parents=True)
    CaseLog(case_log_path, examiner="Before").append("note", details={"text": "earlier"})
    with open(case_log_path, "ab") as f:
        f.write(b'{"action":"enhance","exam')  # the program died here
    window = make_window()
    qtbot.waitUntil(lambda: dialog_named(window, "repairDialog") is not None, timeout=180_000)
    box = dialog_named(window, "repairDialog")
    assert "half-written" in box.text()
    assert "half-written" in window.log_label.text()
    repair = next(b for b in box.buttons() if b.text() == "Repair")
    repair.click()
    qtbot.waitUntil(lambda: window.caselog_state.repaired is not None, timeout=30_000)
    assert window.caselog_state.verification.ok
    entries = log_entries(case_log_path)
    assert [e["action"] for e in entries] == ["note", "repaired"]
    saved = Path(entries[1]["details"]["saved_to"])
    assert saved.read_bytes() == b'{"action":"enhance","exam'
    assert window.log_label.text() == "Case log: 2 entries"
    done = dialog_named(window, "errorDialog")
    assert done is not None and "repaired" in done.windowTitle()
    done.close()


def test_first_start_asks_the_examiner_once(make_window, qtbot, run_job, tmp_path):
    fresh = QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat)
    window = make_window(settings=fresh)
    qtbot.waitUntil(lambda: window.findChild(SettingsDialog) is not None, timeout=10_000)
    dialog = window.findChild(SettingsDialog)
    assert dialog.examiner_edit.text() == os_user()
    assert not dialog.folder_edit.isEnabled()  # FFE_CASE_DIR decides in tests
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.examiner_edit.setText("  ")
    assert not ok.isEnabled()  # a name is required
    dialog.examiner_edit.setText("Dr. A. Analyst")
    dialog.case_edit.setText("CR-2024-0117")
    assert ok.isEnabled()
    ok.click()
    assert fresh.value("examiner") == "Dr. A. Analyst"
    qtbot.waitUntil(
        lambda: (
            window.caselog_state is not None and window.caselog_state.examiner == "Dr. A. Analyst"
        ),
        timeout=180_000,
    )
    run_job(window, lambda: window.open_file(SAMPLE), timeout=180_000)
    entry = log_entries(window.case_log_path())[-1]
    assert entry["action"] == "open" and entry["examiner"] == "Dr. A. Analyst"
    assert entry["details"]["case_reference"] == "CR-2024-0117"
    window.close()
    again = make_window(settings=fresh)
    QApplication.processEvents()  # a first-start dialog would be opened by a 0 ms timer
    assert again.findChild(SettingsDialog) is None
