"""Provenance records: what was enhanced, by which model and weights, how, where, when.

A record is a plain JSON-serialisable dict, written beside every output and embedded in its PNG
text chunks, so an enhanced face can always be traced back to the evidence file (by SHA-256),
the face, the model and the exact weights file (by SHA-256), and is always labelled as an AI
enhancement. :func:`canonical_bytes` / :func:`digest` give the stable byte form and hash of a
record; :mod:`engine.caselog` stores and chains its entries in that same form (each entry
hashing the previous). ``SOFTWARE`` and :func:`utc_now` are defined here, once, for every
record the engine writes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import __version__
from engine.io import display_path

SOFTWARE = "Forensic Face Enhancer"
AI_LABEL = "AI-enhanced image - not original evidence"
RECORD_VERSION = 1

# PNG text keywords: "Software" and "Disclaimer" are registered PNG keywords, so common viewers
# show them; the full record goes under our own keyword.
PNG_KEY_SOFTWARE = "Software"
PNG_KEY_LABEL = "Disclaimer"
PNG_KEY_PROVENANCE = "ffe-provenance"


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries that shape the pixels (read from package metadata, no imports)."""
    return {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "dlib": _version("dlib-bin", "dlib"),
        "pillow": _version("pillow", "Pillow"),
        "opencv": _version("opencv-python-headless", "opencv-python"),
        "safetensors": _version("safetensors"),
    }


def utc_now(timespec: str = "seconds") -> str:
    """The current time as UTC ISO 8601, to the second (the case log asks for milliseconds, so
    that entries a few ms apart stay ordered)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def record_time() -> dict[str, str]:
    """The time fields of an output's provenance record: now, or the time ``SOURCE_DATE_EPOCH``
    fixes (whole seconds since 1970, the reproducible-builds convention), so that two runs on the
    same input and settings write byte-identical files; a fixed time says so in the record. The
    case log always records the real time of each action."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return {"time_utc": utc_now()}
    try:
        fixed = datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"SOURCE_DATE_EPOCH must be whole seconds since 1970 (e.g. 1700000000), got {epoch!r}"
        ) from None
    return {"time_utc": fixed, "time_fixed_by": "SOURCE_DATE_EPOCH"}


def record(
    *,
    still: Any,
    face: Any,
    face_index: int,
    entry: Any,
    scale: int,
    weights_file: str | None,
    weights_sha256: str | None,
    parameters: dict[str, Any],
    device: str,
    weights_metadata: dict[str, str] | None = None,
    notes: Iterable[str] = (),
    model_choice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance of one enhanced face, as a plain dict.

    ``still`` is an :class:`engine.io.Still`, ``face`` an :class:`engine.faces.Face`, ``entry`` a
    :class:`engine.registry.ModelEntry`. ``outputs`` starts empty and is filled by
    :func:`add_output` as files are written. ``model_choice`` is
    :func:`engine.evidence_quality.model_choice`'s answer (the model the evidence calls for, the
    one used, and why); the still's own assessment (``still.evidence``) is recorded as
    ``evidence_quality``.
    """
    metadata = weights_metadata or {}
    evidence = getattr(still, "evidence", None)
    return {
        "record_version": RECORD_VERSION,
        "label": AI_LABEL,
        "software": {"name": SOFTWARE, "version": __version__},
        **record_time(),
        "input": {
            "path": display_path(still.path) if still.path is not None else None,
            "name": getattr(still, "name", "") or None,
            "sha256": still.sha256,
            "original_mode": still.original_mode,
            "bits_per_sample": getattr(still, "bits_per_sample", 8),
            "format": still.format,
            "width": still.width,
            "height": still.height,
            # a video frame (engine.video.FrameStill) names its clip and frame
            **({"video": still.video} if getattr(still, "video", None) else {}),
        },
        "face": {
            "index": int(face_index),
            "box": [round(float(v), 2) for v in face.box],
            "manual": bool(face.manual),
            "score": _finite_or_none(face.score),
            # What the evidence holds for this face, in the still's pixels (engine.resolution).
            "native_frame_px": _rounded(getattr(face, "native_frame_px", None)),
            "interocular_px": _rounded(getattr(face, "interocular_px", None)),
            # a face drawn by hand: the boxes drawn and adjusted, and the fit's warnings
            **_hand_box(face),
        },
        "model": {
            "id": entry.id,
            "paper": entry.paper,
            "title": entry.title,
            "citation": entry.citation,
            "variant": entry.variant,
            "scale": int(scale),
            "weights_file": weights_file,
            "weights_sha256": weights_sha256,
            "weights_created": metadata.get("created"),
            "weights_training": _json_or_none(metadata.get("training")),
        },
        "parameters": dict(parameters),
        # JPEG quality from the file's tables, noise level, the variant they call for
        "evidence_quality": evidence.to_dict() if evidence is not None else None,
        "model_choice": dict(model_choice) if model_choice is not None else None,
        "device": device,
        "versions": library_versions(),
        "notes": list(notes),
        "outputs": [],
    }


def add_output(rec: dict[str, Any], role: str, path: str | Path, sha256: str) -> None:
    """Note a written output file (``role`` e.g. "face", "full", "provenance") and its SHA-256."""
    rec["outputs"].append({"role": role, "path": display_path(path), "sha256": sha256})


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """Canonical JSON of ``obj``: sorted keys, no whitespace, UTF-8, no NaN (what is hashed and,
    in the case log, stored). The one canonical form: logged hashes depend on these bytes."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest(rec: Mapping[str, Any]) -> str:
    """SHA-256 of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(rec)).hexdigest()


def to_json(rec: dict[str, Any]) -> str:
    """Readable JSON for a sidecar file."""
    return json.dumps(rec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def png_text(rec: dict[str, Any]) -> dict[str, str]:
    """PNG text chunks for an output: software, the AI label, and the record as JSON."""
    return {
        PNG_KEY_SOFTWARE: f"{SOFTWARE} {__version__}",
        PNG_KEY_LABEL: AI_LABEL,
        PNG_KEY_PROVENANCE: json.dumps(rec, sort_keys=True, ensure_ascii=False),
    }


def _hand_box(face: Any) -> dict[str, Any]:
    """A hand-drawn face's boxes (as drawn, then each adjustment; the landmarks were fitted in
    the last, made square) and the warnings the analyst saw when confirming it."""
    if not getattr(face, "manual", False):
        return {}
    return {
        "drawn_boxes": [
            [round(float(v), 2) for v in box] for box in getattr(face, "drawn_boxes", ())
        ],
        "fit_warnings": list(getattr(face, "fit_warnings", ())),
    }


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _rounded(value: Any) -> float | None:
    number = _finite_or_none(value)
    return None if number is None else round(number, 2)


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def bundle(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One document for several faces of one still enhanced together (the CLI's sidecar file,
    the full pasted image's PNG text): shared header, every face's record, and the outputs."""
    if not records:
        raise ValueError("no provenance records to bundle")
    first = records[0]
    return {
        "record_version": RECORD_VERSION,
        "label": AI_LABEL,
        "software": dict(first["software"]),
        **record_time(),
        "input": dict(first["input"]),
        "faces": records,
        "outputs": [],
    }
