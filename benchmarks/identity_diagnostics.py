"""Why are some robust x4 outputs further from the person than bicubic on blurred faces?

    python benchmarks/identity_diagnostics.py --model s4_idrn_robust --family blur_jpeg \
        [--limit 200] [--md benchmarks/identity_diagnostics.md]

benchmarks/identity_paired.py found S0, S1 and S4 robust x4 measurably further from the person
(dlib descriptor distance to the HR face) than bicubic on blur_jpeg and cctv, and located the
excess in the 1-2 HR px detail laid over the restored shape. Four checks, each paired face by
face against bicubic on the same seeded LR (training/degrade.py), one torch thread:

1. **Is the detail at the MSE optimum?** The model's fine detail (output minus its Gaussian blur
   at sigma 1 and 2 HR px) against the HR face's: the least-squares gain that would best match
   the HR detail (1 = the model draws as much as minimises the error; below 1 = it over-draws),
   its energy relative to the HR detail's, and the outputs with that detail scaled by 0.5 and
   0.75 (the rest of the band taken from bicubic).
2. **Memorised identities?** The same comparison on 200 *training* CelebAMask-HQ faces, which
   the model has seen hundreds of times: if it had learnt those people, it would come out
   closer to them than bicubic there.
3. **Identity or texture?** The output with content-free grain (seeded Gaussian noise, 2 and 4
   grey levels) added, and bicubic's and a blurred HR face's with the same grain: grain carries
   nothing of the person, so a distance that falls when it is added responds to texture.
4. **S3's two outputs** (with ``--s3``): its coarse SR (a plain residual branch, no parsing
   prior) and its final SR, to tell whether its neutral identity comes from the parsing-guided
   fusion or from the branch itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from identity_paired import paired  # noqa: E402

from engine import faces, imaging, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import descriptor, hardware, hr_faces  # noqa: E402
from training.metrics import psnr  # noqa: E402

GRAIN = (2.0, 4.0)
DETAIL_GAINS = (0.5, 0.75)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)


def u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


class Pairs:
    """Per-face identity distance and PSNR of named outputs, compared with "bicubic"."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[float]]] = {}

    def add(self, key: str, img: np.ndarray, hr: np.ndarray, lm: np.ndarray, ref: np.ndarray):
        row = self.rows.setdefault(key, {"id": [], "psnr": []})
        row["id"].append(float(np.linalg.norm(descriptor(u8(img), lm) - ref)))
        row["psnr"].append(psnr(u8(img), hr))

    def table(self, title: str) -> list[str]:
        base = self.rows["bicubic"]
        lines = [
            f"\n{title}\n",
            "| output | identity: output - bicubic | 95% interval | PSNR gain (dB) |",
            "|---|---|---|---|",
        ]
        for key, row in self.rows.items():
            if key == "bicubic":
                continue
            d, se = paired(np.array(row["id"]) - np.array(base["id"]))
            g, _ = paired(np.array(row["psnr"]) - np.array(base["psnr"]))
            lines.append(
                f"| {key} | {d:+.4f} (SE {se:.4f}) | {d - 1.96 * se:+.4f} .. "
                f"{d + 1.96 * se:+.4f} | {g:+.2f} |"
            )
        return lines


def training_faces(limit: int) -> list[tuple[str, np.ndarray]]:
    """The first ``limit`` CelebAMask-HQ faces of the training split (cache/faces)."""
    cache = ROOT / "cache" / "faces"
    meta = json.loads((cache / "train_meta.json").read_text())
    hr = np.load(cache / "train_hr.npy", mmap_mode="r")
    picked = [i for i, m in enumerate(meta) if m["source"] == "celebamask_hq"][:limit]
    return [(meta[i]["name"], np.ascontiguousarray(hr[i])) for i in picked]


