"""The committed sample clip (resources/samples/cctv_face.mp4): reopening it reproduces every
recorded frame hash, and its script remakes it byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine import io, video

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "resources" / "samples" / "cctv_face.mp4"


def test_reopening_the_sample_clip_reproduces_its_recorded_hashes() -> None:
    recorded = json.loads(CLIP.with_suffix(".json").read_text("utf-8"))
    assert CLIP.stat().st_size < 400_000
    assert io.sha256_file(CLIP) == recorded["clip"]["sha256"]
    with video.open_clip(CLIP) as clip:
        assert clip.info.sha256 == recorded["clip"]["sha256"]
        assert len(clip) == len(recorded["frames"]) == 24
        # backwards, so every frame is reached by seeking, not by decoding in order
        for expected in reversed(recorded["frames"]):
            frame = clip.frame(expected["index"])
            assert frame.record() == expected


def test_the_script_remakes_the_sample_clip_byte_for_byte(tmp_path) -> None:
    # In a fresh interpreter, as anyone remaking the sample runs it: the bytes must not depend
    # on what else ran in the process before (a full-suite run once differed in-process).
    out = tmp_path / "cctv_face.mp4"
    script = ROOT / "scripts" / "make_sample_clip.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == CLIP.read_bytes()
    made = json.loads(out.with_suffix(".json").read_text("utf-8"))
    made["clip"]["name"] = CLIP.name
    assert made == json.loads(CLIP.with_suffix(".json").read_text("utf-8"))
