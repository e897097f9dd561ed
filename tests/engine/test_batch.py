"""Tests of engine.batch: folder runs with faults, resume, cancel, pause, the CLI glue.

Inputs are generated from resources/samples/astronaut.png into tmp_path (small 80 px crops, so
dlib's detection stays fast); the interpolation baselines need no weights. One test trains
nothing but saves a tiny random RAFSR through engine.weights to exercise the batched network
path exactly as installed weights would be.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io as stdio
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import __main__ as cli
from engine import batch, export, imaging, registry, weights
from engine import faces as facelib
from engine import io as eio
from engine.batch import BatchError, run_batch
from engine.enhance import Cancelled, Enhancer
from engine.progress import PausableToken

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
BASELINES = ["bicubic", "lanczos"]


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def face80() -> np.ndarray:
    """An 80x80 crop of the sample with one face about 19 px wide (found by HOG; native frame
    about 33 px, so x4 enlarges it without shrinking it)."""
    rgb = np.asarray(eio.load(SAMPLE).rgb)
    return imaging.resize(np.ascontiguousarray(rgb[0:200, 30:230]), 80, 80)


def _save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file under ``root``."""
    return {
        p.relative_to(root).as_posix(): _sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _rows(out: Path) -> list[batch.SummaryRow]:
    rows = batch.read_summary(out / batch.SUMMARY_NAME)
    assert rows, "summary.csv is missing or unreadable"
    return rows


def _by_key(rows: list[batch.SummaryRow]) -> dict[tuple[str, str], batch.SummaryRow]:
    return {(r.file, r.model): r for r in rows}


def _assert_summary_matches_disk(out: Path) -> None:
    """Every listed output exists, every file on disk is listed, no temporary file is left."""
    listed = {p for r in _rows(out) for p in r.outputs}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        batch.SUMMARY_NAME,
        batch.MANIFEST_NAME,
    }
    assert listed == on_disk
    assert not [p for p in out.rglob("*.tmp")]


def _picture(path: Path) -> np.ndarray:
    """An output's pixels above its visible label strip (issue 26: outputs carry the label)."""
    with Image.open(path) as im:
        rows = json.loads(im.text["ffe-visible-label"])["picture_rows"]
        return np.asarray(im.convert("RGB"))[:rows]


def _png_provenance(path: Path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.text["ffe-provenance"])


