"""Data preparation (detect -> align -> arrays -> splits), parsing maps, degradations, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import faces, imaging
from training import data


def test_prepare_builds_splits_arrays_and_report(tiny_datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    report = data.prepare(out, tiny_datasets, workers=1, niceness=0, drop_blurry=0.25,
                          n_test=2, n_val_celeba=1, n_val_utk=1, seed=3)
    assert report["photos"] == {"celebamask_hq": 4, "utkface": 4}
    assert report["dropped"]["utkface"]["no face"] == 1  # the blank photo
    kept = sum(s["total"] for s in report["splits"].values()) + report["dropped_blurry"]["count"]
    assert kept == 7 - sum(sum(v.values()) for v in report["dropped"].values()) + 1
    assert report["splits"]["test"] == {"celebamask_hq": 2, "utkface": 0, "total": 2}
    assert report["dropped_blurry"]["count"] >= 1  # 25% of the 5 train/val candidates
    for split in data.SPLITS:
        n = report["splits"][split]["total"]
        hr = np.load(out / f"{split}_hr.npy", mmap_mode="r")
        assert hr.shape == (n, 128, 128, 3) and hr.dtype == np.uint8
        lm = np.load(out / f"{split}_landmarks.npy")
        assert lm.shape == (n, 68, 2) and lm.dtype == np.float32
        assert n == 0 or (lm.min() > 0 and lm.max() < 128)  # the face lies inside the crop
        valid = np.load(out / f"{split}_valid.npy")
        assert valid.shape == (n, 128, 128) and set(np.unique(valid)) <= {0, 1}
        parsing = np.load(out / f"{split}_parsing.npy")
        assert parsing.shape == (n, 128, 128) and parsing.max() <= 10
        assert len(json.loads((out / f"{split}_meta.json").read_text())) == n
    assert len(list((out / "test_png").glob("*.png"))) == 2
    # Test faces come from CelebAMask-HQ and keep its mask: hair (13) merged into background,
    # the annotated eyes mapped to our eye classes.
    parsing = np.load(out / "test_parsing.npy")
    assert {0, 1} <= set(np.unique(parsing)) and ({4, 5} & set(np.unique(parsing)))
    # The HR crop is exactly what the app's aligner makes of that photo.
    meta = json.loads((out / "test_meta.json").read_text())
    rgb = data.load_rgb(tiny_datasets / "celebamask_hq" / "images" / meta[0]["name"])
    face = max(faces.detect(rgb, upsample=0), key=lambda f: f.width * f.height)
    assert np.array_equal(faces.align(rgb, face).pixels, np.load(out / "test_hr.npy")[0])


def test_split_is_by_photo_and_reproducible() -> None:
    sources = ["celebamask_hq"] * 10 + ["utkface"] * 20
    sharp = np.arange(30, dtype=float)
    a, thr = data.split_indices(sources, sharp, 4, 2, 3, 0.1, seed=1)
    b, _ = data.split_indices(sources, sharp, 4, 2, 3, 0.1, seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    sets = [set(a[k].tolist()) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert all(sources[i] == "celebamask_hq" for i in a["test"]) and len(a["test"]) == 4
    assert len(a["val"]) == 5
    pool = sharp[np.setdiff1d(np.arange(30), a["test"])]
    assert thr == pytest.approx(np.quantile(pool, 0.1))
    assert all(sharp[i] >= thr for i in np.concatenate([a["train"], a["val"]]))


def test_rasterised_parsing_puts_parts_where_the_landmarks_are(astronaut: np.ndarray) -> None:
    face = faces.detect(astronaut)[0]
    aligned = faces.align(astronaut, face)
    lm = faces.transform_points(face.landmarks, aligned.matrix)
    labels = data.rasterise_parsing(lm)
    assert set(np.unique(labels)) == set(range(11))

    def at(i: int) -> int:
        x, y = np.round(lm[i]).astype(int)
        return int(labels[y, x])

    assert at(30) == 6  # nose tip
    right_eye = np.round(lm[36:42].mean(0)).astype(int)
    left_eye = np.round(lm[42:48].mean(0)).astype(int)
    assert labels[right_eye[1], right_eye[0]] == 4 and labels[left_eye[1], left_eye[0]] == 5
    assert labels[2, 2] == 0  # corner: background


def test_flip_tables_are_involutions() -> None:
    assert np.array_equal(data.FLIP_LANDMARKS[data.FLIP_LANDMARKS], np.arange(68))
    assert np.array_equal(data.FLIP_PARSING[data.FLIP_PARSING], np.arange(11))


def test_degradations(astronaut: np.ndarray) -> None:
    hr = np.ascontiguousarray(astronaut[:128, 64:192])
    assert np.array_equal(data.degrade(hr, 4), imaging.downscale(hr, 4))
    rng = np.random.default_rng(0)
    lr = data.degrade(hr, 4, "surveillance", rng)
    assert lr.shape == (32, 32, 3) and lr.dtype == np.uint8
    assert not np.array_equal(lr, imaging.downscale(hr, 4))
    with pytest.raises(ValueError, match="unknown degradation"):
        data.degrade(hr, 4, "fog")


def _write_cache(root: Path, astronaut: np.ndarray, n: int = 4) -> None:
    face = faces.detect(astronaut)[0]
    aligned = faces.align(astronaut, face)
    lm = faces.transform_points(face.landmarks, aligned.matrix).astype(np.float32)
    root.mkdir(parents=True, exist_ok=True)
    for split in data.SPLITS:
        np.save(root / f"{split}_hr.npy", np.stack([aligned.pixels] * n))
        np.save(root / f"{split}_landmarks.npy", np.stack([lm] * n))
        np.save(root / f"{split}_valid.npy", np.ones((n, 128, 128), np.uint8))
        np.save(root / f"{split}_parsing.npy", np.stack([data.rasterise_parsing(lm)] * n))


def test_batch_tensors_and_mirroring(tmp_path: Path, astronaut: np.ndarray) -> None:
    _write_cache(tmp_path, astronaut, 2)
    fs = data.FaceSet(tmp_path, "train")
    b = fs.batch(np.array([0, 1]), 4, flip=np.array([False, True]))
    assert b["hr"].shape == (2, 3, 128, 128) and b["lr"].shape == (2, 3, 32, 32)
    assert b["x"].shape == b["lr"].shape and b["mask"].shape == (2, 1, 128, 128)
    assert np.allclose(b["hr"][1].numpy(), b["hr"][0].flip(-1).numpy())
    # A mirrored face's landmarks land on the mirrored face: the right eye (class 4) of the
    # mirrored parsing map lies under the mirrored right-eye landmarks.
    lm1 = b["landmarks"][1].numpy() * 128 - 0.5
    eye = np.round(lm1[36:42].mean(0)).astype(int)
    assert int(b["parsing"][1, eye[1], eye[0]]) == 4
    up = fs.batch(np.array([0]), 4, model_input=lambda lr: imaging.upscale(lr, 4))
    assert up["x"].shape == (1, 3, 128, 128)


def test_x3_degradation_matches_the_apps_42_pixel_crop():
    # 128 is not a multiple of 3: the LR face is 128 // 3 = 42 px, the size the app aligns at x3,
    # so S1's multi-scale training sees x3 faces exactly as the app will feed them.
    hr = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert data.degrade(hr, 3).shape == (42, 42, 3)
    with pytest.raises(ValueError, match="cannot shrink"):
        data.degrade(hr[:2, :2], 3)
