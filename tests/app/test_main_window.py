"""The main window against the real engine: open, detect, enhance, compare, cancel, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QMessageBox

from app.views.common import AI_LABEL, INTERPOLATED_LABEL
from app.views.zoom_view import LandmarkItem

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"


def error_dialog(window) -> QMessageBox | None:
    boxes = [
        b
        for b in window.findChildren(QMessageBox)
        if b.objectName() == "errorDialog" and b.isVisible()
    ]
    return boxes[-1] if boxes else None


def test_open_sample_lists_faces(opened):
    window = opened()
    assert window.still is not None and window.still.width == 102
    assert len(window.faces) >= 1
    assert window.image_view.face_count() == len(window.faces)
    assert window.face_list.count() == len(window.faces)
    assert "score" in window.face_list.item(0).text()
    assert window.face_index == 0
    assert window.act_enhance.isEnabled()
    assert str(SAMPLE) in window.recent_files()
    assert "astronaut_small.png" in window.windowTitle()


def test_enhance_with_bicubic_shows_result_and_label(opened, run_job):
    window = opened()
    window.set_scale(4)
    window.set_model("bicubic")
    run_job(window, window.enhance)
    result = window.current
    assert result is not None and result.model_id == "bicubic" and result.scale == 4
    assert result.sr.shape == (128, 128, 3) and result.lr.shape == (32, 32, 3)
    assert window.tabs.currentWidget() is window.compare_view
    caption = window.compare_view.output_view.caption()
    assert caption[0] == INTERPOLATED_LABEL  # bicubic is labelled, but not called AI
    assert "Bicubic" in caption[1] and "\u00d74" in caption[1]
    assert window.act_export_face.isEnabled()
    # Landmarks: one overlay on the input and one on the output, in the same frame.
    window.act_landmarks.trigger()
    for view in (window.compare_view.input_view, window.compare_view.output_view):
        assert sum(isinstance(i, LandmarkItem) for i in view.scene().items()) == 1
    window.show_page("wipe")
    assert window.compare_view.mode() == "wipe" and window.act_page_wipe.isChecked()
    assert (
        sum(isinstance(i, LandmarkItem) for i in window.compare_view.wipe_view.scene().items()) == 2
    )


def test_compare_all_fills_grid_and_tile_opens_side_by_side(opened, run_job):
    window = opened()
    window.set_scale(4)
    run_job(window, window.compare_all)
    runnable = window.runnable_models()
    assert {"bicubic", "lanczos"} <= set(runnable)
    tiles = window.grid_view.tiles()
    assert [t.key for t in tiles] == ["evidence", "input", *runnable] + [
        e.id for e in window.entries if e.id not in runnable
    ]
    assert "as recorded" in tiles[0].detail() and "not the recorded pixels" in tiles[1].detail()
    shown = tiles[: 2 + len(runnable)]
    assert all(t.has_image() for t in shown)
    for tile in tiles[len(shown) :]:  # models that cannot run are listed, greyed, with the reason
        assert not tile.has_image() and not tile._clickable
    assert "ms" in window.grid_view.tile("lanczos").detail()
    assert window.grid_view.tile("lanczos").label() == INTERPOLATED_LABEL
    window.grid_view.tile("lanczos").clicked.emit("lanczos")
    assert window.current.model_id == "lanczos"
    assert window.tabs.currentWidget() is window.compare_view


def test_cancel_stops_a_running_enhancement(opened, qtbot, blocking_enhancer):
    window = opened(enhancer_factory=blocking_enhancer)
    ids: list[int] = []
    with qtbot.waitSignal(
        window.client.progress, timeout=60_000, check_params_cb=lambda job_id, *_: job_id in ids
    ):
        ids.append(window.enhance())
    assert window.cancel_button.isVisible() and window.progress_bar.isVisible()
    with qtbot.waitSignals(
        [window.client.cancelled, window.client.finished],
        timeout=10_000,
        check_params_cbs=[lambda j: j == ids[0], lambda j: j == ids[0]],
    ):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert window.current is None
    assert not window.cancel_button.isVisible()
    assert window.act_enhance.isEnabled()
    assert window.errors.last_message == "Cancelled"
    assert error_dialog(window) is None  # cancelling is not an error


def test_bad_file_shows_an_error(make_window, qtbot, run_job, tmp_path):
    bad = tmp_path / "evidence.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    window = make_window()
    run_job(window, lambda: window.open_file(bad), timeout=180_000)
    box = error_dialog(window)
    assert box is not None
    assert box.windowTitle() == "Cannot open the image"
    assert "Cannot open evidence.jpg" in box.text()
    assert window.still is None
    assert str(bad) not in window.recent_files()
    box.close()


def test_export_face_and_full_image_never_over_input(opened, run_job, tmp_path):
    evidence = tmp_path / "evidence.png"
    shutil.copyfile(SAMPLE, evidence)
    before = evidence.read_bytes()
    window = opened(evidence)
    window.set_model("bicubic")
    run_job(window, window.enhance)
    face_png = tmp_path / "out" / "face.png"
    face_png.parent.mkdir()
    run_job(window, lambda: window.export("face", face_png))
    with Image.open(face_png) as image:
        assert image.width == 128 and image.height > 128  # the label strip below the face
        assert image.text["Disclaimer"].startswith("AI-enhanced")
        record = image.text["ffe-provenance"]
    assert '"sha256": "' in record and window.still.sha256 in record
    assert '"role": "face"' in record
    full_png = tmp_path / "out" / "full.png"
    run_job(window, lambda: window.export("full", full_png))
    with Image.open(full_png) as image:
        assert image.width == 102 * 4
    # Refused: the evidence file itself, even spelled differently.
    assert window.export("face", tmp_path / "out" / ".." / "evidence.png") is None
    box = error_dialog(window)
    assert box is not None and "never written over the input" in box.text()
    box.close()
    assert evidence.read_bytes() == before


def test_screenshot_is_not_empty(opened, tmp_path):
    window = opened()
    path = tmp_path / "window.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 1000
    image = QImage(str(path))
    assert image.width() > 600 and image.height() > 400
    # not one flat colour: the still and its face outline were drawn
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 37)
    }
    assert len(colours) > 20


def test_models_without_weights_are_marked_and_disabled(make_window, qtbot, tmp_path):
    from engine.enhance import Enhancer

    empty = tmp_path / "weights"
    empty.mkdir()
    window = make_window(enhancer_factory=lambda: Enhancer(weights_dir=str(empty)))
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    window.set_scale(4)
    for entry in window.entries:
        action = window.model_actions[entry.id]
        if entry.is_baseline:
            assert action.isEnabled() and action.text() == entry.label
        elif entry.restores:  # x1 restore only
            assert not action.isEnabled()
            assert action.text().replace("&&", "&") == entry.label + " (not offered at \u00d74)"
        else:
            assert not action.isEnabled()
            assert action.text().endswith("(no trained weights)")
            assert action.text().replace("&&", "&") == entry.label + " (no trained weights)"
    assert window.runnable_models() == ["bicubic", "lanczos"]
    window.set_model("s2_rafsr")
    assert window.model_id != "s2_rafsr"
    assert window.device_label.text().startswith("Device: ")


def test_settings_survive_a_restart(make_window, qtbot, settings):
    window = make_window()
    window.set_scale(8)
    window.set_model("lanczos")
    window.compare_view.set_input_method("bicubic")
    window.close()
    again = make_window(settings=settings)
    assert again.scale == 8 and again.model_id == "lanczos"
    assert again.compare_view.input_method() == "bicubic"
    assert again.input_method_actions["bicubic"].isChecked()


def test_about_lists_every_paper_with_citation(window):
    dialog = window.show_about()
    text = dialog.papers.toPlainText()
    for entry in window.entries:
        assert entry.citation in text
    assert any(AI_LABEL in label.text() for label in dialog.findChildren(QLabel))
    assert "built in, no weights needed" in text  # baselines are not "trained"
    dialog.close()


def test_dropping_a_file_opens_it(make_window, qtbot):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    from app.jobs import OpenOutcome

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE))])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(
        window.client.result,
        timeout=180_000,
        check_params_cb=lambda _j, p: isinstance(p, OpenOutcome),
    ):
        window.dropEvent(event)
    assert event.isAccepted()
    assert window.still is not None and window.still.name == "astronaut_small.png"


def test_enter_enhances_the_selected_face(opened, qtbot):
    window = opened()
    window.set_model("bicubic")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    with qtbot.waitSignal(window.client.finished, timeout=60_000):
        qtbot.keyClick(window.image_view.viewport(), Qt.Key.Key_Return)
    assert window.current is not None and window.current.model_id == "bicubic"


def test_the_gui_side_never_loads_torch_or_dlib():
    """Importing and building the app's GUI modules must not pull in torch or dlib (only the
    worker thread does, through the engine)."""
    import ast
    import subprocess
    import sys

    app_dir = Path(__file__).resolve().parents[2] / "app"
    for path in app_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "torch" for n in names), f"{path} imports torch"
    # ... nor Dask (the batch dialog only checks that it is installed): startup stays quick
    heavy = "{'torch', 'dlib', 'dask', 'distributed'}"
    code = f"import sys, app.main_window; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=app_dir.parent
    )
    assert out.stdout.strip() == "[]"


def test_auto_scale_follows_each_face_and_never_shrinks_it(opened, run_job, qtbot, face_sizes):
    """The still with faces of about 15, 30, 60 and 250 px (the smallest two drawn by hand)."""
    window = opened(face_sizes.path)
    assert window.state.scale == "auto"  # the default
    window.set_model("bicubic")  # not the model the evidence calls for: any file runs at Auto
    big = next(i for i, f in enumerate(window.faces) if f.native_frame_px > 200)
    assert f"native {window.faces[big].native_frame_px:.0f} px" in window.face_list.item(big).text()
    # The 250 px face: nothing runs; its recorded pixels and the reason are shown.
    window.opening.select_face(big)
    assert window.enhance() is None
    assert window.current is None
    assert "enlarging it would only interpolate" in window.compare_view._note.text()
    assert window.compare_view.input_view.scene().items()  # the recorded pixels
    assert "as recorded" in window.compare_view.input_view.caption()[0]
    # The 60 px face: Auto runs x2 on it, without shrinking.
    middle = next(i for i, f in enumerate(window.faces) if 50 < f.native_frame_px < 70)
    window.opening.select_face(middle)
    run_job(window, window.enhance)
    result = window.current
    assert result is not None and result.scale == 2 and result.evidence_shrink == 1.0
    assert (middle, "bicubic", "auto") in window.results
    caption = window.compare_view.input_view.caption()
    assert caption[0].startswith("Model input: aligned and resampled to 64 px")
    window.compare_view.set_input_method("recorded")
    assert window.compare_view.input_view.caption()[0].startswith("Recorded pixels:")
