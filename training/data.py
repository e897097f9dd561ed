"""Training data: aligned HR faces, landmarks, valid masks and parsing maps, and degradations.

``python -m training.data prepare --out cache/faces [--limit N] [--workers 2]`` runs every photo
of ``<datasets>/utkface`` and ``<datasets>/celebamask_hq/images`` through the app's own face
pipeline (:func:`engine.faces.detect`, largest face; :func:`engine.faces.align` to 128) and
writes, per split (train / val / test), memory-mappable arrays:

- ``{split}_hr.npy``        (N, 128, 128, 3) uint8 aligned HR faces
- ``{split}_landmarks.npy`` (N, 68, 2) float32 dlib landmarks (found on the full photo) mapped
  into the 128 frame
- ``{split}_valid.npy``     (N, 128, 128) uint8, 0 where the crop reaches past the photo border
  (those pixels are border-replicated smear: losses must leave them out)
- ``{split}_parsing.npy``   (N, 128, 128) uint8 face-parsing labels, 11 classes (PARSING_CLASSES)
- ``{split}_meta.json``     source file and sharpness per face
- ``test_png/*.png``        the test faces as PNGs for ``training.evaluate``
- ``report.json``           counts of every rule below

Rules (all counted in report.json):
- a photo with no detected face is dropped (HOG at upsample 0, then 1);
- a face is kept only if its landmark hull lies inside the photo (>= 98% of the hull's pixels
  valid) and at least ``min_valid`` (default 0.30) of the crop is real. UTKFace's chips are
  tighter than the canonical frame (about 45% of a crop is inside the chip), so a 90% rule
  would drop all of UTKFace; keeping them with the padded area masked out of the loss is what
  the datasets README allows;
- sharpness = variance of the Laplacian of the grey crop inside the landmark hull; the softest
  ``drop_blurry`` fraction (default 10%) of the train/val pool is dropped (threshold in the
  report). Test faces are not filtered by sharpness;
- split by photo (one face per photo) with a fixed seed: ``n_test`` (200) CelebAMask-HQ photos
  are the test set, the validation set takes ``n_val_celeba`` (100) CelebAMask-HQ + ``n_val_utk``
  (200) UTKFace faces, the rest is train.

Parsing maps (11 classes, MODELS.md): 0 background (complement of the face region), 1 face skin,
2 right brow, 3 left brow, 4 right eye, 5 left eye (the subject's sides: "right" is on the
image's left, dlib points 17-21 / 36-41), 6 nose, 7 upper lip, 8 lower lip, 9 inner mouth,
10 jawline band. UTKFace maps are rasterised from the 68 landmarks. CelebAMask-HQ's 19-class
masks are warped with the face's alignment matrix (nearest neighbour) and merged by
CELEBA_TO_PARSING: skin, ears and eyeglasses -> face skin; hair, hat, earring, necklace, neck,
cloth, background -> background; eyes, brows, nose, lips and mouth to their classes. The
jawline band (no CelebAMask class) is drawn from the landmarks on both sources so the class
means the same everywhere.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from engine import faces, imaging

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FFE_DATASETS", "/work/shared/datasets"))
HR = faces.HR_SIZE
SPLITS = ("train", "val", "test")

PARSING_CLASSES = (
    "background", "skin", "right_brow", "left_brow", "right_eye", "left_eye",
    "nose", "upper_lip", "lower_lip", "inner_mouth", "jawline",
)
# CelebAMask-HQ index -> our class. Its l_/r_ are the subject's sides (l_eye is on the image's
# right), checked against dlib's landmarks on a warped mask.
CELEBA_TO_PARSING = np.array([
    0,   # 0 background
    1,   # 1 skin
    6,   # 2 nose
    1,   # 3 eye_g (eyeglasses: the eyes under them are not labelled)
    5,   # 4 l_eye
    4,   # 5 r_eye
    3,   # 6 l_brow
    2,   # 7 r_brow
    1,   # 8 l_ear
    1,   # 9 r_ear
    9,   # 10 mouth (inner mouth)
    7,   # 11 u_lip
    8,   # 12 l_lip
    0,   # 13 hair
    0,   # 14 hat
    0,   # 15 ear_r (earring)
    0,   # 16 neck_l (necklace)
    0,   # 17 neck
    0,   # 18 cloth
], dtype=np.uint8)

# dlib 68-point index of each point's mirror image (for horizontal flips).
FLIP_LANDMARKS = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48] + [59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60] + [67, 66, 65]
)
FLIP_PARSING = np.array([0, 1, 3, 2, 5, 4, 6, 7, 8, 9, 10], dtype=np.uint8)


# --------------------------------------------------------------------------- parsing maps


def _poly(points: np.ndarray) -> np.ndarray:
    """Float points -> cv2 fixed-point int32 (shift=4: 1/16 px precision)."""
    return np.round((np.asarray(points, np.float64)) * 16).astype(np.int32).reshape(-1, 1, 2)


def rasterise_parsing(landmarks: np.ndarray, size: int = HR) -> np.ndarray:
    """(size, size) uint8 parsing labels drawn from 68 landmarks in the crop frame.

    Face region = convex hull of the jaw and brows; brows and jawline are thick polylines;
    eyes, nose, lips and inner mouth are filled polygons. Later classes paint over earlier ones.
    """
    lm = np.asarray(landmarks, np.float64)
    out = np.zeros((size, size), np.uint8)
    width = max(1, round(size / 40))  # about 3 px at 128
    hull = cv2.convexHull(lm[:27].astype(np.float32)).reshape(-1, 2)
    cv2.fillPoly(out, [_poly(hull)], 1, lineType=cv2.LINE_8, shift=4)
    cv2.fillPoly(out, [_poly(cv2.convexHull(lm[27:36].astype(np.float32)).reshape(-1, 2))], 6,
                 shift=4)
    cv2.polylines(out, [_poly(lm[17:22])], False, 2, thickness=width, shift=4)
    cv2.polylines(out, [_poly(lm[22:27])], False, 3, thickness=width, shift=4)
    cv2.fillPoly(out, [_poly(lm[36:42])], 4, shift=4)
    cv2.fillPoly(out, [_poly(lm[42:48])], 5, shift=4)
    upper = np.concatenate([lm[48:55], lm[[64, 63, 62, 61, 60]]])
    lower = np.concatenate([lm[54:60], lm[[48, 60, 67, 66, 65, 64]]])
    cv2.fillPoly(out, [_poly(upper)], 7, shift=4)
    cv2.fillPoly(out, [_poly(lower)], 8, shift=4)
    cv2.fillPoly(out, [_poly(lm[60:68])], 9, shift=4)
    cv2.polylines(out, [_poly(lm[0:17])], False, 10, thickness=width, shift=4)
    return out


def celeba_parsing(mask19: np.ndarray, matrix: np.ndarray, landmarks: np.ndarray,
                   size: int = HR) -> np.ndarray:
    """CelebAMask-HQ 19-class mask (photo frame) -> our 11 classes in the crop frame."""
    warped = cv2.warpAffine(mask19, matrix, (size, size), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = CELEBA_TO_PARSING[np.clip(warped, 0, 18)]
    width = max(1, round(size / 40))
    cv2.polylines(out, [_poly(landmarks[0:17])], False, 10, thickness=width, shift=4)
    return out


# --------------------------------------------------------------------------- one photo


def hull_mask(landmarks: np.ndarray, size: int = HR) -> np.ndarray:
    """(size, size) bool: inside the convex hull of the 68 landmarks."""
    out = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.asarray(landmarks, np.float32)).reshape(-1, 2)
    cv2.fillPoly(out, [_poly(hull)], 1, shift=4)
    return out.astype(bool)


def sharpness(pixels: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image inside `region` (higher = sharper)."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    return float(lap[region].var()) if region.any() else 0.0


@dataclass
class Prepared:
    """One aligned face ready for the arrays (or why the photo was dropped)."""

    name: str
    source: str
    pixels: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    valid: np.ndarray | None = None
    parsing: np.ndarray | None = None
    sharpness: float = 0.0
    valid_fraction: float = 0.0
    dropped: str = ""


def load_rgb(path: Path) -> np.ndarray:
    """RGB uint8 pixels of a photo with its EXIF orientation applied."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def prepare_photo(path: Path, source: str, mask_path: Path | None = None,
                  min_valid: float = 0.30) -> Prepared:
    """Detect the largest face, align it to 128 and build its labels; `dropped` says why not."""
    rec = Prepared(name=path.name, source=source)
    try:
        rgb = load_rgb(path)
    except OSError as exc:
        rec.dropped = f"unreadable: {exc}"
        return rec
    found = faces.detect(rgb, upsample=0) or faces.detect(rgb, upsample=1)
    if not found:
        rec.dropped = "no face"
        return rec
    face = max(found, key=lambda f: f.width * f.height)
    aligned = faces.align(rgb, face, HR)
    lm = faces.transform_points(face.landmarks, aligned.matrix).astype(np.float32)
    region = hull_mask(lm)
    rec.valid_fraction = aligned.valid_fraction
    hull_valid = float(aligned.valid[region].mean()) if region.any() else 0.0
    if hull_valid < 0.98 or rec.valid_fraction < min_valid:
        rec.dropped = "outside photo"
        return rec
    rec.pixels, rec.landmarks, rec.valid = aligned.pixels, lm, aligned.valid.astype(np.uint8)
    if mask_path is not None and mask_path.exists():
        with Image.open(mask_path) as im:
            mask19 = np.asarray(im)
        if mask19.shape[:2] != rgb.shape[:2]:  # masks are stored at the photo's size
            mask19 = cv2.resize(mask19, (rgb.shape[1], rgb.shape[0]),
                                interpolation=cv2.INTER_NEAREST)
        rec.parsing = celeba_parsing(mask19, aligned.matrix, lm)
    else:
        rec.parsing = rasterise_parsing(lm)
    rec.sharpness = sharpness(aligned.pixels, region)
    return rec


