"""Evidence quality on load (issue 24): the line above the faces, the recommended variant as
the default model, the analyst's override, and the choice in the output's provenance."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from engine import registry

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"


def test_compressed_evidence_is_shown_and_the_robust_variant_is_the_default(
    opened, run_job, tmp_path
):
    path = tmp_path / "cctv_still.jpg"
    Image.open(SAMPLE).convert("RGB").save(path, quality=40)
    window = opened(path)
    info = window.evidence_info
    assert info.isVisible()
    assert "JPEG quality \u2248 40" in info.text() and "compressed evidence" in info.text()
    entry = registry.get(window.model_id)
    assert entry.variant == "robust", window.model_id  # the shipped x4 robust files run it
    assert f"Recommended: {entry.label}" in info.text()
    assert "JPEG quality about 40" in info.toolTip()
    tip = window.model_combo.toolTip()
    assert "Robust: compressed" in tip and "Clean-trained: a face known never" in tip
    # The analyst overrides with the clean-trained twin: said on screen and in the provenance.
    window.set_model(entry.twin)
    assert window.model_id == entry.twin and "your choice" in info.text()
    run_job(window, window.enhance)
    record = window.current.provenance
    choice = record["model_choice"]
    assert choice["recommended"] == entry.id and choice["chosen"] == entry.twin
    assert choice["variant"] == "robust" and "The analyst chose" in choice["reason"]
    assert record["evidence_quality"]["jpeg_quality"] == 40


def test_clean_lossless_evidence_still_gets_the_robust_variant(opened, run_job):
    """A lossless file does not say what happened to its pixels before it was saved."""
    window = opened(SAMPLE)
    text = window.evidence_info.text()
    assert "no lossy compression recorded in the file" in text
    assert "clean lossless evidence" in text
    entry = registry.get(window.model_id)
    assert entry.variant == "robust", window.model_id
    assert "a lossless file does not record" in text  # why, on screen
    run_job(window, window.enhance)
    choice = window.current.provenance["model_choice"]
    assert choice["recommended"] == choice["chosen"] == entry.id
    assert "lossless file" in choice["reason"]


def test_a_good_jpeg_gets_the_clean_trained_variant(opened, run_job, tmp_path):
    path = tmp_path / "good_camera.jpg"
    Image.open(SAMPLE).convert("RGB").save(path, quality=95)
    window = opened(path)
    assert "clean evidence (good JPEG)" in window.evidence_info.text()
    entry = registry.get(window.model_id)
    assert entry.variant == "psnr" and registry.robust_twin(entry.id) is not None
    run_job(window, window.enhance)
    choice = window.current.provenance["model_choice"]
    assert choice["recommended"] == choice["chosen"] == entry.id
    assert choice["reason"].startswith("Clean-trained variant recommended")


def test_a_large_compressed_face_keeps_its_model_and_is_pointed_to_x1_restore(
    make_window, qtbot, run_job, tmp_path
):
    """Nothing enlarging runs on a 200 px face. Before, the recommendation fell through to
    the model in use (Bicubic on a fresh start), which does not run on it either; now the
    model stays and the line points to x1 restore, which Auto never picks."""
    from tests.app.conftest import wait_engine

    path = tmp_path / "large_face.jpg"
    image = Image.open(SAMPLE.with_name("astronaut.png")).convert("RGB")  # a 78 px face
    image.resize((image.width * 3, image.height * 3), Image.Resampling.BICUBIC).save(
        path, quality=40
    )
    window = make_window()
    wait_engine(qtbot, window)
    robust = registry.DEFAULT_ORDER[0]
    window.set_model(robust)
    run_job(window, lambda: window.open_file(path))
    assert window.faces and window.faces[0].native_frame_px > 128
    assert window.model_id == robust
    text = window.evidence_info.text()
    restore = registry.restoration_models()[0]
    assert f"Recommended: {restore.label} at the scale x1 restore" in text
    assert "your choice" not in text and "Bicubic" not in text
