"""CPU inference speed per face: fp32 (the engine's path) against bf16 autocast + channels_last.

For every distinct network of :data:`engine.registry.MODELS` (GAN variants share their PSNR
sibling's network, so they are measured once; S1 works at the HR size whatever the scale, so
it is measured once) at x4 and x8: median wall milliseconds per face at batch 1 and batch 16,
``torch.set_num_threads(2)`` (``--threads``), inference mode, random-init weights (the speed
of a network does not depend on its weight values). Beside it, a "floor": the network's GFLOPs
per face (counted by ``benchmarks/model_cost.py``'s hooks) divided by the throughput this
machine reaches on one large convolution (3x3, 64->64 channels, 64x64 inputs, batch 16), in
fp32 and in bf16. A model far above its floor loses time outside big convolutions (small
layers, attention, memory).

Tolerance check of the faster path: the largest absolute difference of the bf16 output from the
fp32 output (values in [0, 1]; x255 gives 8-bit levels), and whether two bf16 runs give the
same bytes. A faster path could replace fp32 only if it stays within 0.5/255 (no 8-bit output
value changes by more than rounding) and is deterministic; fp32 stays the default either way.

The machine is shared (a training run and other jobs): the load average at the start and the
end is written next to the table, and the numbers are upper bounds.

Usage: ``nice -n 10 .venv/bin/python benchmarks/speed.py [--runs 3] [--batch 1 16] [--md out]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_cost import count_macs  # noqa: E402  (benchmarks/ is not a package)

from engine import registry  # noqa: E402

HR = 128
TOLERANCE = 0.5 / 255  # the largest output change that cannot alter a rounded 8-bit value


def conv_throughput(dtype: torch.dtype, runs: int = 5) -> float:
    """GFLOP/s of a 3x3 convolution 64->64 on a (16, 64, 64, 64) input (channels_last for bf16)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.randn(16, 64, 64, 64)
    if dtype == torch.bfloat16:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    flops = 2 * 16 * 64 * 64 * 64 * 64 * 9
    times = []
    with (
        torch.inference_mode(),
        torch.autocast("cpu", torch.bfloat16, enabled=dtype != torch.float32),
    ):
        conv(x)
        for _ in range(runs):
            start = time.perf_counter()
            conv(x)
            times.append(time.perf_counter() - start)
    return flops / statistics.median(times) / 1e9


def networks() -> list[tuple[registry.ModelEntry, int, list[str], list[int]]]:
    """Per distinct network: (first entry, scale built, ids and scales that share it)."""
    found: dict[tuple, tuple[registry.ModelEntry, int, list[str], list[int]]] = {}
    for entry in registry.MODELS:
        for scale in (4, 8) if entry.arch is not None else ():
            if scale not in entry.scales:
                continue
            kwargs = registry.default_kwargs(entry, scale)
            key = (entry.arch, entry.input, repr(sorted(kwargs.items())))
            _, _, ids, scales = found.setdefault(key, (entry, scale, [], []))
            ids += [] if entry.id in ids else [entry.id]
            scales += [] if scale in scales else [scale]
    return list(found.values())


def _input(entry: registry.ModelEntry, scale: int, batch: int) -> torch.Tensor:
    side = HR if entry.input == "upsampled" else HR // scale
    return torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(0))


def _forward(model: torch.nn.Module, x: torch.Tensor, fast: bool) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=fast):
        out = model(x)
    return out.float()


def ms_per_face(model: torch.nn.Module, x: torch.Tensor, fast: bool, runs: int) -> float:
    """Median wall ms per face of ``runs`` timed calls (after one warm-up call)."""
    _forward(model, x, fast)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _forward(model, x, fast)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / x.shape[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed calls at batch 1")
    parser.add_argument("--runs-batched", type=int, default=1, help="timed calls at batch > 1")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--only", nargs="*", default=None, help="papers to measure, e.g. S2")
    parser.add_argument("--md", type=Path, default=None, help="append the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_start = os.getloadavg()
    started = time.time()
    gflops_fp32 = conv_throughput(torch.float32)
    gflops_bf16 = conv_throughput(torch.bfloat16)
    header = (
        "| paper | scale | networks | GFLOPs / face | floor fp32 / bf16 (ms) | "
        + " | ".join(f"b{b} fp32 | b{b} bf16+CL" for b in args.batch)
        + " | fp32 out max abs | bf16 max abs diff (x255) | bf16 deterministic | within tolerance |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    print(header, flush=True)
    for entry, scale, ids, scales in networks():
        if args.only and entry.paper not in args.only:
            continue
        model = registry.build(entry, scale).eval()
        x1 = _input(entry, scale, 1)
        gflops = 2 * count_macs(model, x1) / 1e9
        fp32_out = _forward(model, x1, fast=False)
        cl_model = registry.build(entry, scale).eval()
        cl_model.load_state_dict(model.state_dict())
        cl_model = cl_model.to(memory_format=torch.channels_last)
        x1_cl = x1.contiguous(memory_format=torch.channels_last)
        bf16_out = _forward(cl_model, x1_cl, fast=True)
        bf16_again = _forward(cl_model, x1_cl, fast=True)
        diff = float((bf16_out - fp32_out).abs().max())
        deterministic = torch.equal(bf16_out, bf16_again)
        cells = []
        for batch in args.batch:
            runs = args.runs if batch == 1 else args.runs_batched
            x = _input(entry, scale, batch)
            cells.append(f"{ms_per_face(model, x, False, runs):.0f}")
            x_cl = x.contiguous(memory_format=torch.channels_last)
            cells.append(f"{ms_per_face(cl_model, x_cl, True, runs):.0f}")
        scale_text = "/".join(f"x{s}" for s in scales)
        within = "yes" if diff <= TOLERANCE and deterministic else "no"
        row = (
            f"| {entry.paper} | {scale_text} | {', '.join(ids)} | {gflops:.2f} | "
            f"{gflops / gflops_fp32 * 1000:.0f} / {gflops / gflops_bf16 * 1000:.0f} | "
            + " | ".join(cells)
            + f" | {float(fp32_out.abs().max()):.3f} | {diff:.4f} ({diff * 255:.1f}) | "
            f"{'yes' if deterministic else 'no'} | {within} |"
        )
        lines.append(row)
        print(row, flush=True)
    load_end = os.getloadavg()
    notes = [
        "",
        f"- Conv throughput (3x3, 64->64, 64x64, batch 16, {args.threads} thread(s)): "
        f"fp32 {gflops_fp32:.1f} "
        f"GFLOP/s, bf16 autocast + channels_last {gflops_bf16:.1f} GFLOP/s.",
        f"- Timed calls: batch 1 median of {args.runs} after 1 warm-up; batch > 1 median of "
        f"{args.runs_batched} after 1 warm-up. Wall time, torch.set_num_threads({args.threads}).",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"cores; torch {torch.__version__}; Python {platform.python_version()}; "
        f"run took {time.time() - started:.0f} s.",
        "- Load average (1/5/15 min) at start "
        + "/".join(f"{v:.1f}" for v in load_start)
        + ", at end "
        + "/".join(f"{v:.1f}" for v in load_end)
        + ".",
    ]
    for note in notes:
        print(note)
    if args.md is not None:
        with args.md.open("a") as f:
            f.write("\n".join(lines + notes) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
