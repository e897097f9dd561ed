"""Command line: ``python -m engine models | enhance | batch`` (also installed as ``ffe``).

``models`` lists every model with its weights status per scale. ``enhance`` runs one model on
every face of an image (or one face, or a hand-given box) and writes, into a separate folder,
the SR face of each face, the whole image enlarged with the faces pasted in, and a provenance
JSON; the PNGs carry the provenance and the AI label in their text chunks. Inputs are never
touched: the output folder may not be the input's own folder (unless ``--allow-input-dir``)
and existing files are not overwritten (unless ``--overwrite``); a failed write removes what
it wrote. Images carry the visible label strip (and the full image an outline of each replaced
face region: :func:`engine.export.labelled`). ``batch`` runs :func:`engine.batch.run_batch` on
a folder with a text progress bar (faces only unless ``--full``); the first Ctrl-C cancels
cleanly (exit 130, summary kept). Both append to the case log (``--case-log``, default the
app's: :func:`engine.caselog.default_case_dir`), which is checked before any work.

Exit status: 0 success, 2 bad input or usage (unreadable image, no face, unknown model, missing
or invalid weights, refused output folder or existing files), 1 when writing fails, 3 on a
fault in the program itself (one line naming it; ``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine import __version__, export, provenance, registry, weights

if TYPE_CHECKING:
    from engine.batch import BatchEvent

EXIT_OK = 0
EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3  # a fault in the program, not in the input: reported, never a bare traceback


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
    enhance.add_argument(
        "--model",
        default=None,
        help="model id (see `models`); default: the one the evidence calls for (the robust "
        "variant for compressed, noisy, video or lossless input, whose past is unknown; "
        "clean-trained for a JPEG of quality 95 or better with little noise), said on stderr "
        "and recorded in the provenance as model_choice",
    )
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
    enhance.add_argument(
        "--detector",
        choices=("auto", "hog", "cnn"),
        default="auto",
        help="auto (default, as in the app): HOG, then the slower CNN when HOG finds no face",
    )
    enhance.add_argument(
        "--box", default=None, help="x0,y0,x1,y1: enhance the face in this box (no detection)"
    )
    enhance.add_argument("--device", default=None, help="cpu or cuda[:N] (default: automatic)")
    enhance.add_argument(
        "--allow-input-dir", action="store_true", help="allow writing into the input's folder"
    )
    enhance.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_case_log_arguments(enhance)
    enhance.set_defaults(func=_cmd_enhance)

    add_batch_parser(commands)

    from engine import video_cli  # clips: arguments and handler live with the video code

    video_cli.add_parser(commands)

    verify = commands.add_parser("verify-log", help="check a case log's hash chain")
    verify.add_argument("log", type=Path, help="the case_log.jsonl file")
    verify.set_defaults(func=_cmd_verify_log)
    return parser


def _add_case_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--case-log",
        metavar="PATH",
        default=None,
        help="the case log to append to (a case_log.jsonl file or its folder; default: the "
        "app's, i.e. $FFE_CASE_DIR or the folder set in File > Settings)",
    )
    parser.add_argument(
        "--examiner", default=None, help="the examiner named in the case log (default: user)"
    )


def _open_case_log(args: argparse.Namespace):
    """The run's :class:`engine.caselog.CaseLog`, checked writable before any work."""
    from engine import caselog

    log = caselog.CaseLog(
        caselog.cli_log_path(getattr(args, "case_log", None)),
        examiner=getattr(args, "examiner", None),
    )
    try:
        log.check_writable()
    except caselog.CaseLogError as exc:
        raise UsageError(f"case log: {exc}") from None
    return log


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
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the analyst gets a sentence; -v keeps the traceback
        logging.getLogger("ffe").debug("internal error", exc_info=True)
        print(
            f"ffe: internal error in '{args.command}': {type(exc).__name__}: {exc}. The input "
            "file was not changed. Run again with -v for the details to report.",
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exc()
        return EXIT_INTERNAL


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
    for entry, r in zip(registry.MODELS, rows, strict=True):
        states = []
        for s, state in r["scales"].items():
            # a shared file that does not serve this scale is not a file gone missing: say so
            why = weights.uncovered_reason(entry, int(s)) if state == "missing" else None
            states.append(f"x{s} {state}" + (f" ({why})" if why else ""))
        scales = ", ".join(states)
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
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"--box must be four finite numbers x0,y0,x1,y1, got {text!r}")
    return values  # type: ignore[return-value]


