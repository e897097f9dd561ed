"""A track's frames -> fused face -> model, with the records: shared by the CLI and the GUI.

:func:`enhance_track` takes frames already decoded (:class:`engine.video.Frame`) and a
:class:`engine.tracks.Track`, fuses the chosen frames (:func:`engine.fusion.fuse`), runs one
loaded model on the fused face and on the reference frame alone (aligned the same way, so the
two are comparable pixel for pixel), pastes the fused result back into the reference frame, and
builds the provenance records of both results. Writing files is the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import device as devices
from engine import faces as facelib
from engine import fusion, provenance, tracks, video


@dataclass
class TrackEnhancement:
    """Single-frame and fused results of one track, one model, one scale."""

    reference: int  # frame index
    still: video.FrameStill  # the reference frame as a Still (provenance names clip and frame)
    fused: fusion.Fused
    sr_single: np.ndarray  # (128, 128, 3): the model on the reference frame alone
    sr_fused: np.ndarray  # (128, 128, 3): the model on the fused face
    full: np.ndarray | None  # the reference frame enlarged with sr_fused pasted in
    record_single: dict[str, Any]
    record_fused: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def enhance_track(
    *,
    clip: video.Clip,
    frames: Mapping[int, video.Frame],
    track: tracks.Track,
    chosen: Sequence[int],
    reference: int,
    model: Any,
    scale: int,
    method: str = "auto",
    parameters: Mapping[str, Any] | None = None,
) -> TrackEnhancement:
    """Fuse ``chosen`` frames of ``track`` onto ``reference`` and run ``model`` (a loaded
    :class:`engine.weights.LoadedModel`, e.g. ``Enhancer.model(id, scale)``)."""
    chosen = sorted(chosen)
    if reference not in chosen:
        raise ValueError(f"the reference frame {reference} is not among the chosen frames")
    inputs = [
        fusion.FrameInput(frames[i].rgb, track.face_at(i), frames[i].record()) for i in chosen
    ]
    lr_size = facelib.HR_SIZE // scale
    fused = fusion.fuse(inputs, lr_size, reference=chosen.index(reference), method=method)
    sr_single = model.run(fused.single)
    sr_fused = model.run(fused.lr)
    still = video.to_still(clip, frames[reference])
    notes: list[str] = []
    zoom = fused.record["face_zoom_into_model_input"]
    if zoom < 0.9:  # evidence first: say when the recorded face was shrunk for the model
        notes.append(
            f"the face spans about {lr_size / zoom:.0f} px in the frames and was shrunk to the "
            f"model's {lr_size} px input (x{scale}); a smaller scale keeps more of what was "
            "recorded"
        )
    try:
        full = facelib.paste_back(still.rgb, fused.aligned, sr_fused, scale=scale)
    except facelib.FaceError as exc:
        full = None
        notes.append(f"full image not built: {exc}")
    entry = model.entry
    params = {
        "scale": scale,
        "lr_size": lr_size,
        "hr_size": facelib.HR_SIZE,
        "input": entry.input,
        "precision": "float32",
        "deterministic": True,
        "track": {
            **track.record(),
            "ranking": [
                {"frame": r.frame_index, "score": r.score, "why": r.words} for r in track.ranked()
            ],
        },
    } | dict(parameters or {})
    common = {
        "still": still,
        "face": track.face_at(reference),
        "face_index": track.id,
        "entry": entry,
        "scale": scale,
        "weights_file": model.path.name if model.path is not None else None,
        "weights_sha256": model.weights_sha256,
        "weights_metadata": model.metadata,
        "device": devices.describe(model.device),
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
    )
