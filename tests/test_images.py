"""edge.images: the intake stage: sources, result codes, header-first size checks, EXIF, robustness."""

from __future__ import annotations

import base64
import random
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_bombs import fix_png_crcs

from edge import images
from edge.errors import (
    CORRUPTED_IMAGE,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    INVALID_IMAGE_SIZE,
    INVALID_IMAGE_TYPE,
    EdgeError,
)
from edge.images import DEFAULT_LIMITS, Image, IntakeLimits, header_size, load_image, sniff

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def astronaut_file() -> Path:
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships astronaut.png")
    path = Path(data.__file__).resolve().parent / "astronaut.png"
    if not path.is_file():
        pytest.skip(f"{path} is not in this scikit-image install")
    return path


@pytest.fixture(scope="module")
def photo(astronaut_file) -> np.ndarray:
    """astronaut.png cropped to 512 high × 384 wide (not square, so rotations show), RGB uint8."""
    bgr = cv2.imread(str(astronaut_file), cv2.IMREAD_COLOR)
    assert bgr is not None and bgr.shape == (512, 512, 3)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[:, 64:448])


def encode(pixels: np.ndarray, ext: str, params: tuple[int, ...] = ()) -> bytes:
    """Encode grey, RGB or RGBA pixels (any bit depth) with OpenCV, which wants BGR(A) order."""
    if pixels.ndim == 3:
        pixels = np.ascontiguousarray(pixels[..., [2, 1, 0, 3][: pixels.shape[2]]])
    ok, buf = cv2.imencode(ext, pixels, list(params))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def jpeg(photo) -> bytes:
    return encode(photo, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 95))


@pytest.fixture(scope="module")
def png(photo) -> bytes:
    return encode(photo, ".png")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid-looking PNG declaring width×height RGB pixels, a few KB long: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width * 3 + 1) * 8, 9)  # the first 8 rows of zeros
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def exif_app1(orientation: int, byte_order: str = "II") -> bytes:
    """An APP1 segment: 'Exif\\0\\0' + a TIFF header + IFD0 holding one Orientation (0x0112) SHORT."""
    e = "<" if byte_order == "II" else ">"
    tiff = byte_order.encode() + struct.pack(e + "HI", 42, 8)  # magic 42, IFD0 at offset 8
    tiff += struct.pack(e + "H", 1)  # one entry
    tiff += struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)  # tag, SHORT, count 1, value (padded)
    tiff += struct.pack(e + "I", 0)  # no next IFD
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg_bytes: bytes, orientation: int, byte_order: str = "II") -> bytes:
    assert jpeg_bytes[:2] == b"\xff\xd8"
    return jpeg_bytes[:2] + exif_app1(orientation, byte_order) + jpeg_bytes[2:]


