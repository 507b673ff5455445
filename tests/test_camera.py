"""Camera sources and the capture thread: hand-off modes, pacing, dropped frames, reopening."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edge.camera import (
    Capture,
    DirectorySource,
    OpenCVSource,
    Picamera2Source,
    SourceError,
    mask_url,
    open_source,
)


class ScriptedSource:
    """A fake camera at the hardware boundary: real frames, scripted failures.

    `fail_reads` are read numbers (0-based, counting every read call) that raise;
    `fail_opens` makes the first N opens fail. A live one cycles its frames forever,
    one every `period` seconds, like a camera.
    """

    def __init__(self, frames, *, finite=False, fail_reads=(), fail_opens=0, period=0.0, fps=None):
        self.frames = frames
        self.finite = finite
        self.fps = fps
        self.name = "scripted"
        self.fail_reads = set(fail_reads)
        self.fail_opens = fail_opens
        self.period = period
        self.reads = self.opens = self.position = 0
        self.is_open = False

    def open(self):
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise SourceError("camera unplugged")
        self.is_open = True

    def read(self):
        assert self.is_open
        n = self.reads
        self.reads += 1
        if n in self.fail_reads:
            raise SourceError(f"read {n} failed")
        if self.period:
            time.sleep(self.period)
        if self.finite and self.position >= len(self.frames):
            return None
        frame = self.frames[self.position % len(self.frames)]
        self.position += 1
        return frame

    def close(self):
        self.is_open = False


def numbered(rgb: np.ndarray, count: int) -> list[np.ndarray]:
    """`count` copies of a real photo, each with its number as a grey level in the corner."""
    out = []
    for i in range(count):
        f = rgb.copy()
        f[:48, :48] = 10 + 20 * i
        out.append(f)
    return out


def number_of(frame: np.ndarray) -> int:
    return int(round((float(frame[8:40, 8:40].mean()) - 10) / 20))


def drain(capture: Capture, timeout: float = 5.0):
    frames = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = capture.next(timeout=0.5)
        if f is None:
            if capture.ended:
                break
            continue
        frames.append(f)
    return frames


# --- picking a source ---------------------------------------------------------------------


def test_open_source_picks_the_source_from_the_spec(tmp_path):
    assert isinstance(open_source("picamera2"), Picamera2Source)  # not opened: picamera2 need not exist
    assert open_source("picamera2:1").index == 1
    cam = open_source("0")
    assert isinstance(cam, OpenCVSource) and cam.target == 0 and not cam.finite
    v4l2 = open_source("/dev/video3")
    assert v4l2.backend == cv2.CAP_V4L2 and not v4l2.finite
    stream = open_source("rtsp://admin:hunter2@10.0.0.5/stream1")
    assert not stream.finite and stream.backend == cv2.CAP_FFMPEG
    assert "hunter2" not in stream.name and stream.name == "rtsp://admin:***@10.0.0.5/stream1"
    assert isinstance(open_source(str(tmp_path)), DirectorySource)
    clip = tmp_path / "clip.avi"
    write_clip(clip, [np.zeros((64, 64, 3), np.uint8)] * 2)
    assert open_source(str(clip)).finite
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="unsupported stream scheme"):
        open_source("ftp://user:pw@host/x")


def test_mask_url_hides_passwords_only():
    assert mask_url("http://u:p@h:8080/a?b=c") == "http://u:***@h:8080/a?b=c"
    assert mask_url("rtsp://h/stream") == "rtsp://h/stream"


# --- files and directories -----------------------------------------------------------------


def write_clip(path, frames, fps=12.0):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_a_video_file_gives_rgb_frames_its_fps_and_an_end(tmp_path, astronaut_rgb):
    frames = numbered(astronaut_rgb, 6)
    for f in frames:
        f[100:160, 400:460] = (255, 0, 0)  # pure red in RGB
    write_clip(tmp_path / "c.avi", frames)
    src = OpenCVSource(str(tmp_path / "c.avi"), finite=True)
    src.open()
    assert src.fps == pytest.approx(12.0) and src.frame_count == 6 and (src.width, src.height) == (512, 512)
    got = [src.read() for _ in range(3)]
    assert [number_of(f) for f in got] == [0, 1, 2]
    r, g, b = got[0][110:150, 410:450].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60  # converted to RGB
    src.close()
    src.open()  # a reopened file resumes after the last frame returned
    assert [number_of(src.read()) for _ in range(3)] == [3, 4, 5]
    assert src.read() is None
    src.close()


def test_a_directory_replays_its_images_in_name_order(tmp_path, astronaut_rgb):
    frames = numbered(astronaut_rgb[:256, :256], 4)
    for i, name in enumerate(["b.png", "a.jpg", "c.bmp", "d.png"]):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "e.jpg").write_bytes(b"\xff\xd8 broken")
    src = DirectorySource(tmp_path, fps=10)
    src.open()
    assert [p.name for p in src.files] == ["a.jpg", "b.png", "c.bmp", "d.png", "e.jpg"]
    assert [number_of(src.read()) for _ in range(4)] == [1, 0, 2, 3]
    with pytest.raises(SourceError, match="does not decode"):
        src.read()
    assert src.read() is None


# --- the capture thread --------------------------------------------------------------------


def test_an_unpaced_replay_hands_over_every_frame_to_a_slow_loop(astronaut_rgb):
    source = ScriptedSource(numbered(astronaut_rgb, 8), finite=True, fps=25.0)
    capture = Capture(source, realtime=False).start()
    got = []
    while True:
        f = capture.next(timeout=2)
        if f is None:
            break
        time.sleep(0.02)  # a pipeline slower than the decoder
        got.append(f)
    capture.stop()
    assert [number_of(f.image) for f in got] == list(range(8))
    assert [f.index for f in got] == list(range(8))
    assert [f.pts for f in got] == pytest.approx([i / 25 for i in range(8)])
    assert capture.dropped == 0 and capture.ended
    assert [e["event"] for e in capture.events()] == ["source_opened", "source_ended"]


def test_a_live_source_keeps_only_the_newest_frame(astronaut_rgb):
    source = ScriptedSource(numbered(astronaut_rgb, 10), period=0.005)  # ~200 fps camera
    capture = Capture(source).start()
    got = []
    for _ in range(6):
        f = capture.next(timeout=2)
        assert f is not None
        got.append(f)
        time.sleep(0.05)  # a 20 fps pipeline
    capture.stop()
    indices = [f.index for f in got]
    assert indices == sorted(indices) and indices[-1] - indices[0] > 20  # it skipped ahead
    assert capture.dropped >= indices[-1] - indices[0] - 5
    assert capture.produced >= capture.delivered + capture.dropped - 1
    assert not capture.ended  # a camera never ends


def test_realtime_paces_a_replay_at_its_frame_rate(tmp_path, astronaut_rgb):
    for i, f in enumerate(numbered(astronaut_rgb[:128, :128], 10)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    capture = Capture(DirectorySource(tmp_path, fps=20), realtime=True).start()
    start = time.monotonic()
    got = drain(capture)
    elapsed = time.monotonic() - start
    capture.stop()
    assert len(got) == 10 and capture.dropped == 0
    assert 0.4 <= elapsed < 1.5  # 10 frames at 20 fps: the last is released at 0.45 s
    assert [f.pts for f in got] == pytest.approx([i / 20 for i in range(10)])
    gaps = np.diff([f.captured for f in got])
    assert gaps.mean() == pytest.approx(0.05, abs=0.015)


def test_a_realtime_replay_drops_frames_a_slow_loop_cannot_take(tmp_path, astronaut_rgb):
    for i, f in enumerate(numbered(astronaut_rgb[:128, :128], 12)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    capture = Capture(DirectorySource(tmp_path, fps=50), realtime=True).start()
    got = []
    while (f := capture.next(timeout=2)) is not None:
        got.append(f)
        time.sleep(0.06)  # ~16 fps pipeline against a 50 fps replay
    capture.stop()
    assert capture.dropped > 0 and len(got) + capture.dropped == 12
    assert got[-1].index == 11  # the newest frame is never the one dropped


def test_a_failing_source_is_reopened_with_backoff_and_reported(astronaut_rgb):
    frames = numbered(astronaut_rgb, 10)
    source = ScriptedSource(frames, finite=True, fail_opens=2, fail_reads={4, 5}, fps=30.0)
    capture = Capture(source, backoff=0.01, backoff_max=0.05).start()
    got = drain(capture)
    capture.stop()
    events = capture.events()
    kinds = [e["event"] for e in events]
    assert kinds == [
        "source_error",  # open 1
        "source_error",  # open 2
        "source_opened",
        "source_error",  # read 4
        "source_error",  # read 5, right after reopening
        "source_reopened",
        "source_ended",
    ]
    errors = [e for e in events if e["event"] == "source_error"]
    assert [e["retry_in_s"] for e in errors] == [0.01, 0.02, 0.01, 0.02]  # doubles, reset by a good frame
    assert "camera unplugged" in errors[0]["error"] and "read 4 failed" in errors[2]["error"]
    assert events[5]["attempts"] == 2 and events[5]["down_s"] >= 0.0
    assert [number_of(f.image) for f in got] == list(range(10))  # the replay resumed where it failed
    assert capture.failures == 4 and capture.reopens == 1


def test_a_live_source_that_stops_giving_frames_is_reopened(astronaut_rgb):
    class Stalls(ScriptedSource):
        def read(self):
            frame = super().read()
            return None if 3 <= self.reads <= 4 else frame  # two empty reads: a stalled camera

    capture = Capture(Stalls(numbered(astronaut_rgb, 3), period=0.002), backoff=0.01).start()
    got = [capture.next(timeout=2) for _ in range(8)]
    capture.stop()
    assert all(f is not None for f in got)
    events = capture.events()
    errors = [e for e in events if e["event"] == "source_error"]
    assert [e["error"] for e in errors] == ["read: no frame"] * 2 and capture.failures == 2
    assert [e["event"] for e in events].count("source_reopened") == 1


def test_stop_ends_a_capture_waiting_for_a_slow_loop(astronaut_rgb):
    capture = Capture(ScriptedSource(numbered(astronaut_rgb, 5), finite=True), realtime=False).start()
    time.sleep(0.05)  # the thread has decoded one frame ahead and waits for the loop
    start = time.monotonic()
    capture.stop()
    assert time.monotonic() - start < 1.0
    assert capture.next(timeout=0.1) is not None or capture.ended
