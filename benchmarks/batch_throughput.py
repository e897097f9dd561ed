"""Batch throughput: photos per second of :func:`engine.batch.run_batch`, in-process and on a
local Dask cluster, and the model-bound rate of every installed model.

Copies ``--count`` photos (sorted by name, so every run sees the same ones) from ``--source``
into a temporary folder and runs the batch once per (executor, model): ``--executor
in-process`` (the default engine: one task thread in this process) and ``--executor local:N``
(N Dask worker processes, one thread each). For a cluster the benchmark starts the
``LocalCluster`` itself, warms every worker (imports, dlib's models) and passes its scheduler
address to ``run_batch``, so that the photos/s of the run do not include the start-up, which is
reported on its own (``ffe batch --dask local:N`` pays it once per run), and so that the CPU
seconds of the worker processes can be added to the driver's. On a shared machine wall time
depends on the CPU share the processes get; CPU seconds per photo do not.

``--model-rates N`` times the network alone for every installed model at ``--scale``: N
aligned faces, one per forward pass, wall and CPU time (the model-bound rate of a run).
``--random-weights`` gives models without weights a randomly initialised network in its paper
configuration (cost only; the table marks these runs). ``--forward-pass N`` times N random
faces one per pass vs N per pass, per architecture (random weights).

    nice -n 10 .venv/bin/python benchmarks/batch_throughput.py --count 40 --model bicubic \
        --model s2_rafsr --executor in-process --executor local:2 --model-rates 12

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import batch, batch_exec, batch_task, faces, registry, weights
from engine.enhance import Enhancer
from engine.weights import LoadedModel

DEFAULT_SOURCE = Path("/work/shared/datasets/celebamask_hq/images")


def machine(device: str) -> dict[str, Any]:
    """What the numbers were measured on (the CPU as ``lscpu`` names it)."""
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, subprocess.CalledProcessError, StopIteration):
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


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _worker_cpu_seconds() -> float:
    import psutil  # installed with distributed

    t = psutil.Process().cpu_times()
    return t.user + t.system


class Cluster:
    """A LocalCluster started, warmed and timed by the benchmark (closed by ``close``)."""

    def __init__(self, workers: int) -> None:
        from distributed import Client, LocalCluster

        t = time.perf_counter()
        self.local = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(self.local)
        self.start_s = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        self.client.run(batch_task.warm_up)  # as a run does: torch, the engine, dlib's models
        self.warm_s = round(time.perf_counter() - t, 2)
        self.address = self.local.scheduler_address

    def cpu(self) -> float:
        return sum(self.client.run(_worker_cpu_seconds).values())

    def close(self) -> None:
        self.client.close()
        self.local.close()


def run_one(
    src: Path,
    out: Path,
    model_id: str,
    scale: int | str,
    enhancer: Enhancer,
    executor: str,
    cluster: Cluster | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    cpu0 = _cpu_seconds() + (cluster.cpu() if cluster else 0.0)
    summary = batch.run_batch(
        src,
        out,
        [model_id],
        scale,
        enhancer=enhancer,
        batch_faces=args.batch_faces,
        allow_shrink=args.allow_shrink,
        full=args.full,
        dask=cluster.address if cluster else None,
    )
    cpu = _cpu_seconds() + (cluster.cpu() if cluster else 0.0) - cpu0
    t = summary.timings
    return {
        "executor": executor,
        "model": model_id,
        "images": summary.files_done,
        "ok": summary.ok,
        "no_face": summary.no_face,
        "errors": summary.errors,
        "faces": summary.faces,
        "seconds": round(summary.elapsed_s, 2),
        "images_per_s": round(summary.files_done / summary.elapsed_s, 3),
        "cpu_s_per_image": round(cpu / max(summary.files_done, 1), 3),
        "cpu_share": round(cpu / summary.elapsed_s, 2),
        "cluster_start_s": cluster.start_s if cluster else None,
        "cluster_warm_s": cluster.warm_s if cluster else None,
        "timings_s": t,
    }


def model_rates(enhancer: Enhancer, models: list[str], scale: int, n: int) -> list[dict]:
    """The network alone: ``n`` aligned faces of the model's input size, one per pass."""
    rng = np.random.default_rng(0)
    rows = []
    for model_id in models:
        model = enhancer.model(model_id, scale)
        side = model.lr_size
        lrs = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]
        model.run(lrs[0])  # warm-up
        cpu0, t = _cpu_seconds(), time.perf_counter()
        for lr in lrs:
            model.run(lr)
        wall, cpu = time.perf_counter() - t, _cpu_seconds() - cpu0
        rows.append(
            {
                "model": model_id,
                "faces_per_s": round(n / wall, 2),
                "cpu_ms_per_face": round(1000 * cpu / n, 1),
            }
        )
        sys.stderr.write(f"model rate {model_id}: {rows[-1]['faces_per_s']} faces/s\n")
    return rows


