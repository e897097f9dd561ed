"""Does engine.evidence_quality.block_grid tell a lossless file that was once block-compressed
from one that never was? (issue 24: the threshold BLOCK_GRID_SCORE is read from this table.)

    python benchmarks/block_grid.py [--md benchmarks/block_grid.md] [--per-source 70]

Sources (../shared/datasets, read by hand only): CelebAMask-HQ, UTKFace and Helen photos. All
three are JPEG files, so each photo is first shrunk with area averaging (a factor that is not a
multiple of 1/8) until no earlier grid survives: that is the "lossless" row. Each is then saved
as JPEG (4:2:0) at each quality, decoded, and cropped at a random offset (seeded) as a DVR
export or a screenshot would be: the rows say how often a grid is found and at the right
offset. The realworld_lq images (real low-quality faces, history unknown) are listed as found.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import evidence_quality as eq  # noqa: E402
from training.evaluate import hardware  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
QUALITIES = (None, 95, 90, 80, 75, 60, 40)
# (name, folder glob, area-shrink factor): sizes from small crops to ordinary stills
SOURCES = (
    ("CelebAMask-HQ x0.37 (189 px)", "celebamask_hq/images/*.jpg", 0.37),
    ("CelebAMask-HQ x0.8 (410 px)", "celebamask_hq/images/*.jpg", 0.8),
    ("UTKFace x0.6 (120 px)", "utkface/*.jpg", 0.6),
    ("Helen x0.55", "helen/img/*.jpg", 0.55),
)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling="4:2:0")
    return np.asarray(Image.open(buf).convert("RGB"))


def measure(files: list[Path], factor: float, quality: int | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    scores, found, right = [], 0, 0
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        rgb = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        if quality is not None:
            rgb = jpeg(rgb, quality)
        dy, dx = (int(v) for v in rng.integers(0, 8, 2))
        score, offset = eq.block_grid(rgb[dy:, dx:])
        scores.append(score)
        found += offset is not None
        right += offset == ((-dx) % 8, (-dy) % 8)
    s = np.array(scores)
    return {
        "found": found / len(files),
        "right_offset": right / len(files),
        "median": float(np.median(s)),
        "p90": float(np.percentile(s, 90)),
        "max": float(s.max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--md", type=Path, default=ROOT / "benchmarks" / "block_grid.md")
    ap.add_argument("--per-source", type=int, default=70)
    args = ap.parse_args()
    lines = [
        "# Block grid in lossless files (engine.evidence_quality.block_grid)",
        "",
        f"Run: `python benchmarks/block_grid.py --per-source {args.per_source}`. "
        f"Threshold BLOCK_GRID_SCORE = {eq.BLOCK_GRID_SCORE}. CPU: {hardware()}.",
        "",
        "Each photo is shrunk by area averaging (no earlier grid survives), saved as JPEG "
        "at the quality of the row (\u2014 = never: the lossless case), decoded, cropped at a "
        "random offset. *found*: share with a grid reported; *right offset*: reported at the "
        "crop's true grid offset; scores: the weaker direction's lead.",
        "",
        "| source | JPEG quality | found | right offset | score median | p90 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, pattern, factor in SOURCES:
        files = sorted(DATA.glob(pattern))[: args.per_source]
        for q in QUALITIES:
            r = measure(files, factor, q, seed=len(name) + (q or 0))
            quality = q or "\u2014"
            lines.append(
                f"| {name}, {len(files)} photos | {quality} | {r['found']:.0%} | "
                f"{r['right_offset']:.0%} | {r['median']:.3f} | {r['p90']:.3f} | {r['max']:.3f} |"
            )
            print(lines[-1], flush=True)
    lines += [
        "",
        "## realworld_lq (history unknown)",
        "",
        "| image | size | score | grid offset |",
        "|---|---|---|---|",
    ]
    for f in sorted((DATA / "realworld_lq").rglob("*")):
        if f.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        rgb = np.asarray(Image.open(f).convert("RGB"))
        score, offset = eq.block_grid(rgb)
        where = f"{offset[0]}, {offset[1]}" if offset else "none"
        rel = f.relative_to(DATA / "realworld_lq")
        lines.append(f"| {rel} | {rgb.shape[1]}x{rgb.shape[0]} | {score:.3f} | {where} |")
    lines += [
        "",
        "Reading: a grid is reported only where one boundary phase stands out in both "
        "directions, so a file enlarged or shrunk after its compression (most realworld_lq "
        "crops are faces enlarged to 512 px) shows none: the check cannot see that history, "
        "and the panel then says no grid was found, not that there was no compression. "
        "Pixelated images (facerenovation_16x: 16x nearest-neighbour blocks) read as a grid "
        "at offset 0, 0; the robust variant suits them as well.",
    ]
    args.md.write_text("\n".join(lines) + "\n")
    print("wrote", args.md)


if __name__ == "__main__":
    main()
