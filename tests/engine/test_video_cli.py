"""``python -m engine video``: end to end on a tiny clip made on the fly, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import io, video
from engine.__main__ import main
from tests.clips import face_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """6 frames of the sample's face region (128x128, face native 81 px), moving sub-pixel."""
    return face_clip(tmp_path_factory.mktemp("case") / "cam1.mp4", 6, seed=2)


def test_video_command_writes_fused_and_single_results(clip, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    before = clip.read_bytes()
    argv = [
        "video",
        str(clip),
        "--frames",
        "0:6",
        "--fuse",
        "5",
        "--model",
        "bicubic",
        "--scale",
        "4",
        "--allow-shrink",  # an 81 px face into x4's 32 px frame: asked for, and recorded
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in printed)
    assert sorted(p.name for p in out.iterdir()) == names
    prov_path = next(Path(p) for p in printed if p.endswith("_provenance.json"))
    doc = json.loads(prov_path.read_text())
    ref = doc["reference_frame"]["index"]
    stem = f"cam1_f{ref:06d}"
    assert {
        f"{stem}_frame.png",
        f"{stem}_fused_lr.png",
        f"{stem}_fusion_fine.png",
        f"{stem}_single_bicubic_x4.png",
        f"{stem}_fused_bicubic_x4.png",
    } <= set(names)
    # shrunk for the model: its output may not replace the recorded pixels (as for stills)
    assert not any(n.endswith("_full.png") for n in names)
    assert any("full image not built" in n for n in doc["fused"]["notes"])
    assert clip.read_bytes() == before
    # the clip and every frame used are identified; reopening reproduces the frame hashes
    assert doc["clip"]["sha256"] == io.sha256_file(clip)
    fusion = doc["fused"]["parameters"]["fusion"]
    used = [f for f in fusion["frames"] if f["registration"]["used"]]
    assert doc["fused"]["parameters"]["frames_fused"] == len(used) == 5
    with video.open_clip(clip) as reopened:
        for f in fusion["frames"]:
            assert reopened.frame(f["index"]).sha256 == f["pixels_sha256"]
            assert f["time_s"] == pytest.approx(f["index"] / 25)
    assert all(np.isfinite(f["registration"]["residual_rms"]) for f in used)
    assert doc["fused"]["input"]["video"]["frame"]["index"] == ref
    assert any("shrunk" in n for n in doc["fused"]["notes"])  # the 81 px face into 32 px
    assert doc["fused"]["input"]["sha256"] == doc["reference_frame"]["pixels_sha256"]
    # the saved frame is the decoded frame, bit for bit
    frame = io.load(out / f"{stem}_frame.png")
    assert video.pixels_sha256(frame.rgb) == doc["reference_frame"]["pixels_sha256"]
    outputs = {Path(o["path"]).name: o["sha256"] for o in doc["outputs"]}
    for name, sha in outputs.items():
        assert io.sha256_file(out / name) == sha
    with Image.open(out / f"{stem}_fused_bicubic_x4.png") as im:  # an AI output: labelled
        note = json.loads(im.text["ffe-visible-label"])
        fused = np.array(im)
    assert note["picture_rows"] == 128 and fused.shape[1:] == (128, 3)
    assert fused.shape[0] == 128 + note["strip_rows"] > 128  # the visible label strip below
    with Image.open(out / f"{stem}_fused_lr.png") as im:
        assert im.size == (32, 32) and "fusion" in im.text["Disclaimer"].lower()
    pixels = {
        name: video.pixels_sha256(io.load(out / name).rgb)
        for name in outputs
        if name.endswith(".png")
    }
    # the same command again: refused, nothing overwritten; --overwrite gives the same pixels
    # (the files' own bytes differ: their embedded records carry the time)
    assert main(argv) == 2
    assert "already exist" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    for name, sha in pixels.items():
        assert video.pixels_sha256(io.load(out / name).rgb) == sha, name  # deterministic


def test_video_command_refusals(clip, tmp_path, capsys) -> None:
    base = ["--model", "bicubic", "--scale", "4"]
    assert main(["video", str(clip), *base, "--out", str(clip.parent)]) == 2
    assert "own folder" in capsys.readouterr().err
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 100)
    assert main(["video", str(junk), *base, "--out", str(tmp_path / "o")]) == 2
    assert "junk.mp4" in capsys.readouterr().err
    assert main(["video", str(clip), *base, "--frames", "9:20", "--out", str(tmp_path / "o")]) == 2
    assert "--frames" in capsys.readouterr().err
    assert main(["video", str(clip), *base, "--track", "7", "--out", str(tmp_path / "o")]) == 2
    assert "track 7" in capsys.readouterr().err
    assert (
        main(["video", str(clip), "--model", "nope", "--scale", "4", "--out", str(tmp_path)]) == 2
    )
    # an x1 restore is refused before any frame is read (was an AssertionError after tracking)
    restore = ["--model", "s4_idrn_restore", "--scale", "1", "--out", str(tmp_path / "o")]
    assert main(["video", str(clip), *restore]) == 2
    assert "track and fuse needs a model that enlarges" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_report_names_the_clip_frame_and_fused_frames(clip, tmp_path, capsys) -> None:
    from engine import report

    out = tmp_path / "out"
    argv = ["video", str(clip), "--use", "0,2,3,5", "--model", "bicubic", "--scale", "4"]
    argv.append("--allow-shrink")
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    doc = json.loads(next(out.glob("*_provenance.json")).read_text())
    ref = doc["reference_frame"]["index"]
    with video.open_clip(clip) as reopened:
        still = reopened.still(ref)
    fused = np.array(Image.open(next(out.glob("*_fused_bicubic_x4.png"))))
    lr = np.array(Image.open(next(out.glob("*_fused_lr.png"))))
    result = {
        "model_id": "bicubic",
        "scale": 4,
        "face_index": 0,
        "lr": lr,
        "sr": fused,
        "provenance": doc["fused"],
    }
    page = report.build_html(still, [result], None, None)
    assert "cam1.mp4" in page and doc["clip"]["sha256"] in page
    assert f"index {ref}," in page and still.sha256 in page
    frames = doc["fused"]["parameters"]["fusion"]["frames"]
    assert [f["index"] for f in frames] == [0, 2, 3, 5]
    assert doc["fused"]["parameters"]["analyst"]["chosen"] == [0, 2, 3, 5]
    assert "Multi-frame fusion" in page and "4 of 4 frames used" in page
    for f in frames:
        assert f["pixels_sha256"] in page


def test_the_scale_follows_the_stills_policy(clip, tmp_path, capsys) -> None:
    """Auto picks the scale the face allows; a fixed scale that would shrink it is refused."""
    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "cctv_face.mp4"
    out = tmp_path / "auto"
    argv = ["video", str(sample), "--frames", "8:17", "--fuse", "4", "--model", "bicubic"]
    assert main([*argv, "--out", str(out)]) == 0  # --scale auto is the default
    capsys.readouterr()
    doc = json.loads(next(out.glob("*_provenance.json")).read_text())
    resolution = doc["fused"]["resolution"]
    assert resolution["requested_scale"] == "auto" and resolution["scale_used"] == 4
    assert resolution["evidence_shrink"] <= 1.11  # a 35 px face: x4's 32 px frame, in tolerance
    assert "picked by Auto" in doc["fused"]["parameters"]["what_happened"]
    assert list(out.glob("*_fused_bicubic_x4.png"))
    refused = ["video", str(clip), "--model", "bicubic", "--scale", "8"]
    assert main([*refused, "--out", str(tmp_path / "x8")]) == 2
    assert "shrinks this face" in capsys.readouterr().err and not (tmp_path / "x8").exists()
