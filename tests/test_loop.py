"""The appliance loop end to end: real photos replayed as camera frames through the real engine.

Replays are built from lfw-dev (../shared) when present: one enrolled person seen in
photos that were not enrolled, a stranger, both at the door together. Without it they
come from scikit-image's photos (astronaut enrolled and replayed transformed; the
cameraman as the stranger). Frames are 640×480, the photo pasted with a little jitter.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.app import appliance_from_config, engine_from_config
from edge.appliance.loop import Appliance
from edge.appliance.notify import Notifier
from edge.camera import DirectorySource, SourceError
from edge.config import Config, config_from_dict
from edge.matching import Gallery
from edge.sinks import Sink

ENROLLED, SECOND, STRANGER = "Tony_Blair", "Colin_Powell", "Hugo_Chavez"
FPS = 15.0


class ListSink(Sink):
    name = "list"

    def __init__(self):
        self.verdicts, self.events, self.closed = [], [], False

    def publish(self, verdict):
        self.verdicts.append(verdict)

    def event(self, event):
        self.events.append(event)

    def close(self):
        self.closed = True

    def decisions(self):
        return [(v.decision, v.name) for v in self.verdicts]


@dataclass
class People:
    enrol: dict  # name → [RGB photo]
    visitor: str  # an enrolled person ...
    visits: list  # ... in photos that were not enrolled
    strangers: list  # someone not enrolled
    no_face: list
    scale: float  # photo → frame


def rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def people(request) -> People:
    skdata = pytest.importorskip("skimage.data")
    no_face = [skdata.coffee(), skdata.rocket(), np.full((300, 300, 3), 128, np.uint8)]
    try:
        shared = request.getfixturevalue("shared_dir")
    except pytest.skip.Exception:
        shared = None
    if shared is not None:
        lfw = shared / "lfw-dev" / "images"

        def photos(name, numbers):
            return [rgb(lfw / name / f"{name}_{i:04d}.jpg") for i in numbers]

        return People(
            # Not Tony_Blair_0001: a second, cut-off face at its left edge scores 0.499 against the
            # short-range detector's 0.5, and crossed it on arm64, where enrolment then (rightly)
            # refused the photo. The test is about the loop, not that photo's border case.
            enrol={ENROLLED: photos(ENROLLED, [2, 7]), SECOND: photos(SECOND, [1, 2])},
            visitor=ENROLLED,
            visits=photos(ENROLLED, [3, 4, 5]),
            strangers=photos(STRANGER, [1, 2, 3]),
            no_face=no_face,
            scale=1.6,
        )
    astronaut = np.ascontiguousarray(skdata.astronaut()[..., :3])
    brighter = cv2.convertScaleAbs(astronaut, alpha=1.1, beta=10)
    camera = np.repeat(skdata.camera()[..., None], 3, axis=2)
    return People({"astronaut": [astronaut]}, "astronaut", [astronaut, brighter], [camera], no_face, 1.0)


def scene(photo: np.ndarray, rng, scale: float, centre=(320, 240)) -> np.ndarray:
    """The photo pasted into a 640×480 frame, a little moved and resized (someone at the door)."""
    canvas = np.full((480, 640, 3), 96, np.uint8)
    return paste(canvas, photo, rng, scale, centre)


def paste(canvas, photo, rng, scale, centre):
    s = scale * rng.uniform(0.97, 1.03)
    img = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)))
    h, w = img.shape[:2]
    x = int(centre[0] - w // 2 + rng.integers(-8, 9))
    y = int(centre[1] - h // 2 + rng.integers(-5, 6))
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    canvas[y0:y1, x0:x1] = img[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


def frames_of(photos, scale, per_photo=12, seed=0):
    rng = np.random.default_rng(seed)
    return [scene(p, rng, scale) for p in photos for _ in range(per_photo)]


def write_dir(path: Path, frames) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(path / f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def write_clip(path: Path, frames, fps=FPS) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def test_config(**sections) -> Config:
    base = {"vault": {"path": ""}, "audit": {"path": ""}, "camera": {"fps": FPS}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return config_from_dict(base)


test_config.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def engine():
    return engine_from_config(Config())  # accurate profile, cascade detector


@pytest.fixture(scope="module")
def gallery(engine, people):
    names, templates = [], []
    for name, photos in people.enrol.items():
        for photo in photos:
            faces = engine.faces(photo, max_faces=1)
            assert faces, f"no face in an enrolment photo of {name}"
            names.append(name)
            templates.append(faces[0].embedding)
    return Gallery.from_embeddings(names, np.stack(templates))


def run(engine, gallery, source, config=None, **kwargs):
    sink = ListSink()
    app = Appliance(engine, gallery, source, config=config or test_config(), sinks=[sink], **kwargs)
    stats = app.run(handle_signals=False)
    return sink, stats, app


# --- what the issue asks ----------------------------------------------------------------------


def test_an_enrolled_person_is_granted_exactly_once(engine, gallery, people, tmp_path):
    frames = frames_of(people.visits, people.scale)
    sink, stats, _ = run(engine, gallery, DirectorySource(write_dir(tmp_path / "f", frames), fps=FPS))
    assert sink.decisions() == [("granted", people.visitor)]
    v = sink.verdicts[0]
    assert v.seq == 1 and v.device_id == Config().device_id
    assert 0.7 <= v.score <= 1.0 and v.fpir <= 1e-4 and v.threshold == 0.7
    assert v.score <= v.verification_score and v.far <= v.fpir  # gallery-aware: never more lenient than 1:1
    assert v.frames_used >= 3 and v.frame_index >= 2
    x, y, w, h = v.rect
    assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 and w >= 60
    assert v.first_seen <= v.frame_time <= v.decided and v.latency_ms > 0
    d = v.to_dict()
    listed = {"device_id", "seq", "decision", "name", "score", "fpir", "verification_score", "far", "frames_used"}
    listed |= {"rect", "quality", "timestamps"}
    assert listed <= d.keys()
    assert stats["frames"] == len(frames) and stats["dropped"] == 0 and stats["verdicts"]["granted"] == 1
    assert sink.closed and [e["event"] for e in sink.events][-1] == "stopped"


def test_a_stranger_is_never_granted(engine, gallery, people, tmp_path):
    frames = frames_of(people.strangers, people.scale)
    sink, stats, _ = run(engine, gallery, DirectorySource(write_dir(tmp_path / "f", frames), fps=FPS))
    assert "granted" not in [d for d, _ in sink.decisions()]
    assert all(v.name is None for v in sink.verdicts)
    if stats["identified"] >= 10:  # the face was seen and identified: one unknown, one denied, per track
        tracks = {v.track_id for v in sink.verdicts}
        assert sorted(d for d, _ in sink.decisions()) == sorted(["unknown", "denied"] * len(tracks))


def test_no_face_gives_no_verdict(engine, gallery, people, tmp_path):
    frames = frames_of(people.no_face, 1.0, per_photo=10)
    sink, stats, _ = run(engine, gallery, DirectorySource(write_dir(tmp_path / "f", frames), fps=FPS))
    assert sink.verdicts == [] and stats["faces"] == 0 and stats["frames"] == len(frames)


def test_detections_below_min_score_are_not_faces(engine, gallery):
    skdata = pytest.importorskip("skimage.data")
    cat = scene(skdata.chelsea(), np.random.default_rng(0), 1.0)  # BlazeFace sees a face here, at ~0.55
    assert 0.5 < max(d.score for d in engine.detector.detect(cat)) < 0.6
    frames = [cat] * 12
    _, stats, _ = run(engine, gallery, FlakyCamera(frames, ()))
    assert stats["faces"] == 0
    _, stats, _ = run(engine, gallery, FlakyCamera(frames, ()), test_config(quality={"min_score": 0.0}))
    assert stats["faces"] >= 12  # every frame has at least one (weak) detection


class FlakyCamera:
    """A camera that fails mid-run (read errors, a failed reopen), then works again; real frames."""

    def __init__(self, frames, fail_reads, fail_open_after_first=1):
        self.frames, self.fail_reads = frames, set(fail_reads)
        self.name, self.finite, self.fps = "flaky", True, FPS
        self.position = self.reads = self.opens = 0
        self.fail_open_after_first = fail_open_after_first

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.fail_open_after_first:
            raise SourceError("device busy")

    def read(self):
        self.reads += 1
        if self.reads in self.fail_reads:
            raise SourceError("USB disconnect")
        if self.position >= len(self.frames):
            return None
        self.position += 1
        return self.frames[self.position - 1]

    def close(self):
        pass


def test_a_source_failing_mid_run_is_reopened_and_the_loop_goes_on(engine, gallery, people):
    frames = frames_of(people.visits, people.scale)
    config = test_config(camera={"reopen_backoff": 0.01, "reopen_backoff_max": 0.05})
    sink, stats, _ = run(engine, gallery, FlakyCamera(frames, fail_reads={6, 7, 20}), config)
    kinds = [e["event"] for e in sink.events]
    assert kinds.count("source_error") == 4  # reads 6 and 7, the failed reopen, read 20
    assert kinds.count("source_reopened") == 2
    errors = [e for e in sink.events if e["event"] == "source_error"]
    assert {"USB disconnect" in e["error"] or "device busy" in e["error"] for e in errors} == {True}
    assert all(e["device_id"] and e["ts"].endswith("Z") for e in sink.events)
    assert stats["frames"] == len(frames) and stats["source_reopens"] == 2 and stats["source_errors"] == 4
    assert sink.decisions() == [("granted", people.visitor)]


def test_a_frame_that_breaks_a_stage_does_not_end_the_run(engine, gallery, people, caplog):
    frames = frames_of(people.visits[:1], people.scale, per_photo=6)
    frames.insert(2, np.zeros((480, 640), np.float32))  # not an RGB uint8 frame
    source = FlakyCamera(frames, fail_reads=(), fail_open_after_first=0)
    sink, stats, _ = run(engine, gallery, source)
    assert stats["frame_errors"] == 1 and stats["frames"] == len(frames) - 1
    assert sink.decisions() == [("granted", people.visitor)]
    errors = [r for r in caplog.records if r.name == "edge.appliance.loop" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage().startswith("frame 2: ")


def test_a_decided_face_is_only_re_identified_every_few_frames(engine, gallery, people, tmp_path):
    frames = frames_of(people.visits[:1], people.scale, per_photo=60)
    config = test_config(decision={"recheck_every": 15})
    sink, stats, _ = run(engine, gallery, DirectorySource(write_dir(tmp_path / "f", frames), fps=FPS), config)
    granted_at = sink.verdicts[0].frame_index
    assert stats["identified"] <= granted_at + 1 + (len(frames) - granted_at) // 15 + 1
    assert stats["faces"] == len(frames)  # but it is detected and tracked on every frame
    assert stats["stages_ms"]["detect"]["n"] == len(frames) and stats["stages_ms"]["identify"]["n"] < len(frames) / 4


def _process(app: Appliance, frames) -> list:
    from edge.camera.base import Frame

    verdicts = []
    for i, image in enumerate(frames):
        verdicts += app.process(Frame(image, i, i / FPS, time.monotonic()))
    return verdicts


def test_the_grant_rests_on_the_tracks_mean_embedding(engine, gallery, people):
    """Evidence "mean" (the default): the granted score is the gallery's answer for the mean of the
    track's frames, and at least k frames of one face went into it."""
    app = Appliance(engine, gallery, None, config=test_config(), sinks=[])
    assert app.policy.evidence == "mean"
    frames = frames_of(people.visits[:1], people.scale, per_photo=12)
    from edge.camera.base import Frame

    for i, image in enumerate(frames):
        (granted,) = app.process(Frame(image, i, i / FPS, time.monotonic())) or (None,)
        if granted is not None:
            break
    assert granted is not None and granted.decision == "granted" and granted.name == people.visitor
    (track,) = app.tracker.tracks
    held = track.data["evidence"]
    assert granted.frames_used == len(held) >= 3
    (m,) = engine.match(held.mean(), gallery)
    assert m.candidate == people.visitor and granted.score == pytest.approx(m.score)


