"""Raspberry Pi CSI cameras through picamera2 (libcamera). Thin on purpose.

Not exercised by the test suite (it needs a Pi and its camera); everything around it
(pacing, reopen, latest-frame hand-off) is the shared capture thread, which is tested
with other sources. picamera2 is imported only when such a source opens; install it
with apt (`python3-picamera2`, recommended by Raspberry Pi) or `pip install 'edge[picamera]'`.
"""

from __future__ import annotations

import numpy as np

from edge.camera.base import SourceError


class Picamera2Source:  # pragma: no cover - needs Pi camera hardware
    def __init__(self, index: int = 0, *, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        self.index = index
        self.name = f"picamera2:{index}"
        self.finite = False
        self.size = (int(width), int(height))
        self.fps: float | None = float(fps)
        self._cam = None

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(f"picamera2 is not installed ({exc}); apt install python3-picamera2") from None
        try:
            cam = Picamera2(self.index)
            # "BGR888" is libcamera's name for pixels stored R, G, B: numpy RGB, no conversion.
            config = cam.create_video_configuration(
                main={"size": self.size, "format": "BGR888"}, controls={"FrameRate": self.fps}
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            raise SourceError(f"{self.name}: {exc}") from None
        self._cam = cam

    def read(self) -> np.ndarray | None:
        if self._cam is None:
            raise SourceError(f"{self.name} is not open")
        frame = self._cam.capture_array("main")
        return np.ascontiguousarray(frame[..., :3]) if frame is not None else None

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()
