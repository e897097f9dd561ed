"""Periodic-artefact check: does a model lay a fixed pixel grid over its outputs?

    .venv/bin/python scripts/grid_check.py --faces cache/faces/test_png --scale 4 \
        --models s2_rafsr,s2_rafsr_robust --family jpeg [--count 60]

For each model, the outputs' residual over bicubic (output - bicubic enlargement of the same
LR) is averaged in the Fourier domain over `count` held-out faces (training/degrade.py's LR of
each face). A grid of period p (a PixelShuffle stage, the 8-px JPEG block grid) is a peak at the
spatial frequencies 128/p along rows or columns. Printed per model: the power at periods 2, 4
and 8 px (mean of the row and column axes) divided by the median power of the neighbouring
frequencies; about 1 means no grid, several times more means a visible one. Content that
happens to repeat (hair, stripes) gives small ratios too; compare against bicubic-free ratios of
the clean-trained twin and the GAN files.

At ``--scale 1`` (x1 restore) there is no bicubic: the residual is the error against the HR
face (output - HR), printed beside the damaged input's own error (input - HR), so a grid the
restore removes (the 8-px JPEG blocks) shows as a lower ratio than the input's, and one it adds
as a higher one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import imaging, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402


def grid_ratios(residuals: list[np.ndarray]) -> dict[int, float]:
    """Peak/neighbour power ratio at periods 2, 4, 8 px of the mean residual power spectrum."""
    power = np.zeros((128, 128))
    for r in residuals:
        grey = r.astype(np.float64).mean(-1)
        power += np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    # 1-D profiles along each axis (summed over the other), at the axis frequencies
    rows, cols = power.sum(0), power.sum(1)
    out = {}
    for period in (2, 4, 8):
        k = 128 // period
        vals = []
        for prof in (rows, cols):
            near = [prof[(k + d) % 128] for d in (-3, -2, 2, 3)]
            vals.append(prof[k] / max(float(np.median(near)), 1e-9))
        out[period] = float(np.mean(vals))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=Path, required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--models", required=True)
    p.add_argument("--family", default="clean")
    p.add_argument("--count", type=int, default=60)
    args = p.parse_args(argv)
    paths = sorted(q for q in args.faces.iterdir() if q.suffix == ".png")
    step = max(1, len(paths) // args.count)
    picked = [(k, paths[k]) for k in range(0, len(paths), step)][: args.count]
    lrs, bics = [], []
    for k, path in picked:
        hr = np.asarray(Image.open(path).convert("RGB"))
        lr = dg.family_lr(hr, args.scale, args.family, k)
        lrs.append(lr)
        ref = hr if args.scale == 1 else imaging.upscale(lr, args.scale, "bicubic")
        bics.append(ref.astype(np.int16))
    print(f"x{args.scale} {args.family}, {len(lrs)} faces: power at period p / neighbours")
    if args.scale == 1:  # the damaged input's own error, for comparison
        ratios = grid_ratios([a.astype(np.int16) - b for a, b in zip(lrs, bics, strict=True)])
        print(f"  {'input (damaged)':28s} " + "  ".join(f"{p}px {r:5.2f}" for p, r in ratios.items()))
    for model_id in args.models.split(","):
        model = weights.load(registry.get(model_id), args.scale, "cpu")
        outs = model.run_batch(lrs)
        ratios = grid_ratios([o.astype(np.int16) - b for o, b in zip(outs, bics, strict=True)])
        print(f"  {model_id:28s} " + "  ".join(f"{p}px {r:5.2f}" for p, r in ratios.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
