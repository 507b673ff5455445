"""The door output (edge/door, docs/door.md): a relay opened by fresh grants only, locked again
on time by its own thread, released on shutdown, crash and kill; the door contact and the
request-to-exit button.

The only fake is `door_fake.FakeRequest`, a stand-in for libgpiod's line request. Behind it
everything is real: gpiod's LineSettings and values, the controller and its thread, the
appliance with the real engine on real photos, `edge run` in a subprocess for the signals.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

gpiod = pytest.importorskip("gpiod", reason="the door extra (gpiod 2.x bindings)")
from door_fake import STATE_DIR, FakeRequest, RelayProbe  # noqa: E402
from gpiod.line import Value  # noqa: E402

from edge.app import appliance_from_config, engine_from_config  # noqa: E402
from edge.appliance.verdict import Verdict  # noqa: E402
from edge.camera import DirectorySource  # noqa: E402
from edge.config import Config, ConfigError, config_from_dict  # noqa: E402
from edge.door import DoorController, DoorSink, Lines  # noqa: E402
from edge.door.lines import TEST_HOOK, line_settings, open_request  # noqa: E402
from edge.matching import Gallery  # noqa: E402
from edge.sinks import Sink  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RELAY, CONTACT, EXIT = 17, 27, 22
ON, OFF = Value.ACTIVE, Value.INACTIVE
FPS = 5


# --- parts -------------------------------------------------------------------------------------


def door_config(**door) -> Config:
    base = {"enabled": True, "relay_line": RELAY, "contact_line": CONTACT, "exit_line": EXIT, **door}
    return config_from_dict({"door": base, "vault": {"path": ""}, "audit": {"path": ""}})


def controller(mode="fail_secure", hold_s=0.4, held_open_s=30.0, **door):
    cfg = door_config(mode=mode, **door).door
    settings = line_settings(cfg)
    request = FakeRequest({line: s.output_value for line, s in settings.items()})
    events: list[tuple[str, dict]] = []
    ctl = DoorController(
        Lines(request, relay=RELAY, contact=CONTACT, exit=EXIT),
        mode=mode,
        hold_s=hold_s,
        held_open_s=held_open_s,
        report=lambda kind, **fields: events.append((kind, fields)),
    )
    return ctl, request, events


def kinds(events) -> list[str]:
    return [k for k, _ in events]


def wait_until(predicate, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def verdict(decision="granted", name="astronaut", *, age_s=0.0, seq=1) -> Verdict:
    now = time.time()
    return Verdict(
        device_id="door-test",
        seq=seq,
        decision=decision,
        name=name if decision == "granted" else None,
        score=0.9,
        threshold=0.7,
        margin=0.3,
        frames_used=3,
        track_id=1,
        rect=(10, 10, 100, 100),
        quality=None,
        first_seen=now - age_s - 1,
        frame_time=now - age_s - 0.05,
        decided=now - age_s,
        latency_ms=50.0,
        frame_index=3,
        pts=0.6,
    )


# --- the relay: levels, hold, stale grants -----------------------------------------------------


def test_gpiod_settings_put_the_relay_in_its_locked_state_from_the_request_on():
    secure = line_settings(door_config(mode="fail_secure", relay_active_level="low").door)
    safe = line_settings(door_config(mode="fail_safe").door)
    assert secure[RELAY].direction == gpiod.line.Direction.OUTPUT and secure[RELAY].active_low is True
    assert secure[RELAY].output_value == OFF  # fail-secure: locked = coil off
    assert safe[RELAY].output_value == ON and safe[RELAY].active_low is False  # fail-safe: locked = coil on
    contact, exit_ = secure[CONTACT], secure[EXIT]
    assert contact.edge_detection == gpiod.line.Edge.BOTH and contact.bias == gpiod.line.Bias.PULL_UP
    assert contact.active_low is False and exit_.active_low is True  # open = high, pressed = low (defaults)
    assert contact.debounce_period.total_seconds() == pytest.approx(0.02)


@pytest.mark.parametrize(
    "mode, locked, unlocked", [("fail_secure", OFF, ON), ("fail_safe", ON, OFF)], ids=["fail_secure", "fail_safe"]
)
def test_a_grant_unlocks_for_hold_s_and_the_door_thread_locks_again(mode, locked, unlocked):
    ctl, request, events = controller(mode, hold_s=0.4)
    sink = DoorSink(ctl, max_grant_age_s=2.0)
    sink.attach(post_event=lambda kind, **f: events.append((kind, f)), epoch=time.time)
    try:
        assert request.values[RELAY] == locked
        sink.publish(verdict())
        assert request.values[RELAY] == unlocked
        opened = time.monotonic()
        assert wait_until(lambda: request.values[RELAY] == locked, 3.0)
        assert 0.3 <= time.monotonic() - opened <= 1.0  # hold_s (0.4), locked by the door's own thread
        assert kinds(events) == ["door_unlocked", "door_locked"]
        assert events[0][1]["name"] == "astronaut" and events[1][1]["reason"] == "hold_elapsed"
    finally:
        sink.close()
    # released: coil off (fail-safe: the door opens, as it does whenever edge is not running)
    assert request.released and request.writes[-1] == (RELAY, OFF)
    released = events[-1]
    assert released[0] == "door_released" and released[1]["door"] == ("locked" if mode == "fail_secure" else "unlocked")


def test_hold_is_counted_from_the_grant_and_a_stale_grant_is_ignored():
    ctl, request, events = controller(hold_s=2.0)
    sink = DoorSink(ctl, max_grant_age_s=2.0)
    sink.attach(post_event=lambda kind, **f: events.append((kind, f)), epoch=time.time)
    try:
        sink.publish(verdict(age_s=2.5))  # too old when it reaches the door
        sink.publish(verdict(age_s=-5.0, seq=2))  # from the future: not trusted either
        assert request.values[RELAY] == OFF and ON not in [v for _, v in request.writes]
        assert [f["reason"] for k, f in events] == ["stale", "stale"] and events[0][1]["seq"] == 1
        sink.publish(verdict(age_s=1.5, seq=3))  # fresh enough: unlocks for what is left of hold_s
        assert request.values[RELAY] == ON
        start = time.monotonic()
        assert wait_until(lambda: request.values[RELAY] == OFF, 5.0)
        assert time.monotonic() - start <= 1.3  # ~0.5 s left, never the full 2 s from arrival
    finally:
        sink.close()


@pytest.mark.parametrize("decision", ["denied", "unknown", "spoof"])
def test_no_other_decision_ever_moves_the_relay(decision):
    ctl, request, events = controller()
    sink = DoorSink(ctl)
    sink.attach(post_event=lambda kind, **f: events.append((kind, f)), epoch=time.time)
    try:
        sink.publish(verdict(decision))
        sink.publish(replace(verdict(decision), name="astronaut"))  # a crafted name changes nothing
        sink.publish(replace(verdict("granted"), name=None))  # a grant without a person: nothing
        sink.publish(replace(verdict("granted"), decision="GRANTED"))
        time.sleep(0.1)
        assert request.writes == [(RELAY, OFF)] and events == []
    finally:
        sink.close()


def test_a_disabled_door_ignores_grants_and_locks_at_once():
    ctl, request, events = controller(hold_s=30)
    sink = DoorSink(ctl)
    sink.attach(post_event=lambda kind, **f: events.append((kind, f)), epoch=time.time)
    try:
        sink.publish(verdict())
        assert request.values[RELAY] == ON
        ctl.set_enabled(False)
        assert request.values[RELAY] == OFF
        sink.publish(verdict(seq=2))
        assert request.values[RELAY] == OFF
        assert kinds(events) == ["door_unlocked", "door_locked", "door_disabled", "door_grant_ignored"]
    finally:
        sink.close()


def test_a_door_thread_that_fails_releases_the_relay():
    ctl, request, events = controller(hold_s=30)
    ctl.start()
    ctl.unlock(by="grant", since=ctl.clock())
    assert request.values[RELAY] == ON

    def broken(*_args):
        raise OSError("the chip went away")

    request.read_edge_events = broken
    request.drive(CONTACT, True)  # the thread reads the edge: fails
    assert wait_until(lambda: request.released, 3.0)
    assert request.writes[-1] == (RELAY, OFF) and "door_fault" in kinds(events)


def test_the_loop_releases_the_relay_when_the_door_thread_is_gone():
    ctl, request, events = controller(hold_s=30)
    sink = DoorSink(ctl)
    sink.attach(post_event=lambda kind, **f: events.append((kind, f)), epoch=time.time)
    sink.publish(verdict())
    ctl._stop.set()  # the thread ends without a word (the loop cannot know why)
    assert wait_until(lambda: not ctl.alive, 2.0) and request.values[RELAY] == ON
    sink.state({})  # the loop's once-a-second state push
    assert request.released and request.writes[-1] == (RELAY, OFF)
    assert events[-1][1]["reason"] == "door thread gone"


# --- the door contact and the exit button ------------------------------------------------------


def test_door_forced_held_open_and_closed():
    ctl, request, events = controller(hold_s=0.3, held_open_s=0.3)
    ctl.start()
    try:
        request.drive(CONTACT, True)  # opened while locked
        assert wait_until(lambda: "door_held_open" in kinds(events), 3.0)
        request.drive(CONTACT, False)
        assert wait_until(lambda: "door_closed" in kinds(events), 3.0)
        assert kinds(events) == ["door_opened", "door_forced", "door_held_open", "door_closed"]
        assert events[0][1]["authorised"] is False and events[2][1]["open_s"] >= 0.3
        # with a grant the same opening is authorised, and a short one is not held open
        events.clear()
        ctl.unlock(by="grant", since=ctl.clock(), name="astronaut")
        request.drive(CONTACT, True)
        request.drive(CONTACT, False)
        assert wait_until(lambda: "door_locked" in kinds(events), 3.0)
        assert kinds(events) == ["door_unlocked", "door_opened", "door_closed", "door_locked"]
        assert events[1][1] == {"authorised": True, "by": "grant"}
    finally:
        ctl.close()


def test_request_to_exit_unlocks_like_a_grant_and_is_logged_as_exit():
    ctl, request, events = controller(hold_s=0.3)
    ctl.start()
    try:
        request.drive(EXIT, True)
        assert wait_until(lambda: request.values[RELAY] == ON, 2.0)
        request.drive(EXIT, False)  # the release of the button does nothing
        request.drive(CONTACT, True)
        assert wait_until(lambda: request.values[RELAY] == OFF, 2.0)
        request.drive(CONTACT, False)
        assert wait_until(lambda: "door_closed" in kinds(events), 2.0)
        assert kinds(events) == ["door_exit", "door_unlocked", "door_opened", "door_locked", "door_closed"]
        assert events[1][1]["by"] == "exit" and events[2][1] == {"authorised": True, "by": "exit"}
    finally:
        ctl.close()


# --- driven by the appliance: real engine, real photos -----------------------------------------


@pytest.fixture(scope="module")
def engine():
    return engine_from_config(Config())


@pytest.fixture(scope="module")
def gallery(engine, _skimage_photos):
    faces = engine.faces(_skimage_photos["astronaut"], max_faces=1)
    return Gallery.from_embeddings(["astronaut"], np.stack([faces[0].embedding]))


def scene(photo: np.ndarray, i: int) -> np.ndarray:
    canvas = np.full((480, 640, 3), 96, np.uint8)
    img = cv2.resize(photo, (400, 400))
    x, y = 120 + (i % 3) * 4, 40 + (i % 2) * 3
    canvas[y : y + 400, x : x + 400] = img
    return canvas


def write_frames(path: Path, frames) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(path / f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def test_request(tmp_path, monkeypatch):
    monkeypatch.setenv(TEST_HOOK, "door_fake:request_for")
    monkeypatch.setenv(STATE_DIR, str(tmp_path))
    return RelayProbe(tmp_path)


def door_appliance(tmp_path, engine, gallery, frames, **door):
    cfg = config_from_dict(
        {
            "door": {"enabled": True, "relay_line": RELAY, "contact_line": CONTACT, **door},
            "camera": {"fps": FPS, "realtime": True},
            "vault": {"path": ""},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
        }
    )
    out = io.StringIO()
    source = DirectorySource(write_frames(tmp_path / "frames", frames), fps=FPS)
    app = appliance_from_config(cfg, engine=engine, gallery=gallery, source=source, stdout=out)
    door_sink = next(s for s in app.sinks if isinstance(s, DoorSink))
    return app, door_sink.controller.lines.request, out


def records(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_appliance_grant_opens_the_door_and_its_events_reach_stdout_and_the_audit_log(
    engine, gallery, _skimage_photos, tmp_path, test_request
):
    hallway = np.full((480, 640, 3), 96, np.uint8)
    frames = [hallway] * 5 + [scene(_skimage_photos["astronaut"], i) for i in range(20)]
    app, request, out = door_appliance(tmp_path, engine, gallery, frames, hold_s=1.0)
    request.drive(CONTACT, True)  # someone forces the door before anybody is granted
    request.drive(CONTACT, False)
    app.run(handle_signals=False)
    recs = records(out)
    grant = next(r for r in recs if r["type"] == "verdict")
    assert grant["decision"] == "granted" and grant["name"] == "astronaut"
    door = [r for r in recs if r.get("event", "").startswith("door_")]
    names = [r["event"] for r in door]
    assert names[:3] == ["door_opened", "door_forced", "door_closed"]
    unlocked = next(r for r in door if r["event"] == "door_unlocked")
    assert unlocked["seq"] == grant["seq"] and unlocked["name"] == "astronaut" and unlocked["age_s"] < 2.0
    assert names[-1] == "door_released" and "door_locked" in names
    assert request.released and request.writes[-1] == (RELAY, OFF) and (RELAY, ON) in request.writes
    audited = [json.loads(line).get("event") for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {"door_forced", "door_unlocked", "door_released"} <= set(audited)
    assert not test_request.held() and not test_request.energised()


def test_a_stranger_never_opens_the_door(engine, gallery, _skimage_photos, tmp_path, test_request):
    frames = [scene(_skimage_photos["camera"], i) for i in range(20)]
    app, request, out = door_appliance(tmp_path, engine, gallery, frames)
    app.run(handle_signals=False)
    assert "granted" not in [r.get("decision") for r in records(out)]
    assert (RELAY, ON) not in request.writes


class HungLoop(Sink):
    """A sink that blocks the loop thread after the first grant (a wedged driver, a deadlock)."""

    name = "hung"

    def __init__(self, seconds: float) -> None:
        self.seconds, self.hung = seconds, threading.Event()

    def publish(self, verdict) -> None:
        if verdict.decision == "granted" and not self.hung.is_set():
            self.hung.set()
            time.sleep(self.seconds)


def test_a_hung_loop_does_not_keep_the_door_unlocked(engine, gallery, _skimage_photos, tmp_path, test_request):
    frames = [scene(_skimage_photos["astronaut"], i) for i in range(12)]
    app, request, _ = door_appliance(tmp_path, engine, gallery, frames, hold_s=0.5)
    hung = HungLoop(3.0)
    app.add_sink(hung)
    runner = threading.Thread(target=app.run, kwargs={"handle_signals": False})
    runner.start()
    try:
        assert hung.hung.wait(60)
        t = time.monotonic()
        assert request.values[RELAY] == ON  # the door sink came first
        assert wait_until(lambda: request.values[RELAY] == OFF, 2.0)  # while the loop still hangs
        assert time.monotonic() - t < 1.0 and runner.is_alive()
    finally:
        runner.join(60)


# --- signals: a real `edge run` process -------------------------------------------------------


def edge_run(tmp_path: Path, astronaut: np.ndarray, mode: str) -> tuple[subprocess.Popen, RelayProbe]:
    (tmp_path / "people" / "astronaut").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "people" / "astronaut" / "a.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    for i in range(60 * FPS):  # a minute at the door: the run lasts until the signal
        writer.write(cv2.cvtColor(scene(astronaut, i), cv2.COLOR_RGB2BGR))
    writer.release()
    (tmp_path / "state").mkdir()
    (tmp_path / "edge.toml").write_text(
        f"""
