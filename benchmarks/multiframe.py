"""Multi-frame fusion benchmark: does fusing 8 frames of a clip beat the best single frame?

For each held-out HR face (128x128 aligned, ``--faces``; default the 200 test faces of the face
cache) a short clip is synthesised the way a CCTV camera would record a face moving a little:

* the face is reflect-padded into a 256x256 HR scene (so the frame has context, and motion
  brings no black borders);
* per frame (seeded per face): a random shift, uniform +-1 LR pixel in x and y (sub-pixel
  positions), and a rotation uniform +-2 degrees about the scene's centre (bicubic warp);
* the project's x4 degradation (:func:`engine.imaging.downscale`, antialiased bicubic): 64x64
  LR frames in which the aligned face spans 32 px, as the x4 models expect;
* sensor noise: Gaussian, sigma ``--noise`` (3) 8-bit levels, per pixel and channel;
* H.264 (libx264 through PyAV, yuv420p, 25 fps, ``--bpp`` bits per pixel, I-frame every 12).

Then the app's own pipeline: :func:`engine.video.open_clip`, :func:`engine.tracks.track_faces`
(dlib HOG + 68 landmarks on every frame), the track's best frame by quality score is the
reference, :func:`engine.fusion.fuse` registers the track's frames (8) to it and fuses them.
Four outputs, all in the reference frame's canonical framing:

* single frame, bicubic x4; single frame + model;
* fused, bicubic x4 ("fusion alone"); fused + model.

Ground truth: the HR scene rendered through the *same* framing (the synthetic motion is known,
so the HR face is warped exactly where the pipeline's alignment of the reference frame put the
face), so the scores measure the pixels, not landmark jitter. PSNR on RGB 128x128; identity
distance = dlib ResNet descriptor distance to the ground truth (as ``training.evaluate``).
Also "clean LR + model": the ground truth shrunk by the project's degradation then the model
(no noise, no codec): the ceiling fusion could reach.

Usage: ``nice -n 10 python benchmarks/multiframe.py [--limit 50] [--md benchmarks/multiframe.md]``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import faces as facelib  # noqa: E402
from engine import fusion, imaging, tracks, video  # noqa: E402
from engine.enhance import Enhancer  # noqa: E402

DEFAULT_FACES = ROOT.parent / "wt-issue-24" / "cache" / "faces" / "test_png"
SCALE = 4
PAD = 64
FPS = 25
_LR_SIZE = facelib.HR_SIZE // SCALE


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
        cores = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("CPU(s)")
        )
        return f"{name}, {cores} cores"
    except Exception:
        return platform.processor() or "unknown CPU"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else 10 * math.log10(255.0**2 / err)


def scene_matrix(rng: np.random.Generator, size: int) -> np.ndarray:
    """Canvas -> HR frame: rotation about the centre and a shift (HR pixels)."""
    angle = rng.uniform(-2.0, 2.0)
    dx, dy = rng.uniform(-1.0, 1.0, 2) * SCALE
    c = (size - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    m[:, 2] += (dx, dy)
    return m


def make_clip(hr: np.ndarray, path: Path, n: int, seed: int, noise: float, bpp: float):
    """Write the synthetic clip; returns the canvas and each frame's canvas -> HR frame matrix."""
    rng = np.random.default_rng(seed)
    canvas = cv2.copyMakeBorder(hr, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT_101)
    size = canvas.shape[0]
    matrices, frames = [], []
    for _ in range(n):
        m = scene_matrix(rng, size)
        hr_frame = cv2.warpAffine(
            canvas, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
        )
        lr = imaging.downscale(hr_frame, SCALE).astype(np.float32)
        lr += rng.normal(0.0, noise, lr.shape)
        frames.append(np.clip(np.rint(lr), 0, 255).astype(np.uint8))
        matrices.append(m)
    side = size // SCALE
    rate = int(bpp * side * side * FPS)
    video.encode_clip(path, frames, fps=FPS, bit_rate=rate, gop=12)
    return canvas, matrices, frames


