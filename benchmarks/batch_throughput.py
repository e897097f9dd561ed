"""Batch throughput: images per second of :func:`engine.batch.run_batch` on real photos.

Copies ``--count`` photos (sorted by name, so every run sees the same ones) from ``--source``
into a temporary folder and runs the batch once per model: the bicubic baseline and every
trained model whose weights are installed at ``--scale``. For each run it reports images and
faces per second and where the time went. Detection runs in the look-ahead thread, so two
shares are given: detection seconds over the run's wall time (how long the detector was busy
while the run lasted) and over all stage seconds (its share of the work). ``--sequential`` adds
bicubic runs without the look-ahead thread, alternating with runs with it (``--repeat`` pairs),
to measure what the overlap gains. On a shared machine wall time depends on the CPU share the
process gets, so the process's CPU seconds per image are reported as well: they do not.

``--random-weights`` lets a folder run use trained architectures that have no weights installed
yet: each ``--model`` without weights gets a randomly initialised network in its paper
configuration, saved to a temporary weights folder (cost only: the pictures are meaningless;
the table marks these runs). ``--batch-faces 1`` turns batching off for comparison.

``--forward-pass N`` measures what batching gains in the network alone: every trained
architecture in its paper configuration, with *random* weights (cost only: the outputs mean
nothing and are never saved), runs N faces one per forward pass and then all N in one.

    nice -n 10 .venv/bin/python benchmarks/batch_throughput.py --count 200 --sequential

Needs the CelebAMask-HQ photos (512x512 JPEG) at the default ``--source``; any folder of
photos with faces works.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import batch, faces, registry, weights
from engine.enhance import Enhancer
from engine.weights import LoadedModel

DEFAULT_SOURCE = Path("/work/shared/datasets/celebamask_hq/images")


def machine(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "os": platform.platform(),
    }


def installed_models(enhancer: Enhancer, scale: int) -> list[str]:
    """Trained models with verified-looking weights installed at ``scale``."""
    return [
        entry.id
        for entry, statuses in enhancer.models()
        if not entry.is_baseline and statuses.get(scale) == "installed"
    ]


def random_weights(model_ids: list[str], scale: int, folder: Path) -> list[str]:
    """Save a random paper-configuration network for each model without installed weights."""
    import torch

    made = []
    for model_id in model_ids:
        entry = registry.get(model_id)
        if entry.is_baseline or weights.status(entry, scale) == "installed":
            continue
        torch.manual_seed(0)
        path = folder / registry.weight_filename(entry, scale)
        weights.save(registry.build(entry, scale), entry, scale, path, {"random": True})
        weights.update_manifest(path)
        made.append(model_id)
    return made


def run_one(
    src: Path,
    out: Path,
    model_id: str,
    scale: int,
    enhancer: Enhancer,
    lookahead: bool,
    batch_faces: int = batch.DEFAULT_BATCH_FACES,
) -> dict[str, Any]:
    cpu0 = os.times()
    summary = batch.run_batch(
        src,
        out,
        [model_id],
        scale,
        enhancer=enhancer,
        lookahead=lookahead,
        batch_faces=batch_faces,
    )
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    t = summary.timings
    work = sum(t[k] for k in ("load", "detect", "model", "write"))
    return {
        "model": model_id,
        "lookahead": lookahead,
        "batch_faces": batch_faces,
        "faces_per_pass": round(summary.faces / max(summary.forward_passes[model_id], 1), 2),
        "images": summary.files_done,
        "ok": summary.ok,
        "no_face": summary.no_face,
        "errors": summary.errors,
        "faces": summary.faces,
        "seconds": round(summary.elapsed_s, 2),
        "images_per_s": round(summary.files_done / summary.elapsed_s, 3),
        "faces_per_s": round(summary.faces / summary.elapsed_s, 3),
        "cpu_s_per_image": round(cpu / max(summary.files_done, 1), 3),
        "cpu_share": round(cpu / summary.elapsed_s, 2),
        "detect_share_of_wall": round(t["detect"] / summary.elapsed_s, 3),
        "detect_share_of_work": round(t["detect"] / work, 3) if work else None,
        "timings_s": t,
    }


def forward_pass(scale: int, n_faces: int, device: str) -> list[dict[str, Any]]:
    """Seconds per face, one face per pass vs ``n_faces`` per pass, per architecture."""
    import torch

    rng = np.random.default_rng(0)
    rows = []
    for entry in registry.MODELS:
        if entry.is_baseline or entry.variant == "gan" or scale not in entry.scales:
            continue  # a GAN variant is the same network as its PSNR one
        torch.manual_seed(0)
        module = registry.build(entry, scale).eval().requires_grad_(False).to(device)
        model = LoadedModel(entry=entry, scale=scale, module=module, device=device)
        side = model.lr_size
        lrs = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n_faces)]
        batch.super_resolve(model, lrs[:2])  # warm-up (allocations, kernels)
        t = time.perf_counter()
        for lr in lrs:
            batch.super_resolve(model, [lr])
        single = (time.perf_counter() - t) / n_faces
        t = time.perf_counter()
        batch.super_resolve(model, lrs)
        batched = (time.perf_counter() - t) / n_faces
        rows.append(
            {
                "model": entry.id,
                "input": f"{side}x{side}" if entry.input == "lr" else "128x128 (upsampled)",
                "s_per_face_single": round(single, 4),
                "s_per_face_batched": round(batched, 4),
                "speed_up": round(single / batched, 2),
            }
        )
        sys.stderr.write(f"forward pass {entry.id}: {rows[-1]['speed_up']}x\n")
    return rows


def forward_table(rows: list[dict[str, Any]], n_faces: int) -> str:
    lines = [
        f"| network (random weights) | input | s / face, 1 per pass | s / face, {n_faces} per pass "
        "| speed-up |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['s_per_face_single']} "
            f"| {r['s_per_face_batched']} | {r['speed_up']}x |"
        )
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | look-ahead | faces / pass (max) | images | faces | s | images/s | faces/s "
        "| CPU s / image | CPU cores used | detection / wall | detection / work | load s "
        "| detect s | model s | write s | wait s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["timings_s"]
        lines.append(
            f"| {r['model']}{' (random weights)' if r.get('random') else ''} "
            f"| {'yes' if r['lookahead'] else 'no'} | {r['faces_per_pass']} ({r['batch_faces']}) "
            f"| {r['images']} | {r['faces']} "
            f"| {r['seconds']} | {r['images_per_s']} | {r['faces_per_s']} "
            f"| {r['cpu_s_per_image']} | {r['cpu_share']} "
            f"| {r['detect_share_of_wall']:.0%} | {r['detect_share_of_work']:.0%} "
            f"| {t['load']} | {t['detect']} | {t['model']} | {t['write']} | {t['wait']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        help="model id (default: bicubic + every installed trained model)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also run bicubic without the look-ahead thread (alternating)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="with --sequential: (without, with) pairs to run"
    )
    parser.add_argument(
        "--forward-pass",
        type=int,
        default=0,
        metavar="N",
        help="also time N random faces per network, one vs N per forward pass",
    )
    parser.add_argument("--no-folder", action="store_true", help="skip the folder runs")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="random paper-size networks for models without weights (cost only)",
    )
    parser.add_argument("--batch-faces", type=int, default=batch.DEFAULT_BATCH_FACES)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    photos = [] if args.no_folder else sorted(p for p in args.source.iterdir() if p.is_file())
    photos = photos[: args.count]
    if len(photos) < args.count and not args.no_folder:
        sys.stderr.write(f"only {len(photos)} files in {args.source}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ffe-batch-bench-") as tmp:
        enhancer = Enhancer(device=args.device)
        models = args.models or ["bicubic", *installed_models(enhancer, args.scale)]
        for model_id in models:
            registry.check_scale(registry.get(model_id), args.scale)
        randomised: list[str] = []
        if args.random_weights:
            wdir = Path(tmp) / "weights"
            wdir.mkdir()
            for source in weights.get_weights_dir().iterdir():  # installed ones stay usable
                if source.suffix == ".safetensors" or source.name == weights.MANIFEST_NAME:
                    shutil.copy2(source, wdir / source.name)
            randomised = random_weights(models, args.scale, wdir)
            enhancer = Enhancer(device=args.device, weights_dir=str(wdir))
        info = machine(enhancer.device)
        faces.load_models()  # dlib's one-off model loading is not part of any run

        src = Path(tmp) / "in"
        src.mkdir()
        for p in photos:
            shutil.copy2(p, src / p.name)
        pairs = [("bicubic", False), ("bicubic", True)] * args.repeat if args.sequential else []
        plan = pairs + [(m, True) for m in models if not (pairs and m == "bicubic")]
        plan = [] if args.no_folder else plan
        for i, (model_id, lookahead) in enumerate(plan):
            out = Path(tmp) / f"out{i}"
            rows.append(
                run_one(src, out, model_id, args.scale, enhancer, lookahead, args.batch_faces)
            )
            rows[-1]["random"] = model_id in randomised
            sys.stderr.write(
                f"{model_id} look-ahead={lookahead}: {rows[-1]['images_per_s']} images/s\n"
            )
    passes = (
        forward_pass(args.scale, args.forward_pass, enhancer.device) if args.forward_pass else []
    )
    info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    info["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    if rows:
        sys.stdout.write(f"{len(photos)} images from {args.source}, x{args.scale}\n\n")
        sys.stdout.write(table(rows) + "\n\n")
    if passes:
        sys.stdout.write(forward_table(passes, args.forward_pass) + "\n\n")
    sys.stdout.write(json.dumps(info, indent=2) + "\n")
    if args.json:
        document = {"machine": info, "runs": rows, "forward_pass": passes}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
