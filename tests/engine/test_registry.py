"""The model registry: order, unique ids, clear errors, every network builds at every scale."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from engine import registry

CONTRACT_ORDER = [
    "bicubic",
    "lanczos",
    "s0_srresnet_att",
    "s0_srresnet_att_robust",
    "s0_srresnet_att_gan",
    "s1_mffcn",
    "s1_mffcn_robust",
    "s2_rafsr",
    "s2_rafsr_robust",
    "s3_prior_guided",
    "s3_prior_guided_robust",
    "s3_prior_guided_gan",
    "s4_idrn",
    "s4_idrn_robust",
    "s4_idrn_restore",
]

# Small widths/depths so a forward pass takes milliseconds; the scale plumbing is what is tested.
SMALL = {
    "s0_srresnet_att": {"channels": 8, "blocks": 2, "attention_at": [2]},
    "s0_srresnet_att_gan": {"channels": 8, "blocks": 2, "attention_at": [2]},
    "s1_mffcn": {"channels": 8, "levels": 2, "mff_per_level": 1, "max_channels": 16},
    "s2_rafsr": {"channels": 8, "n_ram": 2, "reduction": 4},
    "s3_prior_guided": {
        "channels": 8,
        "blocks": 2,
        "prior_channels": 8,
        "prior_blocks": 1,
        "hourglass_depth": 2,
        "reduction": 4,
    },
    "s4_idrn": {"channels": 8, "units": 2},
}
SMALL["s3_prior_guided_gan"] = SMALL["s3_prior_guided"]
for _entry in registry.MODELS:
    if _entry.variant == "robust":
        SMALL[_entry.id] = SMALL[_entry.twin]

ARCH_CASES = [(e.id, s) for e in registry.MODELS if not e.is_baseline for s in e.scales]


def test_order_matches_the_contract():
    assert registry.ids() == CONTRACT_ORDER
    assert [e.id for e in registry.MODELS] == CONTRACT_ORDER


def test_ids_are_unique_and_duplicates_are_refused():
    assert len(set(registry.ids())) == len(registry.MODELS)
    twice = (*registry.MODELS, registry.MODELS[-1])
    with pytest.raises(ValueError, match="duplicate model id 's4_idrn_restore'"):
        registry._check(twice)


def test_malformed_entries_are_refused():
    bad_input = dataclasses.replace(registry.get("s2_rafsr"), input="rgb")
    with pytest.raises(ValueError, match="input"):
        registry._check((bad_input,))
    bad_scale = dataclasses.replace(registry.get("s2_rafsr"), scales=(5,))
    with pytest.raises(ValueError, match="scales"):
        registry._check((bad_scale,))


def test_get_unknown_id_names_the_known_ones():
    assert registry.get("s2_rafsr").paper == "S2"
    with pytest.raises(KeyError, match="unknown model 'srgan'.*bicubic.*s4_idrn"):
        registry.get("srgan")


def test_entries_describe_their_paper():
    papers = {e.id: e.paper for e in registry.MODELS}
    assert papers["bicubic"] == papers["lanczos"] == "baseline"
    assert [papers[i] for i in CONTRACT_ORDER[2:]] == [
        "S0", "S0", "S0", "S1", "S1", "S2", "S2", "S3", "S3", "S3", "S4", "S4", "S4"]
    for entry in registry.MODELS:
        assert entry.title and entry.authors and entry.citation and entry.name and entry.use_when
        assert entry.value_range == (0.0, 1.0)
        json.dumps(entry.kwargs)  # constructor arguments must go into a weights header
        assert (4 in entry.scales and 8 in entry.scales) or entry.scales == (1,)
    assert [e.id for e in registry.MODELS if e.scales == (1,)] == ["s4_idrn_restore"]
    assert registry.get("s1_mffcn").scales == (2, 3, 4, 8)
    assert registry.get("s1_mffcn").input == "upsampled" and registry.get("s1_mffcn").shared_weights
    assert registry.get("s2_rafsr").scales == (4, 8)
    assert registry.get("s0_srresnet_att_gan").variant == "gan"
    assert registry.get("s3_prior_guided_gan").variant == "gan"
    assert registry.get("bicubic").arch is None and registry.get("bicubic").variant == "baseline"


def test_robust_variants_pair_with_their_clean_twin():
    robust = [e for e in registry.MODELS if e.variant == "robust" and not e.restores]
    assert {e.paper for e in robust} == {"S0", "S1", "S2", "S3", "S4"}
    for entry in robust:
        twin = registry.get(entry.twin)
        assert twin.variant == "psnr" and twin.arch == entry.arch and twin.paper == entry.paper
        assert registry.robust_twin(twin.id) == entry.id
        assert registry.weight_filename(entry, 4) == f"{entry.id}_x4.safetensors" or (
            entry.shared_weights)
    assert registry.robust_twin("s4_idrn_robust") is None
    assert "compressed" in registry.get("s4_idrn_robust").use_when
    assert "clean" in registry.get("s4_idrn").use_when
    assert registry.get("s4_idrn").scales == (2, 4, 8)  # x2: issue 23's middle sizes
    bad = dataclasses.replace(registry.get("s2_rafsr_robust"), twin="s4_idrn")
    with pytest.raises(ValueError, match="twin"):
        registry._check((registry.get("s4_idrn"), bad))


def test_default_model_prefers_a_robust_variant_that_is_installed():
    assert registry.default_model_id() == registry.DEFAULT_ORDER[0]
    assert registry.get(registry.default_model_id()).variant == "robust"
    assert registry.default_model_id(lambda i: i in {"s2_rafsr_robust", "s4_idrn"}) == (
        "s2_rafsr_robust")
    assert registry.default_model_id(lambda i: False) == "bicubic"


def test_scale_and_file_names():
    rafsr, mffcn = registry.get("s2_rafsr"), registry.get("s1_mffcn")
    assert registry.weight_filename(rafsr, 8) == "s2_rafsr_x8.safetensors"
    assert registry.weight_filename(mffcn, 3) == "s1_mffcn.safetensors"
    with pytest.raises(ValueError, match="x4, x8, not x3"):
        registry.weight_filename(rafsr, 3)
    with pytest.raises(ValueError, match="no weights"):
        registry.weight_filename(registry.get("bicubic"), 4)
    with pytest.raises(ValueError, match="no network"):
        registry.build(registry.get("lanczos"), 4)


@pytest.mark.parametrize("model_id,scale", ARCH_CASES)
def test_every_network_builds_at_each_scale(model_id, scale):
    entry = registry.get(model_id)
    net = registry.build(entry, scale)  # the paper's configuration
    assert isinstance(net, torch.nn.Module)
    if registry.takes_scale(entry):
        assert net.ffe_build_kwargs["scale"] == scale
    # A small variant runs: the LR face (or its 128 px upsampling) -> 128x128.
    small = registry.build(entry, scale, **SMALL[model_id])
    side = 128 if entry.input == "upsampled" else 128 // scale
    with torch.no_grad():
        out = small(torch.rand(1, 3, side, side))
    assert out.shape == (1, 3, 128, 128)


def test_build_rejects_a_conflicting_scale():
    with pytest.raises(ValueError, match="scale 4"):
        registry.build(registry.get("s4_idrn"), 8, scale=4)


def test_importing_the_registry_stays_light():
    code = "import sys, engine.registry; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
