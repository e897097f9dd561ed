"""The command line: `models` listing, `enhance` outputs, refusals and exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import io, provenance, registry
from engine.__main__ import main
from tests.conftest import SAMPLE

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


def _picture(path: Path) -> np.ndarray:
    """An output's pixels above its visible label strip (issue 26: outputs carry the label)."""
    with Image.open(path) as im:
        rows = json.loads(im.text["ffe-visible-label"])["picture_rows"]
        return np.asarray(im.convert("RGB"))[:rows]


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


def test_models_says_why_a_shared_file_does_not_serve_a_scale(capsys):
    """S1's robust file serves x4 and x8 only (the shipped weights): x2 reads "missing", and the
    listing says the file is there but covers other scales, not that it is gone."""
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith("s1_mffcn_robust "))
    line = lines[row + 1]
    assert "x2 missing (s1_mffcn_robust.safetensors covers x4, x8 only)" in line
    assert "x4 installed," in line and "x8 installed" in line


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
    assert _picture(face).shape == (128, 128, 3)
    with Image.open(face) as im:
        assert im.text["Disclaimer"] == provenance.AI_LABEL
        embedded = json.loads(im.text["ffe-provenance"])
    assert embedded["model"]["id"] == "bicubic" and embedded["face"]["manual"] is False
    assert _picture(full).shape == (408, 408, 3)
    with Image.open(full) as im:
        assert im.text["Disclaimer"] == provenance.AI_LABEL
    document = json.loads(sidecar.read_text())
    assert document["label"] == provenance.AI_LABEL
    assert document["input"]["sha256"] == io.sha256_file(image)
    assert [f["face"]["index"] for f in document["faces"]] == [0]
    assert document["faces"][0]["parameters"]["detector"] == "hog"
    assert document["faces"][0]["parameters"]["detector_setting"] == "auto"
    recorded = {Path(o["path"]).name: o["sha256"] for o in document["outputs"]}
    assert recorded == {face.name: io.sha256_file(face), full.name: io.sha256_file(full)}
    assert sorted(image.parent.iterdir()) == [image]  # nothing written next to the input


def test_source_date_epoch_makes_two_runs_byte_identical(tmp_path, image, monkeypatch):
    """Without it each run's records carry their own time (the pixels are the same); with
    SOURCE_DATE_EPOCH every output file is the same bytes, and the records say the time is fixed."""
    out = tmp_path / "out"  # the records name the output paths: the same folder both times

    def run() -> dict[str, bytes]:
        args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--out", str(out)]
        assert main([*args, "--overwrite"]) == 0
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = run()
    time.sleep(1.1)  # a second later: a time taken from the clock would differ
    second = run()
    assert len(first) == 3 and first == second
    document = json.loads(first["still_bicubic_x4_provenance.json"])
    assert document["time_utc"] == "2023-11-14T22:13:20+00:00"
    assert document["time_fixed_by"] == "SOURCE_DATE_EPOCH"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH must be whole seconds"):
        provenance.record_time()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert set(provenance.record_time()) == {"time_utc"}


def test_enhance_with_a_box(tmp_path, image):
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "lanczos", "--scale", "4", "--out", str(out)]
    assert main([*args, "--box", BOX]) == 0
    document = json.loads((out / "still_lanczos_x4_provenance.json").read_text())
    assert document["faces"][0]["face"]["manual"] is True
    assert document["faces"][0]["parameters"]["requested_box"] == [35, 15, 53, 33]
    assert _picture(out / "still_lanczos_x4_full.png").shape == (408, 408, 3)


def test_a_box_over_the_hair_is_warned_about_and_recorded(tmp_path, image, capsys):
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "lanczos", "--scale", "4", "--out", str(out)]
    assert main([*args, "--box", "33.2,2.4,54.8,31.2"]) == 0
    err = capsys.readouterr().err
    assert "ffe: warning: --box: " in err and "do not follow a face" in err
    face = json.loads((out / "still_lanczos_x4_provenance.json").read_text())["faces"][0]["face"]
    assert face["drawn_boxes"] == [[33.2, 2.4, 54.8, 31.2]]
    assert len(face["fit_warnings"]) == 1 and "do not follow a face" in face["fit_warnings"][0]
    assert main([*args, "--box", BOX, "--overwrite"]) == 0  # the face's own box: no warning
    assert "--box:" not in capsys.readouterr().err


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
        (
            [str(blank), "--model", "bicubic", "--scale", "4"],
            "by the HOG or the CNN detector (give --box)",
        ),
        (
            [str(blank), "--model", "bicubic", "--detector", "hog"],
            "by the HOG detector (try --detector cnn, or give --box)",
        ),
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
    assert main(["enhance", str(image)]) == 2  # argparse: --out missing
    assert main(["enhance", str(image), "--model", "bicubic", "--scale", "big"]) == 2
    assert main(["--help"]) == 0
    assert main(["batch", "--help"]) == 0  # the folder command is wired in too


