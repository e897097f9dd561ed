"""The packaged application (PyInstaller, ``pyinstaller.spec``) and the smoke test it relies on.

Two groups:

* always run: ``python -m app --smoke-test`` logic, in this process (open the sample, wait for
  the engine and its face, quit 0; a still that cannot be opened quits 1);
* opt-in, ``FFE_TEST_BUNDLE=1``: the built bundle ``dist/ForensicFaceEnhancer/`` (build it with
  ``scripts/build_app.sh``, several minutes). CI has no bundle and building one takes minutes,
  so these tests run only when asked; the README says how. They start the bundled GUI
  offscreen with ``--smoke-test`` and run the bundled ``ffe`` CLI on the sample image.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from app import main as app_main
from engine import registry, weights

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = Path(os.environ.get("FFE_BUNDLE_DIR") or ROOT / "dist" / "ForensicFaceEnhancer")
SAMPLE = ROOT / "resources" / "samples" / "astronaut.png"
SMALL = ROOT / "resources" / "samples" / "astronaut_small.png"
SAMPLE_CLIP = ROOT / "resources" / "samples" / "cctv_face.mp4"

bundle_only = pytest.mark.skipif(
    os.environ.get("FFE_TEST_BUNDLE") != "1",
    reason="opt-in: build with scripts/build_app.sh, then run with FFE_TEST_BUNDLE=1",
)


# --------------------------------------------------------------------------- smoke test logic


def _tiny_clip(folder: Path) -> Path:
    """5 frames of the sample's face, moving sub-pixel (tests/clips.py)."""
    from tests.clips import face_clip

    return face_clip(folder / "clip.mp4", 5, seed=1)


def test_smoke_test_opens_a_clip(qapp, tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="app.main")
    clip = _tiny_clip(tmp_path)
    assert app_main.main(["ffe-gui", "--smoke-test", str(clip)]) == 0
    assert "clip.mp4 opened, 5 frame(s)" in caplog.text and "frame 0 decoded" in caplog.text


def _sample_frame0() -> str:
    recorded = json.loads(SAMPLE_CLIP.with_suffix(".json").read_text("utf-8"))
    return recorded["frames"][0]["pixels_sha256"]


def test_smoke_test_opens_the_sample_clip(qapp, caplog) -> None:
    caplog.set_level("INFO", logger="app.main")
    assert app_main.main(["ffe-gui", "--smoke-test", str(SAMPLE_CLIP)]) == 0
    assert "cctv_face.mp4 opened, 24 frame(s)" in caplog.text
    assert f"frame 0 decoded, pixels {_sample_frame0()[:16]}" in caplog.text


def test_smoke_test_passes_on_the_sample(qapp, caplog) -> None:
    caplog.set_level("INFO", logger="app.main")
    assert app_main.SAMPLE_PATH == SAMPLE and SAMPLE.is_file()
    assert app_main.main(["ffe-gui", "--smoke-test"]) == 0
    assert "astronaut.png opened, 1 face(s)" in caplog.text


def test_smoke_test_fails_on_a_bad_still(qapp, tmp_path, caplog) -> None:
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"this is not a PNG")
    assert app_main.main(["ffe-gui", "--smoke-test", str(bad)]) == 1
    assert "smoke test failed" in caplog.text


# --------------------------------------------------------------------------- the built bundle


