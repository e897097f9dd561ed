"""The case report: one self-contained HTML page an analyst can hand over with the results.

Page one is a summary an analyst can read alone: case, examiner, the evidence file and its
SHA-256, the faces, the models, the key fidelity results, the case log's verdict, and what AI
enhancement can and cannot show. Then the evidence (name, SHA-256, size, colour mode, image);
one page per output (recorded pixels, model input, output, difference, the fidelity checks with
their meaning, model, paper citation, weights SHA-256, parameters); the case log; and an appendix
with the full provenance records (in the PDF, a pointer to the HTML that holds them).

Images are embedded as base64 PNG ``data:`` URIs, so the page needs no other file. The markup is
deliberately plain (h1-h3, p, table, img, pre; no CSS grid, no scripts) because the app also
renders it to PDF through Qt's ``QTextDocument``, which supports only simple HTML and does load
``data:`` images.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from engine import __version__
from engine.provenance import SOFTWARE

THUMB = 128  # side of the face thumbnails, px
PAGE_BREAK = "page-break-before: always"  # honoured by Qt's PDF printing and by browsers' print
STILL_THUMB = 480  # longest side of the evidence thumbnail, px

STATEMENT_TITLE = "What AI enhancement can and cannot show"
STATEMENT = (
    "AI enhancement does not recover the face that the camera failed to record. A "
    "super-resolution model fills in detail it learned from other people's faces: each enhanced "
    "image is one plausible face that is consistent with the low-resolution input, and many "
    "other faces are equally consistent with it. An enhanced image is therefore not evidence of "
    "identity: it must not be used on its own to identify or exclude a person, and it should not "
    "be shown to a witness for identification. The original file, identified below by its "
    "SHA-256, is the evidence. What enhancement can do is make the coarse structure that the "
    "evidence does contain easier to see and compare. Beside each output the report shows the "
    "recorded pixels around the face (each pixel a square block, nothing resampled) and, "
    "separately, the model input (the face aligned and resampled to the model's input size, "
    "which is not what was recorded). The fidelity checks show where "
    "an output contradicts the evidence; passing them does not show that the invented detail is "
    "correct. Every enhanced image is labelled as AI-generated and can be reproduced from the "
    "original with the model, weights and parameters recorded here."
)


# --------------------------------------------------------------------------- small helpers


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or mapping key: callers may pass engine objects or plain dicts."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def png_data_uri(rgb: np.ndarray) -> str:
    """An (H, W, 3) or (H, W) uint8 image as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(rgb: np.ndarray | None, alt: str) -> str:
    if rgb is None:
        return "<p>(no image)</p>"
    h, w = np.asarray(rgb).shape[:2]
    return f'<img src="{png_data_uri(rgb)}" width="{w}" height="{h}" alt="{_e(alt)}">'


