"""Case report: self-contained simple HTML with hashes, citations, checks, images, statement."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import caselog, faces, fidelity, imaging, registry, report
from engine import io as eio

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "astronaut.png"
REFERENCE = Path(__file__).with_name("data") / "astronaut_landmarks.json"
WEIGHTS_SHA = "7" * 64


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A still, two results (a baseline and a paper model), their fidelity and a verified log."""
    still = eio.load(SAMPLE)
    ref = json.loads(REFERENCE.read_text())
    face = faces.Face(
        box=tuple(ref["box"]), score=1.0, landmarks=np.asarray(ref["landmarks"], np.float32)
    )
    lr = faces.align(still.rgb, face, 32).pixels
    hr = faces.align(still.rgb, face, 128).pixels
    landmarks = faces.transform_points(face.landmarks, faces.alignment_matrix(face, 128))
    outputs = {"bicubic": imaging.upscale(lr, 4), "s2_rafsr": hr[:, ::-1].copy()}
    results = []
    for model_id, sr in outputs.items():
        weights = None if model_id == "bicubic" else WEIGHTS_SHA
        record = {
            "model": {"id": model_id, "weights_sha256": weights, "weights_file": None},
            "parameters": {"scale": 4, "note": "<b>not markup</b>"},
            "device": "cpu",
            "input": {"sha256": still.sha256},
        }
        results.append(
            {
                "model_id": model_id,
                "scale": 4,
                "face_index": 0,
                "lr": lr,
                "sr": sr,
                "provenance": record,
            }
        )
    checks = fidelity.check_all(lr, outputs, landmarks)
    log = caselog.CaseLog(tmp_path_factory.mktemp("log") / "case_log.jsonl", examiner="x")
    log.append("open", input_path=str(SAMPLE), input_sha256=still.sha256)
    return still, results, checks, log.verify()


@pytest.fixture(scope="module")
def page(case):
    still, results, checks, verification = case
    return report.build_html(still, results, checks, verification, examiner="J. Doe")


def test_report_names_the_evidence_and_the_weights(page, case):
    still = case[0]
    assert still.sha256 in page and "astronaut.png" in page
    assert "256 x 256 pixels" in page and ">RGB<" in page
    assert WEIGHTS_SHA in page
    assert "none (interpolation: no learned weights)" in page


def test_report_cites_the_papers_from_the_registry(page):
    for model_id in ("s2_rafsr", "bicubic"):
        entry = registry.get(model_id)
        assert html.escape(entry.citation) in page
        assert html.escape(entry.title) in page


def test_report_carries_the_statement_first(page):
    assert html.escape(report.STATEMENT) in page
    assert page.index(report.STATEMENT_TITLE) < page.index("<h2>Evidence</h2>")
    text = report.STATEMENT
    assert "not evidence of identity" in text and "The original file" in text


def test_report_shows_checks_with_meanings(page, case):
    checks = case[2]
    assert "Data consistency" in page and "Landmark drift" in page and "Agreement" in page
    assert html.escape(checks.model("bicubic").consistency.meaning) in page
    assert "<b>WARNING</b>" in page  # the mirrored face fails consistency
    shown = checks.model("s2_rafsr").consistency.to_dict()["value"]  # the recorded value
    assert f"{shown:.3f} dB" in page


def test_report_embeds_decodable_images_and_provenance(page):
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) >= 1 + 2 * 3  # evidence + (input, output, difference) per result
    sizes = {Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris}
    assert (128, 128) in sizes
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page  # parameters are escaped, not rendered
    assert "<pre" in page and "&quot;weights_sha256&quot;" in page


def test_report_states_the_log_verdict(page, case):
    verification = case[3]
    assert "INTACT" in page and verification.head_sha256 in page
    broken = caselog.VerifyReport(
        path="log",
        ok=False,
        entries=3,
        problems=(caselog.Problem(2, "edited", "entry 2's content does not match its hash"),),
    )
    still, results, checks, _ = case
    other = report.build_html(still, results[:1], checks.to_dict(), broken)
    assert "NOT INTACT" in other and "line 2: edited" in other


def test_report_uses_only_simple_html(page):
    lowered = page.lower()
    for forbidden in ("<script", "display:grid", "display: grid", "<style", "<link", "http://"):
        assert forbidden not in lowered
    assert lowered.startswith("<!doctype html>") and lowered.rstrip().endswith("</html>")


