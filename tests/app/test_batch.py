"""File > Batch process folder: the dialog drives engine.batch in the worker."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

from PySide6.QtCore import Qt

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"


def test_batch_run_writes_outputs_lists_faults_and_leaves_inputs(
    make_window, qtbot, run_job, tmp_path, case_log_path
):
    inputs = tmp_path / "case"
    (inputs / "sub").mkdir(parents=True)
    shutil.copyfile(SAMPLE, inputs / "a.png")
    shutil.copyfile(SAMPLE, inputs / "sub" / "b.png")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    out = tmp_path / "results"

    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    assert window.act_batch.isEnabled()
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(out))
    dialog.scale_box.setCurrentIndex(dialog.scale_box.findData(4))
    dialog.set_chosen_models(["bicubic"])
    assert dialog.chosen_models() == ["bicubic"]
    assert dialog.start_button.isEnabled()

    def click_start() -> int:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        # the folders cannot change under a running batch (Browse too)
        assert not dialog.in_browse.isEnabled() and not dialog.out_browse.isEnabled()
        return window.exporting.batch_job

    run_job(window, click_start, timeout=120_000)

    assert "Done" in dialog.status.text()
    assert dialog.faults.count() >= 1
    assert any("broken.jpg" in dialog.faults.item(i).text() for i in range(dialog.faults.count()))
    with open(out / "summary.csv", newline="") as fh:
        rows = {row["file"]: row for row in csv.DictReader(fh)}
    assert rows["a.png"]["status"] == "ok" and rows["sub/b.png"]["status"] == "ok"
    assert rows["broken.jpg"]["status"] == "error"
    assert (out / "a_bicubic_x4_full.png").is_file()
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before
    assert window.act_open.isEnabled() and not dialog.is_running()
    assert dialog.open_button.isEnabled() and dialog.in_browse.isEnabled()
    # The run is in the case log, with the summary that lists every output.
    entry = json.loads(case_log_path.read_text("utf-8").splitlines()[-1])
    assert entry["action"] == "batch" and entry["input_path"] == str(inputs)
    assert entry["parameters"]["models"] == ["bicubic"] and entry["scale"] == 4
    summary = entry["outputs"][0]
    assert summary["role"] == "summary"
    assert summary["sha256"] == hashlib.sha256((out / "summary.csv").read_bytes()).hexdigest()
    assert entry["details"]["ok"] == 2 and entry["details"]["errors"] == 1
    dialog.close()


def test_batch_refuses_output_inside_input(make_window, qtbot, run_job, tmp_path):
    inputs = tmp_path / "case"
    inputs.mkdir()
    shutil.copyfile(SAMPLE, inputs / "a.png")
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(inputs / "results"))
    dialog.set_chosen_models(["bicubic"])
    run_job(window, lambda: window.start_batch(dialog.request()))
    assert "inside the input folder" in dialog.status.text()
    assert not (inputs / "results").exists()
    assert not dialog.is_running() and dialog.start_button.isEnabled()
    dialog.close()


def test_batch_lists_models_without_weights_disabled(make_window, qtbot, tmp_path):
    from engine.enhance import Enhancer

    empty = tmp_path / "weights"
    empty.mkdir()
    window = make_window(enhancer_factory=lambda: Enhancer(weights_dir=str(empty)))
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    items = {
        dialog.model_list.item(i).data(Qt.ItemDataRole.UserRole): dialog.model_list.item(i)
        for i in range(dialog.model_list.count())
    }
    assert items["bicubic"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert not items["s2_rafsr"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert items["s2_rafsr"].text().endswith("(no trained weights)")
    dialog.set_chosen_models(["bicubic", "s2_rafsr"])
    assert dialog.chosen_models() == ["bicubic"]  # a model that cannot run is never sent
    dialog.close()


def test_batch_dialog_passes_where_to_run_and_overwrite_to_the_engine(
    make_window, qtbot, run_job, tmp_path, monkeypatch
):
    """Issue 26: "Run on" (in the app, a local cluster, a scheduler) and "Overwrite existing
    outputs" reach engine.batch through the worker's job."""
    from engine import batch_exec

    inputs = tmp_path / "case"
    inputs.mkdir()
    shutil.copyfile(SAMPLE, inputs / "a.png")
    out = tmp_path / "results"
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(out))
    dialog.scale_box.setCurrentIndex(dialog.scale_box.findData(4))
    dialog.set_chosen_models(["bicubic"])
    # Defaults: in the app, nothing overwritten.
    assert dialog.run_on_box.currentText() == "This computer (in the app)"
    assert dialog.request()["dask"] is None and dialog.request()["overwrite"] is False
    assert dialog.request()["detector"] == "hog"  # a run's settings name it: HOG unless chosen
    submitted = []
    real_submit = window.submit

    def spy(args, **kwargs):
        submitted.append(args)
        return real_submit(args, **kwargs)

    monkeypatch.setattr(window, "submit", spy)
    run_job(window, lambda: window.start_batch(dialog.request()))
    assert "Done" in dialog.status.text() and "in-process" in dialog.status.text()
    assert (submitted[-1].dask, submitted[-1].overwrite, submitted[-1].detector) == (
        None,
        False,
        "hog",
    )

    # Another run (another model) into that folder: refused, then allowed with Overwrite.
    dialog.set_chosen_models(["lanczos"])
    run_job(window, lambda: window.start_batch(dialog.request()))
    assert "holds the results of another run" in dialog.status.text()
    dialog.overwrite_box.setChecked(True)
    dialog.detector_box.setCurrentIndex(dialog.detector_box.findData("auto"))
    run_job(window, lambda: window.start_batch(dialog.request()))
    assert "Done" in dialog.status.text() and submitted[-1].overwrite is True
    assert submitted[-1].detector == "auto"
    with open(out / "summary.csv", newline="") as fh:
        assert [row["model"] for row in csv.DictReader(fh)] == ["lanczos"]

    # A scheduler address that is not one: Start stays disabled and says why.
    dialog.run_on_box.setCurrentIndex(dialog.run_on_box.findData("scheduler"))
    assert dialog.scheduler_edit.isVisibleTo(dialog) and not dialog.workers_box.isVisibleTo(dialog)
    dialog.scheduler_edit.setText("tcp://nowhere")
    assert not dialog.start_button.isEnabled()
    assert "not understood" in dialog.start_button.toolTip()
    dialog.scheduler_edit.setText("tcp://10.0.0.5:8786")
    assert dialog.start_button.isEnabled() and dialog.request()["dask"] == "tcp://10.0.0.5:8786"

    # A local cluster of 3 workers reaches the engine (here told Dask is missing, as in the
    # PyInstaller bundle, so that no cluster starts): the engine's message is shown.
    dialog.run_on_box.setCurrentIndex(dialog.run_on_box.findData("local"))
    dialog.workers_box.setValue(3)
    monkeypatch.setattr(batch_exec, "dask_available", lambda: False)

    def click_start() -> int:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        return window.exporting.batch_job

    run_job(window, click_start)
    assert submitted[-1].dask == "local:3" and submitted[-1].overwrite is True
    assert "cluster mode needs the source install" in dialog.status.text()
    dialog.close()


