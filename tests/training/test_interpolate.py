"""training.interpolate: network interpolation between two files of one model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine import registry, weights
from training.interpolate import interpolate


def _file(tmp_path: Path, name: str, seed: int, after: str = "", **kwargs) -> Path:
    """A weights file trained in one stage ``name``, after the stage ``after`` if given."""
    entry = registry.get("s2_rafsr_robust")
    torch.manual_seed(seed)
    module = registry.build(entry, 4, **kwargs)
    folder = tmp_path / name
    folder.mkdir()
    path = weights.weights_path(entry, 4, folder)
    stages = [{"run": after}] if after else []
    weights.save(module, entry, 4, path, {"run": name, "stages": [*stages, {"run": name}]})
    weights.update_manifest(path)
    path.with_suffix(".md").write_text(f"# card of {name}\n- SHA-256: `x`\n")
    return path


def test_every_tensor_is_the_weighted_mean_and_the_record_says_so(tmp_path: Path) -> None:
    a, b = _file(tmp_path, "a", 0), _file(tmp_path, "b", 1, after="a")
    out = tmp_path / "out" / a.name
    sha = interpolate(str(a), str(b), 0.25, out)
    ta, tb, to = load_file(str(a)), load_file(str(b)), load_file(str(out))
    for key, t in to.items():
        torch.testing.assert_close(t, 0.75 * ta[key] + 0.25 * tb[key])
    assert weights.read_manifest(out.parent)["files"][out.name]["sha256"] == sha
    model = weights.load(registry.get("s2_rafsr_robust"), 4, "cpu", out.parent)  # verifies
    assert model is not None
    meta = weights.read_metadata(out)
    assert '"alpha": 0.25' in meta["training"] and weights.file_sha256(a) in meta["training"]
    card = out.with_suffix(".md").read_text()
    assert card.startswith("# card of b") and f"- SHA-256: `{sha}`" in card
    assert "## Network interpolation" in card


def test_files_of_different_networks_or_lineage_or_an_alpha_outside_0_1_are_refused(
    tmp_path: Path,
) -> None:
    a = _file(tmp_path, "a", 0)
    entry = registry.get("s2_rafsr_robust")
    wide = registry.default_kwargs(entry, 4) | {"channels": 16}
    b = _file(tmp_path, "b", 1, after="a", **wide)
    with pytest.raises(ValueError, match="differ in kwargs"):
        interpolate(str(a), str(b), 0.5, tmp_path / "out" / a.name)
    stranger = _file(tmp_path, "c", 2)  # trained from scratch, not on from A
    with pytest.raises(ValueError, match="not trained on from file A"):
        interpolate(str(a), str(stranger), 0.5, tmp_path / "out" / a.name)
    with pytest.raises(ValueError, match="alpha"):
        interpolate(str(a), str(a), 1.5, tmp_path / "out" / a.name)
