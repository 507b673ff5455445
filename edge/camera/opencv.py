"""OpenCV `VideoCapture` sources: device index, V4L2 path, RTSP/HTTP URL, video file."""

from __future__ import annotations

import cv2
import numpy as np

from edge.camera.base import SourceError, mask_url

STREAM_TIMEOUT_MS = 5000  # open and read timeouts for network streams (FFmpeg backend)


class OpenCVSource:
    """One `cv2.VideoCapture`, frames converted to RGB.

    `target` is a device index (int), a V4L2 path, a URL or a video file. Live sources
    (cameras, streams) are asked for `width`×`height` at `fps` and for a one-frame driver
    buffer (what the device grants is in `width`, `height`, `fps` after `open`). A video
    file is finite: `read` returns None at its end, and a reopen seeks back to the frame
    after the last one returned.
    """

    def __init__(
        self,
        target: int | str,
        *,
        finite: bool,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        backend: int = cv2.CAP_ANY,
    ) -> None:
        self.target = target
        self.finite = finite
        self.name = mask_url(str(target)) if isinstance(target, str) else f"camera {target}"
        self.want = (width, height, fps)
        self.backend = backend
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.position = 0  # frames returned so far (a reopened file resumes here)
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self.close()
        if isinstance(self.target, str) and "://" in self.target:
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC]
            cap = cv2.VideoCapture(self.target, self.backend, [*timeouts, STREAM_TIMEOUT_MS])
        else:
            cap = cv2.VideoCapture(self.target, self.backend)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name}")
        if not self.finite:
            width, height, fps = self.want
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
            if width and height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
        elif self.position:
            cap.set(cv2.CAP_PROP_POS_FRAMES, self.position)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0 < fps < 1000 else None
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.finite else 0
        self.frame_count = count if count > 0 else None
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        self.position += 1
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB if bgr.shape[2] == 3 else cv2.COLOR_BGRA2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
