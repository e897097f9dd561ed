"""Video evidence: open a clip read-only, index its frames, decode any frame exactly.

A clip is opened with PyAV (FFmpeg bundled in its wheel: MP4/MOV/MKV/AVI/TS, H.264/H.265/
MJPEG/MPEG-4..., Dahua ``dhav``). Opening it:

* takes the file's SHA-256 (read-only, in chunks; the file is never written to);
* reads container and codec metadata;
* builds the **frame index** by one decoding pass (packets are decoded, not converted to RGB):
  every frame that decodes, in presentation order, with its presentation timestamp (pts), its
  time in seconds, whether it is a key frame, and its picture type (I/P/B). Decoding rather
  than only demuxing is deliberate: the index then lists exactly the frames that *decode*, so a
  damaged or truncated clip shows what can be used instead of promising frames that fail later.

A frame is then decoded **exactly**: seek to the last key frame at or before it, decode forward
until its pts. The result is compared by pts, never by "the n-th frame after the seek", so it is
the same pixels as decoding the whole clip from the start (a test checks this). Each
:class:`Frame` carries the SHA-256 of its decoded RGB24 pixels, which with the index and
timestamp identifies it in provenance, the case log and the report; reopening the clip
reproduces every hash (with the same FFmpeg build: the versions are recorded).

A clip that cannot be opened or decodes no frame raises :class:`VideoError`, whose message names
the file and says why; a clip that decodes only in part opens, with :attr:`ClipInfo.damage`
saying how many frames decoded and where decoding stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine import io

log = logging.getLogger(__name__)

#: File name endings offered by the GUI's open dialog (any container FFmpeg demuxes opens).
VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".ts",
    ".mts",
    ".m2ts",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".asf",
    ".flv",
    ".3gp",
    ".dav",
    ".h264",
    ".264",
    ".h265",
    ".hevc",
    ".mjpeg",
)
#: Largest frame accepted, in pixels (as for stills).
MAX_PIXELS = io.MAX_PIXELS
#: Most frames indexed in one clip (a 24 h clip at 25 fps is 2.16 M frames).
MAX_FRAMES = 5_000_000

# FFmpeg's AVPictureType numbers -> letters.
_PICT_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


class VideoError(ValueError):
    """A clip could not be opened or a frame could not be decoded; the message says why."""

    def __init__(self, path: Path | str, reason: str, detail: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"Cannot use {self.path.name or self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.detail))


@dataclass(frozen=True)
class FrameInfo:
    """One entry of a clip's frame index (presentation order)."""

    index: int
    pts: int | None  # in the stream's time base; None if the container gives none
    time: float  # seconds from the stream's start
    key: bool
    pict_type: str  # "I", "P", "B", ... ("?" when the decoder does not say)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: (H, W, 3) uint8 RGB, read-only, and what identifies it."""

    info: FrameInfo
    rgb: np.ndarray = field(compare=False, repr=False)
    sha256: str  # of the C-ordered RGB24 pixel bytes

    @property
    def index(self) -> int:
        return self.info.index

    def record(self) -> dict[str, Any]:
        """What identifies this frame in provenance, the case log and the report."""
        return frame_record(self.info, self.sha256)


def frame_record(info: FrameInfo, sha256: str) -> dict[str, Any]:
    return {
        "index": info.index,
        "pts": info.pts,
        "time_s": round(info.time, 6),
        "pict_type": info.pict_type,
        "key": info.key,
        "pixels_sha256": sha256,
    }


