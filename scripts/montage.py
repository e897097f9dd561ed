"""Montages of what the shipped models do, for the weights README (run by hand).

    .venv/bin/python scripts/montage.py --faces cache/faces/test_png \
        --realworld ../shared/datasets/realworld_lq [--best MODEL] [--out docs/montage]

Writes, under --out:
- ``montage_x4.png`` and ``montage_x8.png``: the same held-out faces (aligned 128x128 HR, spread
  evenly over the sorted test folder, not hand-picked) as rows; columns are the
  LR input (pixels enlarged as blocks), bicubic, every model with installed weights at that scale
  (registry order) and the HR original;
- ``montage_gan_x4.png`` and ``montage_gan_x8.png``: the centre of the same faces enlarged 2x,
  each GAN variant next to its PSNR-trained twin, so a reader can judge whether it is sharper;
- ``montage_degraded_x4.webp`` and ``montage_degraded_x8.webp`` (where a robust file is installed): held-out faces
  through training/degrade.py's degraded families (face k gets family k mod 4, the benchmark's
  LR of that face), columns: the damaged LR, bicubic, each clean-trained model that has a robust
  variant, that robust variant, the HR original;
- ``montage_restore_x1.png`` (where an x1 restoration file is installed): held-out faces
  damaged at their own size by the degraded families (face k gets family k mod 4, the x1
  benchmark's input of that face), columns: the damaged input, the x1 restore, the centre of
  both enlarged 2x (pixels as blocks, to look for invented detail and periodic artefacts), what
  the restore changed (|output - input| x 8) and the HR original;
- ``montage_realworld.png``: the largest face of the first two photos with a face found from each
  source folder of real low-quality photos (no ground truth), aligned at 32x32 from the photo as
  the app does at x4, through bicubic, the ``--best`` model (default: the
  best x4 PSNR in benchmarks/quality_x4.json) and its robust twin where installed, next to
  the same face aligned at 128x128 straight from the photo (what the photo itself holds).

Every column made by a network is headed "AI" in its label: these are enhancements, not evidence.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import faces, imaging, io, registry, weights  # noqa: E402
from training.evaluate import select_models  # noqa: E402

TILE = faces.HR_SIZE
LABEL_H = 30
GAP = 2


def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _grid(headers: list[str], rows: list[list[np.ndarray]], title: str) -> Image.Image:
    """Tiles of TILE x TILE under a title and one two-line label per column."""
    cols = len(headers)
    title_h = 24
    width = cols * (TILE + GAP) - GAP
    height = title_h + LABEL_H + len(rows) * (TILE + GAP)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title, fill="black", font=_font(13))
    for c, header in enumerate(headers):
        draw.multiline_text((c * (TILE + GAP) + 3, title_h), header, fill="black", font=_font(),
                            spacing=2)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            img = Image.fromarray(tile).resize((TILE, TILE), Image.Resampling.NEAREST)
            canvas.paste(img, (c * (TILE + GAP), title_h + LABEL_H + r * (TILE + GAP)))
    return canvas


def _label(entry: registry.ModelEntry) -> str:
    """Column header; every network's output is marked as an AI enhancement."""
    return entry.id if entry.is_baseline else "AI:\n" + entry.id.replace("_", " ")


