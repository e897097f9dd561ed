"""Measure the statistics behind engine.fidelity's thresholds (run: nice python fidelity_thresholds.py 60).

For N CelebAMask-HQ faces (detected, aligned to 128 px; LR made by engine.faces.align at 128/s)
and s in (4, 8) it prints min / p5 / median / p95 / max of:
  consistency PSNR (dB) of: true HR, HR + noise sigma 10, bicubic(LR), soft HR, HR shifted,
    mirrored HR, another person's HR, "hallucination" (bicubic(LR) + another person's high freq.)
  landmark drift of: true HR, bicubic(LR), another person, hallucination
  agreement (median dlib distance to the rest of a zoo {bicubic, lanczos, soft HR, noisy HR}) of
    each faithful member, of the hallucination and of another person.
Outputs are simulated because no model was trained when the thresholds were set.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from engine import faces, fidelity, imaging

DATA = Path("/work/shared/datasets/celebamask_hq/images")


def collect(n: int):
    items = []
    for f in sorted(DATA.glob("*.jpg"))[: n * 6]:
        rgb = imaging.resize(np.asarray(Image.open(f).convert("RGB")), 256, 256, "bicubic")
        found = faces.detect(rgb, upsample=0)
        if len(found) != 1:
            continue
        hr = faces.align(rgb, found[0], 128)
        if hr.valid_fraction < 0.95:
            continue
        lm = faces.transform_points(found[0].landmarks, faces.alignment_matrix(found[0], 128))
        items.append((rgb, found[0], hr.pixels, lm))
        if len(items) >= n:
            break
    return items


def main(n: int) -> None:
    items = collect(n)
    print(f"{len(items)} faces")
    for s in (4, 8):
        rows: dict[str, list[float]] = {}

        def add(key: str, value: float) -> None:
            rows.setdefault(key, []).append(value)  # noqa: B023 (used within the iteration)

        for i, (rgb, face, hr, lm) in enumerate(items):
            other = items[(i + 1) % len(items)][2]
            lr = faces.align(rgb, face, 128 // s).pixels
            bic = imaging.upscale(lr, s)
            rng = np.random.default_rng(i)
            noisy10 = np.clip(hr + rng.normal(0, 10, hr.shape), 0, 255).astype(np.uint8)
            noisy5 = np.clip(hr + rng.normal(0, 5, hr.shape), 0, 255).astype(np.uint8)
            soft = imaging.upscale(imaging.downscale(hr, 2), 2)
            high = other.astype(np.float64) - imaging.upscale(imaging.downscale(other, s), s)
            halluc = np.clip(bic + high, 0, 255).astype(np.uint8)
            cases = {"hr": hr, "noisy10": noisy10, "bicubic": bic, "soft": soft,
                     "shifted": np.roll(hr, s // 2 * 2, axis=1), "mirrored": hr[:, ::-1].copy(),
                     "other": other, "halluc": halluc}
            for k, v in cases.items():
                add(f"consistency_{k}", fidelity.data_consistency(lr, v).value)
            for k in ("hr", "bicubic", "other", "halluc"):
                add(f"drift_{k}", fidelity.landmark_drift(lm, fidelity.output_landmarks(cases[k])).value)
            zoo = {"bicubic": bic, "lanczos": imaging.upscale(lr, s, "lanczos"), "soft": soft,
                   "noisy5": noisy5}
            d = {k: fidelity.face_descriptor(v, lm) for k, v in zoo.items()}
            for k in ("lanczos", "soft", "noisy5"):
                add(f"agreement_{k}", float(np.median([np.linalg.norm(d[k] - d[j]) for j in d if j != k])))
            for k, img in (("halluc", halluc), ("other", other)):
                x = fidelity.face_descriptor(img, lm)
                add(f"agreement_{k}", float(np.median([np.linalg.norm(x - v) for v in d.values()])))
        print(f"x{s}")
        for k, v in rows.items():
            a = np.array(v)
            print(f"  {k:22s} min {a.min():7.3f} p5 {np.percentile(a, 5):7.3f} median {np.median(a):7.3f}"
                  f" p95 {np.percentile(a, 95):7.3f} max {a.max():7.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
