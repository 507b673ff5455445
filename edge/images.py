"""Image intake: turn whatever the caller sent into a checked RGB array, or a result code.

`load_image(source)` is the first stage of every face-compare request. It accepts

* raw content: ``bytes``, ``bytearray`` or ``memoryview`` (always taken as the encoded file,
  never as base64 text and never as a path);
* a path: ``pathlib.Path`` (any ``os.PathLike``) or a ``str`` naming an existing file;
* base64 text: a ``str``, optionally as a data URL (``data:image/jpeg;base64,...``);
* a numpy array of pixels: H×W×3 ``uint8`` RGB, H×W (or H×W×1) grey, H×W×4 (alpha dropped).

How a ``str`` is told apart: a string starting with ``data:`` is a data URL; otherwise, if a
file system entry of that name exists it is a path; otherwise it is base64. A path that does
not exist is therefore reported as "neither an existing file nor valid base64" (1200); the one
path that is also valid base64 ("/srv/faces/bob": no dot, length not 1 mod 4) decodes to a
few bytes, and a string with a "/" that decodes to fewer than 32 bytes of non-image is
reported as a missing file (1200) too, not as an unsupported type. Base64 accepts the
standard and the URL-safe alphabets, embedded whitespace (MIME line breaks) and missing
padding. A real base64 photo is thousands of characters long and cannot name a file, so the
rule is unambiguous in practice. Front ends that take strings from the network should pass
``allow_paths=False``: then no string is ever opened as a file (a remote client must not be
able to make the appliance read ``/etc/shadow``, nor probe which files exist).

Checks, in this order; the first that fails decides the result code:

1. Source type and shape (1200): unsupported Python type, missing path, directory or other
   non-regular file, unreadable file, bad base64, bad data URL; for arrays a dtype other than
   ``uint8`` or an ndim/channel count that is not an image.
2. Content length (2004): empty content, or more than ``limits.max_bytes`` (5 MiB by default).
   Files are measured with ``stat`` and base64 by its encoded length, before anything is read or
   decoded. Empty content is 2004, like the classic API's zero-length upload, not 1200.
3. Type (2005): the magic bytes decide (JPEG, PNG, BMP, WebP); the file name never does. GIF,
   TIFF, HEIC, text, ... are all 2005.
4. Header (2006 when malformed): width and height are read from the JPEG SOFn marker, the PNG
   IHDR chunk, the BMP info header (negative height = top-down) or the WebP VP8/VP8L/VP8X
   chunk, by small pure-Python parsers that bounds-check every read.
5. Pixel size (2003): short side below ``limits.min_side`` (64) or long side above
   ``limits.max_side`` (4096). This is decided from the header, before a single pixel is
   decoded: a PNG of a few kilobytes can declare 30000×30000 pixels, and decoding it would
   allocate 2.7 GB and take seconds on a Raspberry Pi. Such a file is refused in microseconds.
6. Completeness (2006): the structure is walked to its end. JPEG: every segment, through the
   entropy-coded scans, up to the EOI marker (OpenCV turns a truncated JPEG into a partly grey
   picture with only a warning, so this is checked here). PNG: every chunk's CRC, at least one
   IDAT, and IEND. WebP: the RIFF size against the real length, and every chunk inside it.
   BMP: the file must hold the whole pixel array. Bytes after the end (after EOI, IEND, the RIFF
   chunk) are allowed: cameras append data there, and the length limit already bounds them.
7. Decoding (2006): ``cv2.imdecode`` with ``IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION``, guarded:
   a decoder exception, a ``None`` result, or a decoded size that disagrees with the header is a
   corrupted image. Grey and 16-bit files come out as 3-channel 8-bit, alpha is dropped, BGR is
   turned into RGB.
8. EXIF orientation (JPEG only): the orientation tag (1..8) is read from the APP1 Exif segment
   by hand and applied with exact rotations/flips. OpenCV is told to ignore it, so it is applied
   exactly once. Broken EXIF is metadata, not a broken photo: it counts as orientation 1.

Encrypted uploads: `decode_image` is the seam. It takes the decrypted, encoded bytes and runs
checks 2 to 8; the decryption stage (not here) sits between `read_source` and `decode_image`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import (
    CORRUPTED_IMAGE,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    INVALID_IMAGE_SIZE,
    INVALID_IMAGE_TYPE,
    EdgeError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "Image",
    "ImageSource",
    "IntakeLimits",
    "decode_image",
    "exif_orientation",
    "header_size",
    "image_from_array",
    "load_image",
    "read_source",
    "sniff",
]

FORMATS: tuple[str, ...] = ("jpeg", "png", "bmp", "webp")

ImageSource = bytes | bytearray | memoryview | str | os.PathLike[str] | np.ndarray

_MAX_PATH_CHARS = 4096  # longer strings are never tried as paths (PATH_MAX on Linux)
_MIN_FILE_BYTES = 32  # shorter than any real image file (a minimal 1×1 GIF89a is 35 bytes)
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


@dataclass(frozen=True)
class IntakeLimits:
    """What the intake stage accepts. Checked when constructed; a bad value names its field."""

    max_bytes: int = 5 * 1024 * 1024  # encoded content length, bytes
    min_side: int = 64  # shorter image side, pixels
    max_side: int = 4096  # longer image side, pixels

    def __post_init__(self) -> None:
        for name in ("max_bytes", "min_side", "max_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"IntakeLimits.{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"IntakeLimits.{name} must be at least 1, got {value}")
            object.__setattr__(self, name, int(value))
        if self.max_side < self.min_side:
            raise ValueError(
                f"IntakeLimits.max_side ({self.max_side}) must be at least IntakeLimits.min_side ({self.min_side})"
            )


DEFAULT_LIMITS = IntakeLimits()


@dataclass(frozen=True)
class Image:
    """A checked photo.

    rgb: H×W×3 uint8 RGB, C-contiguous, owned (never a view of the caller's array), with the
        EXIF orientation already applied when `load_image(..., apply_exif=True)`.
    format: "jpeg", "png", "bmp", "webp", or "array" for pixels given directly.
    orientation: the EXIF orientation found (1..8; 1 when absent, broken, or not a JPEG).
    original_size: (width, height) as stored in the file, before any orientation is applied.
    """

    rgb: np.ndarray
    format: str
    orientation: int
    original_size: tuple[int, int]

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


# --------------------------------------------------------------------------- entry points


def load_image(
    source: ImageSource,
    *,
    limits: IntakeLimits = DEFAULT_LIMITS,
    apply_exif: bool = True,
    allow_paths: bool = True,
) -> Image:
    """Check and decode one photo; every failure is an `EdgeError` with the matching code.

    See the module docstring for what is accepted and the order of the checks.
    `allow_paths=False` refuses paths (1200) and never opens a string as a file.
    """
    _check_limits_type(limits)
    if isinstance(source, np.ndarray):
        return image_from_array(source, limits=limits)
    data = read_source(source, limits=limits, allow_paths=allow_paths)
    return decode_image(data, limits=limits, apply_exif=apply_exif)


def read_source(source: object, *, limits: IntakeLimits = DEFAULT_LIMITS, allow_paths: bool = True) -> bytes:
    """The encoded content of a bytes-like, path or base64 source (checks 1 and 2, nothing decoded)."""
    _check_limits_type(limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _content_bytes(source, limits)
    if isinstance(source, str):
        return _read_str(source, limits, allow_paths)
    if isinstance(source, os.PathLike):
        if not allow_paths:
            raise EdgeError(INVALID_ARGUMENT, "file paths are not accepted here; send the image content")
        return _read_file(source, limits)
    unseal = getattr(source, "unseal", None)
    if callable(unseal):  # an encrypted image (edge.vault.SealedImage), opened here and never stored
        return _content_bytes(unseal(limits=limits), limits)
    raise EdgeError(
        INVALID_ARGUMENT,
        f"unsupported image source type {type(source).__name__}: expected bytes, a path, a base64 string "
        "or a numpy array",
    )


def decode_image(
    data: bytes | bytearray | memoryview, *, limits: IntakeLimits = DEFAULT_LIMITS, apply_exif: bool = True
) -> Image:
    """Check and decode encoded image content (checks 2 to 8). The seam for decrypted uploads."""
    _check_limits_type(limits)
    data = _content_bytes(data, limits)
    fmt = sniff(data)
    if fmt is None:
        raise EdgeError(INVALID_IMAGE_TYPE, _describe_unsupported(data))
    width, height = header_size(data, fmt)
    _check_pixel_size(width, height, limits)
    orientation = _check_complete(data, fmt)

    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _DECODE_FLAGS)
    except cv2.error as exc:  # OpenCV raises for some malformed streams
        raise EdgeError(CORRUPTED_IMAGE, f"{fmt.upper()} image does not decode: {_first_line(exc)}") from None
    if decoded is None or decoded.size == 0:
        raise EdgeError(CORRUPTED_IMAGE, f"{fmt.upper()} image does not decode (the decoder rejected the data)")
    if decoded.shape[0] != height or decoded.shape[1] != width:
        raise EdgeError(
            CORRUPTED_IMAGE,
            f"{fmt.upper()} header says {width}×{height} pixels but the data decodes to "
            f"{decoded.shape[1]}×{decoded.shape[0]}",
        )
    rgb = _to_rgb8(decoded, bgr=True)
    if apply_exif and orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    return Image(rgb=np.ascontiguousarray(rgb), format=fmt, orientation=orientation, original_size=(width, height))


def image_from_array(array: np.ndarray, *, limits: IntakeLimits = DEFAULT_LIMITS) -> Image:
    """Check pixels given directly: uint8, H×W / H×W×1 grey, H×W×3 RGB or H×W×4 (alpha dropped)."""
    _check_limits_type(limits)
    if not isinstance(array, np.ndarray):
        raise EdgeError(INVALID_ARGUMENT, f"expected a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise EdgeError(INVALID_ARGUMENT, f"image array must have dtype uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise EdgeError(
            INVALID_ARGUMENT, f"image array of shape {array.shape} has {array.shape[2]} channels; expected 1, 3 or 4"
        )
    if array.ndim not in (2, 3):
        hint = " (encoded bytes go in as bytes, e.g. arr.tobytes())" if array.ndim == 1 else ""
        raise EdgeError(
            INVALID_ARGUMENT, f"image array must be H×W or H×W×C, got {array.ndim} dimensions {array.shape}{hint}"
        )
    height, width = int(array.shape[0]), int(array.shape[1])
    _check_pixel_size(width, height, limits)
    if array.ndim == 3 and array.shape[2] == 3:
        rgb = np.array(array, dtype=np.uint8, order="C", copy=True)  # never a view of the caller's array
    else:
        rgb = _to_rgb8(array, bgr=False)  # cvtColor: a new array
    return Image(rgb=rgb, format="array", orientation=1, original_size=(width, height))


# --------------------------------------------------------------------------- sources


def _check_limits_type(limits: object) -> None:
    if not isinstance(limits, IntakeLimits):
        raise TypeError(f"limits must be an IntakeLimits, got {type(limits).__name__}")


def _content_bytes(data: bytes | bytearray | memoryview, limits: IntakeLimits) -> bytes:
    """Immutable bytes of a bytes-like object, after the content-length check (2004)."""
    if isinstance(data, memoryview):
        size = data.nbytes
    elif isinstance(data, (bytes, bytearray)):
        size = len(data)
    else:
        raise EdgeError(INVALID_ARGUMENT, f"expected bytes, got {type(data).__name__}")
    _check_length(size, limits)
    return data if isinstance(data, bytes) else bytes(data)  # a private copy the caller cannot mutate


def _check_length(size: int, limits: IntakeLimits) -> None:
    if size == 0:
        raise EdgeError(INVALID_CONTENT_LENGTH, "image content is empty (0 bytes)")
    if size > limits.max_bytes:
        raise EdgeError(
            INVALID_CONTENT_LENGTH,
            f"image content is {size} bytes ({_mib(size)}); the limit is {limits.max_bytes} bytes "
            f"({_mib(limits.max_bytes)})",
        )


class _NotBase64(ValueError):
    """Why a string is not base64 (turned into a 1200 whose message fits the context)."""


def _read_str(text: str, limits: IntakeLimits, allow_paths: bool) -> bytes:
    if text[:5].lower() == "data:":
        return _decode_data_url(text, limits)
    if allow_paths and _is_existing_path(text):
        return _read_file(text, limits)
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        data = _decode_base64(text, limits)
    except _NotBase64 as exc:
        if not allow_paths:
            raise EdgeError(INVALID_ARGUMENT, f"string is not valid base64 ({exc})") from None
        raise EdgeError(
            INVALID_ARGUMENT, f"string is neither an existing file ({shown!r} not found) nor valid base64 ({exc})"
        ) from None
    if allow_paths and len(data) < _MIN_FILE_BYTES and ("/" in text or os.sep in text) and sniff(data) is None:
        # "/srv/faces/bob" is valid base64 too; a few bytes that are no image mean a missing file.
        raise EdgeError(INVALID_ARGUMENT, f"no such file: {shown!r} (and it is not base64 of an image either)")
    return data


def _is_existing_path(text: str) -> bool:
    if not text or len(text) > _MAX_PATH_CHARS or "\n" in text:
        return False
    try:
        os.stat(text)
    except (OSError, ValueError):  # ValueError: embedded NUL
        return False
    return True


_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9\-_]*={0,2}")
_WHITESPACE = re.compile(r"\s+")


def _decode_base64(text: str, limits: IntakeLimits) -> bytes:
    """Decode standard or URL-safe base64 (whitespace and missing padding tolerated).

    The decoded length is checked against the limit (2004) before decoding; anything that is
    not base64 raises _NotBase64.
    """
    clean = _WHITESPACE.sub("", text)
    if _B64_STD.fullmatch(clean):
        altchars = None
    elif _B64_URL.fullmatch(clean):
        altchars = b"-_"
    else:
        bad = next((c for c in clean if not (c.isascii() and (c.isalnum() or c in "+/-_="))), None)
        if bad is not None:
            raise _NotBase64(f"it contains the character {bad!r}")
        raise _NotBase64("it mixes the standard and URL-safe alphabets, or has '=' inside")
    body = clean.rstrip("=")
    if len(body) % 4 == 1:
        raise _NotBase64(f"{len(body)} base64 characters cannot encode whole bytes")
    _check_length(len(body) * 3 // 4, limits)  # the exact decoded length, known before decoding
    padded = body + "=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _NotBase64(str(exc)) from None


def _decode_data_url(text: str, limits: IntakeLimits) -> bytes:
    header, comma, payload = text.partition(",")
    if not comma:
        raise EdgeError(INVALID_ARGUMENT, "data URL has no ',' before its payload")
    params = [p.strip().lower() for p in header[5:].split(";")]
    if "base64" not in params[1:]:
        raise EdgeError(INVALID_ARGUMENT, "data URL is not base64-encoded (expected 'data:image/...;base64,')")
    try:
        return _decode_base64(payload, limits)
    except _NotBase64 as exc:
        raise EdgeError(INVALID_ARGUMENT, f"data URL payload is not valid base64 ({exc})") from None


def _read_file(path: str | os.PathLike[str], limits: IntakeLimits) -> bytes:
    try:
        shown = os.fsdecode(path)
    except TypeError:
        raise EdgeError(INVALID_ARGUMENT, f"not a usable path: {path!r}") from None
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise EdgeError(INVALID_ARGUMENT, f"no such file: {shown!r}") from None
    except (OSError, ValueError) as exc:
        raise EdgeError(INVALID_ARGUMENT, f"cannot access {shown!r}: {exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise EdgeError(INVALID_ARGUMENT, f"{shown!r} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):  # FIFOs, devices: opening or reading them can block forever
        raise EdgeError(INVALID_ARGUMENT, f"{shown!r} is not a regular file")
    _check_length(info.st_size, limits)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise EdgeError(INVALID_ARGUMENT, f"cannot read {shown!r}: {exc.strerror or exc}") from None
    _check_length(len(data), limits)
    return data


# --------------------------------------------------------------------------- type sniffing


def sniff(data: bytes | bytearray | memoryview) -> str | None:
    """The supported format of encoded image content from its magic bytes ("jpeg", "png",
    "bmp", "webp"), or None for anything else (GIF, TIFF, text, ...)."""
    head = bytes(data[:32])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        # "BM" alone is weak (text can start with it): when the info-header size is present it
        # must be one of the known ones.
        if len(head) < 18 or struct.unpack_from("<I", head, 14)[0] in _BMP_INFO_SIZES:
            return "bmp"
    return None


_OTHER_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"%PDF", "PDF"),
    (0, b"PK\x03\x04", "ZIP"),
    (0, b"\x1f\x8b", "gzip"),
)


def _describe_unsupported(data: bytes) -> str:
    accepted = "accepted: JPEG, PNG, BMP, WebP"
    for offset, magic, name in _OTHER_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return f"{name} images are not supported ({accepted})"
    if data[:4] == b"RIFF":
        return f"RIFF file that is not WebP ({accepted})"
    return f"not a supported image format: unrecognised content starting {data[:8].hex(' ')} ({accepted})"


# --------------------------------------------------------------------------- headers


def header_size(data: bytes | bytearray | memoryview, fmt: str | None = None) -> tuple[int, int]:
    """(width, height) as declared by the header, without decoding any pixels.

    `fmt` is one of `FORMATS`; None sniffs it. A header that is malformed or cut short raises
    EdgeError 2006; an unsupported format raises 2005.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    if fmt is None:
        fmt = sniff(data)
        if fmt is None:
            raise EdgeError(INVALID_IMAGE_TYPE, _describe_unsupported(data))
    parser = _HEADER_PARSERS.get(fmt)
    if parser is None:
        raise EdgeError(INVALID_IMAGE_TYPE, f"unsupported image format {fmt!r} (expected one of {', '.join(FORMATS)})")
    try:
        width, height = parser(data)
    except (struct.error, IndexError):  # a read past the end slipped through a bounds check
        raise _corrupt(fmt, "header is cut short") from None
    if width < 1 or height < 1:
        raise _corrupt(fmt, f"header declares {width}×{height} pixels")
    return width, height


def _corrupt(fmt: str, why: str) -> EdgeError:
    return EdgeError(CORRUPTED_IMAGE, f"{fmt.upper()} {why}")


def _check_pixel_size(width: int, height: int, limits: IntakeLimits) -> None:
    short, long = min(width, height), max(width, height)
    if long > limits.max_side:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels; the long side must be at most {limits.max_side}",
        )
    if short < limits.min_side:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels; the short side must be at least {limits.min_side}",
        )