def ground_truth(canvas: np.ndarray, scene: np.ndarray, lr_matrix: np.ndarray) -> np.ndarray:
    """The HR scene seen through the pipeline's framing: canvas -> HR frame -> LR frame -> crop."""
    down = np.array([[1 / SCALE, 0, 0.5 / SCALE - 0.5], [0, 1 / SCALE, 0.5 / SCALE - 0.5]])
    crop = fusion._scale_matrix(lr_matrix, facelib.HR_SIZE / _LR_SIZE)
    full = fusion._compose(crop, fusion._compose(down, scene))
    return cv2.warpAffine(
        canvas,
        full,
        (facelib.HR_SIZE, facelib.HR_SIZE),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def identity(img: np.ndarray, ref_lm: np.ndarray, ref_desc: np.ndarray) -> float:
    from training.evaluate import descriptor

    return float(np.linalg.norm(descriptor(img, ref_lm) - ref_desc))


def run(args: argparse.Namespace, bpp: float) -> dict:
    from training.evaluate import descriptor

    paths = sorted(Path(args.faces).glob("*.png"))
    if args.limit:
        paths = paths[: args.limit]
    enhancer = Enhancer(device="cpu")
    models = {m: enhancer.model(m, SCALE) for m in args.models}
    rows = []
    failures = []
    tmp = Path(tempfile.mkdtemp(prefix="multiframe_"))
    for k, path in enumerate(paths):
        hr = np.array(Image.open(path).convert("RGB"))
        clip_path = tmp / f"{k:03d}.mp4"
        canvas, scenes, _ = make_clip(hr, clip_path, args.frames, 1000 + k, args.noise, bpp)
        t0 = time.perf_counter()
        with video.open_clip(clip_path) as clip:
            lr_psnr = None
            found = tracks.track_faces(clip)
            try:
                track = tracks.choose_track(found)
            except facelib.FaceError:
                failures.append((path.name, "no face found in any frame"))
                continue
            if len(track.faces) < 3:
                failures.append((path.name, f"face found in {len(track.faces)} frame(s) only"))
                continue
            t1 = time.perf_counter()
            ranked = track.ranked()
            best = ranked[0].frame_index
            decoded = {f.index: f for f in clip.iter_frames()}
            inputs = [
                fusion.FrameInput(
                    decoded[tf.frame_index].rgb, tf.face, decoded[tf.frame_index].record()
                )
                for tf in track.faces
            ]
            ref_pos = track.frames.index(best)
            t2 = time.perf_counter()
            fused = fusion.fuse(inputs, _LR_SIZE, reference=ref_pos, method=args.method)
            t_fuse = time.perf_counter() - t2
            lr_psnr = [
                psnr(
                    decoded[i].rgb,
                    imaging.downscale(
                        cv2.warpAffine(
                            canvas,
                            scenes[i],
                            canvas.shape[:2][::-1],
                            flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT_101,
                        ),
                        SCALE,
                    ),
                )
                for i in range(len(clip))
            ]
        gt = ground_truth(canvas, scenes[best], fused.aligned.matrix)
        try:
            gt_lm = facelib.aligned_landmarks(gt)
            gt_desc = descriptor(gt, gt_lm)
        except facelib.FaceError:
            gt_lm = None
        row = {
            "face": path.name,
            "frames_tracked": len(track.faces),
            "frames_used": len(fused.used),
            "reference": best,
            "lr_frame_psnr": float(np.mean(lr_psnr)),
            "registration_residual": float(
                np.mean([r.residual for r in fused.registrations if r.rejected is None])
            ),
            "seconds_detect_track": t1 - t0,
            "seconds_fuse": t_fuse,
        }
        outputs = {
            "single_bicubic": imaging.upscale(fused.single, SCALE, "bicubic"),
            "fused_bicubic": imaging.upscale(fused.lr, SCALE, "bicubic"),
        }
        if fused.fine is not None and fused.fine.shape[0] == facelib.HR_SIZE:
            outputs["fused_reconstruction"] = fused.fine
        clean = imaging.downscale(gt, SCALE)
        for mid, model in models.items():
            outputs[f"single_{mid}"] = model.run(fused.single)
            t = time.perf_counter()
            outputs[f"fused_{mid}"] = model.run(fused.lr)
            row[f"seconds_model_{mid}"] = time.perf_counter() - t
            outputs[f"clean_{mid}"] = model.run(clean)
        for name, img in outputs.items():
            row[f"psnr_{name}"] = psnr(img, gt)
            if gt_lm is not None:
                row[f"id_{name}"] = identity(img, gt_lm, gt_desc)
        rows.append(row)
        if args.save_examples and k < args.save_examples:
            extra = [outputs["fused_reconstruction"]] if "fused_reconstruction" in outputs else []
            strip = np.concatenate(
                [gt, outputs["single_bicubic"], outputs["fused_bicubic"], *extra]
                + [outputs[f"single_{m}"] for m in models]
                + [outputs[f"fused_{m}"] for m in models],
                axis=1,
            )

            Image.fromarray(strip).save(
                Path(args.save_examples_dir) / f"example_{bpp:g}bpp_{k:02d}.png"
            )
        print(
            f"{k + 1}/{len(paths)} {path.name}: "
            + " ".join(f"{key[5:]} {v:.2f}" for key, v in row.items() if key.startswith("psnr_")),
            file=sys.stderr,
            flush=True,
        )
        clip_path.unlink()
    return {"rows": rows, "failures": failures, "args": vars(args) | {"faces": str(args.faces)}}


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "face"]
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def _gain(rows: list[dict], x: str, y: str) -> tuple[float, float, float]:
    d = np.array([r[x] - r[y] for r in rows if x in r and y in r])
    return float(d.mean()), float(np.percentile(d, 10)), float((d > 0).mean() * 100)