def test_console_script_points_at_main():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(s.name == "ffe" and s.value == "engine.__main__:main" for s in scripts)


# --------------------------------------------------------------------------- issue 26


@pytest.mark.parametrize(
    "box, message",
    [
        ("nan,nan,nan,nan", "finite"),
        ("inf,0,10,10", "finite"),
        ("0,0,1e309,10", "finite"),
        ("-5,0,20,20", "not inside"),
        ("35,15,500,33", "not inside"),
        ("53,15,35,33", "not inside"),
    ],
)
def test_box_must_be_finite_and_inside_the_image(tmp_path, image, capsys, box, message):
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--out", str(out)]
    assert main([*args, f"--box={box}"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_file_name_that_is_not_utf8_works(tmp_path, image, capsys):
    odd = image.with_name(os.fsdecode(b"caf\xe9 \xff.png"))
    image.rename(odd)
    out = tmp_path / "out"
    args = ["enhance", str(odd), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"]["path"].endswith("caf\\xe9 \\xff.png")
    sidecar = out / "caf\\xe9 \\xff_bicubic_x4_provenance.json"
    document = json.loads(sidecar.read_text("utf-8"))
    assert document["input"]["name"] == "caf\\xe9 \\xff.png"
    with Image.open(out / "caf\\xe9 \\xff_face0_bicubic_x4.png") as im:
        assert json.loads(im.text["ffe-provenance"])["input"]["path"].endswith("\\xff.png")


def test_input_folder_guard_sees_through_symbolic_links(tmp_path, image, capsys):
    base = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    link = tmp_path / "link_to_case"
    link.symlink_to(image.parent, target_is_directory=True)
    assert main([*base, "--out", str(link)]) == 2  # the evidence folder under another name
    assert "own folder" in capsys.readouterr().err
    # a link to the evidence file: its folder is the evidence folder too
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = elsewhere / "still.png"
    linked.symlink_to(image)
    via_link = ["enhance", str(linked), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*via_link, "--out", str(image.parent)]) == 2
    assert main([*via_link, "--out", str(elsewhere)]) == 2
    assert sorted(image.parent.iterdir()) == [image]


def test_too_large_full_image_is_skipped_and_the_faces_written(
    tmp_path, image, monkeypatch, capsys
):
    from engine import faces as facelib

    monkeypatch.setattr(facelib, "MAX_PASTE_PIXELS", 100 * 100)
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out)]) == 0
    assert "full image not written" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["still_bicubic_x4_provenance.json", "still_face0_bicubic_x4.png"]


def test_a_failed_write_leaves_nothing_that_blocks_the_rerun(tmp_path, image, monkeypatch):
    import errno

    real = io.write_bytes_atomic

    def full_disk(path, data):
        if str(path).endswith(".json"):
            raise io.OutputError(path, "the disk is full") from OSError(errno.ENOSPC, "full")
        return real(path, data)

    monkeypatch.setattr(io, "write_bytes_atomic", full_disk)
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out)]) == 1
    assert not any(out.iterdir())
    monkeypatch.setattr(io, "write_bytes_atomic", real)
    assert main([*args, "--out", str(out)]) == 0


def test_enhance_appends_to_the_case_log(tmp_path, image, capsys):
    from engine import caselog

    log_path = tmp_path / "logs" / "case_log.jsonl"
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out), "--case-log", str(log_path), "--examiner", "A. B"]) == 0
    log = caselog.CaseLog(log_path)
    assert log.verify().ok
    entries = log.entries()
    assert [e["action"] for e in entries] == ["open", "enhance"]
    enhance = entries[1]
    assert enhance["examiner"] == "A. B" and enhance["input_sha256"] == io.sha256_file(image)
    files = {Path(o["path"]).name: o["sha256"] for o in enhance["outputs"]}
    assert set(files) == {
        "still_face0_bicubic_x4.png",
        "still_bicubic_x4_full.png",
        "still_bicubic_x4_provenance.json",
    }
    for name, sha in files.items():
        assert io.sha256_file(out / name) == sha
    assert "case log" in capsys.readouterr().err


