"""The worker's video job: track a face over a clip's frames, fuse the best, run the model.

A handler of :data:`app.worker.JOBS` (``(EngineWorker, Job) -> answer``), kept out of
``worker.py`` so that room stays small. It runs in the worker thread, which owns dlib and
torch; it opens the clip itself (the timeline's decoding thread keeps its own) and refuses a
file whose SHA-256 changed since the analyst opened it.
"""

from __future__ import annotations

from typing import Any

from app.jobs import TrackArgs, TrackOutcome

FALLBACK_SCALE = 4  # "auto" on a face engine.resolution would not enlarge


def choose_scale(
    face: Any, model_id: str, requested: int | str, installed: tuple[int, ...]
) -> tuple[int, str]:
    """The scale to fuse at, and the words that say how it was chosen.

    A factor is used as asked. "auto" takes the scale :func:`engine.resolution.plan` picks for
    the face (the largest whose model input still holds every recorded pixel); when it picks
    none (the face is large enough), x4, or the model's nearest offered scale.
    """
    from engine import registry, resolution

    if registry.get(model_id).restores:  # fusion registers and resamples frames
        raise ValueError(
            f"{registry.get(model_id).label} restores one still's recorded pixels at x1; "
            "Track and fuse needs a model that enlarges (choose another model and scale)"
        )
    if requested != "auto":
        return int(requested), f"\u00d7{int(requested)} as set in the toolbar"
    entry = registry.get(model_id)
    plan = resolution.plan(face, entry, "auto", installed or None)
    native = f"face about {plan.native.frame_px:.0f} px"
    if plan.runs and plan.scale is not None:
        return int(plan.scale), f"Auto: \u00d7{plan.scale}, picked for this face ({native})"
    scale = min(entry.scales, key=lambda s: abs(s - FALLBACK_SCALE))
    return scale, (
        f"Auto: \u00d7{scale} (fixed fallback; {native}, which Auto would not enlarge: "
        f"{plan.message or 'no scale fits'})"
    )


def pick_track(found: list, frame_index: int, box: tuple[float, ...]) -> Any:
    """The track through the selected face: the one whose face in ``frame_index`` overlaps
    ``box`` most."""
    from engine import faces, tracks

    best, overlap = None, 0.0
    for track in found:
        face = track.face_at(frame_index)
        if face is not None and tracks.iou(face.box, box) > overlap:
            best, overlap = track, tracks.iou(face.box, box)
    if best is None or overlap < 0.3:
        raise faces.FaceError(
            f"no face track passes through the selected face in frame {frame_index} "
            "(a face drawn by hand cannot be tracked)"
        )
    return best


def job_track(worker: Any, job: Any) -> TrackOutcome:
    from engine import caselog, tracks, video, video_enhance

    a: TrackArgs = job.args
    token = job.token
    token.set_progress(0, 4, "Opening the clip (SHA-256 and frame index)")
    with video.open_clip(a.clip_path) as clip:
        if clip.info.sha256 != a.clip_sha256:
            raise video.VideoError(a.clip_path, "the file changed since it was opened")
        start = max(0, a.frame_index - a.radius)
        stop = min(len(clip), a.frame_index + a.radius + 1)
        token.set_progress(1, 4, f"Looking for faces in frames {start} to {stop - 1}")
        found = tracks.track_faces(clip, start, stop, method=a.detector, check=token.check)
        track = pick_track(found, a.frame_index, a.box)
        scale, note = choose_scale(
            track.face_at(a.frame_index), a.model_id, a.scale, tuple(a.installed)
        )
        model = worker.enhancer.model(a.model_id, scale)
        ranked = track.ranked()
        order = [a.frame_index] + [r.frame_index for r in ranked if r.frame_index != a.frame_index]
        chosen = sorted(order[: max(1, a.fuse)])
        token.check()
        token.set_progress(2, 4, f"Registering and fusing {len(chosen)} frames")
        frames = {i: clip.frame(i) for i in chosen}
        enhancement = video_enhance.enhance_track(
            clip=clip,
            frames=frames,
            track=track,
            chosen=chosen,
            reference=a.frame_index,
            model=model,
            scale=scale,
            parameters={
                "detector": a.detector,
                "frames_searched": f"{start}:{stop}",
                "analyst": {"reference": a.frame_index, "fuse": a.fuse, "scale": note},
            },
        )
    token.check()
    token.set_progress(4, 4, f"Fused {len(enhancement.fused.used)} frames")
    entry = worker._record(
        job, "track_fuse", **caselog.track_fields(enhancement, a.model_id, scale)
    )
    return TrackOutcome(
        frame_index=a.frame_index,
        model_id=a.model_id,
        scale=scale,
        scale_note=note,
        searched=(start, stop),
        track=track,
        ranked=ranked,
        chosen=chosen,
        enhancement=enhancement,
        log_entry=entry,
    )
