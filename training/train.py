"""Train one model of the registry from a JSON config, then export it for the app.

    python -m training.train training/configs/s2_rafsr_x4.json [--resume] [--minutes M]
                             [--steps N] [--bench]

The loop in :func:`train` reads top to bottom in four parts: :func:`build` (the network from
the registry, its EMA twin, optimisers, data, the fixed validation batch), :func:`train_step`
(sample a batch of aligned HR faces from the cache (training/data.py), make the LR input with
the project's degradation, compute the configured losses, step the optimiser, update the
exponential moving average (EMA) of the weights), :func:`evaluate_and_checkpoint` (log,
validate, checkpoint atomically every few minutes; ``--resume`` continues from it) and
:func:`finish` (final validation, summary, and the export of the EMA weights with
:func:`engine.weights.save` plus a model card and a loss-curve PNG beside them, written by
training/cards.py).

The learning-rate schedule is a cosine over the run's budget: ``--steps`` (step-based) or
``--minutes`` (wall-clock based, so a run on a shared CPU still finishes on time); with both,
whichever ends first.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import imaging, registry, weights
from training import losses as L
from training.cards import draw_curve, export_weights, hardware, prior_stages
from training.config import TrainConfig, load_config, resolve_path, scale_probabilities
from training.data import FaceSet
from training.metrics import psnr, ssim

log = logging.getLogger("training.train")

# --------------------------------------------------------------------------- pieces


def make_optimizer(params, spec: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam (S0, S1, S2, S4) or RMSprop (S3) from a config dict."""
    name = spec.get("name", "adam").lower()
    lr = float(spec["lr"])
    if name == "adam":
        return torch.optim.Adam(
            params,
            lr=lr,
            betas=tuple(spec.get("betas", (0.9, 0.999))),
            eps=float(spec.get("eps", 1e-8)),
            weight_decay=float(spec.get("weight_decay", 0.0)),
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, alpha=float(spec.get("alpha", 0.99)), eps=float(spec.get("eps", 1e-8))
        )
    raise ValueError(f"unknown optimizer {name!r}")


