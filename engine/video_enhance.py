"""A track's frames -> fused face -> model, with the records: shared by the CLI and the GUI.

:func:`enhance_track` takes frames already decoded (:class:`engine.video.Frame`) and a
:class:`engine.tracks.Track`, fuses the chosen frames (:func:`engine.fusion.fuse`), runs one
loaded model on the fused face and on the reference frame alone (aligned the same way, so the
two are comparable pixel for pixel), pastes the fused result back into the reference frame, and
builds the provenance records of both results. Writing files is the caller's business.

The size of the fused face follows the stills' policy (:func:`engine.resolution.plan` on the
reference frame's face): the model's input frame at the scale Auto picks (or the analyst set,
never shrinking the face unless allowed), the face's own size between the model frames, and
for a face of 128 px or more the frames are averaged at that size and no model runs;
:func:`what_happened` says which in plain words, for the GUI and the provenance.
:func:`choose_frames` picks the frames (the N best, or the analyst's picks, never the
excluded ones); :func:`fused_result` turns the fused output into an
:class:`engine.enhance.Result`, so compare, fidelity checks, export and the case report take it
as they take a still's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import device as devices
from engine import enhance, fusion, provenance, registry, resolution, tracks, video
from engine import faces as facelib

#: Frames larger than this (px) are fused at a smaller working factor (ECC cost).
WORK_PX = 512


@dataclass
class TrackEnhancement:
    """Single-frame and fused results of one track, one model, one scale.

    ``plan`` is the resolution policy's answer for the reference face (engine.resolution, as
    for stills); when it runs nothing (a face of 128 px or more) the frames are still fused at
    the face's native size, no model runs, and ``sr_single`` / ``sr_fused`` are None.
    """

    reference: int  # frame index
    still: video.FrameStill  # the reference frame as a Still (provenance names clip and frame)
    fused: fusion.Fused
    sr_single: np.ndarray | None  # (128, 128, 3): the model on the reference frame alone
    sr_fused: np.ndarray | None  # (128, 128, 3): the model on the fused face
    full: np.ndarray | None  # the reference frame enlarged with sr_fused pasted in
    record_single: dict[str, Any]
    record_fused: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    plan: resolution.Plan | None = None
    scale: int = 1  # the model's factor (1: not enlarged)
    face_index: int = 0  # the face's index in the reference frame (the still on screen)
    what_happened: str = ""  # plain words: how the fused face was sized and enlarged
    face: Any = None  # the reference frame's face (engine.faces.Face)

    @property
    def enlarged(self) -> bool:
        return self.sr_fused is not None


def check_enlarges(entry: registry.ModelEntry) -> None:
    """Refuse a restoration model for a track, before any frame is decoded: fusion registers and
    resamples the frames, and an x1 restore promises the recorded pixels unresampled."""
    if entry.restores:
        raise ValueError(
            f"{entry.label} cleans one image's recorded pixels at x1, and fusing a track "
            "registers and resamples its frames: track and fuse needs a model that enlarges. "
            "To clean one frame at x1, run the restore on that frame as a still."
        )


def what_happened(plan: resolution.Plan | None, lr_size: int, frames: int, model: str) -> str:
    """The sentence the GUI and the provenance give about the fused face's size."""
    fused = f"{frames} frame{'s' if frames != 1 else ''} fused"
    if plan is None:
        return f"{fused} at {lr_size} px, then {model} to 128 px."
    native = f"{plan.native.frame_px:.0f} px"
    if not plan.runs:
        return (
            f"{fused} at the face's native {lr_size} px (a {native} face: too large for every "
            f"input of {model}): the frames are averaged but {model} does not enlarge it. "
            f"{plan.message}"
        )
    if plan.mode == "native":
        return (
            f"{fused} at the face's native {lr_size} px ({native} face, between the model "
            f"frames), then {model} to 128 px: no recorded pixel is thrown away."
        )
    if plan.shrinks:
        return (
            f"{fused} at {lr_size} px, then {model} ×{plan.scale}: the face ({native}) was "
            f"shrunk {resolution.times(plan.evidence_shrink)} from the evidence, as the analyst "
            "allowed."
        )
    how = "picked by Auto for" if plan.requested == resolution.AUTO else "as set, for"
    if plan.evidence_shrink > 1.0 + 1e-3:
        kept = (
            f"its {lr_size} px input is within the {resolution.TOLERANCE:.0%} the alignment "
            "itself is uncertain by"
        )
    else:
        kept = "no recorded pixel is thrown away"
    return (
        f"{fused} at {lr_size} px, then {model} \u00d7{plan.scale} ({how} this {native} face: "
        f"{kept})."
    )


