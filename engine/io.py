"""Reading evidence images and writing results: the one door files come in and go out by.

Loading is defensive because the input is evidence and may be anything an analyst was handed:

* The file is opened read-only, its bytes are read **once**; the SHA-256 is computed from those
  bytes and the picture is decoded from the same bytes in memory, so the hash always describes
  exactly what was shown. Nothing is ever written next to the input.
* Only PNG, JPEG (incl. camera MPO), TIFF, BMP, WebP and GIF are decoded (Pillow's other
  plugins, e.g. EPS which runs Ghostscript, are never tried).
* Size is checked from the header **before** any pixel is decoded (:data:`MAX_PIXELS`,
  :data:`MAX_FILE_BYTES`); Pillow's decompression-bomb warning is turned into a refusal.
* Every failure (missing, unreadable, empty, truncated, not an image, too large...) raises one
  error type, :class:`ImageLoadError`, whose message names the file and says why in plain words.
  Truncated files are refused: Pillow's global ``LOAD_TRUNCATED_IMAGES`` is left untouched. (A
  file cut only after its last pixel, e.g. a PNG without its end marker, loads: nothing is
  missing from the picture.) Decoder warnings such as "Corrupt EXIF data" go to the log.
* Pixels are normalised to RGB uint8 for processing, while :attr:`Still.original_mode` keeps the
  file's own mode:

  - EXIF orientation is applied (``ImageOps.exif_transpose``) so faces are upright as a viewer
    shows them; the applied tag is kept in :attr:`Still.orientation`.
  - Transparency (RGBA, LA, PA, P with tRNS) is **composited over white**, i.e. the picture a
    viewer shows; dropping alpha instead would reveal whatever colour sits under transparent
    pixels, which is usually arbitrary (often black).
  - 16-bit greyscale is rescaled (``round(v * 255 / 65535)``), never clipped. 16-bit colour
    (RGB PNG/TIFF) is reduced to 8 bits by Pillow's decoder, which keeps the high byte
    (``v // 256``, within one level of exact rounding). 32-bit integer images whose values fit
    0..65535 are treated as 16-bit; otherwise, like float images outside 0..1, they are
    stretched min..max to 0..255 (there is no natural white point).
  - CMYK and other colour spaces go through Pillow's conversion; embedded ICC profiles are not
    applied.
  - Multi-frame files (animated GIF/WebP/PNG, multi-page TIFF) give their first frame;
    :attr:`Still.frames` says how many there are.
* :attr:`Still.rgb` is read-only so no code can silently alter the evidence pixels.

Writing (:func:`save_png`) is atomic: a temporary file in the destination folder is written,
flushed to disk and renamed over the target, so a crash never leaves a half-written result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps
from PIL.PngImagePlugin import PngInfo

log = logging.getLogger(__name__)

#: Largest picture accepted, in pixels (width x height). 80 MP is far above any camera or
#: CCTV frame, and below Pillow's own bomb threshold (~89 MP), so our check always comes first.
MAX_PIXELS = 80_000_000
#: Largest file accepted, in bytes (1 GiB). The whole file is held in memory once.
MAX_FILE_BYTES = 1 << 30

#: Pillow format names that may be decoded, in the order Pillow tries them ("JPEG" also opens
#: multi-picture camera files, reported as "MPO").
FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
_FORMAT_WORDS = "PNG, JPEG, TIFF, BMP, WebP or GIF"

# File signatures of the supported formats: a file that starts like one of them but cannot be
# opened is damaged, not "not an image", and the analyst deserves the more precise message.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)

_DAMAGED = "the file is truncated or damaged"
_CHUNK = 1 << 20
_WHITE = 255


def display_path(path: str | bytes | os.PathLike) -> str:
    """``path`` as text that every UTF-8 writer accepts (CSV, JSON, PNG text, case log, logs).

    A file name that is not valid UTF-8 (common on drives from DVRs and old Windows machines)
    reaches Python with its undecodable bytes as lone surrogates, which no UTF-8 encoder
    accepts. Those bytes are written as ``\\xNN`` escapes instead (``caf\\xe9.png``), so the
    name stays recognisable and distinct; valid names come back unchanged. Also safe for any
    other text that may hold such a name (error messages).
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates not from undecodable bytes (Windows names)
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


