"""Every shipped config is valid and builds its network; each loss path of the trainer runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import registry
from training import train
from training.config import REPO, load_config

CONFIGS = sorted((REPO / "training" / "configs").glob("*.json"))
# Small widths so a training step takes milliseconds; the code paths are the same.
TINY = {
    "s0_srresnet_att": {"channels": 8, "blocks": 2, "attention_at": [1, 2]},
    "s0_srresnet_att_gan": {"channels": 8, "blocks": 2, "attention_at": [1, 2]},
    "s1_mffcn": {"channels": 8, "max_channels": 16},
    "s2_rafsr": {"channels": 8, "n_ram": 1},
    "s3_prior_guided": {
        "channels": 8,
        "blocks": 1,
        "prior_channels": 8,
        "prior_blocks": 1,
        "hourglass_depth": 1,
    },
    "s3_prior_guided_gan": {
        "channels": 8,
        "blocks": 1,
        "prior_channels": 8,
        "prior_blocks": 1,
        "hourglass_depth": 1,
    },
    "s4_idrn": {"channels": 8, "units": 1},
}
for _entry in registry.MODELS:
    if _entry.variant == "robust":
        TINY[_entry.id] = TINY[_entry.twin]


def test_there_is_a_config_per_model() -> None:
    names = {p.stem for p in CONFIGS}
    assert {
        "s2_rafsr_x4",
        "s0_srresnet_att_x4",
        "s1_mffcn",
        "s3_prior_guided_x8",
        "s4_idrn_x4",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_network(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name == path.stem
    entry = registry.get(cfg.model_id)
    registry.check_scale(entry, cfg.scale)
    model = registry.build(entry, cfg.scale, **(cfg.kwargs | TINY[cfg.model_id]))
    assert sum(p.numel() for p in model.parameters()) > 0


# One config per distinct loss path: landmarks (S0), upsampled multi-scale input +
# perceptual/texture/TV (S1), prior branch + parsing + perceptual + GAN (S3), step LR (S4).
# The robust fine-tune: the degradation mix for training, the cctv family for validation.
@pytest.mark.parametrize(
    "name",
    [
        "s0_srresnet_att_x4",
        "s1_mffcn_paper",
        "s3_prior_guided_gan_x8",
        "s4_idrn_x4_paper",
        "s4_idrn_robust_x4",
    ],
)
def test_loss_paths_run(name: str, face_cache: Path, tmp_path: Path) -> None:
    cfg = load_config(REPO / "training" / "configs" / f"{name}.json")
    cfg.kwargs = cfg.kwargs | TINY[cfg.model_id]
    cfg.data, cfg.run_dir = str(face_cache), str(tmp_path / "run")
    cfg.steps, cfg.minutes, cfg.batch_size, cfg.val_size = 2, None, 2, 2
    cfg.log_every, cfg.val_every, cfg.threads, cfg.init_from = 1, 1000, None, ""
    cfg.source_mix = None  # the tiny face cache names no sources; the mix has its own test
    # A random VGG cut after its first layer: the same code path without VGG-19's cost.
    cfg.perceptual = cfg.perceptual | {"pretrained": False, "layers": ["relu1_1"]}
    if cfg.discriminator:
        cfg.discriminator = cfg.discriminator | {"kwargs": {"channels": 4, "dense": 16}}
    summary = train.train(cfg, export=False)
    assert summary["steps"] == 2
    log = (tmp_path / "run" / "train.log").read_text()
    for term in cfg.losses:
        assert f"{term} " in log.split("step 1 loss", 1)[1].splitlines()[0], term


def test_reproduce_script_names_only_existing_configs() -> None:
    """training/reproduce.sh remakes every shipped file from configs by name: a renamed or
    removed config would only fail hours into a rerun."""
    import re

    script = (REPO / "training" / "reproduce.sh").read_text()
    lists = re.findall(r'^\s*[A-Z0-9]+="([^"]*)"', script, flags=re.M | re.S)
    names = {n for block in lists for n in block.split() if not n.startswith("$")}
    assert len(names) > 20
    missing = sorted(n for n in names if not (REPO / "training" / "configs" / f"{n}.json").exists())
    assert not missing, missing


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_served_scales_are_trained_and_match_the_shipped_file(path):
    """A shared-weights file serves only the scales its config names (S1 robust: x4, x8)."""
    import json

    from safetensors import safe_open

    cfg = load_config(path)
    if not cfg.served_scales:
        return
    assert set(cfg.served_scales) <= set(cfg.scales or [cfg.scale])
    shipped = REPO / "resources" / "weights" / f"{cfg.name}.safetensors"
    if shipped.exists():
        with safe_open(str(shipped), "pt") as fh:
            assert json.loads(fh.metadata()["scales"]) == sorted(cfg.served_scales)