def _worker_init(niceness: int) -> None:
    if niceness:
        os.nice(niceness)


def _prepare_job(job: tuple[str, str, str | None, float]) -> Prepared:
    path, source, mask, min_valid = job
    return prepare_photo(Path(path), source, Path(mask) if mask else None, min_valid)


# --------------------------------------------------------------------------- whole dataset


def list_photos(datasets: Path, limit: int | None = None) -> list[tuple[str, str, str | None]]:
    """(path, source, mask path or None) for every photo, sorted; `limit` caps each source."""
    jobs: list[tuple[str, str, str | None]] = []
    celeba = sorted((datasets / "celebamask_hq" / "images").glob("*.jpg"))
    utk = sorted((datasets / "utkface").glob("*.jpg"))
    if limit:
        celeba, utk = celeba[:limit], utk[:limit]
    masks = datasets / "celebamask_hq" / "masks"
    jobs += [(str(p), "celebamask_hq", str(masks / (p.stem + ".png"))) for p in celeba]
    jobs += [(str(p), "utkface", None) for p in utk]
    return jobs


def split_indices(sources: list[str], sharp: np.ndarray, n_test: int, n_val_celeba: int,
                  n_val_utk: int, drop_blurry: float, seed: int) -> tuple[dict, float]:
    """Indices of train/val/test by the rules in the module docstring; returns the threshold."""
    rng = np.random.default_rng(seed)
    src = np.asarray(sources)
    celeba = rng.permutation(np.flatnonzero(src == "celebamask_hq"))
    test = np.sort(celeba[:n_test])
    pool = np.setdiff1d(np.arange(len(src)), test)
    threshold = float(np.quantile(sharp[pool], drop_blurry)) if len(pool) and drop_blurry else 0.0
    pool = pool[sharp[pool] >= threshold] if drop_blurry else pool
    pool = rng.permutation(pool)
    val_c = [i for i in pool if src[i] == "celebamask_hq"][:n_val_celeba]
    val_u = [i for i in pool if src[i] == "utkface"][:n_val_utk]
    val = np.sort(np.array(val_c + val_u, dtype=np.int64))
    train = np.sort(np.setdiff1d(pool, val))
    return {"train": train, "val": val, "test": test}, threshold


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def prepare(out: Path, datasets: Path = DATASETS, limit: int | None = None, workers: int = 2,
            niceness: int = 10, min_valid: float = 0.30, drop_blurry: float = 0.10,
            n_test: int = 200, n_val_celeba: int = 100, n_val_utk: int = 200,
            seed: int = 0, jobs: list[tuple[str, str, str | None]] | None = None) -> dict:
    """Build the cache under `out` (see module docstring); returns the report dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs if jobs is not None else list_photos(Path(datasets), limit)
    started = time.time()
    kept: list[Prepared] = []
    dropped: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    work = [(p, s, m, min_valid) for p, s, m in jobs]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_worker_init, initargs=(niceness,)) as pool:
        for i, rec in enumerate(pool.imap(_prepare_job, work, chunksize=8)):
            totals[rec.source] = totals.get(rec.source, 0) + 1
            if rec.dropped:
                reason = rec.dropped.split(":")[0]
                per = dropped.setdefault(rec.source, {})
                per[reason] = per.get(reason, 0) + 1
            else:
                kept.append(rec)
            if (i + 1) % 500 == 0 or i + 1 == len(work):
                rate = (i + 1) / max(1e-6, time.time() - started)
                log.info("%d/%d photos, %d faces kept, %.1f photos/s", i + 1, len(work),
                         len(kept), rate)
    sources = [r.source for r in kept]
    sharp = np.array([r.sharpness for r in kept], np.float64)
    splits, threshold = split_indices(sources, sharp, n_test, n_val_celeba, n_val_utk,
                                      drop_blurry, seed)
    blurry = [i for i in range(len(kept)) if i not in set(np.concatenate(list(splits.values())))]
    report = {
        "photos": totals, "dropped": dropped,
        "dropped_blurry": {"count": len(blurry), "fraction": drop_blurry,
                           "laplacian_variance_threshold": threshold,
                           "by_source": {s: sum(1 for i in blurry if sources[i] == s)
                                         for s in sorted(set(sources))}},
        "rules": {"min_valid_fraction": min_valid, "min_landmark_hull_valid": 0.98,
                  "detector": "engine.faces.detect hog, upsample 0 then 1, largest face",
                  "aligner": "engine.faces.align size 128", "seed": seed},
        "parsing_classes": list(PARSING_CLASSES),
        "celeba_to_parsing": CELEBA_TO_PARSING.tolist(),
        "splits": {}, "seconds": round(time.time() - started, 1),
    }
    png_dir = out / "test_png"
    png_dir.mkdir(exist_ok=True)
    for split, idx in splits.items():
        recs = [kept[i] for i in idx]
        n = len(recs)
        _save_npy(out / f"{split}_hr.npy", np.stack([r.pixels for r in recs]) if n
                  else np.zeros((0, HR, HR, 3), np.uint8))
        _save_npy(out / f"{split}_landmarks.npy", np.stack([r.landmarks for r in recs]) if n
                  else np.zeros((0, 68, 2), np.float32))
        _save_npy(out / f"{split}_valid.npy", np.stack([r.valid for r in recs]) if n
                  else np.zeros((0, HR, HR), np.uint8))
        _save_npy(out / f"{split}_parsing.npy", np.stack([r.parsing for r in recs]) if n
                  else np.zeros((0, HR, HR), np.uint8))
        meta = [{"name": r.name, "source": r.source, "sharpness": round(r.sharpness, 2),
                 "valid_fraction": round(r.valid_fraction, 4)} for r in recs]
        (out / f"{split}_meta.json").write_text(json.dumps(meta, indent=0))
        report["splits"][split] = {s: sum(1 for r in recs if r.source == s)
                                   for s in sorted(set(sources))} | {"total": n}
        if split == "test":
            for r in recs:
                Image.fromarray(r.pixels).save(png_dir / (Path(r.name).stem + ".png"))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    log.info("done in %.0f s: %s", time.time() - started, json.dumps(report["splits"]))
    return report


# --------------------------------------------------------------------------- degradations


def degrade(hr: np.ndarray, scale: int, kind: str = "bicubic",
            rng: np.random.Generator | None = None) -> np.ndarray:
    """HR (128, 128, 3) uint8 -> LR uint8.

    "bicubic" (default, the papers' protocol and the app's): :func:`engine.imaging.downscale`.
    "mix" (the robust files' training mix) and the evaluation families "clean", "jpeg",
    "noise_jpeg", "blur_jpeg", "cctv": training/degrade.py, the one degradation model, with
    its ranges.
    "surveillance": Gaussian blur of the HR (sigma 0.4-1.6 px), the same bicubic downscale,
    Gaussian noise (sigma 0-6 grey levels) and JPEG (quality 35-90) — the first rough model of
    CCTV stills, kept for experiments; superseded by "mix".
    """
    from training import degrade as dg

    if kind == "bicubic":
        return imaging.downscale(hr, scale)
    if kind in dg.MIXES or kind in dg.FAMILIES:
        return dg.degrade(hr, scale, kind, rng or np.random.default_rng())
    if kind != "surveillance":
        raise ValueError(f"unknown degradation {kind!r}; use 'bicubic', 'surveillance', "
                         f"{', '.join(repr(m) for m in dg.MIXES)} or one of "
                         f"{', '.join(dg.FAMILIES)}")
    rng = rng or np.random.default_rng()
    blurred = cv2.GaussianBlur(hr, (0, 0), float(rng.uniform(0.4, 1.6)))
    lr = imaging.downscale(blurred, scale).astype(np.float32)
    lr += rng.normal(0, rng.uniform(0, 6), lr.shape)
    lr_u8 = np.clip(np.rint(lr), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(lr_u8).save(buf, "JPEG", quality=int(rng.integers(35, 91)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


class FaceSet:
    """One split of the cache, memory-mapped; :meth:`batch` builds training tensors."""

    def __init__(self, cache: Path, split: str) -> None:
        cache = Path(cache)
        self.hr = np.load(cache / f"{split}_hr.npy", mmap_mode="r")
        self.landmarks = np.load(cache / f"{split}_landmarks.npy", mmap_mode="r")
        self.valid = np.load(cache / f"{split}_valid.npy", mmap_mode="r")
        self.parsing = np.load(cache / f"{split}_parsing.npy", mmap_mode="r")
        self._meta_path = cache / f"{split}_meta.json"

    def sources(self) -> np.ndarray:
        """The data set each face came from ("utkface", "celebamask_hq"), from the split's meta."""
        if not self._meta_path.exists():
            raise FileNotFoundError(f"{self._meta_path} is missing: it names each face's source")
        sources = np.array([m["source"] for m in json.loads(self._meta_path.read_text())])
        if len(sources) != len(self):
            raise ValueError(f"{self._meta_path} lists {len(sources)} faces, the split has {len(self)}")
        return sources

    def __len__(self) -> int:
        return int(self.hr.shape[0])

    def batch(self, indices: np.ndarray, scale: int, degrade_kind: str = "bicubic",
              flip: np.ndarray | None = None, rng: np.random.Generator | None = None,
              model_input: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
        """Tensors for `indices`: hr (N,3,128,128) and lr (N,3,128/s,128/s) float in [0,1],
        x = the network's input (`model_input(lr_uint8)`, e.g. engine.weights.model_input,
        which bicubic-upsamples for "upsampled" models; the LR itself by default),
        mask (N,1,128,128), landmarks (N,68,2) in [0,1] of the HR frame, parsing (N,128,128) long.
        `flip` (N,) bool mirrors faces horizontally (landmarks and left/right classes swapped).
        """
        import torch

        hr = np.array(self.hr[indices])
        lm = np.array(self.landmarks[indices], np.float32)
        valid = np.array(self.valid[indices])
        parsing = np.array(self.parsing[indices])
        if flip is not None and flip.any():
            hr[flip] = hr[flip, :, ::-1]
            valid[flip] = valid[flip, :, ::-1]
            parsing[flip] = FLIP_PARSING[parsing[flip, :, ::-1]]
            lm_f = lm[flip][:, FLIP_LANDMARKS]
            lm_f[..., 0] = HR - 1 - lm_f[..., 0]
            lm[flip] = lm_f
        lr = np.stack([degrade(np.ascontiguousarray(h), scale, degrade_kind, rng) for h in hr])

        def to_t(a: np.ndarray) -> torch.Tensor:
            # contiguous NCHW: torch 2.13's CPU conv backward crashed (segfault) on the permuted,
            # channels-last-strided batch on an Intel Xeon, where the same code ran on AMD EPYC
            return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous().float() / 255

        x = to_t(np.stack([model_input(a) for a in lr])) if model_input else to_t(lr)
        return {
            "hr": to_t(hr), "lr": to_t(lr), "x": x,
            "mask": torch.from_numpy(np.ascontiguousarray(valid)).unsqueeze(1).float(),
            "landmarks": torch.from_numpy((lm + 0.5) / HR),
            "parsing": torch.from_numpy(np.ascontiguousarray(parsing)).long(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="build the aligned-face cache")
    p.add_argument("--out", type=Path, default=REPO / "cache" / "faces")
    p.add_argument("--datasets", type=Path, default=DATASETS)
    p.add_argument("--limit", type=int, default=None, help="at most N photos per source")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--min-valid", type=float, default=0.30)
    p.add_argument("--drop-blurry", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prepare(args.out, args.datasets, args.limit, args.workers, min_valid=args.min_valid,
            drop_blurry=args.drop_blurry, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