class ImageLoadError(ValueError):
    """An image file could not be loaded; ``reason`` says why in words an analyst understands.

    ``detail`` keeps the decoder's own message (for logs and bug reports), not shown in ``str``.
    """

    def __init__(self, path: Path | str, reason: str, detail: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"Cannot open {display_path(self.path.name or self.path)}: {reason}")

    def __reduce__(self):  # keep the error picklable (e.g. across worker processes)
        return (type(self), (self.path, self.reason, self.detail))


class OutputError(OSError):
    """A result file could not be written; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot save {display_path(self.path.name or self.path)}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class Still:
    """One still image ready for processing, with where it came from.

    ``rgb`` is (H, W, 3) uint8 RGB, EXIF orientation applied, read-only. Equality and hashing use
    the identity fields (path, mode, format, SHA-256...), not the pixel array.
    """

    path: Path | None
    rgb: np.ndarray = field(compare=False, repr=False)
    original_mode: str
    format: str
    sha256: str
    #: Number of frames/pages in the file; only the first is used.
    frames: int = 1
    #: EXIF orientation tag that was applied (1 = none/upright).
    orientation: int = 1
    #: Display name: the file name, or the name given to :func:`still_from_array`.
    name: str = ""
    #: Bits per sample as stored in the file (16 for a 16-bit PNG/TIFF, 1 for a bilevel one),
    #: whatever depth the processing pixels (8-bit) have.
    bits_per_sample: int = 8
    #: What the file and its pixels say about their damage (JPEG quality from the quantisation
    #: tables, noise level) and the model variant that suits them:
    #: :class:`engine.evidence_quality.EvidenceQuality`; None when not assessed (an array).
    evidence: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        rgb = self.rgb
        if (
            not isinstance(rgb, np.ndarray)
            or rgb.dtype != np.uint8
            or rgb.ndim != 3
            or rgb.shape[2] != 3
        ):
            shape = getattr(rgb, "shape", None)
            dtype = getattr(rgb, "dtype", type(rgb).__name__)
            raise ValueError(f"Still.rgb must be an (H, W, 3) uint8 array, got {shape} {dtype}")
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValueError(f"Still.rgb is empty: {rgb.shape}")
        # A private, read-only copy unless we already own a read-only block: a view could still
        # be changed through its writeable base by whoever holds it.
        if rgb.flags.writeable or not rgb.flags.owndata or not rgb.flags.c_contiguous:
            rgb = np.array(rgb, dtype=np.uint8, order="C", copy=True)
            rgb.flags.writeable = False
            object.__setattr__(self, "rgb", rgb)
        if not self.name and self.path is not None:
            object.__setattr__(self, "name", display_path(Path(self.path).name))

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def sha256_file(path: Path | str) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def still_from_array(rgb: np.ndarray, name: str = "array") -> Still:
    """Wrap an (H, W, 3) uint8 array (e.g. a test image or a frame grab) as a Still.

    The SHA-256 is that of the C-ordered pixel bytes, so the same pixels always hash the same.
    """
    array = np.ascontiguousarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {array.shape} {array.dtype}")
    sha = hashlib.sha256(array.tobytes()).hexdigest()
    return Still(path=None, rgb=array, original_mode="RGB", format="array", sha256=sha, name=name)


def load(path: Path | str) -> Still:
    """Load an image file as a :class:`Still` (RGB uint8, upright, read-only pixels).

    Raises :class:`ImageLoadError` for every kind of failure, never another exception.
    """
    path = Path(path)
    data = _read_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings(record=True) as caught:
        # Decoder warnings (e.g. "Corrupt EXIF data") go to the log, not the console. Pillow only
        # *warns* between its bomb limit and twice that; a warning would let the bomb through, so
        # that one becomes an exception. (Filters are process-wide while this block runs.)
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            rgb, mode, fmt, frames, orientation, bits = _decode(path, data)
        except ImageLoadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(path, _too_large_reason(data), str(exc)) from exc
        except MemoryError as exc:
            raise ImageLoadError(path, "not enough memory to decode this image") from exc
        except Exception as exc:
            # Decoders fed hostile or damaged bytes raise many types (OSError, SyntaxError,
            # ValueError, struct.error, EOFError...); all mean the same thing to the analyst.
            raise ImageLoadError(path, _DAMAGED, f"{type(exc).__name__}: {exc}") from exc
        finally:
            for warning in caught:
                log.warning("%s: %s", path.name, warning.message)
    rgb.flags.writeable = False
    log.debug(
        "loaded %s: %s %s %dx%d, %d frame(s)", path, fmt, mode, rgb.shape[1], rgb.shape[0], frames
    )
    return Still(
        path=path,
        rgb=rgb,
        original_mode=mode,
        format=fmt,
        sha256=sha,
        frames=frames,
        orientation=orientation,
        name=display_path(path.name),
        bits_per_sample=bits,
        evidence=_assess(path, rgb, data),
    )


def _assess(path: Path, rgb: np.ndarray, data: bytes) -> Any:
    """The evidence-quality estimate of a loaded file (engine.evidence_quality), or None if the
    estimate itself fails: the still opens either way and the GUI says "not assessed"."""
    from engine import evidence_quality

    try:
        with warnings.catch_warnings():  # the decoder's warnings were logged by load() already
            warnings.simplefilter("ignore")
            return evidence_quality.assess(rgb, data, path.name)
    except (OSError, ValueError, KeyError) as exc:  # odd quantisation tables, tiny images
        log.warning("%s: evidence quality not assessed: %s", path.name, exc)
        return None


def _read_bytes(path: Path) -> bytes:
    """Read the whole file once, read-only, with clear errors for everything that can go wrong."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise ImageLoadError(path, "the file does not exist", str(exc)) from exc
    except PermissionError as exc:
        raise ImageLoadError(path, "permission denied: the file cannot be read", str(exc)) from exc
    except OSError as exc:
        raise ImageLoadError(
            path, f"the file cannot be read ({exc.strerror or exc})", str(exc)
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(path, "this is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # FIFOs and devices could block or never end.
        raise ImageLoadError(path, "this is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageLoadError(
            path,
            f"the file is {_size_words(info.st_size)}, more than the "
            f"{_size_words(MAX_FILE_BYTES)} limit",
        )
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except PermissionError as exc:
        raise ImageLoadError(path, "permission denied: the file cannot be read", str(exc)) from exc
    except OSError as exc:
        raise ImageLoadError(
            path, f"the file cannot be read ({exc.strerror or exc})", str(exc)
        ) from exc
    if len(data) > MAX_FILE_BYTES:  # grew since stat()
        raise ImageLoadError(path, f"the file is more than the {_size_words(MAX_FILE_BYTES)} limit")
    if not data:
        raise ImageLoadError(path, "the file is empty")
    return data


def _decode(path: Path, data: bytes) -> tuple[np.ndarray, str, str, int, int, int]:
    """Decode the first frame of ``data``.

    Returns (rgb, original mode, format, frame count, EXIF orientation applied, bits per
    sample as stored). Pillow opens 16-bit colour PNG and TIFF files as 8-bit "RGB"; their
    stored depth is read from the header and the mode recorded as ``RGB;16`` (``RGBA;16``).
    """
    try:
        image = Image.open(BytesIO(data), formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        raise  # worded by load()
    except Exception as exc:
        # UnidentifiedImageError, or a plugin that recognised the first bytes but choked on the
        # header (e.g. BMP's "Unsupported BMP header type" for a text file starting with "BM").
        raise ImageLoadError(
            path, _unidentified_reason(data), f"{type(exc).__name__}: {exc}"
        ) from exc
    with image:
        fmt = image.format or "unknown"
        _check_size(path, *image.size)
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1:
            image.seek(0)
            _check_size(path, *image.size)
        mode = image.mode
        bits = _stored_bits(image, data)
        if bits == 16 and mode in ("RGB", "RGBA"):
            mode = f"{mode};16"
        image.load()
        orientation = _orientation(path, image)
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        rgb = _to_rgb(path, upright)
    return rgb, mode, fmt, frames, orientation, bits


_MODE_BITS = {"1": 1, "I": 32, "F": 32}


def _stored_bits(image: Image.Image, data: bytes) -> int:
    """Bits per sample as the file stores them (PNG IHDR, TIFF BitsPerSample, else the mode)."""
    if image.format == "PNG" and data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 24:
        return int(data[24])
    if image.format == "TIFF":
        try:
            value = image.tag_v2.get(258)  # BitsPerSample
        except Exception:  # noqa: BLE001 - metadata only
            value = None
        if isinstance(value, tuple | list) and value:
            return int(max(value))
        if isinstance(value, int):
            return value
    if image.mode.startswith("I;16"):
        return 16
    return _MODE_BITS.get(image.mode, 8)


def _unidentified_reason(data: bytes) -> str:
    """Words for a file no decoder could open: damaged if it starts like a supported format."""
    looks_like = next((name for sig, name in _SIGNATURES if data.startswith(sig)), None)
    if looks_like is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        looks_like = "WebP"
    if looks_like is None and data[:2] == b"BM" and data[6:10] == bytes(4):
        looks_like = "BMP"  # "BM" alone starts too many text files; these 4 bytes are zero
    if looks_like:
        return f"{_DAMAGED} (it starts like a {looks_like} file but cannot be read)"
    return f"not an image file, or an unsupported format (supported: {_FORMAT_WORDS})"


def _check_size(path: Path, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageLoadError(path, f"{_DAMAGED} (it declares a {width}x{height} picture)")
    if width * height > MAX_PIXELS:
        raise ImageLoadError(path, _pixels_reason(width, height))


def _pixels_reason(width: int, height: int) -> str:
    return f"image is {width}x{height} pixels, more than the {MAX_PIXELS / 1e6:g} megapixel limit"


def _too_large_reason(data: bytes) -> str:
    """Words for Pillow's bomb refusal, with the size from the header when we can read it.

    Pillow raises before handing us the image object, so the header is parsed again with the
    format's own opener (which does no bomb check and decodes no pixels).
    """
    Image.init()
    for fmt in FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None or (accept is not None and not accept(data[:16])):
            continue
        try:
            with factory(BytesIO(data), "") as header:
                return _pixels_reason(*header.size)
        except Exception:  # noqa: BLE001 - only choosing words; the refusal itself stands
            continue
    return f"image is larger than the {MAX_PIXELS / 1e6:g} megapixel limit"


def _orientation(path: Path, image: Image.Image) -> int:
    """EXIF orientation tag (1..8); 1 when absent or unreadable (the image stays as stored)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as exc:  # noqa: BLE001 - metadata only; pixels are intact
        log.warning("%s: EXIF metadata unreadable, orientation not applied (%s)", path.name, exc)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(path: Path, image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB, following the rules in the module docstring."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.array(image, dtype=np.uint8)
    if mode.startswith("I;16"):
        return _grey_to_rgb(_scale_16bit(np.asarray(image)))
    if mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.min() >= 0 and values.max() <= 0xFFFF:
            return _grey_to_rgb(_scale_16bit(values))
        return _grey_to_rgb(_stretch(values.astype(np.float64)))
    if mode == "F":
        values = np.asarray(image).astype(np.float64)
        if not np.isfinite(values).all():
            values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        if values.min() >= 0.0 and values.max() <= 1.0:
            return _grey_to_rgb(np.round(values * 255.0).astype(np.uint8))
        return _grey_to_rgb(_stretch(values))
    has_alpha = (
        mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (mode == "P" and "transparency" in image.info)
        or (mode in ("L", "RGB") and "transparency" in image.info)
    )
    try:
        if has_alpha:
            return _over_white(np.asarray(image.convert("RGBA")))
        return np.array(image.convert("RGB"), dtype=np.uint8)
    except ValueError as exc:  # Pillow has no conversion for this mode
        raise ImageLoadError(path, f"unsupported colour mode {mode}", str(exc)) from exc


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 -> 255, 257 -> 1), not clipping."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Map min..max linearly onto 0..255 (a flat image becomes black)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite (H, W, 4) uint8 over a white background, rounded: what a viewer displays."""
    colour = rgba[:, :, :3].astype(np.uint32)
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    out = (colour * alpha + _WHITE * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _size_words(n_bytes: int) -> str:
    if n_bytes >= 1 << 30:
        return f"{n_bytes / (1 << 30):.3g} GiB"
    if n_bytes >= 1 << 20:
        return f"{n_bytes / (1 << 20):.3g} MiB"
    return f"{n_bytes} bytes"


def save_png(path: Path | str, rgb: np.ndarray, text: Mapping[str, str] | None = None) -> str:
    """Write ``rgb`` ((H, W, 3) or (H, W) uint8) as PNG atomically; returns the file's SHA-256.

    ``text`` becomes PNG text chunks (tEXt, or UTF-8 iTXt when a value is not Latin-1), e.g.
    provenance. The PNG is encoded in memory, written to a temporary file in the same folder,
    fsync'ed, then renamed over ``path`` with ``os.replace`` (atomic on one file system), so
    readers see either the old file or the complete new one. Raises :class:`OutputError` when
    the folder is missing, not a folder, or not writable; ``ValueError`` for a bad array or key.
    """
    path = Path(path)
    array = np.ascontiguousarray(rgb)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise ValueError(
            f"save_png expects (H, W, 3) or (H, W) uint8, got {array.shape} {array.dtype}"
        )
    info = PngInfo()
    for key, value in (text or {}).items():
        if not (1 <= len(key) <= 79) or not key.isprintable() or not _latin1(key):
            raise ValueError(f"PNG text key must be 1-79 printable Latin-1 characters: {key!r}")
        info.add_text(key, str(value))  # falls back to iTXt (UTF-8) when not Latin-1

    buffer = BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", pnginfo=info)
    return write_bytes_atomic(path, buffer.getvalue())


def write_bytes_atomic(path: Path | str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns its SHA-256. The one writer of outputs.

    Written to a temporary file in the same folder, fsync'ed, then renamed over ``path`` with
    ``os.replace`` (atomic on one file system), so readers — and a run resumed after a crash —
    see either the old file or the complete new one, never half of it. Raises
    :class:`OutputError` when the folder is missing, not a folder, or not writable.
    """
    path = Path(path)
    if path.name == "":
        raise OutputError(path, "no file name given")
    _check_folder(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(path, f"the file could not be replaced ({exc.strerror or exc})") from exc
    fsync_folder(path.parent)
    return hashlib.sha256(data).hexdigest()


def _mode(target: Path, path: Path) -> int | None:
    """``st_mode`` of ``target`` (None if it does not exist), any other failure in words."""
    folder = path.parent
    try:
        return os.stat(target).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:  # a part of the folder path is a file
        raise OutputError(path, f"{folder} is not a folder") from exc
    except PermissionError as exc:
        raise OutputError(
            path, f"the folder {folder} cannot be accessed (permission denied)"
        ) from exc
    except OSError as exc:
        raise OutputError(
            path, f"the folder {folder} cannot be used ({exc.strerror or exc})"
        ) from exc


def _check_folder(path: Path) -> None:
    """Refuse early, in words, when ``path`` cannot be a new file in an existing folder."""
    folder = path.parent
    folder_mode = _mode(folder, path)
    if folder_mode is None:
        raise OutputError(path, f"the folder {folder} does not exist")
    if not stat.S_ISDIR(folder_mode):
        raise OutputError(path, f"{folder} is not a folder")
    target_mode = _mode(path, path)
    if target_mode is not None and stat.S_ISDIR(target_mode):
        raise OutputError(path, f"{path} is a folder")


def _write_temp(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden file next to ``path``, flushed to disk; returns its path.

    ``os.open`` with mode 0o666 lets the umask decide the final permissions, like a normal save
    (``tempfile.mkstemp`` would leave the result readable by its owner only).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise OutputError(path, f"the folder {path.parent} is not writable") from exc
        except OSError as exc:
            raise OutputError(
                path, f"cannot create a file in {path.parent} ({exc.strerror or exc})"
            ) from exc
    else:
        raise OutputError(path, f"cannot create a temporary file in {path.parent}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(path, f"writing failed ({exc.strerror or exc})") from exc
    return tmp


def fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on Windows, where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the data itself is already synced
    finally:
        os.close(fd)


def _remove_quietly(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except OSError as exc:
        log.warning("could not remove temporary file %s: %s", tmp, exc)


def _latin1(key: str) -> bool:
    try:
        key.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
