"""The README's video figure: real footage, single frame vs fused, through ``python -m engine video``.

For each clip of ``../shared/datasets/video`` (Intel IoT sample videos, CC BY 4.0) the CLI is
run with its defaults (auto track, 8 frames, auto method) and one model; the figure shows, per
clip, the recorded face (the reference frame's pixels around the face, enlarged by nearest
neighbour: nothing invented), the model on that frame alone, the model on the fused face, and
the fusion alone (the reconstruction, or the fused input face when the trimmed mean was used).

Usage: ``nice python scripts/video_figure.py [--model s4_idrn] [--out docs/screenshots/video_fusion.png]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.__main__ import main as cli  # noqa: E402

CLIPS = {
    "classroom.gif": "0:24",
    "face-demographics-walking.gif": None,
    "head-pose-face-detection-female-and-male.gif": "0:24",
}
TILE = 160


def _tile(rgb: np.ndarray, nearest: bool = False) -> np.ndarray:
    method = Image.NEAREST if nearest else Image.BICUBIC
    return np.array(Image.fromarray(rgb).convert("RGB").resize((TILE, TILE), method))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--videos", type=Path, default=ROOT.parent / "shared" / "datasets" / "video"
    )
    parser.add_argument("--model", default="s4_idrn")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "screenshots" / "video_fusion.png"
    )
    args = parser.parse_args(argv)
    rows, captions = [], []
    work = Path(tempfile.mkdtemp(prefix="video_figure_"))
    for name, frames in CLIPS.items():
        out = work / Path(name).stem
        argv_cli = ["video", str(args.videos / name), "--model", args.model, "--scale", "4"]
        if frames:
            argv_cli += ["--frames", frames]
        if cli([*argv_cli, "--out", str(out)]) != 0:
            raise SystemExit(f"the CLI failed on {name}")
        doc = json.loads(next(out.glob("*_provenance.json")).read_text())
        stem = out / f"{Path(name).stem}_f{doc['reference_frame']['index']:06d}"
        frame = np.array(Image.open(f"{stem}_frame.png").convert("RGB"))
        x0, y0, x1, y1 = doc["fused"]["face"]["box"]
        side = max(x1 - x0, y1 - y0) * 1.8
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        top, left = int(max(0, cy - side / 2)), int(max(0, cx - side / 2))
        crop = frame[top : int(cy + side / 2), left : int(cx + side / 2)]
        fusion = doc["fused"]["parameters"]["fusion"]
        fine = Path(f"{stem}_fusion_fine.png")
        alone = fine if fine.exists() else Path(f"{stem}_fused_lr.png")
        tag = f"{args.model}_x4"
        tiles = [
            _tile(crop, nearest=True),
            _tile(np.array(Image.open(f"{stem}_single_{tag}.png"))),
            _tile(np.array(Image.open(f"{stem}_fused_{tag}.png"))),
            _tile(np.array(Image.open(alone)), nearest=not fine.exists()),
        ]
        rows.append(np.concatenate(tiles, axis=1))
        captions.append(
            f"{name}: frame {doc['reference_frame']['index']}, face {x1 - x0:.0f} px, "
            f"{fusion['frames_used']} frames fused ({fusion['fusion_method']})"
        )
    header = [
        "recorded (nearest)",
        f"{args.model}: 1 frame",
        f"{args.model}: fused",
        "fusion alone",
    ]
    width = TILE * 4
    canvas = Image.new("RGB", (width, 18 + len(rows) * (TILE + 16)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(header):
        draw.text((i * TILE + 4, 3), text, fill=(0, 0, 0))
    for r, (row, caption) in enumerate(zip(rows, captions, strict=True)):
        y = 18 + r * (TILE + 16)
        draw.text((4, y + 2), caption, fill=(0, 0, 0))
        canvas.paste(Image.fromarray(row), (0, y + 15))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
