"""Faces between the model frames: run at their native size, or shrunk into the model's frame?

``engine.resolution`` never shrinks a face for Auto. A face whose native frame lies between a
model's largest input frame and 128 px is run at its own size ("native" mode): pre-upsampled
models (S1) and the baselines take any factor; the other networks are fully convolutional, so
their smallest scale runs on the larger face and the output (scale x native, above 128 px) is
resized to the 128-px frame. This script measures what that gives, against the two other
choices: bicubic enlargement of the native face (no model) and the old behaviour, the face
shrunk into the model's frame first (evidence thrown away).

For each held-out face (128x128 aligned HR, ``--faces``) and each native size N, the "evidence"
is the HR face shrunk to N px with the project's antialiased bicubic; every route ends at 128
px and is scored by PSNR (RGB, whole face) against the HR face. The stretch N / frame is how
much larger the face is than the faces the network was trained on; the largest stretch at
which native mode still beats shrinking and bicubic sets ``engine.resolution.MAX_NATIVE_STRETCH``.

With ``--degrade FAMILY`` (training/degrade.py: jpeg, noise_jpeg, blur_jpeg, cctv, ...) the
evidence is the face *recorded* at N px with that family's damage (its blur in pixels of the
N px recording, then noise and compression there, seeded per face and size), which is what an
analyst's faces between the frames look like; ``--models`` picks the files (e.g. the robust
ones).

Usage: ``nice .venv/bin/python benchmarks/native_size.py --faces cache/faces/test_png
[--limit 100] [--offset 0] [--models s2_rafsr,s4_idrn,s1_mffcn] [--degrade clean] [--md FILE]`` (shipped
weights from resources/weights).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine import imaging, registry
from engine.enhance import Enhancer
from engine.fidelity import psnr
from training.evaluate import hardware

# Native sizes per model frame: a fixed-scale network's x4 file on faces 36-112 px (stretch
# 1.1-3.5); the pre-upsampled S1 at x4 and x2 frames (its native run does not depend on the frame).
SIZES = {
    "lr": {4: (32, 36, 48, 64, 80, 96, 112), 2: (64, 72, 80, 96, 112)},
    "upsampled": {4: (32, 36, 48, 56), 2: (64, 72, 80, 96, 112)},
}
MODELS = ("s2_rafsr", "s4_idrn", "s1_mffcn")


def routes(enhancer: Enhancer, model_id: str, frame_scale: int, lr: np.ndarray) -> dict:
    """Every route from the N px face ``lr`` to 128 px for one model."""
    n = lr.shape[0]
    frame = 128 // frame_scale
    out = {"bicubic": imaging.resize(lr, 128, 128, "bicubic")}
    model = enhancer.model(model_id, frame_scale)
    if n == frame:
        out["model"] = model.run(lr)
        return out
    if model.accepts(n):
        out["native"] = model.run(lr)
    if n > frame:  # the old way: shrink the evidence into the model's frame
        out["shrunk"] = model.run(imaging.resize(lr, frame, frame, "bicubic"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder of 128x128 HR PNGs")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument(
        "--offset", type=int, default=0, help="skip this many faces first (a second, unseen set)"
    )
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model ids")
    parser.add_argument("--degrade", default="clean", help="a training/degrade.py family")
    args = parser.parse_args()
    from training import degrade as dg

    family = dg.parse_families(args.degrade)
    if len(family) != 1:
        parser.error("--degrade takes one family")
    family = family[0]
    files = sorted(args.faces.glob("*.png"))[args.offset : args.offset + args.limit]
    faces = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    enhancer = Enhancer(device="cpu")
    rows = []
    start = time.time()
    for model_id in [m.strip() for m in args.models.split(",") if m.strip()]:
        entry = registry.get(model_id)
        installed = enhancer.installed_scales(model_id)
        for frame_scale, sizes in SIZES[entry.input].items():
            if frame_scale not in installed:
                continue
            for n in sizes:
                scores: dict[str, list[float]] = {}
                for k, hr in enumerate(faces):
                    lr = dg.family_native_lr(hr, n, family, k)
                    for route, sr in routes(enhancer, model_id, frame_scale, lr).items():
                        scores.setdefault(route, []).append(psnr(sr, hr))
                mean = {k: statistics.fmean(v) for k, v in scores.items()}
                rows.append((entry.label, frame_scale, n, n / (128 // frame_scale), mean))
                print(rows[-1], flush=True)
    elapsed = time.time() - start
    lines = [
        "# Faces between the model frames: native size against shrinking",
        "",
        f"Measured by `benchmarks/native_size.py` on {len(faces)} held-out faces "
        f"({args.faces.name}, numbers {args.offset + 1}-{args.offset + len(faces)} in name order), {hardware()}, torch CPU, {elapsed / 60:.1f} min. PSNR (dB, RGB, "
        "128x128) against the HR face; the evidence is the HR face shrunk to N px (antialiased "
        f"bicubic), degradation family `{family}` ({dg.describe_family(family)}). *native*: the model run on the N px face (engine.resolution's native mode); "
        "*shrunk*: the N px face shrunk into the model's frame first (what the engine did "
        "before); *bicubic*: the N px face enlarged to 128 px, no model. Stretch = N / the "
        "model's frame.",
        "",
        "| model | network | N px | stretch | bicubic | native | shrunk | native - bicubic "
        "| native - shrunk |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, frame_scale, n, stretch, mean in rows:
        native = mean.get("native", mean.get("model"))
        shrunk = mean.get("shrunk")
        lines.append(
            f"| {label} | x{frame_scale} | {n} | {stretch:.2f} | {mean['bicubic']:.2f} | "
            f"{native:.2f} | {'' if shrunk is None else f'{shrunk:.2f}'} | "
            f"{native - mean['bicubic']:+.2f} | "
            f"{'' if shrunk is None else f'{native - shrunk:+.2f}'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
