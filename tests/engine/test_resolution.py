"""Native resolution: every face is measured, Auto never shrinks it, forcing a shrink is visible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import faces, fidelity, io, registry, resolution
from engine.__main__ import main
from engine.enhance import Enhancer, paste_all


@pytest.fixture(scope="module")
def sized(face_sizes):
    still = io.load(face_sizes.path)
    return still, [faces.face_from_box(still.rgb, box) for box in face_sizes.boxes]


def test_native_frame_is_measured_on_every_face(sized, face_sizes):
    still, found = sized
    for face, target in zip(found, face_sizes.targets, strict=True):
        # landmarks on a 9 px box are rough: within 15% of the size the copy was made for
        assert face.native_frame_px == pytest.approx(target, rel=0.15)
        # the template puts the eyes 0.266 of the frame apart
        assert face.interocular_px == pytest.approx(0.266 * face.native_frame_px, rel=0.2)


def test_auto_picks_x8_x4_x2_and_nothing_for_the_large_face(sized):
    still, found = sized
    enhancer = Enhancer(device="cpu")
    plans = [enhancer.plan(face, "bicubic", "auto") for face in found]
    assert [p.scale for p in plans] == [8, 4, 2, None]
    assert [p.mode for p in plans] == ["scale", "scale", "scale", "none"]
    assert "already 2" in plans[3].message and "native resolution" in plans[3].message
    for plan in plans[:3]:
        assert plan.evidence_shrink <= 1 / (1 - resolution.TOLERANCE) + 1e-9
    for face, plan in zip(found[:3], plans[:3], strict=True):
        result = enhancer.enhance(still, face, "bicubic", "auto")
        assert result.scale == plan.scale and result.lr.shape[0] == 128 // plan.scale
        assert result.evidence_shrink <= 1.12 and result.pasted is not None
        assert result.provenance["resolution"]["native_frame_px"] == pytest.approx(
            face.native_frame_px, abs=0.01
        )
    with pytest.raises(resolution.NotEnhanced, match="enlarging it would only interpolate"):
        enhancer.enhance(still, found[3], "bicubic", "auto")


def test_forcing_x4_on_the_64_px_face_warns_fails_the_check_and_is_recorded(sized):
    still, found = sized
    face = found[2]
    enhancer = Enhancer(device="cpu")
    with pytest.raises(resolution.ShrinkRefused, match=r"shrinks this face 1\.\d+x"):
        enhancer.enhance(still, face, "bicubic", 4)
    result = enhancer.enhance(still, face, "bicubic", 4, allow_shrink=True)
    shrink = face.native_frame_px / 32
    assert result.evidence_shrink == pytest.approx(shrink)
    assert result.provenance["parameters"]["evidence_shrink"] == pytest.approx(shrink, abs=1e-3)
    assert result.provenance["resolution"]["evidence_shrink"] == pytest.approx(shrink, abs=1e-3)
    assert result.pasted is None  # a shrunk face never replaces the recorded pixels
    report = fidelity.check_all(
        result.lr,
        {"bicubic": result.sr},
        result.input_landmarks,
        {"bicubic": result.output_landmarks},
        evidence_shrink={"bicubic": result.evidence_shrink},
    )
    check = report.model("bicubic").resolution
    assert check.status == fidelity.WARN and report.model("bicubic").flagged
    assert f"shrunk {resolution.times(shrink)} from the evidence" in check.detail
    with pytest.raises(ValueError, match="every model input was shrunk"):
        paste_all(still.rgb, [result])


def test_between_the_frames_a_face_runs_at_its_native_size(sized):
    """A 75-90 px face: too big for x2's 64 px frame, below 128: enhanced where it is."""
    still, found = sized
    face = found[2]
    native = resolution.NativeSize(frame_px=80.0, interocular_px=21.0)
    entry = registry.get("bicubic")
    plan = resolution.plan(native, entry, "auto")
    assert (plan.mode, plan.scale, plan.lr_size) == ("native", 2, 80)
    assert plan.evidence_shrink == 1.0 and "native 80 px" in plan.message
    # a fixed-scale network with only x4 weights: at its native size up to 3.5x its 32 px frame
    rafsr = registry.get("s2_rafsr")
    wide = resolution.plan(native, rafsr, "auto")
    assert (wide.mode, wide.scale, wide.lr_size) == ("native", 4, 80)
    skipped = resolution.plan(resolution.NativeSize(120.0, 32.0), rafsr, "auto")
    assert skipped.mode == "none" and skipped.skipped
    assert "no weights for a 120 px face" in skipped.message
    # a pre-upsampled model (S1) only where it was measured to beat bicubic (factor >= 1.8)
    mffcn = registry.get("s1_mffcn")
    assert resolution.plan(resolution.NativeSize(72.0, 19.0), mffcn, "auto").mode == "none"
    assert resolution.plan(resolution.NativeSize(70.0, 19.0), mffcn, "auto").scale == 2
    # the pipeline at a native size: the output is the 128 px frame
    result = Enhancer(device="cpu").enhance(still, face, "lanczos", "auto")
    assert result.sr.shape == (128, 128, 3)


