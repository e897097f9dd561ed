"""Make resources/samples/cctv_face.mp4, the sample clip, and its record of frame hashes.

    .venv/bin/python scripts/make_sample_clip.py [--out resources/samples/cctv_face.mp4]

The sample portrait (resources/samples/astronaut.png), shrunk so the face spans about 35 px
(what x4 is made for), placed in a 224x160 grey scene and filmed as a CCTV camera would: it
drifts slowly with sub-pixel jitter and a small rotation, the sensor adds noise, and the
frames are H.264-encoded through PyAV at a low bitrate (about 0.3 bit per pixel, 12 frames a
second, an I-frame every 12). Deterministic: a fixed seed, and libx264 on one thread
(engine.video.encode_clip), so the same PyAV gives the same bytes. Next to the clip,
``cctv_face.json`` records the file's SHA-256 and every frame's index, time, type and the
SHA-256 of its decoded pixels; tests/engine/test_sample_clip.py checks that reopening the
clip reproduces them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import video  # noqa: E402

SAMPLE = REPO / "resources" / "samples" / "astronaut.png"
OUT = REPO / "resources" / "samples" / "cctv_face.mp4"
SIZE = (224, 160)  # width, height of the scene
PORTRAIT = 112  # the 256 px portrait shrunk to this (face about 35 px: x4 at Auto)
FRAMES, FPS, GOP = 24, 12, 12
BITS_PER_PIXEL = 0.3
NOISE = 3.0  # sensor noise, grey levels (sigma)
SEED = 25


def scene() -> np.ndarray:
    """The background: a soft vertical gradient, like a wall under a ceiling light."""
    w, h = SIZE
    column = np.linspace(150, 95, h, dtype=np.float64)[:, None, None]
    return np.broadcast_to(column * np.array([1.0, 0.97, 0.92]), (h, w, 3)).copy()


def frames() -> list[np.ndarray]:
    """Every frame: the portrait moved (drift, jitter, rotation) into the scene, with noise."""
    rng = np.random.default_rng(SEED)
    portrait = np.asarray(
        Image.open(SAMPLE).convert("RGB").resize((PORTRAIT, PORTRAIT), Image.Resampling.LANCZOS),
        dtype=np.float64,
    )
    w, h = SIZE
    out = []
    for i in range(FRAMES):
        x = 62 + 0.35 * i + rng.uniform(-0.5, 0.5)  # slow drift and sub-pixel jitter
        y = 30 + 0.1 * i + rng.uniform(-0.5, 0.5)
        angle = rng.uniform(-1.5, 1.5)  # degrees
        m = cv2.getRotationMatrix2D((PORTRAIT / 2, PORTRAIT / 2), angle, 1.0)
        m[:, 2] += (x, y)
        moved = cv2.warpAffine(portrait, m, (w, h), flags=cv2.INTER_CUBIC)
        inside = cv2.warpAffine(np.ones((PORTRAIT, PORTRAIT)), m, (w, h), flags=cv2.INTER_LINEAR)
        frame = moved + (1.0 - inside[..., None]) * scene() + rng.normal(0, NOISE, moved.shape)
        out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return out


def record(path: Path) -> dict:
    """The clip's SHA-256 and every frame's index, time, type and pixel SHA-256."""
    with video.open_clip(path) as clip:
        info = clip.info.record()
        info.pop("path", None)  # where it was made: not part of the record
        listed = [clip.frame(i).record() for i in range(len(clip))]
    return {"clip": info, "frames": listed, "made_by": "scripts/make_sample_clip.py"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists():
        out.unlink()  # encode_clip never overwrites: remaking the sample is asked for here
    w, h = SIZE
    rate = int(BITS_PER_PIXEL * w * h * FPS)
    video.encode_clip(out, frames(), fps=FPS, bit_rate=rate, gop=GOP)
    data = record(out)
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    out.with_suffix(".json").write_text(text, "utf-8")
    print(f"{out}: {out.stat().st_size} bytes, {len(data['frames'])} frames, {rate} bit/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
