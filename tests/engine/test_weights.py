"""Weight files: safetensors round trip, manifest checks, refusals with plain-words reasons."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import faces, imaging, registry, weights
from engine.weights import MissingWeightsError, WeightsError

RAFSR = registry.get("s2_rafsr")
IDRN = registry.get("s4_idrn")
MFFCN = registry.get("s1_mffcn")
SMALL = {
    "s2_rafsr": {"channels": 8, "n_ram": 2, "reduction": 4},
    "s4_idrn": {"channels": 8, "units": 2},
    "s1_mffcn": {"channels": 8, "levels": 2, "mff_per_level": 1, "max_channels": 16},
}
TRAINING = {"run": "test", "steps": 0}


def _save(entry, scale, folder, seed=0, manifest=True, scales=None):
    """Save a random-init small network of ``entry`` into ``folder``; return (module, path, sha)."""
    torch.manual_seed(seed)
    net = registry.build(entry, scale, **SMALL[entry.id])
    path = weights.weights_path(entry, scale, folder)
    sha = weights.save(net, entry, scales or scale, path, TRAINING)
    if manifest:
        weights.update_manifest(path)
    return net.eval(), path, sha


def _rewrite(path, **metadata_changes):
    """Rewrite a weights file with changed metadata (same tensors), as an attacker or bug would."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        metadata = dict(fh.metadata())
    tensors = load_file(str(path))
    metadata.update(metadata_changes)
    save_file(tensors, str(path), metadata=metadata)


def _list_in_manifest(path):
    """Put the file's current size and hash in the manifest without any checks."""
    manifest_path = path.parent / weights.MANIFEST_NAME
    manifest = weights.read_manifest(path.parent)
    manifest["files"][path.name] = {
        "sha256": weights.file_sha256(path),
        "size": path.stat().st_size,
        "model_id": "s2_rafsr",
        "scales": [4],
    }
    manifest_path.write_text(json.dumps(manifest))


@pytest.fixture
def lr_face():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_round_trip_is_bit_exact(tmp_path, lr_face):
    net, path, sha = _save(RAFSR, 4, tmp_path)
    assert sha == weights.file_sha256(path)
    loaded = weights.load(RAFSR, 4, "cpu", tmp_path)
    assert loaded.weights_sha256 == sha and loaded.path == path
    assert not loaded.module.training
    assert all(not p.requires_grad for p in loaded.module.parameters())
    with torch.no_grad():
        expected = imaging.to_uint8(net(imaging.to_tensor(lr_face)))
    assert np.array_equal(loaded.run(lr_face), expected)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[k], v)


def test_metadata_and_manifest(tmp_path):
    _, path, sha = _save(RAFSR, 4, tmp_path)
    meta = weights.read_metadata(path)
    assert meta["format"] == "ffe-weights" and meta["format_version"] == "1"
    assert meta["model_id"] == "s2_rafsr" and meta["arch"] == RAFSR.arch
    assert json.loads(meta["kwargs"]) == {"scale": 4, **SMALL["s2_rafsr"]}
    assert json.loads(meta["scales"]) == [4]
    assert json.loads(meta["training"]) == TRAINING
    assert meta["software_version"] and meta["created"].endswith("+00:00")
    manifest = weights.read_manifest(tmp_path)
    assert manifest["format_version"] == 1
    assert manifest["files"]["s2_rafsr_x4.safetensors"] == {
        "sha256": sha,
        "size": path.stat().st_size,
        "model_id": "s2_rafsr",
        "scales": [4],
    }


def test_env_var_selects_the_folder(tmp_path, monkeypatch):
    _save(RAFSR, 4, tmp_path)
    monkeypatch.setenv("FFE_WEIGHTS_DIR", str(tmp_path))
    assert weights.get_weights_dir() == tmp_path
    assert weights.status(RAFSR, 4) == "installed"
    assert weights.load(RAFSR, 4).path == tmp_path / "s2_rafsr_x4.safetensors"


def test_shared_weights_serve_every_scale(tmp_path):
    net, path, _ = _save(MFFCN, 4, tmp_path, scales=[2, 3, 4, 8])
    assert path.name == "s1_mffcn.safetensors"
    lr = np.random.default_rng(2).integers(0, 256, (42, 42, 3), dtype=np.uint8)
    loaded = weights.load(MFFCN, 3, "cpu", tmp_path)
    assert loaded.lr_size == 42 and loaded.entry.input == "upsampled"
    with torch.no_grad():
        up = imaging.resize(lr, 128, 128, "bicubic")  # the pre-upsampling the model is fed
        expected = imaging.to_uint8(net(imaging.to_tensor(up)))
    assert np.array_equal(loaded.run(lr), expected)
    assert weights.load(MFFCN, 8, "cpu", tmp_path).run(lr[:16, :16]).shape == (128, 128, 3)


def test_shared_file_without_a_scale_reports_it_missing(tmp_path):
    _save(MFFCN, 4, tmp_path, scales=[2, 3, 4])
    assert weights.status(MFFCN, 3, tmp_path) == "installed"
    assert weights.status(MFFCN, 8, tmp_path) == "missing"
    with pytest.raises(MissingWeightsError, match=r"x8 has no trained .*covers x2, x3, x4 only"):
        weights.load(MFFCN, 8, "cpu", tmp_path)


def test_missing_file(tmp_path):
    assert weights.status(IDRN, 8, tmp_path) == "missing"
    with pytest.raises(MissingWeightsError, match="IDRN .* x8 has no trained weights installed"):
        weights.load(IDRN, 8, "cpu", tmp_path)


