"""Video clips: opening, metadata, exact seeking, frame hashes, damaged files, frames as stills.

Clips are made on the fly from the sample (sub-pixel motion, sensor noise, H.264 through PyAV).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import provenance, video
from tests import clips as clips_helper


def moving_frames(n: int, seed: int = 0, noise: float = 2.0) -> list[np.ndarray]:
    """The whole sample shifted by a random sub-pixel amount per frame, with Gaussian noise."""
    return clips_helper.moving_frames(n, seed, region=None, shift=1.5, noise=noise)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    frames = moving_frames(14)
    return {
        "mkv": video.encode_clip(
            folder / "bframes.mkv", frames, gop=5, b_frames=2, bit_rate=400_000
        ),
        "mp4": video.encode_clip(folder / "plain.mp4", frames, gop=6, bit_rate=400_000),
        "avi": video.encode_clip(folder / "mjpeg.avi", frames, codec="mjpeg"),
    }


@pytest.mark.parametrize("kind", ["mkv", "mp4", "avi"])
def test_open_reports_metadata_and_index(clips, kind) -> None:
    path = clips[kind]
    before = path.read_bytes()
    with video.open_clip(path) as clip:
        info = clip.info
        assert info.frame_count == len(clip) == 14
        assert (info.width, info.height) == (256, 256)
        assert info.fps == pytest.approx(25.0)
        assert info.duration_s == pytest.approx(14 / 25, abs=0.05)
        assert info.sha256 == video.io.sha256_file(path)
        assert info.damage is None
        assert info.codec == ("mjpeg" if kind == "avi" else "h264")
        assert [f.index for f in clip.frames] == list(range(14))
        times = [f.time for f in clip.frames]
        assert times == sorted(times) and times[0] == pytest.approx(0.0)
        assert clip.frames[0].pict_type == "I" and clip.frames[0].key
        types = "".join(f.pict_type for f in clip.frames)
        if kind == "mkv":
            assert "B" in types and "P" in types and types.count("I") >= 3
        if kind == "avi":
            assert types == "I" * 14
    assert path.read_bytes() == before  # never modified


@pytest.mark.parametrize("kind", ["mkv", "mp4"])
def test_seeking_decodes_the_same_pixels_as_decoding_in_order(clips, kind) -> None:
    with video.open_clip(clips[kind]) as clip:
        sequential = {f.index: f for f in clip.iter_frames()}
        assert sorted(sequential) == list(range(14))
        for i in (11, 3, 13, 0, 7, 6, 2):  # random order: every seek lands exactly
            frame = clip.frame(i)
            assert frame.sha256 == sequential[i].sha256
            assert np.array_equal(frame.rgb, sequential[i].rgb)
            assert frame.info == clip.frames[i]
        assert not clip.frame(4).rgb.flags.writeable
        # consecutive frames really differ (motion + noise), so equality above means something
        assert sequential[4].sha256 != sequential[5].sha256
        part = [f.index for f in clip.iter_frames(5, 12, 3)]
        assert part == [5, 8, 11]
        assert clip.next_key_frame(1) == clip.key_frame_before(clip.next_key_frame(1))
        assert clip.next_key_frame(0, -1) is None
        with pytest.raises(IndexError):
            clip.frame(14)


def test_a_raw_stream_without_timestamps_is_decoded_by_counting(tmp_path) -> None:
    frames = moving_frames(7, seed=4)
    path = video.encode_clip(tmp_path / "raw.h264", frames, gop=3, b_frames=1)
    with video.open_clip(path) as clip:
        assert clip.info.frame_count == 7 and clip.frames[0].pts is None
        sequential = [f.sha256 for f in clip.iter_frames()]
        assert [clip.frame(i).sha256 for i in (5, 1, 6, 0)] == [sequential[i] for i in (5, 1, 6, 0)]
        assert [f.index for f in clip.iter_frames(1, 7, 2)] == [1, 3, 5]
        assert len(set(sequential)) == 7


def test_reopening_reproduces_every_frame_hash(clips, tmp_path) -> None:
    with video.open_clip(clips["mkv"]) as clip:
        first = [f.record() for f in clip.iter_frames()]
        clip_sha = clip.info.sha256
    copy = Path(shutil.copy(clips["mkv"], tmp_path / "copy.mkv"))
    with video.open_clip(copy) as clip:
        assert clip.info.sha256 == clip_sha
        again = [clip.frame(r["index"]).record() for r in reversed(first)]
    assert list(reversed(again)) == first
    assert len({r["pixels_sha256"] for r in first}) == 14


@pytest.mark.parametrize("kind", ["mkv", "avi"])
def test_truncated_clip_opens_with_the_frames_that_decode(clips, tmp_path, kind) -> None:
    data = clips[kind].read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) * 55 // 100])
    with video.open_clip(cut) as clip:
        assert 0 < clip.info.frame_count < 14
        assert "truncated or damaged" in clip.info.damage
        assert f"{clip.info.frame_count}" in clip.info.damage
        last = clip.frame(clip.info.frame_count - 1)  # what decodes can be used
        assert last.rgb.shape == (256, 256, 3)


def test_unreadable_clips_raise_clear_errors(clips, tmp_path) -> None:
    data = clips["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: nothing decodes
    with pytest.raises(video.VideoError, match="cut.mp4.*truncated or damaged"):
        video.open_clip(cut)
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a video at all\n" * 50)
    with pytest.raises(video.VideoError, match="notes.mp4"):
        video.open_clip(junk)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(video.VideoError, match="empty"):
        video.open_clip(empty)
    with pytest.raises(video.VideoError, match="does not exist"):
        video.open_clip(tmp_path / "missing.mkv")


def test_changed_file_is_refused_after_opening(clips, tmp_path) -> None:
    path = Path(shutil.copy(clips["avi"], tmp_path / "c.avi"))
    with video.open_clip(path) as clip:
        clip.frame(1)
        with open(path, "ab") as fh:
            fh.write(b"\0" * 10)
        with pytest.raises(video.VideoError, match="changed on disk"):
            clip.frame(2)


def test_frame_as_still_names_clip_and_frame_in_provenance(clips) -> None:
    with video.open_clip(clips["mkv"]) as clip:
        still = clip.still(6)
        frame = clip.frame(6)
    assert still.sha256 == frame.sha256 == video.pixels_sha256(still.rgb)
    assert still.path == clips["mkv"] and "frame 6" in still.name
    assert (
        still.video["frame"]["index"] == 6 and still.video["frame"]["pixels_sha256"] == frame.sha256
    )
    assert still.video["clip"]["sha256"] == video.io.sha256_file(clips["mkv"])

    class _Face:
        box = (0.0, 0.0, 10.0, 10.0)
        manual = True
        score = float("nan")

    class _Entry:
        id = paper = title = citation = variant = "x"

    rec = provenance.record(
        still=still,
        face=_Face(),
        face_index=0,
        entry=_Entry(),
        scale=4,
        weights_file=None,
        weights_sha256=None,
        parameters={},
        device="cpu",
    )
    assert rec["input"]["video"]["frame"]["time_s"] == pytest.approx(6 / 25)
    assert rec["input"]["sha256"] == frame.sha256
    # issue 24: a frame is codec-compressed evidence: the robust variant is recommended
    assert still.evidence.video and still.evidence.recommended == "robust"
    assert rec["evidence_quality"]["video"] is True


def test_encode_clip_never_overwrites(clips) -> None:
    with pytest.raises(FileExistsError):
        video.encode_clip(clips["mp4"], moving_frames(2))


def test_a_variable_rate_gif_is_not_called_truncated(tmp_path) -> None:
    frames = [Image.fromarray(f[::4, ::4]) for f in moving_frames(9, seed=6)]
    path = tmp_path / "cam.gif"
    durations = [80, 80, 120, 80, 200, 80, 80, 160, 80]  # ms: a camera dropping frames
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    with video.open_clip(path) as clip:
        assert clip.info.frame_count == 9 and clip.info.damage is None
        times = [f.time for f in clip.frames]
        assert times[3] == pytest.approx(0.28, abs=0.011)  # 80 + 80 + 120 ms
        assert clip.frame(5).sha256 == list(clip.iter_frames(5, 6))[0].sha256