def blocks(rgb: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Enlarge with nearest neighbour so every input pixel shows as a square block (no smoothing
    that could suggest detail)."""
    h = rgb.shape[0]
    factor = max(1, side // h)
    return np.repeat(np.repeat(np.asarray(rgb), factor, axis=0), factor, axis=1)


def _still_thumbnail(rgb: np.ndarray) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    image.thumbnail((STILL_THUMB, STILL_THUMB), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _table(rows: Sequence[tuple[str, str]]) -> str:
    """Two-column key/value table; values are already escaped HTML."""
    body = "".join(
        f"<tr><th align='left' valign='top'>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows
    )
    return f"<table border='1' cellspacing='0' cellpadding='4'>{body}</table>"


def _code(text: Any) -> str:
    return f"<code>{_e(text)}</code>"


# --------------------------------------------------------------------------- sections


def _evidence_section(still: Any) -> str:
    width, height = _get(still, "width"), _get(still, "height")
    rgb = _get(still, "rgb")
    if (width is None or height is None) and rgb is not None:
        height, width = np.asarray(rgb).shape[:2]
    path = _get(still, "path")
    rows = [
        (
            "File name",
            _e(_get(still, "name") or (path and str(path).replace("\\", "/").split("/")[-1])),
        ),
        ("Path", _e(path)),
        ("SHA-256", _code(_get(still, "sha256"))),
        ("Size", _e(f"{width} x {height} pixels")),
        ("Colour mode (as stored)", _e(_get(still, "original_mode"))),
        ("Format", _e(_get(still, "format"))),
    ]
    evidence = _get(still, "evidence")
    if evidence is not None:  # engine.evidence_quality: what the file says about its damage
        rows.append(("Evidence quality", _e(evidence.summary())))
    video = _get(still, "video")
    if video:  # a frame of a clip (engine.video.FrameStill): the clip is the evidence file
        clip, frame = video.get("clip") or {}, video.get("frame") or {}
        rows[2] = ("SHA-256 of the frame's decoded pixels", _code(_get(still, "sha256")))
        rows += [
            ("Clip", _e(clip.get("name"))),
            ("Clip SHA-256", _code(clip.get("sha256"))),
            (
                "Container / codec",
                _e(
                    f"{clip.get('container')} / {clip.get('codec')}, {clip.get('frame_count')} "
                    f"frames at {clip.get('fps')} fps; decoded by {clip.get('decoder')}"
                ),
            ),
            (
                "Frame",
                _e(
                    f"index {frame.get('index')}, {frame.get('time_s')} s, type "
                    f"{frame.get('pict_type')}, pts {frame.get('pts')}"
                ),
            ),
        ]
        if clip.get("damage"):
            rows.append(("Clip damage", _e(clip["damage"])))
    parts = ["<h2>Evidence</h2>", _table(rows)]
    if rgb is not None:
        parts.append("<p>The evidence image (reduced for display):</p>")
        parts.append(f"<p>{_img(_still_thumbnail(np.asarray(rgb)), 'evidence image')}</p>")
    return "\n".join(parts)


def _choice_rows(choice: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The model choice (engine.evidence_quality.model_choice): recommended, chosen, why."""
    if not choice:
        return []
    return [
        ("Recommended model", _e(choice.get("recommended"))),
        ("Why", _e(choice.get("reason"))),
    ]


CONSISTENCY_NOTE = (
    "How data consistency treats compression: the output shrunk back and the input are both "
    "blurred by one input pixel before they are compared, so JPEG blocks and noise that the "
    "model removed do not count against it; a different face or changed features do (the "
    "whole face and each eye, the nose and the mouth are judged; the worst counts). The line "
    "is stricter for clean lossless evidence than for compressed, noisy or video evidence. "
    "Detail finer than the evidence's pixels, and small changes hidden in heavy compression, "
    "cannot be checked against the evidence."
)


def _model_info(model_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Title, authors and citation from the registry; the provenance record as a fallback."""
    model = dict(record.get("model") or {})
    try:
        from engine import registry

        entry = registry.get(model_id)
        model.update(
            label=entry.label,
            paper=entry.paper,
            title=entry.title,
            authors=entry.authors,
            citation=entry.citation,
            variant=entry.variant,
        )
    except (KeyError, ImportError):
        pass
    return model


def _report_for(fidelity: Any, face_index: int, scale: int, fused: bool = False) -> Any:
    """One face's FidelityReport from ``fidelity``: a single report, or a mapping keyed by
    ``(face_index, scale)`` (one face enhanced at several scales) or by ``face_index``; a face
    fused from frames has its own, under ``(face_index, "fused")``."""
    if isinstance(fidelity, Mapping) and "models" not in fidelity:
        if fused:
            return fidelity.get((face_index, "fused"))
        found = fidelity.get((face_index, scale))
        return found if found is not None else fidelity.get(face_index)
    return None if fused else fidelity


def _fused(result: Any) -> dict[str, Any] | None:
    """The fusion record of a face fused from frames (engine.enhance.Result.fusion), or None."""
    return _get(result, "fusion")


def _fidelity_for(
    fidelity: Any, face_index: int, scale: int, model_id: str, fused: bool = False
) -> list[dict[str, Any]]:
    """The three check dicts of one model's output, or [] when none were computed."""
    report = _report_for(fidelity, face_index, scale, fused)
    if report is None:
        return []
    data = report.to_dict() if hasattr(report, "to_dict") else report
    model = (data.get("models") or {}).get(model_id)
    if model is None:
        return []
    names = ("consistency", "drift", "agreement", "resolution")
    return [model[name] for name in names if name in model]


def _difference_image(
    fidelity: Any, face_index: int, scale: int, model_id: str, fused: bool = False
) -> np.ndarray | None:
    report = _report_for(fidelity, face_index, scale, fused)
    models = getattr(report, "models", None)
    if not isinstance(models, Mapping) or model_id not in models:
        return None
    return getattr(models[model_id].consistency, "difference", None)


_SHORT_NAMES = {
    "consistency": "Data consistency",
    "drift": "Landmark drift",
    "agreement": "Model agreement",
    "resolution": "Evidence resolution",
}
_CHECK_NAMES = {
    "consistency": "Data consistency (PSNR, output shrunk back vs input)",
    "drift": "Landmark drift",
    "agreement": "Agreement between models (dlib face descriptor)",
    "resolution": "Evidence resolution (shrink before the model)",
}


def _threshold_text(value: Any) -> str:
    """A threshold for people: 30, 0.1, 0.55, 1.11 (not 1.1111111111111112)."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _format_value(check: Mapping[str, Any]) -> str:
    value = check.get("value")
    if value is None:
        return _e(check.get("detail") or "not available")
    unit = check.get("unit") or ""
    return _e(f"{value:.3f} {unit}".strip())


def _fidelity_table(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return "<p>No fidelity checks were computed for this output.</p>"
    head = "<tr><th>Check</th><th>Value</th><th>Threshold</th><th>Result</th><th>Meaning</th></tr>"
    rows = []
    for c in checks:
        status = str(c.get("status", "")).upper()
        if status == "WARN":
            status = "<b>WARNING</b>"
        rows.append(
            "<tr>"
            f"<td>{_e(_CHECK_NAMES.get(c.get('name'), c.get('name')))}</td>"
            f"<td>{_format_value(c)}</td>"
            f"<td>{_e(_threshold_text(c.get('threshold')))}</td>"
            f"<td>{status if status.startswith('<b>') else _e(status)}</td>"
            f"<td>{_e(c.get('meaning'))}"
            + (f" ({_e(c['detail'])})" if c.get("detail") and c.get("value") is not None else "")
            + "</td></tr>"
        )
    table = f"<table border='1' cellspacing='0' cellpadding='4'>{head}{''.join(rows)}</table>"
    if any(c.get("name") == "consistency" for c in checks):
        table += f"<p><small>{_e(CONSISTENCY_NOTE)}</small></p>"
    return table


def _recorded_pixels(result: Any, still_rgb: Any) -> np.ndarray | None:
    """The still's own pixels around the result's face (engine.resolution.evidence_crop)."""
    aligned = _get(result, "aligned")
    if still_rgb is None or aligned is None:
        return None
    from engine import resolution

    try:
        crop, _ = resolution.evidence_crop(
            np.asarray(still_rgb), matrix=aligned.matrix, size=aligned.size
        )
    except ValueError:
        return None
    return crop


def _result_section(number: int, result: Any, fidelity: Any, still_rgb: Any = None) -> str:
    model_id = _get(result, "model_id")
    scale = _get(result, "scale")
    face_index = int(_get(result, "face_index", 0) or 0)
    record = _get(result, "provenance") or {}
    model = _model_info(model_id, record)
    weights = model.get("weights_sha256")
    params = record.get("parameters") or {}
    param_text = "<br>".join(
        f"{_e(k)} = {_e(json.dumps(v, ensure_ascii=False))}" for k, v in sorted(params.items())
    )
    rows = [
        ("Model", _e(f"{model.get('label') or model_id} ({model_id})")),
        ("Paper", _e(model.get("paper"))),
        ("Title", _e(model.get("title"))),
        ("Authors", _e(model.get("authors"))),
        ("Citation", _e(model.get("citation"))),
        ("Variant", _e(model.get("variant"))),
        *_choice_rows(record.get("model_choice")),
        ("Scale", _e(f"x{scale}")),
        (
            "Weights file",
            _e(model.get("weights_file") or "none (interpolation: no learned weights)"),
        ),
        ("Weights SHA-256", _code(weights) if weights else _e("none")),
        ("Device", _e(record.get("device"))),
        ("Parameters", param_text or _e("none recorded")),
    ]
    lr = _get(result, "lr")
    sr = _get(result, "sr")
    fusion = _fused(result)
    diff = _difference_image(fidelity, face_index, scale, model_id, fusion is not None)
    recorded = _recorded_pixels(result, still_rgb)
    cells = []
    if recorded is not None:
        h, w = recorded.shape[:2]
        cells.append(
            (
                f"Recorded pixels: {w}x{h} px of the still, as recorded (each block is one pixel)",
                blocks(recorded),
            )
        )
    made = (
        "Interpolated output (no AI)"
        if model.get("variant") == "baseline"
        else ("Enhanced output (AI-generated)")
    )
    if fusion is not None:
        n = fusion.get("frames_used")
        single = _get(result, "single")
        cells += [
            (
                f"Model input: {n} frames registered and fused at {lr.shape[0]} px - "
                "not the recorded pixels",
                blocks(lr),
            ),
            (f"Single frame {_reference_frame(fusion)}, same model: {made}", single),
            (f"Fused from {n} frames, same model: {made}", sr),
        ]
    else:
        restored = _get(result, "crop_box") is not None  # an x1 restore read recorded pixels
        cells += [
            (
                f"Model input: the recorded pixels, a {lr.shape[1]}x{lr.shape[0]} px crop of the "
                "still (x1 restore: no alignment, no resampling)"
                if lr is not None and restored
                else f"Model input: aligned and resampled to {lr.shape[0]} px - not the recorded pixels"
                if lr is not None
                else "Model input",
                None if lr is None else blocks(lr),
            ),
            (made, sr),
        ]
    if diff is not None:
        cells.append(("Difference, output shrunk back vs input (x4)", blocks(diff)))
    # A fused output has five pictures: the inputs on one row, the outputs side by side on the
    # next (one row of five is wider than a PDF page).
    split = len(cells) - (3 if diff is not None else 2) if fusion is not None else len(cells)
    images = "".join(
        "<table cellpadding='4'><tr>"
        + "".join(
            f"<td align='center' valign='top'>{_img(img, cap)}<br>{_e(cap)}</td>"
            for cap, img in row
        )
        + "</tr></table>"
        for row in (cells[:split], cells[split:])
        if row
    )
    return "\n".join(
        [
            # one page per output: its images and checks together
            f"<h3 style='{PAGE_BREAK}'>Output {number}. Face {face_index + 1}: "
            f"{_e(model.get('label') or model_id)} x{_e(scale)}{_e(_fused_words(result))}</h3>",
            images,
            _what_happened(params),
            _fusion_table(params.get("fusion")),
            "<p><b>Fidelity checks</b></p>",
            _fidelity_table(
                _fidelity_for(fidelity, face_index, scale, model_id, fusion is not None)
            ),
            "<p><b>Model and parameters</b></p>",
            _table(rows),
            f"<p>The full provenance record of this output is number {number} in the appendix.</p>",
        ]
    )


def _fused_words(result: Any) -> str:
    """ ", fused from 7 frames" for a face fused from frames, else nothing."""
    fusion = _fused(result)
    return "" if fusion is None else f", fused from {fusion.get('frames_used')} frames"


def _reference_frame(fusion: Mapping[str, Any]) -> Any:
    """The clip's frame index of the fusion's reference frame."""
    frames = fusion.get("frames") or []
    position = fusion.get("reference_position")
    if isinstance(position, int) and 0 <= position < len(frames):
        return frames[position].get("index")
    return "?"


def _what_happened(params: Mapping[str, Any]) -> str:
    text = params.get("what_happened")
    return f"<p><b>Resolution</b>: {_e(text)}</p>" if text else ""


def _fusion_table(fusion: Mapping[str, Any] | None) -> str:
    """The frames of a multi-frame fusion (engine.fusion's record): used, rejected, and why."""
    if not fusion:
        return ""
    head = (
        "<p><b>Multi-frame fusion</b>: "
        + _e(f"{fusion.get('frames_used')} of {fusion.get('frames_given')} frames used; ")
        + _e(fusion.get("fusion"))
        + "<br>"
        + _e(fusion.get("registration"))
        + "</p>"
    )
    rows = [
        "<tr><th>frame</th><th>time (s)</th><th>type</th><th>pixels SHA-256</th>"
        "<th>ECC correlation</th><th>residual (grey levels)</th><th>used</th></tr>"
    ]
    for f in fusion.get("frames") or []:
        reg = f.get("registration") or {}
        used = "yes" if reg.get("used") else f"no: {reg.get('rejected')}"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    _e(f.get("index")),
                    _e(f.get("time_s")),
                    _e(f.get("pict_type")),
                    _code(f.get("pixels_sha256")),
                    _e(reg.get("ecc_correlation")),
                    _e(reg.get("residual_rms")),
                    _e(used),
                )
            )
            + "</tr>"
        )
    return head + "<table border='1' cellspacing='0' cellpadding='3'>" + "".join(rows) + "</table>"


