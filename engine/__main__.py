"""Command line: ``python -m engine models | enhance | batch`` (also installed as ``ffe``).

``models`` lists every model with its weights status per scale. ``enhance`` runs one model on
every face of an image (or one face, or a hand-given box) and writes, into a separate folder,
the SR face of each face, the whole image enlarged with the faces pasted in, and a provenance
JSON; the PNGs carry the provenance and the AI label in their text chunks. Inputs are never
touched: the output folder may not be the input's own folder (unless ``--allow-input-dir``)
and existing files are not overwritten (unless ``--overwrite``). ``batch`` (folders) is
defined in :mod:`engine.batch`.

Exit status: 0 success, 2 bad input or usage (unreadable image, no face, unknown model, missing
or invalid weights, refused output folder or existing files), 1 when writing fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engine import __version__, export, provenance, registry, weights

EXIT_OK = 0
EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """A problem with what was asked for; the message is shown and the exit status is 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ffe", description="Forensic Face Enhancer: face super-resolution with provenance."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the models and their weights per scale")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=_cmd_models)

    enhance = commands.add_parser("enhance", help="enhance the faces of one image")
    enhance.add_argument("image", type=Path, help="the input image (never modified)")
    enhance.add_argument("--model", required=True, help="model id (see `models`)")
    enhance.add_argument(
        "--scale",
        type=parse_scale,
        default="auto",
        help="'auto' (default: chosen per face from its native resolution, never shrinking it) "
        "or an enlargement factor, e.g. 4 or 8",
    )
    enhance.add_argument(
        "--allow-shrink",
        action="store_true",
        help="run a forced --scale even where it shrinks a face before the model sees it "
        "(recorded as evidence_shrink; such faces are not pasted into the full image)",
    )
    enhance.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (per face: native frame, "
        "inter-ocular distance, scale used, shrink factor, outputs) instead of file names",
    )
    enhance.add_argument(
        "--out", required=True, type=Path, help="output folder (created if needed)"
    )
    enhance.add_argument(
        "--face", type=int, default=None, help="only face K (0 = leftmost detected face)"
    )
    enhance.add_argument("--detector", choices=("hog", "cnn"), default="hog")
    enhance.add_argument(
        "--box", default=None, help="x0,y0,x1,y1: enhance the face in this box (no detection)"
    )
    enhance.add_argument("--device", default=None, help="cpu or cuda[:N] (default: automatic)")
    enhance.add_argument(
        "--allow-input-dir", action="store_true", help="allow writing into the input's folder"
    )
    enhance.add_argument("--overwrite", action="store_true", help="replace existing output files")
    enhance.set_defaults(func=_cmd_enhance)

    from engine import batch  # folder runs: arguments and handler live with the batch code

    batch.add_parser(commands)

    from engine import video_cli  # clips: arguments and handler live with the video code

    video_cli.add_parser(commands)

    verify = commands.add_parser("verify-log", help="check a case log's hash chain")
    verify.add_argument("log", type=Path, help="the case_log.jsonl file")
    verify.set_defaults(func=_cmd_verify_log)
    return parser


def parse_scale(text: str) -> int | str:
    """``--scale``: "auto" or a whole factor (argparse type)."""
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number, got {text!r}"
        ) from None


def _cmd_verify_log(args: argparse.Namespace) -> int:
    from engine import caselog

    return caselog.verify_main(args.log)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ffe: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


# --------------------------------------------------------------------------- models


