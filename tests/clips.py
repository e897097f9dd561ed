"""Clips for the tests, made on the fly: the sample face moving sub-pixel, with noise, encoded.

One helper for every video test (engine and app): the same seed gives the same frames, and
engine.video.encode_clip (libx264 on one thread) the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from engine import video

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "astronaut.png"
# rows, cols of a 128x128 crop around the face (box 46 px, native frame about 81 px)
FACE_REGION = (10, 138, 50, 178)


def moving_frames(
    n: int,
    seed: int = 0,
    *,
    region: tuple[int, int, int, int] | None = FACE_REGION,
    shift: float = 1.0,
    noise: float = 3.0,
) -> list[np.ndarray]:
    """``n`` frames of the sample (``region`` of it, or all of it for None), each shifted by a
    random sub-pixel amount in [-shift, shift] and given Gaussian noise of ``noise`` grey
    levels."""
    rgb = np.array(Image.open(SAMPLE).convert("RGB"))
    if region is not None:
        y0, y1, x0, x1 = region
        rgb = rgb[y0:y1, x0:x1]
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
        m[:, 2] = rng.uniform(-shift, shift, 2)
        moved = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        noisy = moved.astype(np.float64) + rng.normal(0, noise, moved.shape)
        out.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return out


def face_clip(path: Path, n: int, seed: int, bit_rate: int = 300_000, gop: int = 4) -> Path:
    """An H.264 clip of :func:`moving_frames` (the face region) at ``path``."""
    return video.encode_clip(path, moving_frames(n, seed), bit_rate=bit_rate, gop=gop)