def _picked_faces(faces_dir: Path, count: int) -> list[Path]:
    """`count` faces spread evenly over the sorted folder, not chosen by hand."""
    paths = sorted(p for p in faces_dir.iterdir() if p.suffix.lower() == ".png")
    return paths[:: max(1, len(paths) // count)][:count]


def held_out_montage(faces_dir: Path, scale: int, count: int) -> Image.Image:
    picked = _picked_faces(faces_dir, count)
    entries = [e for e in select_models("all", scale, None) if e.id != "lanczos"]
    models = {e.id: weights.load(e, scale, "cpu") for e in entries}
    rows = []
    for path in picked:
        hr = np.asarray(Image.open(path).convert("RGB"))
        lr = imaging.downscale(hr, scale)
        row = [lr]
        row += [models[e.id].run(lr) for e in entries]
        rows.append(row + [hr])
    headers = [f"input\n{TILE // scale}x{TILE // scale} LR"]
    headers += [_label(e) for e in entries]
    headers += ["original\n128x128 HR"]
    return _grid(headers, rows, f"x{scale}: held-out CelebAMask-HQ faces (not seen in training)")


def gan_montage(faces_dir: Path, scale: int, count: int) -> Image.Image:
    """Centre crops (eyes to mouth, 2x) of every GAN variant beside its PSNR twin."""
    picked = _picked_faces(faces_dir, count)
    entries = []
    for gan in select_models("all", scale, None):
        if gan.variant == "gan":
            entries += [registry.get(gan.id.removesuffix("_gan")), gan]
    models = {e.id: weights.load(e, scale, "cpu") for e in entries}
    crop = slice(TILE // 4, TILE * 3 // 4)
    rows = []
    for path in picked:
        hr = np.asarray(Image.open(path).convert("RGB"))
        lr = imaging.downscale(hr, scale)
        row = [models[e.id].run(lr)[crop, crop] for e in entries]
        rows.append(row + [hr[crop, crop]])
    headers = [_label(e) for e in entries] + ["original\n128x128 HR"]
    return _grid(headers, rows, f"x{scale}: GAN variants beside their PSNR twins, centre 2x")


def realworld_montage(root: Path, best: str, per_source: int) -> Image.Image:
    scale = 4
    entry = registry.get(best)
    model = weights.load(entry, scale, "cpu")
    bicubic = weights.load(registry.get("bicubic"), scale, "cpu")
    # the robust twin beside it: real low-quality photos are what it was trained for
    twin_id = registry.robust_twin(best)
    installed = {e.id for e in select_models("all", scale, None)}
    robust = weights.load(registry.get(twin_id), scale, "cpu") if twin_id in installed else None
    rows = []
    for source in sorted(d for d in root.iterdir() if d.is_dir()):  # a few from every source
        taken = 0
        for path in sorted(source.iterdir()):
            if taken >= per_source or path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
                continue
            try:
                still = io.load(path)
            except io.ImageLoadError as exc:
                print(f"skipped {path.name}: {exc}")
                continue
            found = faces.detect(still.rgb)
            if not found:
                print(f"skipped {source.name}/{path.name}: no face found")
                continue
            face = max(found, key=lambda f: f.width * f.height)
            lr = faces.align(still.rgb, face, TILE // scale).pixels
            native = faces.align(still.rgb, face, TILE).pixels
            outputs = [bicubic.run(lr), model.run(lr)] + ([robust.run(lr)] if robust else [])
            rows.append([lr, *outputs, native])
            taken += 1
    headers = [f"input\n{TILE // scale}x{TILE // scale} crop", "bicubic x4",
               f"AI:\n{best.replace('_', ' ')} x4"]
    headers += [f"AI:\n{twin_id.replace('_', ' ')} x4"] if robust else []
    headers += ["photo itself\nat 128x128"]
    return _grid(headers, rows, "Real low-quality photos (no ground truth)")


def degraded_montage(faces_dir: Path, scale: int, count: int) -> Image.Image | None:
    """Damaged inputs through bicubic, the clean-trained models and their robust variants."""
    from training import degrade as dg

    paths = sorted(p for p in faces_dir.iterdir() if p.suffix.lower() == ".png")
    installed = {e.id for e in select_models("all", scale, None)}
    entries = [registry.get("bicubic")]
    for e in registry.MODELS:
        if e.variant == "robust" and e.id in installed:
            entries += [registry.get(e.twin), e] if e.twin in installed else [e]
    if len(entries) == 1:
        return None
    models = {e.id: weights.load(e, scale, "cpu") for e in entries}
    step = max(1, len(paths) // count)
    rows, names = [], []
    for i in range(count):
        k = i * step
        family = dg.DEGRADED[i % len(dg.DEGRADED)]
        hr = np.asarray(Image.open(paths[k]).convert("RGB"))
        lr = dg.family_lr(hr, scale, family, k)  # the benchmark's LR of face k
        rows.append([lr] + [models[e.id].run(lr) for e in entries] + [hr])
        names.append(family)
    headers = [f"damaged input\n{TILE // scale}px LR"] + [_label(e) for e in entries]
    headers += ["original\n128x128 HR"]
    return _grid(headers, rows, f"x{scale}, degraded input, rows: {', '.join(names)}")


def restore_montage(faces_dir: Path, count: int, weights_dir: Path | None = None):
    """x1: damaged faces at their own size, restored; None if no restoration file is installed."""
    from training import degrade as dg

    entries = [e for e in select_models("all", 1, weights_dir) if e.restores]
    if not entries:
        return None
    models = {e.id: weights.load(e, 1, "cpu", weights_dir) for e in entries}
    paths = sorted(p for p in faces_dir.iterdir() if p.suffix.lower() == ".png")
    step = max(1, len(paths) // count)
    q = TILE // 4

    def zoom(img: np.ndarray) -> np.ndarray:  # the centre 64 px, each pixel a 2x2 block
        return np.repeat(np.repeat(img[q : TILE - q, q : TILE - q], 2, 0), 2, 1)

    rows, names = [], []
    for i in range(count):
        k = i * step
        family = dg.DEGRADED[i % len(dg.DEGRADED)]
        hr = np.asarray(Image.open(paths[k]).convert("RGB"))
        damaged = dg.family_lr(hr, 1, family, k)  # the x1 benchmark's input of face k
        row = [damaged]
        for e in entries:
            out = models[e.id].restore(damaged)
            diff = np.abs(out.astype(np.int16) - damaged.astype(np.int16)) * 8
            row += [out, zoom(damaged), zoom(out), np.clip(diff, 0, 255).astype(np.uint8)]
        rows.append(row + [hr])
        names.append(family)
    headers = ["damaged input\n128 px (x1)"]
    for e in entries:
        label = _label(e).replace("\n", " ")
        headers += [f"{label}\nx1, nothing enlarged", "input centre\n2x blocks",
                    "restored centre\n2x blocks", "|restored - input|\nx8"]
    headers += ["original\n128x128 HR"]
    return _grid(headers, rows, f"x1 restore at the native size, rows: {', '.join(names)}")


def best_x4(bench: Path) -> str:
    """The learned model with the highest PSNR in the x4 quality benchmark."""
    results = json.loads(bench.read_text())
    learned = {k: v for k, v in results.items() if not registry.get(k).is_baseline}
    return max(learned, key=lambda k: learned[k]["psnr"])


def write_realworld(args: argparse.Namespace) -> None:
    best = args.best or best_x4(REPO / "benchmarks" / "quality_x4.json")
    path = args.out / "montage_realworld.png"
    realworld_montage(args.realworld, best, 2).save(path, optimize=True)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, required=True, help="aligned 128x128 test faces")
    parser.add_argument("--realworld", type=Path, default=None)
    parser.add_argument("--best", default=None,
                        help="model id for the real photos (x4); default: the learned model with "
                             "the highest PSNR in benchmarks/quality_x4.json")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "montage")
    parser.add_argument("--only-degraded", action="store_true",
                        help="only the degraded-input montages")
    parser.add_argument("--only-restore", action="store_true",
                        help="only the x1 restore montage")
    parser.add_argument("--only-realworld", action="store_true",
                        help="only the real low-quality photos montage (needs --realworld)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights folder for the x1 restore montage (default: the app's)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only_realworld:
        if not args.realworld:
            parser.error("--only-realworld needs --realworld")
        write_realworld(args)
        return 0
    image = restore_montage(args.faces, 8, args.weights)
    if image is not None:
        path = args.out / "montage_restore_x1.png"
        image.save(path, optimize=True)
        print(f"wrote {path}")
    if args.only_restore:
        return 0
    for scale in (4, 8):  # x2: only S1 and S4 have robust files there
        image = degraded_montage(args.faces, scale, 8)
        if image is not None:  # WebP 95: a fifth of the PNG's bytes (--out elsewhere for PNG)
            path = args.out / f"montage_degraded_x{scale}.webp"
            image.save(path, quality=95, method=6)
            print(f"wrote {path}")
    if args.only_degraded:
        return 0
    for scale in (4, 8):
        path = args.out / f"montage_x{scale}.png"
        held_out_montage(args.faces, scale, args.count).save(path, optimize=True)
        print(f"wrote {path}")
        path = args.out / f"montage_gan_x{scale}.png"
        gan_montage(args.faces, scale, args.count).save(path, optimize=True)
        print(f"wrote {path}")
    if args.realworld:
        write_realworld(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
