"""The fusion path's resolution policy (as for stills) and the fused face as a first-class
result: its Result, export record, case-log fields and case-report page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import (
    caselog,
    enhance,
    export,
    registry,
    report,
    resolution,
    tracks,
    video,
    video_enhance,
)
from engine.enhance import Enhancer
from tests.clips import moving_frames

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "resources" / "samples" / "cctv_face.mp4"
REFERENCE = 12


@pytest.fixture(scope="module")
def sample_track():
    clip = video.open_clip(CLIP)
    found = tracks.track_faces(clip, 6, 19)
    track = tracks.choose_track(found)
    yield clip, track
    clip.close()


def _run(clip, track, plan, model, chosen, **kwargs):
    frames = {i: clip.frame(i) for i in chosen}
    return video_enhance.enhance_track(
        clip=clip,
        frames=frames,
        track=track,
        chosen=chosen,
        reference=REFERENCE,
        model=model,
        plan=plan,
        face_index=0,
        **kwargs,
    )


def test_auto_fuses_at_the_scale_the_native_size_allows(sample_track) -> None:
    clip, track = sample_track
    face = track.face_at(REFERENCE)
    entry = registry.get("bicubic")
    plan = resolution.plan(face, entry, "auto")
    assert plan.scale == 4 and not plan.shrinks  # a 35 px face: x4's 32 px frame holds it
    model = Enhancer(device="cpu").model("bicubic", 4)
    chosen = video_enhance.choose_frames(track, REFERENCE, 8)
    assert len(chosen) == 8 and REFERENCE in chosen
    first = _run(clip, track, plan, model, chosen)
    again = _run(clip, track, plan, model, chosen)
    assert np.array_equal(first.sr_fused, again.sr_fused)  # the same frames, the same bytes
    assert first.fused.lr.shape == (32, 32, 3) and first.scale == 4
    assert "picked by Auto" in first.what_happened and "within the 10%" in first.what_happened
    assert first.record_fused["resolution"]["scale_used"] == 4
    assert first.record_fused["parameters"]["what_happened"] == first.what_happened

    result = video_enhance.fused_result(first, "bicubic")
    assert export.result_key(result) == (0, "bicubic", "fused")
    assert result.single is first.sr_single and result.sr.shape == (128, 128, 3)
    assert result.input_landmarks.shape == (68, 2) and result.pasted is not None
    # the full-image export rebuilds the frame enlarged with the fused face, as for stills
    full = enhance.paste_all(first.still.rgb, [result])
    assert full.shape == first.full.shape == (160 * 4, 224 * 4, 3)
    name = export.result_output_name("cctv_face_f000012", result, "face")
    assert name == f"cctv_face_f000012_face0_bicubic_x4_fused{len(first.fused.used)}.png"

    record = export.export_record(
        result, "face", visible_label=True, label="L", app_label="A", examiner="E"
    )
    fields = export.export_log_fields(first.still, result, record)
    listed = fields["details"]["fusion"]["frames_used"]
    assert [f["index"] for f in listed] == [chosen[p] for p in first.fused.used]
    with video.open_clip(CLIP) as again_clip:  # the hashes name the decoded frames
        for f in listed:
            assert again_clip.frame(f["index"]).sha256 == f["pixels_sha256"]
            assert f["residual_rms"] is not None
    logged = caselog.track_fields(first, "bicubic", first.scale)["details"]
    assert logged["frames_used"] == listed and logged["what_happened"] == first.what_happened

    html = report.build_html(first.still, [result], None, None)
    assert "fused from" in html and "Single frame 12, same model" in html
    assert "Multi-frame fusion" in html and listed[0]["pixels_sha256"] in html
    assert html.count("<img") == 5  # evidence, recorded pixels, fused input, single, fused


def test_a_fixed_scale_never_shrinks_the_face_unasked(sample_track) -> None:
    _, track = sample_track
    entry = registry.get("bicubic")
    with pytest.raises(resolution.ShrinkRefused):
        resolution.plan(track.face_at(REFERENCE), entry, 8)


def test_a_face_of_128_px_or_more_is_fused_but_not_enlarged(tmp_path) -> None:
    frames = [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in moving_frames(5, 3)]
    path = video.encode_clip(tmp_path / "near.mp4", frames, bit_rate=2_000_000, gop=5)
    with video.open_clip(path) as clip:
        track = tracks.choose_track(tracks.track_faces(clip, 0, 5))
        face = track.face_at(2)
        plan = resolution.plan(face, registry.get("s4_idrn"), "auto")
        assert not plan.runs and face.native_frame_px >= 128
        chosen = video_enhance.choose_frames(track, 2, 8)
        e = video_enhance.enhance_track(
            clip=clip,
            frames={i: clip.frame(i) for i in chosen},
            track=track,
            chosen=chosen,
            reference=2,
            model=None,
            plan=plan,
            face_index=0,
        )
    assert not e.enlarged and e.sr_fused is None and e.scale == 1
    assert e.fused.lr.shape[0] >= 128  # fused at the face's own size, nothing shrunk
    assert e.fused.record["fusion_method"] == "trimmed"  # the frames averaged
    assert "does not enlarge" in e.what_happened
    assert e.record_fused["model"]["id"] is None
    assert e.record_fused["label"] == video_enhance.FUSED_LABEL
    fields = caselog.track_fields(e, "s4_idrn", e.scale)
    assert fields["details"]["pixels_sha256"] is None and fields["details"]["frames_used"]
    with pytest.raises(ValueError, match="no model ran"):
        video_enhance.fused_result(e, "s4_idrn")


def test_choose_frames_picks_and_excludes(sample_track) -> None:
    _, track = sample_track
    best = [r.frame_index for r in track.ranked() if r.frame_index != REFERENCE]
    assert video_enhance.choose_frames(track, REFERENCE, 3) == sorted([REFERENCE, *best[:2]])
    skipped = video_enhance.choose_frames(track, REFERENCE, 3, exclude=[best[0]])
    assert skipped == sorted([REFERENCE, *best[1:3]])
    assert video_enhance.choose_frames(track, REFERENCE, 8, use=[7, 9]) == [7, 9, REFERENCE]
    with pytest.raises(ValueError, match="cannot be excluded"):
        video_enhance.choose_frames(track, REFERENCE, exclude=[REFERENCE])
    with pytest.raises(ValueError, match="both picked and excluded"):
        video_enhance.choose_frames(track, REFERENCE, use=[7], exclude=[7])
    with pytest.raises(ValueError, match="no face in frame"):
        video_enhance.choose_frames(track, REFERENCE, use=[23])  # outside the frames searched