@dataclass(frozen=True)
class ClipInfo:
    """What the container and codec say about a clip, and how much of it decodes."""

    path: Path
    sha256: str
    size_bytes: int
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    container_long: str
    codec: str  # e.g. "h264"
    codec_long: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    fps: float | None  # average frame rate
    fps_fraction: str | None  # exact, e.g. "30000/1001"
    time_base: str
    frame_count: int  # frames that decode (the index's length)
    declared_frames: int  # the container's own count (0 when it keeps none)
    duration_s: float | None
    bit_rate: int | None
    metadata: dict[str, str]
    key_frames: int
    damage: str | None = None  # None, or why decoding stopped early

    def record(self) -> dict[str, Any]:
        """Plain-JSON description for provenance and the report."""
        return {
            "path": str(self.path),
            "name": self.path.name,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "container": self.container,
            "codec": self.codec,
            "profile": self.profile,
            "pix_fmt": self.pix_fmt,
            "width": self.width,
            "height": self.height,
            "fps": self.fps_fraction,
            "frame_count": self.frame_count,
            "declared_frames": self.declared_frames,
            "duration_s": self.duration_s,
            "bit_rate": self.bit_rate,
            "damage": self.damage,
            "decoder": f"FFmpeg {_ffmpeg_version()} via PyAV {_av_version()}",
        }


@dataclass(frozen=True)
class FrameStill(io.Still):
    """A frame entering the still pipeline: a :class:`engine.io.Still` that names its clip.

    ``path`` is the clip, ``sha256`` the frame's pixel hash, ``video`` the clip and frame
    records (``{"clip": ..., "frame": ...}``) that :func:`engine.provenance.record` copies.
    """

    video: dict[str, Any] = field(default_factory=dict, compare=False)


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a dependency
        raise RuntimeError("video support needs PyAV (package 'av')") from exc
    return av


def _av_version() -> str:
    return str(getattr(_av(), "__version__", "?"))


def _ffmpeg_version() -> str:
    return str(getattr(_av(), "ffmpeg_version_info", "?"))


