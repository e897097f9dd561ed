"""Pack the face cache small enough to travel to a remote GPU machine, and unpack it there.

    python -m training.pack pack   --cache cache/faces --out .gpu/data [--quality 94]
                                   [--train-faces N --keep-source celebamask_hq]
    python -m training.pack halve resources/weights/s4_idrn_x4.safetensors ... --out .gpu/init
    python -m training.pack unpack --pack .gpu/data --out cache/faces

Why: the remote machine (see training/gpu_stage.sh) takes at most 64 MiB of files in all, and
the cache's train split alone is 830 MB of raw arrays. Packed, one split is one ``.npz``:

- HR faces as WebP (lossy): at quality 94, about 3.4 kB a face and 42.5 dB PSNR against the
  cache's pixels over the whole train split (quality 95: 3.7 kB, 43 dB; quality 93: 3.2 kB).
  This is the one lossy step; a run trained on unpacked faces says so in its config notes.
  LR inputs are still made on the fly from the (unpacked) HR faces.
- landmarks as int16 fixed point (1/64 px), valid masks as packed bits, parsing maps as they
  are; the npz's zlib squeezes the last two to a few MB. ``{split}_meta.json`` (each face's
  source, for a config's ``source_mix``) travels beside the npz as it is.

``unpack`` writes the same ``{split}_*.npy`` layout that :class:`training.data.FaceSet` reads, plus
the cache's ``report.json`` (model cards quote it). The test split is not packed: evaluation
runs here, on the exact cache.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger("training.pack")

SPLITS = ("train", "val")
LANDMARK_UNIT = 64  # int16 fixed point: 1/64 px, range +-512 px


def train_subset(
    meta: list[dict], n: int, keep_sources: tuple[str, ...], seed: int = 0
) -> np.ndarray:
    """Sorted indices of ``n`` train faces: every face of ``keep_sources`` (the small, sharp
    sources a config's ``source_mix`` draws half of each batch from) plus a seeded random draw
    of the others. For when the whole split does not fit the machine's 64 MiB with what else
    must travel (a PyAV wheel, starting weights)."""
    keep = np.array([i for i, m in enumerate(meta) if m["source"] in keep_sources], np.int64)
    rest = np.setdiff1d(np.arange(len(meta)), keep)
    extra = max(0, min(n - len(keep), len(rest)))
    picked = np.random.default_rng(seed).choice(rest, extra, replace=False)
    return np.sort(np.concatenate([keep, picked]))


def pack(
    cache: Path,
    out: Path,
    quality: int = 94,
    val_faces: int | None = None,
    splits: tuple[str, ...] = SPLITS,
    train_faces: int | None = None,
    keep_sources: tuple[str, ...] = (),
) -> dict:
    """Write ``out/{split}.npz`` for each split and copy report.json; returns sizes in bytes.
    ``val_faces`` keeps only the first N validation faces (the trainer validates on the first
    ``val_size`` of them, 100 in every config); ``train_faces`` keeps N train faces
    (:func:`train_subset`)."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split in splits:
        hr_all = np.load(cache / f"{split}_hr.npy", mmap_mode="r")
        meta = cache / f"{split}_meta.json"  # each face's source: what a source_mix draws on
        sources = json.loads(meta.read_text()) if meta.exists() else None
        sel = np.arange(len(hr_all))
        if split == "val" and val_faces:
            sel = sel[:val_faces]
        if split == "train" and train_faces:
            if sources is None:
                raise ValueError(f"--train-faces needs {meta.name} (each face's source)")
            sel = train_subset(sources, train_faces, keep_sources)
        hr = hr_all[sel]
        blobs = []
        for face in hr:
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(face)).save(buf, "WEBP", quality=quality, method=6)
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        landmarks = np.load(cache / f"{split}_landmarks.npy", mmap_mode="r")[sel]
        valid = np.load(cache / f"{split}_valid.npy", mmap_mode="r")[sel]
        if valid.max() > 1:
            raise ValueError(f"{split}_valid.npy holds values other than 0/1")
        path = out / f"{split}.npz"
        np.savez_compressed(
            path,
            hr_webp=np.concatenate(blobs),
            hr_offsets=offsets,
            quality=np.int32(quality),
            landmarks=np.round(landmarks * LANDMARK_UNIT).astype(np.int16),
            valid_bits=np.packbits(valid.astype(bool)),
            valid_shape=np.array(valid.shape),
            parsing=np.load(cache / f"{split}_parsing.npy", mmap_mode="r")[sel],
        )
        sizes[split] = path.stat().st_size
        if sources is not None:
            # only the source: the rest (file name, sharpness) is not worth its megabyte of the 64 MiB
            kept = [{"source": sources[i]["source"]} for i in sel]
            (out / meta.name).write_text(json.dumps(kept))
        log.info("%s: %d faces -> %s (%.1f MB)", split, len(hr), path, sizes[split] / 1e6)
    shutil.copyfile(cache / "report.json", out / "report.json")
    return sizes


