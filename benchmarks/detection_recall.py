"""Detection recall of engine.faces.detect at small face widths, and dlib model load time.

Each photo's face is found at full size (the reference box); the photo is then shrunk so that
face is W px wide and centred on a grey 640x480 still, and detected again with the app's
defaults. A hit is a detection whose box overlaps the expected box (IoU >= 0.3).

    nice -n 10 .venv/bin/python benchmarks/detection_recall.py \
        --images ../shared/datasets/celebamask_hq/images --limit 200 --out benchmarks/detection_recall.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine import faces, imaging

WIDTHS = (16, 24, 32, 48, 64)


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def place(rgb: np.ndarray, box, width: int):
    """The photo shrunk so the face is ``width`` px wide, centred on a 640x480 grey still."""
    s = width / (box[2] - box[0])
    w, h = max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))
    small = imaging.resize(rgb, w, h, "bicubic")
    canvas = np.full((480, 640, 3), 128, np.uint8)
    # put the face centre at the canvas centre, cropping the photo where it does not fit
    cx, cy = (box[0] + box[2]) / 2 * s, (box[1] + box[3]) / 2 * s
    ox, oy = round(320 - cx), round(240 - cy)
    xs0, ys0 = max(0, -ox), max(0, -oy)
    xs1, ys1 = min(w, 640 - ox), min(h, 480 - oy)
    canvas[ys0 + oy : ys1 + oy, xs0 + ox : xs1 + ox] = small[ys0:ys1, xs0:xs1]
    expected = tuple(v * s for v in box)
    expected = (expected[0] + ox, expected[1] + oy, expected[2] + ox, expected[3] + oy)
    return canvas, expected


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    faces.load_models()
    load_s = time.perf_counter() - t0

    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    hits = {w: 0 for w in WIDTHS}
    false_alarms = {w: 0 for w in WIDTHS}
    used = 0
    seconds = []
    for path in files:
        if used >= args.limit:
            break
        rgb = np.asarray(Image.open(path).convert("RGB"))
        if max(rgb.shape[:2]) > 640:  # reference detection at a comfortable size
            f = 640 / max(rgb.shape[:2])
            rgb = imaging.resize(rgb, round(rgb.shape[1] * f), round(rgb.shape[0] * f))
        found = faces.detect(rgb, upsample=0)
        if len(found) != 1:
            continue
        used += 1
        for w in WIDTHS:
            still, expected = place(rgb, found[0].box, w)
            t = time.perf_counter()
            dets = faces.detect(still)
            seconds.append(time.perf_counter() - t)
            good = [d for d in dets if iou(d.box, expected) >= 0.3]
            hits[w] += bool(good)
            false_alarms[w] += len(dets) - len(good)

    lines = [
        "# Face detection recall at small widths",
        "",
        f"Machine: {cpu_name()}, 2 cores; "
        f"{used} photos from `{args.images.parent.name}/{args.images.name}` (one face each at full size); detector: dlib HOG, "
        f"auto upsampling, min score {faces.DEFAULT_MIN_SCORE['hog']}; still 640x480.",
        "",
        "| face width (px) | recall | false alarms per still |",
        "|---|---|---|",
    ]
    for w in WIDTHS:
        lines.append(f"| {w} | {hits[w] / max(used, 1):.3f} | {false_alarms[w] / max(used, 1):.3f} |")
    lines += [
        "",
        f"dlib detector + 68-point predictor load time: {load_s:.2f} s; "
        f"median detection time per 640x480 still: {np.median(seconds) * 1000:.0f} ms.",
        "",
        "Reproduce: `nice -n 10 .venv/bin/python benchmarks/detection_recall.py "
        f"--images {args.images} --limit {args.limit} --out benchmarks/detection_recall.md`",
    ]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
