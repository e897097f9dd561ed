"""Shared fixtures for the training tests: small face images made from the sample portrait."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The 256x256 public-domain sample portrait (RGB uint8)."""
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


def variants(rgb: np.ndarray, n: int) -> list[np.ndarray]:
    """`n` different photos of the same face: scaled, shifted and brightness-changed copies."""
    out = []
    for i in range(n):
        scale = 1.0 + 0.15 * (i % 3)
        side = int(round(256 * scale))
        big = np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC))
        dx, dy = (i * 7) % 23, (i * 11) % 19
        crop = big[dy : dy + 240, dx : dx + 240].astype(np.float32) * (0.85 + 0.05 * (i % 4))
        out.append(np.clip(crop, 0, 255).astype(np.uint8))
    return out


@pytest.fixture()
def tiny_datasets(tmp_path: Path, astronaut: np.ndarray) -> Path:
    """A datasets folder laid out like ../shared/datasets with 4 CelebAMask-HQ-like photos
    (with 19-class masks), 3 UTKFace-like photos and one photo without a face."""
    root = tmp_path / "datasets"
    images, masks, utk = (
        root / "celebamask_hq" / "images",
        root / "celebamask_hq" / "masks",
        root / "utkface",
    )
    for d in (images, masks, utk):
        d.mkdir(parents=True)
    photos = variants(astronaut, 7)
    for i, photo in enumerate(photos[:4]):
        Image.fromarray(photo).save(images / f"c{i}.jpg", quality=95)
        mask = np.zeros(photo.shape[:2], np.uint8)
        mask[60:200, 60:180] = 1  # skin
        mask[100:110, 80:100] = 5  # r_eye
        mask[100:110, 120:140] = 4  # l_eye
        mask[0:40, :] = 13  # hair
        Image.fromarray(mask, mode="L").save(masks / f"c{i}.png")
    for i, photo in enumerate(photos[4:]):
        Image.fromarray(photo).save(utk / f"{20 + i}_0_0_2017.jpg.chip.jpg", quality=95)
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(utk / "99_1_0_blank.jpg.chip.jpg")
    return root


@pytest.fixture(scope="session")
def face_cache(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """A synthetic training cache (6 crops of the sample per split, a padded strip masked)."""
    from training import data

    cache = tmp_path_factory.mktemp("cache") / "faces"
    cache.mkdir()
    crops = [
        np.asarray(Image.fromarray(v[20:220, 20:220]).resize((128, 128)))
        for v in variants(astronaut, 6)
    ]
    n = len(crops)
    parsing = np.zeros((n, 128, 128), np.uint8)
    parsing[:, 40:90, 30:100] = 1
    for split in data.SPLITS:
        np.save(cache / f"{split}_hr.npy", np.stack(crops))
        np.save(cache / f"{split}_landmarks.npy", np.full((n, 68, 2), 64, np.float32))
        valid = np.ones((n, 128, 128), np.uint8)
        valid[:, :, :10] = 0  # a padded strip, left out of the loss
        np.save(cache / f"{split}_valid.npy", valid)
        np.save(cache / f"{split}_parsing.npy", parsing)
    return cache