@pytest.fixture
def evidence(tmp_path: Path, face80: np.ndarray) -> Path:
    """A folder with every kind of file a real case folder may hold."""
    root = tmp_path / "evidence"
    _save(root / "a.png", face80)
    _save(root / "sub" / "b.png", face80[:, ::-1])
    _save(root / "sub" / "two.png", np.concatenate([face80, face80], axis=1))  # two faces
    good = (root / "a.png").read_bytes()
    (root / "corrupt.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    (root / "notes.txt").write_text("interview notes, not an image\n")
    _save(root / "wall.png", np.full((48, 64, 3), 120, np.uint8))  # no face
    os.symlink(root / "deleted.png", root / "gone.png")  # dangling link: cannot be read
    return root


# ---------------------------------------------------------------- a whole run


def test_run_reports_every_file_and_writes_consistent_outputs(evidence: Path, tmp_path: Path):
    out = tmp_path / "results"
    before = _tree(evidence)
    events: list[batch.BatchEvent] = []

    summary = run_batch(evidence, out, BASELINES, 4, on_event=events.append)

    assert _tree(evidence) == before  # inputs untouched, nothing added among them
    assert (summary.files_total, summary.files_done) == (7, 7)
    assert (summary.ok, summary.no_face, summary.errors, summary.skipped) == (3, 1, 3, 0)
    assert summary.faces == 4 and not summary.cancelled
    rows = _by_key(_rows(out))
    assert len(rows) == 7 * len(BASELINES)
    status = {f: rows[(f, "bicubic")].status for f, _ in rows}
    assert status == {
        "a.png": "ok",
        "corrupt.png": "error",
        "gone.png": "error",
        "notes.txt": "error",
        "sub/b.png": "ok",
        "sub/two.png": "ok",
        "wall.png": "no_face",
    }
    assert "truncated or damaged" in rows[("corrupt.png", "bicubic")].error
    assert "not an image" in rows[("notes.txt", "lanczos")].error
    assert "does not exist" in rows[("gone.png", "bicubic")].error
    assert rows[("wall.png", "bicubic")].faces == 0
    assert rows[("sub/two.png", "lanczos")].faces == 2
    # The hash on record is the file's, also for a damaged file.
    for name in ("a.png", "sub/two.png", "corrupt.png", "notes.txt"):
        assert rows[(name, "bicubic")].sha256 == _sha(evidence / name)
    assert rows[("gone.png", "bicubic")].sha256 == ""

    assert rows[("sub/two.png", "bicubic")].outputs == [
        "sub/two_face0_bicubic_x4.png",
        "sub/two_face1_bicubic_x4.png",
        "sub/two_bicubic_x4_full.png",
        "sub/two_bicubic+lanczos_x4_provenance.json",
    ]
    assert rows[("wall.png", "lanczos")].outputs == ["wall_bicubic+lanczos_x4_provenance.json"]
    _assert_summary_matches_disk(out)

    assert _picture(out / "sub" / "two_face1_lanczos_x4.png").shape == (128, 128, 3)
    assert _picture(out / "sub" / "two_lanczos_x4_full.png").shape == (80 * 4, 160 * 4, 3)
    record = _png_provenance(out / "sub" / "two_face1_lanczos_x4.png")
    assert record["input"]["sha256"] == _sha(evidence / "sub" / "two.png")
    assert record["model"]["id"] == "lanczos" and record["face"]["index"] == 1
    # one face per forward pass (issue 26): its pixels never depend on the other faces
    assert record["parameters"]["batch"]["faces_per_forward_pass"] == 1
    assert record["parameters"]["detector"] == "hog"
    # issue 24: the batch keeps its --model, and records what the evidence recommended
    choice = record["model_choice"]
    assert choice["chosen"] == "lanczos" and choice["variant"] in ("robust", "psnr")
    assert choice["reason"].startswith(("Robust variant", "Clean-trained variant"))
    assert (choice["recommended"] != "lanczos") == ("The analyst chose" in choice["reason"])
    assert record["evidence_quality"]["jpeg_quality"] is None  # a PNG
    assert len(_png_provenance(out / "sub" / "two_lanczos_x4_full.png")["faces"]) == 2

    document = json.loads((out / "sub" / "two_bicubic+lanczos_x4_provenance.json").read_text())
    assert len(document["faces"]) == 2 * len(BASELINES)
    assert {o["path"]: o["sha256"] for o in document["outputs"]} == {
        p: _sha(out / p)
        for p in rows[("sub/two.png", "bicubic")].outputs + rows[("sub/two.png", "lanczos")].outputs
        if p.endswith(".png")
    }

    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    file_events = [e for e in events if e.kind == "file"]
    assert [e.files_done for e in file_events] == list(range(1, 8))
    assert {e.file for e in events if e.kind == "fault"} == {
        "corrupt.png",
        "gone.png",
        "notes.txt",
        "wall.png",
    }
    assert file_events[-1].faces_done == 4 and file_events[-1].eta_s == 0


def test_batch_output_equals_the_single_face_enhancer(tmp_path: Path, face80: np.ndarray):
    """The batch path (aligned once, batched, pasted once) gives the Enhancer's pixels."""
    src = _save(tmp_path / "in" / "a.png", face80)
    out = tmp_path / "out"
    run_batch(src.parent, out, ["bicubic"], 4)
    still = eio.load(src)
    face = facelib.detect(still.rgb)[0]
    result = Enhancer(device="cpu").enhance(
        still, face, "bicubic", 4, parameters={"detector": "hog"}
    )
    sr = _picture(out / "a_face0_bicubic_x4.png")
    assert np.array_equal(sr, result.sr)
    full = _picture(out / "a_bicubic_x4_full.png")
    # the replaced region is outlined (issue 26): every other pixel is the Enhancer's
    outline = np.all(full == export.OUTLINE_RGB, axis=2)
    assert 0 < outline.mean() < 0.2
    diff = np.abs(full.astype(int) - result.pasted.astype(int)).max(axis=2)
    assert diff[~outline].max() <= 1
    params = _png_provenance(out / "a_face0_bicubic_x4.png")["parameters"]
    assert set(result.provenance["parameters"]) <= set(params)


def test_full_image_too_large_still_writes_the_faces(tmp_path, face80, monkeypatch):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    out = tmp_path / "out"
    monkeypatch.setattr(facelib, "MAX_PASTE_PIXELS", 1000)
    summary = run_batch(src, out, ["bicubic"], 4)
    row = _rows(out)[0]
    assert summary.ok == 1 and row.status == "ok" and "too large" in row.error
    assert row.outputs == ["a_face0_bicubic_x4.png", "a_bicubic_x4_provenance.json"]
    _assert_summary_matches_disk(out)


def test_auto_detector_falls_back_to_the_cnn_per_photo(tmp_path, hog_blind):
    """--detector auto: HOG, then the CNN where HOG finds nothing; each record names both."""
    src = tmp_path / "in"
    _save(src / "a.png", np.asarray(eio.load(SAMPLE).rgb))
    asked = hog_blind
    out = tmp_path / "out"
    summary = run_batch(src, out, ["bicubic"], "auto", detector="auto")
    assert summary.ok == 1 and asked == ["hog", "cnn"]
    (face_png,) = sorted(out.glob("a_face0_*.png"))
    parameters = _png_provenance(face_png)["parameters"]
    assert (parameters["detector"], parameters["detector_setting"]) == ("cnn", "auto")
    with pytest.raises(batch.BatchError, match="use auto, hog, cnn"):
        run_batch(src, tmp_path / "other", ["bicubic"], 4, detector="mtcnn")


# ---------------------------------------------------------------- output folder faults


def test_output_inside_or_equal_to_input_is_refused_before_writing(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    before = _tree(src)
    for out in (src, src / "results", src / "." / "deep" / "..", tmp_path):
        with pytest.raises(BatchError, match="input folder"):
            run_batch(src, out, ["bicubic"], 4)
    assert _tree(src) == before and sorted(p.name for p in src.iterdir()) == ["a.png"]
    with pytest.raises(BatchError, match="does not exist"):
        run_batch(tmp_path / "missing", tmp_path / "out", ["bicubic"], 4)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(BatchError, match="cannot be created"):
        run_batch(src, blocker / "out", ["bicubic"], 4)
    with pytest.raises(BatchError, match="unknown model"):
        run_batch(src, tmp_path / "out", ["nope"], 4)
    with pytest.raises(BatchError, match="not x5"):
        run_batch(src, tmp_path / "out", ["bicubic"], 5)
    assert not (tmp_path / "out").exists()


def test_unwritable_subfolder_and_full_disk_become_rows(tmp_path, face80, monkeypatch):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    _save(src / "c.png", face80[:, ::-1])
    _save(src / "sub" / "b.png", face80)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the sub-folder's results should go")

    real_save = eio.save_png

    def full_disk_for_c(path, rgb, text=None):
        if Path(path).name.startswith("c_") and "_full" in Path(path).name:
            cause = OSError(errno.ENOSPC, "No space left on device")
            raise eio.OutputError(path, "writing failed (No space left on device)") from cause
        return real_save(path, rgb, text)

    monkeypatch.setattr(eio, "save_png", full_disk_for_c)
    summary = run_batch(src, out, ["bicubic"], 2)

    assert (summary.ok, summary.errors) == (1, 2)
    rows = _by_key(_rows(out))
    assert rows[("a.png", "bicubic")].status == "ok"
    c = rows[("c.png", "bicubic")]
    assert c.status == "error" and "disk is full" in c.error and c.outputs == []
    b = rows[("sub/b.png", "bicubic")]
    assert b.status == "error" and "results not written" in b.error and b.outputs == []
    # The face of c.png had been written before the full image failed: it was removed again.
    assert not list(out.glob("c_*"))
    assert (out / "sub").is_file()
    listed = {p for r in rows.values() for p in r.outputs}
    assert listed == {p.name for p in out.iterdir()} - {"summary.csv", "run.json", "sub"}


# ---------------------------------------------------------------- cancel, resume, pause


def test_cancel_then_resume_skips_finished_files(tmp_path, face80):
    src = tmp_path / "in"
    names = ["p1.png", "p2.png", "p3.png", "sub/p4.png"]
    for i, name in enumerate(names):
        _save(src / name, np.clip(face80.astype(int) + 3 * i, 0, 255).astype(np.uint8))
    before = _tree(src)
    out = tmp_path / "out"
    token = PausableToken()

    def cancel_after_two(event: batch.BatchEvent) -> None:
        if event.kind == "file" and event.files_done == 2:
            token.cancel()

    first = run_batch(src, out, ["bicubic"], 4, token=token, on_event=cancel_after_two)

    assert first.cancelled and first.files_done == 2
    rows = _by_key(_rows(out))
    assert {f for f, _ in rows} == {"p1.png", "p2.png"}
    _assert_summary_matches_disk(out)
    done_files = {p: (out / p).stat().st_mtime_ns for r in rows.values() for p in r.outputs}
    # A killed run may leave a temporary file: the next run removes it.
    stale = out / ".p3_face0_bicubic_x4.png.0123456789ab.tmp"
    stale.write_bytes(b"half a png")
    # ... or a task's staging folder (a killed run, or a cluster task that outlived its run)
    staged = out / batch.STAGING_NAME / "0000002.0123456789ab" / "p3_face0_bicubic_x4.png"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"a task's output the run never took")
    # p2 changes after the first run: it must be redone, not skipped.
    _save(src / "p2.png", face80[:, ::-1])

    events: list[batch.BatchEvent] = []
    second = run_batch(src, out, ["bicubic"], 4, on_event=events.append)

    assert not second.cancelled and (second.skipped, second.ok) == (1, 3)
    rows = _by_key(_rows(out))
    assert [rows[(n, "bicubic")].status for n in names] == ["skipped_done", "ok", "ok", "ok"]
    assert rows[("p2.png", "bicubic")].sha256 == _sha(src / "p2.png")
    for p in rows[("p1.png", "bicubic")].outputs:
        assert (out / p).stat().st_mtime_ns == done_files[p]  # not rewritten
    assert not stale.exists() and not (out / batch.STAGING_NAME).exists()
    _assert_summary_matches_disk(out)
    assert [e.status for e in events if e.kind == "file"][0] == "skipped_done"

    third = run_batch(src, out, ["bicubic"], 4)
    assert (third.skipped, third.ok) == (4, 0)
    assert all(r.status == "skipped_done" for r in _rows(out))
    _assert_summary_matches_disk(out)
    before["p2.png"] = _sha(src / "p2.png")
    assert _tree(src) == before


def test_resume_redoes_missing_outputs_and_removes_stale_ones(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    _save(src / "two.png", np.concatenate([face80, face80], axis=1))
    out = tmp_path / "out"
    run_batch(src, out, ["bicubic"], 4)
    assert (out / "two_face1_bicubic_x4.png").is_file()
    (out / "a_bicubic_x4_full.png").unlink()
    _save(src / "two.png", np.concatenate([face80, face80[:, :, ::-1] // 8], axis=1))  # 1 face

    again = run_batch(src, out, ["bicubic"], 4)

    assert (again.ok, again.skipped, again.faces) == (2, 0, 2)
    assert not (out / "two_face1_bicubic_x4.png").exists()  # the face that is gone
    _assert_summary_matches_disk(out)


def test_pause_holds_the_run_until_resumed(tmp_path, face80):
    src = tmp_path / "in"
    for name in ("a.png", "b.png", "c.png"):
        _save(src / name, face80)
    progress: list[tuple[int, int, str]] = []
    token = PausableToken(on_progress=lambda *args: progress.append(args))
    times: list[float] = []

    def on_event(event: batch.BatchEvent) -> None:
        if event.kind == "file":
            times.append(time.monotonic())
            if event.files_done == 1:
                token.pause()
                threading.Timer(0.6, token.resume).start()

    summary = run_batch(src, tmp_path / "out", ["bicubic"], 4, token=token, on_event=on_event)

    assert summary.ok == 3 and not summary.cancelled
    assert times[1] - times[0] >= 0.6
    assert progress == [(1, 3, "a.png: ok"), (2, 3, "b.png: ok"), (3, 3, "c.png: ok")]


def test_pausable_token_blocks_while_paused_and_cancel_ends_the_pause():
    token = PausableToken()
    token.check()  # running: returns at once
    token.pause()
    assert token.paused
    passed = threading.Event()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            token.check()
            passed.set()
            token.pause()
            token.check()
        except Cancelled as exc:
            failures.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert not passed.wait(0.2)  # blocked while paused
    token.resume()
    assert passed.wait(5)
    token.cancel()  # the worker paused again: cancel wakes it with Cancelled
    thread.join(5)
    assert not thread.is_alive() and len(failures) == 1 and not token.paused


# ---------------------------------------------------------------- batched networks


def test_batched_network_pass_equals_one_face_at_a_time(tmp_path, face80, monkeypatch):
    """A tiny random RAFSR, saved and loaded like installed weights, run on a two-face image."""
    import torch

    torch.manual_seed(0)
    entry = registry.get("s2_rafsr")
    module = registry.build(entry, 4, channels=8, n_ram=2, reduction=4).eval()
    wdir = tmp_path / "weights"
    wdir.mkdir()
    path = wdir / registry.weight_filename(entry, 4)
    sha = weights.save(module, entry, 4, path, training={"test": "random init"})
    weights.update_manifest(path)
    enhancer = Enhancer(device="cpu", weights_dir=str(wdir))
    model = enhancer.model("s2_rafsr", 4)

    rng = np.random.default_rng(0)
    lrs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)]
    batched = model.run_batch(lrs)
    for lr, sr in zip(lrs, batched, strict=True):
        assert sr.shape == (128, 128, 3)
        assert np.abs(sr.astype(int) - model.run(lr).astype(int)).max() <= 1

    src = tmp_path / "in"
    _save(src / "two.png", np.concatenate([face80, face80], axis=1))
    out = tmp_path / "out"
    summary = run_batch(src, out, ["s2_rafsr", "bicubic"], 4, enhancer=enhancer, batch_faces=16)
    assert summary.ok == 1 and summary.faces == 2
    assert summary.forward_passes == {"s2_rafsr": 1, "bicubic": 2}  # both faces in one pass
    rows = _by_key(_rows(out))
    assert rows[("two.png", "s2_rafsr")].weights_sha256 == sha
    assert rows[("two.png", "bicubic")].weights_sha256 == ""
    record = _png_provenance(out / "two_face1_s2_rafsr_x4.png")
    assert record["model"]["weights_sha256"] == sha
    # both faces of two.png share a pass; faces of other images may join it (timing)
    assert record["parameters"]["batch"]["faces_per_forward_pass"] >= 2
    _assert_summary_matches_disk(out)


# ---------------------------------------------------------------- naming, listing


def test_output_stems_keep_same_named_inputs_apart():
    stems = batch.output_stems(["a.png", "A.jpg", "b.png", "s/b.png", "s/c.tif"])
    assert stems == {
        "a.png": "a.png",
        "A.jpg": "A.jpg",
        "b.png": "b",
        "s/b.png": "s/b",
        "s/c.tif": "s/c",
    }


def test_list_inputs_sorted_with_or_without_subfolders(tmp_path):
    for name in ("b.png", "a.txt", "z/c.png", "m/n/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [rel for _, rel in batch.list_inputs(tmp_path)] == [
        "a.txt",
        "b.png",
        "m/n/d.png",
        "z/c.png",
    ]
    assert [rel for _, rel in batch.list_inputs(tmp_path, recursive=False)] == ["a.txt", "b.png"]


# ---------------------------------------------------------------- command line


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_batch_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["batch", *argv])


def test_cli_exit_codes(tmp_path, face80, monkeypatch):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"

    stream = stdio.StringIO()
    args = _parse([str(src), str(out), "--model", "bicubic", "--model", "lanczos", "--scale", "4"])
    assert args.func is cli.run_batch_from_args
    assert cli.run_batch_from_args(args, stream) == 0  # completed, though one file is bad
    text = stream.getvalue()
    assert "2/2 files" in text and "notes.txt" in text and "1 with errors" in text
    assert len(_rows(out)) == 4

    def code(argv: list[str]) -> tuple[int, str]:
        stream = stdio.StringIO()
        return cli.run_batch_from_args(_parse(argv), stream), stream.getvalue()

    assert code([str(src), str(src / "r"), "--model", "bicubic", "--scale", "4"])[0] == 2
    assert code([str(tmp_path / "nope"), str(out), "--model", "bicubic", "--scale", "4"])[0] == 2
    rc, text = code([str(src), str(out), "--model", "nope", "--scale", "4"])
    assert rc == 2 and "unknown model" in text
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    rc, text = code([str(src), str(out), "--model", "s2_rafsr", "--scale", "4"])
    assert rc == 2 and "s2_rafsr" in text
    assert not (src / "r").exists()
    # Wired into `python -m engine batch` by engine.__main__.
    from engine.__main__ import main

    assert main(["batch", str(src), str(out), "--model", "nope", "--scale", "4"]) == 2


def test_auto_scale_and_shrink_refusal_are_per_face_and_in_the_summary(tmp_path, face80):
    """One face of about 33 px and the same face at about 66 px, side by side: at Auto the first
    gets x4 and the second x2; a fixed x4 skips the second (it would shrink it 2x) and says so."""
    src = tmp_path / "in"
    big = imaging.resize(face80, 160, 160)
    canvas = np.full((160, 240, 3), 120, np.uint8)
    canvas[40:120, 0:80] = face80
    canvas[:, 80:240] = big
    _save(src / "pair.png", canvas)
    summary = run_batch(src, tmp_path / "auto", ["bicubic"], "auto")
    row = summary.rows[0]
    assert row.scale == "auto" and row.status == "ok" and row.faces == 2
    natives = [float(v) for v in row.native_frame_px.split(";")]
    assert 28 < natives[0] < 37 and 56 < natives[1] < 74
    assert row.scales_used == "x4;x2"
    assert all(float(v) <= 1.12 for v in row.evidence_shrink.split(";"))
    assert [float(v) for v in row.interocular_px.split(";")][1] > 12
    assert row.outputs[:3] == [
        "pair_face0_bicubic_x4.png",
        "pair_face1_bicubic_x2.png",
        "pair_bicubic_auto_full.png",
    ]
    full = _picture(tmp_path / "auto" / "pair_bicubic_auto_full.png")
    assert full.shape[:2] == (160 * 4, 240 * 4)  # the largest factor used
    record = _png_provenance(tmp_path / "auto" / "pair_face1_bicubic_x2.png")
    assert record["resolution"]["scale_used"] == 2 and record["parameters"]["lr_size"] == 64
    again = batch.read_summary(tmp_path / "auto" / "summary.csv")[0]
    assert again.scales_used == "x4;x2" and again.scale == "auto"

    fixed = run_batch(src, tmp_path / "x4", ["bicubic"], 4).rows[0]
    assert fixed.scales_used == "x4;refused" and fixed.evidence_shrink.split(";")[1] == ""
    assert "face 1: x4 shrinks this face 2" in fixed.error
    assert "pair_face1_bicubic_x4.png" not in fixed.outputs
    allowed = run_batch(src, tmp_path / "x4s", ["bicubic"], 4, allow_shrink=True).rows[0]
    assert allowed.scales_used == "x4;x4" and float(allowed.evidence_shrink.split(";")[1]) > 1.7
    assert "pair_face1_bicubic_x4.png" in allowed.outputs


# ---------------------------------------------------------------- issue 26: forensic guarantees


def test_file_names_that_are_not_utf8_work_everywhere_and_resume(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / os.fsdecode(b"cam\xe9 \xff.png"), face80)
    _save(src / "plain.png", face80)
    out = tmp_path / "out"
    first = run_batch(src, out, ["bicubic"], 4)
    assert first.ok == 2 and first.errors == 0
    rows = _by_key(_rows(out))
    assert ("cam\\xe9 \\xff.png", "bicubic") in rows
    row = rows[("cam\\xe9 \\xff.png", "bicubic")]
    assert row.status == "ok" and "cam\\xe9 \\xff_face0_bicubic_x4.png" in row.outputs
    (out / batch.SUMMARY_NAME).read_bytes().decode("utf-8")  # valid UTF-8 throughout
    document = json.loads((out / "cam\\xe9 \\xff_bicubic_x4_provenance.json").read_text("utf-8"))
    assert document["batch"]["input_file"] == "cam\\xe9 \\xff.png"
    _assert_summary_matches_disk(out)
    again = run_batch(src, out, ["bicubic"], 4)  # the rerun passes that file too
    assert again.skipped == 2 and again.errors == 0


def test_symbolic_links_out_of_the_input_folder_are_not_followed(tmp_path, face80):
    outside = _save(tmp_path / "private" / "other.png", face80)
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    (src / "leak.png").symlink_to(outside)
    (src / "inside.png").symlink_to(src / "a.png")
    out = tmp_path / "out"
    summary = run_batch(src, out, ["bicubic"], 4)
    rows = _by_key(_rows(out))
    leak = rows[("leak.png", "bicubic")]
    assert leak.status == "error" and "outside the input folder" in leak.error
    assert leak.sha256 == "" and not leak.outputs
    assert rows[("inside.png", "bicubic")].status == "ok"
    assert summary.errors == 1
    out2 = tmp_path / "out2"
    run_batch(src, out2, ["bicubic"], 4, follow_links=True)
    assert _by_key(_rows(out2))[("leak.png", "bicubic")].status == "ok"


def test_another_run_into_the_same_folder_is_refused_unless_overwrite(tmp_path, face80):
    first_in, second_in = tmp_path / "case1", tmp_path / "case2"
    _save(first_in / "a.png", face80)
    _save(second_in / "a.png", face80[:, ::-1])  # the same name, other evidence
    out = tmp_path / "out"
    run_batch(first_in, out, ["bicubic"], 4)
    manifest = json.loads((out / batch.MANIFEST_NAME).read_text())
    assert manifest["identity"]["models"] == [{"id": "bicubic", "weights_sha256": ""}]
    before = _tree(out)
    for args, why in [
        ((second_in, out, ["bicubic"], 4), "input_folder"),
        ((first_in, out, ["lanczos"], 4), "models"),
        ((first_in, out, ["bicubic"], 2), "scale"),
    ]:
        with pytest.raises(BatchError, match=f"another run.*{why}"):
            run_batch(*args)
        assert _tree(out) == before  # nothing replaced
    assert run_batch(first_in, out, ["bicubic"], 4).skipped == 1  # the same run resumes
    replaced = run_batch(second_in, out, ["lanczos"], 4, overwrite=True)
    assert replaced.ok == 1
    rows = _rows(out)
    assert [(r.file, r.model) for r in rows] == [("a.png", "lanczos")]
    assert rows[0].sha256 == _sha(second_in / "a.png")
    _assert_summary_matches_disk(out)  # the first run's files were removed with its summary


def test_a_file_not_written_by_the_run_is_never_replaced(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / "a_face0_bicubic_x4.png"
    theirs.write_bytes(b"someone else's file")
    summary = run_batch(src, out, ["bicubic"], 4)
    row = _rows(out)[0]
    assert summary.errors == 1 and row.status == "error" and "--overwrite" in row.error
    assert theirs.read_bytes() == b"someone else's file"


def test_resume_checks_each_output_against_its_recorded_sha256(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    _save(src / "b.png", face80[:, ::-1])
    out = tmp_path / "out"
    run_batch(src, out, ["bicubic"], 4)
    rows = _by_key(_rows(out))
    assert all(len(r.outputs_sha256) == len(r.outputs) for r in rows.values())
    for r in rows.values():
        for rel, sha in zip(r.outputs, r.outputs_sha256, strict=True):
            assert _sha(out / rel) == sha
    face = out / "a_face0_bicubic_x4.png"
    face.write_bytes(face.read_bytes()[:100])  # truncated after the run
    again = run_batch(src, out, ["bicubic"], 4)
    assert (again.ok, again.skipped) == (1, 1)
    assert _by_key(_rows(out))[("a.png", "bicubic")].status == "ok"
    with Image.open(face) as im:
        im.load()
    _assert_summary_matches_disk(out)


def _tiny_rafsr(tmp_path: Path) -> Enhancer:
    import torch

    torch.manual_seed(0)
    entry = registry.get("s2_rafsr")
    module = registry.build(entry, 4, channels=8, n_ram=2, reduction=4).eval()
    wdir = tmp_path / "weights"
    wdir.mkdir()
    path = wdir / registry.weight_filename(entry, 4)
    weights.save(module, entry, 4, path, training={"test": "random init"})
    weights.update_manifest(path)
    return Enhancer(device="cpu", weights_dir=str(wdir))


def _face_pixels(out: Path) -> dict[str, bytes]:
    return {p.name: _picture(p).tobytes() for p in sorted(out.rglob("*_face*_*.png"))}


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path, face80):
    """Issue 26: how many faces shared a forward pass must not change a face's pixels."""
    enhancer = _tiny_rafsr(tmp_path)
    src = tmp_path / "in"
    for i in range(4):
        faces = [np.clip(face80.astype(int) + 5 * i, 0, 255).astype(np.uint8)] * (1 + i % 2)
        _save(src / f"p{i}.png", np.concatenate(faces, axis=1))
    whole = tmp_path / "whole"
    run_batch(src, whole, ["s2_rafsr"], 4, enhancer=enhancer)
    token = PausableToken()

    def stop_after_one(event: batch.BatchEvent) -> None:
        if event.kind == "file" and event.files_done == 1:
            token.cancel()

    parts = tmp_path / "parts"
    stopped = run_batch(
        src, parts, ["s2_rafsr"], 4, enhancer=enhancer, token=token, on_event=stop_after_one
    )
    assert stopped.cancelled
    run_batch(src, parts, ["s2_rafsr"], 4, enhancer=enhancer)
    assert len(_face_pixels(whole)) == 6
    assert _face_pixels(parts) == _face_pixels(whole)


def test_command_line_writes_faces_by_default_and_the_full_photo_on_request(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    out = tmp_path / "out"
    argv = [str(src), str(out), "--model", "bicubic", "--scale", "4"]
    assert cli.run_batch_from_args(_parse(argv), stdio.StringIO()) == 0
    assert _rows(out)[0].outputs == ["a_face0_bicubic_x4.png", "a_bicubic_x4_provenance.json"]
    _assert_summary_matches_disk(out)
    # --full is another run (its outputs differ): refused in the same folder, fine in another
    assert cli.run_batch_from_args(_parse([*argv, "--full"]), stdio.StringIO()) == 2
    argv[1] = str(tmp_path / "out_full")
    assert cli.run_batch_from_args(_parse([*argv, "--full"]), stdio.StringIO()) == 0
    assert "a_bicubic_x4_full.png" in _rows(tmp_path / "out_full")[0].outputs


def test_summary_has_the_fidelity_columns(tmp_path, face80):
    src = tmp_path / "in"
    _save(src / "a.png", face80)
    _save(src / "wall.png", np.full((48, 64, 3), 120, np.uint8))
    out = tmp_path / "out"
    run_batch(src, out, ["bicubic"], 4)
    rows = _by_key(_rows(out))
    a = rows[("a.png", "bicubic")]
    assert float(a.consistency_db) > 30 and 0 <= float(a.landmark_drift) < 1
    assert a.fidelity == "pass"
    assert rows[("wall.png", "bicubic")].fidelity == ""
    header = (out / batch.SUMMARY_NAME).read_text().splitlines()[0].split(",")
    assert header[-3:] == ["consistency_db", "landmark_drift", "fidelity"]
