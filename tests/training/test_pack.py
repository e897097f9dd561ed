"""The packed face cache (what travels to a GPU machine) unpacks to what the trainer reads, and
float16 copies of weights keep their records and load into the float32 networks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from engine import registry, weights
from training import pack, results_table, train
from training.data import FaceSet


def test_pack_then_unpack_gives_back_the_cache(face_cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(face_cache, src)
    landmarks = np.load(src / "train_landmarks.npy")
    landmarks[0, 0] = (12.3456, -3.21)  # off-grid and outside the frame: fixed point must hold
    np.save(src / "train_landmarks.npy", landmarks)
    (src / "report.json").write_text(json.dumps({"splits": {"train": {"total": 6}}}))
    sources = ["utkface"] * 4 + ["celebamask_hq"] * 2
    for split in ("train", "val"):
        (src / f"{split}_meta.json").write_text(json.dumps([{"source": s} for s in sources]))

    sizes = pack.pack(src, tmp_path / "packed", quality=94, val_faces=2)
    assert set(sizes) == {"train", "val"}
    counts = pack.unpack(tmp_path / "packed", tmp_path / "out")
    assert counts == {"train": 6, "val": 2}

    out = tmp_path / "out"
    hr, hr0 = np.load(out / "train_hr.npy"), np.load(src / "train_hr.npy")
    assert hr.shape == hr0.shape and hr.dtype == np.uint8
    mse = np.mean((hr.astype(float) - hr0) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35  # lossy, but close
    assert np.abs(np.load(out / "train_landmarks.npy") - landmarks).max() <= 1 / 128
    np.testing.assert_array_equal(
        np.load(out / "train_valid.npy"), np.load(src / "train_valid.npy")
    )
    np.testing.assert_array_equal(
        np.load(out / "train_parsing.npy"), np.load(src / "train_parsing.npy")
    )
    assert len(FaceSet(out, "val")) == 2  # the trainer reads the unpacked layout
    assert json.loads((out / "report.json").read_text())["splits"]["train"]["total"] == 6
    assert list(FaceSet(out, "train").sources()) == sources  # a source_mix works on the GPU too
    assert list(FaceSet(out, "val").sources()) == sources[:2]


def test_a_train_subset_keeps_every_face_of_the_kept_source(
    face_cache: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    shutil.copytree(face_cache, src)
    (src / "report.json").write_text("{}")
    sources = ["utkface"] * 4 + ["celebamask_hq"] * 2
    for split in ("train", "val"):
        (src / f"{split}_meta.json").write_text(json.dumps([{"source": s} for s in sources]))

    pack.pack(src, tmp_path / "packed", train_faces=3, keep_sources=("celebamask_hq",))
    counts = pack.unpack(tmp_path / "packed", tmp_path / "out")
    assert counts == {"train": 3, "val": 6}

    kept = FaceSet(tmp_path / "out", "train")
    assert sorted(kept.sources()) == ["celebamask_hq", "celebamask_hq", "utkface"]
    # each kept face travels with its own landmarks and parsing map, not its neighbour's
    picked = pack.train_subset([{"source": s} for s in sources], 3, ("celebamask_hq",))
    np.testing.assert_array_equal(
        np.load(tmp_path / "out" / "train_parsing.npy"),
        np.load(src / "train_parsing.npy")[picked],
    )
    landmarks = np.load(tmp_path / "out" / "train_landmarks.npy")
    assert np.abs(landmarks - np.load(src / "train_landmarks.npy")[picked]).max() <= 1 / 128


def test_halved_weights_keep_their_record_and_load(tmp_path: Path) -> None:
    entry = registry.get("s2_rafsr")
    kwargs = {"channels": 8, "n_ram": 1}
    model = registry.build(entry, 4, **kwargs)
    path = tmp_path / "s2_rafsr_x4.safetensors"
    record = {
        "run": "first",
        "steps": 5,
        "batch_size": 2,
        "images_seen": 10,
        "wall_minutes": 1.0,
        "hardware": "CPU test",
    }
    weights.save(model, entry, 4, path, record, kwargs=kwargs)

    (half,) = pack.halve_weights([path], tmp_path / "half")
    assert half.stat().st_size < path.stat().st_size * 0.6
    assert weights.read_metadata(half) == weights.read_metadata(path)
    assert [st["run"] for st in train.prior_stages(half)] == ["first"]
    from safetensors.torch import load_file

    loaded = registry.build(entry, 4, **kwargs)
    loaded.load_state_dict(load_file(str(half)))  # float16 file into float32 parameters
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_results_table_sums_minutes_per_machine() -> None:
    stages = [
        {"wall_minutes": 20.0, "hardware": "CPU AMD EPYC, 2 cores, 1 torch thread(s), torch 2.13"},
        {"wall_minutes": 7.5, "hardware": "CUDA NVIDIA H200"},
        {"wall_minutes": 12.0, "hardware": "CPU AMD EPYC, 2 cores, torch 2.13"},  # older record
    ]
    assert results_table.hardware_minutes(stages) == (
        "32 min CPU AMD EPYC, 2 cores; 8 min CUDA NVIDIA H200"
    )