def enhance_track(
    *,
    clip: video.Clip,
    frames: Mapping[int, video.Frame],
    track: tracks.Track,
    chosen: Sequence[int],
    reference: int,
    model: Any,
    scale: int | None = None,
    plan: resolution.Plan | None = None,
    method: str = "auto",
    parameters: Mapping[str, Any] | None = None,
    face_index: int | None = None,
) -> TrackEnhancement:
    """Fuse ``chosen`` frames of ``track`` onto ``reference`` and run ``model`` (a loaded
    :class:`engine.weights.LoadedModel`, e.g. ``Enhancer.model(id, scale)``).

    With ``plan`` (:func:`engine.resolution.plan` for the reference face: the stills' policy)
    the fused face is made at the plan's model input size -- never smaller than the face
    unless the plan allows the shrink -- and for a plan that runs nothing (128 px or more) the
    frames are fused at the face's native size and ``model`` may be None. Without ``plan`` the
    face is fused at ``128 // scale`` (the command line's fixed ``--scale``).
    """
    chosen = sorted(chosen)
    if reference not in chosen:
        raise ValueError(f"the reference frame {reference} is not among the chosen frames")
    face = track.face_at(reference)
    inputs = [
        fusion.FrameInput(frames[i].rgb, track.face_at(i), frames[i].record()) for i in chosen
    ]
    runs = plan is None or plan.runs
    if plan is None:
        if scale is None:
            raise ValueError("enhance_track needs a scale or a plan")
        lr_size = facelib.HR_SIZE // scale
    elif plan.runs:
        check_enlarges(registry.get(plan.model_id))
        assert plan.scale is not None and plan.lr_size is not None
        scale, lr_size = plan.scale, plan.lr_size
    else:  # 128 px or more: average the frames at the face's own size, enlarge nothing
        scale, lr_size = 1, int(math.ceil(plan.native.frame_px - 1e-6))
        method = "trimmed" if method in ("auto", "reconstruct") else method
    work_factor = max(1, min(4, WORK_PX // lr_size))
    fused = fusion.fuse(
        inputs, lr_size, reference=chosen.index(reference), method=method, work_factor=work_factor
    )
    still = video.to_still(clip, frames[reference])
    name = model.entry.label if model is not None else "the model"
    summary = what_happened(plan, lr_size, len(fused.used), name)
    notes: list[str] = [summary]  # the plan's own words are in the record's "resolution"
    sr_single = sr_fused = full = None
    if runs:
        sr_single = model.run(fused.single)
        sr_fused = model.run(fused.lr)
        zoom = fused.record["face_zoom_into_model_input"]
        if plan is None and zoom < 0.9:  # evidence first: say when the face was shrunk
            notes.append(
                f"the face spans about {lr_size / zoom:.0f} px in the frames and was shrunk to "
                f"the model's {lr_size} px input (x{scale}); a smaller scale keeps more of what "
                "was recorded"
            )
        if plan is not None and plan.shrinks:
            notes.append(
                "full image not built: the model saw this face shrunk "
                f"{plan.evidence_shrink:.1f}x, so its output may not replace the recorded pixels"
            )
        else:
            paste = scale if plan is None else enhance.paste_scale(plan)
            try:
                full = facelib.paste_back(still.rgb, fused.aligned, sr_fused, scale=paste)
            except facelib.FaceError as exc:
                notes.append(f"full image not built: {exc}")
    entry = model.entry if model is not None else registry.get(plan.model_id)  # type: ignore[union-attr]
    params = {
        "scale": scale,
        "lr_size": lr_size,
        "hr_size": facelib.HR_SIZE,
        "input": entry.input,
        "precision": "float32",
        "deterministic": True,
        "what_happened": summary,
        "track": {
            **track.record(),
            "ranking": [
                {"frame": r.frame_index, "score": r.score, "why": r.words} for r in track.ranked()
            ],
        },
    } | dict(parameters or {})
    if plan is not None:
        params |= {
            "scale_mode": plan.mode,
            "requested_scale": plan.requested,
            "evidence_shrink": round(plan.evidence_shrink, 4),
        }
    index = track.id if face_index is None else face_index
    common = {
        "still": still,
        "face": face,
        "face_index": index,
        "entry": entry,
        "scale": scale,
        "weights_file": model.path.name if model is not None and model.path else None,
        "weights_sha256": model.weights_sha256 if model is not None else None,
        "weights_metadata": model.metadata if model is not None else None,
        "device": devices.describe(model.device) if model is not None else "cpu",
        "notes": notes,
    }
    record_single = provenance.record(
        parameters=params
        | {
            "frames_fused": 1,
            "alignment": "the reference frame alone, in the fused face's registered framing",
        },
        **common,
    )
    record_fused = provenance.record(
        parameters=params | {"frames_fused": len(fused.used), "fusion": fused.record},
        **common,
    )
    for record in (record_single, record_fused):
        if plan is not None:
            record["resolution"] = plan.to_dict()
        if not runs:  # nothing enlarged: no model ran, no AI label
            record["model"] = {"id": None, "not_run": plan.message}  # type: ignore[union-attr]
            record["label"] = FUSED_LABEL
    return TrackEnhancement(
        reference=reference,
        still=still,
        fused=fused,
        sr_single=sr_single,
        sr_fused=sr_fused,
        full=full,
        record_single=record_single,
        record_fused=record_fused,
        notes=notes,
        plan=plan,
        scale=scale,
        face_index=index,
        what_happened=summary,
        face=face,
    )


#: The label of a fused face no model enlarged (frames averaged: still not original evidence).
FUSED_LABEL = "Fused from several frames — not original evidence"


def fused_result(enh: TrackEnhancement, model_id: str) -> enhance.Result:
    """The fused output as an :class:`engine.enhance.Result` (``fusion`` and ``single`` set),
    so every still feature -- compare, fidelity, export, report -- takes it as it is. Kept in a
    session under (face, model, :data:`FUSED`). Raises ValueError when no model enlarged it."""
    if enh.sr_fused is None:
        raise ValueError(f"no model ran on this fused face: {enh.what_happened}")
    aligned = enh.fused.aligned
    to_hr = fusion._scale_matrix(aligned.matrix, facelib.HR_SIZE / aligned.size)
    face = enh.face
    try:
        output_landmarks: np.ndarray | None = facelib.aligned_landmarks(enh.sr_fused)
    except facelib.FaceError:
        output_landmarks = None
    return enhance.Result(
        model_id=model_id,
        scale=enh.scale,
        face_index=enh.face_index,
        lr=enh.fused.lr,
        sr=enh.sr_fused,
        pasted=enh.full,
        input_landmarks=facelib.transform_points(face.landmarks, to_hr).astype(np.float32),
        output_landmarks=output_landmarks,
        timings={},
        provenance=enh.record_fused,
        aligned=aligned,
        device=str(enh.record_fused.get("device") or "cpu"),
        plan=enh.plan,
        fusion=enh.record_fused["parameters"]["fusion"],
        single=enh.sr_single,
    )


def choose_frames(
    track: tracks.Track,
    reference: int,
    fuse: int = 8,
    use: Sequence[int] = (),
    exclude: Sequence[int] = (),
) -> list[int]:
    """The frames of ``track`` to fuse onto ``reference``: exactly ``use`` (the analyst's picks,
    with the reference) when given, else the reference and the best-ranked others up to ``fuse``
    frames, never one in ``exclude``. Raises ValueError with the reason for a choice that
    cannot be made."""
    use_set, excluded = set(use), set(exclude)
    if track.face_at(reference) is None:
        raise ValueError(f"track {track.id} has no face in the reference frame {reference}")
    if reference in excluded:
        raise ValueError(f"the reference frame {reference} cannot be excluded")
    if use_set & excluded:
        raise ValueError(f"frames {sorted(use_set & excluded)} are both picked and excluded")
    missing = sorted(i for i in use_set if track.face_at(i) is None)
    if missing:
        raise ValueError(f"track {track.id} has no face in frame(s) {missing}")
    if use_set:
        return sorted(use_set | {reference})
    if fuse < 1:
        raise ValueError("at least one frame must be fused")
    others = [
        r.frame_index
        for r in track.ranked()
        if r.frame_index != reference and r.frame_index not in excluded
    ]
    return sorted([reference, *others[: fuse - 1]])
