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
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from engine import provenance

PNG_KEY_LABEL_REMOVED = "ffe-label-removed"
FUSED = "fused"  # result_key's "scale asked" of a face fused from frames (engine.video_enhance)

#: The visible labels (the GUI's words): interpolation is not called "AI".
VISIBLE_AI_LABEL = "AI-enhanced \u2014 not original evidence"
VISIBLE_INTERPOLATED_LABEL = "Interpolated \u2014 not original evidence"
STRIP_RGB = (180, 20, 20)
OUTLINE_RGB = (255, 32, 32)
#: A label must stay this many screen pixels tall when the whole image is fitted to this screen.
MIN_SCREEN_TEXT_PX = 12
FIT_SCREEN = (1920, 1080)


def visible_label(entry: Any) -> str:
    """The visible label for a model (an ``engine.registry.ModelEntry``)."""
    return VISIBLE_INTERPOLATED_LABEL if entry.is_baseline else VISIBLE_AI_LABEL


def label_text_px(width: int, height: int) -> int:
    """Text size for a label on a ``width`` x ``height`` image: at least
    :data:`MIN_SCREEN_TEXT_PX` tall on screen when the whole image is fitted to
    :data:`FIT_SCREEN` (an 8000x6000 photo gets 67 px letters)."""
    fit = max(width / FIT_SCREEN[0], height / FIT_SCREEN[1], 1.0)
    return math.ceil(MIN_SCREEN_TEXT_PX * fit)


# Stand-ins for characters Pillow's bundled font has no glyph for (it draws an empty box).
_ASCII_STAND_INS = {"\u2014": "-", "\u2013": "-", "\u2248": "~", "\u03c3": "sigma"}


def drawable_text(text: str, font: Any) -> str:
    """``text`` with every character ``font`` would draw as its empty "missing glyph" box
    replaced: dashes by "-", accented letters by their base letter, anything else by "?". A
    burned-in label must read the same everywhere; a box in place of a dash or a letter of a
    file name reads as damage."""
    missing = font.getmask("\uffff")
    box = (missing.getbbox(), bytes(missing))

    def has_glyph(ch: str) -> bool:
        mask = font.getmask(ch)
        return ch.isspace() or (mask.getbbox(), bytes(mask)) != box

    out = []
    for ch in text:
        if has_glyph(ch):
            out.append(ch)
            continue
        plain = _ASCII_STAND_INS.get(ch)
        if plain is None:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            plain = base if base and all(has_glyph(c) for c in base) else "?"
        out.append(plain)
    return "".join(out)


