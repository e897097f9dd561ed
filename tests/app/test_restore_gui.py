"""x1 restore in the window (issue 24): its own scale, never Auto, the recorded crop beside the
restored crop on the same grid, the full image outlined at the crop box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.state import ENLARGE_SCALES, SCALES, scale_text
from app.views.common import outline_pasted
from engine import registry, weights
from engine.enhance import paste_all


@pytest.fixture
def restore_weights(tmp_path, monkeypatch):
    """A small random x1 IDRN as the only installed network (FFE_WEIGHTS_DIR)."""
    folder = tmp_path / "weights"
    torch.manual_seed(0)
    entry = registry.get("s4_idrn_restore")
    net = registry.build(entry, 1, channels=8, units=2, image_residual=True)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.02)
    path = weights.weights_path(entry, 1, folder)
    weights.save(net, entry, 1, path, {"run": "test"})
    weights.update_manifest(path)
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(folder))
    return folder


def test_the_scale_list_offers_x1_restore_last_and_the_default_scale_does_not():
    assert SCALES[-1] == 1 and scale_text(1) == "\u00d71 restore"
    assert 1 not in ENLARGE_SCALES and scale_text("auto") == "Auto" and scale_text(4) == "\u00d74"


def test_x1_restore_on_the_large_face(opened, run_job, face_sizes, restore_weights):
    window = opened(face_sizes.path)
    combo = window.scale_combo
    assert combo.itemText(combo.count() - 1) == "\u00d71 restore" and combo.itemData(combo.count() - 1) == 1
    big = next(i for i, f in enumerate(window.faces) if f.native_frame_px > 200)
    window.opening.select_face(big)
    # Auto: nothing is enlarged, and the message offers x1 restore
    assert window.state.scale == "auto"
    assert window.enhance() is None and window.current is None
    note = window.compare_view._note.text()
    assert "nothing is enlarged" in note and "x1 restore" in note
    # At Auto the restoration model is not offered (never chosen silently)
    assert window.state.model_state("s4_idrn_restore", "auto") == "not offered"
    # x1 restore: bicubic is not offered there, the restoration model is picked
    window.set_scale(1)
    assert window.state.model_id == "s4_idrn_restore"
    run_job(window, window.enhance)
    result = window.current
    assert result is not None and result.model_id == "s4_idrn_restore" and result.scale == 1
    x0, y0, x1, y1 = result.crop_box
    assert result.sr.shape == result.lr.shape == (y1 - y0, x1 - x0, 3)
    assert np.array_equal(result.lr, window.still.rgb[y0:y1, x0:x1])
    assert "nothing enlarged" in window.compare_view.output_view.caption()[1]
    assert "not aligned, not resampled" in window.compare_view.input_view.caption()[1]
    assert (big, "s4_idrn_restore", 1) in window.results
    # the full image: the still's size, outlined exactly at the crop box
    full = paste_all(window.still.rgb, [result])
    assert full.shape == window.still.rgb.shape
    outlined = outline_pasted(full, [result], window.still.width)
    changed = np.argwhere(np.any(outlined != full, axis=2))
    assert changed[:, 1].min() >= x0 - 3 and changed[:, 1].max() <= x1 + 2
    assert changed[:, 0].min() >= y0 - 3 and changed[:, 0].max() <= y1 + 2