class Clip:
    """An open clip: its :class:`ClipInfo`, its frame index, and exact frame decoding.

    Thread-safe (one lock around the decoder). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._container = None
        self._stat = None
        self.info, self.frames = self._open()

    # ----------------------------------------------------------------------- opening

    def _open(self) -> tuple[ClipInfo, list[FrameInfo]]:
        av = _av()
        path = self.path
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise VideoError(path, "the file does not exist", str(exc)) from exc
        except OSError as exc:
            raise VideoError(path, f"the file cannot be read ({exc.strerror or exc})") from exc
        if not os.path.isfile(path):
            raise VideoError(path, "this is not a regular file")
        if st.st_size == 0:
            raise VideoError(path, "the file is empty")
        try:
            sha = io.sha256_file(path)
        except OSError as exc:
            raise VideoError(path, f"the file cannot be read ({exc.strerror or exc})") from exc
        self._stat = (st.st_size, st.st_mtime_ns)
        try:
            container = av.open(str(path), mode="r")
        except Exception as exc:  # av.error.* (InvalidDataError...), OSError
            raise VideoError(
                path,
                "not a video FFmpeg can read, or the file is truncated or damaged "
                "(no container header could be read)",
                f"{type(exc).__name__}: {exc}",
            ) from exc
        try:
            if not container.streams.video:
                raise VideoError(path, "the file has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width * height > MAX_PIXELS:
                raise VideoError(path, f"frames are {width}x{height} pixels, more than the limit")
            frames, damage = self._index(container, stream)
        except VideoError:
            container.close()
            raise
        except Exception:
            container.close()
            raise
        if not frames:
            container.close()
            raise VideoError(
                path,
                "no frame could be decoded: the file is truncated or damaged"
                + (f" ({damage})" if damage else ""),
            )
        self._container = container
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        tb = stream.time_base or Fraction(1, 1)
        duration = None
        if stream.duration is not None:
            duration = float(stream.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        info = ClipInfo(
            path=path,
            sha256=sha,
            size_bytes=int(st.st_size),
            container=container.format.name,
            container_long=container.format.long_name,
            codec=ctx.name,
            codec_long=ctx.codec.long_name,
            profile=ctx.profile,
            pix_fmt=ctx.pix_fmt,
            width=width,
            height=height,
            fps=fps,
            fps_fraction=f"{rate.numerator}/{rate.denominator}" if rate else None,
            time_base=f"{tb.numerator}/{tb.denominator}",
            frame_count=len(frames),
            declared_frames=int(stream.frames or 0),
            duration_s=duration,
            bit_rate=int(container.bit_rate) if container.bit_rate else None,
            metadata={str(k): str(v) for k, v in {**container.metadata, **stream.metadata}.items()},
            key_frames=sum(f.key for f in frames),
            damage=damage,
        )
        if damage:
            log.warning("%s: %s", path.name, damage)
        return info, frames

    def _index(self, container, stream) -> tuple[list[FrameInfo], str | None]:
        """One decoding pass: every frame that decodes, in presentation order."""
        tb = stream.time_base or Fraction(1, 1)
        start = stream.start_time or 0
        raw: list[tuple[int | None, bool, str, float | None]] = []
        damage = None
        corrupt = 0
        try:
            # demux() ends with an empty packet, which flushes the decoder's delayed frames
            for packet in container.demux(stream):
                for frame in packet.decode():
                    raw.append(_frame_entry(frame))
                    corrupt += bool(frame.is_corrupt)
                    if len(raw) > MAX_FRAMES:
                        raise VideoError(self.path, f"more than {MAX_FRAMES} frames")
        except VideoError:
            raise
        except Exception as exc:  # av.error.InvalidDataError, EOFError...
            damage = (
                f"decoding stopped after {len(raw)} frame(s): the file is truncated or damaged "
                f"({type(exc).__name__}: {exc})"
            )
        declared = int(stream.frames or 0)
        if damage is None and declared > len(raw):
            damage = (
                f"the container declares {declared} frames but only {len(raw)} decode: "
                "the file is truncated or damaged"
            )
        seconds = None
        if stream.duration:
            seconds = float(stream.duration * tb)
        elif container.duration:
            seconds = container.duration / 1_000_000
        if damage is None and raw and seconds and stream.average_rate:
            # Compare time, not counts (frame rates may vary, e.g. GIF delays): the decoded
            # frames must reach the declared end, give or take two frame intervals and 5%.
            interval = 1.0 / float(stream.average_rate)
            times = [float((e[0] - start) * tb) for e in raw if e[0] is not None]
            reached = (max(times) if times else (len(raw) - 1) * interval) + interval
            if seconds - reached > max(2 * interval, 0.05 * seconds):
                damage = (
                    f"the container declares {seconds:.2f} s but the {len(raw)} frames that "
                    f"decode reach only {reached:.2f} s: the file is truncated or damaged"
                )
        if corrupt:
            damage = (damage + "; " if damage else "") + (
                f"{corrupt} frame(s) decoded with errors (shown as the decoder concealed them)"
            )
        if raw and any(entry[0] is None for entry in raw):
            # No usable timestamps: frames are taken in decoding order and found by counting.
            order = raw
            self._seekable = False
        else:
            order = sorted(raw, key=lambda e: e[0])
            self._seekable = True
        frames = []
        for i, (pts, key, pict, _) in enumerate(order):
            t = (
                float((pts - start) * tb)
                if pts is not None
                else i / float(stream.average_rate or 25)
            )
            frames.append(FrameInfo(index=i, pts=pts, time=t, key=key, pict_type=pict))
        if self._seekable and len({f.pts for f in frames}) != len(frames):
            self._seekable = False  # duplicate pts: cannot identify a frame by its pts
        self._keys = [f.index for f in frames if f.key] or [0]
        if self._keys[0] != 0:
            self._keys.insert(0, 0)
        self._pts_to_index = {f.pts: f.index for f in frames}
        return frames, damage

    # ----------------------------------------------------------------------- access

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def name(self) -> str:
        return self.path.name

    def key_frame_before(self, index: int) -> int:
        """The index of the last key frame at or before ``index``."""
        return self._keys[max(0, bisect_right(self._keys, index) - 1)]

    def next_key_frame(self, index: int, direction: int = 1) -> int | None:
        """The next (direction 1) or previous (-1) I/key frame strictly after/before ``index``."""
        keys = [f.index for f in self.frames if f.key or f.pict_type == "I"]
        if direction > 0:
            return next((k for k in keys if k > index), None)
        return next((k for k in reversed(keys) if k < index), None)

    def frame(self, index: int) -> Frame:
        """Decode frame ``index`` exactly (same pixels as decoding the clip from its start)."""
        if not 0 <= index < len(self.frames):
            raise IndexError(f"frame {index} is outside 0..{len(self.frames) - 1}")
        self._check_unchanged()
        with self._lock:
            self._require_open()
            target = self.frames[index]
            if self._seekable:
                rgb = self._seek_decode(target)
                if rgb is None:  # the demuxer's seek overshot: decode from the start
                    rgb = self._sequential(index)
            else:
                rgb = self._sequential(index)
        return _make_frame(target, rgb)

    def iter_frames(
        self, start: int = 0, stop: int | None = None, step: int = 1
    ) -> Iterator[Frame]:
        """Frames ``start`` to ``stop`` (exclusive) every ``step``, decoded in one forward pass."""
        stop = len(self.frames) if stop is None else min(stop, len(self.frames))
        if start >= stop:
            return
        wanted = set(range(start, stop, step))
        self._check_unchanged()
        with self._lock:
            self._require_open()
            if not self._seekable:  # no timestamps: one pass from the start, counting frames
                self._rewind()
                stream = self._container.streams.video[0]
                last = max(wanted)
                for n, frame in enumerate(self._decode_all(stream)):
                    if n in wanted:
                        wanted.discard(n)
                        yield _make_frame(self.frames[n], _rgb(frame))
                    if n >= last:
                        break
                if wanted:
                    raise VideoError(self.path, f"frame {min(wanted)} could not be decoded again")
                return
            key = self.key_frame_before(start)
            stream = self._container.streams.video[0]
            self._seek(stream, self.frames[key])
            last = max(wanted)
            for frame in self._decode_all(stream):
                i = self._pts_to_index.get(frame.pts)
                if i is None or i < key:
                    continue
                if i in wanted:
                    wanted.discard(i)
                    yield _make_frame(self.frames[i], _rgb(frame))
                if i >= last and not wanted:
                    return
        for i in sorted(wanted):  # anything missed (a seek that overshot)
            yield self.frame(i)

    def still(self, index: int) -> FrameStill:
        """Frame ``index`` as a Still for the still pipeline (faces, enhance, export, report)."""
        return to_still(self, self.frame(index))

    # ----------------------------------------------------------------------- internals

    def _require_open(self) -> None:
        if self._container is None:
            raise VideoError(self.path, "the clip has been closed")

    def _check_unchanged(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise VideoError(self.path, "the file is no longer readable", str(exc)) from exc
        if (st.st_size, st.st_mtime_ns) != self._stat:
            raise VideoError(
                self.path, "the file changed on disk since it was opened; open it again"
            )

    def _seek(self, stream, info: FrameInfo) -> None:
        self._container.seek(int(info.pts), stream=stream, backward=True, any_frame=False)

    def _decode_all(self, stream):
        try:
            for packet in self._container.demux(stream):
                yield from packet.decode()
        except Exception as exc:
            log.info("%s: decoding stopped: %s", self.path.name, exc)

    def _seek_decode(self, target: FrameInfo) -> np.ndarray | None:
        stream = self._container.streams.video[0]
        key = self.frames[self.key_frame_before(target.index)]
        self._seek(stream, key)
        first = True
        for frame in self._decode_all(stream):
            if first:
                first = False
                if frame.pts is None or frame.pts > target.pts:
                    return None  # landed after the target
            if frame.pts == target.pts:
                return _rgb(frame)
            if frame.pts is not None and frame.pts > target.pts and not _has_b(self.frames):
                return None
        return None

    def _rewind(self) -> None:
        """Back to the first frame: seek to 0, or reopen a stream that cannot seek (raw H.264)."""
        stream = self._container.streams.video[0]
        try:
            self._container.seek(0, stream=stream, backward=True, any_frame=False)
        except Exception:  # av.error.PermissionError etc.: not seekable
            self._container.close()
            self._container = _av().open(str(self.path), mode="r")

    def _sequential(self, index: int) -> np.ndarray:
        self._rewind()
        stream = self._container.streams.video[0]
        target = self.frames[index]
        for n, frame in enumerate(self._decode_all(stream)):
            if self._seekable:
                if frame.pts == target.pts:
                    return _rgb(frame)
            else:
                if n == index:
                    return _rgb(frame)
        raise VideoError(self.path, f"frame {index} could not be decoded again")


def _has_b(frames: list[FrameInfo]) -> bool:
    return any(f.pict_type == "B" for f in frames)


def _frame_entry(frame) -> tuple[int | None, bool, str, float | None]:
    return (
        frame.pts,
        bool(frame.key_frame),
        _PICT_TYPES.get(int(frame.pict_type), "?"),
        frame.time,
    )


def _rgb(frame) -> np.ndarray:
    rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    rgb.flags.writeable = False
    return rgb


def _make_frame(info: FrameInfo, rgb: np.ndarray) -> Frame:
    return Frame(info=info, rgb=rgb, sha256=hashlib.sha256(rgb.tobytes()).hexdigest())


def pixels_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of (H, W, 3) uint8 pixels in C order (the frame hash of provenance)."""
    return hashlib.sha256(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()).hexdigest()