def markdown(reports: list[dict], cpu: str, command: str) -> str:
    """One section per bit rate, after a summary of the gains against the aims."""
    a = reports[0]["args"]
    models = a["models"]
    n = len(reports[0]["rows"])
    lines = [
        "# Multi-frame fusion benchmark (x4)",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Machine: **{cpu}** (CPU only; shared with other jobs, so times are upper bounds).",
        "",
        f"Faces: the first {n} (sorted by name) of the 200 held-out test faces "
        f"(`{Path(a['faces']).parent.name}/{Path(a['faces']).name}` of the face cache). Each "
        f"becomes a {a['frames']}-frame clip: per frame a random shift of +-1 LR pixel in x and "
        "y and a rotation of +-2 degrees (seeded per face), the project's x4 degradation "
        "(antialiased bicubic) to 64x64 frames in which the aligned face spans 32 px, Gaussian "
        f"sensor noise sigma {a['noise']} levels, then H.264 (libx264 through PyAV, yuv420p, "
        "25 fps, an I-frame every 12 frames, so the 8 frames share one I-frame) at the bit rate "
        "given in bits per pixel per frame.",
        "",
        "Pipeline (the app's): `engine.video.open_clip` -> `engine.tracks.track_faces` (dlib HOG "
        "and 68 landmarks on every frame) -> the track's best frame by quality score is the "
        "reference -> `engine.fusion.fuse` (landmark fit, ECC refinement at 128 px, outlier "
        f"rejection, `{a['method']}`) -> model. *Single frame* = the reference frame alone, "
        "aligned the same way. *Fusion alone* = the fused face enlarged by bicubic (the aim's "
        "definition) and, for `reconstruct`, the multi-frame reconstruction at 128 px itself. "
        "Ground truth = the HR scene seen through the reference frame's framing (the synthetic "
        "motion is known), so scores measure pixels, not landmark jitter. PSNR: RGB, 128x128. "
        "Identity distance: dlib ResNet descriptors, output vs ground truth (as "
        "`training.evaluate`; lower is better, same person below 0.6).",
        "",
        "## Against the aims, per bit rate",
        "",
        "| bit/pixel | decoded frame PSNR vs clean LR (dB) | fusion alone (bicubic of fused) - single bicubic | "
        "reconstruction - single bicubic | "
        + " | ".join(f"fused+{m} - single+{m}" for m in models)
        + " | "
        + " | ".join(f"id. dist. {m}: single -> fused" for m in models)
        + " |",
        "|---|---|---|---|" + "---|" * (2 * len(models)),
    ]
    for rep in reports:
        rows = rep["rows"]
        s = summarise(rows)
        cells = [f"{rep['bpp']:g}", f"{s['lr_frame_psnr']:.2f}"]
        g, _, win = _gain(rows, "psnr_fused_bicubic", "psnr_single_bicubic")
        cells.append(f"**{g:+.2f} dB** ({win:.0f}% of faces better)")
        if "psnr_fused_reconstruction" in s:
            g, _, win = _gain(rows, "psnr_fused_reconstruction", "psnr_single_bicubic")
            cells.append(f"**{g:+.2f} dB** ({win:.0f}%)")
        else:
            cells.append("-")
        for m in models:
            g, _, win = _gain(rows, f"psnr_fused_{m}", f"psnr_single_{m}")
            cells.append(f"**{g:+.2f} dB** ({win:.0f}%)")
        for m in models:
            cells.append(
                f"{s.get(f'id_single_{m}', float('nan')):.3f} -> {s.get(f'id_fused_{m}', float('nan')):.3f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Aims: fusion of 8 frames + model at least +1.5 dB over the best single frame through "
        "the same model; fusion alone at least +1.0 dB over single-frame bicubic; identity "
        "distance lower than single-frame.",
    ]
    for rep in reports:
        rows = rep["rows"]
        s = summarise(rows)
        skipped = rep["failures"]
        lines += [
            "",
            f"## {rep['bpp']:g} bit/pixel",
            "",
            f"Decoded frames vs the noise-free LR frames: {s['lr_frame_psnr']:.2f} dB. Frames "
            f"tracked per clip {s['frames_tracked']:.2f}, used after outlier rejection "
            f"{s['frames_used']:.2f}; mean registration residual {s['registration_residual']:.2f} "
            f"grey levels. Faces scored: {len(rows)}"
            + (
                f"; skipped: {len(skipped)} ({'; '.join(f'{a}: {b}' for a, b in skipped)})"
                if skipped
                else ""
            )
            + ".",
            "",
            "| input | bicubic x4 PSNR | "
            + " | ".join(f"{m} PSNR" for m in models)
            + " | bicubic id. dist. | "
            + " | ".join(f"{m} id. dist." for m in models)
            + " |",
            "|---|---|" + "---|" * len(models) + "---|" + "---|" * len(models),
        ]

        def cell(key: str, fmt: str = ".2f", s=s) -> str:
            return format(s[key], fmt) if key in s else "-"

        for label, pre in (
            ("best single frame (reference)", "single"),
            (f"fusion of {a['frames']} frames", "fused"),
        ):
            lines.append(
                f"| {label} | {cell(f'psnr_{pre}_bicubic')} | "
                + " | ".join(cell(f"psnr_{pre}_{m}") for m in models)
                + f" | {cell(f'id_{pre}_bicubic', '.4f')} | "
                + " | ".join(cell(f"id_{pre}_{m}", ".4f") for m in models)
                + " |"
            )
        if "psnr_fused_reconstruction" in s:
            lines.append(
                f"| multi-frame reconstruction at 128 px (no model) | {cell('psnr_fused_reconstruction')} | "
                + " | ".join("-" for _ in models)
                + f" | {cell('id_fused_reconstruction', '.4f')} | "
                + " | ".join("-" for _ in models)
                + " |"
            )
        lines.append(
            "| clean LR (no noise, no codec: the ceiling) | - | "
            + " | ".join(cell(f"psnr_clean_{m}") for m in models)
            + " | - | "
            + " | ".join(cell(f"id_clean_{m}", ".4f") for m in models)
            + " |"
        )
        lines += [
            "",
            f"Seconds per fused face ({cpu}): decode + detect + landmark + track "
            f"{a['frames']} frames {s['seconds_detect_track']:.2f} s; register + fuse "
            f"{s['seconds_fuse']:.2f} s; "
            + "; ".join(f"{m} {s[f'seconds_model_{m}']:.2f} s" for m in models)
            + ".",
        ]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--noise", type=float, default=3.0)
    parser.add_argument("--bpp", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--method", default="reconstruct", choices=fusion.METHODS)
    parser.add_argument("--models", nargs="+", default=["s4_idrn", "s2_rafsr"])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--save-examples", type=int, default=0)
    parser.add_argument("--save-examples-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    reports = []
    for bpp in args.bpp:
        report = run(args, bpp)
        report["bpp"] = bpp
        reports.append(report)
    cpu = cpu_model()
    command = "nice -n 10 python benchmarks/multiframe.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "reports": reports}, indent=1, default=str))
    text = markdown(reports, cpu, command)
    if args.md:
        args.md.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
