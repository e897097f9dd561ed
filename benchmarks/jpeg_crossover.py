"""Where does the robust variant stop paying? PSNR of every x4 clean-trained model and its
robust twin on JPEG-only LR faces of rising quality (issue 24: the clean/robust line of
engine.evidence_quality.CLEAN_JPEG_QUALITY is read from this table).

    python benchmarks/jpeg_crossover.py [--md benchmarks/jpeg_crossover.md]

The 200 held-out aligned faces (cache/faces/test_png), LR = engine.imaging.downscale x4, then
one JPEG (4:2:0) at each quality, the face at a grid offset that varies with the face index
(training.degrade.jpeg); one thread. Clean input (no JPEG) is the degraded benchmark's clean row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import imaging, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import hardware, hr_faces  # noqa: E402
from training.metrics import psnr  # noqa: E402

QUALITIES = (75, 85, 90, 95)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--md", type=Path, default=ROOT / "benchmarks" / "jpeg_crossover.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    hr = [h for _, h in hr_faces(ROOT / "cache" / "faces" / "test_png", aligned=True)[0]]
    pairs = [
        (e.twin, e.id)
        for e in registry.MODELS
        if e.variant == "robust"
        and 4 in e.scales
        and weights.status(e, 4) == "installed"
        and weights.status(registry.get(e.twin), 4) == "installed"
    ]
    models = {m: weights.load(registry.get(m), 4, "cpu") for pair in pairs for m in pair}
    rows = []
    for q in QUALITIES:
        lrs = [
            dg.jpeg(imaging.downscale(h, 4), q, (k % 16, (k * 7) % 16)) for k, h in enumerate(hr)
        ]
        row = {
            "bicubic": float(
                np.mean([psnr(imaging.upscale(x, 4), h) for x, h in zip(lrs, hr, strict=True)])
            )
        }
        for m, model in models.items():
            out = []
            for i in range(0, len(lrs), 25):
                out += model.run_batch(lrs[i : i + 25])
            row[m] = float(np.mean([psnr(o, h) for o, h in zip(out, hr, strict=True)]))
        rows.append((q, row))
        print(q, row, flush=True)
    head = ["JPEG quality", "bicubic"] + [f"{c} / {r} (robust - clean)" for c, r in pairs]
    lines = [
        "# JPEG quality: where the robust variant stops paying (x4)",
        "",
        f"`python benchmarks/jpeg_crossover.py`, {len(hr)} held-out faces, one thread, "
        f"{hardware()}. PSNR (dB, RGB) against the true face.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for q, row in rows:
        cells = [str(q), f"{row['bicubic']:.2f}"]
        cells += [f"{row[c]:.2f} / {row[r]:.2f} ({row[r] - row[c]:+.2f})" for c, r in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "engine.evidence_quality.CLEAN_JPEG_QUALITY is the lowest quality where the robust "
        "twin's gain is within 0.1 dB (a tie): the clean-trained variant is recommended from "
        "there up, the robust one below.",
        "",
    ]
    args.md.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
