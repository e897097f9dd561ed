"""The records an export carries, built once for the GUI, the CLI and batch runs alike.

* :func:`output_name` -- the one naming convention for output files (0-based face index,
  as batch runs and the CLI write them);
* :func:`export_record` -- the provenance record of an exported PNG, with its "export" section
  (role, visible label, examiner, the reason a label was removed);
* :func:`export_png_text` -- that record as PNG text chunks;
* :func:`export_log_fields` -- the fields of the case-log "export" entry (the worker adds the
  output's hash and the label-free image's pixel hash once the file is written);
* :func:`report_groups` -- which results and fidelity checks go in which case-report file.

No Qt here; the visible label texts are given by the caller.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine import provenance

PNG_KEY_LABEL_REMOVED = "ffe-label-removed"


def output_name(stem: str, model_id: str, scale: int | str, role: str, face_index: int = 0) -> str:
    """``<stem>_face<k>_<model>_x<scale>.png`` for a face (k from 0), ``..._full.png`` for the
    whole still. ``scale`` is a factor, or a word that says how the scale was set ("auto" for a
    run at Auto, "native75" for a face enhanced at its native 75 px: engine.resolution)."""
    tag = f"{model_id}_{scale}" if isinstance(scale, str) else f"{model_id}_x{int(scale)}"
    if role == "face":
        return f"{stem}_face{int(face_index)}_{tag}.png"
    if role == "full":
        return f"{stem}_{tag}_full.png"
    raise ValueError(f"unknown output role {role!r}")


def export_record(
    result: Any,
    role: str,
    *,
    visible_label: bool,
    label: str,
    app_label: str,
    examiner: str,
    label_removed: Mapping[str, Any] | None = None,
    others: Sequence[Any] = (),
) -> dict[str, Any]:
    """``result``'s provenance with the "export" section. ``others``: for a full image, the
    results of the other faces pasted in (same model and scale)."""
    record = copy.deepcopy(result.provenance)
    record["export"] = {
        "role": role,
        "visible_label": visible_label,
        "label": label,
        "app_label": app_label,
        "examiner": examiner,
        "note": (
            "a red label strip was appended below the image"
            if visible_label
            else "no visible label; the label is in this file's PNG text"
        ),
    }
    if not visible_label:
        # Why the examiner removed the visible label, and the case-log entry that says so.
        record["export"]["label_removed"] = dict(label_removed or {})
    if role == "full":
        record["export"]["faces"] = [r.face_index for r in (result, *others)]
        record["export"]["other_faces"] = [r.provenance for r in others]
    return record


def export_png_text(record: Mapping[str, Any]) -> dict[str, str]:
    """PNG text chunks of an export: provenance's chunks, plus the reason a label was removed."""
    text = provenance.png_text(dict(record))
    removed = record["export"].get("label_removed")
    if not record["export"]["visible_label"]:
        text[PNG_KEY_LABEL_REMOVED] = str((removed or {}).get("reason"))
    return text


def export_log_fields(still: Any, result: Any, record: Mapping[str, Any]) -> dict[str, Any]:
    """The case-log "export" entry's fields, from the still, the result and its export record."""
    export = record["export"]
    return {
        "input_path": str(still.path) if still.path is not None else None,
        "input_sha256": still.sha256,
        "model_id": result.model_id,
        "weights_sha256": (result.provenance.get("model") or {}).get("weights_sha256"),
        "scale": int(result.scale),
        "device": result.provenance.get("device"),
        "parameters": {
            "role": export["role"],
            "face_index": int(result.face_index),
            "faces": export.get("faces", [int(result.face_index)]),
            "visible_label": export["visible_label"],
        },
        "details": {"label_removed": export.get("label_removed")},
    }


def report_groups(
    results: Iterable[Any],
    fidelity: Mapping[tuple[int, str, int], tuple[Any, Any]],
    model_order: Sequence[str] = (),
) -> list[tuple[str, list, dict]]:
    """(file suffix, results, {face index: FidelityReport}) for each case-report file.

    ``fidelity`` maps (face, model, scale) to (ModelFidelity, the FidelityReport it came from).
    engine.report looks fidelity up by face and model, not scale; when one model ran on one
    face at two scales, a single report would show one scale's checks under both, so such a
    session gets one report per scale (suffix "_x4", "_x8").
    """
    order = {model_id: i for i, model_id in enumerate(model_order)}
    ordered = sorted(results, key=lambda r: (r.face_index, r.scale, order.get(r.model_id, 99)))
    pairs = [(r.face_index, r.model_id) for r in ordered]
    if len(set(pairs)) == len(pairs):
        return [("", ordered, _fidelity_map(ordered, fidelity))]
    groups = []
    for scale in sorted({r.scale for r in ordered}):
        chosen = [r for r in ordered if r.scale == scale]
        groups.append((f"_x{scale}", chosen, _fidelity_map(chosen, fidelity)))
    return groups


def _fidelity_map(
    results: list, fidelity: Mapping[tuple[int, str, int], tuple[Any, Any]]
) -> dict[int, Any]:
    """One FidelityReport per face holding the checks of exactly these results."""
    out: dict[int, Any] = {}
    for face_index in sorted({r.face_index for r in results}):
        known = [
            fidelity.get((r.face_index, r.model_id, r.scale))
            for r in results
            if r.face_index == face_index
        ]
        known = [k for k in known if k is not None]
        if not known:
            continue
        base = max((k[1] for k in known), key=lambda rep: len(rep.models))
        models = {mf.model_id: mf for mf, _ in known}
        out[face_index] = dataclasses.replace(base, models=models)
    return out