def _check_box(box: tuple[float, float, float, float], width: int, height: int) -> None:
    """A hand-given box must lie inside the image and have an inside (x0 < x1, y0 < y1)."""
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise UsageError(
            f"--box {','.join(f'{v:g}' for v in box)} is not inside the {width}x{height} image "
            "(need 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height)"
        )


def _same_folder(a: Path, b: Path) -> bool:
    """True when two folders are one, however reached (symbolic links, ``..``, bind mounts)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _evidence_folders(image: Path) -> list[Path]:
    """The folders the evidence is in: the one named, and where a link to the file points."""
    named = Path(os.path.abspath(image)).parent
    return [named, image.resolve().parent]


def _remove_written(paths: Sequence[Path]) -> None:
    """Remove this run's partial outputs after a failure, so a rerun is not blocked by them."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"ffe: warning: could not remove partial output {path}: {exc}", file=sys.stderr)


def _recommended_entry(enhancer: Any, still: Any, scale: int | str) -> registry.ModelEntry:
    """No --model: the model the evidence calls for (engine.evidence_quality), said on stderr."""
    start = registry.default_model_id()
    choice = enhancer.model_choice(still, start, scale)
    entry = registry.get(choice["recommended"])
    quality = still.evidence.summary() if still.evidence is not None else "not assessed"
    print(
        f"ffe: no --model given: using {entry.id} ({entry.label}). Evidence: {quality}. "
        f"{choice['reason'].split(' The analyst chose')[0]}",
        file=sys.stderr,
    )
    return entry