def halve_weights(sources: list[Path], out: Path) -> list[Path]:
    """Copies of weights files with float tensors stored as float16 and the header metadata
    (training record included) kept, half the bytes to send. A run that starts from one
    (``init_from``) loads it into float32 parameters; the rounding (~1e-3 relative) is far
    below what the run's first steps change."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        with safe_open(str(src), "pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(tensors, str(out / src.name), metadata=metadata)
        written.append(out / src.name)
    return written


def unpack(packed: Path, out: Path) -> dict[str, int]:
    """Rebuild ``out/{split}_{hr,landmarks,valid,parsing}.npy`` (and ``_meta.json``) from a pack;
    returns face counts."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for path in sorted(packed.glob("*.npz")):
        split = path.stem
        z = np.load(path)
        blob, offsets = z["hr_webp"], z["hr_offsets"]
        hr = np.stack(
            [
                np.asarray(Image.open(io.BytesIO(blob[a:b].tobytes())).convert("RGB"))
                for a, b in zip(offsets[:-1], offsets[1:], strict=True)
            ]
        )
        shape = tuple(int(s) for s in z["valid_shape"])
        valid = np.unpackbits(z["valid_bits"], count=int(np.prod(shape))).reshape(shape)
        np.save(out / f"{split}_hr.npy", hr)
        np.save(out / f"{split}_landmarks.npy", z["landmarks"].astype(np.float32) / LANDMARK_UNIT)
        np.save(out / f"{split}_valid.npy", valid.astype(np.uint8))
        np.save(out / f"{split}_parsing.npy", z["parsing"])
        if (packed / f"{split}_meta.json").exists():
            shutil.copyfile(packed / f"{split}_meta.json", out / f"{split}_meta.json")
        counts[split] = len(hr)
    if (packed / "report.json").exists():
        shutil.copyfile(packed / "report.json", out / "report.json")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.pack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--cache", type=Path, default=Path("cache/faces"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quality", type=int, default=94)
    p.add_argument("--val-faces", type=int, default=None, help="keep the first N val faces")
    p.add_argument("--train-faces", type=int, default=None, help="keep N train faces")
    p.add_argument(
        "--keep-source",
        action="append",
        default=[],
        help="with --train-faces: keep every face of this source (repeatable)",
    )
    h = sub.add_parser("halve", help="float16 copies of weights files (metadata kept)")
    h.add_argument("weights", type=Path, nargs="+")
    h.add_argument("--out", type=Path, required=True)
    u = sub.add_parser("unpack")
    u.add_argument("--pack", type=Path, required=True)
    u.add_argument("--out", type=Path, default=Path("cache/faces"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t = time.time()
    if args.cmd == "pack":
        result = pack(
            args.cache,
            args.out,
            args.quality,
            args.val_faces,
            train_faces=args.train_faces,
            keep_sources=tuple(args.keep_source),
        )
    elif args.cmd == "halve":
        result = [str(p) for p in halve_weights(args.weights, args.out)]
    else:
        result = unpack(args.pack, args.out)
    log.info("%s done in %.0f s: %s", args.cmd, time.time() - t, json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
