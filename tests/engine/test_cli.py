"""The command line: `models` listing, `enhance` outputs, refusals and exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import io, provenance, registry
from engine.__main__ import main

BOX = "35,15,53,33"  # the small sample's face (dlib's HOG box), to skip detection where untested


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def image(tmp_path, small_sample):
    """The sample shrunk 2.5x (a 32 px face: x4 enlarges it without shrinking it)."""
    folder = tmp_path / "case"
    folder.mkdir()
    return Path(shutil.copy(small_sample, folder / "still.png"))


def test_models_json(capsys, empty_weights):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == registry.ids()
    by_id = {r["id"]: r for r in rows}
    assert by_id["bicubic"]["scales"] == {s: "installed" for s in ("2", "3", "4", "8")}
    assert by_id["s2_rafsr"]["scales"] == {"4": "missing", "8": "missing"}
    assert by_id["s4_idrn"]["paper"] == "S4" and "Fan" in by_id["s4_idrn"]["citation"]
    (empty_weights / "s2_rafsr_x8.safetensors").write_bytes(b"junk")
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "x8 invalid: it is not listed in the manifest" in text and "s3_prior_guided_gan" in text


def test_enhance_writes_labelled_outputs(tmp_path, image, capsys):
    out = tmp_path / "out"
    assert (
        main(["enhance", str(image), "--model", "bicubic", "--scale", "4", "--out", str(out)]) == 0
    )
    face = out / "still_face0_bicubic_x4.png"
    full = out / "still_bicubic_x4_full.png"
    sidecar = out / "still_bicubic_x4_provenance.json"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (face, full, sidecar))
    assert capsys.readouterr().out.split() == [str(face), str(full), str(sidecar)]
    with Image.open(face) as im:
        assert im.size == (128, 128)
        assert im.text["Disclaimer"] == provenance.AI_LABEL
        embedded = json.loads(im.text["ffe-provenance"])
    assert embedded["model"]["id"] == "bicubic" and embedded["face"]["manual"] is False
    with Image.open(full) as im:
        assert im.size == (408, 408) and im.text["Disclaimer"] == provenance.AI_LABEL
    document = json.loads(sidecar.read_text())
    assert document["label"] == provenance.AI_LABEL
    assert document["input"]["sha256"] == io.sha256_file(image)
    assert [f["face"]["index"] for f in document["faces"]] == [0]
    assert document["faces"][0]["parameters"]["detector"] == "hog"
    recorded = {Path(o["path"]).name: o["sha256"] for o in document["outputs"]}
    assert recorded == {face.name: io.sha256_file(face), full.name: io.sha256_file(full)}
    assert sorted(image.parent.iterdir()) == [image]  # nothing written next to the input


def test_enhance_with_a_box(tmp_path, image):
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "lanczos", "--scale", "4", "--out", str(out)]
    assert main([*args, "--box", BOX]) == 0
    document = json.loads((out / "still_lanczos_x4_provenance.json").read_text())
    assert document["faces"][0]["face"]["manual"] is True
    assert document["faces"][0]["parameters"]["requested_box"] == [35, 15, 53, 33]
    with Image.open(out / "still_lanczos_x4_full.png") as im:
        assert im.size == (408, 408)


def test_refuses_the_input_folder_and_overwriting(tmp_path, image, capsys):
    base = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*base, "--out", str(image.parent)]) == 2
    assert "input image's own folder" in capsys.readouterr().err
    assert sorted(image.parent.iterdir()) == [image]
    assert main([*base, "--out", str(image.parent), "--allow-input-dir"]) == 0
    out = tmp_path / "out"
    assert main([*base, "--out", str(out)]) == 0
    before = (out / "still_bicubic_x4_full.png").stat().st_mtime_ns
    assert main([*base, "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (out / "still_bicubic_x4_full.png").stat().st_mtime_ns == before
    assert main([*base, "--out", str(out), "--overwrite"]) == 0


def test_exit_codes_for_bad_input(tmp_path, image, empty_weights, capsys):
    out = str(tmp_path / "out")
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
    cases = [
        ([str(not_image), "--model", "bicubic", "--scale", "4"], "Cannot open notes.png"),
        ([str(blank), "--model", "bicubic", "--scale", "4"], "no face found in blank.png"),
        ([str(image), "--model", "s4_idrn", "--scale", "8"], "x8 has no trained weights installed"),
        ([str(image), "--model", "s4_idrn"], "IDRN (Fan et al. 2019) has no installed weights"),
        ([str(image), "--model", "srgan", "--scale", "4"], "unknown model 'srgan'"),
        ([str(image), "--model", "s2_rafsr", "--scale", "3"], "not x3"),
        ([str(image), "--model", "bicubic", "--scale", "4", "--box", "1,2"], "--box must be"),
        ([str(image), "--model", "bicubic", "--scale", "4", "--face", "5"], "has 1 face(s)"),
    ]
    for args, message in cases:
        assert main(["enhance", *args, "--out", out]) == 2, message
        assert message in capsys.readouterr().err
    assert not Path(out).exists() or not any(Path(out).iterdir())
    assert main(["enhance", str(image)]) == 2  # argparse: --model missing
    assert main(["enhance", str(image), "--model", "bicubic", "--scale", "big"]) == 2
    assert main(["--help"]) == 0
    assert main(["batch", "--help"]) == 0  # the folder command is wired in too


def test_console_script_points_at_main():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(s.name == "ffe" and s.value == "engine.__main__:main" for s in scripts)