def _log_section(verification: Any) -> str:
    parts = ["<h2>Case log</h2>"]
    if verification is None:
        parts.append("<p>The case log was not verified for this report.</p>")
        return "\n".join(parts)
    data = verification.to_dict() if hasattr(verification, "to_dict") else dict(verification)
    ok = bool(data.get("ok"))
    verdict = "INTACT" if ok else "NOT INTACT"
    rows = [
        ("File", _e(data.get("path"))),
        ("Verdict", f"<b>{verdict}</b>"),
        ("Entries", _e(data.get("entries"))),
        ("Chain head (SHA-256 of the last entry)", _code(data.get("head_sha256"))),
        ("Summary", _e(data.get("summary"))),
    ]
    parts.append(_table(rows))
    problems = data.get("problems") or []
    if problems:
        items = "".join(
            f"<li>line {_e(p.get('line'))}: {_e(p.get('kind'))}: {_e(p.get('message'))}</li>"
            for p in problems[:50]
        )
        parts.append(f"<ul>{items}</ul>")
    parts.append(
        "<p>Record the chain head above outside the log (for example in the case file): a later "
        "check that finds the same head shows that no entry up to it was altered.</p>"
    )
    return "\n".join(parts)


def _summary_section(
    still: Any,
    results: Sequence[Any],
    fidelity: Any,
    verification: Any,
    meta: list[tuple[str, str]],
    faces: int | None,
) -> str:
    """Page one: who, what evidence, which faces and models, the key checks, the log's verdict
    and the statement of what enhancement can and cannot show."""
    path = _get(still, "path")
    name = _get(still, "name") or (path and str(path).replace("\\", "/").split("/")[-1])
    width, height = _get(still, "width"), _get(still, "height")
    rgb = _get(still, "rgb")
    if (width is None or height is None) and rgb is not None:
        height, width = np.asarray(rgb).shape[:2]
    enhanced = sorted({int(_get(r, "face_index", 0) or 0) + 1 for r in results})
    face_text = "" if faces is None else f"{faces} found in the still; "
    face_text += (
        "enhanced: " + ", ".join(f"face {i}" for i in enhanced) if enhanced else "none enhanced"
    )
    models: list[str] = []
    for r in results:
        info = _model_info(_get(r, "model_id"), _get(r, "provenance") or {})
        text = f"{info.get('label') or _get(r, 'model_id')} x{_get(r, 'scale')}{_fused_words(r)}"
        if text not in models:
            models.append(text)
    if verification is None:
        log_text = "not verified for this report"
    else:
        data = verification.to_dict() if hasattr(verification, "to_dict") else dict(verification)
        log_text = f"{'INTACT' if data.get('ok') else 'NOT INTACT'}, {data.get('entries')} entries"
    rows = [
        *meta,
        ("Evidence file", _e(name)),
        ("Evidence SHA-256", _code(_get(still, "sha256"))),
        ("Evidence size", _e(f"{width} x {height} pixels")),
        ("Faces", _e(face_text)),
        ("Models", _e(", ".join(models) or "none")),
        ("Case log", _e(log_text)),
    ]
    return "\n".join(
        [
            "<h2>Summary</h2>",
            _table(rows),
            "<h3>Key fidelity results</h3>",
            _key_results(results, fidelity),
            f"<h2>{_e(STATEMENT_TITLE)}</h2>",
            f"<p style='page-break-after: always'>{_e(STATEMENT)}</p>",
        ]
    )


