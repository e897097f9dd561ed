"""Tests of engine.io: every supported format and mode, hostile files, size limits, atomic saves.

All images are generated with PIL (or crafted byte by byte) into tmp_path; nothing is committed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import tempfile
import warnings
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from PIL.PngImagePlugin import PngImageFile

from engine import io as eio
from engine.io import ImageLoadError, OutputError, Still

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: a red test stays red until fixed
)


# ---------------------------------------------------------------- helpers


def _picture(h: int = 24, w: int = 32) -> np.ndarray:
    """A small RGB image with structure in every channel (gradients + a block)."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=2)
    rgb = rgb.astype(np.uint8)
    rgb[2:6, 3:9] = (200, 30, 90)
    return rgb


def _save(tmp_path: Path, image: Image.Image, fmt: str, name: str | None = None, **kw) -> Path:
    path = tmp_path / (name or f"img.{fmt.lower()}")
    image.save(path, fmt, **kw)
    return path


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height RGB but carries only a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)


def _png16_rgb(values: np.ndarray) -> bytes:
    """A complete, valid 16-bit-per-channel RGB PNG (PIL cannot write one)."""
    h, w, _ = values.shape
    rows = b"".join(b"\x00" + values[r].astype(">u2").tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _unprivileged(fn):
    """Run ``fn()`` without root's power to ignore permissions; returns its string result.

    Tests run as root in CI, and root may write into a 0o500 folder or read a 0o000 file. As
    root the call runs in a forked child that has switched to the user "nobody" (uid 65534).
    """
    if os.geteuid() != 0:
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = str(fn())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
            result = f"{type(exc).__name__}: {exc}"
        finally:
            with os.fdopen(write_end, "w") as out:
                out.write(result if code == 0 else "CHILD FAILED " + result)
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    return result


@pytest.fixture
def shared_dir():
    """A folder "nobody" can reach (pytest's tmp_path lives under a root-only 0o700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="ffe-io-"))
    folder.chmod(0o755)
    yield folder
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)
        for name in files:
            os.unlink(Path(root) / name)
        for name in dirs:
            os.rmdir(Path(root) / name)
    os.rmdir(folder)


def _load_or_refuse(path: Path) -> None:
    """The fuzzing property: a file either loads as valid RGB or raises ImageLoadError."""
    try:
        still = eio.load(path)
    except ImageLoadError as exc:
        assert str(exc).startswith(f"Cannot open {path.name}: ")
        assert exc.path == path
        return
    assert still.rgb.dtype == np.uint8 and still.rgb.ndim == 3 and still.rgb.shape[2] == 3
    assert not still.rgb.flags.writeable


# ---------------------------------------------------------------- formats and modes


@pytest.mark.parametrize(
    ("fmt", "ext", "kw"),
    [
        ("PNG", "png", {}),
        ("TIFF", "tif", {}),
        ("TIFF", "tiff", {"compression": "tiff_lzw"}),
        ("BMP", "bmp", {}),
        ("WEBP", "webp", {"lossless": True}),
    ],
)
def test_lossless_formats_round_trip_exactly(tmp_path, fmt, ext, kw):
    rgb = _picture()
    path = _save(tmp_path, Image.fromarray(rgb), fmt, f"img.{ext}", **kw)
    still = eio.load(path)
    np.testing.assert_array_equal(still.rgb, rgb)
    assert still.format == fmt
    assert still.original_mode == "RGB"
    assert still.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (still.width, still.height, still.frames, still.orientation) == (32, 24, 1, 1)
    assert still.path == path and still.name == path.name


def test_jpeg_round_trips_within_compression_error(tmp_path):
    rgb = _picture()
    still = eio.load(_save(tmp_path, Image.fromarray(rgb), "JPEG", quality=95))
    assert still.format == "JPEG" and still.original_mode == "RGB"
    assert still.rgb.shape == rgb.shape
    assert np.abs(still.rgb.astype(int) - rgb).mean() < 3


def test_gif_round_trips_palette_colours_exactly(tmp_path):
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[:, 10:] = (255, 0, 0)
    rgb[8:, :] = (0, 128, 255)
    still = eio.load(_save(tmp_path, Image.fromarray(rgb), "GIF"))
    assert still.format == "GIF" and still.original_mode in ("P", "L")
    np.testing.assert_array_equal(still.rgb, rgb)


def test_greyscale_l_becomes_grey_rgb(tmp_path):
    grey = _picture()[:, :, 0]
    still = eio.load(_save(tmp_path, Image.fromarray(grey, "L"), "PNG"))
    assert still.original_mode == "L"
    np.testing.assert_array_equal(still.rgb, np.repeat(grey[:, :, None], 3, axis=2))


def test_bilevel_1_becomes_black_and_white(tmp_path):
    bits = np.zeros((8, 8), bool)
    bits[:, 4:] = True
    still = eio.load(_save(tmp_path, Image.fromarray(bits), "PNG"))
    assert still.original_mode == "1"
    assert still.rgb[0, 0].tolist() == [0, 0, 0] and still.rgb[0, 7].tolist() == [255, 255, 255]


# 16-bit -> 8-bit must rescale (v * 255 / 65535, rounded); clipping would keep 128 as 128.
_SIXTEEN = np.array([[0, 128, 257, 32896, 65535, 65280]], dtype=np.uint16)
_SIXTEEN_AS_8 = [0, 0, 1, 128, 255, 254]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_greyscale_is_rescaled_not_clipped(tmp_path, fmt):
    path = _save(tmp_path, Image.fromarray(_SIXTEEN), fmt)
    still = eio.load(path)
    assert still.original_mode.startswith("I;16")
    assert still.rgb[0, :, 0].tolist() == _SIXTEEN_AS_8
    assert (still.rgb == still.rgb[:, :, :1]).all()  # grey in all three channels


def test_16bit_rgb_png_is_scaled_to_8bit(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (6, 7, 3)).astype(np.uint16)
    values[0, 0] = (0, 65535, 32896)
    still = eio.load(_write(tmp_path / "rgb16.png", _png16_rgb(values)))
    assert still.rgb[0, 0].tolist() == [0, 255, 128]
    # Pillow keeps the high byte: within one level of exact rounding, never clipped.
    assert np.abs(still.rgb.astype(float) - values / 257.0).max() <= 1.0


def test_stored_bit_depth_is_recorded_as_it_was(tmp_path):
    """Issue 26: a 16-bit PNG was recorded as 8-bit "RGB"."""
    values = np.zeros((4, 5, 3), np.uint16)
    still = eio.load(_write(tmp_path / "rgb16.png", _png16_rgb(values)))
    assert (still.original_mode, still.bits_per_sample) == ("RGB;16", 16)
    grey = eio.load(_save(tmp_path, Image.fromarray(_SIXTEEN), "PNG"))
    assert grey.bits_per_sample == 16
    plain = eio.load(_save(tmp_path, Image.new("RGB", (4, 4)), "PNG"))
    assert (plain.original_mode, plain.bits_per_sample) == ("RGB", 8)
    tiff = eio.load(_save(tmp_path, Image.new("RGB", (4, 4)), "TIFF"))
    assert tiff.bits_per_sample == 8


def test_32bit_integer_in_16bit_range_is_scaled_like_16bit(tmp_path):
    values = _SIXTEEN.astype(np.int32)
    still = eio.load(_save(tmp_path, Image.fromarray(values, "I"), "TIFF"))
    assert still.original_mode == "I"
    assert still.rgb[0, :, 0].tolist() == _SIXTEEN_AS_8


def test_32bit_integer_out_of_16bit_range_is_stretched(tmp_path):
    values = np.array([[-1000, 0, 1000, 99000]], dtype=np.int32)
    still = eio.load(_save(tmp_path, Image.fromarray(values, "I"), "TIFF"))
    assert still.rgb[0, :, 0].tolist() == [0, 3, 5, 255]


def test_float_images_unit_range_and_stretched(tmp_path):
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    still = eio.load(_save(tmp_path, Image.fromarray(unit, "F"), "TIFF", "unit.tif"))
    assert still.original_mode == "F"
    assert still.rgb[0, :, 0].tolist() == [0, 128, 255]
    wide = np.array([[-2.0, 0.0, 2.0]], dtype=np.float32)
    still = eio.load(_save(tmp_path, Image.fromarray(wide, "F"), "TIFF", "wide.tif"))
    assert still.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_palette_without_transparency(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    image.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    still = eio.load(_save(tmp_path, image, "PNG"))
    assert still.original_mode == "P"
    assert still.rgb[0, 0].tolist() == [10, 20, 30] and still.rgb[0, 1].tolist() == [200, 100, 0]


def test_palette_transparent_index_becomes_white(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([0, 0, 0, 200, 100, 0] + [0] * 762)
    image.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    still = eio.load(_save(tmp_path, image, "PNG", transparency=0))
    assert still.original_mode == "P"
    assert still.rgb[0, 0].tolist() == [255, 255, 255]  # transparent black -> white background
    assert still.rgb[0, 1].tolist() == [200, 100, 0]


def test_colour_key_transparency_becomes_white(tmp_path):
    grey = np.array([[0, 90]], np.uint8)
    still = eio.load(_save(tmp_path, Image.fromarray(grey), "PNG", "l.png", transparency=0))
    assert still.original_mode == "L"
    assert still.rgb[0].tolist() == [[255, 255, 255], [90, 90, 90]]
    rgb = np.array([[[0, 0, 0], [10, 20, 30]]], np.uint8)
    still = eio.load(
        _save(tmp_path, Image.fromarray(rgb), "PNG", "rgb.png", transparency=(0, 0, 0))
    )
    assert still.original_mode == "RGB"
    assert still.rgb[0].tolist() == [[255, 255, 255], [10, 20, 30]]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_rgba_is_composited_over_white(tmp_path, fmt):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 40, 0)
    rgba[..., 3] = [[0, 128, 255], [255, 255, 0]]
    kw = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    still = eio.load(_save(tmp_path, Image.fromarray(rgba, "RGBA"), fmt, **kw))
    assert still.original_mode == "RGBA"
    half = [(c * 128 + 255 * 127 + 127) // 255 for c in (200, 40, 0)]
    assert still.rgb[0].tolist() == [[255, 255, 255], half, [200, 40, 0]]


def test_la_is_composited_over_white(tmp_path):
    la = np.zeros((1, 2, 2), np.uint8)
    la[..., 0] = 50
    la[..., 1] = [0, 255]
    still = eio.load(_save(tmp_path, Image.fromarray(la, "LA"), "PNG"))
    assert still.original_mode == "LA"
    assert still.rgb[0].tolist() == [[255, 255, 255], [50, 50, 50]]


_CMYK_PATCHES = [
    ((0, 0, 0, 0), (255, 255, 255)),
    ((0, 255, 255, 0), (255, 0, 0)),
    ((255, 0, 255, 0), (0, 255, 0)),
    ((0, 0, 0, 255), (0, 0, 0)),
]


@pytest.mark.parametrize(("fmt", "tolerance"), [("TIFF", 0), ("JPEG", 12)])
def test_cmyk_is_converted_to_rgb(tmp_path, fmt, tolerance):
    cmyk = np.zeros((16, 64, 4), np.uint8)
    for i, (ink, _) in enumerate(_CMYK_PATCHES):
        cmyk[:, i * 16 : (i + 1) * 16] = ink
    kw = {"quality": 95} if fmt == "JPEG" else {}
    still = eio.load(_save(tmp_path, Image.fromarray(cmyk, "CMYK"), fmt, **kw))
    assert still.original_mode == "CMYK"
    for i, (_, rgb) in enumerate(_CMYK_PATCHES):
        centre = still.rgb[8, i * 16 + 8].astype(int)
        assert np.abs(centre - rgb).max() <= tolerance, (i, centre, rgb)


# ---------------------------------------------------------------- EXIF orientation


def _with_orientation(image: Image.Image, value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored turned left: rotate 90 degrees clockwise
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_is_applied_exactly_png(tmp_path, tag, expected):
    rgb = _picture(10, 16)
    image = Image.fromarray(rgb)
    path = _save(tmp_path, image, "PNG", exif=_with_orientation(image, tag))
    still = eio.load(path)
    assert still.orientation == tag
    np.testing.assert_array_equal(still.rgb, expected(rgb))


def test_exif_orientation_6_jpeg_is_rotated_clockwise(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high: red left half, blue right half
    rgb[:, :20] = (255, 0, 0)
    rgb[:, 20:] = (0, 0, 255)
    image = Image.fromarray(rgb)
    still = eio.load(_save(tmp_path, image, "JPEG", quality=95, exif=_with_orientation(image, 6)))
    assert still.rgb.shape == (40, 20, 3)  # portrait after rotation
    assert still.orientation == 6
    top, bottom = still.rgb[5, 10].astype(int), still.rgb[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_exif_orientation_on_16bit_tiff(tmp_path):
    values = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    path = _save(tmp_path, Image.fromarray(values), "TIFF", tiffinfo={0x0112: 6})
    still = eio.load(path)
    assert still.rgb.shape == (4, 3, 3)
    np.testing.assert_array_equal(still.rgb[:, :, 0], np.rot90(eio._scale_16bit(values), -1))


# ---------------------------------------------------------------- multi-frame files


def _frames() -> list[Image.Image]:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    return [Image.fromarray(np.full((8, 10, 3), c, np.uint8)) for c in colours]


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [
        ("GIF", {"duration": 100, "loop": 0}),
        ("WEBP", {"duration": 100, "lossless": True}),
        ("TIFF", {}),
        ("PNG", {"duration": 100}),  # APNG
    ],
)
def test_multi_frame_files_give_the_first_frame_and_count(tmp_path, fmt, kw):
    first, *rest = _frames()
    path = _save(tmp_path, first, fmt, save_all=True, append_images=rest, **kw)
    still = eio.load(path)
    assert still.frames == 3
    assert (still.rgb == (255, 0, 0)).all()


# ---------------------------------------------------------------- size limits


@pytest.mark.parametrize("side", [(30000, 30000), (12000, 12000), (10000, 8500)])
def test_huge_header_is_refused_before_decoding(tmp_path, side):
    # 30000^2 trips Pillow's bomb error, 12000^2 only Pillow's warning, 10000x8500 only our
    # 80 MP limit: all three must end as the same clear refusal, and no warning may escape.
    width, height = side
    path = _write(tmp_path / "bomb.png", _png_header_only(width, height))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageLoadError) as info:
            eio.load(path)
    assert f"image is {width}x{height} pixels, more than the 80 megapixel limit" in str(info.value)
    assert str(info.value).startswith("Cannot open bomb.png: ")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pixel_limit_is_checked_before_any_pixel_is_decoded(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.fromarray(_picture(20, 20)), "PNG")
    assert PngImageFile.load is ImageFile.ImageFile.load  # so the spy below sees PNG decoding

    def no_decoding(self):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(eio, "MAX_PIXELS", 399)
    with pytest.raises(ImageLoadError, match=r"image is 20x20 pixels, more than the 0.000399"):
        eio.load(path)


def test_pixel_limit_lets_an_image_at_the_limit_through(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.fromarray(_picture(20, 20)), "PNG")
    monkeypatch.setattr(eio, "MAX_PIXELS", 400)
    assert eio.load(path).width == 20


def test_file_size_limit(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.fromarray(_picture()), "BMP")
    monkeypatch.setattr(eio, "MAX_FILE_BYTES", 1000)
    with pytest.raises(
        ImageLoadError, match=r"the file is \d+ bytes, more than the 1000 bytes limit"
    ):
        eio.load(path)


def test_module_limits_are_the_documented_ones():
    assert eio.MAX_PIXELS == 80_000_000
    assert eio.MAX_FILE_BYTES == 1 << 30


# ---------------------------------------------------------------- refusals with clear words


def _truncated(fmt: str) -> bytes:
    data = _encoded(Image.fromarray(_picture(64, 64)), fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (
            "notes.txt",
            b"Suspect seen at 10:42, camera 3.\n",
            "not an image file, or an unsupported format",
        ),
        ("empty.png", b"", "the file is empty"),
        (
            "noise.jpg",
            bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
            "not an image file",
        ),
        ("cut.jpg", _truncated("JPEG"), "the file is truncated or damaged"),
        ("cut.png", _truncated("PNG"), "the file is truncated or damaged"),
        ("cut.tif", _truncated("TIFF"), "the file is truncated or damaged"),
        ("cut.webp", _truncated("WEBP"), "the file is truncated or damaged"),
        ("head.png", b"\x89PNG\r\n\x1a\n\x00\x00", "it starts like a PNG file but cannot be read"),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not an image file"),
        ("memo.txt", b"BMW seen leaving at 22:10", "not an image file"),
        ("cut.bmp", _truncated("BMP")[:20], "it starts like a BMP file but cannot be read"),
        ("zero.png", _png_header_only(0, 10), "the file is truncated or damaged"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, name, content, words):
    path = _write(tmp_path / name, content)
    with pytest.raises(ImageLoadError) as info:
        eio.load(path)
    assert str(info.value) == f"Cannot open {name}: {info.value.reason}"
    assert words in info.value.reason
    assert info.value.path == path
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # never changed behind our back


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="Cannot open nothing.png: the file does not exist"):
        eio.load(tmp_path / "nothing.png")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ImageLoadError, match="this is a folder, not an image file"):
        eio.load(tmp_path)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="this is not a regular file"):
        eio.load(fifo)


def test_unreadable_file_is_permission_denied(shared_dir):
    path = _save(shared_dir, Image.fromarray(_picture()), "PNG", "locked.png")
    path.chmod(0o000)

    def attempt() -> str:
        try:
            eio.load(path)
        except ImageLoadError as exc:
            return str(exc)
        return "loaded"

    assert (
        _unprivileged(attempt)
        == "Cannot open locked.png: permission denied: the file cannot be read"
    )


def test_errors_are_value_errors_and_picklable(tmp_path):
    error = ImageLoadError(tmp_path / "a.png", "the file is empty", "detail")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.reason, copy.detail) == (
        str(error),
        error.path,
        error.reason,
        "detail",
    )
    out = OutputError(tmp_path / "b.png", "the folder x does not exist")
    assert isinstance(out, OSError) and str(out) == "Cannot save b.png: the folder x does not exist"
    assert str(pickle.loads(pickle.dumps(out))) == str(out)


# ---------------------------------------------------------------- fuzzing


def _valid_files() -> dict[str, bytes]:
    image = Image.fromarray(_picture(16, 16))
    return {
        "png": _encoded(image, "PNG"),
        "jpg": _encoded(image, "JPEG", quality=90),
        "gif": _encoded(image, "GIF"),
        "tif": _encoded(image, "TIFF"),
        "webp": _encoded(image, "WEBP"),
        "bmp": _encoded(image, "BMP"),
    }


VALID = _valid_files()


@FUZZ
@given(kind=st.sampled_from(sorted(VALID)), fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_fuzz_truncated_files_load_or_raise_image_load_error(tmp_path, kind, fraction):
    data = VALID[kind]
    _load_or_refuse(_write(tmp_path / f"cut.{kind}", data[: int(len(data) * fraction)]))


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes_load_or_raise_image_load_error(tmp_path, data):
    _load_or_refuse(_write(tmp_path / "random.png", data))


@FUZZ
@given(
    kind=st.sampled_from(sorted(VALID)),
    edits=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
)
def test_fuzz_corrupted_bytes_load_or_raise_image_load_error(tmp_path, kind, edits):
    data = bytearray(VALID[kind])
    for where, value in edits:
        data[int(len(data) * where)] = value
    _load_or_refuse(_write(tmp_path / f"flipped.{kind}", bytes(data)))


@FUZZ
@given(kind=st.sampled_from(sorted(VALID)), tail=st.binary(max_size=512))
def test_fuzz_valid_signature_then_garbage(tmp_path, kind, tail):
    _load_or_refuse(_write(tmp_path / f"garbage.{kind}", VALID[kind][:16] + tail))


# ---------------------------------------------------------------- evidence is never touched


def test_input_file_is_unchanged_and_nothing_is_written_next_to_it(tmp_path):
    path = _save(tmp_path, Image.fromarray(_picture()), "JPEG")
    before = path.read_bytes()
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    mtime = path.stat().st_mtime_ns
    still = eio.load(path)
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert still.sha256 == hashlib.sha256(before).hexdigest() == eio.sha256_file(path)


def test_still_pixels_are_read_only(tmp_path):
    still = eio.load(_save(tmp_path, Image.fromarray(_picture()), "PNG"))
    assert not still.rgb.flags.writeable
    with pytest.raises(ValueError):
        still.rgb[0, 0] = 0
    with pytest.raises(AttributeError):
        still.rgb = np.zeros((2, 2, 3), np.uint8)


def test_still_from_array_copies_hashes_and_names():
    rgb = _picture()
    still = eio.still_from_array(rgb, name="frame 12")
    rgb[:] = 0  # the caller's array stays the caller's
    assert still.rgb.max() > 0 and not still.rgb.flags.writeable
    assert still.sha256 == hashlib.sha256(_picture().tobytes()).hexdigest()
    assert (still.path, still.name, still.format, still.original_mode) == (
        None,
        "frame 12",
        "array",
        "RGB",
    )
    assert still == eio.still_from_array(_picture(), name="frame 12")
    assert hash(still) == hash(eio.still_from_array(_picture(), name="frame 12"))
    view = eio.still_from_array(_picture()[:, ::2])  # non-contiguous input is fine
    assert view.width == 16


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
)
def test_still_rejects_arrays_that_are_not_rgb_uint8(bad):
    with pytest.raises(ValueError):
        eio.still_from_array(bad)


def test_sha256_file_streams_large_files(tmp_path):
    data = np.random.default_rng(2).integers(0, 256, (5 << 20) // 2, dtype=np.uint8).tobytes()
    path = _write(tmp_path / "big.bin", data)
    assert eio.sha256_file(path) == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- save_png


def test_save_png_round_trip_text_and_hash(tmp_path):
    rgb = _picture()
    path = tmp_path / "result.png"
    text = {
        "Software": "Forensic Face Enhancer",
        "ffe:provenance": '{"model": "s2_rafsr"}',
        "Comment": "Gesicht – vergrößert ×4 (非ラテン)",
    }
    sha = eio.save_png(path, rgb, text)
    assert sha == eio.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.text == text
        np.testing.assert_array_equal(np.asarray(image), rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]  # no temp file left


def test_save_png_greyscale_and_no_text(tmp_path):
    grey = _picture()[:, :, 1]
    eio.save_png(tmp_path / "grey.png", grey)
    still = eio.load(tmp_path / "grey.png")
    assert still.original_mode == "L"
    np.testing.assert_array_equal(still.rgb[:, :, 2], grey)


def test_save_png_replaces_an_existing_file(tmp_path):
    path = tmp_path / "out.png"
    eio.save_png(path, np.zeros((4, 4, 3), np.uint8))
    eio.save_png(path, np.full((4, 4, 3), 7, np.uint8))
    assert eio.load(path).rgb.max() == 7


def test_save_png_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "out.png"
    eio.save_png(path, np.zeros((4, 4, 3), np.uint8))
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_save_png_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "out.png"
    eio.save_png(path, np.full((4, 4, 3), 1, np.uint8))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OutputError, match="Cannot save out.png: .*No space left on device"):
        eio.save_png(path, np.full((4, 4, 3), 2, np.uint8))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_png_missing_folder(tmp_path):
    with pytest.raises(
        OutputError, match=r"Cannot save out.png: the folder .*nowhere does not exist"
    ):
        eio.save_png(tmp_path / "nowhere" / "out.png", np.zeros((2, 2, 3), np.uint8))


def test_save_png_file_used_as_folder(tmp_path):
    (tmp_path / "report.txt").write_text("x")
    with pytest.raises(OutputError, match=r"report.txt is not a folder"):
        eio.save_png(tmp_path / "report.txt" / "out.png", np.zeros((2, 2, 3), np.uint8))


def test_save_png_target_is_a_folder(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(OutputError, match=r"is a folder"):
        eio.save_png(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8))


@pytest.mark.parametrize(
    ("mode", "words"),
    [(0o555, "is not writable"), (0o000, "cannot be accessed (permission denied)")],
)
def test_save_png_unwritable_folder(shared_dir, mode, words):
    locked = shared_dir / "locked"
    locked.mkdir()
    locked.chmod(mode)

    def attempt() -> str:
        try:
            eio.save_png(locked / "out.png", np.zeros((2, 2, 3), np.uint8))
        except OutputError as exc:
            return str(exc)
        return "saved"

    assert _unprivileged(attempt) == f"Cannot save out.png: the folder {locked} {words}"
    locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_decoder_warnings_go_to_the_log_not_the_console(tmp_path, caplog):
    image = Image.fromarray(_picture())
    exif = _with_orientation(image, 6)
    broken = exif[:-4]  # the EXIF block claims more entries than it holds
    path = _save(tmp_path, image, "JPEG", exif=broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        still = eio.load(path)
    assert not caught
    assert still.rgb.shape[2] == 3
    assert any("img.jpeg" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 4), np.uint8), np.zeros((2, 2, 3), np.uint16)])
def test_save_png_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError):
        eio.save_png(tmp_path / "x.png", bad)


@pytest.mark.parametrize("key", ["", "k" * 80, "clé✓", "tab\there"])
def test_save_png_rejects_bad_text_keys(tmp_path, key):
    with pytest.raises(ValueError, match="PNG text key"):
        eio.save_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8), {key: "v"})


def test_still_type_is_frozen_dataclass():
    still = eio.still_from_array(np.zeros((2, 3, 3), np.uint8))
    assert isinstance(still, Still) and (still.width, still.height) == (3, 2)
    with pytest.raises(AttributeError):
        still.sha256 = "x"
