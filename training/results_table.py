"""The results table of resources/weights/README.md, written from measurements, never by hand.

    python -m training.results_table [--benchmarks benchmarks] [--readme resources/weights/README.md]

Reads ``benchmarks/quality_x4.json`` and ``quality_x8.json`` (written by training.evaluate on
the 200 held-out faces) and the ``training`` record inside every weights file in the manifest
(steps, batch, wall time, hardware), and replaces the part of the README between the two
``results`` markers with one row per shipped weights file and scale. The paper's gain is the
one each paper reports over bicubic on its own data set (../shared/papers/MODELS.md). A file
measured only by ``training.evaluate --degrade`` (``benchmarks/degraded_x{2,4,8}.json``) takes
its clean row from that file's "clean" family (the same LR as quality_x*.json).

The ``degraded`` markers get the side-by-side table of issue 24: per scale, bicubic, every
clean-trained model and its robust variant on the clean and every degraded family (PSNR gain
over bicubic on the same LR, identity distance), and the issue's aims for the robust files.
Families outside the training mix (``training.degrade.UNSEEN``) are columns headed "(unseen)":
shown as a check that the robust files generalise, not counted in the aims; a cell is marked
"(trained on)" where the file's own training drew that damage (the ``mix_wide`` mix).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine import registry, weights
from training import degrade as dg

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
DSTART, DEND = "<!-- degraded:start -->", "<!-- degraded:end -->"
SCALES = (2, 3, 4, 8)

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
# Issue 24: every robust file at least this many dB over bicubic on every degraded family,
# and on clean input within this many dB of its clean-trained twin.
AIM_ROBUST = {4: 1.0, 8: 0.7}
AIM_ROBUST_CLEAN = 1.0


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
    for scale in SCALES:
        bench = clean_results(bench_dir, scale)
        if not bench:
            continue
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


def degraded_results(bench_dir: Path, scale: int) -> dict[str, Any]:
    """benchmarks/degraded_x{scale}.json (training.evaluate --degrade), or {}."""
    path = bench_dir / f"degraded_x{scale}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def gallery_results(bench_dir: Path, scale: int) -> dict[str, Any]:
    """{family: {model id: scores}} of benchmarks/identity_gallery.json at this scale, or {}."""
    path = bench_dir / "identity_gallery.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data.get(f"x{scale}", {}).get("families", {})


def identification_verdict(model_id: str, gallery: dict[str, Any]) -> str | None:
    """Whether the model's outputs stand out as the right person more clearly than bicubic's
    on every degraded family (paired margin of benchmarks/identity_gallery.py), or None."""
    margins = {
        fam: res[model_id]["margin_vs_bicubic"]
        for fam, res in gallery.items()
        if fam in dg.DEGRADED and model_id in res
    }
    if not margins:
        return None
    worse = [f"{fam} {m:+.3f}" for fam, (m, _lo, _hi) in margins.items() if m <= 0]
    unsure = [
        f"{fam} ({lo:+.3f} .. {hi:+.3f})" for fam, (m, lo, hi) in margins.items() if lo <= 0 < m
    ]
    least = min(m for m, _lo, _hi in margins.values())
    most = max(m for m, _lo, _hi in margins.values())
    head = (
        f"Identification among the held-out faces (margin over bicubic's, paired; "
        f"{len(margins)} families): "
    )
    if worse:
        return head + f"**worse** on {', '.join(worse)}."
    if unsure:  # above bicubic on average, but not beyond the spread of the faces everywhere
        return head + (
            f"not worse on any family (+{least:.3f} to +{most:.3f}; within the spread on "
            f"{', '.join(unsure)})."
        )
    return (
        head + f"better on every family (+{least:.3f} to +{most:.3f}; each 95% interval above 0)."
    )


def clean_results(bench_dir: Path, scale: int) -> dict[str, dict[str, Any]]:
    """{model id: metrics} on clean input: quality_x{scale}.json, completed by the "clean"
    family of degraded_x{scale}.json for models measured only there (the same LR)."""
    path = bench_dir / f"quality_x{scale}.json"
    bench = json.loads(path.read_text()) if path.exists() else {}
    extra = degraded_results(bench_dir, scale).get("families", {}).get("clean", {})
    return bench | {k: v for k, v in extra.items() if k not in bench}


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
        if t.get("interpolation"):  # training/interpolate.py: a mix of two stages' files
            steps += f", then interpolated (alpha {t['interpolation']['alpha']:g})"
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
    for s in SCALES:
        at = [r for r in rows_ if r["scale"] == s and r["entry"].variant in ("psnr", "gan")]
        if not at or s not in AIM_EVERY:
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


def degraded_table(bench_dir: Path, scale: int, rows_: list[dict[str, Any]]) -> str:
    """Clean and degraded side by side at one scale: gain over bicubic (dB) / identity distance."""
    data = degraded_results(bench_dir, scale)
    fams = data.get("families", {})
    if not fams:
        return ""
    clean = clean_results(bench_dir, scale)
    names = ["clean", *[f for f in fams if f != "clean"]]
    heads = [f"{f} (unseen)" if f in dg.UNSEEN else f for f in names]
    shipped = {r["entry"].id for r in rows_ if r["scale"] == scale}
    seen = {  # per model, the unseen families its own training mix did draw (mix_wide)
        r["entry"].id: set(dg.UNSEEN) - unseen_by(r.get("training", {}))
        for r in rows_
        if r["scale"] == scale
    }
    models = [
        m
        for m in registry.ids()
        if m == "bicubic" or (m in shipped and any(m in fams[f] for f in fams))
    ]
    cpus = sorted({m.get("hardware", "") for f in fams.values() for m in f.values()} - {""})
    lines = [
        f"**x{scale}** ({data.get('faces', '?')} faces; cell = PSNR gain over bicubic on "
        "the same LR / identity distance, lower is better; bicubic's row = its PSNR / "
        f"identity distance; measured on {', '.join(cpus) or 'n/a'})",
        "",
        "| model | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model_id in models:
        cells = []
        for fam in names:
            res = clean if fam == "clean" else fams.get(fam, {})
            m, b = res.get(model_id), res.get("bicubic")
            if m is None or b is None:
                cells.append("-")
            elif model_id == "bicubic":
                cells.append(f"{m['psnr']:.2f} dB / {m['identity_distance']:.3f}")
            else:
                mark = " (trained on)" if fam in seen.get(model_id, ()) else ""
                cells.append(f"{m['psnr'] - b['psnr']:+.2f} / {m['identity_distance']:.3f}{mark}")
        variant = registry.get(model_id).variant
        label = model_id if variant == "baseline" else f"`{model_id}` ({variant})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def unseen_by(training: dict[str, Any]) -> set[str]:
    """The unseen families that no training stage of a file drew (a stage on "mix_wide" draws
    sharpening and resizing; files from before the stages recorded it count as "mix")."""
    stages = [training, *training.get("stages", [])]
    mixes = {stage.get("degradation") for stage in stages} & set(dg.MIXES)
    out = set(dg.UNSEEN)
    for mix in mixes:
        out &= set(dg.unseen_families(mix))
    return out


def identity_trained(training: dict[str, Any]) -> bool:
    """Whether any training stage of a file had an identity loss (training/losses.py)."""
    stages = [training, *training.get("stages", [])]
    return any(float((stage.get("losses") or {}).get("identity", 0)) > 0 for stage in stages)


def robust_aims(bench_dir: Path, rows_: list[dict[str, Any]]) -> str:
    """Issue 24's aims for every shipped robust file, met or not, by how much."""
    out = []
    for scale in SCALES:
        fams = degraded_results(bench_dir, scale).get("families", {})
        clean = clean_results(bench_dir, scale)
        gallery = gallery_results(bench_dir, scale)
        for r in rows_:
            entry = r["entry"]
            if r["scale"] != scale or entry.variant != "robust":
                continue
            aim = AIM_ROBUST.get(scale)
            short, id_worse = [], []
            for fam, res in fams.items():
                if fam not in dg.DEGRADED or entry.id not in res:  # the aims' families only
                    continue
                m, b = res[entry.id], res["bicubic"]
                gain = m["psnr"] - b["psnr"]
                if aim is not None and gain < aim:
                    short.append(f"{fam} {gain:+.2f} ({aim - gain:.2f} dB short)")
                if m["identity_distance"] >= b["identity_distance"]:
                    id_worse.append(
                        f"{fam} {m['identity_distance']:.3f} vs {b['identity_distance']:.3f}"
                    )
            measured = [f for f in fams if f in dg.DEGRADED and entry.id in fams[f]]
            twin = clean.get(entry.twin)
            own = clean.get(entry.id)
            parts = [f"- x{scale} `{r['file']}`:"]
            if aim is not None:
                parts.append(
                    f"aim >= +{aim:.1f} dB over bicubic on every degraded family "
                    f"({len(measured)} measured): "
                    + (
                        "met."
                        if measured and not short
                        else f"**not met**: {', '.join(short) or 'not measured'}."
                    )
                )
            parts.append(
                "Identity distance below bicubic's on every family: "
                + (
                    "yes."
                    if measured and not id_worse
                    else f"**no**: {', '.join(id_worse) or 'not measured'}."
                )
                + (
                    " (Trained with an identity loss on the same dlib network that measures "
                    "it, so an optimistic figure: landmark error and LPIPS are the "
                    "independent checks.)"
                    if identity_trained(r.get("training", {}))
                    else ""
                )
            )
            verdict = identification_verdict(entry.id, gallery)
            if verdict:
                parts.append(verdict)
            if twin and own:
                loss = twin["psnr"] - own["psnr"]
                parts.append(
                    f"Clean input: {abs(loss):.2f} dB {'below' if loss >= 0 else 'above'} its "
                    "clean-trained twin (aim "
                    f"within {AIM_ROBUST_CLEAN:.1f}): "
                    + ("met." if loss <= AIM_ROBUST_CLEAN else "**not met**.")
                )
            out.append(" ".join(parts))
    return "\n".join(out)


def render_degraded(bench_dir: Path, weights_dir: Path) -> str:
    r = rows(bench_dir, weights_dir)
    tables = [t for t in (degraded_table(bench_dir, s, r) for s in SCALES) if t]
    return (
        f"{DSTART}\n" + "\n\n".join(tables) + "\n\nAgainst issue 24's aims (computed "
        f"from the tables):\n\n{robust_aims(bench_dir, r)}\n{DEND}"
    )


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
    text = head + block + rest.split(END, 1)[1]
    if DSTART in text and DEND in text:
        dblock = render_degraded(args.benchmarks, weights.get_weights_dir(args.weights))
        head, rest = text.split(DSTART, 1)
        text = head + dblock + rest.split(DEND, 1)[1]
        print(dblock)
    args.readme.write_text(text)
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