def rates_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | faces/s (wall) | CPU ms / face |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['faces_per_s']} | {r['cpu_ms_per_face']} |")
    return "\n".join(lines)


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
        model.run_batch(lrs[:2])  # warm-up (allocations, kernels)
        t = time.perf_counter()
        for lr in lrs:
            model.run_batch([lr])
        single = (time.perf_counter() - t) / n_faces
        t = time.perf_counter()
        model.run_batch(lrs)
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
        "| executor | model | photos | faces | s | photos/s | CPU s / photo | CPU cores used "
        "| cluster start + warm-up s | load s | detect s | model s | write s | fidelity s "
        "| driver waiting s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["timings_s"]
        start = f"{r['cluster_start_s']} + {r['cluster_warm_s']}" if r["cluster_start_s"] else "-"
        lines.append(
            f"| {r['executor']} | {r['model']}{' (random weights)' if r.get('random') else ''} "
            f"| {r['images']} | {r['faces']} | {r['seconds']} | **{r['images_per_s']}** "
            f"| {r['cpu_s_per_image']} | {r['cpu_share']} | {start} "
            f"| {t['load']} | {t['detect']} | {t['model']} | {t['write']} | {t['fidelity']} "
            f"| {t['wait']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--scale", default="4", help="a factor, or auto")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        help="model id for the folder runs (default: bicubic)",
    )
    parser.add_argument(
        "--executor",
        dest="executors",
        action="append",
        default=None,
        help="in-process or local:N (repeat; default: in-process and local:2)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--allow-shrink",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the faces a fixed scale shrinks (default: yes, the issue's case)",
    )
    parser.add_argument("--full", action="store_true", help="also write the full photo")
    parser.add_argument(
        "--model-rates", type=int, default=0, metavar="N", help="time N faces per model"
    )
    parser.add_argument(
        "--forward-pass",
        type=int,
        default=0,
        metavar="N",
        help="also time N random faces per network, one vs N per forward pass",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="random paper-size networks for models without weights (cost only)",
    )
    parser.add_argument("--batch-faces", type=int, default=batch.DEFAULT_BATCH_FACES)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    scale: int | str = args.scale if args.scale == "auto" else int(args.scale)

    photos = sorted(p for p in args.source.iterdir() if p.is_file())[: args.count]
    if len(photos) < args.count:
        sys.stderr.write(f"only {len(photos)} files in {args.source}\n")
    rows, rates = [], []
    with tempfile.TemporaryDirectory(prefix="ffe-batch-bench-") as tmp:
        enhancer = Enhancer(device=args.device)
        models = args.models or ["bicubic"]
        randomised: list[str] = []
        if args.random_weights and scale != "auto":
            wdir = Path(tmp) / "weights"
            wdir.mkdir()
            for source in weights.get_weights_dir().iterdir():  # installed ones stay usable
                if source.suffix == ".safetensors" or source.name == weights.MANIFEST_NAME:
                    shutil.copy2(source, wdir / source.name)
            randomised = random_weights(models, scale, wdir)
            enhancer = Enhancer(device=args.device, weights_dir=str(wdir))
        info = machine(enhancer.device)
        faces.load_models()  # dlib's one-off model loading is not part of any run
        src = Path(tmp) / "in"
        src.mkdir()
        for p in photos:
            shutil.copy2(p, src / p.name)
        for executor in args.executors or ["in-process", "local:2"]:
            cluster = None
            if executor != "in-process":
                cluster = Cluster(batch_exec.parse_spec(executor).workers)
            try:
                for model_id in models:
                    out = Path(tmp) / f"out{len(rows)}"
                    row = run_one(src, out, model_id, scale, enhancer, executor, cluster, args)
                    row["random"] = model_id in randomised
                    rows.append(row)
                    sys.stderr.write(f"{executor} {model_id}: {row['images_per_s']} photos/s\n")
            finally:
                if cluster is not None:
                    cluster.close()
        if args.model_rates:
            rate_scale = 4 if scale == "auto" else scale
            trained = installed_models(enhancer, rate_scale)
            rates = model_rates(enhancer, ["bicubic", *trained], rate_scale, args.model_rates)
    passes = (
        forward_pass(int(args.scale), args.forward_pass, enhancer.device)
        if args.forward_pass
        else []
    )
    info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    info["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    if rows:
        sys.stdout.write(f"{len(photos)} photos from {args.source}, scale {scale}\n\n")
        sys.stdout.write(table(rows) + "\n\n")
    if rates:
        sys.stdout.write(rates_table(rates) + "\n\n")
    if passes:
        sys.stdout.write(forward_table(passes, args.forward_pass) + "\n\n")
    sys.stdout.write(json.dumps(info, indent=2) + "\n")
    if args.json:
        document = {"machine": info, "runs": rows, "model_rates": rates, "forward_pass": passes}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