[camera]
source = "clip.avi"
fps = {FPS}
realtime = true
[vault]
path = ""
[gallery]
path = "people"
[audit]
path = ""
[door]
enabled = true
relay_line = {RELAY}
mode = "{mode}"
hold_s = 600.0
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MODELS_DIR"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
        **{TEST_HOOK: "door_fake:request_for", STATE_DIR: str(tmp_path / "state")},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", "edge.toml"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, RelayProbe(tmp_path / "state")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_edge_run_releases_the_relay_when_it_is_stopped_or_killed(tmp_path, _skimage_photos, sig):
    proc, relay = edge_run(tmp_path, _skimage_photos["astronaut"], "fail_secure")
    try:
        # granted, and held for 600 s: only the signal can end it
        ok = wait_until(lambda: relay.energised() or proc.poll() is not None, 120)
        assert ok and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.3)
        assert relay.held() and relay.energised()
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # SIGTERM: edge locks and releases; SIGKILL: nothing in edge runs, the kernel releases the request
    assert not relay.held() and not relay.energised()
    out = [json.loads(line) for line in proc.stdout.read().splitlines() if line.startswith("{")]
    events = [r.get("event") for r in out]
    assert "door_unlocked" in events
    if sig == signal.SIGTERM:
        assert proc.returncode == 0
        released = next(r for r in out if r.get("event") == "door_released")
        assert released["reason"] == "shutdown" and released["door"] == "locked"
        assert (tmp_path / "state" / "relay").read_text() == "0"
    else:
        assert proc.returncode == -signal.SIGKILL and "door_released" not in events
        # the last value edge wrote was "energised": only the kernel's release made the line go dead
        assert (tmp_path / "state" / "relay").read_text() == "1"