# JPEG ------------------------------------------------------------------------------------

# SOFn: C0-CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn, TEM: no length field
# In entropy-coded data 0xFF is followed by 0x00 (stuffing), RSTn (D0-D7) or another 0xFF
# (fill); anything else is the next marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")
# Real files have a few dozen segments/chunks (a few hundred IDATs at most); a file made of
# millions of empty ones would keep the pure-Python walk busy for seconds, so it is refused.
_MAX_JPEG_SEGMENTS = 4096
_MAX_PNG_CHUNKS = 16384
_MAX_WEBP_CHUNKS = 4096


def _jpeg_walk(data: bytes, to_end: bool) -> tuple[int, int, int]:
    """Walk JPEG markers. Returns (width, height, orientation).

    With to_end=False stops at the first SOFn (header only). With to_end=True walks every
    segment and scan up to EOI and raises 2006 if EOI is never reached.
    """
    n = len(data)
    if n < 4 or data[:2] != b"\xff\xd8":
        raise _corrupt("jpeg", "does not start with an SOI marker")
    pos = 2
    size: tuple[int, int] | None = None
    orientation = 1
    seen_exif = False
    for _ in range(_MAX_JPEG_SEGMENTS):
        if pos >= n:
            raise _corrupt("jpeg", "is truncated: the data ends before the end-of-image (EOI) marker")
        if data[pos] != 0xFF:
            raise _corrupt("jpeg", f"is malformed: expected a marker at byte {pos}, found 0x{data[pos]:02x}")
        fill = _FILL.match(data, pos)  # 0xFF fill bytes may precede a marker
        if fill is not None:
            pos = fill.end() - 1
        if pos + 1 >= n:
            raise _corrupt("jpeg", "is truncated: the data ends inside a marker")
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            if size is None:
                raise _corrupt("jpeg", "has no frame header (SOF) before its end-of-image marker")
            return size[0], size[1], orientation
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD8 or marker == 0x00:
            raise _corrupt("jpeg", f"is malformed: unexpected marker 0xff{marker:02x} at byte {pos}")
        if pos + 4 > n:
            raise _corrupt("jpeg", "is truncated inside a segment header")
        (seg_len,) = struct.unpack_from(">H", data, pos + 2)
        if seg_len < 2:
            raise _corrupt("jpeg", f"is malformed: segment 0xff{marker:02x} has length {seg_len}")
        end = pos + 2 + seg_len
        if end > n:
            raise _corrupt("jpeg", f"is truncated inside segment 0xff{marker:02x}")
        if marker in _JPEG_SOF and size is None:
            if seg_len < 8:
                raise _corrupt("jpeg", f"frame header (SOF) is too short ({seg_len} bytes)")
            height, width = struct.unpack_from(">HH", data, pos + 5)
            if width == 0 or height == 0:
                raise _corrupt("jpeg", f"frame header declares {width}×{height} pixels")
            size = (width, height)
            if not to_end:
                return width, height, orientation
        elif marker == 0xE1 and not seen_exif and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            seen_exif = True
            orientation = _tiff_orientation(data[pos + 10 : end])
        elif marker == 0xDA:  # SOS: entropy-coded data follows the segment
            if size is None:
                raise _corrupt("jpeg", "has scan data before its frame header (SOF)")
            match = _JPEG_NEXT_MARKER.search(data, end)
            if match is None:
                raise _corrupt("jpeg", "is truncated: the scan data has no end-of-image (EOI) marker")
            pos = match.start()
            continue
        pos = end
    raise _corrupt("jpeg", f"has more than {_MAX_JPEG_SEGMENTS} segments (a pathological file)")