def _cmd_models(args: argparse.Namespace) -> int:
    rows = []
    for entry in registry.MODELS:
        statuses = {str(s): weights.status(entry, s) for s in entry.scales}
        rows.append(
            {
                "id": entry.id,
                "paper": entry.paper,
                "name": entry.label,
                "title": entry.title,
                "variant": entry.variant,
                "input": entry.input,
                "citation": entry.citation,
                "scales": statuses,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        scales = ", ".join(f"x{s} {state}" for s, state in r["scales"].items())
        print(f"{r['id']:<{width}}  {r['paper']:<8}  {r['name']}")
        print(f"{'':<{width}}  {'':<8}  {scales}")
    print(f"weights folder: {weights.get_weights_dir()}")
    return EXIT_OK


# --------------------------------------------------------------------------- enhance


def _parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise UsageError(f"--box must be four numbers x0,y0,x1,y1, got {text!r}")
    return values  # type: ignore[return-value]


def _cmd_enhance(args: argparse.Namespace) -> int:
    from engine import faces as facelib
    from engine import io, resolution
    from engine.enhance import Enhancer, paste_all

    # What was asked for, checked before any heavy work.
    try:
        entry = registry.get(args.model)
        scale = args.scale if args.scale == "auto" else registry.check_scale(entry, args.scale)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    box = _parse_box(args.box) if args.box is not None else None

    image: Path = args.image
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if out.resolve() == image.resolve().parent and not args.allow_input_dir:
        raise UsageError(
            f"--out {out} is the input image's own folder; choose another folder "
            "(or pass --allow-input-dir)"
        )

    try:
        still = io.load(image)
    except io.ImageLoadError as exc:
        raise UsageError(str(exc)) from None

    try:
        enhancer = Enhancer(device=args.device)
        if scale != "auto":
            enhancer.model(entry.id, scale)
        elif not enhancer.installed_scales(entry.id):
            raise UsageError(f"{entry.label} has no installed weights at any scale")
    except (ValueError, weights.WeightsError) as exc:  # bad device, missing/invalid weights
        raise UsageError(str(exc)) from None

    try:
        if box is not None:
            chosen = [(0, facelib.face_from_box(still.rgb, box))]
        else:
            found = facelib.detect(still.rgb, method=args.detector)
            if not found:
                raise UsageError(
                    f"no face found in {image.name} (try --detector cnn, or give --box)"
                )
            chosen = list(enumerate(found))
            if args.face is not None:
                if not 0 <= args.face < len(found):
                    raise UsageError(
                        f"--face {args.face}: {image.name} has {len(found)} face(s), "
                        f"numbered 0 to {len(found) - 1}"
                    )
                chosen = [chosen[args.face]]
    except facelib.FaceError as exc:
        raise UsageError(str(exc)) from None

    # The plan per face first: a forced scale that shrinks a face stops here, before any work.
    plans: dict[int, resolution.Plan] = {}
    for k, face in chosen:
        try:
            plans[k] = enhancer.plan(face, entry.id, scale, allow_shrink=args.allow_shrink)
        except resolution.ShrinkRefused as exc:
            raise UsageError(
                f"face {k}: {exc} Choose --scale auto, or pass --allow-shrink to proceed."
            ) from None
        if plans[k].shrinks:
            print(f"ffe: warning: face {k}: {plans[k].message}", file=sys.stderr)

    stem = image.stem
    run_scale = scale if scale == "auto" else int(scale)
    face_paths = {
        k: out / export.output_name(stem, entry.id, _scale_tag(plans[k]), "face", k)
        for k, _ in chosen
        if plans[k].runs
    }
    full_path = out / export.output_name(stem, entry.id, run_scale, "full")
    prov_path = (
        out / f"{stem}_{entry.id}_{'auto' if scale == 'auto' else f'x{scale}'}_provenance.json"
    )
    pasteable = any(p.runs and not p.shrinks for p in plans.values())
    targets = [*face_paths.values(), *([full_path] if pasteable else []), prov_path]
    if not face_paths:
        targets = []
    existing = [p.name for p in targets if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"{', '.join(existing)} already exist(s) in {out}; pass --overwrite to replace"
        )

    parameters = {
        "detector": "manual box" if box is not None else args.detector,
        "requested_box": list(box) if box is not None else None,
    }
    results = []
    for k, face in chosen:
        if not plans[k].runs:
            print(f"ffe: face {k}: nothing run: {plans[k].message}", file=sys.stderr)
            continue
        try:
            results.append(
                enhancer.enhance(
                    still,
                    face,
                    entry.id,
                    scale,
                    face_index=k,
                    parameters=parameters,
                    allow_shrink=args.allow_shrink,
                )
            )
        except facelib.FaceError as exc:
            raise UsageError(f"face {k}: {exc}") from None
    full = paste_all(still.rgb, results) if pasteable else None

    written: list[Path] = []
    try:
        if results:
            out.mkdir(parents=True, exist_ok=True)
        for result in results:
            path = face_paths[result.face_index]
            sha = io.save_png(path, result.sr, provenance.png_text(result.provenance))
            provenance.add_output(result.provenance, "face", path.resolve(), sha)
        if results:
            document = provenance.bundle([r.provenance for r in results])
            document["not_enhanced"] = [
                {"face_index": k, "resolution": p.to_dict()} for k, p in plans.items() if not p.runs
            ]
            if full is not None:
                sha = io.save_png(full_path, full, provenance.png_text(document))
                for result in results:
                    if not result.plan.shrinks:
                        provenance.add_output(result.provenance, "full", full_path.resolve(), sha)
                provenance.add_output(document, "full", full_path.resolve(), sha)
            for result in results:
                path = face_paths[result.face_index]
                provenance.add_output(document, "face", path.resolve(), _output_sha(result, path))
            io.write_bytes_atomic(prov_path, provenance.to_json(document).encode("utf-8"))
    except OSError as exc:  # io.OutputError and any other failure to write
        print(f"ffe: error: {exc}", file=sys.stderr)
        return EXIT_WRITE_FAILED

    written = [p for p in targets if p.exists()]
    if args.json:
        by_face = {r.face_index: r for r in results}
        report = {
            "input": {"path": str(image), "sha256": still.sha256},
            "model": entry.id,
            "requested_scale": scale if scale == "auto" else f"x{scale}",
            "faces": [
                {"face_index": k}
                | plans[k].to_dict()
                | {"output": str(face_paths[k]) if k in by_face else None}
                for k, _ in chosen
            ],
            "outputs": [str(p) for p in written],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for path in written:
            print(path)
    return EXIT_OK


def _scale_tag(plan) -> str:
    """The part of an output name that says how the face was enlarged: ``x4``, or ``native75``
    for a face run at its native 75 px (see :mod:`engine.resolution`)."""
    if plan.mode == "native":
        return f"native{plan.lr_size}"
    return f"x{plan.scale}"


def _output_sha(result, path: Path) -> str:
    """The SHA-256 recorded for ``path`` when it was written."""
    return next(
        o["sha256"] for o in result.provenance["outputs"] if o["path"] == str(path.resolve())
    )


if __name__ == "__main__":
    sys.exit(main())