def _cmd_enhance(args: argparse.Namespace) -> int:
    from engine import caselog, io, resolution
    from engine import faces as facelib
    from engine.enhance import Enhancer, paste_all, paste_scale

    # What was asked for, checked before any heavy work.
    try:
        entry = registry.get(args.model) if args.model is not None else None
        if entry is not None and args.scale != "auto":
            registry.check_scale(entry, args.scale)
        scale = args.scale if args.scale == "auto" else int(args.scale)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    box = _parse_box(args.box) if args.box is not None else None
    case_log = _open_case_log(args)

    image: Path = args.image
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if not args.allow_input_dir and any(_same_folder(out, f) for f in _evidence_folders(image)):
        raise UsageError(
            f"--out {io.display_path(out)} is the input image's own folder; choose another "
            "folder (or pass --allow-input-dir)"
        )

    try:
        still = io.load(image)
    except io.ImageLoadError as exc:
        raise UsageError(str(exc)) from None
    if box is not None:
        _check_box(box, still.width, still.height)
    name = io.display_path(image.name)

    try:
        enhancer = Enhancer(device=args.device)
        if entry is None:
            entry = _recommended_entry(enhancer, still, scale)
        if scale != "auto":
            enhancer.model(entry.id, scale)
        elif not enhancer.installed_scales(entry.id):
            raise UsageError(f"{entry.label} has no installed weights at any scale")
    except (ValueError, weights.WeightsError) as exc:  # bad device, missing/invalid weights
        raise UsageError(str(exc)) from None

    try:
        if box is not None:
            chosen = [(0, facelib.face_from_box(still.rgb, box))]
            for text in chosen[0][1].fit_warnings:  # also in the provenance
                print(f"ffe: warning: --box: {text}", file=sys.stderr)
        else:
            found, detector_used = facelib.detect_with(still.rgb, args.detector)
            if not found:
                if args.detector == "auto":
                    looked, hint = "the HOG or the CNN detector", "give --box"
                elif args.detector == "hog":
                    looked, hint = "the HOG detector", "try --detector cnn, or give --box"
                else:
                    looked, hint = "the CNN detector", "give --box"
                raise UsageError(f"no face found in {name} by {looked} ({hint})")
            chosen = list(enumerate(found))
            if args.face is not None:
                if not 0 <= args.face < len(found):
                    raise UsageError(
                        f"--face {args.face}: {name} has {len(found)} face(s), "
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

    stem = io.display_path(image.stem)
    run_scale = scale if scale == "auto" else int(scale)
    face_paths = {
        k: out / export.output_name(stem, entry.id, export.scale_tag(plans[k]), "face", k)
        for k, _ in chosen
        if plans[k].runs
    }
    full_path = out / export.output_name(stem, entry.id, run_scale, "full")
    prov_path = (
        out / f"{stem}_{entry.id}_{'auto' if scale == 'auto' else f'x{scale}'}_provenance.json"
    )
    pasteable = any(p.runs and not p.shrinks for p in plans.values())
    if pasteable:
        # Too large to build: say so before the work, write the faces, exit 0.
        factor = max(paste_scale(p) for p in plans.values() if p.runs and not p.shrinks)
        w, h = still.width * factor, still.height * factor
        if w * h > facelib.MAX_PASTE_PIXELS:
            print(
                f"ffe: full image not written: {w}x{h} pixels at x{factor} is too large; "
                "the faces are written",
                file=sys.stderr,
            )
            pasteable = False
    targets = [*face_paths.values(), *([full_path] if pasteable else []), prov_path]
    if not face_paths:
        targets = []
    existing = [p.name for p in targets if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"{', '.join(existing)} already exist(s) in {out}; pass --overwrite to replace"
        )

    parameters = {
        "detector": "manual box" if box is not None else detector_used,
        "detector_setting": None if box is not None else args.detector,  # "auto": HOG, then CNN
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
    logged: dict[int, list[dict[str, Any]]] = {r.face_index: [] for r in results}
    try:
        if results:
            out.mkdir(parents=True, exist_ok=True)
        for result in results:
            path = face_paths[result.face_index]
            written.append(path)
            picture, label_text = export.labelled(result.sr, entry)
            sha = io.save_png(path, picture, provenance.png_text(result.provenance) | label_text)
            provenance.add_output(result.provenance, "face", path.resolve(), sha)
            logged[result.face_index].append(
                caselog.output_record(path.resolve(), sha, result.sr, role="face")
            )
        if results:
            document = provenance.bundle([r.provenance for r in results])
            document["not_enhanced"] = [
                {"face_index": k, "resolution": p.to_dict()} for k, p in plans.items() if not p.runs
            ]
            if full is not None:
                written.append(full_path)
                regions = [
                    export.result_region(r, factor)
                    for r in results
                    if r.plan is None or not r.plan.shrinks
                ]
                picture, label_text = export.labelled(full, entry, regions)
                sha = io.save_png(full_path, picture, provenance.png_text(document) | label_text)
                full_record = caselog.output_record(full_path.resolve(), sha, full, role="full")
                for result in results:
                    if not result.plan.shrinks:
                        provenance.add_output(result.provenance, "full", full_path.resolve(), sha)
                        logged[result.face_index].append(full_record)
                provenance.add_output(document, "full", full_path.resolve(), sha)
            for result in results:
                path = face_paths[result.face_index]
                provenance.add_output(document, "face", path.resolve(), _output_sha(result, path))
            written.append(prov_path)
            sha = io.write_bytes_atomic(prov_path, provenance.to_json(document).encode("utf-8"))
            for outputs in logged.values():
                outputs.append(caselog.output_record(prov_path.resolve(), sha, role="provenance"))
    except OSError as exc:  # io.OutputError and any other failure to write
        _remove_written(written)
        print(f"ffe: error: {exc} (nothing of this run was kept)", file=sys.stderr)
        return EXIT_WRITE_FAILED

    # The case log: the still opened (faces found), then one "enhance" entry per face.
    try:
        case_log.append(
            "open", **caselog.open_fields(still, [f for _, f in chosen], parameters["detector"])
        )
        faces_by_index = dict(chosen)
        for result in results:
            fields = caselog.enhance_fields(
                still, faces_by_index[result.face_index], result, logged[result.face_index]
            )
            fields["details"]["command"] = "ffe enhance"
            case_log.append("enhance", **fields)
    except caselog.CaseLogError as exc:
        print(
            f"ffe: error: the outputs were written but the case log {case_log.path} could not "
            f"record them: {exc}",
            file=sys.stderr,
        )
        return EXIT_WRITE_FAILED
    print(f"ffe: case log: {io.display_path(case_log.path)}", file=sys.stderr)

    written = [p for p in targets if p.exists()]
    if args.json:
        by_face = {r.face_index: r for r in results}
        report = {
            "input": {"path": io.display_path(image), "sha256": still.sha256},
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


def _output_sha(result, path: Path) -> str:
    """The SHA-256 recorded for ``path`` when it was written."""
    return next(
        o["sha256"] for o in result.provenance["outputs"] if o["path"] == str(path.resolve())
    )


# --------------------------------------------------------------------------- batch


def add_batch_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``batch IN_DIR OUT_DIR --model ID [--model ID ...] --scale N`` to ``subparsers``."""
    from engine import batch  # imported when the parser is built: `models` stays quick

    parser = subparsers.add_parser(
        "batch",
        help="enhance every face of every image in a folder",
        description=(
            "Enhance every face of every image in IN_DIR (and its sub-folders) with each chosen "
            "model; results, provenance and summary.csv go to OUT_DIR. A run that is stopped can "
            "be restarted with the same arguments: finished files are skipped. Exit status 0 "
            "when the run completed (bad files are listed in summary.csv), 2 when it could not "
            "run, 130 when cancelled (Ctrl-C)."
        ),
    )
    parser.add_argument("in_dir", metavar="IN_DIR", type=Path, help="input folder (read only)")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="output folder")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="ID",
        help="model id (repeat for several; see `models`)",
    )
    parser.add_argument(
        "--scale",
        type=parse_scale,
        default="auto",
        help="'auto' (default: per face, from its native resolution, never shrinking it), an "
        "enlargement factor, e.g. 4, or 1 for x1 restore (restoration models only)",
    )
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="with a fixed --scale, also run faces it shrinks (recorded as evidence_shrink; "
        "not pasted into the full image); by default such faces are skipped and listed",
    )
    parser.add_argument(
        "--no-recursive", dest="recursive", action="store_false", help="ignore sub-folders"
    )
    _add_case_log_arguments(parser)
    parser.add_argument(
        "--full",
        action="store_true",
        help="also write each photo enlarged with its faces pasted in (labelled, faces "
        "outlined); by default only the faces and their provenance are written",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of another run in OUT_DIR (by default an output folder "
        "belongs to one run, named in its run.json; the same run resumes)",
    )
    parser.add_argument(
        "--follow-links",
        action="store_true",
        help="also read symbolic links that lead to files outside IN_DIR (by default they get "
        "an error row and are not read)",
    )
    parser.add_argument(
        "--detector",
        choices=("auto", "hog", "cnn"),
        default="hog",
        help="hog (default: a run's detector is part of its settings, so earlier runs resume), "
        "cnn, or auto: HOG, then the CNN on a photo where HOG finds no face",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: automatic)")
    parser.add_argument(
        "--dask",
        default=None,
        metavar="local:N|tcp://HOST:PORT",
        help="process the photos on a Dask cluster: local:N starts N worker processes on this "
        "computer, tcp://HOST:PORT joins an existing scheduler whose workers see IN_DIR and "
        "OUT_DIR under the same paths (default: in this process). The outputs are the same "
        "bytes; summary.csv, run.json and the case log are written here",
    )
    parser.add_argument(
        "--batch-faces",
        type=int,
        default=batch.DEFAULT_BATCH_FACES,
        metavar="N",
        help=f"faces per forward pass (default {batch.DEFAULT_BATCH_FACES}: a face's pixels "
        "then never depend on the other faces of the run; more is faster on a GPU)",
    )
    parser.set_defaults(func=run_batch_from_args)
    return parser


class ProgressBar:
    """Text progress on a stream: one redrawn line on a terminal, a line every few seconds
    otherwise; faults always get their own line. Redraws are throttled (latest value wins)."""

    def __init__(self, stream: TextIO, width: int = 24, interval_s: float = 0.25) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval_s = interval_s if self.tty else 5.0
        self.last = 0.0
        self.drawn = False

    def __call__(self, event: BatchEvent) -> None:
        if event.kind == "fault":
            self._clear()
            where = f"{event.file}: " if event.file else ""
            self.stream.write(f"{event.status or 'fault'}: {where}{event.message}\n")
            self.stream.flush()
            return
        now = time.monotonic()
        final = event.kind in ("done", "cancelled")
        if not final and now - self.last < self.interval_s and event.kind != "start":
            return
        self.last = now
        line = self.line(event)
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.drawn = not final
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def line(self, e: BatchEvent) -> str:
        total = max(e.files_total, 1)
        filled = round(self.width * e.files_done / total)
        bar = "#" * filled + "-" * (self.width - filled)
        eta = _clock(e.eta_s) if e.eta_s is not None else "--:--"
        return (
            f"[{bar}] {e.files_done}/{e.files_total} files, {e.faces_done} faces, "
            f"{_clock(e.elapsed_s)} elapsed, ETA {eta}"
        )

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\033[K")
            self.drawn = False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def run_batch_from_args(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run ``batch`` from parsed arguments: 0 completed, 2 could not run, 1 summary unwritable,
    130 cancelled. The first Ctrl-C cancels cleanly (summary kept); a second one interrupts."""
    from engine import batch
    from engine.enhance import Enhancer
    from engine.progress import PausableToken

    stream = stream or sys.stderr
    token = PausableToken()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: Any) -> None:
            stream.write("\ncancelling after the current image (Ctrl-C again to stop now)\n")
            token.cancel()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        enhancer = Enhancer(device=args.device) if getattr(args, "device", None) else None
        case_log = _open_case_log(args)
    except (ValueError, UsageError) as exc:  # a device torch does not know; an unusable log
        stream.write(f"ffe batch: error: {exc}\n")
        return 2
    try:
        summary = batch.run_batch(
            args.in_dir,
            args.out_dir,
            args.models,
            args.scale,
            recursive=args.recursive,
            token=token,
            on_event=ProgressBar(stream),
            detector=args.detector,
            enhancer=enhancer,
            batch_faces=getattr(args, "batch_faces", batch.DEFAULT_BATCH_FACES),
            allow_shrink=getattr(args, "allow_shrink", False),
            follow_links=getattr(args, "follow_links", False),
            overwrite=getattr(args, "overwrite", False),
            full=getattr(args, "full", True),
            dask=getattr(args, "dask", None),
            device=getattr(args, "device", None),
        )
    except batch.BatchError as exc:
        stream.write(f"ffe batch: error: {exc}\n")
        return 2
    except OSError as exc:
        stream.write(f"ffe batch: error: {exc}\n")
        return 1
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    from engine import caselog, io

    try:
        fields = caselog.batch_fields(summary, args.recursive)
        fields["details"]["command"] = "ffe batch"
        case_log.append("batch", **fields)
    except caselog.CaseLogError as exc:
        stream.write(
            f"ffe batch: error: the run finished but the case log {case_log.path} could not "
            f"record it: {exc}\n"
        )
        return 1
    stream.write(f"case log: {io.display_path(case_log.path)}\n")
    stream.write(
        f"{summary.files_done}/{summary.files_total} files: {summary.ok} ok, "
        f"{summary.no_face} without a face, {summary.errors} with errors, "
        f"{summary.skipped} already done; {summary.faces} faces in {_clock(summary.elapsed_s)}\n"
        f"summary: {summary.summary_path}\n"
    )
    return 130 if summary.cancelled else 0


if __name__ == "__main__":
    sys.exit(main())