def test_the_test_request_is_refused_outside_the_test_suite(monkeypatch):
    monkeypatch.setenv(TEST_HOOK, "door_fake:request_for")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with pytest.raises(Exception, match="test suite only"):
        open_request(door_config().door)


def test_without_gpio_the_door_refuses_to_start_naming_the_key(monkeypatch, tmp_path):
    monkeypatch.delenv(TEST_HOOK, raising=False)
    cfg = door_config(chip=str(tmp_path / "gpiochip9"))
    from edge.app import door_sink_from_config

    with pytest.raises(ConfigError) as err:
        door_sink_from_config(cfg)
    assert err.value.key == "door.chip"


def test_door_config_is_off_by_default_and_checks_its_lines():
    assert Config().door.enabled is False
    with pytest.raises(ConfigError, match=r"door\.exit_line: line 17 is already door\.relay_line"):
        config_from_dict({"door": {"enabled": True, "relay_line": 17, "exit_line": 17}})
    with pytest.raises(ConfigError, match=r"door\.mode"):
        config_from_dict({"door": {"mode": "open"}})


# --- what the design relies on when edge cannot run any code -----------------------------------


@pytest.mark.parametrize(
    "mode, door_without_edge", [("fail_secure", "locked"), ("fail_safe", "unlocked")], ids=["fail_secure", "fail_safe"]
)
def test_the_state_the_kernel_leaves_is_the_mode_s_state_without_power(mode, door_without_edge):
    """A killed process's request is released by the kernel: the relay line is no longer driven
    and the HAT's resistor keeps the coil off. The design is safe only if "coil off" is the
    door's state without edge, in each mode: locked for fail-secure, unlocked for fail-safe
    (a maglock on NO, which edge holds locked by energising the relay)."""
    ctl, request, _ = controller(mode, hold_s=30)
    coil_when_locked = request.values[RELAY] == ON
    ctl.unlock(by="grant", since=ctl.clock())
    coil_when_unlocked = request.values[RELAY] == ON
    assert coil_when_locked != coil_when_unlocked
    coil_off_means = "locked" if not coil_when_locked else "unlocked"
    assert coil_off_means == door_without_edge
    ctl.close("shutdown")  # an orderly stop leaves what the kernel would: coil off, request released
    assert request.writes[-1] == (RELAY, OFF) and request.released