def _jpeg_header(data: bytes) -> tuple[int, int]:
    width, height, _ = _jpeg_walk(data, to_end=False)
    return width, height


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 in a TIFF/Exif block; 1 when absent or unreadable."""
    if len(tiff) < 8:
        return 1
    order = tiff[:2]
    if order == b"II":
        e = "<"
    elif order == b"MM":
        e = ">"
    else:
        return 1
    if struct.unpack_from(e + "H", tiff, 2)[0] != 42:
        return 1
    (ifd,) = struct.unpack_from(e + "I", tiff, 4)
    if ifd < 8 or ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(e + "H", tiff, ifd)
    for i in range(min(count, (len(tiff) - ifd - 2) // 12)):
        entry = ifd + 2 + 12 * i
        tag, typ, num = struct.unpack_from(e + "HHI", tiff, entry)
        if tag != 0x0112:
            continue
        if num != 1:
            return 1
        if typ == 3:  # SHORT
            value = struct.unpack_from(e + "H", tiff, entry + 8)[0]
        elif typ == 4:  # LONG (non-standard, seen in the wild)
            value = struct.unpack_from(e + "I", tiff, entry + 8)[0]
        else:
            return 1
        return value if 1 <= value <= 8 else 1
    return 1


def exif_orientation(data: bytes | bytearray | memoryview) -> int:
    """The EXIF orientation (1..8) of JPEG content; 1 for other formats or when absent/broken."""
    data = bytes(data) if not isinstance(data, bytes) else data
    if sniff(data) != "jpeg":
        return 1
    try:
        return _jpeg_walk(data, to_end=True)[2]
    except EdgeError:
        return 1


# PNG -------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_MAX = 2**31 - 1


def _png_header(data: bytes) -> tuple[int, int]:
    if len(data) < 8 + 8 + 13:
        raise _corrupt("png", "is truncated before the end of its IHDR header")
    length, ctype = struct.unpack_from(">I4s", data, 8)
    if ctype != b"IHDR" or length != 13:
        raise _corrupt("png", "does not start with a valid IHDR chunk")
    width, height, depth, color = struct.unpack_from(">IIBB", data, 16)
    if not (1 <= width <= _PNG_MAX and 1 <= height <= _PNG_MAX):
        raise _corrupt("png", f"IHDR declares {width}×{height} pixels")
    if depth not in _PNG_DEPTHS.get(color, ()):
        raise _corrupt("png", f"IHDR has an invalid colour type/bit depth ({color}/{depth})")
    return width, height


def _png_complete(data: bytes) -> None:
    view = memoryview(data)
    n = len(data)
    pos = 8
    seen_idat = False
    for _ in range(_MAX_PNG_CHUNKS):
        if pos + 12 > n:
            raise _corrupt("png", "is truncated: the data ends before the IEND chunk")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > _PNG_MAX or not ctype.isalpha():
            raise _corrupt("png", f"is malformed: bad chunk header at byte {pos}")
        end = pos + 12 + length
        if end > n:
            raise _corrupt("png", f"is truncated inside its {ctype.decode('ascii')} chunk")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise _corrupt("png", f"is corrupted: CRC mismatch in its {ctype.decode('ascii')} chunk at byte {pos}")
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            if not seen_idat:
                raise _corrupt("png", "has no image data (IDAT) before IEND")
            return
        pos = end
    raise _corrupt("png", f"has more than {_MAX_PNG_CHUNKS} chunks (a pathological file)")


# BMP -------------------------------------------------------------------------------------

_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _bmp_fields(data: bytes) -> tuple[int, int, int, int, int, int]:
    """(width, height (negative = top-down), bits per pixel, compression, pixel offset, image size)."""
    if len(data) < 26:
        raise _corrupt("bmp", "is truncated before the end of its header")
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    (info_size,) = struct.unpack_from("<I", data, 14)
    if info_size not in _BMP_INFO_SIZES:
        raise _corrupt("bmp", f"has an unknown info-header size ({info_size})")
    if len(data) < 14 + min(info_size, 40):
        raise _corrupt("bmp", "is truncated before the end of its header")
    if info_size == 12:  # BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit sizes
        width, height, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
        compression, image_size = 0, 0
    else:
        width, height, _planes, bpp = struct.unpack_from("<iiHH", data, 18)
        compression, image_size = (0, 0) if info_size == 16 else struct.unpack_from("<II", data, 30)
    return width, height, bpp, compression, pixel_offset, image_size


def _bmp_header(data: bytes) -> tuple[int, int]:
    width, height, bpp, _compression, _offset, _image_size = _bmp_fields(data)
    if width <= 0 or height == 0 or height == -(2**31):
        raise _corrupt("bmp", f"header declares {width}×{height} pixels")
    if bpp not in (1, 2, 4, 8, 16, 24, 32):
        raise _corrupt("bmp", f"header declares {bpp} bits per pixel")
    return width, abs(height)


def _bmp_complete(data: bytes) -> None:
    width, height, bpp, compression, offset, image_size = _bmp_fields(data)
    if offset < 26 or offset > len(data):
        raise _corrupt("bmp", f"pixel data offset {offset} lies outside the file ({len(data)} bytes)")
    if compression in (0, 3, 6):  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: fixed-size rows
        stride = (width * bpp + 31) // 32 * 4
        need = offset + stride * abs(height)
    elif compression in (1, 2):  # RLE8, RLE4: compressed size from the header, if given
        need = offset + image_size if image_size else offset + 1
    else:
        raise _corrupt("bmp", f"uses an unsupported compression ({compression})")
    if len(data) < need:
        raise _corrupt("bmp", f"is truncated: the pixel array needs {need} bytes, the file has {len(data)}")


# WebP ------------------------------------------------------------------------------------


def _webp_header(data: bytes) -> tuple[int, int]:
    if len(data) < 30:
        raise _corrupt("webp", "is truncated before the end of its header")
    chunk, chunk_len = struct.unpack_from("<4sI", data, 12)
    if chunk == b"VP8 ":
        if chunk_len < 10 or data[23:26] != b"\x9d\x01\x2a":
            raise _corrupt("webp", "has a malformed VP8 frame header")
        if data[20] & 1:  # bit 0 set: an interframe, a still image must be a key frame
            raise _corrupt("webp", "VP8 data does not start with a key frame")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if chunk_len < 5 or data[20] != 0x2F:
            raise _corrupt("webp", "has a malformed VP8L header")
        (bits,) = struct.unpack_from("<I", data, 21)
        if bits >> 29:
            raise _corrupt("webp", f"VP8L header has an unknown version {bits >> 29}")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        if chunk_len < 10:
            raise _corrupt("webp", "has a malformed VP8X header")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _corrupt("webp", f"starts with an unknown chunk {chunk!r}")


def _webp_complete(data: bytes) -> None:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if riff_size < 4 + 8:
        raise _corrupt("webp", f"RIFF size {riff_size} is too small")
    if end > len(data):
        raise _corrupt("webp", f"is truncated: the RIFF header says {end} bytes, the data has {len(data)}")
    pos = 12
    has_image = False
    chunks = 0
    while pos < end:
        chunks += 1
        if chunks > _MAX_WEBP_CHUNKS:
            raise _corrupt("webp", f"has more than {_MAX_WEBP_CHUNKS} chunks (a pathological file)")
        if pos + 8 > end:
            raise _corrupt("webp", f"is malformed: a chunk header at byte {pos} crosses the end of the RIFF data")
        chunk, chunk_len = struct.unpack_from("<4sI", data, pos)
        next_pos = pos + 8 + chunk_len + (chunk_len & 1)
        if pos + 8 + chunk_len > end:
            raise _corrupt("webp", f"is truncated inside its {chunk!r} chunk")
        if chunk in (b"VP8 ", b"VP8L", b"ANMF"):
            has_image = True
        pos = next_pos
    if not has_image:
        raise _corrupt("webp", "holds no image data chunk")


_HEADER_PARSERS = {"jpeg": _jpeg_header, "png": _png_header, "bmp": _bmp_header, "webp": _webp_header}


def _check_complete(data: bytes, fmt: str) -> int:
    """Raise 2006 unless the file is whole; return the EXIF orientation (JPEG) or 1."""
    try:
        if fmt == "jpeg":
            return _jpeg_walk(data, to_end=True)[2]
        if fmt == "png":
            _png_complete(data)
        elif fmt == "bmp":
            _bmp_complete(data)
        elif fmt == "webp":
            _webp_complete(data)
    except (struct.error, IndexError):
        raise _corrupt(fmt, "is truncated or malformed") from None
    return 1


# --------------------------------------------------------------------------- pixels


def _to_rgb8(pixels: np.ndarray, *, bgr: bool) -> np.ndarray:
    """3-channel uint8 RGB from grey / 3 / 4 channel, 8- or 16-bit pixels."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise EdgeError(CORRUPTED_IMAGE, f"image decodes to unsupported sample type {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB
        return cv2.cvtColor(np.ascontiguousarray(pixels), code)
    if bgr:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2RGB)
    return pixels


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into the upright view the EXIF orientation tag describes."""
    if orientation == 2:  # mirrored left-right
        return cv2.flip(rgb, 1)
    if orientation == 3:  # rotated 180°
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if orientation == 4:  # mirrored top-bottom
        return cv2.flip(rgb, 0)
    if orientation == 5:  # transposed (row 0 is the left side)
        return cv2.transpose(rgb)
    if orientation == 6:  # stored rotated 90° counter-clockwise: turn it 90° clockwise
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # transverse
        return cv2.flip(cv2.transpose(rgb), -1)
    if orientation == 8:  # stored rotated 90° clockwise: turn it 90° counter-clockwise
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return rgb


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.2f} MiB"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:200] if text else type(exc).__name__
