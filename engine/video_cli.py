"""``python -m engine video CLIP ...``: track a face through a clip, fuse frames, enhance.

::

    python -m engine video CLIP --frames A:B --track auto --fuse 8 --model ID --scale auto --out DIR

Frames A to B-1 (Python slice; default: the whole clip) are searched for faces, which are
linked into tracks; the chosen track's frames are ranked by quality; the best ``--fuse`` of them
(minus any ``--exclude``; or exactly the frames given with ``--use``) are registered to the best one (or ``--reference``) and fused
(:mod:`engine.fusion`); the model runs on the fused face and, for comparison, on the reference
frame alone, aligned the same way. The scale follows the stills' policy
(:mod:`engine.resolution`, on the reference frame's face): ``auto`` (the default) picks the
scale the face's native size allows; a fixed scale that would shrink the face is refused
unless ``--allow-shrink``; a face of 128 px or more is fused at its own size and not enlarged
(no model output is written). Written into ``--out`` (never next to the clip unless
``--allow-input-dir``; existing files are refused unless ``--overwrite``):

* ``STEM_fNNNNNN_frame.png`` -- the reference frame as decoded (its pixel SHA-256 is the one
  recorded for that frame);
* ``STEM_fNNNNNN_fused_lr.png`` -- the fused face at the model's input size (no model);
* ``STEM_fNNNNNN_fusion_fine.png`` -- the multi-frame reconstruction itself (``reconstruct``);
* ``STEM_fNNNNNN_single_TAG.png`` / ``STEM_fNNNNNN_fused_TAG.png`` -- the model on the
  reference frame alone and on the fused face (TAG = model and scale: ``x4``, ``native75`` for
  a face run at its native 75 px, ``none`` when nothing was enlarged);
* ``STEM_fNNNNNN_fused_TAG_full.png`` -- the reference frame enlarged, fused result pasted in;
* ``STEM_fNNNNNN_TAG_provenance.json`` -- the clip (SHA-256, codec...), the track, every frame
  used (index, time, pixel SHA-256, registration residual) or rejected (and why), the model
  and weights, and every output's SHA-256.

Exit status as the other commands: 0 done, 2 bad input or usage, 1 writing failed, 3 a fault
in the program (reported by ``engine.__main__.main``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine import provenance, registry

EXIT_OK = 0
EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2
DEFAULT_FUSE = 8
FUSION_LABEL = "Multi-frame fusion (classical, no AI) - processed image, not original evidence"


class VideoUsageError(Exception):
    """What was asked for cannot be done; the message is shown and the exit status is 2."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``video`` command to ``subparsers`` (``engine.__main__``'s)."""
    from engine import fusion

    parser = subparsers.add_parser(
        "video",
        help="track a face through a clip, fuse frames, enhance",
        description=__doc__.split("::")[0].strip().splitlines()[0],
    )
    parser.add_argument("clip", type=Path, help="the video file (never modified)")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument(
        "--scale",
        default="auto",
        help="auto (default: the scale the face's native size allows) or a factor, e.g. 4",
    )
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="run a fixed --scale even where it shrinks the face (recorded)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--frames", default=None, help="A:B, the frames searched (A to B-1; default all)"
    )
    parser.add_argument(
        "--step", type=int, default=1, help="search every STEP-th frame (default 1)"
    )
    parser.add_argument(
        "--track", default="auto", help="track number, or auto (the longest; default)"
    )
    parser.add_argument(
        "--fuse",
        type=int,
        default=DEFAULT_FUSE,
        metavar="N",
        help=f"fuse the N best frames of the track (default {DEFAULT_FUSE}; 1 = no fusion)",
    )
    parser.add_argument(
        "--reference", type=int, default=None, help="frame index to register to (default: best)"
    )
    parser.add_argument("--exclude", default="", help="frame indices never to use, comma-separated")
    parser.add_argument(
        "--use",
        default="",
        help="fuse exactly these frames (comma-separated indices of the track) instead of the "
        "N best",
    )
    parser.add_argument(
        "--method",
        choices=fusion.METHODS,
        default="auto",
        help="auto (default): multi-frame reconstruction where the face is at least about the "
        "model's input size in the frames, else a trimmed per-pixel mean",
    )
    parser.add_argument(
        "--detector",
        choices=("hog", "cnn", "auto"),
        default="hog",
        help="hog (default), cnn, or auto (HOG, then the CNN on frames where HOG finds none)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: automatic)")
    parser.add_argument(
        "--allow-input-dir", action="store_true", help="allow writing into the clip's folder"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run_from_args)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except VideoUsageError as exc:
        print(f"ffe: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _parse_range(text: str | None, length: int) -> tuple[int, int]:
    if text is None:
        return 0, length
    try:
        a, b = text.split(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else length
    except ValueError:
        raise VideoUsageError(f"--frames must look like A:B (e.g. 0:100), got {text!r}") from None
    start, stop = max(0, start), min(length, stop)
    if start >= stop:
        raise VideoUsageError(f"--frames {text}: no frame of the clip's 0..{length - 1} in it")
    return start, stop


def _parse_exclude(text: str) -> set[int]:
    try:
        return {int(v) for v in text.split(",") if v.strip()}
    except ValueError:
        raise VideoUsageError(
            f"--exclude must be frame numbers like 3,7,12, got {text!r}"
        ) from None


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _run(args: argparse.Namespace) -> int:
    from engine import faces as facelib
    from engine import io, resolution, tracks, video, weights
    from engine.enhance import Enhancer
    from engine.export import labelled, replaced_region, scale_tag
    from engine.video_enhance import check_enlarges, enhance_track

    try:
        entry = registry.get(args.model)
        requested: int | str = resolution.AUTO
        if str(args.scale).strip().lower() != resolution.AUTO:
            try:
                requested = int(args.scale)
            except ValueError:
                raise ValueError(f"--scale must be auto or a factor, got {args.scale!r}") from None
            requested = registry.check_scale(entry, requested)
        check_enlarges(entry)
    except KeyError as exc:
        raise VideoUsageError(exc.args[0]) from None
    except ValueError as exc:
        raise VideoUsageError(str(exc)) from None
    if args.fuse < 1:
        raise VideoUsageError("--fuse must be 1 or more")
    clip_path: Path = args.clip
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise VideoUsageError(f"--out {out} exists and is not a folder")
    if out.resolve() == clip_path.resolve().parent and not args.allow_input_dir:
        raise VideoUsageError(
            f"--out {out} is the clip's own folder; choose another folder "
            "(or pass --allow-input-dir)"
        )
    exclude = _parse_exclude(args.exclude)
    use = _parse_exclude(args.use) if args.use else set()
    if use & exclude:
        raise VideoUsageError(f"frames {sorted(use & exclude)} are in both --use and --exclude")

    try:
        enhancer = Enhancer(device=args.device)
        if requested != resolution.AUTO:  # a missing weights file fails first
            enhancer.model(entry.id, int(requested))
    except (ValueError, weights.WeightsError) as exc:
        raise VideoUsageError(str(exc)) from None

    try:
        clip = video.open_clip(clip_path)
    except video.VideoError as exc:
        raise VideoUsageError(str(exc)) from None
    with clip:
        start, stop = _parse_range(args.frames, len(clip))
        try:
            found = tracks.track_faces(clip, start, stop, max(1, args.step), args.detector)
            track = tracks.choose_track(found, args.track)
        except facelib.FaceError as exc:
            raise VideoUsageError(f"{clip_path.name}, frames {start}:{stop}: {exc}") from None
        ranked = [r for r in track.ranked() if r.frame_index not in exclude]
        if not ranked:
            raise VideoUsageError(f"track {track.id}: every frame was excluded")
        reference = ranked[0].frame_index if args.reference is None else args.reference
        if track.face_at(reference) is None:
            raise VideoUsageError(
                f"--reference {reference}: track {track.id} has no face in that frame "
                f"(its frames: {track.first} to {track.last})"
            )
        if reference in exclude:
            raise VideoUsageError(f"--reference {reference} is also in --exclude")
        if use:
            missing = sorted(i for i in use if track.face_at(i) is None)
            if missing:
                raise VideoUsageError(
                    f"--use: track {track.id} has no face in frame(s) {missing} "
                    f"(its frames: {', '.join(map(str, track.frames))})"
                )
            if args.reference is None:  # the best of the frames asked for
                reference = next(r.frame_index for r in ranked if r.frame_index in use)
            chosen = sorted(use | {reference})
        else:
            chosen = [reference] + [r.frame_index for r in ranked if r.frame_index != reference]
            chosen = sorted(chosen[: args.fuse])
        try:
            plan = enhancer.plan(
                track.face_at(reference), entry.id, requested, allow_shrink=args.allow_shrink
            )
            model = enhancer.model(entry.id, plan.scale) if plan.runs else None
        except resolution.ShrinkRefused as exc:
            raise VideoUsageError(f"{exc} Pass --allow-shrink to run it anyway.") from None
        except (ValueError, weights.WeightsError) as exc:
            raise VideoUsageError(str(exc)) from None
        frames = {i: clip.frame(i) for i in chosen}
        clip_record = clip.info.record()
    result = enhance_track(
        clip=clip,
        frames=frames,
        track=track,
        chosen=chosen,
        reference=reference,
        model=model,
        plan=plan,
        method=args.method,
        parameters={
            "detector": args.detector,
            "frames_searched": f"{start}:{stop}:{max(1, args.step)}",
            "analyst": {
                "track_requested": args.track,
                "excluded": sorted(exclude),
                "chosen": sorted(use),
                "reference": args.reference,
                "scale": str(requested),
                "allow_shrink": bool(args.allow_shrink),
            },
        },
    )
    for note in result.notes:
        print(f"ffe: note: {note}", file=sys.stderr)
    fused, full = result.fused, result.full
    rec_single, rec_fused = result.record_single, result.record_fused
    ref_still = result.still

    stem = f"{clip_path.stem}_f{reference:06d}"
    tag = f"{entry.id}_{scale_tag(plan) if plan.runs else 'none'}"
    paths = {
        "frame": out / f"{stem}_frame.png",
        "fused_lr": out / f"{stem}_fused_lr.png",
        "fusion_fine": out / f"{stem}_fusion_fine.png",
        "single": out / f"{stem}_single_{tag}.png",
        "fused": out / f"{stem}_fused_{tag}.png",
        "full": out / f"{stem}_fused_{tag}_full.png",
        "provenance": out / f"{stem}_{tag}_provenance.json",
    }
    if fused.fine is None:
        del paths["fusion_fine"]
    if not result.enlarged:  # 128 px or more: fused at its own size, no model output
        del paths["single"], paths["fused"]
    if full is None:
        del paths["full"]
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        raise VideoUsageError(
            f"{', '.join(existing)} already exist(s) in {out}; pass --overwrite to replace"
        )

    document = {
        "record_version": provenance.RECORD_VERSION,
        "label": provenance.AI_LABEL,
        "software": dict(rec_fused["software"]),
        **provenance.record_time(),
        "clip": clip_record,
        "reference_frame": frames[reference].record(),
        "single_frame": rec_single,
        "fused": rec_fused,
        "outputs": [],
    }
    images = {
        "frame": (ref_still.rgb, rec_fused),
        "fused_lr": (fused.lr, rec_fused),
        "fusion_fine": (fused.fine, rec_fused),
        "single": (result.sr_single, rec_single),
        "fused": (result.sr_fused, rec_fused),
        "full": (full, rec_fused),
    }
    # The decoded frame and the classical fusion are not AI outputs: their own labels.
    labels = {
        "frame": f"Decoded video frame {reference} of {clip_path.name}, pixels unchanged",
        "fused_lr": FUSION_LABEL,
        "fusion_fine": FUSION_LABEL,
    }
    # The AI outputs carry the visible label strip, as enhance's and batch's do; the full frame
    # also outlines the region the fused face replaced.
    ai_regions: dict[str, list] = {"single": [], "fused": []}
    if full is not None:
        ai_regions["full"] = [replaced_region(fused.aligned, full.shape[1] / ref_still.rgb.shape[1])]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for role, path in paths.items():
            if role == "provenance":
                continue
            pixels, rec = images[role]
            text = provenance.png_text(rec)
            if role in labels:
                text[provenance.PNG_KEY_LABEL] = labels[role]
            if role in ai_regions:
                pixels, strip = labelled(pixels, entry, ai_regions[role])
                text |= strip
            sha = io.save_png(path, pixels, text)
            provenance.add_output(rec, role, path.resolve(), sha)
            provenance.add_output(document, role, path.resolve(), sha)
        _write_text_atomic(paths["provenance"], provenance.to_json(document))
    except OSError as exc:
        print(f"ffe: error: {exc}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    for path in paths.values():
        print(path)
    return EXIT_OK