def test_the_door_drop_in_keeps_the_unit_verifiable(tmp_path):
    """systemd/edge.service.d/door.conf (GPIO access, a shorter watchdog) on top of the unit."""
    import shutil

    from test_systemd import ANALYZE, _verify_root

    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed")
    root = _verify_root(tmp_path)
    drop_in = root / "etc" / "systemd" / "system" / "edge.service.d"
    drop_in.mkdir()
    shutil.copyfile(REPO / "systemd" / "edge.service.d" / "door.conf", drop_in / "door.conf")
    out = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "--man=no", "--generators=no", "edge.service"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr
    text = (REPO / "systemd" / "edge.service.d" / "door.conf").read_text()
    assert "DeviceAllow=char-gpiochip rw" in text and "WatchdogSec=10" in text


def test_home_assistants_door_switch_drives_the_controller():
    """The composition root hands HA's unsigned door_enable/door_disable commands the door's
    controller: disabling it locks the door and grants no longer open it."""
    from types import SimpleNamespace

    from edge.app import attach_ha

    ctl, request, events = controller()
    appliance = SimpleNamespace(gallery=SimpleNamespace(people=[]), reload=lambda: None)
    mqtt = SimpleNamespace(ha_actions={})
    attach_ha(appliance, mqtt, ctl)
    assert mqtt.door_enabled() is True
    mqtt.ha_actions["door_disable"]()
    assert mqtt.door_enabled() is False and ctl.enabled is False
    mqtt.ha_actions["door_enable"]()
    assert mqtt.door_enabled() is True