def test_report_without_results_or_checks(case):
    still = case[0]
    page = report.build_html(
        {"name": "x.png", "sha256": "ab" * 32, "width": 4, "height": 3, "original_mode": "L"},
        [],
        None,
        None,
    )
    assert "No enhancement was made" in page and "was not verified" in page
    assert "ab" * 32 in page and "4 x 3 pixels" in page
    assert still.sha256 not in page


def test_report_keys_fidelity_by_face_and_scale(case):
    """One face enhanced at x4 and x8 shows each scale's own checks."""
    still, results, checks, verification = case
    x8 = dict(results[1], scale=8)
    empty = fidelity.FidelityReport(**{**checks.__dict__, "scale": 8, "models": {}})
    row = "Data consistency (PSNR"

    def rows(by_key) -> int:
        return report.build_html(still, [results[1], x8], by_key, verification).count(row)

    assert rows({(0, 4): checks, (0, 8): checks}) == 2
    assert rows({(0, 4): checks, (0, 8): empty}) == 1
    assert rows({0: checks}) == 2  # keyed by face alone: every scale shows it


def test_interpolation_is_not_called_ai(page):
    assert "Interpolated output (no AI)" in page


def test_recorded_pixels_and_model_input_are_captioned_for_what_they_are(case):
    """Nothing resampled is called 'as recorded'; the recorded crop is the still's own pixels."""
    still, results, checks, verification = case
    ref = json.loads(REFERENCE.read_text())
    face = faces.Face(
        box=tuple(ref["box"]), score=1.0, landmarks=np.asarray(ref["landmarks"], np.float32)
    )
    aligned = faces.align(still.rgb, face, 32)
    with_frame = [dict(r, aligned=aligned) for r in results]
    text = report.build_html(still, with_frame, checks, verification)
    assert "Input face as recorded" not in text
    # each image's caption appears twice: as its alt text and under it
    assert text.count("Model input: aligned and resampled to 32 px - not the recorded pixels") == 4
    captions = re.findall(r"Recorded pixels: (\d+)x(\d+) px of the still, as recorded", text)
    assert len(captions) == 4
    crop, (x0, y0, x1, y1) = resolution_crop(still, face)
    assert captions[0] == (str(x1 - x0), str(y1 - y0))
    assert np.array_equal(crop, still.rgb[y0:y1, x0:x1])


def resolution_crop(still, face):
    from engine import resolution

    return resolution.evidence_crop(still.rgb, face)


def test_report_opens_with_a_one_page_summary(case):
    """Page one: case, examiner, evidence and hash, faces, models, key checks, the statement;
    the page break comes after it, before the evidence and the outputs."""
    still, results, checks, verification = case
    page = report.build_html(
        still,
        results,
        checks,
        verification,
        examiner="J. Doe",
        case_reference="2024-117",
        faces=3,
    )
    summary = page[: page.index("<h2>Evidence</h2>")]
    assert summary.rstrip().endswith("</p>") and "page-break-after: always" in summary
    assert "<h1>Forensic Face Enhancer: case report 2024-117</h1>" in summary
    for text in (
        "J. Doe",
        "2024-117",
        "astronaut.png",
        still.sha256,
        "256 x 256 pixels",
        "3 found in the still; enhanced: face 1",
        "INTACT, 1 entries",
        "Key fidelity results",
        "<b>WARNING</b>",
        html.escape(report.STATEMENT),
    ):
        assert text in summary, text
    assert "Bicubic x4" in summary and "data:image" not in summary and "<pre" not in summary
    # one page per output, each starting on a new page
    assert page.count("<h3 style='page-break-before: always'>") == len(results)


def test_provenance_goes_to_an_appendix_or_to_the_html(case):
    still, results, checks, verification = case
    page = report.build_html(still, results, checks, verification)
    appendix = page.index("Appendix: provenance records")
    assert page.index("<pre") > appendix  # the raw records come last, not between the outputs
    assert page.count("<pre") == len(results)
    printed = report.build_html(
        still, results, checks, verification, provenance_in=("case.html", "c" * 64)
    )
    assert "<pre" not in printed
    assert "in the appendix of case.html" in printed and "c" * 64 in printed