def test_default_case_log_is_the_apps(tmp_path, image, monkeypatch):
    from engine import caselog

    monkeypatch.setenv("FFE_CASE_DIR", str(tmp_path / "app_case_dir"))
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert caselog.CaseLog(tmp_path / "app_case_dir" / "case_log.jsonl").verify().entries == 2
    # Without the variable: the folder saved in the GUI's settings file (read without Qt).
    monkeypatch.delenv("FFE_CASE_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    ini = tmp_path / "config" / "ForensicFaceEnhancer" / "Forensic Face Enhancer.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[General]\ncaseDir={tmp_path / 'chosen'}\n")
    assert caselog.default_case_dir() == tmp_path / "chosen"


def test_batch_appends_to_the_case_log(tmp_path, image):
    from engine import caselog

    log_path = tmp_path / "case_log.jsonl"
    out = tmp_path / "out"
    argv = ["batch", str(image.parent), str(out), "--model", "bicubic", "--scale", "4"]
    assert main([*argv, "--case-log", str(log_path)]) == 0
    (entry,) = caselog.CaseLog(log_path).entries()
    assert entry["action"] == "batch" and entry["details"]["ok"] == 1
    assert entry["outputs"][0]["sha256"] == io.sha256_file(out / "summary.csv")


def test_a_damaged_case_log_stops_the_run_before_any_work(tmp_path, image, capsys):
    log_path = tmp_path / "case_log.jsonl"
    log_path.write_bytes(b'{"half an entry')
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out), "--case-log", str(log_path)]) == 2
    assert "half-written" in capsys.readouterr().err and not out.exists()


def test_enhance_without_a_model_follows_the_evidence(tmp_path, image, capsys):
    """Issue 24: no --model: the variant the evidence calls for, said on stderr and recorded."""
    jpeg = image.with_name("still.jpg")
    Image.open(image).convert("RGB").save(jpeg, quality=40)
    out = tmp_path / "out"
    args = ["enhance", str(jpeg), "--scale", "4", "--box", BOX, "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "no --model given: using" in err and "JPEG quality \u2248 40" in err
    document = json.loads(next(out.glob("*_provenance.json")).read_text())
    record = document["faces"][0]
    choice = record["model_choice"]
    assert registry.get(record["model"]["id"]).variant == "robust"
    assert choice["recommended"] == choice["chosen"] == record["model"]["id"]
    assert record["evidence_quality"]["jpeg_quality"] == 40
    # with --model the recommendation is recorded all the same, and the override said
    clean = registry.get(record["model"]["id"]).twin
    out2 = tmp_path / "out2"
    assert main([*args[:-1], str(out2), "--model", clean]) == 0
    record = json.loads(next(out2.glob("*_provenance.json")).read_text())["faces"][0]
    assert record["model_choice"]["chosen"] == clean
    assert record["model_choice"]["recommended"] == choice["recommended"]
    assert "The analyst chose" in record["model_choice"]["reason"]


def test_an_internal_fault_is_a_sentence_not_a_traceback(tmp_path, image, monkeypatch, capsys):
    """A fault in the program (here the enhancer raising something no one expected) ends with a
    message naming the command and exit status 3; the input is untouched and nothing written."""
    from engine import enhance

    def broken(*_args, **_kwargs):
        raise RuntimeError("tensor sizes do not match")

    monkeypatch.setattr(enhance.Enhancer, "enhance", broken)
    before = io.sha256_file(image)
    out = tmp_path / "out"
    args = ["enhance", str(image), "--model", "bicubic", "--scale", "4", "--box", BOX]
    assert main([*args, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "internal error in 'enhance': RuntimeError: tensor sizes do not match" in err
    assert "Traceback" not in err
    assert io.sha256_file(image) == before and not out.exists()
    assert main(["-v", *args, "--out", str(out)]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_auto_detector_tries_the_cnn_when_hog_finds_nothing(tmp_path, hog_blind):
    """As in the app: HOG first, then the CNN; the provenance names the detector that found the
    face and the setting. (HOG is made blind here; the CNN really runs, on the 78 px sample.)"""
    still = Path(shutil.copy(SAMPLE, tmp_path / "still.png"))
    asked = hog_blind
    out = tmp_path / "out"
    assert main(["enhance", str(still), "--model", "bicubic", "--out", str(out)]) == 0
    assert asked == ["hog", "cnn"]
    document = json.loads((out / "still_bicubic_auto_provenance.json").read_text())
    parameters = document["faces"][0]["parameters"]
    assert (parameters["detector"], parameters["detector_setting"]) == ("cnn", "auto")
    asked.clear()
    hog_only = ["enhance", str(still), "--model", "bicubic", "--detector", "hog"]
    assert main([*hog_only, "--out", str(tmp_path / "hog")]) == 2
    assert asked == ["hog"]