def add_label_strip(rgb: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """``rgb`` with a red strip below it carrying ``lines`` in white (no pixel is covered).

    Drawn with Pillow (no Qt) so the command line and batch runs label their images the way the
    GUI's exports are labelled; long lines wrap at word boundaries to fit the width.
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = rgb.shape[:2]
    size = label_text_px(w, h)
    font = ImageFont.load_default(size)
    pad = max(2, size // 4)
    wrapped: list[str] = []
    for line in lines:
        current = ""
        for word in drawable_text(line, font).split():
            trial = f"{current} {word}".strip()
            if current and font.getlength(trial) > w - 2 * pad:
                wrapped.append(current)
                current = word
            else:
                current = trial
        wrapped.append(current)
    line_h = math.ceil(size * 1.25)
    strip = Image.new("RGB", (w, line_h * len(wrapped) + 2 * pad), STRIP_RGB)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(wrapped):
        draw.text((pad, pad + i * line_h), line, fill=(255, 255, 255), font=font)
    return np.vstack([np.asarray(rgb, dtype=np.uint8), np.asarray(strip)])


def replaced_region(aligned: Any, scale: float) -> list[tuple[float, float]]:
    """The corners of the area an aligned face replaced, in the image enlarged by ``scale``
    (``aligned`` is an ``engine.faces.AlignedFace``: its crop mapped back to the still)."""
    m = np.vstack([np.asarray(aligned.matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(m)
    n = float(aligned.size)
    corners = np.array(
        [[-0.5, -0.5, 1], [n - 0.5, -0.5, 1], [n - 0.5, n - 0.5, 1], [-0.5, n - 0.5, 1]]
    )
    still = corners @ inverse.T
    return [((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5) for x, y, _ in still]


def result_region(result: Any, scale: float) -> list[tuple[float, float]]:
    """The corners of the area an ``engine.enhance.Result`` replaced, in the image enlarged by
    ``scale``: its aligned frame, or for an x1 restore exactly its crop box."""
    box = getattr(result, "crop_box", None)
    if box is None:
        return replaced_region(result.aligned, scale)
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return [(x * scale - 0.5, y * scale - 0.5) for x, y in corners]


def outline_regions(
    rgb: np.ndarray, regions: Iterable[Sequence[tuple[float, float]]]
) -> np.ndarray:
    """A copy of ``rgb`` with each replaced region outlined (line width scaled to the image)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    width = max(1, label_text_px(image.width, image.height) // 6)
    for corners in regions:
        points = [tuple(map(float, p)) for p in corners]
        draw.line([*points, points[0]], fill=OUTLINE_RGB, width=width, joint="curve")
    return np.asarray(image)


PNG_KEY_VISIBLE_LABEL = "ffe-visible-label"


def labelled(
    rgb: np.ndarray, entry: Any, regions: Sequence[Sequence[tuple[float, float]]] = ()
) -> tuple[np.ndarray, dict[str, str]]:
    """What the command line and batch runs write: ``rgb`` with each replaced region outlined
    and the visible label strip below it, plus a PNG text chunk saying so (the picture's
    height above the strip, so the label-free pixels can be cut back out)."""
    outlined = outline_regions(rgb, regions) if len(regions) else np.asarray(rgb)
    text = visible_label(entry)
    out = add_label_strip(outlined, [text])
    note = {
        "text": text,
        "picture_rows": int(rgb.shape[0]),
        "strip_rows": int(out.shape[0] - rgb.shape[0]),
        "outlined_regions": len(regions),
    }
    return out, {PNG_KEY_VISIBLE_LABEL: json.dumps(note, ensure_ascii=False)}


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


def scale_tag(plan: Any) -> str:
    """The part of an output name that says how a face was enlarged: ``x4``, or ``native75``
    for a face run at its native 75 px (an :class:`engine.resolution.Plan`)."""
    if plan.mode == "native":
        return f"native{plan.lr_size}"
    return f"x{plan.scale}"  # an x1 restore: "x1"


def result_output_name(stem: str, result: Any, role: str) -> str:
    """:func:`output_name` for an ``engine.enhance.Result`` (its plan's tag when it has one)."""
    plan = getattr(result, "plan", None)
    scale: int | str = scale_tag(plan) if plan is not None and role == "face" else result.scale
    fusion = getattr(result, "fusion", None)
    if fusion is not None:  # "..._s4_idrn_x4_fused8.png": the frames fused are in the name
        scale = f"{scale if isinstance(scale, str) else f'x{scale}'}_fused{fusion['frames_used']}"
    return output_name(stem, result.model_id, scale, role, result.face_index)


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
    record["export"]["pixels"] = what_the_pixels_are(result)
    if role == "full":
        record["export"]["faces"] = [r.face_index for r in (result, *others)]
        record["export"]["other_faces"] = [r.provenance for r in others]
    return record


def what_the_pixels_are(result: Any) -> dict[str, Any]:
    """Where the exported face came from, in words that cannot be misread: the recorded pixels
    of the still (an axis-aligned box, never resampled) and the model input (aligned and
    resampled: not the recorded pixels)."""
    from engine import resolution

    out: dict[str, Any] = {}
    aligned = getattr(result, "aligned", None)
    lr = getattr(result, "lr", None)
    box = getattr(result, "crop_box", None)
    if box is not None:  # an x1 restore: the model read the recorded pixels themselves
        out["model_input"] = {
            "size_px": [int(lr.shape[1]), int(lr.shape[0])] if lr is not None else None,
            "what": "the recorded pixels: an axis-aligned crop of the still, not aligned and not "
            "resampled (x1 restore)",
        }
        out["recorded_pixels"] = {
            "box": [int(v) for v in box],
            "what": "the still's own pixels the x1 restore read and replaced (x0, y0, x1, y1), "
            "as recorded; the output lies on the same pixel grid",
        }
        out["pixels_resampled"] = False
        out["evidence_shrink"] = 1.0
        return out
    if lr is not None:
        out["model_input"] = {
            "size_px": int(lr.shape[0]),
            "what": f"the face aligned and resampled to {lr.shape[0]} px: model input, "
            "not the recorded pixels",
        }
    if aligned is not None:
        corners = resolution.frame_box(aligned.matrix, aligned.size)
        out["recorded_pixels"] = {
            "box": list(corners),
            "what": "the still's own pixels around the face (x0, y0, x1, y1), as recorded",
        }
    plan = getattr(result, "plan", None)
    if plan is not None:
        out["evidence_shrink"] = round(plan.evidence_shrink, 4)
    return out


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
        "details": {"label_removed": export.get("label_removed")} | fused_frames(result),
    }


def fused_frames(result: Any) -> dict[str, Any]:
    """For a face fused from frames: the frames used (index, time, pixel SHA-256, residual),
    what the case log's "export" entry names; {} for a face of one still."""
    fusion = getattr(result, "fusion", None)
    if fusion is None:
        return {}
    frames = [
        {
            "index": f.get("index"),
            "time_s": f.get("time_s"),
            "pixels_sha256": f.get("pixels_sha256"),
            "residual_rms": (f.get("registration") or {}).get("residual_rms"),
        }
        for f in fusion.get("frames") or []
        if (f.get("registration") or {}).get("used")
    ]
    return {"fusion": {"method": fusion.get("fusion_method"), "frames_used": frames}}


def result_key(result: Any) -> tuple[int, str, int | str]:
    """(face index, model id, the scale asked for: a factor or "auto"; "fused" for a face fused
    from several frames of a clip): how a session keeps results and their checks apart (a face
    at Auto, at a fixed factor and fused from frames are three results)."""
    plan = getattr(result, "plan", None)
    asked = "auto" if plan is not None and plan.requested == "auto" else result.scale
    if getattr(result, "fusion", None) is not None:
        asked = FUSED
    return (result.face_index, result.model_id, asked)


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
    ordered = sorted(
        results, key=lambda r: (r.face_index, str(result_key(r)[2]), order.get(r.model_id, 99))
    )
    # Faces fused from frames have their own checks (keyed (face, "fused")): they go in the
    # first report and never split it.
    fused = [r for r in ordered if result_key(r)[2] == FUSED]
    plain = [r for r in ordered if result_key(r)[2] != FUSED]
    pairs = [(r.face_index, r.model_id) for r in plain]
    if len(set(pairs)) == len(pairs):
        return [("", ordered, _fidelity_map(ordered, fidelity))]
    groups = []
    for asked in sorted({result_key(r)[2] for r in plain}, key=str):
        chosen = [r for r in plain if result_key(r)[2] == asked]
        if not groups:
            chosen += fused
        suffix = f"_{asked}" if isinstance(asked, str) else f"_x{asked}"
        groups.append((suffix, chosen, _fidelity_map(chosen, fidelity)))
    return groups


def _fidelity_map(
    results: list, fidelity: Mapping[tuple[int, str, int], tuple[Any, Any]]
) -> dict[int, Any]:
    """One FidelityReport per face holding the checks of exactly these results; those of the
    faces fused from frames under (face index, "fused")."""
    out: dict[Any, Any] = {}
    fused = [r for r in results if result_key(r)[2] == FUSED]
    for face_index in sorted({r.face_index for r in fused}):
        known = [fidelity.get(result_key(r)) for r in fused if r.face_index == face_index]
        known = [k for k in known if k is not None]
        if known:
            models = {mf.model_id: mf for mf, _ in known}
            out[(face_index, FUSED)] = dataclasses.replace(known[0][1], models=models)
    results = [r for r in results if result_key(r)[2] != FUSED]
    for face_index in sorted({r.face_index for r in results}):
        known = [fidelity.get(result_key(r)) for r in results if r.face_index == face_index]
        known = [k for k in known if k is not None]
        if not known:
            continue
        base = max((k[1] for k in known), key=lambda rep: len(rep.models))
        models = {mf.model_id: mf for mf, _ in known}
        out[face_index] = dataclasses.replace(base, models=models)
    return out
