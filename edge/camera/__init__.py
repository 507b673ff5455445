"""Camera sources behind one interface, and the capture thread that feeds the loop.

    source = open_source("rtsp://cam/stream")          # or "0", "/dev/video0", "clip.avi", "frames/", "picamera2"
    capture = Capture(source, realtime=False).start()
    frame = capture.next(timeout=0.5)                  # Frame(image RGB, index, pts, captured) or None

See `base.Source` for the interface and `capture` for hand-off modes, pacing and reopening.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2

from edge.camera.base import Frame, Source, SourceError, mask_url
from edge.camera.capture import Capture
from edge.camera.directory import IMAGE_SUFFIXES, DirectorySource
from edge.camera.opencv import OpenCVSource
from edge.camera.picamera import Picamera2Source

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_PICAMERA = re.compile(r"picamera2?(?::(\d+))?")
SOURCE_KINDS = "a camera (0, /dev/video0, picamera2), a stream URL, a video file or a folder of images"

logger = logging.getLogger(__name__)


def open_source(spec: str, *, width: int = 640, height: int = 480, fps: float = 30.0) -> Source:
    """The source `spec` names (not opened yet: the capture thread opens it).

    "picamera2" / "picamera2:N" → `Picamera2Source`; a device index ("0") or "/dev/videoN"
    → a live `OpenCVSource`; a stream URL → a live `OpenCVSource`; an existing directory →
    `DirectorySource`; an existing file → a finite `OpenCVSource` (a video file).
    Raises `SourceError` for anything else (a missing file, an unknown scheme) and for a file
    that is not a video OpenCV can read (its first frame is read here: a text file would
    otherwise be retried for ever like a camera that does not answer). A directory without
    images is logged as a warning: its replay ends at once.
    """
    spec = str(spec).strip()
    m = _PICAMERA.fullmatch(spec)
    if m:
        return Picamera2Source(int(m[1] or 0), width=width, height=height, fps=fps)
    if spec.isdigit():
        return OpenCVSource(int(spec), finite=False, width=width, height=height, fps=fps)
    if spec.lower().startswith(STREAM_SCHEMES):
        backend = cv2.CAP_FFMPEG
        return OpenCVSource(spec, finite=False, width=width, height=height, fps=fps, backend=backend)
    if spec.startswith("/dev/"):
        return OpenCVSource(spec, finite=False, width=width, height=height, fps=fps, backend=cv2.CAP_V4L2)
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        _warn_if_no_images(path)
        return DirectorySource(path, fps=fps)
    if path.is_file():
        _check_video_file(path)
        return OpenCVSource(str(path), finite=True)
    if "://" in spec:
        raise SourceError(f"unsupported stream scheme in {mask_url(spec)!r}; use one of {', '.join(STREAM_SCHEMES)}")
    raise SourceError(f"{spec!r}: no such file or folder; camera.source takes {SOURCE_KINDS}")


def _check_video_file(path: Path) -> None:
    """A `SourceError` unless OpenCV opens `path` as a video and reads its first frame."""
    capture = cv2.VideoCapture(str(path))
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise SourceError(f"{str(path)!r} is not a video file OpenCV can read; camera.source takes {SOURCE_KINDS}")


def _warn_if_no_images(path: Path) -> None:
    try:
        entries = [p for p in path.iterdir() if p.is_file()]
    except OSError as exc:
        raise SourceError(f"cannot list the folder {str(path)!r}: {exc.strerror or exc}") from None
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
        others = f" ({len(entries)} other file(s))" if entries else ""
        logger.warning(
            "%s has no images (%s)%s: the replay ends at once, with no frames",
            path,
            ", ".join(IMAGE_SUFFIXES),
            others,
        )


__all__ = [
    "Capture",
    "DirectorySource",
    "Frame",
    "OpenCVSource",
    "Picamera2Source",
    "Source",
    "SourceError",
    "mask_url",
    "open_source",
]
