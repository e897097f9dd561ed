"""x1 restore in folder runs (issue 24): ``--scale 1`` with restoration models, through the
still path's own :func:`engine.enhance.restore_face`; other mixes refused before writing.

Inputs are 80 px crops of resources/samples/astronaut.png (one face, and two side by side); the
model is a small random x1 IDRN saved like installed weights (tail perturbed, so it changes
pixels), as in tests/engine/test_restore.py.
"""

from __future__ import annotations

import argparse
import io as stdio
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import __main__ as cli
from engine import batch, export, imaging, registry, weights
from engine import faces as facelib
from engine import io as eio
from engine.batch import BatchError, run_batch
from engine.enhance import Enhancer
from tests.batch_outputs import output_files

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
STAMP = "2026-01-01T00:00:00+00:00"  # every record's time, so two runs can be byte-identical
RESTORE = "s4_idrn_restore"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    rgb = np.asarray(eio.load(SAMPLE).rgb)
    face = imaging.resize(np.ascontiguousarray(rgb[0:200, 30:230]), 80, 80)
    root = tmp_path_factory.mktemp("restore") / "in"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(face).save(root / "a.png")
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(root / "sub" / "two.png")
    return root


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    entry = registry.get(RESTORE)
    net = registry.build(entry, 1, channels=8, units=2, image_residual=True)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.02)
    folder = tmp_path_factory.mktemp("restore_weights")
    path = weights.weights_path(entry, 1, folder)
    weights.save(net, entry, 1, path, {"run": "test"})
    weights.update_manifest(path)
    return folder


@pytest.fixture(scope="module")
def enhancer(weights_dir) -> Enhancer:
    return Enhancer(device="cpu", weights_dir=str(weights_dir))


def _picture(path: Path) -> np.ndarray:
    """An output's pixels above its visible label strip."""
    with Image.open(path) as im:
        rows = json.loads(im.text["ffe-visible-label"])["picture_rows"]
        return np.asarray(im.convert("RGB"))[:rows]


