"""The face detector in the GUI (issue 28): HOG or CNN, the CNN when HOG finds none, the score
in words, and Detect again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FULL = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


def last_entry(window) -> dict:
    return json.loads(window.case_log_path().read_text("utf-8").splitlines()[-1])


def test_auto_tries_the_cnn_when_hog_finds_nothing(make_window, qtbot, run_job, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(blank)
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    assert window.state.detector == "auto"
    run_job(window, lambda: window.open_file(blank))
    assert window.faces == []
    assert "no face found (HOG or CNN)" in window.statusBar().currentMessage()
    assert last_entry(window)["parameters"]["detector"] == "cnn"  # the fallback is logged


def test_detect_again_with_the_cnn(opened, run_job):
    window = opened(FULL)  # a 78 px face: within the CNN's reach
    assert "match (HOG score" in window.face_list.item(0).text()
    assert window.detector_bar.button.isEnabled()
    window.detector_bar.combo.setCurrentIndex(window.detector_bar.combo.findData("cnn"))
    window.detector_bar.detectorChanged.emit("cnn")
    assert window.state.detector == "cnn"
    run_job(window, window.opening.detect_again)
    assert len(window.faces) >= 1 and window.face_index == 0
    assert "match (CNN score" in window.face_list.item(0).text()
    assert "CNN" in window.face_list.item(0).toolTip()
    entry = last_entry(window)
    assert entry["action"] == "detect" and entry["parameters"]["detector"] == "cnn"
    assert entry["input_sha256"] == window.still.sha256
    assert window.history_view.entries()[-1]["action"] == "detect" or any(
        e["action"] == "detect" for e in window.history_view.entries()
    )
