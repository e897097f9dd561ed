"""engine.export: the records of an export, built once for the GUI, the CLI and batch runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from engine import export, provenance


def result(face_index: int, model_id: str, scale: int) -> SimpleNamespace:
    rec = {
        "model": {"id": model_id, "weights_sha256": "ab" * 32},
        "device": "cpu",
        "face": face_index,
    }
    return SimpleNamespace(face_index=face_index, model_id=model_id, scale=scale, provenance=rec)


def test_one_output_name_convention():
    assert export.output_name("img", "s2_rafsr", 4, "face", 0) == "img_face0_s2_rafsr_x4.png"
    assert export.output_name("sub/img", "bicubic", 8, "full") == "sub/img_bicubic_x8_full.png"
    with pytest.raises(ValueError):
        export.output_name("img", "bicubic", 4, "thumbnail")


def test_export_record_text_and_log_fields_with_the_label_removed():
    main, other = result(0, "s2_rafsr", 4), result(1, "s2_rafsr", 4)
    removed = {"reason": "court asked for clean copies", "case_log_seq": 7}
    record = export.export_record(
        main, "full", visible_label=False, label="AI", app_label="AI app", examiner="E",
        label_removed=removed, others=[other],
    )  # fmt: skip
    assert main.provenance.get("export") is None  # the result's own record is not changed
    assert record["export"]["faces"] == [0, 1] and record["export"]["other_faces"] == [
        other.provenance
    ]
    assert record["export"]["label_removed"] == removed
    text = export.export_png_text(record)
    assert text[export.PNG_KEY_LABEL_REMOVED] == removed["reason"]
    assert json.loads(text[provenance.PNG_KEY_PROVENANCE])["export"]["role"] == "full"
    still = SimpleNamespace(path=None, sha256="cd" * 32)
    fields = export.export_log_fields(still, main, record)
    assert fields["parameters"] == {
        "role": "full",
        "face_index": 0,
        "faces": [0, 1],
        "visible_label": False,
    }
    assert fields["weights_sha256"] == "ab" * 32 and fields["input_path"] is None


def test_a_visible_label_has_no_removal_record():
    record = export.export_record(
        result(0, "bicubic", 4), "face", visible_label=True, label="L", app_label="A", examiner="E"
    )
    assert "label_removed" not in record["export"] and "faces" not in record["export"]
    assert export.PNG_KEY_LABEL_REMOVED not in export.export_png_text(record)


@dataclass
class Report:
    models: dict = field(default_factory=dict)


def test_one_report_per_scale_only_when_a_model_ran_twice_on_a_face():
    a4, b4, a8 = result(0, "a", 4), result(0, "b", 4), result(0, "a", 8)
    mf = {key: (SimpleNamespace(model_id=key[1]), Report({key[1]: None})) for key in [(0, "a", 4)]}
    [(suffix, chosen, fidelity)] = export.report_groups([b4, a4], mf, ["a", "b"])
    assert suffix == "" and chosen == [a4, b4] and set(fidelity[0].models) == {"a"}
    groups = export.report_groups([a8, b4, a4], mf, ["a", "b"])
    assert [(s, [r.scale for r in rs]) for s, rs, _ in groups] == [("_x4", [4, 4]), ("_x8", [8])]
    assert groups[1][2] == {}  # no checks known at x8


def test_a_face_run_at_its_native_size_is_named_for_it():
    native = SimpleNamespace(mode="native", lr_size=75, scale=2)
    assert export.scale_tag(native) == "native75"
    assert export.scale_tag(SimpleNamespace(mode="scale", lr_size=32, scale=4)) == "x4"
    r = result(1, "s0_srresnet_att", 2)
    r.plan = native
    assert (
        export.result_output_name("still", r, "face") == "still_face1_s0_srresnet_att_native75.png"
    )
    assert export.result_output_name("still", r, "full") == "still_s0_srresnet_att_x2_full.png"
    r.plan = None  # a Result made without a plan
    assert export.result_output_name("still", r, "face") == "still_face1_s0_srresnet_att_x2.png"


def test_an_export_says_what_its_pixels_are(face_sizes):
    """The record names the recorded pixels' box and the model input, never one as the other."""
    from engine import faces, io
    from engine.enhance import Enhancer

    still = io.load(face_sizes.path)
    face = faces.face_from_box(still.rgb, face_sizes.boxes[1])
    res = Enhancer(device="cpu").enhance(still, face, "bicubic", "auto")
    record = export.export_record(
        res, "face", visible_label=True, label="L", app_label="A", examiner="E"
    )
    pixels = record["export"]["pixels"]
    assert pixels["model_input"]["size_px"] == 32
    assert "not the recorded pixels" in pixels["model_input"]["what"]
    x0, y0, x1, y1 = pixels["recorded_pixels"]["box"]
    assert "as recorded" in pixels["recorded_pixels"]["what"]
    assert abs((x1 - x0) - face.native_frame_px) < 0.5 * face.native_frame_px
    assert pixels["evidence_shrink"] <= 1.12


def test_visible_label_is_readable_when_the_whole_image_is_fitted_to_a_screen():
    """Issue 26: CLI and batch images carry a visible label scaled to the image."""
    import numpy as np

    from engine import export, registry

    for w, h in [(128, 128), (640, 480), (4000, 3000), (8000, 600)]:
        rgb = np.full((h, w, 3), 90, np.uint8)
        out, text = export.labelled(rgb, registry.get("s2_rafsr"))
        assert np.array_equal(out[:h], rgb)  # no pixel of the picture is covered
        strip = out[h:]
        fit = max(w / 1920, (h + strip.shape[0]) / 1080, 1.0)
        assert strip.shape[0] / fit >= 12  # at least one 12-px line on screen
        assert (strip == 255).all(axis=2).any()  # white letters on the red strip
        assert "AI-enhanced" in text[export.PNG_KEY_VISIBLE_LABEL]
    _, text = export.labelled(np.zeros((8, 8, 3), np.uint8), registry.get("bicubic"))
    assert "Interpolated" in text[export.PNG_KEY_VISIBLE_LABEL]


def test_burned_in_label_has_no_missing_glyph_boxes():
    from PIL import ImageFont

    font = ImageFont.load_default(export.label_text_px(128, 128))
    # The app's own label carries an em dash, which Pillow's bundled font cannot draw.
    assert export.drawable_text(export.VISIBLE_AI_LABEL, font) == (
        "AI-enhanced - not original evidence"
    )
    assert export.drawable_text("café ≈ 45, σ 3 — x4", font) == "cafe ~ 45, sigma 3 - x4"
    assert export.drawable_text("\u4e2d x2", font) == "? x2"  # no stand-in: said, not hidden
    assert export.drawable_text("RAFSR x4", font) == "RAFSR x4"  # drawable text is kept as is
