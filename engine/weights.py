"""Weight files: save, verify and load the trained networks -> ready-to-run model descriptors.

Weights are ``.safetensors`` files (plain tensors, never pickles) whose header carries their own
truth: the model id, the architecture and the constructor arguments it was trained with, the
scales it serves, the training run that made it, when and by which software version. A
``manifest.json`` beside them records each file's SHA-256 and size, so a changed, truncated or
swapped file is refused before anything in it is used.

:func:`load` checks, in this order, and stops at the first failure with a :class:`WeightsError`
naming the file and the reason: the file exists; it is listed in the manifest with the same size
and SHA-256; the safetensors header parses; the header's format, version, model id, architecture
and scales match the registry entry; the tensors fit the network built from the recorded
arguments exactly (``strict=True``). Each file is checked on its own, so one broken file never
stops the other models from loading. :func:`status` is the cheap version for menus: manifest,
size and header only; the full hash is reused when it was already computed for the same
(path, mtime, size).

Training's concerns (EMA copies, ``module.`` prefixes, optimiser state) never reach these
files: :func:`save` writes exactly the ``state_dict`` of a clean network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__, imaging, io, registry
from engine.registry import HR_SIZE, ModelEntry

log = logging.getLogger(__name__)

FORMAT = "ffe-weights"
FORMAT_VERSION = "1"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

_REPO = Path(__file__).resolve().parent.parent

# A safetensors header larger than this is not one of ours (ours are a few kB).
_MAX_HEADER = 100 * 1024 * 1024


class WeightsError(ValueError):
    """A weights file cannot be used; ``path`` is the file and ``reason`` says why in plain words."""

    def __init__(
        self, path: str | os.PathLike[str], reason: str, message: str | None = None
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(message or f"Cannot use weights file {self.path.name}: {reason}")


class MissingWeightsError(WeightsError):
    """The model has no weights file installed for this scale (never trained or not exported)."""

    def __init__(self, entry: ModelEntry, scale: int, path: Path, reason: str = "") -> None:
        self.entry = entry
        self.scale = scale
        reason = reason or f"{path.name} not found in {path.parent}"
        super().__init__(
            path, reason, f"{entry.label} x{scale} has no trained weights installed ({reason})"
        )


def _check_covers(metadata: dict[str, str], entry: ModelEntry, scale: int, path: Path) -> None:
    """A file shared by several scales that was not trained for ``scale``: that scale is missing,
    not broken (e.g. S1 trained for x2-x4 has no x8 yet)."""
    if not entry.shared_weights or metadata.get("model_id") != entry.id:
        return  # a file of another model is refused by check_metadata, with that reason
    scales = _json_field(metadata, "scales", path)
    if isinstance(scales, list) and scale not in scales:
        covered = ", ".join(f"x{s}" for s in scales)
        raise MissingWeightsError(entry, scale, path, f"{path.name} covers {covered} only")


def get_weights_dir(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The weights folder: ``weights_dir`` if given, else $FFE_WEIGHTS_DIR (read now), else the default."""
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get("FFE_WEIGHTS_DIR")
    return Path(env) if env else _REPO / "resources" / "weights"