def test_not_in_manifest_is_refused(tmp_path):
    _save(RAFSR, 4, tmp_path, manifest=False)
    with pytest.raises(WeightsError, match="s2_rafsr_x4.safetensors.*not listed in the manifest"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    assert weights.status(RAFSR, 4, tmp_path).startswith(
        "invalid: it is not listed in the manifest"
    )


def test_tampered_byte_is_refused(tmp_path):
    _, path, _ = _save(RAFSR, 4, tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a new mtime, as any real change would give
    assert weights.status(RAFSR, 4, tmp_path) == "installed"  # cheap check: size and header only
    with pytest.raises(WeightsError, match="SHA-256 does not match the manifest"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    # The full hash is now known for this exact file state, so the cheap status reports it too.
    assert "SHA-256 does not match" in weights.status(RAFSR, 4, tmp_path)


def test_truncated_file_is_refused(tmp_path):
    _, path, _ = _save(RAFSR, 4, tmp_path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match="manifest lists .* cut short"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    assert "cut short" in weights.status(RAFSR, 4, tmp_path)
    # Even with a manifest that matches the cut file, the header check catches it.
    _list_in_manifest(path)
    with pytest.raises(WeightsError, match="truncated"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    path.write_bytes(path.read_bytes()[:50])
    _list_in_manifest(path)
    with pytest.raises(WeightsError, match="truncated"):
        weights.load(RAFSR, 4, "cpu", tmp_path)


def test_wrong_model_id_is_refused(tmp_path):
    _, path, _ = _save(RAFSR, 4, tmp_path)
    _rewrite(path, model_id="s4_idrn")
    weights.update_manifest(path)  # even a correctly listed file must be for this model
    with pytest.raises(WeightsError, match="made for model 's4_idrn', not 's2_rafsr'"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    assert "made for model 's4_idrn'" in weights.status(RAFSR, 4, tmp_path)


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"format_version": "2"}, "format version '2' is not supported"),
        ({"format": "other"}, "format is 'other'"),
        ({"scales": "[8]"}, r"trained for scales \[8\], not x4"),
        ({"arch": "engine.archs.s4_idrn:IDRN"}, "architecture"),
        (
            {"kwargs": json.dumps({"scale": 4, "channels": 16, "n_ram": 2, "reduction": 4})},
            "do not fit",
        ),
        ({"kwargs": json.dumps({"scale": 4, "wings": 2})}, "settings are not valid"),
    ],
)
def test_metadata_mismatch_is_refused(tmp_path, change, reason):
    _, path, _ = _save(RAFSR, 4, tmp_path)
    _rewrite(path, **change)
    weights.update_manifest(path)
    with pytest.raises(WeightsError, match=reason):
        weights.load(RAFSR, 4, "cpu", tmp_path)


def test_pickle_is_never_unpickled(tmp_path):
    path = weights.weights_path(RAFSR, 4, tmp_path)
    torch.save({"x": torch.zeros(3)}, path)
    _list_in_manifest(path)
    with pytest.raises(WeightsError, match="s2_rafsr_x4.safetensors"):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    with pytest.raises(WeightsError):
        weights.update_manifest(path)


def test_save_refuses_arguments_that_do_not_fit(tmp_path):
    net = registry.build(RAFSR, 4, **SMALL["s2_rafsr"])
    path = weights.weights_path(RAFSR, 4, tmp_path)
    with pytest.raises(WeightsError, match="do not fit"):
        weights.save(net, RAFSR, 4, path, TRAINING, kwargs={"scale": 4})  # paper width 64
    assert not path.exists()
    with pytest.raises(ValueError, match="one weights file per scale"):
        weights.save(net, RAFSR, [4, 8], path, TRAINING)


def test_a_broken_file_does_not_stop_other_models(tmp_path, lr_face):
    _, rafsr_path, _ = _save(RAFSR, 4, tmp_path)
    idrn, _, _ = _save(IDRN, 4, tmp_path, seed=3)
    rafsr_path.write_bytes(b"garbage")
    assert weights.status(RAFSR, 4, tmp_path).startswith("invalid:")
    assert weights.status(IDRN, 4, tmp_path) == "installed"
    with pytest.raises(WeightsError):
        weights.load(RAFSR, 4, "cpu", tmp_path)
    with torch.no_grad():
        expected = imaging.to_uint8(idrn(imaging.to_tensor(lr_face)))
    assert np.array_equal(weights.load(IDRN, 4, "cpu", tmp_path).run(lr_face), expected)


def test_unreadable_manifest_trusts_nothing(tmp_path):
    _save(RAFSR, 4, tmp_path)
    (tmp_path / weights.MANIFEST_NAME).write_text("{not json")
    assert "manifest cannot be read" in weights.status(RAFSR, 4, tmp_path)
    with pytest.raises(WeightsError, match="manifest cannot be read"):
        weights.load(RAFSR, 4, "cpu", tmp_path)


def test_baselines_and_run_checks(lr_face):
    bicubic = weights.load(registry.get("bicubic"), 4)
    assert bicubic.module is None and bicubic.weights_sha256 is None
    assert weights.status(registry.get("lanczos"), 8) == "installed"
    assert np.array_equal(bicubic.run(lr_face), imaging.upscale(lr_face, 4, "bicubic"))
    with pytest.raises(ValueError, match=r"takes \(32, 32, 3\) uint8"):
        bicubic.run(lr_face[:16])
    assert weights.HR_SIZE == faces.HR_SIZE


def test_shipped_manifest_is_valid():
    shipped = weights.get_weights_dir()
    manifest = weights.read_manifest(shipped)
    for name, row in manifest["files"].items():
        assert (shipped / name).is_file(), f"{name} is listed but not shipped"
        assert set(row) >= {"sha256", "size", "model_id", "scales"}
