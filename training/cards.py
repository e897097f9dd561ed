"""What a finished run leaves beside its weights: the clean exported file, its model card, its
loss curve, and the record of every training stage behind it.

Clean weights in one place, at export (the habit of spandrel's ``canonicalize``): the EMA
generator's state as float32 CPU tensors without ``module.`` prefixes goes through
:func:`engine.weights.save`, so the app only ever sees clean, verified files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import registry, weights
from training.config import TrainConfig, resolve_path, scale_probabilities

log = logging.getLogger("training.train.cards")  # into the run's train.log with the loop's lines


def clean_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """float32, contiguous, CPU copy of a state dict (no channels_last strides, no prefixes)."""
    return {
        k.removeprefix("module."): v.detach().float().cpu().contiguous().clone()
        if v.is_floating_point()
        else v.detach().cpu().contiguous().clone()
        for k, v in module.state_dict().items()
    }


def hardware() -> str:
    """A one-line description of the machine the run used."""
    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}"
    )


# What a weights file's training record keeps about each run (stage) behind it.
STAGE_KEYS = (
    "run", "steps", "batch_size", "images_seen", "wall_minutes", "hardware", "losses", "degradation"
)


def prior_stages(path: Path) -> list[dict[str, Any]]:
    """The training stages recorded in a weights file a run starts from (oldest first), so the
    exported file accounts for all the training behind it, not only its last run."""
    try:
        t = json.loads(weights.read_metadata(path).get("training", "{}"))
    except (weights.WeightsError, ValueError):
        return []
    if t.get("stages"):
        return list(t["stages"])
    if not t.get("run"):
        return []
    return [{k: t.get(k) for k in STAGE_KEYS}]


def export_weights(
    cfg: TrainConfig,
    entry: registry.ModelEntry,
    kwargs: dict[str, Any],
    ema: torch.nn.Module,
    summary: dict[str, Any],
    history: list[dict],
    data_dir: Path,
    earlier_stages: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """EMA weights -> safetensors via engine.weights.save + manifest + model card + loss curve."""
    module = registry.build(entry, cfg.scale, **cfg.kwargs)
    module.load_state_dict(clean_state(ema))
    out_dir = resolve_path(cfg.export_dir) if cfg.export_dir else weights.get_weights_dir()
    path = weights.weights_path(entry, cfg.scale, out_dir)
    report = {}
    if (data_dir / "report.json").exists():
        report = json.loads((data_dir / "report.json").read_text())
    training = {
        "run": cfg.name,
        "steps": summary["steps"],
        "images_seen": summary["images_seen"],
        "wall_minutes": summary["wall_minutes"],
        "hardware": summary["hardware"],
        "data": "UTKFace + CelebAMask-HQ aligned faces (non-commercial research only)",
        "degradation": cfg.degrade,
        "losses": cfg.losses,
        "optimizer": cfg.optimizer,
        "schedule": cfg.schedule,
        "batch_size": cfg.batch_size,
        "ema_decay": cfg.ema_decay,
        "val_psnr": round(summary["val"]["psnr"], 3),
        "val_gain_db": round(summary["val"]["gain"], 3),
        "config": cfg.to_dict(),
    }
    this_stage = {k: training[k] for k in STAGE_KEYS}
    training["stages"] = [*(earlier_stages or []), this_stage]
    trained = set(cfg.scales or [cfg.scale])
    if cfg.served_scales and not set(cfg.served_scales) <= trained:
        raise ValueError(f"served_scales {cfg.served_scales} are not all trained ({sorted(trained)})")
    served = sorted(set(cfg.served_scales or trained)) if entry.shared_weights else cfg.scale
    sha = weights.save(module, entry, served, path, training, kwargs=kwargs)
    weights.update_manifest(path)
    curve = path.with_name(path.stem + "_loss.png")
    draw_curve(history, curve, f"{path.stem}: training loss and validation gain")
    card = path.with_suffix(".md")
    card.write_text(
        model_card(
            cfg, entry, kwargs, summary, report, path.name, sha, curve.name, training["stages"]
        )
    )
    log.info("exported %s (sha256 %s), card %s", path, sha[:12], card.name)
    return {"weights": str(path), "sha256": sha, "card": str(card), "curve": str(curve)}


def _fmt(m: dict[str, float] | None, n: int | None = None, base: str = "bicubic") -> str:
    if not m:
        return "not measured"
    faces = f" on {n} faces" if n else ""
    return (
        f"PSNR {m['psnr']:.2f} dB vs {base} {m['bicubic_psnr']:.2f} dB "
        f"(gain {m['gain']:+.2f} dB); SSIM {m['ssim']:.4f} vs {base} {m['bicubic_ssim']:.4f}"
        f"{faces}"
    )


def model_card(
    cfg: TrainConfig,
    entry: registry.ModelEntry,
    kwargs: dict[str, Any],
    summary: dict[str, Any],
    report: dict,
    filename: str,
    sha: str,
    curve: str,
    stages: list[dict[str, Any]] | None = None,
) -> str:
    """Markdown model card: what the network is, what it was trained on and how, how it scores."""
    splits = report.get("splits", {})
    dropped = report.get("dropped", {})
    blurry = report.get("dropped_blurry", {})
    test_n = splits.get("test", {}).get("total")
    scales = list(cfg.scales or [cfg.scale])
    scale_p = scale_probabilities(scales, cfg.scale_weights)
    x1 = cfg.scale == 1  # restoration at the native size: the baseline is the input itself
    base = "the degraded input" if x1 else "bicubic"
    lines = [
        f"# {entry.label} x{cfg.scale} — `{filename}`",
        "",
        f"**Paper ({entry.paper}):** {entry.citation}",
        "",
        f"- Model id `{entry.id}`, architecture `{entry.arch}`, input: {entry.input} face, "
        + (
            "output the same size as its input (x1 restore: nothing enlarged; in the app it "
            "runs on the crop of recorded pixels around the face)."
            if x1
            else "output 128x128 RGB."
        ),
        f"- Constructor arguments: `{json.dumps(kwargs, sort_keys=True)}`",
        f"- SHA-256: `{sha}`",
        "",
        "## Licence of the weights",
        "Trained on UTKFace and CelebAMask-HQ, both released for **non-commercial research "
        "only**; these weights carry the same restriction. The face landmarks used to align the "
        "data come from dlib's 68-point model (trained on iBUG 300-W, non-commercial).",
        "",
        "## Data",
        "Every photo went through the app's own pipeline (engine.faces.detect, largest face; "
        "engine.faces.align to 128x128); LR inputs are made on the fly with "
        f"`{'engine.imaging.downscale (antialiased bicubic, PIL)' if cfg.degrade == 'bicubic' else cfg.degrade + ' degradation (training/degrade.py, ranges in its docstring)'}`.",
        f"- Splits (faces): {json.dumps(splits)}",
        f"- Dropped: {json.dumps(dropped)}; the softest {blurry.get('fraction', 0):.0%} by "
        f"variance of the Laplacian inside the landmark hull (threshold "
        f"{blurry.get('laplacian_variance_threshold', 0):.1f}): {blurry.get('count', 0)} faces "
        f"{json.dumps(blurry.get('by_source', {}))}.",
        "- UTKFace chips are tighter than the canonical frame (about half of each 128x128 crop "
        "lies outside the photo and is border-replicated); those pixels are masked out of the "
        "loss and of the validation PSNR. Faces whose landmarks leave the photo were dropped.",
        "- Augmentation: random horizontal mirror." if cfg.hflip else "- No augmentation.",
        *[
            f"- Source mix (this run): each face of a batch comes from {source} with probability "
            f"{p:g}, otherwise from the whole training split."
            for source, p in (cfg.source_mix or {}).items()
        ],
        *(
            [
                "- Scale mix (this run): "
                + ", ".join(f"x{s} {p:.0%}" for s, p in zip(scales, scale_p, strict=True))
                + " of the batches."
            ]
            if scale_p is not None
            else []
        ),
        "",
        "## Training",
        f"- {summary['steps']} steps of batch {cfg.batch_size} ({summary['images_seen']} images), "
        f"{summary['wall_minutes']} min wall time, median {summary['img_per_s']} img/s.",
        *(
            [
                f"- Started from `{cfg.init_from}`; all the training behind this file, oldest "
                "first: "
                + "; ".join(
                    f"`{st['run']}` {st['steps']} steps of batch "
                    f"{st['batch_size']}, {st['wall_minutes']} min"
                    for st in stages
                )
                + "."
            ]
            if stages and len(stages) > 1
            else []
        ),
        f"- Hardware: {summary['hardware']}; torch threads {cfg.threads or torch.get_num_threads()}"
        f' ("auto" = 1 or 2 following the machine\'s load), autocast {cfg.autocast}, channels_last {cfg.channels_last} (the machine was '
        "shared with other jobs, so img/s is a floor).",
        f"- Losses (weights): `{json.dumps(cfg.losses)}`; optimiser `{json.dumps(cfg.optimizer)}`; "
        f"schedule `{json.dumps(cfg.schedule)}` over the run's budget; exported weights are the "
        f"EMA (decay {cfg.ema_decay}).",
        "",
        "### Deviations from the paper",
        *([f"- {n}" for n in cfg.notes] or ["- none"]),
        "",
        f"## Results (x{cfg.scale}, "
        + (
            f"{cfg.val_degrade} damage of training/degrade.py at the native size; the baseline "
            "is the degraded input itself)"
            if x1
            else f"{'bicubic LR' if cfg.val_degrade in ('bicubic', 'clean') else cfg.val_degrade + ' LR of training/degrade.py; bicubic on the same LR'})"
        ),
        f"- Validation ({summary['val_faces']} faces, valid pixels only): "
        f"{_fmt(summary['val'], base=base)}",
        f"- Test (held-out CelebAMask-HQ photos): {_fmt(summary.get('test'), test_n, base)}"
        if summary.get("test")
        else "- Test (held-out CelebAMask-HQ photos): not measured by this run (the test faces were not "
        "on the machine that trained it); `benchmarks/quality_x4.md` and `quality_x8.md` measure "
        "every shipped file on them.",
        "- PSNR on RGB [0, 255], SSIM Gaussian-window (Wang 2004) on RGB; the full benchmark "
        "(LPIPS, landmark and identity error) is `python -m training.evaluate`"
        + (
            ", at x1 `python -m training.evaluate --scale 1 --degrade all` "
            "(benchmarks/restore_x1.md)."
            if x1
            else ", on degraded input `python -m training.evaluate --degrade all` "
            "(benchmarks/degraded_x*.md)."
            if cfg.degrade != "bicubic"
            else "."
        ),
        "",
        f"![loss curve]({curve})",
        "",
        "## Reproduce",
        "```",
        "python -m training.vgg convert            # only for configs with perceptual losses",
        "python -m training.data prepare --out cache/faces",
        *[reproduce_line(st["run"], st.get("hardware") or "") for st in (stages or [])[:-1]],
        reproduce_line(cfg.name, summary["hardware"], cfg.minutes, cfg.steps),
        "```",
        "",
    ]
    return "\n".join(lines)


def reproduce_line(
    run: str, hw: str, minutes: float | None = None, steps: int | None = None
) -> str:
    """The command that reruns one stage; a stage that ran on a GPU says how it got there."""
    line = (
        f"python -m training.train training/configs/{run}.json"
        + (f" --minutes {minutes:g}" if minutes else "")
        + (f" --steps {steps}" if steps else "")
    )
    if hw.startswith("CUDA"):
        line += "   # on a GPU: the packed data, via training/gpu_stage.sh"
    return line


# --------------------------------------------------------------------------- loss curve


def _to_px(x: float, y: float, box: tuple) -> tuple[float, float]:
    """Data coordinates -> pixel coordinates of a plot box (x0, y0, x1, y1, xmin, xmax, ymin, ymax)."""
    x0, y0, x1, y1, xmin, xmax, ymin, ymax = box
    return (
        x0 + (x - xmin) / (xmax - xmin) * (x1 - x0),
        y1 - (y - ymin) / (ymax - ymin) * (y1 - y0),
    )


def draw_curve(history: list[dict], path: Path, title: str) -> None:
    """Two panels drawn with PIL (no matplotlib here): training loss and validation gain (dB)."""
    from PIL import Image, ImageDraw

    w, h, pad = 900, 360, 50
    img = Image.new("RGB", (w, h * 2), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, 8), title, fill="black")
    panels = [
        ("training loss (mean over the log interval)", "step", "loss", (30, 90, 200)),
        ("validation PSNR gain over bicubic (dB, EMA weights)", "step", "val_gain", (200, 60, 30)),
    ]
    for k, (label, xkey, ykey, colour) in enumerate(panels):
        pts = [(r[xkey], r[ykey]) for r in history if ykey in r and math.isfinite(r[ykey])]
        top = k * h + 30
        x0, y0, x1, y1 = pad + 20, top + 20, w - pad, top + h - 50
        draw.rectangle((x0, y0, x1, y1), outline="black")
        draw.text((x0, top + 2), label, fill="black")
        if not pts:
            draw.text((x0 + 10, y0 + 10), "no data", fill="grey")
            continue
        xs, ys = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
        xmin, xmax = float(xs.min()), float(xs.max()) or 1.0
        ymin, ymax = float(ys.min()), float(ys.max())
        if xmax == xmin:
            xmax = xmin + 1
        if ymax == ymin:
            ymax = ymin + 1e-6
        box = (x0, y0, x1, y1, xmin, xmax, ymin, ymax)
        for i in range(5):  # ticks
            fx, fy = xmin + (xmax - xmin) * i / 4, ymin + (ymax - ymin) * i / 4
            px, py = _to_px(fx, fy, box)
            draw.line((x0 - 4, py, x0, py), fill="black")
            draw.text((2, py - 6), f"{fy:.4g}", fill="black")
            draw.line((px, y1, px, y1 + 4), fill="black")
            draw.text((px - 10, y1 + 8), f"{fx:.0f}", fill="black")
        draw.text(((x0 + x1) // 2, y1 + 24), xkey, fill="black")
        line = [_to_px(a, b, box) for a, b in zip(xs, ys, strict=True)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for p in line:
            draw.ellipse((p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    img.save(tmp)
    os.replace(tmp, path)
