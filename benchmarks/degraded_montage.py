"""Montage of degraded inputs through bicubic, the clean-trained and the robust models at x4
(issue 24's must-show), to be looked at: does the robust model remove the blocking, does the
clean one sharpen it into false detail, are there periodic artefacts?

    python benchmarks/degraded_montage.py [--faces 100,117,134,151,168,185] [--cache DIR]
        [--out docs/degraded_montage_x4.webp]  (WebP quality 95: a sixth of the PNG's size; --out X.png for exact pixels)

Rows: for each chosen held-out face (cache/faces/test_png, sorted; indices from the half not
used to choose the consistency thresholds) and each family of training/degrade.py, the
benchmark's seeded LR (the same LR as ``training.evaluate --degrade``). Columns: the true face,
the LR input (each LR pixel a 4x4 block), bicubic, then every x4 model that has a robust
variant installed, each clean-trained model next to its robust twin (the registry decides).
Every image is 128 px, unscaled: look at it at 100%. ``--cache`` reuses the model outputs of
benchmarks/consistency_compressed.py (``sr_<model>_<family>.npy``).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import imaging, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import hr_faces  # noqa: E402

SCALE = 4
CELL = 128
LABEL_W = 150
HEAD_H = 34
GAP = 2


def pairs() -> list[str]:
    """Clean-trained x4 models with an installed robust twin, each followed by that twin."""
    out = []
    for entry in registry.MODELS:
        twin = registry.robust_twin(entry.id)
        if entry.variant != "psnr" or twin is None or SCALE not in registry.get(twin).scales:
            continue
        if all(weights.status(registry.get(m), SCALE) == "installed" for m in (entry.id, twin)):
            out += [entry.id, twin]
    return out


def run(model_id: str, family: str, lrs: list[np.ndarray], idx: list[int], cache: Path | None):
    path = cache / f"sr_{model_id}_{family}.npy" if cache else None
    if path is not None and path.exists():
        return list(np.load(path, mmap_mode="r")[idx])
    model = weights.load(registry.get(model_id), SCALE, "cpu")
    return model.run_batch([lrs[i] for i in idx])


def periodic_ratio(images: np.ndarray, period: int) -> float:
    """Mean luma power at `period` px (horizontal and vertical frequency lines, Hann window)
    over the mean at the two neighbouring frequencies: about 1 without a grid, well above 1
    with one (the 4-px grid seen on GAN outputs)."""
    y = np.asarray(images, np.float64) @ np.array([0.299, 0.587, 0.114])
    y = y - y.mean(axis=(1, 2), keepdims=True)
    n = y.shape[1]
    window = np.hanning(n)[:, None] * np.hanning(n)[None, :]
    power = (np.abs(np.fft.fft2(y * window)) ** 2).mean(0)

    def line(k: int) -> float:
        return float(power[0, k] + power[k, 0] + power[1, k] + power[k, 1])

    k = n // period
    return line(k) / ((line(k - 2) + line(k + 2)) / 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=ROOT / "cache" / "faces" / "test_png")
    parser.add_argument("--faces", default="100,117,134,151,168,185")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "degraded_montage_x4.webp")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    idx = [int(i) for i in args.faces.split(",")]
    hr_list, _ = hr_faces(args.images, aligned=True)
    hr = [h for _, h in hr_list]
    models = pairs()
    columns = ["true face", "LR input", "bicubic", *models]
    rows = []  # (label, [images])
    for family in dg.FAMILIES:
        lrs = {k: dg.family_lr(hr[k], SCALE, family, k) for k in idx}
        lr_list = [lrs.get(k) for k in range(len(hr))]
        outs = {m: run(m, family, lr_list, idx, args.cache) for m in models}
        for n, k in enumerate(idx):
            lr = lrs[k]
            cells = [hr[k], imaging.upscale(lr, SCALE, "nearest"), imaging.upscale(lr, SCALE)]
            cells += [np.asarray(outs[m][n]) for m in models]
            rows.append((f"face {k}\n{family}", cells))
    order = {f: i for i, f in enumerate(dg.FAMILIES)}
    rows.sort(key=lambda r: (int(r[0].split()[1]), order[r[0].split("\n")[1]]))
    width = LABEL_W + len(columns) * (CELL + GAP)
    height = HEAD_H + len(rows) * (CELL + GAP)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    for c, name in enumerate(columns):
        entry = registry.get(name) if name in models else None
        words = {"psnr": "clean-trained", "robust": "robust"}
        text = name if entry is None else f"{entry.id}\n{words.get(entry.variant, '')}"
        draw.multiline_text((LABEL_W + c * (CELL + GAP) + 2, 2), text, fill="black", font=font)
    for r, (label, cells) in enumerate(rows):
        y = HEAD_H + r * (CELL + GAP)
        family = label.split("\n")[1]
        what = textwrap.wrap(dg.describe_family(family).split(";")[0], 20)
        words = "\n".join([*label.split("\n"), *what])
        draw.multiline_text((4, y + 4), words, fill="black", font=font)
        for c, img in enumerate(cells):
            canvas.paste(
                Image.fromarray(np.ascontiguousarray(img)), (LABEL_W + c * (CELL + GAP), y)
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(
        args.out,
        **({"quality": 95, "method": 6} if args.out.suffix == ".webp" else {"optimize": True}),
    )
    print(f"wrote {args.out} ({width}x{height}): {len(rows)} rows, columns {', '.join(columns)}")
    if args.cache is not None:  # periodic artefacts, over every cached face
        print("power at period 4 / 8 px vs neighbouring frequencies (1 = no grid):")
        print(
            f"  true face: {periodic_ratio(np.stack(hr), 4):.2f} / {periodic_ratio(np.stack(hr), 8):.2f}"
        )
        for family in dg.FAMILIES:
            for m in models:
                path = args.cache / f"sr_{m}_{family}.npy"
                if path.exists():
                    out = np.load(path)
                    p4, p8 = periodic_ratio(out, 4), periodic_ratio(out, 8)
                    print(f"  {family:10s} {m:18s} {p4:.2f} / {p8:.2f} ({len(out)} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
