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
