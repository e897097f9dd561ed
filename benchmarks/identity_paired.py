"""Is a robust model's identity distance really above bicubic's, or within the spread of 200 faces?

    python benchmarks/identity_paired.py --scale 4 --models s2_rafsr_robust,s4_idrn_robust \
        --families blur_jpeg,cctv [--md benchmarks/identity_paired.md]

Issue 24 asks for a dlib identity distance below bicubic's on every degraded family. The
degraded tables (benchmarks/degraded_x*.md) give means over the 200 held-out faces, and some
robust files come out above bicubic by a few thousandths. Each face here is measured with
both (the same LR of training/degrade.py, the distance of each output's descriptor to the HR
face's, as training/evaluate.py), so the difference is paired: its mean, the standard error of
that mean, a 95% interval (mean +- 1.96 SE) and the share of faces on which the model's output
is closer to the person than bicubic's. An interval that straddles 0 means the 200 faces cannot
tell the two apart; one wholly above 0 means the model is measurably further from the person.
The PSNR gain is given alongside. One torch thread; results are appended to --md.

With --bands SIGMAS, each model's output is also split at each Gaussian scale sigma (HR pixels)
into its coarse part (the output blurred by sigma) and its fine detail (the rest), and two
hybrids are measured the same way: the model's coarse part with bicubic's fine detail, and
bicubic's coarse part with the model's fine detail: which part of the output carries the
identity excess.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import faces, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import descriptor, hardware, hr_faces  # noqa: E402
from training.metrics import psnr  # noqa: E402


def paired(diffs: np.ndarray) -> tuple[float, float]:
    """Mean of per-face differences and the standard error of that mean."""
    return float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(len(diffs)))


def band_hybrids(sr: np.ndarray, bic: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    """The two hybrids of a model output and bicubic split at Gaussian scale ``sigma`` (HR px)."""
    import cv2

    def coarse(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)

    def u8(img: np.ndarray) -> np.ndarray:
        return np.clip(np.round(img), 0, 255).astype(np.uint8)

    return {
        f"its detail finer than sigma {sigma:g} px swapped for bicubic's": u8(
            coarse(sr) + bic.astype(np.float32) - coarse(bic)
        ),
        f"only its detail finer than sigma {sigma:g} px, over bicubic": u8(
            coarse(bic) + sr.astype(np.float32) - coarse(sr)
        ),
    }


def measure(
    model_ids: list[str], scale: int, family: str, hr_list, refs, bands: list[float] = ()
) -> dict[str, dict]:
    """Per-face identity distance and PSNR for bicubic and each model on one family (and, with
    ``bands``, for each model's band hybrids, keyed "model id: hybrid")."""
    lrs = [dg.family_lr(hr, scale, family, k) for k, (_n, hr) in enumerate(hr_list)]
    bicubic = weights.load(registry.get("bicubic"), scale, "cpu")
    rows: dict[str, dict[str, list[float]]] = {}

    def add(key: str, img: np.ndarray, hr: np.ndarray, ref: dict) -> None:
        row = rows.setdefault(key, {"id": [], "psnr": []})
        row["id"].append(float(np.linalg.norm(descriptor(img, ref["lm"]) - ref["desc"])))
        row["psnr"].append(psnr(img, hr))

    for model_id in ["bicubic", *model_ids]:
        model = weights.load(registry.get(model_id), scale, "cpu")
        for lr, (_n, hr), ref in zip(lrs, hr_list, refs, strict=True):
            sr = model.run(lr)
            add(model_id, sr, hr, ref)
            if model_id == "bicubic" or not bands:
                continue
            bic = bicubic.run(lr)
            for sigma in bands:
                for name, img in band_hybrids(sr, bic, sigma).items():
                    add(f"{model_id}: {name}", img, hr, ref)
    return {k: {m: np.array(v) for m, v in row.items()} for k, row in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--models", required=True, help="comma-separated model ids")
    parser.add_argument("--families", default="blur_jpeg,cctv")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--bands", default="", help="comma-separated Gaussian scales (HR px) to split outputs at"
    )
    parser.add_argument("--md", type=Path, default=None, help="append the table here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    model_ids = [m.strip() for m in args.models.split(",") if m.strip()]
    families = dg.parse_families(args.families)
    hr_list, _ = hr_faces(ROOT / "cache" / "faces" / "test_png", args.limit, aligned=True)
    refs = []
    for _n, hr in hr_list:
        lm = faces.aligned_landmarks(hr)
        refs.append({"lm": lm, "desc": descriptor(hr, lm)})
    lines = [
        f"\n## x{args.scale}, {len(hr_list)} faces ({hardware()})\n",
        "| model | family | identity: model - bicubic | 95% interval | faces closer than "
        "bicubic | PSNR gain (dB) |",
        "|---|---|---|---|---|---|",
    ]
    for family in families:
        bands = [float(b) for b in args.bands.split(",") if b.strip()]
        res = measure(model_ids, args.scale, family, hr_list, refs, bands)
        base = res["bicubic"]
        for model_id in (k for k in res if k != "bicubic"):
            d, se = paired(res[model_id]["id"] - base["id"])
            gain, _ = paired(res[model_id]["psnr"] - base["psnr"])
            closer = float((res[model_id]["id"] < base["id"]).mean())
            line = (
                f"| {model_id} | {family} | {d:+.4f} (SE {se:.4f}) | "
                f"{d - 1.96 * se:+.4f} .. {d + 1.96 * se:+.4f} | {closer:.0%} | {gain:+.2f} |"
            )
            print(line, flush=True)
            lines.append(line)
    if args.md:
        if not args.md.exists():
            args.md.write_text(
                "# Identity distance against bicubic, face by face (issue 24)\n\n"
                + (__doc__ or "").split("\n\n", 2)[2].strip()
                + "\n"
            )
        with args.md.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
