"""What every camera source is: open, read RGB frames, close.

A source is deliberately dumb: it does not retry, pace or buffer. `edge.camera.capture`
runs one on a thread and does all of that, the same way for every kind of source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class SourceError(RuntimeError):
    """The source could not be opened or stopped giving frames (the capture thread reopens it)."""


@runtime_checkable
class Source(Protocol):
    """A camera, stream, video file or directory of images.

    ``name``: what events and logs call it (URL credentials masked).
    ``finite``: True for a file or a directory: `read` returning None means the end, and
    frames are never dropped unless the replay is paced (``realtime``). False for cameras
    and streams: None means the source failed and must be reopened.
    ``fps``: the native frame rate once open, if the source knows it, else None.
    """

    name: str
    finite: bool
    fps: float | None

    def open(self) -> None:
        """Open (or reopen after a failure); raise `SourceError` when that is impossible now.

        A finite source that is reopened continues after the last frame it returned.
        """

    def read(self) -> np.ndarray | None:
        """The next frame as H×W×3 RGB uint8; None at the end (finite) or on failure (live)."""

    def close(self) -> None:
        """Release the device or file; safe to call twice and after a failed open."""


@dataclass(slots=True)
class Frame:
    """One frame on its way through the loop.

    ``index`` counts frames the capture produced (delivered or dropped) since start.
    ``pts`` is the frame's time in seconds: its position in a file or directory (index /
    fps), or the monotonic capture time for a live source. The decision policy's clock
    (cooldowns) runs on it, so a replay behaves the same at any speed.
    ``captured`` is `time.monotonic()` when the frame came to exist for the loop: read from
    a live source, released by the realtime pacer, or handed over by an unpaced replay
    (which would have waited for the loop anyway). Latency is measured from it.
    """

    image: np.ndarray
    index: int
    pts: float
    captured: float


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]*):(?P<password>[^@/]*)@")


def mask_url(text: str) -> str:
    """rtsp://user:secret@host/… → rtsp://user:***@host/… (for events and logs)."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