def _key_results(results: Sequence[Any], fidelity: Any) -> str:
    """One line per output: each check's result (WARNING in bold) and value."""
    if not results:
        return "<p>No enhancement was made.</p>"
    names = ("consistency", "drift", "agreement", "resolution")
    head = (
        "<tr><th>Output</th>" + "".join(f"<th>{_e(_SHORT_NAMES[n])}</th>" for n in names) + "</tr>"
    )
    rows = []
    for number, r in enumerate(results, start=1):
        model_id, scale = _get(r, "model_id"), _get(r, "scale")
        face_index = int(_get(r, "face_index", 0) or 0)
        label = _model_info(model_id, _get(r, "provenance") or {}).get("label") or model_id
        fused = _fused(r) is not None
        found = _fidelity_for(fidelity, face_index, scale, model_id, fused)
        checks = {c.get("name"): c for c in found}
        cells = []
        for n in names:
            c = checks.get(n)
            if c is None:
                cells.append("<td>-</td>")
                continue
            status = str(c.get("status", "")).upper()
            word = "<b>WARNING</b>" if status == "WARN" else _e(status)
            value = "" if c.get("value") is None else f"<br>{_format_value(c)}"
            cells.append(f"<td>{word}{value}</td>")
        rows.append(
            f"<tr><td>{number}. Face {face_index + 1}: {_e(label)} x{_e(scale)}"
            f"{_e(_fused_words(r))}</td>" + "".join(cells) + "</tr>"
        )
    return (
        f"<table border='1' cellspacing='0' cellpadding='4'>{head}{''.join(rows)}</table>"
        "<p>Each output has its own page below with its images and the meaning of each check. "
        "A WARNING means the output contradicts the evidence or the other models; passing "
        "does not show that the added detail is real.</p>"
    )


