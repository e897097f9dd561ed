"""What the pixels alone say: how often engine.evidence_quality sees damage (a block grid or
noise above CLEAN_NOISE_SIGMA) in a face whose file records no compression (issue 24).

    python benchmarks/pixel_damage.py [--images cache/faces/test_png] [--faces 200]

Why: a lossless file (PNG, BMP, TIFF: a DVR export, a screenshot, a crop) carries no
quantisation tables, so only its pixels can show earlier damage. Each held-out aligned face is
damaged by every family of training/degrade.py (the benchmark's seeded LR) at the face sizes an
analyst meets (x1: 128 px, x2: 64 px, x4: 32 px) and assessed as pixels without a JPEG record.
The "clean" row is the false-alarm rate. This table is why a lossless file gets the robust
variant even when its pixels show no damage (engine.evidence_quality.recommend).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import evidence_quality as eq  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import hardware, hr_faces  # noqa: E402

SCALES = (1, 2, 4)


def damage_seen(lr: np.ndarray) -> tuple[bool, bool]:
    """(block grid found, noise above the clean line) in pixels alone."""
    return eq.block_grid(lr)[1] is not None, eq.noise_sigma(lr) > eq.CLEAN_NOISE_SIGMA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=ROOT / "cache" / "faces" / "test_png")
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--md", type=Path, default=ROOT / "benchmarks" / "pixel_damage.md")
    args = ap.parse_args()
    hrs = [hr for _, hr in hr_faces(args.images, args.faces, aligned=True)[0]]
    sizes = ", ".join(f"x{s}: {128 // s} px" for s in SCALES)
    lines = [
        "# Damage visible in the pixels alone (engine.evidence_quality)",
        "",
        f"Run: `python benchmarks/pixel_damage.py --faces {len(hrs)}` on `{args.images.name}` "
        f"({len(hrs)} held-out aligned faces). CPU: {hardware()}.",
        "",
        "Each face damaged by a family of training/degrade.py (the benchmark's seeded LR) at "
        f"each face size ({sizes}), assessed as pixels with no JPEG record (a lossless "
        f"file). Cell: share of faces with damage seen (an 8-px block grid, or noise above "
        f"{eq.CLEAN_NOISE_SIGMA:g} grey levels) / of which a grid. The clean row is the "
        "false-alarm rate.",
        "",
        "| family | " + " | ".join(f"x{s} ({128 // s} px)" for s in SCALES) + " |",
        "|---|" + "---|" * len(SCALES),
    ]
    for family in dg.FAMILIES + dg.UNSEEN:
        cells = []
        for scale in SCALES:
            seen = [damage_seen(dg.family_lr(hr, scale, family, k)) for k, hr in enumerate(hrs)]
            any_ = np.mean([g or n for g, n in seen])
            grid = np.mean([g for g, _ in seen])
            cells.append(f"{any_:.0%} / {grid:.0%}")
        label = f"{family} (unseen)" if family in dg.UNSEEN else family
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    args.md.write_text("\n".join(lines) + "\n")
    print("wrote", args.md)


if __name__ == "__main__":
    main()