def to_still(clip: Clip, frame: Frame) -> FrameStill:
    """``frame`` of ``clip`` as a :class:`FrameStill` whose provenance names the clip and frame."""
    info = frame.info
    return FrameStill(
        path=clip.path,
        rgb=frame.rgb,
        original_mode=clip.info.pix_fmt or "RGB",
        format=f"video frame ({clip.info.codec})",
        sha256=frame.sha256,
        name=f"{clip.name} frame {info.index} ({info.time:.3f} s, {info.pict_type})",
        video={"clip": clip.info.record(), "frame": frame.record()},
        evidence=_assess_frame(frame.rgb, clip.path),
    )


def _assess_frame(rgb: np.ndarray, path: Path) -> Any:
    """A frame's evidence quality: always codec-compressed (engine.evidence_quality)."""
    from engine import evidence_quality

    found = evidence_quality.assess(rgb, None, Path(path).name)
    if not found.video:  # an animated image named otherwise: still a sequence of frames
        variant, reason = evidence_quality.recommend(found.jpeg_quality, found.noise_sigma, True)
        found = dataclasses.replace(found, video=True, recommended=variant, reason=reason)
    return found


def open_clip(path: Path | str) -> Clip:
    """Open a clip (see :class:`Clip`); raises :class:`VideoError` with a plain-words reason."""
    return Clip(path)