def _env(tmp_path: Path) -> dict[str, str]:
    """Offscreen Qt and a throw-away HOME: the bundle must not touch the user's files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FFE_", "PYTHON"))}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / "config"),
        XDG_DATA_HOME=str(tmp_path / "home" / "data"),
        FFE_DEVICE="cpu",
    )
    return env


def _run(args: list[str], tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )


@bundle_only
def test_bundle_holds_programs_and_resources() -> None:
    assert (BUNDLE / "ForensicFaceEnhancer").is_file()
    assert (BUNDLE / "ffe").is_file()
    internal = BUNDLE / "_internal"
    assert (internal / "resources" / "weights" / "manifest.json").is_file()
    assert (internal / "resources" / "icons" / "app.svg").is_file()
    assert (internal / "resources" / "samples" / "astronaut.png").is_file()
    assert (internal / "resources" / "samples" / SAMPLE_CLIP.name).is_file()
    assert list((internal / "av.libs").glob("libavcodec*.so*"))  # PyAV's FFmpeg, where av/ looks
    models = internal / "face_recognition_models" / "models"
    assert (models / "shape_predictor_68_face_landmarks.dat").is_file()
    assert (models / "mmod_human_face_detector.dat").is_file()
    platforms = internal / "PySide6" / "Qt" / "plugins" / "platforms"
    assert (platforms / "libqoffscreen.so").is_file()
    assert (platforms / "libqxcb.so").is_file()
    # excluded: not needed by the application
    assert not (internal / "torchvision").exists()
    assert not (internal / "training").exists()
    assert not (internal / "matplotlib").exists()


@bundle_only
def test_bundled_gui_smoke_test(tmp_path) -> None:
    done = _run([str(BUNDLE / "ForensicFaceEnhancer"), "--smoke-test"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "astronaut.png opened, 1 face(s)" in done.stderr
    assert "smoke test passed" in done.stderr


@bundle_only
def test_bundled_gui_smoke_test_opens_a_clip(tmp_path) -> None:
    clip = _tiny_clip(tmp_path)
    done = _run([str(BUNDLE / "ForensicFaceEnhancer"), "--smoke-test", str(clip)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clip.mp4 opened, 5 frame(s)" in done.stderr and "smoke test passed" in done.stderr


@bundle_only
def test_bundled_gui_opens_the_sample_clip_and_decodes_a_frame(tmp_path) -> None:
    """The committed H.264 sample: opened, indexed and frame 0 decoded to its recorded hash."""
    done = _run([str(BUNDLE / "ForensicFaceEnhancer"), "--smoke-test", str(SAMPLE_CLIP)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cctv_face.mp4 opened, 24 frame(s)" in done.stderr
    assert f"frame 0 decoded, pixels {_sample_frame0()[:16]}" in done.stderr


@bundle_only
def test_bundled_cli_lists_models(tmp_path) -> None:
    done = _run([str(BUNDLE / "ffe"), "models", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [row["id"] for row in json.loads(done.stdout)]
    assert ids == [entry.id for entry in registry.MODELS]


def _bundle_weights_status(model_id: str, scale: int) -> str:
    entry = registry.get(model_id)
    return weights.status(entry, scale, BUNDLE / "_internal" / "resources" / "weights")


@bundle_only
@pytest.mark.parametrize("model_id", ["bicubic", "s2_rafsr"])
def test_bundled_cli_enhances_the_sample(tmp_path, model_id) -> None:
    out = tmp_path / "out"
    # the 32 px face: x4 holds it (the 78 px one would be shrunk, which the CLI refuses)
    args = [str(BUNDLE / "ffe"), "enhance", str(SMALL), "--model", model_id, "--scale", "4"]
    done = _run([*args, "--out", str(out)], tmp_path)
    if model_id != "bicubic" and _bundle_weights_status(model_id, 4) != "installed":
        # No trained weights shipped yet: the CLI must refuse clearly, never run random weights.
        assert done.returncode == 2, done.stderr[-3000:]
        assert "no trained weights" in done.stderr
        return
    assert done.returncode == 0, done.stderr[-3000:]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 2, pngs  # the SR face and the whole image
    provenance = list(out.glob("*provenance*.json"))
    assert provenance
    assert all(p.stat().st_size > 0 for p in out.iterdir())


@bundle_only
def test_bundled_cli_opens_a_clip_and_fuses(tmp_path) -> None:
    """PyAV's FFmpeg inside the bundle: a clip made here (H.264) is opened, tracked and fused."""
    clip = _tiny_clip(tmp_path)
    out = tmp_path / "out"
    args = [str(BUNDLE / "ffe"), "video", str(clip), "--model", "bicubic"]  # --scale auto
    done = _run([*args, "--fuse", "5", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(next(out.glob("*_provenance.json")).read_text())
    assert record["clip"]["codec"] == "h264" and record["clip"]["frame_count"] == 5
    frames = record["fused"]["parameters"]["fusion"]["frames"]
    used = [f for f in frames if f["registration"]["used"]]
    assert len(frames) == 5 and len(used) >= 3  # each rejected one says why
    assert record["fused"]["parameters"]["frames_fused"] == len(used)
    assert record["fused"]["resolution"]["requested_scale"] == "auto"


@bundle_only
def test_bundled_cli_runs_a_network(tmp_path) -> None:
    """torch inside the bundle: a small RAFSR saved to a throw-away weights folder.

    These test weights are random and never shipped: they only prove that the frozen engine
    loads a verified safetensors file and runs a network. Shipped weights are covered by
    ``test_bundled_cli_enhances_the_sample``.
    """
    entry = registry.get("s2_rafsr")
    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / registry.weight_filename(entry, 4)
    module = registry.build(entry, 4, channels=16, n_ram=2, reduction=4)
    weights.save(module, entry, 4, path, training={"note": "random test weights"})
    weights.update_manifest(path)
    out = tmp_path / "out"
    args = [str(BUNDLE / "ffe"), "enhance", str(SMALL), "--model", "s2_rafsr", "--scale", "4"]
    env = {**_env(tmp_path), "FFE_WEIGHTS_DIR": str(folder)}
    done = subprocess.run(
        [*args, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(next(out.glob("*provenance*.json")).read_text())
    assert weights.file_sha256(path) in json.dumps(record)
    assert len(list(out.glob("*.png"))) >= 2
