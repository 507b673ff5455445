"""Image intake: turn whatever the caller sent into a checked RGB array, or a result code.

`load_image(source)` is the first stage of every face-compare request. It accepts

* raw content: ``bytes``, ``bytearray`` or ``memoryview`` (always taken as the encoded file,
  never as base64 text and never as a path);
* a path: ``pathlib.Path`` (any ``os.PathLike``) or a ``str`` naming an existing file;
* base64 text: a ``str``, optionally as a data URL (``data:image/jpeg;base64,...``);
* a numpy array of pixels: H×W×3 ``uint8`` RGB, H×W (or H×W×1) grey, H×W×4 (alpha dropped).

How a ``str`` is told apart: a string starting with ``data:`` is a data URL; otherwise, if a
file system entry of that name exists it is a path; otherwise it is base64 image content. A
string that is neither an existing file nor base64 -- or whose base64 decodes to fewer than
32 bytes that are no image ("face", "IMG_0001", "/srv/faces/bob") -- is a file that was not
found (1200, "file not found: ..."). A real base64 photo is thousands of characters long and
cannot name a file, so the rule is unambiguous in practice. Base64 accepts the standard and
the URL-safe alphabets, embedded whitespace (MIME line breaks) and missing padding.

**Paths refused.** Front ends that take strings from the network pass ``allow_paths=False``
(`Engine(allow_paths=False)`, `Engine.bytes_only()`): then no string is ever opened as a
file, a ``Path`` is refused (1200), and every string is base64 content -- a remote client
cannot make the device read ``/etc/shadow``, nor learn which files exist (nothing is looked
up, so a missing and an existing path get the same answer). No error message ever quotes the
content of a file it read: an unsupported file is "not a supported image format", whatever
is in it.

Checks, in this order; the first that fails decides the result code:

1. Source type and shape (1200): unsupported Python type, a file that is not found, a
   directory or other non-regular file, an unreadable file, bad base64, a bad data URL; for
   arrays a dtype other than ``uint8`` or an ndim/channel count that is not an image.
2. Content length (2004): empty content, or more than ``limits.max_bytes`` (5 MiB by default;
   ``downscale_max_bytes`` when ``downscale`` is on). Files are measured with ``stat`` and
   base64 by its encoded length, before anything is read or decoded. Empty content is 2004,
   like the classic API's zero-length upload, not 1200.
3. Type (2005): the magic bytes decide (JPEG, PNG, BMP, WebP); the file name never does. GIF,
   TIFF, HEIC, text, ... are all 2005.
4. Header (2006 when malformed): width and height are read from the JPEG SOFn marker, the PNG
   IHDR chunk, the BMP info header (negative height = top-down) or the WebP VP8/VP8L/VP8X
   chunk, by small pure-Python parsers that bounds-check every read.
5. Pixel size (2003), decided from the header before a single pixel is decoded: short side
   below ``limits.min_side`` (64), long side above ``limits.max_side`` (4096), or more than
   ``limits.max_pixels`` pixels (4096², 16.8 MP). A PNG of a few kilobytes can declare
   30000×30000 pixels; it is refused in microseconds. With ``limits.downscale`` a photo above
   the side or pixel limit (up to ``downscale_max_pixels``) is decoded at a reduced size that
   fits them instead (see "Large photos" below).
6. Decoding budget (2003): what the decoder would hold in memory -- the decoded pixels, a
   progressive JPEG's coefficient buffer (the whole image, 2 bytes per coefficient), a PNG's
   inflated rows -- estimated from the header, at most ``limits.max_decoded_bytes``.
7. Completeness and bombs (2006): the structure is walked to its end. JPEG: every segment and
   every entropy-coded scan up to the EOI marker, and at most ``limits.max_scans`` scans (a
   61 KB progressive JPEG made of ~4,000 empty scans takes libjpeg 13-16 s: each scan is a pass
   over every block of the image). PNG: every chunk's CRC, at least one IDAT, IEND, and the
   IDAT zlib stream inflated (in pieces, nothing kept) to exactly the number of bytes IHDR
   declares: a stream that inflates to more (a 5 MB "zlib bomb" inflating to 5 GB, which
   libpng would inflate to the end to discard) or less, or that is not valid zlib, is refused
   as soon as that is known. WebP: the RIFF size against the real length, and every chunk
   inside it. BMP: the file must hold the whole pixel array. Bytes after the end (after EOI,
   IEND, the RIFF chunk) are allowed: cameras append data there, and the length limit already
   bounds them. These checks run against a budget of ``limits.decode_timeout_ms`` of CPU time
   (2006 when it is spent); the native decoder itself cannot be interrupted, which is why its
   work is bounded beforehand by the pixel, scan and byte budgets.
8. Decoding (2006): ``cv2.imdecode`` with ``IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION``, guarded:
   a decoder exception, a ``None`` result, a decoded size that disagrees with the header, or
   -- for JPEG -- any warning libjpeg prints while decoding ("Corrupt JPEG data: premature end
   of data segment" for a scan cut short and closed with an end marker, "bad Huffman code",
   "N extraneous bytes before marker", ...; `edge.decoder_messages`) is a corrupted image: a
   warning means libjpeg patched the picture up (the missing part comes out flat grey). Grey
   and 16-bit files come out as 3-channel 8-bit, alpha is dropped, BGR is turned into RGB.
9. EXIF orientation (JPEG only): the orientation tag (1..8) is read from the APP1 Exif segment
   by hand and applied with exact rotations/flips. OpenCV is told to ignore it, so it is applied
   exactly once. Broken EXIF is metadata, not a broken photo: it counts as orientation 1.

**Large photos.** Phone photos (12-50 MP, 5-15 MB) are above the seed API's limits, which stay
the defaults. With ``IntakeLimits(downscale=True)`` (``[images] downscale = true``, ``edge
compare --downscale``) a photo of up to ``downscale_max_pixels`` pixels and
``downscale_max_bytes`` bytes is accepted and decoded to a working size within ``max_side`` and
``max_pixels``: a JPEG by libjpeg's own reduced decoding (1/2, 1/4 or 1/8: an 8160×6120 photo
becomes 4080×3060 without the full 150 MB image ever being made), then, and for the other
formats, by ``cv2.INTER_AREA`` resizing. `Image.scale` says by how much; the engine reports
face boxes in the pixels of the photo as sent.

Encrypted uploads: `decode_image` is the seam. It takes the decrypted, encoded bytes and runs
checks 2 to 9; the decryption stage (not here) sits between `read_source` and `decode_image`.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import stat
import struct
import time
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from edge.decoder_messages import call_capturing_stderr, pass_through
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
# libjpeg's reduced-size decoding (its DCT scaling), by denominator.
_REDUCED_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}

_INT_LIMITS = (
    "max_bytes",
    "min_side",
    "max_side",
    "max_pixels",
    "max_scans",
    "max_decoded_bytes",
    "downscale_max_bytes",
    "downscale_max_pixels",
)


@dataclass(frozen=True)
class IntakeLimits:
    """What the intake stage accepts, and what decoding one image may cost.

    Checked when constructed; a bad value names its field. `[images]` in the appliance
    config (edge/config.py, firmware_config/edge.toml) has the same keys.
    """

    max_bytes: int = 5 * 1024 * 1024  # encoded content length, bytes (2004 above)
    min_side: int = 64  # shorter image side, pixels (2003 below)
    max_side: int = 4096  # longer image side, pixels (2003 above, unless downscale)
    max_pixels: int = 4096 * 4096  # width × height (2003 above, unless downscale)
    # A JPEG with more scans is refused (2006): real encoders write 1 (baseline) to ~10-12
    # (progressive); each scan costs a pass over every block of the image.
    max_scans: int = 32
    # The decoder's pixel memory (decoded image, JPEG coefficient buffer, inflated PNG rows),
    # estimated from the header (2003 above). 256 MiB holds every image within the other
    # default limits (a 4096² progressive 4:4:4 JPEG needs ~150 MB).
    max_decoded_bytes: int = 256 * 1024 * 1024
    # The structure checks (walk, PNG inflate) give up after this much CPU time (2006).
    decode_timeout_ms: float = 2000.0
    # Photos above max_side / max_pixels are decoded at a reduced size instead of refused,
    # up to these ceilings (each at least its as-is limit).
    downscale: bool = False
    downscale_max_bytes: int = 32 * 1024 * 1024
    downscale_max_pixels: int = 64 * 1024 * 1024  # 67 MP: an 8160×6120 (50 MP) phone photo fits

    def __post_init__(self) -> None:
        for name in _INT_LIMITS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"IntakeLimits.{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"IntakeLimits.{name} must be at least 1, got {value}")
            object.__setattr__(self, name, int(value))
        timeout = self.decode_timeout_ms
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)):
            raise TypeError(f"IntakeLimits.decode_timeout_ms must be a number, got {type(timeout).__name__}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"IntakeLimits.decode_timeout_ms must be a positive number of ms, got {timeout}")
        object.__setattr__(self, "decode_timeout_ms", float(timeout))
        if not isinstance(self.downscale, (bool, np.bool_)):
            raise TypeError(f"IntakeLimits.downscale must be True or False, got {self.downscale!r}")
        object.__setattr__(self, "downscale", bool(self.downscale))
        if self.max_side < self.min_side:
            raise ValueError(
                f"IntakeLimits.max_side ({self.max_side}) must be at least IntakeLimits.min_side ({self.min_side})"
            )
        if self.max_pixels < self.min_side * self.min_side:
            raise ValueError(
                f"IntakeLimits.max_pixels ({self.max_pixels}) must be at least IntakeLimits.min_side² "
                f"({self.min_side * self.min_side})"
            )

    @property
    def content_limit(self) -> int:
        """The most encoded bytes accepted: `max_bytes`, or with `downscale` the larger `downscale_max_bytes`."""
        return max(self.max_bytes, self.downscale_max_bytes) if self.downscale else self.max_bytes

    @property
    def pixel_ceiling(self) -> int:
        """The most pixels a header may declare: `max_pixels`, or with `downscale` `downscale_max_pixels`."""
        return max(self.max_pixels, self.downscale_max_pixels) if self.downscale else self.max_pixels


DEFAULT_LIMITS = IntakeLimits()


@dataclass(frozen=True)
class Image:
    """A checked photo.

    rgb: H×W×3 uint8 RGB, C-contiguous, owned (never a view of the caller's array), with the
        EXIF orientation already applied when `load_image(..., apply_exif=True)`.
    format: "jpeg", "png", "bmp", "webp", or "array" for pixels given directly.
    orientation: the EXIF orientation found (1..8; 1 when absent, broken, or not a JPEG).
    original_size: (width, height) as stored in the file, before any orientation is applied.
    scale: `rgb`'s size over the stored size (1.0 unless the photo was downscaled to fit the limits).
    """

    rgb: np.ndarray
    format: str
    orientation: int
    original_size: tuple[int, int]
    scale: float = 1.0

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def displayed_size(self) -> tuple[int, int]:
        """(width, height) of the photo as sent, after EXIF orientation, before any downscale."""
        width, height = self.original_size
        return (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)


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
    """Check and decode encoded image content (checks 2 to 9). The seam for decrypted uploads."""
    _check_limits_type(limits)
    deadline = _Deadline(limits.decode_timeout_ms)
    data = _content_bytes(data, limits)
    fmt = sniff(data)
    if fmt is None:
        raise EdgeError(INVALID_IMAGE_TYPE, _describe_unsupported(data))
    header = _parse_header(data, fmt)
    width, height = header.width, header.height
    target = _working_size(width, height, limits)
    denominator = _jpeg_denominator(width, height, limits) if fmt == "jpeg" and target != (width, height) else 1
    decoded_size = (_ceil_div(width, denominator), _ceil_div(height, denominator))
    _check_decode_budget(header, decoded_size, limits)
    facts = _check_complete(data, fmt, limits, deadline)
    if fmt == "jpeg" and facts.scans > 1 and not header.progressive:
        # a sequential JPEG in several scans (one per component) is buffered whole, like a progressive one
        _check_decode_budget(header, decoded_size, limits, multi_scan=True)
    deadline.check("before decoding")

    decoded = _decode(data, fmt, denominator)
    if decoded.shape[0] != decoded_size[1] or decoded.shape[1] != decoded_size[0]:
        raise EdgeError(
            CORRUPTED_IMAGE,
            f"{fmt.upper()} header says {width}×{height} pixels but the data decodes to "
            f"{decoded.shape[1]}×{decoded.shape[0]}"
            + (f" (at 1/{denominator} size: {decoded_size[0]}×{decoded_size[1]} expected)" if denominator > 1 else ""),
        )
    if not _fits(decoded_size[0], decoded_size[1], limits):
        decoded = cv2.resize(decoded, target, interpolation=cv2.INTER_AREA)
    rgb = _to_rgb8(decoded, bgr=True)
    orientation = facts.orientation
    if apply_exif and orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    scale = 1.0 if (decoded.shape[1], decoded.shape[0]) == (width, height) else decoded.shape[1] / width
    return Image(
        rgb=np.ascontiguousarray(rgb),
        format=fmt,
        orientation=orientation,
        original_size=(width, height),
        scale=scale,
    )


def image_from_array(array: np.ndarray, *, limits: IntakeLimits = DEFAULT_LIMITS) -> Image:
    """Check pixels given directly: uint8, H×W / H×W×1 grey, H×W×3 RGB or H×W×4 (alpha dropped).

    Arrays are never downscaled: their memory is already spent; one above the limits is 2003.
    """
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
    limit = limits.content_limit
    if size > limit:
        raise EdgeError(
            INVALID_CONTENT_LENGTH,
            f"image content is {size} bytes ({_mib(size)}); the limit is {limit} bytes ({_mib(limit)})",
        )


class _NotBase64(ValueError):
    """Why a string is not base64 (turned into a 1200 whose message fits the context)."""


def _read_str(text: str, limits: IntakeLimits, allow_paths: bool) -> bytes:
    if text[:5].lower() == "data:":
        return _decode_data_url(text, limits)
    if allow_paths and _is_existing_path(text):
        return _read_file(text, limits)
    could_be_a_path = allow_paths and 0 < len(text) <= _MAX_PATH_CHARS and "\n" not in text
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        data = _decode_base64(text, limits)
    except _NotBase64 as exc:
        if could_be_a_path:
            raise EdgeError(
                INVALID_ARGUMENT, f"file not found: {shown!r} (nor is the string base64 image content: {exc})"
            ) from None
        raise EdgeError(INVALID_ARGUMENT, f"string is not valid base64 ({exc})") from None
    if could_be_a_path and len(data) < _MIN_FILE_BYTES and sniff(data) is None:
        # "face", "IMG_0001", "/srv/faces/bob" are valid base64 too; a few bytes that are no
        # image mean a file name that was mistyped, not an upload.
        raise EdgeError(INVALID_ARGUMENT, f"file not found: {shown!r} (nor is the string base64 image content)")
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
        raise EdgeError(INVALID_ARGUMENT, f"file not found: {shown!r}") from None
    except (OSError, ValueError) as exc:
        raise EdgeError(INVALID_ARGUMENT, f"cannot access {shown!r}: {exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise EdgeError(INVALID_ARGUMENT, f"{shown!r} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):  # FIFOs, devices: opening or reading them can block forever
        raise EdgeError(INVALID_ARGUMENT, f"{shown!r} is not a regular file")
    _check_length(info.st_size, limits)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.content_limit + 1)  # the file may have grown since stat
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
)


def _describe_unsupported(data: bytes) -> str:
    # Names other image formats (the caller may just need to convert), never echoes content:
    # the bytes may come from a file that was not meant to be shown (docs/api.md, "Paths").
    accepted = "accepted: JPEG, PNG, BMP, WebP"
    for offset, magic, name in _OTHER_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return f"{name} images are not supported ({accepted})"
    return f"not a supported image format ({accepted})"


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class _Header:
    """What a header declares: the size, and what the decoding budget needs to know."""

    width: int
    height: int
    progressive: bool = False  # JPEG: SOF2/6/10/14 (the decoder buffers every coefficient)
    sampling: tuple[tuple[int, int], ...] = ()  # JPEG: (h, v) sampling factor per component
    component_ids: tuple[int, ...] = ()  # JPEG: the components' identifiers, as scans name them
    raw_bytes: int = 0  # PNG: what the IDAT stream must inflate to (filter bytes included)


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
    if fmt not in _HEADER_PARSERS:
        raise EdgeError(INVALID_IMAGE_TYPE, f"unsupported image format {fmt!r} (expected one of {', '.join(FORMATS)})")
    header = _parse_header(data, fmt)
    return header.width, header.height


def _parse_header(data: bytes, fmt: str) -> _Header:
    try:
        header = _HEADER_PARSERS[fmt](data)
    except (struct.error, IndexError):  # a read past the end slipped through a bounds check
        raise _corrupt(fmt, "header is cut short") from None
    if header.width < 1 or header.height < 1:
        raise _corrupt(fmt, f"header declares {header.width}×{header.height} pixels")
    return header


def _corrupt(fmt: str, why: str) -> EdgeError:
    return EdgeError(CORRUPTED_IMAGE, f"{fmt.upper()} {why}")


def _fits(width: int, height: int, limits: IntakeLimits) -> bool:
    return max(width, height) <= limits.max_side and width * height <= limits.max_pixels


def _check_pixel_size(width: int, height: int, limits: IntakeLimits) -> None:
    """2003 unless width × height is within the limits as it is (no downscale)."""
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
    if width * height > limits.max_pixels:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels ({_mp(width * height)}); at most {limits.max_pixels} "
            f"({_mp(limits.max_pixels)}) are accepted",
        )


def _working_size(width: int, height: int, limits: IntakeLimits) -> tuple[int, int]:
    """The size the image is decoded to: its own when it fits the limits; with `downscale`, a
    smaller one that fits (2003 when it cannot be made to)."""
    if not limits.downscale or _fits(width, height, limits):
        _check_pixel_size(width, height, limits)
        return width, height
    if min(width, height) < limits.min_side:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels; the short side must be at least {limits.min_side}",
        )
    pixels = width * height
    if pixels > limits.pixel_ceiling:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels ({_mp(pixels)}); photos of up to {limits.pixel_ceiling} pixels "
            f"({_mp(limits.pixel_ceiling)}) are downscaled, larger ones refused",
        )
    factor = min(limits.max_side / max(width, height), math.sqrt(limits.max_pixels / pixels))
    target = (max(1, math.floor(width * factor)), max(1, math.floor(height * factor)))
    if min(target) < limits.min_side:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"image is {width}×{height} pixels; downscaled to fit the limits ({target[0]}×{target[1]}) its "
            f"short side would be below {limits.min_side}",
        )
    return target


def _jpeg_denominator(width: int, height: int, limits: IntakeLimits) -> int:
    """The smallest of libjpeg's reductions (1/2, 1/4, 1/8) after which the JPEG fits; 8 when none does."""
    for denominator in (2, 4):
        if _fits(_ceil_div(width, denominator), _ceil_div(height, denominator), limits):
            return denominator
    return 8


def _check_decode_budget(
    header: _Header, decoded_size: tuple[int, int], limits: IntakeLimits, *, multi_scan: bool = False
) -> None:
    """2003 when the decoder would hold more than `max_decoded_bytes` of pixels and coefficients."""
    need = decoded_size[0] * decoded_size[1] * 3  # the decoded BGR image
    if header.progressive or multi_scan:
        need += _jpeg_coefficient_bytes(header)
    need += header.raw_bytes
    if need > limits.max_decoded_bytes:
        raise EdgeError(
            INVALID_IMAGE_SIZE,
            f"decoding this {header.width}×{header.height} image would take about {_mib(need)} of memory; "
            f"the limit is {_mib(limits.max_decoded_bytes)} (max_decoded_bytes)",
        )


def _jpeg_coefficient_bytes(header: _Header) -> int:
    """The whole-image coefficient buffer libjpeg keeps for a progressive (or multi-scan) JPEG."""
    if not header.sampling:
        return 0
    h_max = max(h for h, _ in header.sampling)
    v_max = max(v for _, v in header.sampling)
    blocks = 0
    for h, v in header.sampling:
        columns = _ceil_div(_ceil_div(header.width * h, h_max), 8)
        rows = _ceil_div(_ceil_div(header.height * v, v_max), 8)
        blocks += columns * rows
    return blocks * 64 * 2  # 64 coefficients of 2 bytes per 8×8 block


class _Deadline:
    """The time budget of the structure checks (`decode_timeout_ms`), in this thread's CPU time:
    the work an input makes the device do, whatever else the machine is busy with (wall time
    would refuse a good photo whenever the camera loop or another request held the CPU)."""

    def __init__(self, ms: float) -> None:
        self.ms = ms
        self.end = time.thread_time() + ms / 1000.0

    def check(self, stage: str) -> None:
        if time.thread_time() > self.end:
            raise EdgeError(
                CORRUPTED_IMAGE,
                f"checking the image took longer than its {self.ms:g} ms budget ({stage}; decode_timeout_ms); refused",
            )


# JPEG ------------------------------------------------------------------------------------

# SOFn: C0-CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
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


@dataclass(frozen=True)
class _JpegWalk:
    header: _Header
    orientation: int
    scans: int


def _jpeg_walk(data: bytes, to_end: bool, max_scans: int | None = None) -> _JpegWalk:
    """Walk JPEG markers.

    With to_end=False stops at the first SOFn (header only). With to_end=True walks every
    segment and scan up to EOI and raises 2006 if EOI is never reached, or as soon as there
    are more than `max_scans` scans.
    """
    n = len(data)
    if n < 4 or data[:2] != b"\xff\xd8":
        raise _corrupt("jpeg", "does not start with an SOI marker")
    pos = 2
    header: _Header | None = None
    orientation = 1
    seen_exif = False
    scans = 0
    coverage: _ScanCoverage | None = None
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
            if header is None or coverage is None:
                raise _corrupt("jpeg", "has no frame header (SOF) before its end-of-image marker")
            coverage.check_complete()
            return _JpegWalk(header, orientation, scans)
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
        if marker in _JPEG_SOF and header is None:
            header = _jpeg_frame(data, pos, seg_len, marker)
            coverage = _ScanCoverage(header)
            if not to_end:
                return _JpegWalk(header, orientation, scans)
        elif marker == 0xE1 and not seen_exif and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            seen_exif = True
            orientation = _tiff_orientation(data[pos + 10 : end])
        elif marker == 0xDA:  # SOS: entropy-coded data follows the segment
            if header is None or coverage is None:
                raise _corrupt("jpeg", "has scan data before its frame header (SOF)")
            coverage.add(data, pos, seg_len)
            scans += 1
            if max_scans is not None and scans > max_scans:
                raise _corrupt(
                    "jpeg",
                    f"has more than {max_scans} scans (max_scans): each scan is a pass over the whole image, "
                    "and a progressive JPEG made of thousands of them takes seconds to decode; refused",
                )
            match = _JPEG_NEXT_MARKER.search(data, end)
            if match is None:
                raise _corrupt("jpeg", "is truncated: the scan data has no end-of-image (EOI) marker")
            pos = match.start()
            continue
        pos = end
    raise _corrupt("jpeg", f"has more than {_MAX_JPEG_SEGMENTS} segments (a pathological file)")


def _jpeg_frame(data: bytes, pos: int, seg_len: int, marker: int) -> _Header:
    """The frame header (SOFn) at `pos`: size, components' sampling factors, progressive or not."""
    if seg_len < 8:
        raise _corrupt("jpeg", f"frame header (SOF) is too short ({seg_len} bytes)")
    height, width, count = struct.unpack_from(">HHB", data, pos + 5)
    if width == 0 or height == 0:
        raise _corrupt("jpeg", f"frame header declares {width}×{height} pixels")
    if not 1 <= count <= 4 or seg_len < 8 + 3 * count:
        raise _corrupt("jpeg", f"frame header (SOF) declares {count} components in {seg_len} bytes")
    sampling, ids = [], []
    for i in range(count):
        ids.append(data[pos + 10 + 3 * i])
        factors = data[pos + 11 + 3 * i]
        h, v = factors >> 4, factors & 0x0F
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise _corrupt("jpeg", f"frame header gives component {i + 1} sampling factors {h}×{v}")
        sampling.append((h, v))
    return _Header(
        width,
        height,
        progressive=marker in _JPEG_PROGRESSIVE,
        sampling=tuple(sampling),
        component_ids=tuple(ids),
    )


class _ScanCoverage:
    """Which coefficients of which components the scans so far have sent, at what precision.

    A JPEG cut between two scans and closed with an end-of-image marker decodes without a word
    from libjpeg: the picture just lacks the later scans (a blurred or washed-out face). So at
    EOI every component must have been in a scan, and in a progressive JPEG every coefficient
    0..63 of every component must have reached full precision (a scan with Al = 0), as every
    encoder's scan script does.
    """

    def __init__(self, header: _Header) -> None:
        self.header = header
        self.seen: set[int] = set()
        # per component, the successive-approximation bit position of each coefficient (-1: not sent yet)
        self.bits = {cid: [-1] * 64 for cid in header.component_ids} if header.progressive else {}

    def add(self, data: bytes, pos: int, seg_len: int) -> None:
        """Record the SOS segment at `pos` (2006 when it is malformed)."""
        count = data[pos + 4] if seg_len >= 3 else 0
        if not 1 <= count <= 4 or seg_len != 6 + 2 * count:
            raise _corrupt("jpeg", f"has a malformed scan header (SOS) at byte {pos}")
        ids = [data[pos + 5 + 2 * i] for i in range(count)]
        unknown = [cid for cid in ids if cid not in self.header.component_ids]
        if unknown:
            raise _corrupt("jpeg", f"scan at byte {pos} names component {unknown[0]}, which the frame does not have")
        self.seen.update(ids)
        if self.bits:
            start, end, approximation = data[pos + 5 + 2 * count : pos + 8 + 2 * count]
            for cid in ids:
                row = self.bits[cid]
                for k in range(start, min(end, 63) + 1):
                    row[k] = approximation & 0x0F

    def check_complete(self) -> None:
        missing = [cid for cid in self.header.component_ids if cid not in self.seen]
        if missing:
            raise _corrupt("jpeg", f"ends before a scan of component {missing[0]}: the file was cut short")
        for cid, row in self.bits.items():
            if any(bit != 0 for bit in row):
                k = next(k for k, bit in enumerate(row) if bit != 0)
                raise _corrupt(
                    "jpeg",
                    f"ends before its progressive scans are complete (coefficient {k} of component {cid} never "
                    "reaches full precision): the file was cut short",
                )


def _jpeg_header(data: bytes) -> _Header:
    return _jpeg_walk(data, to_end=False).header


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
        return _jpeg_walk(data, to_end=True).orientation
    except EdgeError:
        return 1


# PNG -------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_MAX = 2**31 - 1
# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_PIECE = 1 << 20  # bytes inflated per step of the zlib check (then discarded)


def _png_header(data: bytes) -> _Header:
    if len(data) < 8 + 8 + 13:
        raise _corrupt("png", "is truncated before the end of its IHDR header")
    length, ctype = struct.unpack_from(">I4s", data, 8)
    if ctype != b"IHDR" or length != 13:
        raise _corrupt("png", "does not start with a valid IHDR chunk")
    width, height, depth, color, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if not (1 <= width <= _PNG_MAX and 1 <= height <= _PNG_MAX):
        raise _corrupt("png", f"IHDR declares {width}×{height} pixels")
    if depth not in _PNG_DEPTHS.get(color, ()):
        raise _corrupt("png", f"IHDR has an invalid colour type/bit depth ({color}/{depth})")
    if compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise _corrupt(
            "png", f"IHDR has an unknown compression/filter/interlace method ({compression}/{filtering}/{interlace})"
        )
    return _Header(width, height, raw_bytes=_png_raw_bytes(width, height, _PNG_CHANNELS[color] * depth, interlace))


def _png_raw_bytes(width: int, height: int, bits_per_pixel: int, interlace: int) -> int:
    """What the IDAT stream inflates to: every row of every pass, each with its filter byte."""

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits_per_pixel + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w = (width - x0 + dx - 1) // dx if width > x0 else 0
        h = (height - y0 + dy - 1) // dy if height > y0 else 0
        if w and h:
            total += rows(w, h)
    return total


def _png_complete(data: bytes, deadline: _Deadline) -> None:
    view = memoryview(data)
    n = len(data)
    pos = 8
    idat: list[memoryview] = []
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
            idat.append(view[pos + 8 : end - 4])
        elif ctype == b"IEND":
            if not idat:
                raise _corrupt("png", "has no image data (IDAT) before IEND")
            _png_inflate_check(idat, _png_header(data).raw_bytes, deadline)
            return
        pos = end
    raise _corrupt("png", f"has more than {_MAX_PNG_CHUNKS} chunks (a pathological file)")


def _png_inflate_check(pieces: list[memoryview], expected: int, deadline: _Deadline) -> None:
    """The IDAT zlib stream must inflate to exactly `expected` bytes, and end.

    Inflated a megabyte at a time and thrown away, so a stream that inflates to gigabytes (a
    "zlib bomb": libpng inflates any surplus to the end just to discard it) is refused after
    `expected` + 1 bytes, and memory stays at one piece.
    """
    inflater = zlib.decompressobj()
    produced = checked = 0
    try:
        for piece in pieces:
            if inflater.eof:
                if len(piece):
                    raise _corrupt("png", "image data continues after the end of its zlib stream")
                continue
            pending = piece
            while pending and not inflater.eof:
                produced += len(inflater.decompress(pending, _INFLATE_PIECE))
                if produced > expected:
                    raise _corrupt(
                        "png",
                        f"image data inflates to more than the {expected} bytes its header declares "
                        "(a decompression bomb); refused",
                    )
                pending = inflater.unconsumed_tail
                if produced >= checked + _INFLATE_PIECE:  # the clock is a system call: once a piece
                    checked = produced
                    deadline.check("inflating the PNG data")
            if inflater.eof and (pending or inflater.unused_data):
                raise _corrupt("png", "image data continues after the end of its zlib stream")
        while not inflater.eof:  # output zlib still holds after the last input
            out = inflater.decompress(b"", _INFLATE_PIECE)
            if not out:
                break
            produced += len(out)
            if produced > expected:
                raise _corrupt("png", f"image data inflates to more than the {expected} bytes its header declares")
    except zlib.error as exc:
        raise _corrupt("png", f"image data is not a valid zlib stream ({exc})") from None
    if produced < expected or not inflater.eof:
        raise _corrupt(
            "png", f"is truncated or corrupted: its image data inflates to {produced} of the {expected} bytes declared"
        )


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


_HEADER_PARSERS = {
    "jpeg": _jpeg_header,
    "png": _png_header,
    "bmp": lambda data: _Header(*_bmp_header(data)),
    "webp": lambda data: _Header(*_webp_header(data)),
}


@dataclass(frozen=True)
class _Complete:
    orientation: int = 1  # EXIF orientation (JPEG), else 1
    scans: int = 0  # JPEG scans


def _check_complete(data: bytes, fmt: str, limits: IntakeLimits, deadline: _Deadline) -> _Complete:
    """Raise 2006 unless the file is whole (and no bomb); the EXIF orientation and scan count of a JPEG."""
    try:
        if fmt == "jpeg":
            walk = _jpeg_walk(data, to_end=True, max_scans=limits.max_scans)
            deadline.check("walking the JPEG structure")
            return _Complete(walk.orientation, walk.scans)
        if fmt == "png":
            _png_complete(data, deadline)
        elif fmt == "bmp":
            _bmp_complete(data)
        elif fmt == "webp":
            _webp_complete(data)
    except (struct.error, IndexError):
        raise _corrupt(fmt, "is truncated or malformed") from None
    return _Complete()


# --------------------------------------------------------------------------- decoding

# What libjpeg prints when it meets damage it can patch over (jerror.h, the JWRN_ messages).
# Any of them makes the image corrupted: the decoder filled in what it could not read.
_LIBJPEG_WARNING = re.compile(
    rb"(Corrupt JPEG data: .*|Premature end of JPEG file|Warning: unknown JFIF revision number .*"
    rb"|Inconsistent progression sequence for component .*|Invalid SOS parameters for sequential JPEG"
    rb"|Unknown Adobe color transform code .*|Application transferred too many scanlines)"
)


def _decode(data: bytes, fmt: str, denominator: int) -> np.ndarray:
    """cv2.imdecode, at 1/`denominator` size for a JPEG; 2006 for anything the decoder complains about."""
    flags = _DECODE_FLAGS if denominator == 1 else _REDUCED_FLAGS[denominator]
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        if fmt == "jpeg":
            decoded, messages, _captured = call_capturing_stderr(lambda: cv2.imdecode(buffer, flags))
            _judge_libjpeg_messages(messages)
        else:
            decoded = cv2.imdecode(buffer, flags)
    except cv2.error as exc:  # OpenCV raises for some malformed streams
        raise _corrupt(fmt, f"image does not decode: {_first_line(exc)}") from None
    if decoded is None or decoded.size == 0:
        raise _corrupt(fmt, "image does not decode (the decoder rejected the data)")
    return decoded


def _judge_libjpeg_messages(messages: bytes) -> None:
    """2006 for the first libjpeg warning among `messages`; other text goes on to stderr."""
    if not messages:
        return
    warnings, other = [], []
    for line in messages.splitlines(keepends=True):
        (warnings if _LIBJPEG_WARNING.fullmatch(line.rstrip(b"\r\n")) else other).append(line)
    pass_through(b"".join(other))
    if warnings:
        text = warnings[0].rstrip(b"\r\n").decode("ascii", "replace")
        raise _corrupt("jpeg", f"data is corrupt: the decoder reports {text!r}")


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


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1][:200] if text else type(exc).__name__
