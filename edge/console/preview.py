"""The live view's frames: handed over by the loop for free, encoded on the preview's own thread.

    loop thread:     process(frame) ─▶ observer(frame, faces, verdicts): keep references, return
    preview thread:  every 1/preview_fps s, while someone watches: draw boxes on a copy ─▶ JPEG
    console:         latest() → (jpeg, overlay) for /console/api/frame.jpg and /console/api/live

The observer is attached to the appliance only while a viewer is connected (a request for a
frame in the last `idle_s` seconds) and detached after, so a loop nobody watches pays nothing;
a watched one pays a tuple of references per frame. JPEG encoding, the costly part, runs at
most `preview_fps` times a second on this module's thread, never in the decision path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

logger = logging.getLogger(__name__)

STATUS_COLOURS = {  # BGR for cv2, on the frame copy
    "granted": (80, 200, 60),
    "denied": (60, 60, 230),
    "unknown": (40, 160, 240),
    "undecided": (230, 200, 80),
    "new": (230, 200, 80),
    "spoof": (200, 60, 200),
}


class Preview:
    """The latest frame and its faces, JPEG-encoded at a capped rate while someone watches."""

    def __init__(self, appliance: Any, *, fps: float = 5.0, idle_s: float = 3.0, quality: int = 75) -> None:
        self.appliance = appliance
        self.interval = 1.0 / float(fps)
        self.idle_s = idle_s
        self.quality = quality
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: tuple | None = None  # (frame, faces, verdicts, seen_at) from the loop
        self._jpeg: bytes | None = None
        self._overlay: dict = {"faces": [], "frame": None}
        self._version = 0
        self._last_wanted = 0.0
        self._thread: threading.Thread | None = None
        self._observed = deque(maxlen=60)  # monotonic times of observed frames: the loop's fps
        self._latency_ms: float | None = None
        self.encoded = 0  # frames encoded (for bench_loop.py --preview and the tests)
        self.encode_ms = 0.0

    # --- the loop's side: references only --------------------------------------------------

    def observe(self, frame: Any, faces: list[dict], verdicts: list) -> None:
        now = time.monotonic()
        self._pending = (frame, faces, now)  # one assignment: atomic under the GIL, no lock in the loop
        self._observed.append(now)
        self._latency_ms = (now - frame.captured) * 1e3

    # --- the console's side ----------------------------------------------------------------

    def want(self) -> None:
        """A viewer asked for a frame: make sure the observer and the encoder are running."""
        self._last_wanted = time.monotonic()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._encode_loop, name="edge-console-preview", daemon=True)
                self.appliance.add_frame_observer(self.observe)
                self._thread.start()

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def latest(self) -> tuple[bytes | None, dict, int]:
        """(JPEG or None before the first frame, the overlay of that frame, its version number)."""
        self.want()
        with self._lock:
            return self._jpeg, self._overlay, self._version

    def wait_newer(self, version: int, timeout: float) -> tuple[bytes | None, dict, int]:
        """Block (a worker thread, not the event loop) until a frame newer than `version`."""
        self.want()
        with self._wake:
            self._wake.wait_for(lambda: self._version > version, timeout=timeout)
            return self._jpeg, self._overlay, self._version

    def current_frame(self) -> tuple[Any, list[dict]] | None:
        """The last frame the loop processed (RGB) and its faces, for an enrolment from the live view."""
        pending = self._pending
        return None if pending is None else (pending[0].image, pending[1])

    def stop(self) -> None:
        """Let the preview thread end now (it detaches the observer) and wait for it."""
        self._last_wanted = float("-inf")
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2 * self.interval + 1)

    def fps(self) -> float:
        seen = list(self._observed)
        if len(seen) < 2 or seen[-1] <= seen[0]:
            return 0.0
        return (len(seen) - 1) / (seen[-1] - seen[0])

    # --- the preview thread ------------------------------------------------------------------

    def _encode_loop(self) -> None:
        done = None
        try:
            while True:
                with self._lock:  # decided under the lock `want` takes: a viewer arriving now restarts us
                    if time.monotonic() - self._last_wanted >= self.idle_s:
                        self._detach()
                        return
                started = time.monotonic()
                pending = self._pending
                if pending is not None and pending is not done:
                    done = pending
                    self._encode(*pending)
                time.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        except Exception:  # noqa: BLE001 - the live view stops; the loop is unaffected
            logger.exception("console preview stopped")
            with self._lock:
                self._detach()

    def _detach(self) -> None:
        self.appliance.remove_frame_observer(self.observe)
        self._thread = None
        self._pending = None
        self._observed.clear()
        logger.debug("console preview idle: observer detached")

    def _encode(self, frame: Any, faces: list[dict], seen_at: float) -> None:
        import cv2

        t0 = time.perf_counter()
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)  # a copy: the loop's frame is never drawn on
        for face in faces:
            x, y, w, h = face["box"]
            colour = STATUS_COLOURS.get(face["status"], (255, 255, 255))
            cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, 2)
            label = f"#{face['track_id']} {face['status']}"
            cv2.putText(bgr, label, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        overlay = {
            "faces": [_plain_face(f) for f in faces],
            "frame": int(frame.index),
            "width": int(frame.image.shape[1]),
            "height": int(frame.image.shape[0]),
            "fps": round(self.fps(), 1),
            "latency_ms": None if self._latency_ms is None else round(self._latency_ms, 1),
            "age_ms": round((time.monotonic() - seen_at) * 1e3, 1),
        }
        self.encode_ms += (time.perf_counter() - t0) * 1e3
        self.encoded += 1
        with self._wake:
            self._jpeg, self._overlay = buf.tobytes(), overlay
            self._version += 1
            self._wake.notify_all()


def _plain_face(face: dict) -> dict:
    """A face for the page: its box, track, status, and the quality and liveness readings."""
    quality = face.get("quality") or None
    if quality is not None:
        quality = {"ok": quality.get("ok"), "failures": quality.get("failures") or []}
    return {
        "box": face["box"],
        "score": face.get("score"),
        "track_id": face["track_id"],
        "status": face["status"],
        "quality": quality,
        "liveness": face.get("liveness"),
    }
