"""A directory of images replayed as frames, in file-name order."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edge.camera.base import SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DirectorySource:
    """Every image in `path` (not its sub-folders), sorted by name; finite.

    The listing is taken at `open`. `fps` (default 30) is the pace of a realtime replay
    and what frame times (`Frame.pts`) are counted in. A file that does not decode raises
    `SourceError` once (an event) and the replay goes on after it.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.finite = True
        self.fps: float | None = float(fps)
        self.files: list[Path] = []
        self.position = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"{self.name} is not a directory")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def read(self) -> np.ndarray | None:
        if self.position >= len(self.files):
            return None
        path = self.files[self.position]
        self.position += 1  # a broken file is skipped after its error
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"{path} does not decode as an image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        pass