def minimal_gif() -> bytes:
    """A 1×1 GIF89a written by hand: header, screen descriptor, 2-colour table, image, trailer."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # 1×1, global colour table of 2 entries
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor
        + b"\x02\x02\x44\x01\x00"  # LZW min code size 2, one sub-block, terminator
        + b"\x3b"
    )


def code_of(source, **kwargs) -> int:
    with pytest.raises(EdgeError) as info:
        load_image(source, **kwargs)
    assert info.value.message  # every failure says what was wrong
    return info.value.code


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "ext,fmt,params,tolerance",
    [
        (".png", "png", (), 0.0),
        (".bmp", "bmp", (), 0.0),
        (".webp", "webp", (cv2.IMWRITE_WEBP_QUALITY, 101), 0.0),  # lossless: VP8L
        (".webp", "webp", (cv2.IMWRITE_WEBP_QUALITY, 90), 4.0),  # lossy: VP8
        (".jpg", "jpeg", (cv2.IMWRITE_JPEG_QUALITY, 95), 3.0),
    ],
)
def test_real_photo_in_every_accepted_format(photo, ext, fmt, params, tolerance):
    data = encode(photo, ext, params)
    assert sniff(data) == fmt
    assert header_size(data, fmt) == (384, 512) == header_size(data)
    img = load_image(data)
    assert isinstance(img, Image)
    assert img.format == fmt and img.orientation == 1 and img.original_size == (384, 512)
    assert img.rgb.shape == (512, 384, 3) and img.rgb.dtype == np.uint8 and img.rgb.flags.c_contiguous
    assert (img.width, img.height) == (384, 512)
    assert mean_abs_diff(img.rgb, photo) <= tolerance  # RGB order, not BGR


def test_image_is_frozen(png):
    img = load_image(png)
    with pytest.raises(AttributeError):
        img.format = "jpeg"  # type: ignore[misc]


def test_webp_vp8x_header(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    data = encode(rgba, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 90))
    assert data[12:16] == b"VP8X"
    assert header_size(data, "webp") == (384, 512)
    img = load_image(data)
    assert img.rgb.shape == (512, 384, 3) and mean_abs_diff(img.rgb, photo) < 4.0  # alpha dropped


def test_bmp_top_down_negative_height(photo):
    data = bytearray(encode(photo, ".bmp"))
    offset = struct.unpack_from("<I", data, 10)[0]
    width, height = struct.unpack_from("<ii", data, 18)
    assert (width, height) == (384, 512)
    stride = (width * 24 + 31) // 32 * 4
    rows = [bytes(data[offset + i * stride : offset + (i + 1) * stride]) for i in range(height)]
    top_down = bytearray(data[:offset] + b"".join(reversed(rows)))
    struct.pack_into("<i", top_down, 22, -height)
    assert header_size(bytes(top_down), "bmp") == (384, 512)
    np.testing.assert_array_equal(load_image(bytes(top_down)).rgb, photo)


def test_grey_jpeg_becomes_three_channels(photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    img = load_image(encode(grey, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 95)))
    assert img.rgb.shape == (512, 384, 3)
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 1]) and np.array_equal(img.rgb[..., 1], img.rgb[..., 2])
    assert mean_abs_diff(img.rgb[..., 0], grey) < 3.0


def test_sixteen_bit_png_becomes_eight_bit(photo):
    data = encode(photo.astype(np.uint16) * 257, ".png")
    assert data[24] == 16  # IHDR bit depth
    img = load_image(data)
    assert img.rgb.dtype == np.uint8
    np.testing.assert_array_equal(img.rgb, photo)


def test_png_alpha_is_dropped(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 7, np.uint8)])
    data = encode(rgba, ".png")
    assert data[25] == 6  # IHDR colour type: RGBA
    np.testing.assert_array_equal(load_image(data).rgb, photo)


def test_sniff_uses_magic_bytes_only(jpeg, png, tmp_path):
    assert sniff(b"") is None and sniff(b"hello world") is None and sniff(minimal_gif()) is None
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff(b"BMW is a car, not a bitmap image") is None
    assert sniff(bytearray(jpeg)) == "jpeg" and sniff(memoryview(png)) == "png"
    # A PNG named .jpg is a PNG; a JPEG named .png is a JPEG.
    (tmp_path / "really_png.jpg").write_bytes(png)
    (tmp_path / "really_jpeg.png").write_bytes(jpeg)
    assert load_image(tmp_path / "really_png.jpg").format == "png"
    assert load_image(tmp_path / "really_jpeg.png").format == "jpeg"


def test_header_size_rejects_unknown_format_and_malformed_headers(png):
    with pytest.raises(EdgeError) as info:
        header_size(png, "gif")
    assert info.value.code == INVALID_IMAGE_TYPE
    with pytest.raises(EdgeError) as info:
        header_size(b"GIF89a....")
    assert info.value.code == INVALID_IMAGE_TYPE
    for broken in (png[:20], b"\xff\xd8\xff\xe0\x00", b"RIFF\x10\x00\x00\x00WEBPVP8 ", b"BM\x00\x00"):
        with pytest.raises(EdgeError) as info:
            header_size(broken)
        assert info.value.code == CORRUPTED_IMAGE, broken


# --------------------------------------------------------------------------- sources


def test_bytes_like_sources(png, photo):
    for source in (png, bytearray(png), memoryview(png), memoryview(bytearray(png))):
        np.testing.assert_array_equal(load_image(source).rgb, photo)


def test_mutating_the_callers_bytearray_afterwards_is_harmless(png, photo):
    buf = bytearray(png)
    img = load_image(buf)
    buf[:] = b"\x00" * len(buf)
    np.testing.assert_array_equal(img.rgb, photo)


def test_path_as_str_and_as_path(tmp_path, jpeg):
    path = tmp_path / "face.jpg"
    path.write_bytes(jpeg)
    a, b = load_image(path), load_image(str(path))
    assert a.format == b.format == "jpeg"
    np.testing.assert_array_equal(a.rgb, b.rgb)


def test_astronaut_file_itself(astronaut_file):
    img = load_image(astronaut_file)
    assert img.format == "png" and img.rgb.shape == (512, 512, 3)


def test_base64_with_and_without_data_url(png, jpeg, photo):
    b64 = base64.b64encode(png).decode("ascii")
    np.testing.assert_array_equal(load_image(b64).rgb, photo)
    np.testing.assert_array_equal(load_image("data:image/png;base64," + b64).rgb, photo)
    # The declared media type does not matter: the bytes are sniffed.
    assert load_image("data:image/png;base64," + base64.b64encode(jpeg).decode()).format == "jpeg"
    # MIME line breaks, missing padding and the URL-safe alphabet are accepted too.
    np.testing.assert_array_equal(load_image(base64.encodebytes(png).decode("ascii")).rgb, photo)
    np.testing.assert_array_equal(load_image(b64.rstrip("=")).rgb, photo)
    np.testing.assert_array_equal(load_image(base64.urlsafe_b64encode(png).decode()).rgb, photo)


@pytest.mark.parametrize(
    "text",
    [
        "this is not base64!",
        "aGVsbG8=aGVsbG8=",  # padding in the middle
        "abcde",  # 5 characters cannot encode whole bytes
        "data:image/png;base64,@@@@",
        "data:image/png,iVBORw0KGgo=",  # a data URL that is not base64
        "data:image/png;base64",  # no comma
        "données",
    ],
)
def test_bad_base64_is_invalid_argument(text):
    assert code_of(text) == INVALID_ARGUMENT


def test_base64_of_non_image_is_invalid_type():
    assert code_of(base64.b64encode(b"just some text, and not an image at all").decode()) == INVALID_IMAGE_TYPE
    # Without paths every string is content, however short.
    assert code_of(base64.b64encode(b"short text").decode(), allow_paths=False) == INVALID_IMAGE_TYPE


def test_missing_path_directory_and_special_files(tmp_path):
    with pytest.raises(EdgeError) as info:
        load_image(str(tmp_path / "nope.jpg"))
    assert info.value.code == INVALID_ARGUMENT and "nope.jpg" in info.value.message
    assert code_of(tmp_path / "nope.jpg") == INVALID_ARGUMENT
    with pytest.raises(EdgeError) as info:
        load_image(tmp_path)
    assert info.value.code == INVALID_ARGUMENT and "directory" in info.value.message
    assert code_of(str(tmp_path)) == INVALID_ARGUMENT
    if Path("/dev/zero").exists():  # reading it would never end
        assert code_of(Path("/dev/zero")) == INVALID_ARGUMENT


@pytest.mark.parametrize("missing", ["/srv/faces/bob", "/nonexistent/photo.jpg", "faces/missing_01.png", "x.jpg"])
def test_missing_paths_that_look_like_base64_are_still_invalid_argument(missing):
    # "/srv/faces/bob" is valid base64 (14 chars, no dot); it must not turn into 2005.
    assert code_of(missing) == INVALID_ARGUMENT


@pytest.mark.parametrize("word", ["face", "IMG_0001", "selfie12", "X.jpg", "abcd", "données"])
def test_a_word_that_is_not_a_file_is_a_file_not_found(word):
    # "face" and "IMG_0001" are valid base64 (of 3 and 6 bytes): they used to be decoded and
    # refused as "not a supported image format ... 7d a7 1e". A mistyped file name is 1200.
    with pytest.raises(EdgeError) as info:
        load_image(word)
    assert info.value.code == INVALID_ARGUMENT
    assert info.value.message.startswith(f"file not found: {word!r}")
    # With paths refused every string is content: no file-system answer, just base64 or not.
    with pytest.raises(EdgeError) as info:
        load_image(word, allow_paths=False)
    assert "file" not in info.value.message


def test_allow_paths_false_never_opens_a_file(tmp_path, png):
    path = tmp_path / "face.png"
    path.write_bytes(png)
    assert code_of(path, allow_paths=False) == INVALID_ARGUMENT
    assert code_of(str(path), allow_paths=False) == INVALID_ARGUMENT
    assert load_image(base64.b64encode(png).decode(), allow_paths=False).format == "png"


@pytest.mark.parametrize("source", [None, 42, 3.5, ["a"], {"b": 1}, object()])
def test_unsupported_source_types(source):
    assert code_of(source) == INVALID_ARGUMENT


# --------------------------------------------------------------------------- arrays


def test_arrays_rgb_grey_rgba(photo):
    img = load_image(photo)
    assert img.format == "array" and img.orientation == 1 and img.original_size == (384, 512)
    np.testing.assert_array_equal(img.rgb, photo)
    assert not np.shares_memory(img.rgb, photo)  # a private copy
    grey = photo[..., 0].copy()
    for g in (grey, grey[..., None]):
        out = load_image(g).rgb
        assert out.shape == (512, 384, 3) and all(np.array_equal(out[..., c], grey) for c in range(3))
    rgba = np.dstack([photo, np.zeros(photo.shape[:2], np.uint8)])
    np.testing.assert_array_equal(load_image(rgba).rgb, photo)
    flipped = photo[:, ::-1]  # not contiguous
    out = load_image(flipped).rgb
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, flipped)


@pytest.mark.parametrize(
    "array,code",
    [
        (np.zeros((100, 100, 3), np.float32), INVALID_ARGUMENT),
        (np.zeros((100, 100, 3), np.float64), INVALID_ARGUMENT),
        (np.zeros((100, 100, 3), np.uint16), INVALID_ARGUMENT),
        (np.zeros((100, 100, 3), bool), INVALID_ARGUMENT),
        (np.zeros(30000, np.uint8), INVALID_ARGUMENT),  # 1-D: encoded bytes belong in bytes
        (np.zeros((2, 100, 100, 3), np.uint8), INVALID_ARGUMENT),
        (np.zeros((100, 100, 2), np.uint8), INVALID_ARGUMENT),
        (np.zeros((100, 100, 5), np.uint8), INVALID_ARGUMENT),
        (np.zeros((63, 100, 3), np.uint8), INVALID_IMAGE_SIZE),
        (np.zeros((100, 4097), np.uint8), INVALID_IMAGE_SIZE),
        (np.zeros((0, 0, 3), np.uint8), INVALID_IMAGE_SIZE),
    ],
)
def test_bad_arrays(array, code):
    assert code_of(array) == code


def test_array_size_limits_are_inclusive():
    assert load_image(np.zeros((64, 4096, 3), np.uint8)).rgb.shape == (64, 4096, 3)


# --------------------------------------------------------------------------- result codes


def test_empty_content_is_invalid_content_length(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for source in (b"", bytearray(), memoryview(b""), empty, "", "data:image/jpeg;base64,"):
        assert code_of(source) == INVALID_CONTENT_LENGTH, source


def test_truncated_jpeg_is_corrupted(jpeg):
    with pytest.raises(EdgeError) as info:
        load_image(jpeg[: len(jpeg) // 2])
    assert info.value.code == CORRUPTED_IMAGE and "EOI" in info.value.message
    assert code_of(jpeg[:-2]) == CORRUPTED_IMAGE  # only the EOI marker missing
    assert code_of(jpeg[:300]) == CORRUPTED_IMAGE  # cut in the headers


def test_truncated_png_bmp_webp_are_corrupted(photo, png):
    assert code_of(png[: len(png) // 2]) == CORRUPTED_IMAGE
    assert code_of(png[:-12]) == CORRUPTED_IMAGE  # IEND missing
    broken_crc = bytearray(png)
    broken_crc[len(png) // 2] ^= 0xFF  # inside IDAT: CRC mismatch
    assert code_of(bytes(broken_crc)) == CORRUPTED_IMAGE
    bmp = encode(photo, ".bmp")
    assert code_of(bmp[: len(bmp) - 1000]) == CORRUPTED_IMAGE
    webp = encode(photo, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 90))
    assert code_of(webp[: len(webp) // 2]) == CORRUPTED_IMAGE


def test_png_whose_pixels_do_not_decode_is_corrupted():
    # Chunks, CRCs and IEND all fine; the IDAT stream holds far too few rows.
    ihdr = struct.pack(">IIBBBBB", 200, 200, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 601))
        + png_chunk(b"IEND", b"")
    )
    assert header_size(data) == (200, 200)
    assert code_of(data) == CORRUPTED_IMAGE


def test_jpeg_whose_scan_is_garbage_but_complete_is_not_a_crash(jpeg):
    # Valid headers, EOI present, scan replaced by noise: the decoder may produce noise or
    # refuse; either way only a clean result or a 2006.
    sos = jpeg.index(b"\xff\xda")
    seg_end = sos + 2 + struct.unpack_from(">H", jpeg, sos + 2)[0]
    noise = np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    data = jpeg[:seg_end] + noise + b"\xff\xd9"
    try:
        img = load_image(data)
    except EdgeError as exc:
        assert exc.code == CORRUPTED_IMAGE
    else:
        assert img.rgb.shape == (512, 384, 3)


def test_text_file_is_invalid_type(tmp_path):
    text = tmp_path / "photo.jpg"  # the extension lies
    text.write_text("This is a text file, not a photograph.\n" * 20)
    assert code_of(text) == INVALID_IMAGE_TYPE
    assert code_of(b"\x00" * 1000) == INVALID_IMAGE_TYPE


def test_gif_is_invalid_type(tmp_path):
    gif = minimal_gif()
    decoded = cv2.imdecode(np.frombuffer(gif, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is None or decoded.shape[:2] == (1, 1)  # a real GIF (OpenCV may or may not read it)
    with pytest.raises(EdgeError) as info:
        load_image(gif)
    assert info.value.code == INVALID_IMAGE_TYPE and "GIF" in info.value.message
    path = tmp_path / "anim.png"
    path.write_bytes(gif)
    assert code_of(path) == INVALID_IMAGE_TYPE


@pytest.mark.parametrize(
    "magic",
    [
        b"II*\x00" + b"\x00" * 100,
        b"MM\x00*" + b"\x00" * 100,
        b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100,
        b"%PDF-1.4\n" + b"\x00" * 100,
        b"RIFF\x64\x00\x00\x00WAVEfmt " + b"\x00" * 100,
    ],
)
def test_other_formats_are_invalid_type(magic):
    assert code_of(magic) == INVALID_IMAGE_TYPE


def test_one_pixel_png_is_invalid_size():
    data = encode(np.zeros((1, 1, 3), np.uint8), ".png")
    with pytest.raises(EdgeError) as info:
        load_image(data)
    assert info.value.code == INVALID_IMAGE_SIZE
    assert "1×1" in info.value.message and "at least 64" in info.value.message


def test_png_bomb_is_refused_from_the_header_fast(monkeypatch):
    bomb = png_bomb(30000, 30000)
    assert len(bomb) < 8 * 1024  # a few KB declaring 900 megapixels

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("cv2.imdecode must not be reached for an oversized header")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    start = time.perf_counter()
    with pytest.raises(EdgeError) as info:
        load_image(bomb)
    elapsed = time.perf_counter() - start
    assert info.value.code == INVALID_IMAGE_SIZE
    assert "30000×30000" in info.value.message and "at most 4096" in info.value.message
    assert elapsed < 0.05, f"took {elapsed * 1000:.1f} ms"


@pytest.mark.parametrize("fmt,ext", [("jpeg", ".jpg"), ("bmp", ".bmp"), ("webp", ".webp")])
def test_too_large_sides_in_other_headers(fmt, ext, monkeypatch):
    # Small real files whose header size field is then rewritten to 5000 pixels.
    data = bytearray(
        encode(np.zeros((100, 100, 3), np.uint8), ext, (cv2.IMWRITE_WEBP_QUALITY, 101) if fmt == "webp" else ())
    )
    if fmt == "jpeg":
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">H", data, sof + 5, 5000)  # height
    elif fmt == "bmp":
        struct.pack_into("<i", data, 18, 5000)  # width
    else:
        assert data[12:16] == b"VP8L"
        bits = struct.unpack_from("<I", data, 21)[0]
        struct.pack_into("<I", data, 21, (bits & ~0x3FFF) | (5000 - 1))  # width - 1
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded an oversized image"))
    with pytest.raises(EdgeError) as info:
        load_image(bytes(data))
    assert info.value.code == INVALID_IMAGE_SIZE and "5000" in info.value.message


def test_more_than_five_mib_is_invalid_content_length(jpeg, tmp_path):
    # A valid JPEG followed by padding (bytes after EOI are allowed): only the length is wrong.
    padded = jpeg + b"\x00" * (5 * 1024 * 1024 + 1 - len(jpeg))
    assert len(padded) == DEFAULT_LIMITS.max_bytes + 1
    with pytest.raises(EdgeError) as info:
        load_image(padded)
    assert info.value.code == INVALID_CONTENT_LENGTH and str(DEFAULT_LIMITS.max_bytes) in info.value.message
    assert load_image(padded[:-1]).format == "jpeg"  # exactly 5 MiB is fine
    assert load_image(padded, limits=IntakeLimits(max_bytes=6 * 1024 * 1024)).format == "jpeg"
    big_file = tmp_path / "big.jpg"
    big_file.write_bytes(padded)
    assert code_of(big_file) == INVALID_CONTENT_LENGTH
    assert code_of(base64.b64encode(padded).decode()) == INVALID_CONTENT_LENGTH


def test_configurable_limits(png):
    assert code_of(png, limits=IntakeLimits(max_bytes=len(png) - 1)) == INVALID_CONTENT_LENGTH
    assert code_of(png, limits=IntakeLimits(min_side=400)) == INVALID_IMAGE_SIZE
    assert code_of(png, limits=IntakeLimits(max_side=500)) == INVALID_IMAGE_SIZE
    assert load_image(png, limits=IntakeLimits(min_side=384, max_side=512)).rgb.shape == (512, 384, 3)
    tiny = encode(np.zeros((8, 8, 3), np.uint8), ".png")
    assert load_image(tiny, limits=IntakeLimits(min_side=8)).rgb.shape == (8, 8, 3)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": -5}, "max_bytes"),
        ({"min_side": 0}, "min_side"),
        ({"max_side": 0}, "max_side"),
        ({"min_side": 100, "max_side": 50}, "max_side"),
    ],
)
def test_limits_are_validated(kwargs, field):
    with pytest.raises(ValueError, match=field):
        IntakeLimits(**kwargs)


@pytest.mark.parametrize(
    "kwargs,field",
    [({"max_bytes": 5.0}, "max_bytes"), ({"min_side": True}, "min_side"), ({"max_side": "4096"}, "max_side")],
)
def test_limits_reject_non_integers(kwargs, field):
    with pytest.raises(TypeError, match=field):
        IntakeLimits(**kwargs)


# --------------------------------------------------------------------------- EXIF orientation


def test_exif_orientation_6_rotates_clockwise(jpeg, photo):
    data = with_exif(jpeg, 6)
    img = load_image(data)
    assert img.orientation == 6
    assert img.original_size == (384, 512)  # as stored
    assert img.rgb.shape == (384, 512, 3)  # shape swapped
    assert mean_abs_diff(img.rgb, np.rot90(photo, -1)) < 3.0  # turned 90° clockwise
    assert images.exif_orientation(data) == 6
    unrotated = load_image(data, apply_exif=False)
    assert unrotated.orientation == 6 and unrotated.rgb.shape == (512, 384, 3)
    assert mean_abs_diff(unrotated.rgb, photo) < 3.0


UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("byte_order", ["II", "MM"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_applied_once(jpeg, orientation, byte_order):
    data = with_exif(jpeg, orientation, byte_order)
    stored = load_image(data, apply_exif=False).rgb
    img = load_image(data)
    assert img.orientation == orientation
    np.testing.assert_array_equal(img.rgb, UPRIGHT[orientation](stored))
    # The same result as OpenCV's own EXIF handling: applied exactly once, not zero or two times.
    auto = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(img.rgb, auto)


@pytest.mark.parametrize(
    "segment",
    [
        exif_app1(0),  # out of range
        exif_app1(9),
        b"II*\x00",  # TIFF header cut short
        b"II*\x00\xff\xff\x00\x00\x00\x00",  # IFD offset outside the block
        b"XX*\x00\x08\x00\x00\x00",  # bad byte order
        b"II*\x00\x08\x00\x00\x00\xff\xff",  # 65535 IFD entries announced, none there
        b"II+\x00\x08\x00\x00\x00",  # bad magic
    ],
)
def test_broken_exif_counts_as_orientation_1(jpeg, segment):
    if not segment.startswith(b"\xff\xe1"):  # a TIFF block: wrap it in an APP1 segment
        segment = b"\xff\xe1" + struct.pack(">H", len(segment) + 8) + b"Exif\x00\x00" + segment
    img = load_image(jpeg[:2] + segment + jpeg[2:])
    assert img.orientation == 1 and img.rgb.shape == (512, 384, 3)


def test_orientation_is_1_for_other_formats(png):
    assert load_image(png).orientation == 1 and images.exif_orientation(png) == 1


def test_decrypted_bytes_seam(png, photo):
    """decode_image takes already-decrypted content and runs the content checks."""
    np.testing.assert_array_equal(images.decode_image(png).rgb, photo)
    with pytest.raises(EdgeError) as info:
        images.decode_image(b"")
    assert info.value.code == INVALID_CONTENT_LENGTH
    assert images.read_source(base64.b64encode(png).decode()) == png


# --------------------------------------------------------------------------- robustness


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0:  # truncate anywhere
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == 1:  # flip a few bytes in the first 1 KB, where the headers are
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(min(1024, len(buf)))] = rng.randrange(256)
    elif kind == 2:  # flip bytes anywhere
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 3:  # delete a run
        start = rng.randrange(len(buf))
        del buf[start : start + rng.randint(1, 64)]
    elif kind == 4:  # insert a run
        start = rng.randrange(len(buf))
        buf[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 5:  # overwrite a length field-ish spot with extreme values
        start = rng.randrange(min(256, len(buf) - 4))
        buf[start : start + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
    else:  # duplicate a slice
        start = rng.randrange(len(buf))
        piece = buf[start : start + rng.randint(1, 512)]
        at = rng.randrange(len(buf))
        buf[at:at] = piece
    return bytes(buf)


@pytest.fixture(scope="module")
def small_photos(photo) -> dict[str, bytes]:
    small = np.ascontiguousarray(cv2.resize(photo, (96, 128), interpolation=cv2.INTER_AREA))
    return {
        "jpeg": with_exif(encode(small, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90)), 6),
        "progressive": encode(small, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        "png": encode(small, ".png"),
        "bmp": encode(small, ".bmp"),
        "webp": encode(small, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),
    }


@pytest.mark.parametrize(
    "name,count,fix_crc",
    [
        ("jpeg", 300, False),
        ("png", 300, False),
        ("png", 150, True),
        ("progressive", 100, False),
        ("bmp", 100, False),
        ("webp", 100, False),
    ],
)
def test_fuzz_mutations_load_or_raise_edge_error(small_photos, name, count, fix_crc):
    rng = random.Random(f"{name}-{fix_crc}-20240601")
    original = small_photos[name]
    assert load_image(original).rgb.size > 0
    outcomes: dict[int | str, int] = {}
    slowest = 0.0
    for i in range(count):
        data = mutate(rng, original)
        if fix_crc:
            data = fix_png_crcs(data)
        start = time.perf_counter()
        try:
            img = load_image(data)
        except EdgeError as exc:
            assert exc.code in (INVALID_CONTENT_LENGTH, INVALID_IMAGE_TYPE, INVALID_IMAGE_SIZE, CORRUPTED_IMAGE)
            assert exc.message
            outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"mutation {i} of {name}: {type(exc).__name__}: {exc}")
        else:
            assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
            assert img.rgb.flags.c_contiguous
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        assert elapsed < 1.0, f"mutation {i} of {name} took {elapsed:.2f} s"
    assert outcomes.get(CORRUPTED_IMAGE, 0) > 0  # the mutations did break things


@pytest.mark.parametrize("kind", ["jpeg_segments", "png_chunks", "webp_chunks", "jpeg_fill"])
def test_pathological_structures_are_handled_fast(kind):
    """5 MB made of millions of empty segments/chunks: refused (or loaded) quickly, not walked for seconds."""
    room = DEFAULT_LIMITS.max_bytes - 10_000
    small = np.full((100, 100, 3), 128, np.uint8)
    if kind == "jpeg_segments":
        jpg = encode(small, ".jpg")
        data = jpg[:2] + b"\xff\xfe\x00\x02" * (room // 4) + jpg[2:]  # empty COM segments
    elif kind == "jpeg_fill":
        jpg = encode(small, ".jpg")
        data = jpg[:2] + b"\xff" * room + jpg[2:]  # legal 0xFF fill bytes before a marker
    elif kind == "png_chunks":
        png_bytes = encode(small, ".png")
        data = png_bytes[:33] + png_chunk(b"zzZz", b"") * (room // 12) + png_bytes[33:]
    else:
        webp = encode(small, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))
        body = webp[12:] + b"JUNK\x00\x00\x00\x00" * (room // 8)
        data = b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
    start = time.perf_counter()
    try:
        img = load_image(data)
    except EdgeError as exc:
        assert exc.code == CORRUPTED_IMAGE and "pathological" in exc.message
    else:
        assert img.rgb.shape == (100, 100, 3)
    assert time.perf_counter() - start < 0.5


def test_limits_must_be_intake_limits(png):
    with pytest.raises(TypeError, match="IntakeLimits"):
        load_image(png, limits={"max_bytes": 10})  # type: ignore[arg-type]


def test_decoding_is_fast_enough(jpeg):
    load_image(jpeg)
    start = time.perf_counter()
    for _ in range(10):
        load_image(jpeg)
    per_image = (time.perf_counter() - start) / 10
    assert per_image < 0.1, f"{per_image * 1000:.1f} ms per 512×384 JPEG"
