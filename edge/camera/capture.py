"""The capture thread: one `Source` read on its own thread, the newest frame handed to the loop.

Two hand-off modes, chosen from the source and `realtime`:

latest (cameras and streams; files and directories with ``realtime=True``)
    The thread reads as fast as the source gives frames and keeps only the newest one.
    A frame the loop has not taken when the next one arrives is dropped (counted), so a
    slow pipeline works on fresh frames instead of building up lag. A realtime replay is
    released at the file's own pace (frame i at start + i / fps), so it behaves like a
    camera, drops included.

each (files and directories, ``realtime=False``)
    No frame is dropped: the thread decodes one frame ahead and waits until the loop has
    taken it. The replay runs as fast as the pipeline goes and ends the run at its end.

A source that fails to open, raises, or (live) stops giving frames is closed and
reopened with exponential backoff (`backoff`, doubling up to `backoff_max`, reset by
the next good frame). Events (`events()`): ``source_opened`` the first time it opens,
``source_error`` for each failure (with the attempt and the wait before the next one),
``source_reopened`` when frames flow again (attempts, seconds down), ``source_ended`` at
the end of a file or directory. The thread itself never dies of its source. Events are queued here and published by the
loop's own thread, so sinks are only ever called from one thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from edge.camera.base import Frame, Source

Clock = Callable[[], float]


class Capture:
    def __init__(
        self,
        source: Source,
        *,
        realtime: bool = False,
        fps: float = 30.0,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.source = source
        self.realtime = realtime
        self.default_fps = float(fps)
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.clock = clock
        self.wall = wall
        self.handoff = source.finite and not realtime  # "each" mode: never drop
        # counters (read by the loop for its stats; ints are updated under the lock)
        self.produced = 0  # frames read from the source
        self.delivered = 0
        self.dropped = 0
        self.failures = 0
        self.reopens = 0
        self._slot: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._events: deque[dict] = deque()
        self._thread: threading.Thread | None = None

    # --- consumer side ----------------------------------------------------------------

    def start(self) -> Capture:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edge-capture", daemon=True)
            self._thread.start()
        return self

    def next(self, timeout: float | None = None) -> Frame | None:
        """The next frame to process, or None if none came within `timeout` or the source ended."""
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            while self._slot is None:
                if self._ended or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - self.clock()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self.delivered += 1
            self._cond.notify_all()
        if self.handoff:
            frame.captured = self.clock()  # an unpaced replay waits for the loop; its clock starts now
        return frame

    @property
    def ended(self) -> bool:
        """A finite source has given its last frame and the loop has taken it."""
        with self._cond:
            return self._ended and self._slot is None

    def events(self) -> list[dict]:
        """Events since the last call (source errors and recoveries), oldest first."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)  # a driver stuck in read() is left to the daemon thread

    # --- producer side ----------------------------------------------------------------

    def _event(self, kind: str, **fields) -> None:
        self._events.append({"event": kind, "source": self.source.name, "ts": self.wall(), **fields})

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.handoff:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    return
            elif self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def _finish(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _run(self) -> None:
        source = self.source
        is_open = ever_opened = False
        attempt = 0  # failures since the last good frame
        down_since: float | None = None
        fps = self.default_fps
        replayed = 0  # frames of a finite source read so far (its position, across reopens)
        pace_origin: float | None = None  # monotonic time of replay position 0 (realtime)

        def fail(error: str) -> None:
            nonlocal is_open, attempt, down_since, pace_origin
            attempt += 1
            self.failures += 1
            if down_since is None:
                down_since = self.clock()
            delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
            self._event("source_error", error=error, attempt=attempt, retry_in_s=round(delay, 3))
            try:
                source.close()
            except Exception:  # noqa: BLE001 - closing a broken device may fail too
                pass
            is_open = False
            pace_origin = None
            self._stop.wait(delay)

        try:
            while not self._stop.is_set():
                if not is_open:
                    try:
                        source.open()
                    except Exception as exc:  # noqa: BLE001 - any failure is reported and retried
                        fail(f"open: {exc}")
                        continue
                    is_open = True
                    fps = source.fps or self.default_fps
                    if not ever_opened:
                        ever_opened, down_since = True, None
                        self._event("source_opened", fps=round(fps, 3), finite=source.finite)
                try:
                    image = source.read()
                except Exception as exc:  # noqa: BLE001
                    fail(f"read: {exc}")
                    continue
                if image is None:
                    if source.finite:
                        self._event("source_ended", frames=replayed)
                        break
                    fail("read: no frame")
                    continue
                now = self.clock()
                if down_since is not None:  # frames flow again after a failure
                    self.reopens += 1
                    self._event("source_reopened", attempts=attempt, down_s=round(now - down_since, 3))
                attempt, down_since = 0, None
                if source.finite:
                    pts = replayed / fps
                    replayed += 1
                    if self.realtime:
                        if pace_origin is None:
                            pace_origin = now - pts
                        wait = pace_origin + pts - now
                        if wait > 0 and self._stop.wait(wait):
                            break
                        now = self.clock()
                else:
                    pts = now
                self._put(Frame(image, self.produced, pts, now))
                self.produced += 1
        finally:
            try:
                source.close()
            except Exception:  # noqa: BLE001
                pass
            self._finish()


__all__ = ["Capture", "Clock"]