def _appendix(results: Sequence[Any], provenance_in: tuple[str, str] | None) -> str:
    """The provenance records: in full, or (in the PDF) where they are in full."""
    parts = [f"<h2 style='{PAGE_BREAK}'>Appendix: provenance records</h2>"]
    if not results:
        parts.append("<p>No enhancement was made: no provenance record.</p>")
        return "\n".join(parts)
    if provenance_in is not None:
        name, sha = provenance_in
        parts.append(
            f"<p>The full provenance record of every output (model, weights, parameters, "
            f"alignment, hashes of every image) is in the appendix of {_e(name)}, the HTML "
            f"version of this report, SHA-256 {_code(sha)}, written and logged with it.</p>"
        )
        return "\n".join(parts)
    for number, r in enumerate(results, start=1):
        record = _get(r, "provenance") or {}
        text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)
        parts.append(
            f"<h3>{number}. Face {int(_get(r, 'face_index', 0) or 0) + 1}: "
            f"{_e(_get(r, 'model_id'))} x{_e(_get(r, 'scale'))}{_e(_fused_words(r))}</h3>"
        )
        # pre-wrap: long citations must wrap on a PDF page (QTextDocument honours it)
        parts.append(f"<pre style='white-space: pre-wrap'>{_e(text)}</pre>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- the page


def build_html(
    still_info: Any,
    results: Sequence[Any],
    fidelity: Any,
    log_verification: Any,
    *,
    examiner: str | None = None,
    case_reference: str | None = None,
    generated_utc: str | None = None,
    faces: int | None = None,
    provenance_in: tuple[str, str] | None = None,
) -> str:
    """The whole report as one HTML string.

    Page one is a summary (case, examiner, evidence and its hash, faces, models, the key
    fidelity results, the case log's verdict, what enhancement can and cannot show); then the
    evidence; then one page per output (its images, checks, model); the case log; and an
    appendix with every output's full provenance record -- or, with ``provenance_in`` (the
    HTML report's file name and SHA-256, for the PDF), where that appendix is. ``faces`` is
    the number of faces in the still.

    ``still_info`` is an :class:`engine.io.Still` (or a dict with name, path, sha256, width,
    height, original_mode, format and optionally rgb); ``results`` are
    :class:`engine.enhance.Result` objects (or dicts with model_id, scale, face_index, lr, sr,
    provenance); ``fidelity`` is a :class:`engine.fidelity.FidelityReport` (or its ``to_dict()``)
    for one face, a dict ``{face_index: report}``, or None; ``log_verification`` is a
    :class:`engine.caselog.VerifyReport` (or its ``to_dict()``) or None.
    """
    when = generated_utc or datetime.now(UTC).isoformat(timespec="seconds")
    meta = []
    if case_reference:
        meta.append(("Case reference", _e(case_reference)))
    if examiner:
        meta.append(("Examiner", _e(examiner)))
    meta += [("Generated (UTC)", _e(when)), ("Software", _e(f"{SOFTWARE} {__version__}"))]
    title = report_title(case_reference)
    sections = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary_section(still_info, results, fidelity, log_verification, meta, faces),
        _evidence_section(still_info),  # page two: the summary ends with a page break
    ]
    if not results:
        sections.append("<h2>Enhancements</h2><p>No enhancement was made.</p>")
    for number, result in enumerate(results, start=1):
        sections.append(_result_section(number, result, fidelity, _get(still_info, "rgb")))
    sections.append(_log_section(log_verification))
    sections.append(_appendix(results, provenance_in))
    sections.append("</body></html>")
    return "\n".join(sections) + "\n"


def report_title(case_reference: str | None = None) -> str:
    """ "Forensic Face Enhancer: case report 2024-117" (the PDF's title too)."""
    return f"{SOFTWARE}: case report" + (f" {case_reference}" if case_reference else "")