def weights_path(
    entry: ModelEntry, scale: int, weights_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the weights of ``entry`` at ``scale`` are expected."""
    return get_weights_dir(weights_dir) / registry.weight_filename(entry, scale)


# --------------------------------------------------------------------------- hashing


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _remember_hash(path: Path, sha256: str, key: tuple[str, int, int] | None = None) -> None:
    with _hash_lock:
        _hash_cache[key or _stat_key(path)] = sha256


def cached_sha256(path: Path) -> str | None:
    """The SHA-256 of ``path`` if it was computed before for the file's current mtime and size."""
    with _hash_lock:
        return _hash_cache.get(_stat_key(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, computed once per (path, mtime, size)."""
    path = Path(path)
    key = _stat_key(path)
    with _hash_lock:
        known = _hash_cache.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    _remember_hash(path, sha, key)
    return sha


# --------------------------------------------------------------------------- manifest


def read_manifest(weights_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The manifest of a weights folder; an empty one if the folder has none.

    Raises WeightsError if the manifest exists but cannot be read: then no file is trusted.
    """
    path = get_weights_dir(weights_dir) / MANIFEST_NAME
    if not path.exists():
        return {"format_version": MANIFEST_VERSION, "files": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(path, f"the manifest cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise WeightsError(path, "the manifest has no 'files' table")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise WeightsError(
            path, f"manifest format {manifest.get('format_version')!r} is not {MANIFEST_VERSION}"
        )
    return manifest


@contextlib.contextmanager
def _manifest_lock(directory: Path) -> Iterator[None]:
    """Serialise manifest updates between processes (two exports at once) where flock exists."""
    try:
        import fcntl
    except ImportError:  # Windows: exports are run one at a time by hand
        yield
        return
    with (directory / ".manifest.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    io.write_bytes_atomic(path, text.encode("utf-8"))


def update_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Record the SHA-256 and size of weights file ``path`` in the manifest of its folder.

    The file's header must parse and name a registered model (so no stray file gets trusted).
    Returns the manifest row written.
    """
    path = Path(path)
    metadata = read_metadata(path)
    model_id = metadata.get("model_id", "")
    try:
        registry.get(model_id)
    except KeyError:
        raise WeightsError(path, f"its header names no registered model ({model_id!r})") from None
    row = {
        "sha256": file_sha256(path),
        "size": path.stat().st_size,
        "model_id": model_id,
        "scales": _json_field(metadata, "scales", path),
    }
    with _manifest_lock(path.parent):
        manifest = read_manifest(path.parent)
        manifest["files"][path.name] = row
        _write_json_atomic(path.parent / MANIFEST_NAME, manifest)
    return row


def _manifest_row(path: Path) -> dict[str, Any]:
    row = read_manifest(path.parent)["files"].get(path.name)
    if not isinstance(row, dict):
        raise WeightsError(
            path, f"it is not listed in the manifest ({path.parent / MANIFEST_NAME})"
        )
    if not isinstance(row.get("sha256"), str) or not isinstance(row.get("size"), int):
        raise WeightsError(path, "its manifest entry lacks the SHA-256 or the size")
    return row


def _check_size(path: Path, size: int, row: dict[str, Any]) -> None:
    if size != row["size"]:
        raise WeightsError(
            path,
            f"it is {size} bytes but the manifest lists {row['size']} "
            "(the file was changed or cut short)",
        )


def _check_hash(path: Path, sha256: str, row: dict[str, Any]) -> None:
    if sha256 != row["sha256"].lower():
        raise WeightsError(
            path, "its SHA-256 does not match the manifest (the file was changed or damaged)"
        )


# --------------------------------------------------------------------------- header


def _parse_header(head: bytes, total_size: int, path: Path) -> dict[str, Any]:
    """Parse a safetensors header from the file's first bytes (``head``) without torch."""
    if total_size < 8 or len(head) < 8:
        raise WeightsError(path, "it is too short to be a safetensors file (truncated?)")
    (length,) = struct.unpack("<Q", head[:8])
    if length > _MAX_HEADER:
        raise WeightsError(path, "it is not a safetensors file (implausible header length)")
    if 8 + length > total_size or 8 + length > len(head):
        raise WeightsError(
            path, f"it is truncated: the header needs {8 + length} bytes, the file has {total_size}"
        )
    try:
        header = json.loads(head[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError(
            path, "its safetensors header is not valid JSON (damaged file)"
        ) from None
    if not isinstance(header, dict):
        raise WeightsError(path, "its safetensors header is not a table (damaged file)")
    data_size = total_size - 8 - length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and offsets[1] <= data_size):
            raise WeightsError(
                path, f"it is truncated or damaged: tensor {name!r} lies past the end"
            )
    return header


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The safetensors header of ``path`` (tensor table + ``__metadata__``), reading only the header."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) == 8:
                (length,) = struct.unpack("<Q", head)
                head += fh.read(min(length, _MAX_HEADER))
    except FileNotFoundError:
        raise WeightsError(path, "file not found") from None
    except OSError as exc:
        raise WeightsError(path, f"it cannot be read ({exc.strerror or exc})") from None
    return _parse_header(head, size, path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` strings of a weights file (format, model_id, arch, kwargs, ...)."""
    path = Path(path)
    metadata = read_header(path).get("__metadata__")
    if not isinstance(metadata, dict):
        raise WeightsError(path, "it has no metadata: not a Forensic Face Enhancer weights file")
    return metadata


def _json_field(metadata: dict[str, str], key: str, path: Path) -> Any:
    if key not in metadata:
        raise WeightsError(path, f"its metadata lacks {key!r}")
    try:
        return json.loads(metadata[key])
    except (TypeError, json.JSONDecodeError):
        raise WeightsError(path, f"its metadata field {key!r} is not valid JSON") from None


def check_metadata(
    metadata: dict[str, str], entry: ModelEntry, scale: int, path: Path
) -> dict[str, Any]:
    """Check a file's metadata against the registry entry; return the recorded constructor kwargs."""
    if metadata.get("format") != FORMAT:
        raise WeightsError(path, f"its format is {metadata.get('format')!r}, not {FORMAT!r}")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            path,
            f"its format version {metadata.get('format_version')!r} is not supported "
            f"(this software reads version {FORMAT_VERSION})",
        )
    if metadata.get("model_id") != entry.id:
        raise WeightsError(
            path, f"it was made for model {metadata.get('model_id')!r}, not {entry.id!r}"
        )
    if metadata.get("arch") != entry.arch:
        raise WeightsError(
            path, f"its architecture {metadata.get('arch')!r} is not the registry's {entry.arch!r}"
        )
    scales = _json_field(metadata, "scales", path)
    if not isinstance(scales, list) or scale not in scales:
        raise WeightsError(path, f"it was trained for scales {scales}, not x{scale}")
    kwargs = _json_field(metadata, "kwargs", path)
    if not isinstance(kwargs, dict):
        raise WeightsError(path, "its recorded constructor arguments are not a table")
    if "scale" in kwargs and kwargs["scale"] != scale:
        raise WeightsError(path, f"its network was built for x{kwargs['scale']}, not x{scale}")
    return kwargs


# --------------------------------------------------------------------------- descriptor


def model_input(entry: ModelEntry, lr: np.ndarray) -> np.ndarray:
    """The image a network of ``entry`` reads: the LR face, or for "upsampled" models the LR face
    resized to 128x128 with the project's bicubic (training and the app must both use this)."""
    if entry.input == "upsampled":
        return imaging.resize(lr, HR_SIZE, HR_SIZE, "bicubic")
    return lr


@dataclass
class LoadedModel:
    """A model ready to run: what it is, where its weights came from, and how to call it.

    ``module`` is None for the interpolation baselines. ``run`` does all pre- and
    post-processing, so callers cannot feed a model the wrong size, range or convention.
    """

    entry: ModelEntry
    scale: int
    module: Any  # torch.nn.Module in eval mode on ``device``, or None for a baseline
    device: str = "cpu"
    weights_sha256: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def lr_size(self) -> int:
        """Side of the aligned LR face the model takes (128 // scale: 64, 42, 32 or 16)."""
        return HR_SIZE // self.scale

    @property
    def hr_size(self) -> int:
        return HR_SIZE

    def run(self, lr: np.ndarray) -> np.ndarray:
        """Super-resolve one aligned LR face: (n, n, 3) uint8 -> (128, 128, 3) uint8."""
        return self.run_batch([lr])[0]

    def accepts(self, size: int) -> bool:
        """Whether :meth:`run` takes an aligned face of ``size`` px: the model's own frame
        (128 // scale), or a larger one up to 127 px (a face between the model frames, run at
        its native size; see :mod:`engine.resolution`)."""
        return size == self.lr_size or self.lr_size < size < HR_SIZE

    def run_batch(self, lrs: list[np.ndarray]) -> list[np.ndarray]:
        """Super-resolve several aligned faces of one size in one forward pass (same results as
        ``run``), each to the 128-px canonical frame.

        A face larger than the model's frame is read at its own size: pre-upsampled models and
        the baselines resize it to 128 px as always; the other (fully convolutional) networks
        enlarge it by their scale, and that output -- larger than 128 px -- is resized to the
        128-px frame with the project's antialiased bicubic.
        """
        lrs = [np.asarray(lr) for lr in lrs]
        if not lrs:
            return []
        size = lrs[0].shape[0]
        for lr in lrs:
            if lr.shape != (size, size, 3) or lr.dtype != np.uint8 or not self.accepts(size):
                raise ValueError(
                    f"{self.entry.label} x{self.scale} takes ({self.lr_size}, {self.lr_size}, 3) "
                    f"uint8 faces (or larger ones up to 127 px, all of one size), "
                    f"got {lr.shape} {lr.dtype}"
                )
        if self.module is None:
            method = registry.BASELINE_METHODS[self.entry.id]
            return [imaging.resize(lr, HR_SIZE, HR_SIZE, method) for lr in lrs]
        import torch

        x = torch.cat([imaging.to_tensor(model_input(self.entry, lr)) for lr in lrs])
        with torch.inference_mode():
            y = self.module(x.to(self.device))
        side = HR_SIZE if self.entry.input == "upsampled" else size * self.scale
        if tuple(y.shape) != (len(lrs), 3, side, side):
            raise RuntimeError(
                f"{self.entry.label} x{self.scale} produced shape {tuple(y.shape)}, "
                f"expected ({len(lrs)}, 3, {side}, {side})"
            )
        out = [imaging.to_uint8(y[i]) for i in range(len(lrs))]
        if side != HR_SIZE:
            out = [imaging.resize(o, HR_SIZE, HR_SIZE, "bicubic") for o in out]
        return out


    def restore(self, rgb: np.ndarray) -> np.ndarray:
        """Restore a crop of recorded pixels at its own size (an x1 restoration model):
        (H, W, 3) uint8 -> (H, W, 3) uint8 on the same pixel grid, nothing resampled.

        The network is fully convolutional and reads the crop as it is. A crop larger than
        :data:`RESTORE_TILE` px on a side is processed in tiles of that size, each read with
        :data:`RESTORE_CONTEXT` px of the crop around it (more than the network's receptive
        field), so memory stays bounded; the tiling is fixed, so the bytes are too.
        """
        if not self.entry.restores or self.module is None:
            raise ValueError(f"{self.entry.label} x{self.scale} is not an x1 restoration model")
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"restore takes an (H, W, 3) uint8 crop, got {rgb.shape} {rgb.dtype}")
        import torch

        h, w = rgb.shape[:2]
        x = imaging.to_tensor(rgb).to(self.device)
        out = torch.empty_like(x)
        step, ctx = RESTORE_TILE, RESTORE_CONTEXT
        with torch.inference_mode():
            for ty in range(0, h, step):
                for tx in range(0, w, step):
                    y0, x0 = max(0, ty - ctx), max(0, tx - ctx)
                    y1, x1 = min(h, ty + step + ctx), min(w, tx + step + ctx)
                    y = self.module(x[..., y0:y1, x0:x1])
                    if tuple(y.shape[-2:]) != (y1 - y0, x1 - x0):
                        raise RuntimeError(
                            f"{self.entry.label} produced {tuple(y.shape[-2:])} from a "
                            f"{(y1 - y0, x1 - x0)} tile: not a restoration network"
                        )
                    by, bx = min(h, ty + step), min(w, tx + step)
                    out[..., ty:by, tx:bx] = y[..., ty - y0 : by - y0, tx - x0 : bx - x0]
        return imaging.to_uint8(out)


RESTORE_TILE = 384
"""Side of the tiles an x1 restore is computed in (crops up to this size run in one pass)."""
RESTORE_CONTEXT = 32
"""Recorded pixels read around each tile: more than the x1 network's receptive field (18 px
for IDRN's 8 units), so a tile's output does not depend on where the tiles are cut."""


# --------------------------------------------------------------------------- save / load


def _state_tensors(module: Any) -> dict[str, Any]:
    """The module's state dict as independent, contiguous CPU tensors (safetensors refuses
    tensors that share memory)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def _load_state(module: Any, tensors: dict[str, Any], path: Path) -> None:
    """``load_state_dict(strict=True)``, with a plain-words reason when the tensors do not fit."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if tuple(tensors[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:3])})")
        raise WeightsError(path, "its tensors do not fit the network it names: " + ", ".join(parts))
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise WeightsError(path, f"its tensors do not load into the network ({exc})") from None


def _build(entry: ModelEntry, scale: int, kwargs: dict[str, Any], path: Path) -> Any:
    try:
        return registry.build(entry, scale, **kwargs)
    except (TypeError, ValueError) as exc:
        raise WeightsError(path, f"its recorded network settings are not valid ({exc})") from None


def save(
    module: Any,
    entry: ModelEntry,
    scale_or_scales: int | Iterable[int],
    path: str | os.PathLike[str],
    training: dict[str, Any],
    kwargs: dict[str, Any] | None = None,
) -> str:
    """Write ``module``'s weights to ``path`` as safetensors with full metadata; return its SHA-256.

    ``kwargs`` are the constructor arguments the network was built with; by default those that
    :func:`engine.registry.build` recorded on it (``ffe_build_kwargs``), else the registry's
    defaults. Before writing, the tensors are loaded into a network built from those arguments,
    so a file that could not be loaded back is never written. Call :func:`update_manifest` to
    make the app trust the file.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    scales = [scale_or_scales] if isinstance(scale_or_scales, int) else list(scale_or_scales)
    scales = [registry.check_scale(entry, s) for s in scales]
    if not scales or (len(scales) > 1 and not entry.shared_weights):
        raise ValueError(f"{entry.label} needs one weights file per scale, got scales {scales}")
    if kwargs is None:
        kwargs = getattr(module, "ffe_build_kwargs", None)
    if kwargs is None:
        kwargs = registry.default_kwargs(entry, scales[0])
    kwargs = dict(kwargs)
    tensors = _state_tensors(module)
    _load_state(_build(entry, scales[0], kwargs, path), tensors, path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_id": entry.id,
        "paper": entry.paper,
        "variant": entry.variant,
        "arch": entry.arch or "",
        "kwargs": json.dumps(kwargs, sort_keys=True),
        "scales": json.dumps(scales),
        "training": json.dumps(training, sort_keys=True),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software_version": __version__,
    }
    data = st_save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = io.write_bytes_atomic(path, data)
    _remember_hash(path, sha)
    log.info("saved %s (%s, %d bytes)", path, sha[:12], len(data))
    return sha


def status(entry: ModelEntry, scale: int, weights_dir: str | os.PathLike[str] | None = None) -> str:
    """Return "installed", "missing" or "invalid: <reason>" for ``entry`` at ``scale``, cheaply.

    Checks the manifest row, the size and the header (a few kB read); the full SHA-256 only if
    already computed for this exact file state. :func:`load` does the complete check.
    """
    registry.check_scale(entry, scale)
    if entry.is_baseline:
        return "installed"
    path = weights_path(entry, scale, weights_dir)
    if not path.is_file():
        return "missing"
    try:
        row = _manifest_row(path)
        _check_size(path, path.stat().st_size, row)
        known = cached_sha256(path)
        if known is not None:
            _check_hash(path, known, row)
        metadata = read_metadata(path)
        _check_covers(metadata, entry, scale, path)
        check_metadata(metadata, entry, scale, path)
    except MissingWeightsError:
        return "missing"
    except WeightsError as exc:
        return f"invalid: {exc.reason}"
    except OSError as exc:
        return f"invalid: it cannot be read ({exc.strerror or exc})"
    return "installed"


def uncovered_reason(
    entry: ModelEntry, scale: int, weights_dir: str | os.PathLike[str] | None = None
) -> str | None:
    """Why ``scale`` reads "missing" although the model's shared file is there (it was not
    trained for, or deliberately does not serve, that scale), e.g. "s1_mffcn_robust.safetensors
    covers x4, x8 only"; None when the file is simply absent or covers the scale."""
    path = weights_path(entry, scale, weights_dir)
    if entry.is_baseline or not entry.shared_weights or not path.is_file():
        return None
    try:
        _check_covers(read_metadata(path), entry, scale, path)
    except MissingWeightsError as exc:
        return exc.reason
    except (WeightsError, OSError):
        pass  # a broken file: status() says "invalid" with its own reason
    return None


def load(
    entry: ModelEntry,
    scale: int,
    device: str = "cpu",
    weights_dir: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Verify and load the weights of ``entry`` at ``scale`` -> :class:`LoadedModel` on ``device``.

    Baselines need no file and return a descriptor without a network. Raises
    :class:`MissingWeightsError` when no file is installed and :class:`WeightsError` for any
    failed check. The file is read once into memory: the bytes that were hashed are the bytes
    that are loaded.
    """
    scale = registry.check_scale(entry, scale)
    if entry.is_baseline:
        return LoadedModel(entry=entry, scale=scale, module=None, device="cpu")
    path = weights_path(entry, scale, weights_dir)
    if not path.is_file():
        raise MissingWeightsError(entry, scale, path)
    row = _manifest_row(path)
    try:
        key = _stat_key(path)
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(path, f"it cannot be read ({exc.strerror or exc})") from None
    _check_size(path, len(data), row)
    sha = hashlib.sha256(data).hexdigest()
    if key[2] == len(data):
        _remember_hash(path, sha, key)
    _check_hash(path, sha, row)
    header = _parse_header(data, len(data), path)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
        raise WeightsError(path, "it has no metadata: not a Forensic Face Enhancer weights file")
    _check_covers(metadata, entry, scale, path)
    kwargs = check_metadata(metadata, entry, scale, path)

    from safetensors.torch import load as st_load

    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types for damaged data
        raise WeightsError(path, f"its tensor data is damaged ({exc})") from None
    module = _build(entry, scale, kwargs, path)
    _load_state(module, tensors, path)
    module.eval()
    module.requires_grad_(False)
    module.to(device)
    log.info("loaded %s x%d from %s on %s", entry.id, scale, path.name, device)
    return LoadedModel(
        entry=entry,
        scale=scale,
        module=module,
        device=str(device),
        weights_sha256=sha,
        metadata=dict(metadata),
        path=path,
    )