def test_robust_files_stretch_only_as_far_as_they_were_measured_to_help():
    """On damaged evidence the robust S0, S3 and S4 files lose their gain as the face grows, and
    the robust MFFCN file loses to bicubic at any factor but its own (native_size_degraded.md)."""
    offered = {4: [4, 8], 2: [2, 4, 8]}
    s3 = registry.get("s3_prior_guided_robust")  # x4 and x8 only: a 32 px frame
    at_80 = resolution.plan(resolution.NativeSize(80.0, 21.0), s3, "auto", offered[4])
    assert (at_80.mode, at_80.scale, at_80.lr_size) == ("native", 4, 80)  # stretch 2.5
    at_90 = resolution.plan(resolution.NativeSize(90.0, 24.0), s3, "auto", offered[4])
    assert at_90.mode == "none" and at_90.skipped and "not measured to beat" in at_90.message
    # its clean twin keeps the general limit (3.5x)
    twin = resolution.plan(
        resolution.NativeSize(90.0, 24.0), registry.get("s3_prior_guided"), "auto"
    )
    assert (twin.mode, twin.lr_size) == ("native", 90)
    # S4 robust without its x2 file stops at 2x its 32 px frame; with it, x2 covers up to 127 px
    s4 = registry.get("s4_idrn_robust")
    no_x2 = resolution.plan(resolution.NativeSize(70.0, 19.0), s4, "auto", offered[4])
    assert no_x2.mode == "none" and no_x2.skipped
    with_x2 = resolution.plan(resolution.NativeSize(120.0, 32.0), s4, "auto", offered[2])
    assert (with_x2.mode, with_x2.scale, with_x2.lr_size) == ("native", 2, 120)
    # S2 robust holds its gain to 3.5x
    s2 = registry.get("s2_rafsr_robust")
    assert resolution.plan(resolution.NativeSize(110.0, 29.0), s2, "auto").mode == "native"
    # the robust MFFCN file (x4 and x8 shipped): its own frames only
    s1 = registry.get("s1_mffcn_robust")
    assert resolution.plan(resolution.NativeSize(40.0, 11.0), s1, "auto", offered[4]).skipped
    assert resolution.plan(resolution.NativeSize(33.0, 9.0), s1, "auto", offered[4]).scale == 4
    clean_s1 = resolution.plan(
        resolution.NativeSize(40.0, 11.0), registry.get("s1_mffcn"), "auto", offered[4]
    )
    assert (clean_s1.mode, clean_s1.lr_size) == ("native", 40)


def test_evidence_crop_is_the_recorded_pixels(sized):
    still, found = sized
    crop, (x0, y0, x1, y1) = resolution.evidence_crop(still.rgb, found[1])
    assert np.array_equal(crop, still.rgb[y0:y1, x0:x1])
    assert abs((x1 - x0) - found[1].native_frame_px) < found[1].native_frame_px * 0.5


def test_cli_auto_json_reports_every_face(tmp_path, face_sizes, capsys):
    out = tmp_path / "out"
    args = ["enhance", str(face_sizes.path), "--model", "bicubic", "--scale", "auto"]
    for box in face_sizes.boxes:  # one run per face: the smallest is too small to detect
        box_text = ",".join(f"{v:.1f}" for v in box)
        assert main([*args, "--box", box_text, "--out", str(out), "--json", "--overwrite"]) == 0
    lines = capsys.readouterr().out
    reports = [json.loads(chunk) for chunk in _json_documents(lines)]
    rows = [r["faces"][0] for r in reports]
    assert [r["scale_used"] for r in rows] == [8, 4, 2, None]
    for row in rows:
        assert row["native_frame_px"] > 0 and row["interocular_px"] > 0
        assert row["evidence_shrink"] <= 1.12
    assert rows[3]["output"] is None and "already" in rows[3]["message"]


def test_cli_forced_shrink_needs_allow_shrink(tmp_path, face_sizes, capsys):
    out = tmp_path / "out"
    box = ",".join(f"{v:.1f}" for v in face_sizes.boxes[2])
    args = ["enhance", str(face_sizes.path), "--model", "bicubic", "--scale", "4", "--box", box]
    assert main([*args, "--out", str(out)]) == 2
    assert "--allow-shrink" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--out", str(out), "--allow-shrink"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "shrinks this face" in err
    document = json.loads((out / "face_sizes_bicubic_x4_provenance.json").read_text())
    assert document["faces"][0]["resolution"]["evidence_shrink"] > 1.5
    assert not (out / "face_sizes_bicubic_x4_full.png").exists()


def _json_documents(text: str):
    decoder = json.JSONDecoder()
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        yield json.dumps(document)
