"""File > Export comparison (issue 28): the comparison on screen as one labelled, logged PNG."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image


def test_the_grid_is_exported_as_one_labelled_png(opened, run_job, tmp_path):
    window = opened()
    window.set_scale(4)
    run_job(window, window.compare_all)
    window.show_page("grid")
    shown = window.exporting.comparison_results()
    assert len(shown) == len(window.runnable_models())
    out = tmp_path / "comparison.png"
    assert window.act_export_comparison.isEnabled()
    run_job(window, lambda: window.exporting.export_comparison(out))
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1] == 4 * (192 + 8) + 8  # four tiles a row
    assert ((image == [180, 20, 20]).all(axis=2)).sum() > 1000  # the red AI labels
    if os.environ.get("FFE_SAVE_COMPARISON"):  # the picture in docs/screenshots
        Image.open(out).save(os.environ["FFE_SAVE_COMPARISON"])
    assert "Comparison of" in Image.open(out).text["Description"]
    entry = json.loads(window.case_log_path().read_text("utf-8").splitlines()[-1])
    assert entry["action"] == "export" and entry["parameters"]["role"] == "comparison"
    assert entry["parameters"]["models"] == [r.model_id for r in shown]
    assert entry["input_sha256"] == window.still.sha256
    # side by side: the recorded pixels, the model input and the output on screen
    window.grid_view.tile("lanczos").clicked.emit("lanczos")  # opens it side by side
    assert window.exporting.comparison_results() == [window.current]
    assert window.current.model_id == "lanczos"
