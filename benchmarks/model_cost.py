"""Cost of the five papers' networks at their paper configurations: parameters, GFLOPs and
CPU latency per 128x128 face, at x4 and x8.

GFLOPs = 2 * MACs / 1e9, where MACs are counted with forward hooks on every Conv2d,
ConvTranspose2d and Linear layer, plus the two matrix products of each self-attention layer
(S0). Element-wise work (biases, activations, softmax, pooling, interpolation, additions) is
not counted. Latency: batch 1, float32, ``torch.set_num_threads(2)``, inference mode, median
of ``--runs`` runs after ``--warmup`` runs; also the process CPU time with one thread, which
hardly depends on the load of the shared machine (the load average at the start and the end
is written next to the table).

Usage: ``nice -n 10 .venv/bin/python benchmarks/model_cost.py [--out benchmarks/model_cost.md]``
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from engine.archs.discriminators import SRGANDiscriminator
from engine.archs.s0_srresnet_att import SelfAttention, SRResNetAttention
from engine.archs.s1_mffcn import MFFCN
from engine.archs.s2_rafsr import RAFSR
from engine.archs.s3_prior_guided import PriorGuidedSR
from engine.archs.s4_idrn import IDRN

HR = 128
log = logging.getLogger("model_cost")


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``x`` (batch 1) through ``model``."""
    total = 0

    def conv_hook(m: nn.Conv2d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def tconv_hook(m: nn.ConvTranspose2d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += inputs[0].numel() * (m.out_channels // m.groups) * k

    def linear_hook(m: nn.Linear, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    def attention_hook(m: SelfAttention, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        n, c, h, w = inputs[0].shape
        positions = h * w
        # scores f^T g: HW x HW x C'; weighted sum h beta: HW x HW x C.
        total += n * positions * positions * (m.f.out_channels + c)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(tconv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, SelfAttention):
            hooks.append(m.register_forward_hook(attention_hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return total


def median_ms(
    fn: Callable[[], object], warmup: int, runs: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median time of ``fn()`` in milliseconds on ``clock`` (wall by default)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = clock()
        fn()
        times.append((clock() - t) * 1000.0)
    return statistics.median(times)


def cases() -> list[tuple[str, int | None, Callable[[], nn.Module], tuple[int, ...]]]:
    """(label, scale, constructor at paper defaults, input shape) for every row."""
    rows: list[tuple[str, int | None, Callable[[], nn.Module], tuple[int, ...]]] = []
    for scale in (4, 8):
        lr = (1, 3, HR // scale, HR // scale)
        rows += [
            ("S0 SRResNetAttention", scale, lambda s=scale: SRResNetAttention(scale=s), lr),
            ("S1 MFFCN", scale, MFFCN, (1, 3, HR, HR)),
            ("S2 RAFSR", scale, lambda s=scale: RAFSR(scale=s), lr),
            ("S3 PriorGuidedSR", scale, lambda s=scale: PriorGuidedSR(scale=s), lr),
            ("S4 IDRN", scale, lambda s=scale: IDRN(scale=s), lr),
        ]
    rows.append(("SRGANDiscriminator (S0/S3)", None, SRGANDiscriminator, (1, 3, HR, HR)))
    return rows


def machine() -> str:
    """CPU model name (lscpu), core count, torch version, Python, load average."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), "?"
        )
    except (OSError, subprocess.CalledProcessError):
        name = platform.processor() or "?"
    return (
        f"CPU: {name} ({os.cpu_count()} logical cores visible); torch {torch.__version__}; "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("model_cost.md"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    load_start = os.getloadavg()
    rows = []
    for label, scale, make, shape in cases():
        model = make().eval()
        x = torch.rand(shape)
        params = sum(p.numel() for p in model.parameters())
        gflops = 2 * count_macs(model, x) / 1e9
        with torch.inference_mode():
            torch.set_num_threads(args.threads)
            ms = median_ms(lambda m=model, x=x: m(x), args.warmup, args.runs)
            # CPU time of one thread hardly depends on what else the shared machine runs.
            torch.set_num_threads(1)
            cpu_ms = median_ms(lambda m=model, x=x: m(x), 1, args.runs, time.process_time)
        scale_txt = f"x{scale}" if scale else "-"
        log.info("%s %s: %.2fM params, %.2f GFLOPs, %.0f ms, %.0f CPU ms (1 thread)", label,
                 scale_txt, params / 1e6, gflops, ms, cpu_ms)
        rows.append(
            f"| {label} | {scale_txt} | {params / 1e6:.2f} | {gflops:.2f} | {ms:.0f} | {cpu_ms:.0f} |"
        )
    load_end = os.getloadavg()

    text = "\n".join([
        "# Model cost at the papers' configurations",
        "",
        "Per 128x128 face. Generated by `nice -n 10 .venv/bin/python benchmarks/model_cost.py`.",
        "",
        f"| model | scale | params (M) | GFLOPs / face | ms / face ({args.threads} threads, wall) "
        "| CPU ms / face (1 thread) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "- GFLOPs = 2 x MACs / 1e9; MACs counted with forward hooks on Conv2d, ConvTranspose2d,",
        "  Linear and the two matrix products of each self-attention layer. Element-wise work",
        "  (activations, softmax, pooling, interpolation, additions) is not counted.",
        "- ms / face: wall time, batch 1, float32, inference mode, "
        f"torch.set_num_threads({args.threads}), median of {args.runs} runs after "
        f"{args.warmup} warm-up runs, process under `nice -n 10`. This is what a user waits",
        "  per face, and it swells when other jobs share the cores (see the load below).",
        "- CPU ms / face (1 thread): process CPU time of the same forward with one thread, median",
        f"  of {args.runs} runs after one warm-up: the amount of work, nearly independent of the load.",
        "- S1 works on the bicubic-upsampled 128x128 input, so its cost does not depend on scale.",
        "- The discriminator row is the cost of one 128x128 image (training only).",
        f"- Machine: {machine()}.",
        f"- Load average (1/5/15 min) at start {load_start[0]:.1f}/{load_start[1]:.1f}/"
        f"{load_start[2]:.1f}, at end {load_end[0]:.1f}/{load_end[1]:.1f}/{load_end[2]:.1f}: "
        "the machine is shared (training and other jobs), so latencies are upper bounds.",
        "",
    ])
    args.out.write_text(text, encoding="utf-8")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
