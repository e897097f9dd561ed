"""The worker's video job: track a face over a clip's frames, fuse the best, run the model.

A handler of :data:`app.worker.JOBS` (``(EngineWorker, Job) -> answer``), kept out of
``worker.py`` so that room stays small. It runs in the worker thread, which owns dlib and
torch; it opens the clip itself (the timeline's decoding thread keeps its own) and refuses a
file whose SHA-256 changed since the analyst opened it.

The scale follows the stills' policy (:func:`engine.resolution.plan` on the face in the frame
in use): Auto picks the scale the face's native size allows; a fixed scale that would shrink
the face is refused unless the analyst allowed it; a face of 128 px or more is fused at its own
size and not enlarged. The fused face comes back as an ``engine.enhance.Result`` (its
``fusion`` and ``single`` set), so compare, fidelity, export and the report take it as is.
"""

from __future__ import annotations

from typing import Any

from app.jobs import TrackArgs, TrackOutcome


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
    from engine import caselog, registry, tracks, video, video_enhance

    a: TrackArgs = job.args
    video_enhance.check_enlarges(registry.get(a.model_id))
    token = job.token
    token.set_progress(0, 4, "Opening the clip (SHA-256 and frame index)")
    with video.open_clip(a.clip_path) as clip:
        if clip.info.sha256 != a.clip_sha256:
            raise video.VideoError(a.clip_path, "the file changed since it was opened")
        start, stop = a.frames(len(clip))
        detector = {"auto": "Auto (HOG, then CNN)", "hog": "HOG", "cnn": "CNN"}[a.detector]
        token.set_progress(1, 4, f"Looking for faces in frames {start} to {stop - 1} ({detector})")
        found = tracks.track_faces(clip, start, stop, method=a.detector, check=token.check)
        track = pick_track(found, a.frame_index, a.box)
        # the stills' rule (installed scales at Auto); raises ShrinkRefused: a fixed scale
        # never shrinks the evidence unasked
        plan = worker.enhancer.plan(
            track.face_at(a.frame_index), a.model_id, a.scale, allow_shrink=a.allow_shrink
        )
        model = worker.enhancer.model(a.model_id, plan.scale) if plan.runs else None
        chosen = video_enhance.choose_frames(track, a.frame_index, a.fuse, a.use, a.exclude)
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
            plan=plan,
            face_index=a.face_index,
            parameters={
                "detector": a.detector,
                "frames_searched": f"{start}:{stop}",
                "analyst": {
                    "reference": a.frame_index,
                    "fuse": a.fuse,
                    "picked": sorted(a.use),
                    "excluded": sorted(a.exclude),
                    "scale": str(a.scale),
                    "allow_shrink": a.allow_shrink,
                },
            },
        )
    token.check()
    token.set_progress(3, 4, "Landmarks of the fused output")
    result = video_enhance.fused_result(enhancement, a.model_id) if enhancement.enlarged else None
    token.set_progress(4, 4, f"Fused {len(enhancement.fused.used)} frames")
    entry_log = worker._record(
        job, "track_fuse", **caselog.track_fields(enhancement, a.model_id, enhancement.scale)
    )
    return TrackOutcome(
        frame_index=a.frame_index,
        model_id=a.model_id,
        scale=enhancement.scale,
        scale_note=enhancement.what_happened,
        searched=(start, stop),
        track=track,
        ranked=track.ranked(),
        chosen=chosen,
        enhancement=enhancement,
        log_entry=entry_log,
        result=result,
        args=a,
    )