def test_batch_dialog_offers_x1_restore_with_the_restoration_models(
    make_window, qtbot, run_job, tmp_path
):
    """Issue 24: x1 restore in a folder run, chosen by hand as in the window's scale box."""
    import torch

    from engine import registry, weights
    from engine.enhance import Enhancer

    folder = tmp_path / "weights"  # a small random x1 IDRN, the only installed network
    torch.manual_seed(0)
    entry = registry.get("s4_idrn_restore")
    path = weights.weights_path(entry, 1, folder)
    weights.save(registry.build(entry, 1, channels=8, units=2), entry, 1, path, {"run": "test"})
    weights.update_manifest(path)
    inputs = tmp_path / "case"
    inputs.mkdir()
    shutil.copyfile(SAMPLE, inputs / "a.png")
    out = tmp_path / "results"
    window = make_window(enhancer_factory=lambda: Enhancer(weights_dir=str(folder)))
    qtbot.waitUntil(lambda: window.state.model_state(entry.id, 1) == "installed", timeout=180_000)
    dialog = window.open_batch()
    box = dialog.scale_box
    assert box.itemText(box.count() - 1) == "\u00d71 restore" and box.itemData(box.count() - 1) == 1
    enabled = {  # model id -> can be chosen, at the scale shown
        dialog.model_list.item(i).data(Qt.ItemDataRole.UserRole): bool(
            dialog.model_list.item(i).flags() & Qt.ItemFlag.ItemIsEnabled
        )
        for i in range(dialog.model_list.count())
    }
    assert enabled["bicubic"] and not enabled[entry.id]  # Auto never runs x1 restore
    box.setCurrentIndex(box.findData(1))
    # only the restoration model is offered there, and it is picked (as in the window)
    assert dialog.chosen_models() == [entry.id]
    picked = dialog.model_list.findItems(entry.label, Qt.MatchFlag.MatchExactly)[0]
    view = dialog.model_list.viewport().rect()  # last in the list, scrolled into view
    assert view.contains(dialog.model_list.visualItemRect(picked))
    dialog.set_chosen_models(["bicubic", entry.id])
    assert dialog.chosen_models() == [entry.id]
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(out))
    run_job(window, lambda: window.start_batch(dialog.request()), timeout=120_000)
    assert "Done" in dialog.status.text()
    with open(out / "summary.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "ok" and row["scale"] == "1" and row["scales_used"] == "x1"
    assert (out / "a_s4_idrn_restore_x1_full.png").is_file()
    dialog.close()