def test_counting_frames_is_still_a_choice(engine, gallery, people):
    config = test_config(decision={"evidence": "count"})
    app = Appliance(engine, gallery, None, config=config, sinks=[])
    assert app.policy.evidence == "count"
    verdicts = _process(app, frames_of(people.visits[:1], people.scale, per_photo=12))
    assert [(v.decision, v.name) for v in verdicts] == [("granted", people.visitor)]


def _face_in_place(engine, photo, width: float, centre=(320.0, 240.0), seed: int = 0) -> np.ndarray:
    """A 640×480 frame with `photo` scaled so its largest face is `width` px wide and centred at
    `centre` (so two people's frames put their faces in the same spot)."""
    x, y, w, h = engine.faces(photo, max_faces=1, quality=False)[0].rect
    s = width / w
    img = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
    left, top = int(round(centre[0] - (x + w / 2) * s)), int(round(centre[1] - (y + h / 2) * s))
    canvas = np.clip(np.random.default_rng(seed).normal(96, 3, (480, 640, 3)), 0, 255).astype(np.uint8)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + img.shape[1], 640), min(top + img.shape[0], 480)
    canvas[y0:y1, x0:x1] = img[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


def test_a_face_that_takes_over_a_track_brings_no_borrowed_evidence(engine, gallery, people):
    """Two frames of an enrolled person (one short of a grant), then a stranger's face in the same
    spot: the tracker keeps the track, but the evidence starts afresh, and nobody is granted. (The
    gate is off here so that every frame is identified: this is about the evidence.)"""
    config = test_config(decision={"k": 3, "n": 5}, quality={"gate": False})
    app = Appliance(engine, gallery, None, config=config, sinks=[])
    frames = [_face_in_place(engine, people.visits[0], 120, seed=i) for i in range(2)]
    frames += [_face_in_place(engine, people.strangers[0], 120, seed=i) for i in range(2, 12)]
    verdicts = _process(app, frames[:2])
    (track,) = app.tracker.tracks
    assert verdicts == [] and len(track.data["evidence"]) == 2
    verdicts = _process(app, frames[2:])
    assert "granted" not in [v.decision for v in verdicts]
    assert app.tracker.tracks == [track]  # the same track throughout
    held = track.data["evidence"]
    assert held.resets >= 1 and app.counts["identified"] == 12
    visitor = engine.faces(people.visits[0], max_faces=1)[0].embedding
    mean = held.mean()
    assert mean is None or float(engine.score(float(mean @ visitor))) < 0.5  # none of the visitor's frames


@pytest.mark.parametrize("face_px", [36, 44])
def test_a_far_enrolled_face_is_granted(engine, astronaut_rgb, face_px):
    """A face 36–44 px wide in 640×480 frames (~2–2.5 m from a 60° camera): found by the tiled
    full-range pass, located again on a tight crop, let through by the size rules, granted.
    (Before: 36 px was never detected; 44 px was detected but refused by the gate.)"""
    (face,) = engine.faces(astronaut_rgb, max_faces=1)
    gallery = Gallery.from_embeddings(["astronaut"], face.embedding[None])
    scale = face_px / 94.0  # her face box is ~94 px wide in the photo
    small = cv2.resize(astronaut_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(20):
        frame = np.clip(rng.normal(110, 5, (480, 640, 3)), 0, 255).astype(np.uint8)
        x0, y0 = 380 + int(rng.integers(-3, 4)), 200 + int(rng.integers(-2, 3))
        frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
        frames.append(frame)
    app = Appliance(engine, gallery, None, config=test_config(), sinks=[])
    verdicts = _process(app, frames)
    assert [(v.decision, v.name) for v in verdicts] == [("granted", "astronaut")]
    assert verdicts[0].rect[2] < 60


def test_two_people_at_the_door_are_two_tracks(engine, gallery, people, shared_dir):
    rng = np.random.default_rng(3)
    frames = []
    for i in range(36):
        canvas = np.full((480, 640, 3), 96, np.uint8)
        paste(canvas, people.visits[i // 12], rng, 1.15, (170, 240))
        paste(canvas, people.strangers[i // 12], rng, 1.15, (470, 240))
        frames.append(canvas)
    sink, stats, _ = run(engine, gallery, FlakyCamera(frames, fail_reads=(), fail_open_after_first=0))
    by_track = {}
    for v in sink.verdicts:
        by_track.setdefault(v.track_id, []).append((v.decision, v.name))
    assert sorted(by_track.values()) == [[("granted", people.visitor)], [("unknown", None), ("denied", None)]]


def test_the_sequence_continues_from_the_audit_log(engine, gallery, people, tmp_path):
    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps({"type": "verdict", "seq": 41}) + "\n")
    frames = frames_of(people.visits, people.scale)
    config = test_config(audit={"path": str(audit)}, sinks={"stdout": False})
    app = appliance_from_config(config, engine=engine, gallery=gallery, source=FlakyCamera(frames, ()))
    stats = app.run(handle_signals=False)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    verdicts = [r for r in records if r["type"] == "verdict"]
    assert [r["seq"] for r in verdicts] == [41, 42] and verdicts[1]["decision"] == "granted"
    assert [r["event"] for r in records if r["type"] == "event"][::2][:1] == ["started"]
    assert records[-1]["event"] == "stopped" and stats["last_seq"] == 42


def test_the_sequence_survives_a_megabyte_of_events_and_a_lost_counter(engine, gallery, people, tmp_path):
    """Restarts as `edge run` makes them (appliance_from_config on the same audit path): after
    ≥ 1 MB of source errors that rotated every verdict out of the log, the counter (audit.seq)
    carries the numbering on; after another megabyte, in one file, with audit.seq deleted,
    the log read back past the megabyte does."""
    from edge.sinks import AuditLogSink

    audit = tmp_path / "audit.jsonl"
    frames = frames_of(people.visits[:1], people.scale)

    def restart(max_bytes: int) -> list[int]:
        config = test_config(audit={"path": str(audit), "max_bytes": max_bytes, "backups": 2}, sinks={"stdout": False})
        app = appliance_from_config(config, engine=engine, gallery=gallery, source=FlakyCamera(frames, ()))
        app.run(handle_signals=False)
        files = sorted(tmp_path.glob("audit.jsonl*"))
        return [r["seq"] for f in files for r in map(json.loads, f.read_text().splitlines()) if r["type"] == "verdict"]

    def outage(max_bytes: int) -> None:  # the camera gone for hours: megabytes of source errors
        log = AuditLogSink(audit, max_bytes=max_bytes, backups=2)
        for i in range(4000):
            log.event({"type": "event", "event": "source_error", "n": i, "error": "read: no frame " + "x" * 250})
        log.close()

    assert restart(64 * 1024) == [1]
    outage(64 * 1024)
    assert restart(64 * 1024) == [2]  # every earlier verdict rotated away: audit.seq answers
    outage(64 * 1024)
    for f in tmp_path.glob("audit.jsonl*"):
        f.unlink()
    assert restart(16 * 1024 * 1024) == [3]
    outage(16 * 1024 * 1024)
    assert audit.stat().st_size > 1_000_000
    (tmp_path / "audit.seq").unlink()
    assert restart(16 * 1024 * 1024) == [3, 4]  # no counter: the verdict a megabyte back answers


def run_with_a_reload(engine, gallery, people, reload_gallery):
    """A short run with a SIGHUP-style reload asked for before the first frame."""
    source = FlakyCamera(frames_of(people.visits[:1], people.scale, 3), ())
    app = Appliance(engine, gallery, source, reload_gallery=reload_gallery, config=test_config())
    app.reload()
    sink = ListSink()
    app.sinks = [sink]
    app.run(handle_signals=False)
    return app, sink


def test_sighup_reloads_the_enrolments(engine, gallery, people):
    reloads = []

    def reload_gallery():
        reloads.append(1)
        return Gallery.from_embeddings(["x"], gallery.columns.T[:1])

    app, sink = run_with_a_reload(engine, gallery, people, reload_gallery)
    assert reloads == [1] and app.gallery.people == ["x"]
    assert [e.get("people") for e in sink.events if e["event"] == "reloaded"] == [1]


def test_a_failed_reload_keeps_the_enrolments(engine, gallery, people):
    def reload_gallery():
        raise OSError("vault unreadable")

    app, sink = run_with_a_reload(engine, gallery, people, reload_gallery)
    assert app.gallery is gallery and "reload_failed" in [e["event"] for e in sink.events]


def test_systemd_gets_ready_watchdog_and_stopping(engine, gallery, people, tmp_path):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.1)
    messages: list[str] = []

    def listen():
        while True:
            try:
                data = server.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            messages.append(data.decode())
            if data.startswith(b"STOPPING=1"):
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # ping every 50 ms
    frames = frames_of(people.visits[:1], people.scale, per_photo=12)
    config = test_config(camera={"realtime": True, "fps": 30.0})
    source = DirectorySource(write_dir(tmp_path / "f", frames), fps=30.0)  # 0.4 s of frames
    run(engine, gallery, source, config, notifier=notifier)
    listener.join(2)
    server.close()
    assert messages[0].startswith("READY=1")
    assert messages[-1].startswith("STOPPING=1")
    # About 8 pings in 0.4 s here; the loop pings between frames, so a machine that takes longer
    # than the interval per frame (arm64 under qemu: 3) pings less often. More than one proves it repeats.
    assert messages.count("WATCHDOG=1") >= 2


# --- `edge run` -------------------------------------------------------------------------------


def write_gallery(root: Path, people: People) -> Path:
    for name, photos in people.enrol.items():
        (root / name).mkdir(parents=True)
        for i, photo in enumerate(photos):
            cv2.imwrite(str(root / name / f"{i}.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    return root


def write_config(path: Path, **sections) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def edge_run(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    return [sys.executable, "-m", "edge.cli", "run", *args], env


@pytest.mark.slow
def test_edge_run_replays_a_clip_and_prints_verdicts_then_stats(people, tmp_path, repo_root):
    frames = frames_of(people.visits, people.scale)
    clip = write_clip(tmp_path / "door.avi", frames)
    audit = tmp_path / "log" / "audit.jsonl"
    config = write_config(
        tmp_path / "edge.toml",
        device={"id": "door-7"},
        camera={"source": "/nonexistent.avi"},  # replaced by --source
        vault={"path": ""},
        gallery={"path": str(write_gallery(tmp_path / "gallery", people))},
        audit={"path": str(audit)},
    )
    cmd, env = edge_run("--config", str(config), "--source", str(clip))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_root, env=env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["type"] for r in records][-1] == "stats"
    verdicts = [r for r in records if r["type"] == "verdict"]
    assert [(v["decision"], v["name"], v["device_id"]) for v in verdicts] == [("granted", people.visitor, "door-7")]
    stats = records[-1]
    assert stats["frames"] == len(frames) and stats["reason"] == "end of source" and stats["verdicts"]["granted"] == 1
    for key in ("fps", "dropped", "latency_ms", "verdict_latency_ms", "stages_ms", "first_frame_s", "peak_rss_mb"):
        assert key in stats
    assert {"p50", "p99"} <= stats["latency_ms"].keys() and {"detect", "identify"} <= stats["stages_ms"].keys()
    logged = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r for r in logged if r["type"] == "verdict"] == verdicts
    assert logged[-1]["event"] == "stopped"


@pytest.mark.slow
def test_sigterm_stops_edge_run_cleanly_and_flushes_the_sinks(people, tmp_path, repo_root):
    frames = write_dir(tmp_path / "frames", frames_of(people.visits, people.scale, per_photo=40))  # 8 s at 15 fps
    audit = tmp_path / "audit.jsonl"
    config = write_config(
        tmp_path / "edge.toml",
        camera={"source": str(frames), "fps": FPS, "realtime": True},
        vault={"path": ""},
        gallery={"path": str(write_gallery(tmp_path / "gallery", people))},
        audit={"path": str(audit)},
    )
    cmd, env = edge_run("--config", str(config))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo_root, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(json.loads(line))
            if lines[-1].get("type") == "verdict":
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    tail = [json.loads(line) for line in out.splitlines()]
    stats = tail[-1]
    assert stats["type"] == "stats" and stats["reason"] == "signal SIGTERM"
    assert 0 < stats["frames"] < 40 * len(people.visits) and stats["verdicts"]["granted"] == 1
    logged = [json.loads(line) for line in audit.read_text().splitlines()]
    assert logged[-1]["event"] == "stopped" and logged[-1]["reason"] == "signal SIGTERM"
    assert [r["decision"] for r in logged if r["type"] == "verdict"] == ["granted"]


def test_edge_run_with_a_vault(engine, people, tmp_path):
    vault_mod = pytest.importorskip("edge.vault", reason="the enrolment vault is not in this build")
    vault = vault_mod.Vault.init(tmp_path / "vault")
    for name, photos in people.enrol.items():
        encoded = [cv2.imencode(".png", cv2.cvtColor(p, cv2.COLOR_RGB2BGR))[1].tobytes() for p in photos]
        vault_mod.enroll(engine, vault, name.replace("_", " "), encoded)
    config = replace(test_config(), vault=replace(Config().vault, path=str(tmp_path / "vault")))
    frames = frames_of(people.visits, people.scale)
    sink = ListSink()
    app = appliance_from_config(config, engine=engine, source=FlakyCamera(frames, ()), sinks=[sink])
    assert app.gallery.people == sorted(n.replace("_", " ") for n in people.enrol)
    app.run(handle_signals=False)
    assert sink.decisions() == [("granted", people.visitor.replace("_", " "))]


def test_a_vault_that_is_not_there_is_a_config_error(engine, tmp_path):
    from edge.config import ConfigError

    config = replace(Config(), vault=replace(Config().vault, path=str(tmp_path / "none")))
    with pytest.raises(ConfigError) as err:
        appliance_from_config(config, engine=engine, source=FlakyCamera([], ()))
    assert err.value.key == "vault.path"


def test_first_frame_timing_is_measured_from_process_start():
    from edge.appliance.metrics import process_age

    age = process_age()
    assert 0 < age < time.monotonic()  # this process started before now, after boot


def test_notify_speaks_the_protocol_on_an_abstract_socket_and_honours_watchdog_pid():
    name = f"edge-test-{os.getpid()}-{time.monotonic_ns()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(1)
    clock = [100.0]
    n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000"}, clock=lambda: clock[0])
    assert n.enabled and n.watchdog_interval == 1.0
    n.ready("running")
    assert server.recv(100) == b"READY=1\nSTATUS=running"
    n.watchdog()
    assert server.recv(100) == b"WATCHDOG=1"
    clock[0] += 0.5
    n.watchdog()  # too early: nothing sent
    clock[0] += 0.6
    n.watchdog()
    assert server.recv(100) == b"WATCHDOG=1"
    n.stopping()
    assert server.recv(100) == b"STOPPING=1"
    server.close()
    n.send("STATUS=nobody listens")  # a vanished systemd is never an error
    other = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None  # the watchdog is some other process's
    silent = Notifier({})
    assert not silent.enabled and silent.send("READY=1") is False


def test_quality_rejects_are_one_event_per_track(engine, gallery, people, tmp_path):
    """A face the quality stage rejects (here: very dark) is not identified, and says so once per track."""
    frames = [(f.astype(np.float32) * 0.12).astype(np.uint8) for f in frames_of(people.visits[:1], people.scale, 8)]
    sink, stats, _ = run(engine, gallery, DirectorySource(write_dir(tmp_path / "f", frames), fps=FPS))
    if stats["faces"] == 0:
        pytest.skip("the darkened face is not even detected; nothing for the quality gate to judge")
    rejects = [e for e in sink.events if e["event"] == "quality_rejected"]
    assert stats["quality_rejected"] >= 2 and sink.verdicts == []
    assert 1 <= len(rejects) <= len({e["track_id"] for e in rejects}) and rejects[0]["failures"]


def test_a_signal_during_a_natural_stop_is_the_first_signal(engine, gallery):
    """Found on arm64 under qemu: SIGTERM after the replay ended on its own gave exit 130."""
    app = Appliance(engine, gallery, FlakyCamera([], ()), config=test_config())
    app.stop("end of source")
    app._on_signal(signal.SIGTERM, None)  # the first signal: no KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        app._on_signal(signal.SIGTERM, None)


# --- track integrity and tailgating ---------------------------------------------------------------


def _judged(engine, photo) -> bool:
    """Whether the quality gate lets this photo's face be judged at all."""
    faces = engine.faces(photo, max_faces=1)
    return bool(faces and faces[0].quality and faces[0].quality.get("ok"))


def _needs_a_judged_stranger(engine, people):
    if not _judged(engine, people.strangers[0]):
        pytest.skip(
            "needs a stranger whose face passes the quality gate (lfw-dev, ../shared/data); "
            "scikit-image's cameraman fails it for his pose"
        )


def _events(sink, kind):
    return [e for e in sink.events if e["event"] == kind]


def _in_place(engine, photo, n, start=0, width=120):
    return [_face_in_place(engine, photo, width, seed=start + i) for i in range(n)]


def _blank(n, start=0):
    noise = (np.random.default_rng(1000 + start + i).normal(96, 3, (480, 640, 3)) for i in range(n))
    return [np.clip(x, 0, 255).astype(np.uint8) for x in noise]


def _run_frames(engine, gallery, frames, config):
    sink = ListSink()
    app = Appliance(engine, gallery, None, config=config, sinks=[sink])
    for i, image in enumerate(frames):
        from edge.camera.base import Frame

        app.process(Frame(image, i, i / FPS, time.monotonic()))
    for event in app.guard.close():
        app._tailgate(event)
    return sink, app


@pytest.mark.parametrize("gap", [0, 5])
def test_a_stranger_who_takes_a_granted_place_gets_no_grant_but_unknown_and_denied(engine, gallery, people, gap):
    """The enrolled person is granted; a stranger steps into the same spot, at the same size, 0 or 5
    frames later. The tracker keeps the track, but the change (the face looks different, or was
    gone) has it re-checked at once, the re-checks no longer name the granted person, and the track
    is split: the stranger is decided from scratch. Timed re-checks are off here, so only that can
    catch the swap."""
    config = test_config(decision={"recheck_every": 100_000, "recheck_s": 3600.0})
    frames = _in_place(engine, people.visits[0], 15) + _blank(gap) + _in_place(engine, people.strangers[0], 25, 100)
    sink, app = _run_frames(engine, gallery, frames, config)
    swap = 15 + gap
    before = [(v.decision, v.name) for v in sink.verdicts if v.frame_index < swap]
    after = [v for v in sink.verdicts if v.frame_index >= swap]
    assert before == [("granted", people.visitor)]
    (split,) = _events(sink, "track_split")
    assert split["was"] == "granted" and split["track_id"] == sink.verdicts[0].track_id
    assert swap <= split["frame_index"] <= swap + 6
    if _judged(engine, people.strangers[0]):
        assert [v.decision for v in after] == ["unknown", "denied"]
        assert {v.track_id for v in after} == {split["new_track_id"]}
    else:  # scikit-image's cameraman: his face fails the gate, so he is never decided, and keeps nothing
        assert after == [] and split["reason"] == "cannot be verified"
    assert app.counts["rechecks_triggered"] >= 1
    (tailgate,) = _events(sink, "tailgate")  # and it happened while the door was open
    assert tailgate["track_id"] == split["new_track_id"] and tailgate["granted"][0]["name"] == people.visitor


def test_the_enrolled_person_after_a_stranger_is_granted_as_fast_as_one_alone(engine, gallery, people):
    _needs_a_judged_stranger(engine, people)
    config = test_config()
    alone, _ = _run_frames(engine, gallery, _in_place(engine, people.visits[0], 12), config)
    (granted,) = alone.verdicts
    frames = _in_place(engine, people.strangers[0], 15, 100) + _in_place(engine, people.visits[0], 12)
    sink, _ = _run_frames(engine, gallery, frames, config)
    assert [v.decision for v in sink.verdicts] == ["unknown", "denied", "granted"]
    assert abs((sink.verdicts[-1].frame_index - 15) - granted.frame_index) <= 2
    assert _events(sink, "track_split")[0]["was"] == "denied"


def _side_by_side(people, n, left, right, seed=3):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        canvas = np.full((480, 640, 3), 96, np.uint8)
        photo = left[i * len(left) // n]
        paste(canvas, photo, rng, 1.15 * 250 / photo.shape[1], (170, 240))  # as an LFW photo (250 px) at ×1.15
        if right:
            photo = right[i * len(right) // n]
            paste(canvas, photo, rng, 1.15 * 250 / photo.shape[1], (470, 240))
        frames.append(canvas)
    return frames


def test_a_grant_while_a_stranger_is_in_view_raises_tailgate(engine, gallery, people):
    # one visit photo: without ../shared the second is the astronaut re-lit, overexposed enough to
    # fail the gate just after an abrupt change, which splits her track ("cannot be verified"), and
    # an unverified face while the door is open is flagged too
    frames = _side_by_side(people, 24, people.visits[:1], people.strangers)
    sink, app = _run_frames(engine, gallery, frames, test_config())
    assert ("granted", people.visitor) in sink.decisions()
    (event,) = _events(sink, "tailgate")
    granted_track = next(v.track_id for v in sink.verdicts if v.decision == "granted")
    assert event["track_id"] != granted_track and not event["withheld"]
    # a stranger the gate lets through is unknown/denied at once; one it refuses (scikit-image's
    # cameraman) is flagged when the door closes, never decided
    assert event["status"] in (("unknown", "denied") if _judged(engine, people.strangers[0]) else ("undecided",))
    assert event["granted"][0]["name"] == people.visitor and app.stats()["tailgate"] == 1


def test_withhold_keeps_the_door_shut_until_the_stranger_is_gone(engine, gallery, people):
    config = test_config(decision={"tailgate": "withhold"})
    together = _side_by_side(people, 20, people.visits, people.strangers)
    frames = together + _side_by_side(people, 12, people.visits, [], seed=4)
    sink, _ = _run_frames(engine, gallery, frames, config)
    grants = [v for v in sink.verdicts if v.decision == "granted"]
    assert [v.name for v in grants] == [people.visitor] and grants[0].frame_index >= 20
    withheld = [e for e in _events(sink, "tailgate") if e["withheld"]]
    assert len(withheld) == 1 and withheld[0]["name"] == people.visitor and withheld[0]["others"]


def test_two_enrolled_people_together_are_both_granted_and_no_tailgate(engine, gallery, people):
    if len(people.enrol) < 2:
        pytest.skip("needs two enrolled people: lfw-dev (../shared/data) is not present")
    second = [p for name, photos in people.enrol.items() if name != people.visitor for p in photos]
    frames = _side_by_side(people, 24, people.visits, second)
    sink, _ = _run_frames(engine, gallery, frames, test_config())
    assert sorted(n for d, n in sink.decisions() if d == "granted") == sorted(people.enrol)
    assert _events(sink, "tailgate") == []


def test_a_decided_face_is_re_checked_by_the_clock_too(engine, gallery, people):
    config = test_config(decision={"recheck_every": 100_000, "recheck_s": 0.5})
    sink, app = _run_frames(engine, gallery, _in_place(engine, people.visits[0], 45), config)
    granted_at = sink.verdicts[0].frame_index
    rechecks = app.counts["identified"] - (granted_at + 1)
    assert (45 - granted_at) / FPS / 0.5 - 2 <= rechecks <= (45 - granted_at) / FPS / 0.5 + 1


def test_a_face_that_cannot_be_verified_does_not_keep_a_grant(engine, gallery, people):
    """A stranger the quality gate refuses (here: blurred, σ 4) steps into the granted person's
    place: the re-checks cannot judge the face, so the grant is not carried over; the track is
    split and the new face gets nothing (it is reported as refused by the gate)."""
    config = test_config(decision={"recheck_every": 100_000, "recheck_s": 3600.0})
    blurred = [cv2.GaussianBlur(f, (0, 0), 4) for f in _in_place(engine, people.strangers[0], 20, 100)]
    sink, app = _run_frames(engine, gallery, _in_place(engine, people.visits[0], 15) + blurred, config)
    assert sink.decisions() == [("granted", people.visitor)]
    (split,) = _events(sink, "track_split")
    assert split["reason"] == "cannot be verified" and split["was"] == "granted" and 15 <= split["frame_index"] <= 20
    assert any(e["track_id"] == split["new_track_id"] for e in _events(sink, "quality_rejected"))


def test_the_track_integrity_clips_pass_through_edge_run(repo_root, shared_dir, tmp_path):
    """Issue 15's acceptance clips (swaps with 0/5/12 frames of gap, enrolled after a stranger,
    two at the door, two enrolled), each run by `edge run` in a subprocess: one pair here; the
    table in docs/appliance.md is the same script with four."""
    script = repo_root / "scripts" / "eval" / "track_integrity.py"
    args = [sys.executable, str(script), "--lfw", str(shared_dir / "lfw-dev"), "--pairs", "1", "--work", str(tmp_path)]
    done = subprocess.run(args, cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "8 of 8 clips pass" in done.stdout
    assert done.stdout.count("| PASS |") == 8


# --- liveness: fail closed ------------------------------------------------------------------------


def _broken_stage(rgb, det):
    raise RuntimeError("the liveness model failed")


def _slow_stage(rgb, det):
    time.sleep(0.06)
    return 0.99


@pytest.mark.parametrize("stage, why", [(None, "no stage"), (_broken_stage, "errors"), (_slow_stage, "too slow")])
def test_with_liveness_on_no_evidence_means_no_grant(engine, gallery, people, stage, why):
    """Liveness on and its stage missing, failing, or slower than `timeout_ms`: the enrolled
    person is not granted (fail closed), and nothing crashes."""
    config = test_config(liveness={"mode": "passive", "timeout_ms": 30.0})
    app = Appliance(engine, gallery, None, config=config, sinks=[], live_score=stage)
    if stage is None:
        app.live_score = None  # the engine has no liveness model either
    verdicts = _process(app, frames_of(people.visits[:1], people.scale, per_photo=12))
    assert [v.decision for v in verdicts if v.decision == "granted"] == [], why
    if stage is not None:
        assert app.counts["liveness_errors"] >= 5 and app.stats()["liveness_errors"] == app.counts["liveness_errors"]
    assert app.liveness.status(app.tracker.tracks[0].id) == "pending"


def test_liveness_off_grants_as_before_and_verdicts_carry_no_liveness(engine, gallery, people):
    app = Appliance(engine, gallery, None, config=test_config(), sinks=[])
    verdicts = _process(app, frames_of(people.visits[:1], people.scale, per_photo=12))
    assert [(v.decision, v.name) for v in verdicts] == [("granted", people.visitor)]
    assert "liveness" not in verdicts[0].to_dict()


def _filling_the_frame(photo, n, seed=0):
    """`n` 640×480 frames that are the photo itself, a little moved (BORDER_REFLECT): a face in a
    scene, with no photo edge or grey surround in view (which is what a photo held up looks like)."""
    h, w = photo.shape[:2]
    side = min(w, h * 4 / 3)
    x0, y0 = (w - side) / 2, (h - side * 3 / 4) / 2
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = 640 / side
        m = np.array([[s, 0, -x0 * s + rng.uniform(-4, 4)], [0, s, -y0 * s + rng.uniform(-3, 3)]])
        out.append(cv2.warpAffine(photo, m, (640, 480), borderMode=cv2.BORDER_REFLECT))
    return out


def test_with_passive_liveness_a_face_in_a_scene_is_granted_and_a_held_up_photo_is_a_spoof(
    engine, gallery, people, shared_dir
):
    """The real passive stage (`Engine.live_probability`). A photo pasted on a grey frame — the
    photo's edges in view, as when one is held up to the camera — is called an attack: a `spoof`
    verdict, no grant. The same photo filling the frame (a face in a scene) is called live, the
    grant comes once `min_frames` frames of evidence are in, and the verdict carries it."""
    config = test_config(liveness={"mode": "passive"})
    app = Appliance(engine, gallery, None, config=config, sinks=[])
    held_up = _process(app, frames_of(people.visits[:1], people.scale, per_photo=15))
    assert [v.decision for v in held_up] == ["spoof"]
    figures = held_up[0].to_dict()["liveness"]
    assert figures["live"] <= 0.1 and "passive liveness" in figures["reason"]
    app = Appliance(engine, gallery, None, config=config, sinks=[])
    verdicts = _process(app, _filling_the_frame(people.visits[0], 15))
    (granted,) = [v for v in verdicts if v.decision == "granted"]
    figures = granted.to_dict()["liveness"]
    assert granted.name == people.visitor and figures["mode"] == "passive" and figures["frames"] >= 5
    assert figures["live"] >= 0.5 and granted.frame_index >= 4  # it waited for min_frames of evidence
    assert app.stats()["stages_ms"]["liveness"]["n"] >= 5


def test_passive_plus_challenge_announces_a_prompt_and_a_still_face_never_follows_it(engine, gallery, people):
    """The passive cue says live, so a random head turn is asked for; a still face (a photo, a
    replay that cannot know the prompt) never follows it: no grant, and when time is up a spoof."""
    config = test_config(liveness={"mode": "passive+challenge", "challenge_s": 1.0})
    frames = _filling_the_frame(people.visits[0], 40)
    sink, app = _run_frames(engine, gallery, frames, config)
    assert "granted" not in [v.decision for v in sink.verdicts]
    (prompt,) = _events(sink, "liveness_challenge")
    assert prompt["prompt"] in ("left", "right", "up") and prompt["within_s"] == 1.0
    (spoof,) = [v for v in sink.verdicts if v.decision == "spoof"]
    assert "not followed" in spoof.to_dict()["liveness"]["reason"]


def test_a_spoof_is_decided_and_not_identified_on_every_frame(engine, gallery, people, shared_dir):
    """(lfw-dev photos pasted on a grey frame: the passive model calls them attacks. scikit-image's
    astronaut, a sharp studio photo, it calls live even so; docs/liveness.md.)"""
    config = test_config(liveness={"mode": "passive"}, decision={"recheck_every": 15})
    app = Appliance(engine, gallery, None, config=config, sinks=[])
    verdicts = _process(app, frames_of(people.visits[:1], people.scale, per_photo=45))
    assert [v.decision for v in verdicts] == ["spoof"]
    spoof_at = verdicts[0].frame_index
    assert app.counts["identified"] <= spoof_at + 1 + (45 - spoof_at) // 15 + 1