def measure(
    model_id: str, family: str, hr_list, s3: bool, checks: bool = True
) -> tuple[Pairs, dict]:
    """The model and bicubic on one face set; with ``checks``, checks 1 and 3 (and 4)."""
    import torch

    bicubic = weights.load(registry.get("bicubic"), 4, "cpu")
    model = weights.load(registry.get(model_id), 4, "cpu")
    s3_model = weights.load(registry.get("s3_prior_guided_robust"), 4, "cpu") if s3 else None
    pairs, gains = Pairs(), {1.0: [], 2.0: []}
    energy = {1.0: [], 2.0: []}
    for k, (_n, hr) in enumerate(hr_list):
        try:
            lm = faces.aligned_landmarks(hr)
        except Exception:  # noqa: BLE001 - a training face dlib cannot place is left out
            continue
        ref = descriptor(hr, lm)
        lr = dg.family_lr(hr, 4, family, k)
        sr = model.run(lr).astype(np.float32)
        bic = bicubic.run(lr).astype(np.float32)
        pairs.add("bicubic", bic, hr, lm, ref)
        pairs.add(model_id, sr, hr, lm, ref)
        if not checks:
            continue
        for sigma in gains:
            d_sr, d_hr, d_bic = sr - blur(sr, sigma), hr - blur(hr, sigma), bic - blur(bic, sigma)
            gains[sigma].append(float((d_sr * d_hr).sum() / max((d_sr * d_sr).sum(), 1e-6)))
            energy[sigma].append(float((d_sr * d_sr).sum() / max((d_hr * d_hr).sum(), 1e-6)))
            for a in DETAIL_GAINS:
                img = blur(sr, sigma) + a * d_sr + (1 - a) * d_bic
                pairs.add(
                    f"its detail finer than sigma {sigma:g} px scaled by {a:g}", img, hr, lm, ref
                )
        grain = np.random.default_rng(k).standard_normal(sr.shape[:2]).astype(np.float32)[..., None]
        for g in GRAIN:
            pairs.add(f"{model_id} + grain {g:g}", sr + g * grain, hr, lm, ref)
        pairs.add(f"bicubic + grain {GRAIN[-1]:g}", bic + GRAIN[-1] * grain, hr, lm, ref)
        hr_blur = blur(hr, 1.0)
        pairs.add("HR face blurred (sigma 1 px)", hr_blur, hr, lm, ref)
        pairs.add(
            f"HR face blurred (sigma 1 px) + grain {GRAIN[-1]:g}",
            hr_blur + GRAIN[-1] * grain,
            hr,
            lm,
            ref,
        )
        if s3_model is not None:
            x = imaging.to_tensor(weights.model_input(s3_model.entry, lr))
            with torch.inference_mode():
                coarse, _parsing, final = s3_model.module.forward_all(x)
            pairs.add(
                "S3 robust: coarse SR (no parsing prior)", imaging.to_uint8(coarse), hr, lm, ref
            )
            pairs.add("S3 robust: final SR", imaging.to_uint8(final), hr, lm, ref)
    stats = {
        s: (float(np.median(gains[s])), float(np.median(energy[s]))) for s in gains if gains[s]
    }
    return pairs, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="s4_idrn_robust")
    parser.add_argument("--family", default="blur_jpeg")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--s3", action="store_true", help="also S3 robust's coarse and final SR")
    parser.add_argument("--md", type=Path, default=None, help="append the tables here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    (family,) = dg.parse_families(args.family)
    held_out, _ = hr_faces(ROOT / "cache" / "faces" / "test_png", args.limit, aligned=True)
    lines = [f"\n## {args.model} x4, {family} ({hardware()})"]
    pairs, stats = measure(args.model, family, held_out, args.s3)
    lines += pairs.table(f"Held-out faces ({len(pairs.rows['bicubic']['id'])}):")
    lines.append("")
    for sigma, (gain, energy) in stats.items():
        lines.append(
            f"- detail finer than sigma {sigma:g} px: least-squares gain to the HR detail, median "
            f"over faces {gain:.3f}; its energy / the HR detail's {energy:.3f}"
        )
    train_pairs, _ = measure(args.model, family, training_faces(args.limit), False, False)
    lines += train_pairs.table(
        f"Training CelebAMask-HQ faces ({len(train_pairs.rows['bicubic']['id'])}), the model's own:"
    )
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    if args.md:
        if not args.md.exists():
            args.md.write_text(
                "# Identity diagnostics (issue 24)\n\n" + (__doc__ or "").split("\n\n", 2)[2]
            )
        with args.md.open("a") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
