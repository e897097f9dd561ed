"""The results table of resources/weights/README.md, written from measurements, never by hand.

    python -m training.results_table [--benchmarks benchmarks] [--readme resources/weights/README.md]

Reads ``benchmarks/quality_x4.json`` and ``quality_x8.json`` (written by training.evaluate on
the 200 held-out faces) and the ``training`` record inside every weights file in the manifest
(steps, batch, wall time, hardware), and replaces the part of the README between the two
``results`` markers with one row per shipped weights file and scale. The paper's gain is the
one each paper reports over bicubic on its own data set (../shared/papers/MODELS.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine import registry, weights

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"

# (paper, scale, variant) -> (PSNR gain over bicubic in dB, data set), from each paper's table.
PAPER_GAIN: dict[tuple[str, int, str], tuple[float, str]] = {
    ("S0", 4, "psnr"): (30.65 - 25.96, "CelebA"),
    ("S0", 8, "psnr"): (27.51 - 23.75, "CelebA"),
    ("S1", 4, "psnr"): (34.45 - 26.41, "FERET"),
    ("S2", 4, "psnr"): (32.83 - 25.50, "Helen"),
    ("S3", 8, "psnr"): (24.66 - 20.72, "CelebAMask-HQ"),
    ("S3", 8, "gan"): (23.38 - 20.72, "CelebAMask-HQ"),
    ("S4", 4, "psnr"): (33.23 - 27.93, "FDDB+AFLW"),
}
# The aims: every model / the best model at least this many dB over bicubic.
AIM_EVERY = {4: 3.0, 8: 2.0}
AIM_BEST = {4: 4.5, 8: 3.5}


def _paper_gain(entry: registry.ModelEntry, scale: int) -> str:
    gain = PAPER_GAIN.get((entry.paper, scale, entry.variant))
    if gain is None and entry.variant == "gan":  # a GAN paper table without its own row
        gain = PAPER_GAIN.get((entry.paper, scale, "psnr"))
        return "n/r" if gain is None else f"(PSNR model +{gain[0]:.2f} dB, {gain[1]})"
    return "not reported" if gain is None else f"+{gain[0]:.2f} dB ({gain[1]})"


def rows(bench_dir: Path, weights_dir: Path) -> list[dict[str, Any]]:
    """One row per (weights file, benchmarked scale), registry order."""
    manifest = weights.read_manifest(weights_dir)["files"]
    out = []
    for scale in (4, 8):
        path = bench_dir / f"quality_x{scale}.json"
        if not path.exists():
            continue
        bench = json.loads(path.read_text())
        for model_id in registry.ids():
            entry = registry.get(model_id)
            if entry.is_baseline or model_id not in bench:
                continue
            name = next(
                (
                    f
                    for f, row in manifest.items()
                    if row["model_id"] == model_id and scale in row["scales"]
                ),
                None,
            )
            if name is None:
                continue
            training = json.loads(weights.read_metadata(weights_dir / name).get("training", "{}"))
            out.append(
                {
                    "file": name,
                    "entry": entry,
                    "scale": scale,
                    "training": training,
                    "m": bench[model_id],
                    "bicubic": bench["bicubic"],
                }
            )
    return out


def hardware_minutes(stages: list[dict[str, Any]]) -> str:
    """Wall minutes per machine over the stages, in the order first used, e.g.
    "85 min CPU AMD EPYC, 2 cores; 11 min CUDA NVIDIA H200" (the machine: processor and cores;
    threads and torch version, which older records leave out, are dropped so they add up)."""
    minutes: dict[str, float] = {}
    for st in stages:
        hw = ", ".join(str(st.get("hardware") or "?").split(", ")[:2])
        minutes[hw] = minutes.get(hw, 0.0) + float(st.get("wall_minutes") or 0)
    return "; ".join(f"{m:.0f} min {hw}" for hw, m in minutes.items())


def table(rows_: list[dict[str, Any]]) -> str:
    lines = [
        "| file | scale | steps x batch | wall time | hardware | PSNR / SSIM | gain over bicubic "
        "| paper's gain | LPIPS | landmark err. | identity dist. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen_scales = []
    for r in rows_:
        m, b, t, s = r["m"], r["bicubic"], r["training"], r["scale"]
        if s not in seen_scales:
            seen_scales.append(s)
            lines.append(
                f"| *bicubic* | x{s} | - | - | - | {b['psnr']:.2f} / {b['ssim']:.4f} | 0 | - | "
                f"{b['lpips']:.3f} | {b['landmark_error']:.4f} | {b['identity_distance']:.3f} |"
            )
        gain = m["psnr"] - b["psnr"]
        stages = t.get("stages") or [t]  # every run behind the file, first stage first
        steps = " + ".join(f"{st.get('steps', '?')} x {st.get('batch_size', '?')}" for st in stages)
        wall = sum(st.get("wall_minutes") or 0 for st in stages)
        lines.append(
            f"| `{r['file']}` | x{s} | {steps} | {wall:.0f} min | {hardware_minutes(stages)} | "
            f"{m['psnr']:.2f} / {m['ssim']:.4f} | **{gain:+.2f} dB** | "
            f"{_paper_gain(r['entry'], s)} | {m['lpips']:.3f} | {m['landmark_error']:.4f} | "
            f"{m['identity_distance']:.3f} |"
        )
    return "\n".join(lines)


def aims(rows_: list[dict[str, Any]]) -> str:
    """The issue's targets, met or not, per scale; and each GAN against its PSNR twin."""
    out = []
    for s in (4, 8):
        at = [r for r in rows_ if r["scale"] == s]
        if not at:
            continue
        gains = {r["file"]: r["m"]["psnr"] - r["bicubic"]["psnr"] for r in at}
        below = [f"`{f}` ({g:+.2f})" for f, g in gains.items() if g < AIM_EVERY[s]]
        best = max(gains, key=gains.get)
        out.append(
            f"- x{s}: aim every model >= +{AIM_EVERY[s]:.1f} dB: "
            + ("met." if not below else f"**not met** by {', '.join(below)}.")
            + f" Aim best >= +{AIM_BEST[s]:.1f} dB: best is `{best}` at {gains[best]:+.2f} dB, "
            + ("met." if gains[best] >= AIM_BEST[s] else "**not met**.")
        )
        by_id = {r["entry"].id: r for r in at}
        for r in at:
            if r["entry"].variant != "gan":
                continue
            twin = by_id.get(r["entry"].id.removesuffix("_gan"))
            if twin is None:
                continue
            gan, psnr = r["m"]["lpips"], twin["m"]["lpips"]
            # a fourth decimal when three would print a tie, so the verdict can be checked
            digits = 3 if round(gan, 3) != round(psnr, 3) else 4
            out.append(
                f"- x{s}: `{r['file']}` LPIPS {gan:.{digits}f} vs its PSNR twin "
                f"{psnr:.{digits}f}: " + ("lower, as aimed." if gan < psnr else "**not lower**.")
            )
    return "\n".join(out)


def render(bench_dir: Path, weights_dir: Path) -> str:
    r = rows(bench_dir, weights_dir)
    return (
        f"{START}\n{table(r)}\n\nAgainst the issue's aims (computed from the table):\n\n"
        f"{aims(r)}\n{END}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.results_table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder")
    parser.add_argument("--readme", type=Path, default=REPO / "resources" / "weights" / "README.md")
    args = parser.parse_args(argv)
    block = render(args.benchmarks, weights.get_weights_dir(args.weights))
    text = args.readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    args.readme.write_text(head + block + rest.split(END, 1)[1])
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