def lr_at(progress: float, step: int, base: float, schedule: dict[str, Any]) -> float:
    """Learning rate at `progress` in [0, 1] of the budget (cosine, step decay or constant)."""
    warm = int(schedule.get("warmup_steps", 0))
    if warm and step < warm:
        return base * (step + 1) / warm
    name = schedule.get("name", "cosine")
    if name == "constant":
        return base
    if name == "cosine":
        low = float(schedule.get("min_lr", 0.0))
        return low + (base - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if name == "step":  # IDRN: x gamma every `every` steps
        return base * float(schedule.get("gamma", 0.9)) ** (step // int(schedule["every"]))
    raise ValueError(f"unknown schedule {name!r}")


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """EMA of the weights, with the usual warm-up so early EMA is not stuck at the init."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1 - d)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def auto_threads(current: int) -> int:
    """Threads to use now: the cores not busy with other jobs (1-minute load average minus our
    own threads), at least 1. Two OpenMP threads on a CPU shared with other work lose to one."""
    cores = os.cpu_count() or 1
    others = os.getloadavg()[0] - current
    return max(1, min(cores, round(cores - others)))


def autocast_ctx(mode: str, device: str):
    if mode == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    if mode != "off":
        raise ValueError(f"autocast must be 'bf16' or 'off', not {mode!r}")
    return contextlib.nullcontext()


def forward(model: torch.nn.Module, x: torch.Tensor, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Run the network the way its losses need: S0 with landmarks, S3 with all branches."""
    w = cfg.losses
    if w.get("landmark", 0) > 0:
        sr, lm = model.forward_with_landmarks(x)
        return {"sr": sr, "landmarks": lm}
    if w.get("parsing", 0) > 0 or w.get("coarse_mse", 0) > 0:
        coarse, parsing, sr = model.forward_all(x)
        return {"sr": sr, "coarse": coarse, "parsing": parsing}
    return {"sr": model(x)}


def compute_losses(
    out: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    cfg: TrainConfig,
    perceptual: L.PerceptualLoss | None,
    disc: torch.nn.Module | None,
    identity: L.IdentityLoss | None = None,
) -> dict[str, torch.Tensor]:
    """Each configured loss term (unweighted), in float32; padded pixels are left out."""
    w, hr, mask = cfg.losses, batch["hr"], batch["mask"]
    sr = out["sr"].float()
    terms: dict[str, torch.Tensor] = {}
    if w.get("l1", 0) > 0:
        terms["l1"] = L.l1(sr, hr, mask)
    if w.get("mse", 0) > 0:
        terms["mse"] = L.mse(sr, hr, mask)
    if w.get("log_mse", 0) > 0:
        terms["log_mse"] = L.log_mse(sr, hr, mask)
    if w.get("coarse_mse", 0) > 0:
        terms["coarse_mse"] = L.mse(out["coarse"].float(), hr, mask)
    if w.get("tv", 0) > 0:
        terms["tv"] = L.total_variation(sr)
    # Feature-space losses see the padded area replaced by the target, so it contributes nothing.
    filled = sr * mask + hr * (1 - mask)
    if perceptual is not None and (w.get("perceptual", 0) > 0 or w.get("texture", 0) > 0):
        terms.update(perceptual(filled, hr))
    if w.get("landmark", 0) > 0:
        terms["landmark"] = L.landmark_loss(out["landmarks"].float(), batch["landmarks"])
    if w.get("parsing", 0) > 0:
        terms["parsing"] = L.parsing_loss(out["parsing"].float(), batch["parsing"], "mse")
    if identity is not None:
        terms["identity"] = identity(filled, hr, batch["landmarks"])
    if disc is not None and w.get("adversarial", 0) > 0:
        terms["adversarial"] = L.adversarial_g(disc(filled).float())
    return terms


def total_loss(terms: dict[str, torch.Tensor], weights_: dict[str, float]) -> torch.Tensor:
    return sum(float(weights_[k]) * v for k, v in terms.items())


def source_pools(
    train_set: FaceSet, mix: dict[str, float] | None
) -> list[tuple[float, np.ndarray]]:
    """(probability, face indices) per source named in `mix`; checked once before training."""
    if not mix:
        return []
    sources = train_set.sources()
    pools = []
    for source, p in mix.items():
        members = np.flatnonzero(sources == source)
        if len(members) == 0:
            raise ValueError(f"source_mix names {source!r}, which has no training faces")
        pools.append((float(p), members))
    if not 0 < sum(p for p, _ in pools) <= 1:
        raise ValueError(f"source_mix probabilities must sum to (0, 1], got {mix}")
    return pools


def draw_scale(rng: np.random.Generator, scales: list[int], p: np.ndarray | None) -> int:
    if p is None:  # the same random stream as before scale_weights existed
        return int(rng.choice(scales))
    return int(rng.choice(scales, p=p))


def draw_faces(
    rng: np.random.Generator, n: int, n_total: int, pools: list[tuple[float, np.ndarray]]
) -> np.ndarray:
    """`n` random face indices: from each pool with its probability, else from the whole split."""
    idx = rng.integers(0, n_total, n)
    if not pools:  # the same random stream as before source_mix existed
        return idx
    pick = rng.random(n)
    start = 0.0
    for p, members in pools:
        chosen = (pick >= start) & (pick < start + p)
        idx[chosen] = rng.choice(members, int(chosen.sum()))
        start += p
    return idx


def random_crop(
    batch: dict, size: int, scale: int, rng: np.random.Generator
) -> dict:
    """Each face of a batch cut to a random ``size`` x ``size`` HR patch (mask likewise) and the
    LR / network input to the patch at the same place (``size // scale``): the degradation ran
    on the whole face first, so JPEG blocks and blur at the patch's edges are those of a real
    frame. For fully convolutional networks that read the LR face as is."""
    hr = batch["hr"]
    n, _, side, _ = hr.shape
    lr_size = size // scale
    if size % scale or size > side:
        raise ValueError(f"crop {size} must divide by the scale {scale} and fit the {side} px face")
    if batch["x"].shape[-1] != side // scale:
        raise ValueError("crop needs a network that reads the LR face as is (input 'lr')")
    cut = {k: [] for k in ("hr", "mask", "lr", "x")}
    for i in range(n):
        oy, ox = (int(v) for v in rng.integers(0, (side - size) // scale + 1, 2))
        for k in ("hr", "mask"):
            y, x = oy * scale, ox * scale
            cut[k].append(batch[k][i, :, y : y + size, x : x + size])
        for k in ("lr", "x"):
            cut[k].append(batch[k][i, :, oy : oy + lr_size, ox : ox + lr_size])
    return batch | {k: torch.stack(v).contiguous() for k, v in cut.items()}


def val_batch(
    val_set: FaceSet, cfg: TrainConfig, scale: int, model_input: Callable[[np.ndarray], np.ndarray]
) -> dict:
    """The fixed validation batch (first `val_size` faces, no flips; LR by `cfg.val_degrade`,
    seeded per face, see training/degrade.py) + bicubic scores on the same LR."""
    from training import degrade as dg

    n = min(cfg.val_size, len(val_set))
    batch = val_set.batch(np.arange(n), scale, "bicubic", None, None, model_input)
    hr_u8 = np.asarray(val_set.hr[:n])
    valid = np.asarray(val_set.valid[:n]).astype(bool)
    family = "clean" if cfg.val_degrade == "bicubic" else cfg.val_degrade
    lr_u8 = [dg.family_lr(np.ascontiguousarray(h), scale, family, i) for i, h in enumerate(hr_u8)]
    if family != "clean":

        def to_t(a: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous().float() / 255

        batch["lr"] = to_t(lr_u8)
        batch["x"] = to_t([model_input(a) for a in lr_u8])
    bic = [imaging.upscale(lr, scale, "bicubic") for lr in lr_u8]
    batch["hr_u8"], batch["valid"] = hr_u8, valid
    batch["bicubic_psnr"] = float(
        np.mean([psnr(b, h, v) for b, h, v in zip(bic, hr_u8, valid, strict=True)])
    )
    batch["bicubic_ssim"] = float(np.mean([ssim(b, h) for b, h in zip(bic, hr_u8, strict=True)]))
    if cfg.losses.get("identity", 0) > 0:  # watch identity too when it is trained for
        from training.evaluate import descriptor

        points = batch["landmarks"].numpy() * hr_u8.shape[1] - 0.5
        batch["points"] = points
        batch["hr_desc"] = [descriptor(h, p) for h, p in zip(hr_u8, points, strict=True)]
        batch["bicubic_identity"] = _identity(bic, batch)
    return batch


def _identity(images: list[np.ndarray] | np.ndarray, batch: dict) -> float:
    """Mean dlib descriptor distance of `images` to the val HR faces (HR landmarks for both)."""
    from training.evaluate import descriptor

    pairs = zip(images, batch["points"], batch["hr_desc"], strict=True)
    return float(np.mean([np.linalg.norm(descriptor(i, p) - d) for i, p, d in pairs]))


@torch.inference_mode()
def validate(model: torch.nn.Module, batch: dict, device: str, chunk: int = 50) -> dict[str, float]:
    """Mean PSNR (valid pixels, uint8-rounded output, float32 inference) and SSIM on a val batch."""
    model.eval()
    outs = []
    for i in range(0, batch["x"].shape[0], chunk):
        y = model(batch["x"][i : i + chunk].to(device)).float().clamp(0, 1)
        outs.append((y * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    sr = np.concatenate(outs) if outs else np.zeros((0, 128, 128, 3), np.uint8)
    p = float(
        np.mean([psnr(s, h, v) for s, h, v in zip(sr, batch["hr_u8"], batch["valid"], strict=True)])
    )
    s = float(np.mean([ssim(a, b) for a, b in zip(sr, batch["hr_u8"], strict=True)]))
    out = {
        "psnr": p,
        "ssim": s,
        "gain": p - batch["bicubic_psnr"],
        "bicubic_psnr": batch["bicubic_psnr"],
        "bicubic_ssim": batch["bicubic_ssim"],
    }
    if "hr_desc" in batch:
        out["identity"] = _identity(sr, batch)
        out["bicubic_identity"] = batch["bicubic_identity"]
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then an atomic rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig, resume: bool = False, export: bool = True) -> dict[str, Any]:
    """Run one training job as configured; returns a summary (also written to summary.json)."""
    if not cfg.steps and not cfg.minutes:
        raise ValueError("give a budget: steps and/or minutes")
    run_dir = resolve_path(cfg.run_dir or f"runs/{cfg.name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return _train(cfg, run_dir, resume, export)
    finally:
        log.removeHandler(handler)
        handler.close()


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, export: bool) -> dict[str, Any]:
    """The loop, top to bottom: build, (resume), step until the budget ends, finish."""
    run = build(cfg, run_dir)
    if resume and run.ckpt_path.exists():
        restore(run)
    budget_s = cfg.minutes * 60 if cfg.minutes else None
    run.t0 = time.time() - run.elapsed  # wall clock of the whole run, resumes included
    meter = Meter(last_ckpt=time.time(), last_log=time.time())
    while True:
        run.elapsed = time.time() - run.t0
        done_steps = bool(cfg.steps) and run.step >= cfg.steps
        done_time = budget_s is not None and run.elapsed >= budget_s
        if done_steps or done_time:
            break
        if cfg.threads == "auto" and run.device == "cpu" and run.step % 20 == 0:
            threads = auto_threads(torch.get_num_threads())
            if threads != torch.get_num_threads():
                log.info(
                    "step %d: %d torch thread(s) (load average %.1f)",
                    run.step,
                    threads,
                    os.getloadavg()[0],
                )
                torch.set_num_threads(threads)
        progress = max(
            run.step / cfg.steps if cfg.steps else 0.0, run.elapsed / budget_s if budget_s else 0.0
        )
        lr = lr_at(progress, run.step, run.base_lr, cfg.schedule)
        terms, loss = train_step(run, lr)
        meter.add(cfg.batch_size, loss.item())
        evaluate_and_checkpoint(run, meter, terms, lr)
    return finish(run, export)


@dataclass
class Run:
    """Everything one run holds: what was built, and where the loop is (step, clock, history)."""

    cfg: TrainConfig
    run_dir: Path
    device: str
    entry: registry.ModelEntry
    kwargs: dict[str, Any]
    scales: list[int]
    scale_p: np.ndarray | None
    model_input: Callable[[np.ndarray], np.ndarray]
    model: torch.nn.Module
    ema: torch.nn.Module
    opt: torch.optim.Optimizer
    base_lr: float
    perceptual: Any
    identity: L.IdentityLoss | None
    disc: torch.nn.Module | None
    opt_d: torch.optim.Optimizer | None
    data_dir: Path
    train_set: FaceSet
    val_set: FaceSet
    pools: list[tuple[float, np.ndarray]]
    val: dict
    earlier_stages: list[dict[str, Any]]
    rng: np.random.Generator
    step: int = 0
    elapsed: float = 0.0
    t0: float = 0.0
    history: list[dict] = field(default_factory=list)

    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def checkpoint(self) -> None:
        disc = self.disc
        save_checkpoint(
            self.ckpt_path,
            {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "opt": self.opt.state_dict(),
                **({"disc": disc.state_dict(), "opt_d": self.opt_d.state_dict()} if disc else {}),
                "step": self.step,
                "elapsed": time.time() - self.t0,
                "history": self.history,
                "rng_numpy": self.rng.bit_generator.state,
                "rng_torch": torch.get_rng_state(),
                "config": self.cfg.to_dict(),
            },
        )


@dataclass
class Meter:
    """Throughput and mean loss since the last log line; when the last checkpoint was written."""

    last_ckpt: float
    last_log: float
    seen: int = 0
    loss_sum: float = 0.0
    loss_n: int = 0

    def add(self, images: int, loss: float) -> None:
        self.seen += images
        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1


def build(cfg: TrainConfig, run_dir: Path) -> Run:
    """Seeds, device, the network (from the registry, optionally grown or initialised from a
    file), its EMA twin, optimisers, losses that need networks, the data and the fixed
    validation batch. The order of the random draws is part of a run's reproducibility."""
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if isinstance(cfg.threads, int) and cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    elif cfg.threads == "auto":
        torch.set_num_threads(auto_threads(0))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":  # fixed input sizes: let cuDNN pick the fastest kernels once
        torch.backends.cudnn.benchmark = True
    entry = registry.get(cfg.model_id)
    kwargs = registry.default_kwargs(entry, cfg.scale) | dict(cfg.kwargs)
    scales = list(cfg.scales or [cfg.scale])
    scale_p = scale_probabilities(scales, cfg.scale_weights)

    def model_input(lr: np.ndarray) -> np.ndarray:
        return weights.model_input(entry, lr)

    model = registry.build(entry, cfg.scale, **cfg.kwargs)
    full_face_losses = ("landmark", "parsing", "coarse_mse", "identity")
    if cfg.crop and any(cfg.losses.get(k, 0) > 0 for k in full_face_losses):
        raise ValueError(
            "crop works with pixel and feature losses only (no landmark, parsing or identity)"
        )
    if cfg.grow and not cfg.init_from:
        raise ValueError("grow needs init_from: the smaller weights file to grow from")
    if cfg.init_from:  # e.g. a GAN fine-tune starts from the exported PSNR-oriented weights
        from safetensors.torch import load_file

        state = load_file(str(resolve_path(cfg.init_from)))
        if cfg.grow:
            shapes = {k: v.shape for k, v in model.state_dict().items()}
            wider = sum(k in shapes and v.shape != shapes[k] for k, v in state.items())
            new_blocks = grow_from(model, state, resolve_path(cfg.init_from), entry, cfg.scale)
            log.info(
                "generator grown from %s: %d new blocks start as identities (%s), %d "
                "tensors widened",
                cfg.init_from,
                len(new_blocks),
                ", ".join(new_blocks),
                wider,
            )
        elif cfg.init_partial:
            own = model.state_dict()
            fit = {
                k: v
                for k, v in state.items()
                if k in own and own[k].shape == v.shape and not k.startswith(tuple(cfg.init_skip))
            }
            model.load_state_dict(fit, strict=False)
            log.info(
                "generator partly initialised from %s: %d of %d tensors loaded; not loaded "
                "(kept at init): %s; not used from the file: %s",
                cfg.init_from,
                len(fit),
                len(own),
                sorted(set(own) - set(fit)) or "none",
                sorted(set(state) - set(fit)) or "none",
            )
        else:
            model.load_state_dict(state)
            log.info("generator initialised from %s", cfg.init_from)
        # Read now: the export may overwrite this very file (a longer run of the same model).
        earlier_stages = prior_stages(resolve_path(cfg.init_from))
    else:
        earlier_stages = []
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = make_optimizer(model.parameters(), cfg.optimizer)
    perceptual = None
    if cfg.losses.get("perceptual", 0) > 0 or cfg.losses.get("texture", 0) > 0:
        from training.vgg import load_vgg19

        p = cfg.perceptual
        vgg = load_vgg19(tuple(p["layers"]), pretrained=p.get("pretrained", True)).to(device)
        perceptual = L.PerceptualLoss(
            vgg,
            tuple(p["layers"]),
            p.get("criterion", "l1"),
            texture_weight=cfg.losses.get("texture", 0.0),
        )
    disc = opt_d = None
    if cfg.losses.get("adversarial", 0) > 0:
        from engine.archs.discriminators import SRGANDiscriminator

        dspec = cfg.discriminator or {}
        disc = SRGANDiscriminator(**dspec.get("kwargs", {})).to(device)
        opt_d = make_optimizer(disc.parameters(), dspec.get("optimizer", cfg.optimizer))

    data_dir = resolve_path(cfg.data)
    train_set, val_set = FaceSet(data_dir, "train"), FaceSet(data_dir, "val")
    if len(train_set) == 0:
        raise ValueError(f"no training faces in {data_dir}")
    pools = source_pools(train_set, cfg.source_mix)
    val = val_batch(val_set, cfg, cfg.scale, model_input)
    log.info(
        "model %s x%d %s: %.2fM parameters; %d train / %d val faces; device %s; "
        "autocast %s; channels_last %s; threads %d",
        entry.id,
        cfg.scale,
        kwargs,
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(train_set),
        len(val_set),
        device,
        cfg.autocast,
        cfg.channels_last,
        torch.get_num_threads(),
    )
    return Run(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        entry=entry,
        kwargs=kwargs,
        scales=scales,
        scale_p=scale_p,
        model_input=model_input,
        model=model,
        ema=ema,
        opt=opt,
        base_lr=float(cfg.optimizer["lr"]),
        perceptual=perceptual,
        identity=L.IdentityLoss().to(device) if cfg.losses.get("identity", 0) > 0 else None,
        disc=disc,
        opt_d=opt_d,
        data_dir=data_dir,
        train_set=train_set,
        val_set=val_set,
        pools=pools,
        val=val,
        earlier_stages=earlier_stages,
        rng=rng,
    )


def restore(run: Run) -> None:
    """Continue from the run's checkpoint: weights, optimisers, step, clock, history, RNGs."""
    state = torch.load(run.ckpt_path, map_location=run.device, weights_only=True)
    run.model.load_state_dict(state["model"])
    run.ema.load_state_dict(state["ema"])
    run.opt.load_state_dict(state["opt"])
    if run.disc is not None and "disc" in state:
        run.disc.load_state_dict(state["disc"])
        run.opt_d.load_state_dict(state["opt_d"])
    run.step, run.elapsed, run.history = state["step"], state["elapsed"], state["history"]
    run.rng.bit_generator.state = state["rng_numpy"]
    torch.set_rng_state(state["rng_torch"])
    log.info("resumed from %s at step %d (%.1f min)", run.ckpt_path, run.step, run.elapsed / 60)


def train_step(run: Run, lr: float) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimiser step (and the discriminator's, for a GAN); returns the loss terms."""
    cfg, rng, device = run.cfg, run.rng, run.device
    for group in run.opt.param_groups:
        group["lr"] = lr
    # A batch: random faces, random mirror, one scale for the batch, the LR made now.
    idx = draw_faces(rng, cfg.batch_size, len(run.train_set), run.pools)
    flip = rng.random(cfg.batch_size) < 0.5 if cfg.hflip else None
    scale = draw_scale(rng, run.scales, run.scale_p)
    batch = run.train_set.batch(idx, scale, cfg.degrade, flip, rng, run.model_input)
    if cfg.crop:
        batch = random_crop(batch, cfg.crop, scale, rng)
    batch = {k: v.to(device) for k, v in batch.items()}
    x = batch["x"]
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    run.model.train()
    with autocast_ctx(cfg.autocast, device):
        out = forward(run.model, x, cfg)
    if run.disc is not None:  # discriminator step first, on a detached generator output
        with autocast_ctx(cfg.autocast, device):
            fake = out["sr"].detach() * batch["mask"] + batch["hr"] * (1 - batch["mask"])
            d_loss = L.adversarial_d(run.disc(batch["hr"]).float(), run.disc(fake).float())
        run.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        run.opt_d.step()
    terms = compute_losses(out, batch, cfg, run.perceptual, run.disc, run.identity)
    loss = total_loss(terms, cfg.losses)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.opt.step()
    ema_update(run.ema, run.model, cfg.ema_decay, run.step)
    run.step += 1
    return terms, loss


def evaluate_and_checkpoint(run: Run, meter: Meter, terms: dict, lr: float) -> None:
    """Every ``log_every`` steps a log line, every ``val_every`` a validation of the EMA
    weights, every ``checkpoint_minutes`` a checkpoint."""
    cfg, step = run.cfg, run.step
    if step % cfg.log_every == 0:
        now = time.time()
        rate = meter.seen / max(1e-9, now - meter.last_log)
        row = {
            "step": step,
            "loss": meter.loss_sum / meter.loss_n,
            "lr": lr,
            "img_s": rate,
            "elapsed": now - run.t0,
            **{k: v.item() for k, v in terms.items()},
        }
        run.history.append(row)
        log.info(
            "step %d loss %.5f (%s) lr %.2e %.1f img/s %.1f min",
            step,
            row["loss"],
            " ".join(f"{k} {v.item():.4f}" for k, v in terms.items()),
            lr,
            rate,
            row["elapsed"] / 60,
        )
        meter.last_log, meter.seen, meter.loss_sum, meter.loss_n = now, 0, 0.0, 0
    if step % cfg.val_every == 0:
        v = validate(run.ema, run.val, run.device)
        run.history.append(
            {
                "step": step,
                "val_psnr": v["psnr"],
                "val_gain": v["gain"],
                "val_ssim": v["ssim"],
                **({"val_identity": v["identity"]} if "identity" in v else {}),
                "elapsed": time.time() - run.t0,
            }
        )
        log.info(
            "val step %d: PSNR %.2f dB (bicubic %.2f, gain %+.2f dB) SSIM %.4f (bicubic %.4f)%s",
            step,
            v["psnr"],
            v["bicubic_psnr"],
            v["gain"],
            v["ssim"],
            v["bicubic_ssim"],
            f" identity {v['identity']:.4f} (bicubic {v['bicubic_identity']:.4f})"
            if "identity" in v
            else "",
        )
        meter.last_log = time.time()  # validation time is not training throughput
    if time.time() - meter.last_ckpt >= cfg.checkpoint_minutes * 60:
        run.checkpoint()
        meter.last_ckpt = time.time()
        log.info("checkpoint at step %d", step)


def finish(run: Run, export: bool) -> dict[str, Any]:
    """Last checkpoint, final validation, the test split if present, the summary, the loss
    curve and (``export``) the clean weights with their card (training/cards.py)."""
    cfg, step, history = run.cfg, run.step, run.history
    wall = time.time() - run.t0
    run.checkpoint()
    v = validate(run.ema, run.val, run.device)
    history.append(
        {
            "step": step,
            "val_psnr": v["psnr"],
            "val_gain": v["gain"],
            "val_ssim": v["ssim"],
            **({"val_identity": v["identity"]} if "identity" in v else {}),
            "elapsed": wall,
        }
    )
    log.info(
        "final val step %d: PSNR %.2f dB (gain %+.2f dB over bicubic) SSIM %.4f; %.1f min",
        step,
        v["psnr"],
        v["gain"],
        v["ssim"],
        wall / 60,
    )
    test = None
    if (run.data_dir / "test_hr.npy").exists():
        test_set = FaceSet(run.data_dir, "test")
        if len(test_set):
            tcfg = copy.copy(cfg)
            tcfg.val_size = len(test_set)
            test_batch = val_batch(test_set, tcfg, cfg.scale, run.model_input)
            test = validate(run.ema, test_batch, run.device)
            log.info(
                "test (%d faces): PSNR %.2f dB (bicubic %.2f, gain %+.2f) SSIM %.4f (bicubic %.4f)",
                len(test_set),
                test["psnr"],
                test["bicubic_psnr"],
                test["gain"],
                test["ssim"],
                test["bicubic_ssim"],
            )
    rates = [h["img_s"] for h in history if "img_s" in h]
    summary: dict[str, Any] = {
        "name": cfg.name,
        "model_id": run.entry.id,
        "scale": cfg.scale,
        "kwargs": run.kwargs,
        "steps": step,
        "images_seen": step * cfg.batch_size,
        "wall_minutes": round(wall / 60, 1),
        "img_per_s": round(float(np.median(rates)), 1) if rates else None,
        "device": run.device,
        "hardware": hardware(),
        "val": v,
        "test": test,
        "val_faces": int(run.val["x"].shape[0]),
        "train_faces": len(run.train_set),
    }
    draw_curve(history, run.run_dir / "loss.png", f"{cfg.name}: training loss and validation gain")
    if export:
        summary["export"] = export_weights(
            cfg, run.entry, run.kwargs, run.ema, summary, history, run.data_dir, run.earlier_stages
        )
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


# --------------------------------------------------------------------------- growing a network


def grow_from(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    path: Path,
    entry: registry.ModelEntry,
    scale: int,
) -> list[str]:
    """Start ``model`` from the weights of a smaller network of the same class (more residual
    blocks and/or wider layers), so training resumes from what the file had learnt with the
    extra capacity to use. Returns the new blocks' names.

    Deeper: each residual block the file lacks starts as an exact identity (the last conv of
    its branch zeroed). Wider: each saved tensor fills the leading slice of the wider one; the
    new output channels keep the network's own initialisation, and the weights from new input
    channels to old output channels start at zero, so the old channels compute what they did
    (a PixelShuffle conv's old rows are its old output channels, so the rule holds there too).
    Modules whose output depends on the width itself (S3's channel softmax) mend that in their
    ``widened_from`` method.

    Checked, not assumed: the grown network must compute what the file's network computes on a
    random input; otherwise (a new layer that is not a residual block) it refuses to start.
    """
    own = model.state_dict()
    misfit = sorted(
        k
        for k, v in state.items()
        if k not in own
        or own[k].dim() != v.dim()
        or any(n < o for n, o in zip(own[k].shape, v.shape, strict=True))
    )
    if misfit:
        raise ValueError(
            f"cannot grow from {path.name}: {len(misfit)} of its tensors have no "
            f"place in the new network (e.g. {', '.join(misfit[:3])})"
        )
    merged = dict(own)
    for k, v in state.items():
        merged[k] = _embed(v, own[k])
    model.load_state_dict(merged)
    with torch.no_grad():
        for name, module in model.named_modules():
            if callable(getattr(module, "widened_from", None)):
                prefix = f"{name}." if name else ""
                old = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                if old:
                    module.widened_from(old)
    missing = set(own) - set(state)
    new_blocks = []
    with torch.no_grad():
        for name, module in model.named_modules():
            keys = {f"{name}.{k}" for k in module.state_dict()}
            if callable(getattr(module, "residual_convs", None)) and keys and keys <= missing:
                for conv in module.residual_convs():
                    conv.weight.zero_()
                    if conv.bias is not None:
                        conv.bias.zero_()
                new_blocks.append(name)
                missing -= keys
    old_kwargs = json.loads(weights.read_metadata(path)["kwargs"])
    old = registry.build(entry, scale, **old_kwargs).eval()
    old.load_state_dict(state)
    side = 128 if entry.input == "upsampled" else 128 // scale
    lr = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    with torch.no_grad():
        same = torch.allclose(model.eval()(lr), old(lr), atol=1e-5)
    model.train(was_training)
    if not same:
        added = new_blocks + sorted(missing) or sorted(
            k for k, v in state.items() if v.shape != own[k].shape
        )
        raise ValueError(
            f"cannot grow from {path.name}: the new layers (e.g. "
            f"{', '.join(added[:3])}) change what it computes"
        )
    return new_blocks


def _embed(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``old`` in the leading slice of (a copy of) ``new``; for a weight (2+ dims: out, in, ...)
    the part from new inputs to old outputs zeroed, so a widened layer's old outputs are unchanged.
    """
    out = new.detach().clone()
    if out.dim() >= 2 and out.shape[1] > old.shape[1]:
        out[: old.shape[0], old.shape[1] :] = 0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


# --------------------------------------------------------------------------- bench + CLI


def bench(cfg: TrainConfig, steps: int = 3) -> list[dict[str, Any]]:
    """Training img/s for fp32 vs bf16 autocast, contiguous vs channels_last (random data)."""
    entry = registry.get(cfg.model_id)
    if isinstance(cfg.threads, int) and cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    lr_side = 128 // cfg.scale if entry.input == "lr" else 128
    results = []
    for mode in ("off", "bf16"):
        for cl in (False, True):
            torch.manual_seed(0)
            model = registry.build(entry, cfg.scale, **cfg.kwargs)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            opt = make_optimizer(model.parameters(), cfg.optimizer)
            x = torch.rand(cfg.batch_size, 3, lr_side, lr_side)
            y = torch.rand(cfg.batch_size, 3, 128, 128)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            times = []
            for i in range(steps + 1):
                t = time.perf_counter()
                with autocast_ctx(mode, "cpu"):
                    out = model(x)
                loss = (out.float() - y).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i:  # the first step warms up kernels and allocations
                    times.append(time.perf_counter() - t)
            rate = cfg.batch_size / float(np.median(times))
            results.append({"autocast": mode, "channels_last": cl, "img_s": round(rate, 1)})
            log.info("bench autocast=%s channels_last=%s: %.1f img/s", mode, cl, rate)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    parser.add_argument("--steps", type=int, default=None, help="step budget")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="only measure img/s for fp32/bf16 x contiguous/channels_last",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(args.config)
    if args.minutes is not None:
        cfg.minutes = args.minutes
    if args.steps is not None:
        cfg.steps = args.steps
    if args.bench:
        bench(cfg)
        return 0
    summary = train(cfg, resume=args.resume, export=not args.no_export)
    log.info(
        "summary: %s", json.dumps({k: summary[k] for k in ("steps", "wall_minutes", "img_per_s")})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
