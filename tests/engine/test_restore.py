"""x1 restore (issue 24): a face of 128 px or more cleaned at its recorded size, on the still's
own pixel grid -- never chosen by Auto, nothing resampled, provenance says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import faces, fidelity, imaging, io, registry, resolution, weights
from engine.__main__ import main
from engine.enhance import Enhancer, paste_all

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
SAMPLE_BOX = (90.0, 39.0, 136.0, 85.0)  # dlib's HOG box of the sample's 78 px face (256 px)
SIDE = 660  # the sample enlarged 2.58x: a face of about 200 px
SMALL_IDRN = {"channels": 8, "units": 2, "image_residual": True}


@pytest.fixture(scope="module")
def big_still(tmp_path_factory):
    """The sample enlarged so its face is about 200 px, then JPEG-compressed (quality 30)."""
    from PIL import Image

    rgb = imaging.resize(io.load(SAMPLE).rgb, SIDE, SIDE, "bicubic")
    folder = tmp_path_factory.mktemp("big")
    path = folder / "big.jpg"
    Image.fromarray(rgb).save(path, "JPEG", quality=30)
    return io.load(path)


@pytest.fixture(scope="module")
def big_face(big_still):
    f = SIDE / 256
    return faces.face_from_box(big_still.rgb, tuple(v * f for v in SAMPLE_BOX))


@pytest.fixture(scope="module")
def restore_weights(tmp_path_factory):
    """A small random x1 IDRN (tail perturbed, so its output differs from its input)."""
    folder = tmp_path_factory.mktemp("restore_weights")
    torch.manual_seed(0)
    entry = registry.get("s4_idrn_restore")
    net = registry.build(entry, 1, **SMALL_IDRN)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.02)
    path = weights.weights_path(entry, 1, folder)
    weights.save(net, entry, 1, path, {"run": "test"})
    weights.update_manifest(path)
    return folder


def test_the_registry_offers_restoration_at_x1_only():
    entry = registry.get("s4_idrn_restore")
    assert entry.restores and entry.scales == (1,) and entry.variant == "robust"
    assert entry.twin == "s4_idrn" and entry.arch == registry.get("s4_idrn").arch
    assert "enlarges nothing" in entry.description and "enlarges nothing" in entry.use_when
    assert registry.weight_filename(entry, 1) == "s4_idrn_restore_x1.safetensors"
    assert [e.id for e in registry.restoration_models()] == ["s4_idrn_restore"]
    assert registry.robust_twin("s4_idrn") == "s4_idrn_robust"  # the enlarging one
    assert "s4_idrn_restore" not in registry.DEFAULT_ORDER
    assert not any(1 in e.scales for e in registry.MODELS if not e.restores)
    with pytest.raises(ValueError, match="x1 alone"):
        import dataclasses

        registry._check((dataclasses.replace(registry.get("s4_idrn"), scales=(1, 4)),))


def test_plan_for_a_200_px_face(big_face):
    assert big_face.native_frame_px == pytest.approx(200, rel=0.1)
    restore = registry.get("s4_idrn_restore")
    plan = resolution.plan(big_face, restore, 1)
    assert plan.mode == "restore" and plan.runs and plan.scale == 1
    assert plan.lr_size is None and plan.factor == 1.0 and plan.evidence_shrink == 1.0
    assert not plan.shrinks and "nothing is enlarged" in plan.message
    # Auto never picks x1 restore, and on a large face says nothing is enlarged, offering it
    auto = resolution.plan(big_face, restore, "auto")
    assert not auto.runs and auto.skipped and "Auto never" in auto.message
    sr = resolution.plan(big_face, registry.get("s4_idrn"), "auto")
    assert sr.mode == "none" and "nothing is enlarged" in sr.message
    assert "x1 restore" in sr.message
    with pytest.raises(ValueError, match="not x1"):
        resolution.plan(big_face, registry.get("s4_idrn"), 1)
    with pytest.raises(ValueError, match="not x4"):
        resolution.plan(big_face, restore, 4)


def test_restore_runs_on_the_recorded_pixels_and_pastes_back_exactly(
    big_still, big_face, restore_weights
):
    result = Enhancer(device="cpu", weights_dir=str(restore_weights)).enhance(
        big_still, big_face, "s4_idrn_restore", 1, face_index=0
    )
    x0, y0, x1, y1 = result.crop_box
    assert (x0, y0, x1, y1) == resolution.restore_box(big_face, (SIDE, SIDE))
    frame = resolution.frame_box(faces.alignment_matrix(big_face, 128), 128, (SIDE, SIDE))
    assert x0 == max(0, frame[0] - 8) and x1 == min(SIDE, frame[2] + 8)
    # output size = crop size, the crop is the recorded pixels exactly
    assert result.sr.shape == result.lr.shape == (y1 - y0, x1 - x0, 3)
    assert np.array_equal(result.lr, big_still.rgb[y0:y1, x0:x1])
    assert not np.array_equal(result.sr, result.lr)  # the (random) network changed something
    assert result.scale == 1 and result.aligned is None and result.restored
    # pasted: the still's size, its pixels outside the box, the output's inside
    assert result.pasted.shape == big_still.rgb.shape
    outside = np.ones(big_still.rgb.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(result.pasted[outside], big_still.rgb[outside])
    assert np.array_equal(result.pasted[y0:y1, x0:x1], result.sr)
    assert np.array_equal(paste_all(big_still.rgb, [result]), result.pasted)
    # landmarks in the crop's pixels
    assert np.allclose(result.input_landmarks, big_face.landmarks - [x0, y0])
    assert result.output_landmarks is not None and result.output_landmarks.shape == (68, 2)


def test_same_bytes_on_rerun(big_still, big_face, restore_weights):
    runs = [
        Enhancer(device="cpu", weights_dir=str(restore_weights)).enhance(
            big_still, big_face, "s4_idrn_restore", 1
        )
        for _ in range(2)
    ]
    assert runs[0].sr.tobytes() == runs[1].sr.tobytes()
    assert runs[0].pasted.tobytes() == runs[1].pasted.tobytes()


def test_provenance_says_restore_crop_box_and_no_resampling(big_still, big_face, restore_weights):
    result = Enhancer(device="cpu", weights_dir=str(restore_weights)).enhance(
        big_still, big_face, "s4_idrn_restore", 1, face_index=3
    )
    rec = result.provenance
    json.dumps(rec)
    box = list(result.crop_box)
    assert rec["restore"]["mode"] == "restore" and rec["restore"]["crop_box"] == box
    assert rec["restore"]["pixels_resampled"] is False
    assert rec["restore"]["crop_size"] == [box[2] - box[0], box[3] - box[1]]
    p = rec["parameters"]
    assert p["scale_mode"] == "restore" and p["scale"] == 1 and p["resampled"] is False
    assert p["crop_box"] == box and p["requested_scale"] == "x1"
    assert "no resampling" in p["paste_back"] and "no" in p["alignment"]
    assert rec["resolution"]["mode"] == "restore" and rec["resolution"]["evidence_shrink"] == 1.0
    assert rec["model"]["id"] == "s4_idrn_restore"


def test_tiles_do_not_change_the_output(big_still, big_face, restore_weights, monkeypatch):
    loaded = weights.load(registry.get("s4_idrn_restore"), 1, "cpu", restore_weights)
    x0, y0, x1, y1 = resolution.restore_box(big_face, (SIDE, SIDE))
    crop = big_still.rgb[y0:y1, x0:x1]
    whole = loaded.restore(crop)
    monkeypatch.setattr(weights, "RESTORE_TILE", 64)
    tiled = loaded.restore(crop)
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="not an x1 restoration model"):
        weights.load(registry.get("bicubic"), 4).restore(crop)


def test_consistency_at_x1_compares_after_a_low_pass(big_still, big_face):
    x0, y0, x1, y1 = resolution.restore_box(big_face, (SIDE, SIDE))
    crop = np.ascontiguousarray(big_still.rgb[y0:y1, x0:x1])
    same = fidelity.data_consistency(crop, crop.copy())
    assert same.status == "pass" and "low-pass" in same.detail
    # removing fine noise (what a restoration does) passes; a moved face does not
    rng = np.random.default_rng(0)
    noisy = np.clip(crop + rng.normal(0, 8, crop.shape), 0, 255).astype(np.uint8)
    assert fidelity.data_consistency(noisy, crop).passed
    moved = np.roll(crop, 12, axis=1)
    assert fidelity.data_consistency(crop, moved).status == "warn"
    assert fidelity.data_consistency(crop, crop).difference.shape == crop.shape


def test_check_all_on_x1_outputs(big_still, big_face, restore_weights):
    result = Enhancer(device="cpu", weights_dir=str(restore_weights)).enhance(
        big_still, big_face, "s4_idrn_restore", 1
    )
    report = fidelity.check_all(
        result.lr,
        {result.model_id: result.sr},
        result.input_landmarks,
        {result.model_id: result.output_landmarks},
        evidence_shrink={result.model_id: result.evidence_shrink},
    )
    checks = report.model(result.model_id)
    assert report.scale == 1 and checks.resolution.passed
    assert checks.consistency.value is not None and "low-pass" in checks.consistency.detail
    assert checks.agreement.value is not None  # the restored crop against the recorded crop


def test_cli_scale_1(tmp_path, big_still, restore_weights, monkeypatch, capsys):
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(restore_weights))
    f = SIDE / 256
    box = ",".join(f"{v * f:.1f}" for v in SAMPLE_BOX)
    out = tmp_path / "out"
    args = ["enhance", str(big_still.path), "--model", "s4_idrn_restore", "--scale", "1",
            f"--box={box}", "--out", str(out), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["requested_scale"] == "x1" and report["faces"][0]["mode"] == "restore"
    names = sorted(p.name for p in out.iterdir())
    assert any(n.endswith("_s4_idrn_restore_x1.png") for n in names)
    full = next(out.glob("*_full.png"))
    picture = io.load(full).rgb
    assert picture.shape[1] == SIDE and picture.shape[0] > SIDE  # same size + the label strip
    record = json.loads(next(out.glob("*_provenance.json")).read_text())
    assert record["faces"][0]["restore"]["pixels_resampled"] is False
    # Auto with the restoration model: nothing runs, and it says why
    assert main([*args[:5], "auto", *args[6:7], "--out", str(tmp_path / "auto")]) in (0, 2)
    assert "Auto never" in capsys.readouterr().err


def test_a_logged_restore_reproduces_bit_identically(tmp_path, big_still, big_face, restore_weights):
    from engine import caselog

    enhancer = Enhancer(device="cpu", weights_dir=str(restore_weights))
    result = enhancer.enhance(big_still, big_face, "s4_idrn_restore", 1)
    log = caselog.CaseLog(tmp_path / "case_log.jsonl")
    log.append("enhance", **caselog.enhance_fields(big_still, big_face, result))
    report = caselog.reproduce(log.entries()[0], enhancer, io.load)
    assert report.pixels_ok and report.weights_ok and report.input_ok
