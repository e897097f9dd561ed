"""Training configuration: one JSON file per model and scale, read into a typed dataclass.

Why a dataclass: the keys a config may hold are written down once (here), unknown keys are an
error rather than silently ignored, and the whole config is copied into the run folder and into
the exported weights' metadata, so a weights file says how it was trained. ``kwargs`` are the
network's constructor arguments on top of the registry's defaults (the paper's configuration).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def resolve_path(p: str | Path) -> Path:
    """A config's path: absolute as given, relative to the repository otherwise."""
    p = Path(p)
    return p if p.is_absolute() else REPO / p


def scale_probabilities(scales: list[int], weights_: list[float] | None) -> np.ndarray | None:
    """Normalised `scale_weights` (checked once before training); None draws scales uniformly."""
    if weights_ is None:
        return None
    w = np.asarray(weights_, dtype=np.float64)
    if len(w) != len(scales) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"scale_weights must give one non-negative weight per scale {scales}, "
            f"not all zero; got {weights_}"
        )
    return w / w.sum()


@dataclass
class TrainConfig:
    """Everything one training run needs; defaults follow the papers where they say."""

    name: str  # run name, e.g. "s2_rafsr_x4": runs/<name>/, resources/weights/<name>.md
    model_id: str  # engine.registry id
    scale: int
    paper: str = ""  # short reference for the model card
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor overrides
    # data
    data: str = "cache/faces"
    # training LR: "bicubic", "mix" (the robust files' mix), a family of training/degrade.py,
    # or "surveillance" (training.data.degrade)
    degrade: str = "bicubic"
    # validation (and end-of-run test) LR: "bicubic" or a family of training/degrade.py
    # ("clean" = "bicubic"), the same LR per face in every validation
    val_degrade: str = "bicubic"
    scales: list[int] | None = None  # several: a random one per batch (S1's multi-scale model)
    # one weight per entry of `scales` (e.g. more x4 and x8 batches); None: all equally likely
    scale_weights: list[float] | None = None
    # a shared-weights file (S1) serves these of the trained scales only (None: all of them),
    # e.g. where a robust file fell below bicubic on clean input at the smaller factors
    served_scales: list[int] | None = None
    hflip: bool = True
    # {source: p}: each face of a batch comes from that source with probability p, otherwise
    # from the whole split (e.g. more of the sharp CelebAMask-HQ faces than their 6% share)
    source_mix: dict[str, float] | None = None
    batch_size: int = 16
    # optimisation
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {
            "name": "adam",
            "lr": 1e-4,
            "betas": [0.9, 0.999],
            "eps": 1e-8,
            "weight_decay": 0.0,
        }
    )
    schedule: dict[str, Any] = field(
        default_factory=lambda: {"name": "cosine", "min_lr": 1e-6, "warmup_steps": 0}
    )
    losses: dict[str, float] = field(default_factory=lambda: {"l1": 1.0})
    perceptual: dict[str, Any] = field(
        default_factory=lambda: {"layers": ["conv5_4"], "criterion": "l1", "pretrained": True}
    )
    discriminator: dict[str, Any] | None = None  # {"kwargs": {...}, "optimizer": {...}}
    init_from: str = ""  # weights file (safetensors) to start the generator from (GAN fine-tunes)
    # init_from is a smaller network of the same class; its missing blocks start as identities
    grow: bool = False
    # init_from is the same network at another scale (e.g. an x2 model from the x4 file): load
    # every tensor whose name and shape match (the body); the rest (the upsampler's extra stage)
    # keeps its initialisation. The log and the card name what was not loaded.
    init_partial: bool = False
    # with init_partial: tensors whose names start with one of these are not loaded from
    # init_from even where the shapes match (e.g. ["tail."]: an x1 network's output layer reads
    # other features than the x4 file's did; left at its zero init it starts at the identity)
    init_skip: list[str] = field(default_factory=list)
    # train on random crop x crop patches of the HR faces (the LR patch crop/scale at the same
    # place, cut after the whole face was degraded): fully convolutional "lr"-input networks only
    crop: int | None = None
    ema_decay: float = 0.999
    grad_clip: float | None = None
    # run control
    steps: int | None = None
    minutes: float | None = None
    seed: int = 0
    autocast: str = "off"  # "bf16" (CPU/CUDA autocast) or "off"
    channels_last: bool = False
    # torch.set_num_threads; None = torch's default; "auto" = re-chosen every 20 steps from the
    # load average (on a shared CPU, one thread beats two when other jobs are running)
    threads: int | str | None = None
    log_every: int = 50
    val_every: int = 1000
    val_size: int = 300
    checkpoint_minutes: float = 5.0
    run_dir: str = ""  # default runs/<name>
    export_dir: str = ""  # default engine.weights' folder (resources/weights or $FFE_WEIGHTS_DIR)
    notes: list[str] = field(default_factory=list)  # deviations from the paper, for the card

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON config file (keys as in :class:`TrainConfig`)."""
    return TrainConfig.from_dict(json.loads(Path(path).read_text()))