def is_video(path: Path | str) -> bool:
    """True when the file name ends like a video (the GUI's open dialog routes on this)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_animated_image(path: Path | str) -> bool:
    """True for a GIF (or animated WebP/PNG) of more than one frame: footage, not a still; the
    GUI opens it in the timeline. False for anything Pillow cannot read."""
    path = Path(path)
    if path.suffix.lower() not in (".gif", ".webp", ".png", ".apng"):
        return False
    from PIL import Image

    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, ValueError):
        return False


def encode_clip(
    path: Path | str,
    frames: list[np.ndarray] | Iterator[np.ndarray],
    fps: int = 25,
    codec: str = "libx264",
    bit_rate: int | None = None,
    gop: int = 12,
    b_frames: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Write RGB uint8 frames as a clip (for tests, benchmarks and samples; never evidence).

    H.264 goes out as yuv420p (even width and height needed), MJPEG as yuvj420p. ``bit_rate``
    in bits per second (None: the encoder's default quality). Refuses to overwrite a file.
    """
    av = _av()
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; encode_clip never overwrites")
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if bit_rate:
            stream.bit_rate = int(bit_rate)
        stream.codec_context.gop_size = gop
        opts = {"bf": str(b_frames)} if codec == "libx264" else {}
        if codec == "libx264":
            opts["threads"] = "1"  # deterministic bytes
        opts.update(options or {})
        stream.options = opts
        for rgb in (first, *frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