@pytest.fixture(scope="module")
def run(photos, enhancer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("first") / "out"
    summary = run_batch(photos, out, [RESTORE], 1, enhancer=enhancer, full=True, time_utc=STAMP)
    assert (summary.ok, summary.errors, summary.faces) == (2, 0, 3)
    assert summary.forward_passes == {RESTORE: 3}  # one crop per pass
    return out


def test_faces_full_image_and_summary(run, photos, enhancer, weights_dir):
    rows = {r.file: r for r in batch.read_summary(run / batch.SUMMARY_NAME)}
    row = rows["sub/two.png"]
    assert row.status == "ok" and row.scale == 1 and row.faces == 2
    assert row.scales_used == "x1;x1" and row.evidence_shrink == "1.000;1.000"
    assert row.fidelity in {f"{a};{b}" for a in ("pass", "warn") for b in ("pass", "warn")}
    assert all(v for v in row.consistency_db.split(";"))  # checked in the crop's pixels
    sha = eio.sha256_file(weights.weights_path(registry.get(RESTORE), 1, weights_dir))
    assert row.weights_sha256 == sha
    assert row.outputs == [
        "sub/two_face0_s4_idrn_restore_x1.png",
        "sub/two_face1_s4_idrn_restore_x1.png",
        "sub/two_s4_idrn_restore_x1_full.png",
        "sub/two_s4_idrn_restore_x1_provenance.json",
    ]

    document = json.loads((run / row.outputs[-1]).read_text("utf-8"))
    assert (document["time_utc"], document["time_fixed_by"]) == (STAMP, "time_utc")
    still = eio.load(photos / "sub" / "two.png")
    full = _picture(run / row.outputs[2])
    assert full.shape == still.rgb.shape  # nothing enlarged
    inside = np.zeros(full.shape[:2], bool)
    outline = np.all(full == export.OUTLINE_RGB, axis=2)  # each replaced box is outlined
    for k, record in enumerate(document["faces"]):
        assert record["input"]["sha256"] == still.sha256 == row.sha256
        assert record["model"]["id"] == RESTORE and record["model"]["weights_sha256"] == sha
        assert record["software"]["version"] and record["model_choice"]["chosen"] == RESTORE
        x0, y0, x1, y1 = box = record["restore"]["crop_box"]
        assert record["restore"]["pixels_resampled"] is False
        params = record["parameters"]
        assert params["crop_box"] == box and params["crop_margin"] == 8
        assert params["scale_mode"] == "restore" and params["batch"]["input_file"] == row.file
        face = _picture(run / row.outputs[k])
        assert face.shape == (y1 - y0, x1 - x0, 3)
        assert not np.array_equal(face, still.rgb[y0:y1, x0:x1])  # the model changed it
        here = ~outline[y0:y1, x0:x1]
        assert np.array_equal(full[y0:y1, x0:x1][here], face[here])  # the output, unresampled
        inside[y0:y1, x0:x1] = True
        roles = {o["role"] for o in record["outputs"]}
        assert roles == {"face", "full"}
    # every pixel outside the crop boxes (and their outline) is the recorded pixel
    keep = ~inside & ~outline
    assert keep.mean() > 0.3 and np.array_equal(full[keep], still.rgb[keep])
    assert document["batch"]["scale"] == 1 and document["time_utc"] == STAMP

    # the same pixels as the still path (Enhancer.enhance at x1 restore) gives this face
    face0 = facelib.detect(still.rgb)[0]
    result = enhancer.enhance(still, face0, RESTORE, 1, parameters={"detector": "hog"})
    assert np.array_equal(_picture(run / row.outputs[0]), result.sr)
    assert list(result.crop_box) == document["faces"][0]["restore"]["crop_box"]


def test_same_bytes_on_a_second_run(run, photos, enhancer, tmp_path):
    out = tmp_path / "again"
    run_batch(photos, out, [RESTORE], 1, enhancer=enhancer, full=True, time_utc=STAMP)
    assert output_files(out) == output_files(run)


@pytest.mark.slow
def test_local_cluster_gives_the_in_process_bytes(run, photos, enhancer, tmp_path):
    out = tmp_path / "cluster"
    summary = run_batch(
        photos, out, [RESTORE], 1, enhancer=enhancer, full=True, time_utc=STAMP, dask="local:2"
    )
    assert summary.executor.startswith("local:2") and summary.ok == 2
    assert output_files(out) == output_files(run)


def test_invalid_mixes_are_refused_before_anything_is_written(photos, enhancer, tmp_path):
    out = tmp_path / "out"
    cases = [
        ([RESTORE, "bicubic"], 1, "cannot share a run"),
        ([RESTORE, "bicubic"], 4, "cannot share a run"),
        ([RESTORE], 4, "only when chosen, at scale 1"),
        ([RESTORE], "auto", "Auto never picks it"),
        (["bicubic"], 1, "only the restoration models run"),
    ]
    for models, scale, words in cases:
        with pytest.raises(BatchError, match=words):
            run_batch(photos, out, models, scale, enhancer=enhancer)
        assert not out.exists()


def test_command_line_scale_1(photos, weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(weights_dir))
    out = tmp_path / "cli"

    def code(argv: list[str]) -> tuple[int, str]:
        parser = argparse.ArgumentParser()
        cli.add_batch_parser(parser.add_subparsers(dest="command"))
        stream = stdio.StringIO()
        args = parser.parse_args(["batch", str(photos), str(out), *argv])
        return cli.run_batch_from_args(args, stream), stream.getvalue()

    assert code(["--model", RESTORE, "--scale", "1"])[0] == cli.EXIT_OK
    assert (out / "a_face0_s4_idrn_restore_x1.png").is_file()
    assert not (out / "a_s4_idrn_restore_x1_full.png").exists()  # faces only by default
    rc, text = code(["--model", RESTORE])  # Auto
    assert rc == cli.EXIT_BAD_INPUT and "Auto never picks it" in text
