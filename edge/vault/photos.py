"""Photo arguments → (label, encoded bytes), shared by enrolment, bundles and `edge seal`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.errors import INVALID_ARGUMENT, EdgeError
from edge.images import DEFAULT_LIMITS, IntakeLimits, read_source

PhotoSource = bytes | bytearray | memoryview | str | os.PathLike[str] | np.ndarray | tuple[str, bytes]


def describe(index: int, label: str) -> str:
    """How errors name a photo: "photo 2 (bob.jpg)", or "photo 2" when it has no label."""
    return f"photo {index} ({label})" if label else f"photo {index}"


def read_photos(photos: Sequence[PhotoSource], limits: IntakeLimits = DEFAULT_LIMITS) -> list[tuple[str, bytes]]:
    """(label, encoded bytes) per photo: a path (its label), bytes or base64 (no label), an RGB
    array (encoded as PNG) or a (label, bytes) pair. Nothing is decoded here; errors name the photo."""
    out = []
    for i, photo in enumerate(photos, 1):
        if isinstance(photo, tuple):
            label, data = photo
            out.append((str(label), bytes(data)))
            continue
        is_path = isinstance(photo, os.PathLike) or (isinstance(photo, str) and len(photo) < 4096 and _is_file(photo))
        label = os.fspath(photo) if is_path else ""
        if isinstance(photo, np.ndarray):
            pixels = photo if photo.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(photo[..., :3]), cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".png", pixels)
            if not ok:
                raise EdgeError(INVALID_ARGUMENT, f"{describe(i, label)}: the array does not encode as PNG")
            out.append((label, buf.tobytes()))
            continue
        try:
            out.append((label, read_source(photo, limits=limits)))
        except EdgeError as exc:
            raise EdgeError(exc.code, f"{describe(i, label or _short(photo))}: {exc.message}") from None
    return out


def _short(photo: object) -> str:
    return photo if isinstance(photo, str) and len(photo) <= 80 else ""


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


__all__ = ["PhotoSource", "describe", "read_photos"]
