"""edge.images under attack: decoding bombs, truncated and corrupt data, paths, and large photos.

Every hostile file is made here, small and on the fly (tests/image_bombs.py); the real photos
are scikit-image's and, when ../shared is present, lfw-dev's.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_bombs import cut_with_eoi, png_chunk, scan_bomb, zlib_bomb

from edge import images
from edge.decoder_messages import call_capturing_stderr
from edge.errors import (
    CORRUPTED_IMAGE,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    INVALID_IMAGE_SIZE,
    INVALID_IMAGE_TYPE,
    EdgeError,
)
from edge.images import DEFAULT_LIMITS, IntakeLimits, load_image


def refusal(source, **kwargs) -> EdgeError:
    with pytest.raises(EdgeError) as info:
        load_image(source, **kwargs)
    assert info.value.message
    return info.value


def encode(rgb: np.ndarray, ext: str, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    assert ok
    return buf.tobytes()


@pytest.fixture
def no_decoder(monkeypatch):
    """Fail the test if OpenCV is asked to decode anything."""
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("the decoder was reached"))


@pytest.fixture
def decoder_calls(monkeypatch) -> list[int]:
    """The flags of every cv2.imdecode call (the real decoder still runs)."""
    calls: list[int] = []
    real = cv2.imdecode

    def spy(buf, flags):
        calls.append(flags)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    return calls


def scans_of(jpeg: bytes) -> int:
    return images._jpeg_walk(jpeg, to_end=True).scans


# --------------------------------------------------------------------------- decoding bombs


def test_a_scan_bomb_is_refused_before_decoding(no_decoder):
    bomb = scan_bomb(4096, 4096, scans=4000)  # libjpeg: ~14 s here (image_bombs.py)
    assert len(bomb) < 256 * 1024
    start = time.perf_counter()
    error = refusal(bomb)
    elapsed = time.perf_counter() - start
    assert error.code == CORRUPTED_IMAGE and "more than 32 scans" in error.message
    assert elapsed < 0.1, f"{elapsed * 1000:.0f} ms"


def test_the_scan_limit_is_what_refuses_it(decoder_calls):
    small = scan_bomb(256, 256, scans=40)
    assert refusal(small).code == CORRUPTED_IMAGE and not decoder_calls
    img = load_image(small, limits=IntakeLimits(max_scans=41))  # the same file, under a higher limit
    assert img.rgb.shape == (256, 256, 3) and decoder_calls
    assert refusal(scan_bomb(256, 256, scans=4), limits=IntakeLimits(max_scans=4)).code == CORRUPTED_IMAGE  # 5 scans


def test_real_progressive_jpegs_stay_within_the_scan_limit(astronaut_rgb):
    data = encode(astronaut_rgb, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 90))
    assert 5 <= scans_of(data) <= DEFAULT_LIMITS.max_scans
    grey = encode(astronaut_rgb[..., :1].repeat(3, axis=2), ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    assert load_image(data).rgb.shape == (512, 512, 3) and load_image(grey).rgb.shape == (512, 512, 3)


def test_a_zlib_bomb_is_refused_after_inflating_what_the_header_declares(no_decoder):
    bomb = zlib_bomb()  # 64×64 pixels; the IDAT stream inflates to 4 GiB
    assert len(bomb) < DEFAULT_LIMITS.max_bytes
    start = time.perf_counter()
    error = refusal(bomb)
    elapsed = time.perf_counter() - start
    assert error.code == CORRUPTED_IMAGE and "inflates to more than the 12352 bytes" in error.message
    assert elapsed < 0.5, f"{elapsed * 1000:.0f} ms"


def png_with_stream(width: int, height: int, stream: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def test_png_data_must_inflate_to_exactly_the_declared_rows():
    rows = (b"\x00" + bytes(range(192))) * 64  # 64×64 RGB, filter byte 0 per row
    assert load_image(png_with_stream(64, 64, zlib.compress(rows))).rgb.shape == (64, 64, 3)
    too_long = refusal(png_with_stream(64, 64, zlib.compress(rows + b"\x00" * 1000)))
    too_short = refusal(png_with_stream(64, 64, zlib.compress(rows[:-193])))
    trailing = refusal(png_with_stream(64, 64, zlib.compress(rows) + b"\x00" * 10))
    not_zlib = refusal(png_with_stream(64, 64, b"\x78\x9c" + b"\xff" * 100))
    bad_checksum = refusal(png_with_stream(64, 64, zlib.compress(rows)[:-4] + b"\x00\x00\x00\x00"))
    for error in (too_long, too_short, trailing, not_zlib, bad_checksum):
        assert error.code == CORRUPTED_IMAGE, error.message
    assert "continues after the end" in trailing.message and "not a valid zlib stream" in not_zlib.message


def test_split_idat_and_interlaced_pngs_decode(astronaut_rgb):
    plain = encode(astronaut_rgb, ".png")
    pos, chunks = 8, []
    while pos < len(plain):
        (length,) = struct.unpack_from(">I", plain, pos)
        chunks.append((plain[pos + 4 : pos + 8], plain[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    split = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", chunks[0][1])  # the same stream in 1000-byte IDATs
    split += b"".join(png_chunk(b"IDAT", stream[i : i + 1000]) for i in range(0, len(stream), 1000))
    split += png_chunk(b"IEND", b"")
    np.testing.assert_array_equal(load_image(split).rgb, astronaut_rgb)
    for width, height in ((512, 512), (101, 67), (64, 65), (66, 64)):  # passes that do not divide evenly
        rgb = np.ascontiguousarray(astronaut_rgb[:height, :width])
        np.testing.assert_array_equal(load_image(adam7_png(rgb)).rgb, rgb)


def adam7_png(rgb: np.ndarray) -> bytes:
    """An interlaced (Adam7) 8-bit RGB PNG, written by hand (OpenCV writes none): each of the 7
    passes' rows, filter byte 0, in one zlib stream."""
    height, width = rgb.shape[:2]
    rows = b"".join(
        b"\x00" + rgb[y, x0::dx].tobytes()
        for x0, y0, dx, dy in images._ADAM7
        if width > x0
        for y in range(y0, height, dy)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def test_the_decoding_memory_budget(astronaut_rgb):
    png = encode(astronaut_rgb, ".png")  # 512×512: 786 KB of pixels + 787 KB of rows
    assert load_image(png, limits=IntakeLimits(max_decoded_bytes=2 * 1024 * 1024)).rgb.shape == (512, 512, 3)
    error = refusal(png, limits=IntakeLimits(max_decoded_bytes=1024 * 1024))
    assert error.code == INVALID_IMAGE_SIZE and "max_decoded_bytes" in error.message
    # A progressive JPEG holds every coefficient (2 bytes each) while it decodes; a baseline one does not.
    progressive = encode(
        astronaut_rgb,
        ".jpg",
        (cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
    )
    baseline = encode(astronaut_rgb, ".jpg", (cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444))
    budget = IntakeLimits(max_decoded_bytes=1024 * 1024)  # pixels 786 KB; 4:4:4 coefficients 1.5 MB more
    assert load_image(baseline, limits=budget).rgb.shape == (512, 512, 3)
    assert refusal(progressive, limits=budget).code == INVALID_IMAGE_SIZE


def test_the_structure_checks_run_against_a_deadline(astronaut_rgb):
    for data in (encode(astronaut_rgb, ".png"), encode(astronaut_rgb, ".jpg")):
        error = refusal(data, limits=IntakeLimits(decode_timeout_ms=1e-6))
        assert error.code == CORRUPTED_IMAGE and "decode_timeout_ms" in error.message
        assert load_image(data).rgb.shape == (512, 512, 3)


# --------------------------------------------------------------------------- truncated and corrupt JPEG


@pytest.mark.parametrize(
    "params",
    [
        (cv2.IMWRITE_JPEG_QUALITY, 90),
        (cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        (cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_RST_INTERVAL, 4),
    ],
    ids=["baseline", "progressive", "restart-markers"],
)
def test_a_jpeg_cut_short_and_closed_with_an_end_marker_is_corrupted(astronaut_rgb, params):
    whole = encode(astronaut_rgb, ".jpg", params)
    assert load_image(whole).rgb.shape == (512, 512, 3)
    for fraction in np.linspace(0.1, 0.97, 30):
        error = refusal(cut_with_eoi(whole, float(fraction)))
        assert error.code == CORRUPTED_IMAGE, (fraction, error.message)


def test_a_progressive_jpeg_cut_between_two_scans_is_corrupted(astronaut_rgb):
    whole = encode(astronaut_rgb, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    last_scan = whole.rindex(b"\xff\xda")
    # Every scan but the last, then EOI: libjpeg says nothing, the picture just lacks the scan.
    error = refusal(whole[:last_scan] + b"\xff\xd9")
    assert error.code == CORRUPTED_IMAGE and "cut short" in error.message


def test_libjpeg_warnings_count_as_corruption(astronaut_rgb, capfd):
    whole = encode(astronaut_rgb, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90))
    extraneous = refusal(whole[:-2] + b"\x00" * 100 + b"\xff\xd9")
    assert extraneous.code == CORRUPTED_IMAGE and "extraneous bytes" in extraneous.message
    scan = whole.index(b"\xff\xda")
    middle = (scan + len(whole)) // 2
    garbage = refusal(whole[:middle] + bytes([0x55]) * 200 + whole[middle + 200 :])
    assert garbage.code == CORRUPTED_IMAGE and "Corrupt JPEG data" in garbage.message
    # The warning is the answer, not noise on the console.
    assert "Corrupt JPEG data" not in capfd.readouterr().err


def test_other_writes_to_stderr_during_a_decode_are_passed_on(astronaut_rgb, capfd):
    _, text, captured = call_capturing_stderr(lambda: os.write(2, b"a log line from another thread\n"))
    assert captured and text == b"a log line from another thread\n"
    images._judge_libjpeg_messages(b"a log line from another thread\n")  # not libjpeg's: no refusal
    assert "a log line from another thread" in capfd.readouterr().err
    with pytest.raises(EdgeError) as info:
        images._judge_libjpeg_messages(b"noise\nPremature end of JPEG file\n")
    assert info.value.code == CORRUPTED_IMAGE


def test_every_lfw_photo_still_decodes_and_every_one_cut_short_is_refused(shared_dir):
    photos = sorted((shared_dir / "lfw-dev" / "images").rglob("*.jpg"))
    assert len(photos) > 6000
    for path in photos[::7]:  # ~1,000 of the 6,922 (scripts/eval/fuzz_images.py --lfw takes all)
        data = path.read_bytes()
        assert load_image(data).rgb.shape == (250, 250, 3), path
        assert refusal(cut_with_eoi(data, 0.6)).code == CORRUPTED_IMAGE, path


def test_every_skimage_photo_still_decodes():
    skimage_data = pytest.importorskip("skimage.data")
    folder = Path(skimage_data.__file__).resolve().parent
    files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp")]
    assert len(files) >= 10
    for path in files:
        try:
            load_image(path)
        except EdgeError as exc:  # a few are smaller than 64 px: that is their size, not their content
            assert exc.code == INVALID_IMAGE_SIZE and "at least 64" in exc.message, (path.name, exc.message)


# --------------------------------------------------------------------------- paths and what errors show


def test_with_paths_refused_an_existing_and_a_missing_file_get_the_same_answer(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n" * 3)
    missing = tmp_path / "shadoq"  # same length, no such file
    answers = []
    for path in (secret, missing):
        error = refusal(str(path), allow_paths=False)
        answers.append((error.code, error.message.replace(str(path), "PATH")))
        assert refusal(path, allow_paths=False).code == INVALID_ARGUMENT  # a Path object: refused as such
    assert answers[0] == answers[1]
    assert "root" not in answers[0][1]


def test_an_error_never_shows_the_content_of_a_file_it_read(tmp_path):
    secret = tmp_path / "notes.jpg"
    secret.write_bytes(b"root:$6$secret-hash-value:19000::\n" * 4)
    error = refusal(secret)  # paths allowed: the file is read, and is no image
    assert error.code == INVALID_IMAGE_TYPE
    for leak in ("root", "secret", "72 6f 6f 74"):  # the text, or its first bytes in hex
        assert leak not in error.message, error.message
    assert refusal(str(tmp_path / "missing.jpg")).message.startswith("file not found:")


# --------------------------------------------------------------------------- large photos


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory) -> Path:
    """A 50 MP 'phone photo' of ~9 MB: skimage's astronaut upscaled to 8160×6120 with sensor-like noise."""
    skimage_data = pytest.importorskip("skimage.data")
    bgr = cv2.resize(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR), (8160, 6120))
    tile = np.random.default_rng(0).integers(0, 13, (1021, 1361, 1), dtype=np.uint8)  # ±6 grey levels
    bgr = cv2.subtract(cv2.add(bgr, np.tile(tile, (6, 6, 3))[:6120, :8160]), 6)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path = tmp_path_factory.mktemp("phone") / "IMG_0001.jpg"
    path.write_bytes(buf.tobytes())
    assert 7 * 2**20 < path.stat().st_size < 12 * 2**20
    return path


def test_a_phone_photo_is_refused_by_default_and_downscaled_on_request(phone_photo, decoder_calls):
    assert refusal(phone_photo).code == INVALID_CONTENT_LENGTH  # ~9 MB > 5 MiB
    assert refusal(phone_photo, limits=IntakeLimits(max_bytes=16 * 2**20)).code == INVALID_IMAGE_SIZE  # 8160 px
    assert not decoder_calls
    img = load_image(phone_photo, limits=IntakeLimits(downscale=True))
    assert img.rgb.shape == (3060, 4080, 3) and img.scale == 0.5 and img.original_size == (8160, 6120)
    # Decoded by libjpeg at half size: the full 150 MB image was never made.
    assert decoder_calls == [cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION]


def test_downscale_fits_every_limit_and_keeps_its_ceilings(astronaut_rgb, decoder_calls):
    png = encode(cv2.resize(astronaut_rgb, (2000, 1000)), ".png")
    limits = IntakeLimits(max_side=600, max_pixels=200_000, downscale=True)
    img = load_image(png, limits=limits)
    assert max(img.width, img.height) <= 600 and img.width * img.height <= 200_000
    assert abs(img.width / img.height - 2.0) < 0.01 and img.scale == img.width / 2000
    jpeg = encode(cv2.resize(astronaut_rgb, (2000, 1000)), ".jpg")
    img = load_image(jpeg, limits=limits)  # 1/4 (500×250) fits: no resize after libjpeg's reduction
    assert (img.width, img.height) == (500, 250) and decoder_calls[-1] & cv2.IMREAD_REDUCED_COLOR_4
    ceiling = IntakeLimits(max_side=600, max_pixels=200_000, downscale=True, downscale_max_pixels=1_000_000)
    assert refusal(png, limits=ceiling).code == INVALID_IMAGE_SIZE  # 2 MP > the 1 MP ceiling
    strip = encode(np.zeros((70, 3000, 3), np.uint8), ".png")  # fits only below the 64-px short side
    assert "short side would be below 64" in refusal(strip, limits=limits).message
    assert refusal(np.zeros((700, 700, 3), np.uint8), limits=limits).code == INVALID_IMAGE_SIZE  # arrays: never


def test_the_limits_are_validated_by_name():
    with pytest.raises(ValueError, match="max_pixels"):
        IntakeLimits(max_pixels=100)
    with pytest.raises(ValueError, match="decode_timeout_ms"):
        IntakeLimits(decode_timeout_ms=0)
    with pytest.raises(TypeError, match="downscale"):
        IntakeLimits(downscale="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_scans"):
        IntakeLimits(max_scans=3.5)  # type: ignore[arg-type]
    assert IntakeLimits(max_bytes=64 * 2**20, downscale=True).content_limit == 64 * 2**20  # never below max_bytes
    assert IntakeLimits().content_limit == DEFAULT_LIMITS.max_bytes


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9, 0.99])
def test_png_and_webp_cut_short_and_closed_again_are_corrupted(astronaut_rgb, fraction):
    """Cut inside the image data, with every length, CRC and end marker made to fit again."""
    png = encode(astronaut_rgb, ".png", (cv2.IMWRITE_PNG_COMPRESSION, 9))
    ihdr_end = 8 + 25
    stream = b"".join(  # every IDAT's data
        png[pos + 8 : pos + 8 + struct.unpack_from(">I", png, pos)[0]]
        for pos in _chunk_starts(png)
        if png[pos + 4 : pos + 8] == b"IDAT"
    )
    cut_png = png[:ihdr_end] + png_chunk(b"IDAT", stream[: int(len(stream) * fraction)]) + png_chunk(b"IEND", b"")
    assert refusal(cut_png).code == CORRUPTED_IMAGE
    for quality in (80, 101):  # lossy VP8, lossless VP8L
        webp = bytearray(encode(astronaut_rgb, ".webp", (cv2.IMWRITE_WEBP_QUALITY, quality)))
        cut = webp[: int(len(webp) * fraction)]
        struct.pack_into("<I", cut, 4, len(cut) - 8)  # RIFF size
        struct.pack_into("<I", cut, 16, len(cut) - 20)  # the image chunk's size
        assert refusal(bytes(cut)).code == CORRUPTED_IMAGE


def _chunk_starts(png: bytes) -> list[int]:
    starts, pos = [], 8
    while pos < len(png):
        starts.append(pos)
        pos += 12 + struct.unpack_from(">I", png, pos)[0]
    return starts
