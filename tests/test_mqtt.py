"""MQTT against a real mosquitto: verdicts, availability, state, discovery, outbox, TLS, logins, commands.

Every test that needs the broker starts its own mosquitto (Debian package, installed by
scripts/setup.sh) on a free port in a temp dir; without mosquitto they skip.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from mqtt_broker import Broker, available, free_port
from mqtt_helpers import Recorder, make_verdict

from edge.admin.commands import CommandHandler
from edge.admin.signing import CommandRefused, CommandVerifier, generate_admin_key, load_admin_key, sign_command
from edge.broker_url import BrokerUrlError, parse_broker_url
from edge.config import ConfigError, MqttConfig, load_config
from edge.mqtt.client import MqttSettings
from edge.mqtt.outbox import Outbox
from edge.mqtt.sink import MqttSink
from edge.mqtt.topics import Topics, discovery_messages, ha_id

needs_broker = pytest.mark.skipif(not available(), reason="mosquitto is not installed (scripts/setup.sh installs it)")
DEVICE = "door-1"
T = Topics.for_device(DEVICE)


def settings_for(url: str, **overrides) -> MqttSettings:
    cfg = MqttConfig(url=url, reconnect_min=0.2, reconnect_max=1.0, **overrides)
    return MqttSettings.from_config(cfg, client_id=f"edge-{DEVICE}")


def make_sink(tmp_path: Path, url: str, *, outbox=None, verifier=None, commands=None, **kw) -> MqttSink:
    events: list = []
    sink = MqttSink(
        kw.pop("settings", None) or settings_for(url, **kw.pop("mqtt", {})),
        device_id=DEVICE,
        outbox=outbox or Outbox(tmp_path / "outbox"),
        verifier=verifier,
        commands=commands,
        **kw,
    )
    sink.set_event_hook(lambda kind, fields: events.append((kind, fields)))
    sink.hooked = events
    return sink


# --- URLs and config ---------------------------------------------------------------------------------


def test_broker_urls():
    u = parse_broker_url("mqtts://door-1:p%40ss@broker.local")
    assert (u.host, u.port, u.tls, u.username, u.password) == ("broker.local", 8883, True, "door-1", "p@ss")
    assert "p@ss" not in u.redacted() and "***" in u.redacted()
    assert parse_broker_url("mqtt://[::1]:1884").host == "::1"
    assert parse_broker_url("mqtt://h").port == 1883
    for bad in ("", "http://h", "mqtt://", "mqtt://h:99999", "mqtt://h/path", "mqtt://u:secret@h:x"):
        with pytest.raises(BrokerUrlError) as exc:
            parse_broker_url(bad)
        assert "secret" not in str(exc.value)


def test_config_errors_name_the_key(tmp_path):
    cases = {
        "url": ("ftp://x", "mqtt.url"),
        "admin_keys": (["not-a-key"], "mqtt.admin_keys[0]"),
        "face_recipient": ("short", "mqtt.face_recipient"),
        "topic_prefix": ("a/+/b", "mqtt.topic_prefix"),
        "protocol": ("4", "mqtt.protocol"),
        "outbox_max": (1, "mqtt.outbox_max"),
        "command_max_bytes": (100, "mqtt.command_max_bytes"),
    }
    for key, (value, path) in cases.items():
        with pytest.raises(ConfigError) as exc:
            load_config(overrides={"mqtt": {"enabled": True, key: value}})
        assert exc.value.key == path, (key, exc.value)
    cfg = MqttConfig(url="mqtt://h", password_file=str(tmp_path / "missing"))
    with pytest.raises(Exception) as exc:
        MqttSettings.from_config(cfg, client_id="x")
    assert "mqtt.password_file" in str(exc.value)


def test_firmware_config_documents_mqtt(repo_root):
    cfg = load_config(repo_root / "firmware_config" / "edge.toml")
    assert cfg.mqtt == MqttConfig()


# --- signed commands (no broker) -----------------------------------------------------------------


@pytest.fixture
def admin(tmp_path):
    key = generate_admin_key(tmp_path / "admin.key")
    assert (tmp_path / "admin.key").stat().st_mode & 0o777 == 0o600
    assert load_admin_key(tmp_path / "admin.key").encode() == key.encode()
    return key


def _verifier(admin, tmp_path, **kw):
    from edge.admin.signing import public_key_text

    return CommandVerifier([public_key_text(admin)], device_id=DEVICE, nonce_log=tmp_path / "nonces.json", **kw)


def test_signed_command_checks(admin, tmp_path):
    from nacl.signing import SigningKey

    v = _verifier(admin, tmp_path)
    good = sign_command(admin, "status", device_id=DEVICE)
    assert v.verify(json.loads(json.dumps(good)))["command"] == "status"

    def refused(data) -> str:
        with pytest.raises(CommandRefused) as exc:
            v.verify(data)
        return exc.value.reason

    assert refused(good) == "replayed"
    assert refused(_verifier(admin, tmp_path).parse(json.dumps(good))) == "replayed"  # remembered on disk
    assert _verifier(admin, tmp_path).nonces.seen  # a restarted device refuses it too
    assert (
        refused({k: v for k, v in sign_command(admin, "status", device_id=DEVICE).items() if k != "sig"}) == "unsigned"
    )
    forged = sign_command(admin, "revoke", {"name": "Ada"}, device_id=DEVICE)
    forged["args"] = {"name": "Grace"}
    assert refused(forged) == "bad_signature"
    stranger = SigningKey.generate()
    assert refused(sign_command(stranger, "status", device_id=DEVICE)) == "unknown_key"
    impostor = sign_command(stranger, "status", device_id=DEVICE)
    impostor["key"] = good["key"]  # claims to be the admin, signed by someone else
    assert refused(impostor) == "bad_signature"
    assert refused(sign_command(admin, "status", device_id="door-2")) == "wrong_device"
    assert refused(sign_command(admin, "status", device_id=DEVICE, ts=time.time() - 600)) == "stale"
    assert refused(sign_command(admin, "status", device_id=DEVICE, ts=time.time() + 600)) == "stale"
    redirected = sign_command(admin, "status", device_id=DEVICE, reply_to=T.response + "/a")
    redirected["reply_to"] = "elsewhere"
    assert refused(redirected) == "bad_signature"
    with pytest.raises(CommandRefused):
        v.parse(b"\xff not json")


def test_deeply_nested_json_is_malformed_before_it_is_parsed(admin, tmp_path, monkeypatch):
    """100,000 `[` (closed or not) would make json.loads raise RecursionError: the nesting is
    counted first, and anything deeper than MAX_JSON_DEPTH is a malformed command like any
    other, not signed (the intake's check on paho's network thread must not raise either), and
    never reaches the parser."""
    import edge.admin.signing as signing

    v = _verifier(admin, tmp_path)
    limit = signing.MAX_JSON_DEPTH
    bombs = [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,  # well-formed
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        ("[" * (limit + 1) + "]" * (limit + 1)).encode(),
        b'{"args": {"a": ' + b'[{"b": "]]]}}}"}' * (limit - 1) + b"]" + b"}]" * (limit - 2) + b"}}",
    ]
    parsed = []
    real_loads = signing.json.loads
    monkeypatch.setattr(signing.json, "loads", lambda text, **kw: parsed.append(text) or real_loads(text, **kw))
    for payload in bombs:
        with pytest.raises(CommandRefused) as exc:
            v.parse(payload)
        assert exc.value.reason == "malformed" and f"more than {limit} deep" in exc.value.message
        assert v.signed(payload) is False
    assert parsed == [], "a payload over the depth limit reached json.loads"
    # At the limit, with brackets inside strings (and escaped quotes) that do not count: parsed.
    at_limit = '{"a": ' + '["x]\\"[", ' * (limit - 1) + "1" + "]" * (limit - 1) + "}"
    assert signing.json_depth(at_limit.encode()) == limit
    assert v.parse(at_limit)["a"][0] == 'x]"['
    with pytest.raises(CommandRefused, match="not UTF-8"):
        v.parse('{"a": "\u00e9"}'.encode("utf-16"))  # json.loads would guess UTF-16 from bytes


def test_json_depth_counts_brackets_outside_strings_like_a_parser(monkeypatch):
    """The vectorised count against a character-by-character reference, on random text from
    JSON's structural characters, with pieces as small as 1 byte (state carried across them).
    Where the text has a backslash outside a string (no parser gets past it) the count may only
    be deeper than the reference's up to that point."""
    import random

    from edge.admin.signing import json_depth

    def reference(data: bytes) -> tuple[int, bool]:
        depth = deepest = 0
        in_string = escaped = False
        for c in data.decode():
            if in_string:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == '"':
                    in_string = False
            elif c == "\\":
                return deepest, False
            elif c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif c in "]}":
                depth -= 1
        return deepest, True

    rng = random.Random(17)
    for _ in range(5000):
        data = bytes(rng.choice(b'[]{}"\\a,:') for _ in range(rng.randint(0, 60)))
        want, clean = reference(data)
        for chunk in (1, 3, 7, 1 << 18):
            got = json_depth(data, chunk=chunk)
            assert got == want if clean else got >= want, (data, chunk, got, want)


def test_a_deep_command_that_would_parse_is_malformed_on_the_command_thread(tmp_path, admin):
    """A signed-looking command whose args nest 985 deep: json.loads gets through that (it gives
    up near 1,000), and the command used to be parsed and re-serialised for its signature check
    (answered `bad_signature`), a few frames short of RecursionError. Now it is malformed from its
    depth before any parsing, answered and recorded as such."""
    from types import SimpleNamespace

    sink = make_sink(tmp_path, "mqtt://127.0.0.1:1", verifier=_verifier(admin, tmp_path), commands=_status_handler())
    command = sign_command(admin, "status", device_id=DEVICE)
    text = json.dumps(command)[:-1] + ', "args": {"a": ' + "[" * 985 + "]" * 985 + "}}"
    replies = []
    sink._reply = lambda message, reply, reply_to=None: replies.append(reply)
    worker = threading.Thread(target=sink._handle_command, args=(SimpleNamespace(payload=text.encode()),))
    worker.start()
    worker.join(30)
    (reply,) = replies
    assert reply["ok"] is False and reply["reason"] == "malformed", reply
    assert [f["reason"] for k, f in sink.hooked if k == "command_refused"] == ["malformed"]
    sink.outbox.close()


def test_nonce_log_damage_refuses_rather_than_forgets(admin, tmp_path):
    (tmp_path / "nonces.json").write_text("{broken")
    with pytest.raises(Exception) as exc:
        _verifier(admin, tmp_path)
    assert "nonce log" in str(exc.value)


# --- the outbox (no broker) ------------------------------------------------------------------------


def test_outbox_order_restart_and_bound(tmp_path):
    drops = []
    box = Outbox(tmp_path / "ob", max_items=5, on_drop=lambda n, a, b: drops.append((n, a, b)))
    for seq in range(1, 6):
        box.append(f'{{"seq":{seq}}}'.encode(), seq)
    claimed = box.claim(2)
    assert [s for _i, s, _p in claimed] == [1, 2]
    box.append(b'{"seq":6}', 6)  # full: the oldest unclaimed (3) goes, not the in-flight 1 and 2
    assert drops == [(1, 3, 3)] and box.dropped == 1
    assert box.seqs() == [1, 2, 4, 5, 6]
    box.remove(claimed[0][0])
    (tmp_path / "ob" / ".tmp-00000000000009-9.json.abc").write_bytes(b"half")  # a write cut by a crash
    reopened = Outbox(tmp_path / "ob", max_items=5)
    assert reopened.seqs() == [2, 4, 5, 6] and reopened.last_seq == 6
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "ob").iterdir())
    assert [json.loads(p)["seq"] for _i, _s, p in reopened.claim(10)] == [2, 4, 5, 6]
    for i, _s, _p in reopened.claim(10):
        reopened.remove(i)
    reopened.unclaim_all()
    for i, _s, _p in reopened.claim(10):
        reopened.remove(i)
    reopened.close()
    assert len(Outbox(tmp_path / "ob")) == 0 and Outbox(tmp_path / "ob").last_seq == 6
    assert oct((tmp_path / "ob").stat().st_mode & 0o777) == oct(0o700)


# --- discovery payloads ------------------------------------------------------------------------------

N_ENTITIES = len(discovery_messages("x", Topics.for_device("x")))


def test_discovery_payloads_ids_and_availability():
    msgs = dict(discovery_messages("door.1 west", Topics.for_device("door.1 west"), sw_version="0.1.0"))
    assert set(msgs) == {
        f"homeassistant/{c}/edge_door_1_west/{o}/config"
        for c, o in [
            ("binary_sensor", "access_granted"),
            ("binary_sensor", "presentation_attack"),
            ("event", "verdict"),
            ("sensor", "last_person"),
            ("sensor", "last_score"),
            ("sensor", "last_seen"),
            ("sensor", "camera_fps"),
            ("sensor", "enrolled"),
        ]
    }
    for topic, payload in msgs.items():
        assert ha_id(payload["unique_id"]) == payload["unique_id"]
        assert all(ha_id(part) == part for part in topic.split("/"))
        assert payload["availability"][0]["topic"] == "edge/door.1 west/availability"
        assert payload["device"]["identifiers"] == ["edge_door_1_west"]
    granted = msgs["homeassistant/binary_sensor/edge_door_1_west/access_granted/config"]
    assert granted["state_topic"].endswith("/verdict") and granted["off_delay"] == 5
    attack = msgs["homeassistant/binary_sensor/edge_door_1_west/presentation_attack/config"]
    assert attack["state_topic"] == granted["state_topic"] and "'spoof'" in attack["value_template"]


# --- against the broker ----------------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path):
    if not available():
        pytest.skip("mosquitto is not installed (scripts/setup.sh installs it)")
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()


def test_round_trip_availability_state_discovery(broker, tmp_path):
    rec = Recorder(broker.port, ["edge/#", "homeassistant/#"]).start()
    sink = make_sink(tmp_path, broker.url).start()
    try:
        assert sink.link.wait_connected(10)
        sink.state({"fps": 29.5, "enrolled": 3})
        for seq in (1, 2, 3):
            sink.publish(make_verdict(seq))
        sink.publish(make_verdict(4, decision="unknown"))
        assert rec.wait_for(lambda: len(rec.on(T.verdict)) == 4)
        assert rec.seqs(T.verdict) == [1, 2, 3, 4]
        first = rec.json_on(T.verdict)[0]
        assert first["decision"] == "granted" and first["name"] == "Ada" and first["device_id"] == DEVICE
        assert "face" not in first  # privacy: no face unless configured
        assert rec.wait_for(lambda: any(e["event"] == "unknown_face" for e in rec.json_on(T.event)))
        assert rec.wait_for(lambda: len(sink.outbox) == 0)
        assert rec.wait_for(lambda: any(json.loads(p).get("fps") == 29.5 for p in rec.on(T.state)))
        assert rec.on(T.availability) == [b"online"]
        n_discovery = len([t for t, _p, _r in rec.messages if t.startswith("homeassistant/")])
        assert n_discovery == N_ENTITIES
        # Home Assistant restarted: discovery again
        rec.client.publish("homeassistant/status", "online", qos=1)
        assert rec.wait_for(lambda: len([t for t, _p, _r in rec.messages if t.startswith("homeassistant/")]) >= 10)
    finally:
        sink.close()
    assert rec.wait_for(lambda: rec.on(T.availability)[-1:] == [b"stopped"])
    rec.stop()
    # retained: a newcomer sees availability, state and discovery at once
    late = Recorder(broker.port, ["edge/#", "homeassistant/#"], client_id="late").start()
    discovery = lambda: [t for t, _p, _r in late.messages if t.startswith("homeassistant/")]  # noqa: E731
    assert late.wait_for(
        lambda: late.on(T.availability) == [b"stopped"] and late.on(T.state) and len(discovery()) == N_ENTITIES
    )
    time.sleep(0.3)
    assert all(r for t, _p, r in late.messages)  # only retained messages, no verdict replayed
    assert len(discovery()) == N_ENTITIES
    late.stop()


def test_verdicts_survive_outage_in_order(broker, tmp_path):
    """Broker stopped for 10 s while verdicts are produced: every verdict arrives, in order."""
    rec = Recorder(broker.port, [T.verdict], client_id="rec-outage", persistent=True).start()
    sink = make_sink(tmp_path, broker.url).start()
    stop_at, restart_at, total = 1.0, 11.0, 0
    t0 = time.monotonic()
    try:
        assert sink.link.wait_connected(10)
        stopped = restarted = False
        while time.monotonic() - t0 < 13.0:
            total += 1
            sink.publish(make_verdict(total))
            elapsed = time.monotonic() - t0
            if elapsed > stop_at and not stopped:
                broker.stop()
                stopped = True
            if elapsed > restart_at and not restarted:
                broker.start()
                restarted = True
            time.sleep(0.05)
        assert stopped and restarted and len(sink.outbox) > 0 or total > 0
        assert rec.wait_for(lambda: set(rec.seqs(T.verdict)) >= set(range(1, total + 1)), timeout=30)
    finally:
        sink.close()
        rec.stop()
    seqs = rec.seqs(T.verdict)
    firsts = list(dict.fromkeys(seqs))
    assert firsts == list(range(1, total + 1)), "delivered out of order"
    assert total > 200
    kinds = [k for k, _f in sink.hooked]
    assert "mqtt_disconnected" in kinds and kinds.count("mqtt_connected") >= 2


def _door(tmp_path: Path, astronaut_rgb, frames: int, realtime: bool = True, **mqtt) -> tuple[Path, Path]:
    """A config for `edge run` (gallery with the astronaut, audit log, outbox) and a replay of her."""
    gallery = tmp_path / "gallery" / "astronaut"
    if not gallery.exists():
        gallery.mkdir(parents=True)
        cv2.imwrite(str(gallery / "a.png"), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in mqtt.items())
    conf = tmp_path / "edge.toml"
    conf.write_text(
        f'[device]\nid = "{DEVICE}"\n[camera]\nrealtime = {json.dumps(realtime)}\nfps = 10.0\n[vault]\npath = ""\n'
        f'[gallery]\npath = "{tmp_path / "gallery"}"\n[audit]\npath = "{tmp_path / "audit.jsonl"}"\n'
        f'[mqtt]\noutbox_path = "{tmp_path / "outbox"}"\nreconnect_min = 0.2\nreconnect_max = 1.0\n{extra}'
    )
    frames_dir = tmp_path / f"frames{frames}"
    if not frames_dir.exists():
        _frames_dir(frames_dir, astronaut_rgb, frames)
    return conf, frames_dir


def _edge_run(conf: Path, frames: Path, url: str, *extra: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edge.cli", "run", "--config", str(conf), "--source", str(frames), "--mqtt", url]
    return subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_appliance_restarted_with_a_full_outbox_delivers(broker, tmp_path, astronaut_rgb):
    """`edge run` with no broker queues its verdict on disk; the next `edge run` delivers it first, in order."""
    conf, frames = _door(tmp_path, astronaut_rgb, 20, realtime=False)  # every frame, however slow the machine
    first = _edge_run(conf, frames, f"mqtt://127.0.0.1:{free_port()}")  # nobody listens there
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    assert b"mqtt_unreachable" in out  # a clear event on stdout (and in the audit log), no traceback
    assert Outbox(tmp_path / "outbox").seqs() == [1]
    rec = Recorder(broker.port, [T.verdict]).start()
    second = _edge_run(conf, frames, broker.url)
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err.decode()
    assert rec.wait_for(lambda: len(rec.seqs(T.verdict)) >= 2)
    got = rec.json_on(T.verdict)
    assert [v["seq"] for v in got] == [1, 2]  # the queued one first; numbering continued across the restart
    assert all(v["name"] == "astronaut" and v["decision"] == "granted" for v in got)
    assert Outbox(tmp_path / "outbox").seqs() == []
    rec.stop()


def test_wrong_password_is_a_clear_event(tmp_path):
    if not available():
        pytest.skip("mosquitto is not installed")
    with Broker(tmp_path / "b", users={DEVICE: "right"}) as b:
        sink = make_sink(tmp_path, f"mqtt://{DEVICE}:wrong@127.0.0.1:{b.port}").start()
        sink.publish(make_verdict(1))
        deadline = time.time() + 10
        while time.time() < deadline and not any(k == "mqtt_refused" for k, _f in sink.hooked):
            time.sleep(0.05)
        sink.close()
        refused = [f["detail"] for k, f in sink.hooked if k == "mqtt_refused"]
        assert refused and "user name and password" in refused[0]
        assert len(Outbox(tmp_path / "outbox")) == 1  # kept for when the password is fixed
        pw = tmp_path / "pw"
        pw.write_text("right\n")
        rec = Recorder(b.port, [T.verdict], username=DEVICE, password="right").start()
        good = make_sink(tmp_path, f"mqtt://{DEVICE}@127.0.0.1:{b.port}", mqtt={"password_file": str(pw)}).start()
        assert rec.wait_for(lambda: rec.seqs(T.verdict) == [1])
        good.close()
        rec.stop()


def test_the_password_comes_from_a_file_or_the_environment_before_the_url(tmp_path, monkeypatch, caplog):
    from edge.mqtt.client import PASSWORD_ENV

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")

    def password(url: str, *, cli: str | None = None, **cfg) -> str | None:
        return MqttSettings.from_config(MqttConfig(url=url, **cfg), client_id="x", url=cli).password

    assert password("mqtt://door-1@h") is None
    assert password("mqtt://door-1:from-url@h") == "from-url"
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert password("mqtt://door-1@h") == "from-env"
    assert password("mqtt://door-1:from-url@h") == "from-env"
    assert password("mqtt://door-1@h", password_file=str(pw)) == "from-file"  # the config's file first
    monkeypatch.setenv(PASSWORD_ENV, "")  # empty: not set
    assert password("mqtt://door-1@h") is None
    # A password in a URL typed on the command line is in the process list: a warning that
    # names the flag and never the password.
    with caplog.at_level("WARNING", logger="edge.mqtt.client"):
        assert password("mqtt://h", cli="mqtt://door-1@h") is None
        assert not caplog.records
        assert password("mqtt://h", cli="mqtt://door-1:s3cret@h") == "s3cret"
    (record,) = caplog.records
    assert "--mqtt" in record.getMessage() and "EDGE_MQTT_PASSWORD" in record.getMessage()
    assert "s3cret" not in caplog.text


@needs_broker
def test_cli_logins_take_the_password_from_a_file_or_the_environment(tmp_path):
    """`edge admin send --password-file` and `edge doctor` with $EDGE_MQTT_PASSWORD log in to a
    broker with passwords, with no password on their command lines."""
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MQTT_PASSWORD"}
    edge = [sys.executable, "-m", "edge.cli"]
    with Broker(tmp_path / "b", users={"admin": "admin-pw", DEVICE: "door-pw"}) as b:
        key = tmp_path / "admin.key"
        generate_admin_key(key)
        right, wrong = tmp_path / "right", tmp_path / "wrong"
        right.write_text("admin-pw\n")
        wrong.write_text("nope\n")
        url = f"mqtt://admin@127.0.0.1:{b.port}"
        send = [*edge, "admin", "send", "--mqtt", url, "--device-id", DEVICE, "--admin-key", str(key),
                "--timeout", "2", "status"]  # fmt: skip

        # No device answers: with the right password the send gets as far as waiting for a reply.
        def send_with(password_file: Path) -> subprocess.CompletedProcess:
            cmd = [*send, "--password-file", str(password_file)]
            return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

        ok = send_with(right)
        assert ok.returncode == 3 and "no reply from 'door-1'" in ok.stderr, ok.stderr
        bad = send_with(wrong)
        assert bad.returncode == 3 and "refused the login" in bad.stderr, bad.stderr
        doctor = [*edge, "doctor", "--json", "--mqtt", f"mqtt://{DEVICE}@127.0.0.1:{b.port}", "--timeout", "5"]

        def mqtt_check(password: str) -> dict:
            run = subprocess.run(doctor, capture_output=True, text=True, env={**env, "EDGE_MQTT_PASSWORD": password},
                                 timeout=120)  # fmt: skip
            assert "password in the URL" not in run.stderr
            return next(c for c in json.loads(run.stdout)["checks"] if c["name"] == "mqtt")

        assert mqtt_check("door-pw")["status"] == "ok"
        refused = mqtt_check("wrong")
        assert refused["status"] == "FAIL" and "EDGE_MQTT_PASSWORD" in refused["fix"]
        # A password in the URL still works, with a warning that names the flag and not the password.
        in_url = [*edge, "doctor", "--json", "--mqtt", f"mqtt://{DEVICE}:door-pw@127.0.0.1:{b.port}", "--timeout", "5"]
        run = subprocess.run(in_url, capture_output=True, text=True, env=env, timeout=120)
        assert "WARNING edge.doctor: --mqtt: the password in the URL can be read by every user" in run.stderr
        assert "door-pw" not in run.stderr
        assert next(c for c in json.loads(run.stdout)["checks"] if c["name"] == "mqtt")["status"] == "ok"


def test_edge_run_warns_of_a_password_in_its_mqtt_url(tmp_path, capsys):
    from edge import cli

    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")  # refused at start-up: the run ends before any model loads
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        assert cli.main(["run", "--mqtt", "mqtt://door-1:s3cret@127.0.0.1:1", "--source", str(notes)]) == 2
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
    err = capsys.readouterr().err
    assert "WARNING edge.cli: --mqtt: the password in the URL can be read by every user" in err
    assert "EDGE_MQTT_PASSWORD" in err and "s3cret" not in err


def test_tls_with_a_ca_made_here(tmp_path):
    if not available():
        pytest.skip("mosquitto is not installed")
    with Broker(tmp_path / "b", tls=True, require_certificate=True) as b:
        certs = b.certs
        sink = make_sink(
            tmp_path,
            b.url,
            mqtt={"ca_file": b.ca_file, "cert_file": str(certs["client_cert"]), "key_file": str(certs["client_key"])},
        ).start()
        assert sink.link.wait_connected(10)
        sink.publish(make_verdict(1))
        assert sink.drain(10)
        sink.close()
        # no client certificate: the broker refuses the handshake; an event, not a crash
        other = tmp_path / "other"
        bad = make_sink(other, b.url, mqtt={"ca_file": b.ca_file}).start()
        time.sleep(2)
        assert not bad.link.connected.is_set()
        bad.close()
        # a CA that did not sign the broker's certificate: refused too
        from mqtt_broker import make_ca

        wrong = make_ca(tmp_path / "wrong-ca")
        bad = make_sink(tmp_path / "o3", b.url, mqtt={"ca_file": str(wrong["ca"])}).start()
        time.sleep(2)
        assert not bad.link.connected.is_set() and bad.link.last_error
        bad.close()


def _status_handler():
    return CommandHandler(status=lambda: {"fps": 12.0, "enrolled": 0})


def wait_listening(sink, rec, timeout: float = 10.0) -> None:
    """Until the sink's command subscription is live: connected is not subscribed, and under load
    a command published at once can reach the broker before the sink's SUBSCRIBE does. A probe
    that is not JSON is answered once it is; then the probe's traces are forgotten."""
    deadline = time.monotonic() + timeout
    while not rec.wait_for(lambda: rec.on(T.response), 0.5):
        assert time.monotonic() < deadline, "the sink never answered on its command topic"
        rec.client.publish(T.command, b"probe", qos=1)
    time.sleep(0.3)  # the answers to earlier probes
    with rec.cond:
        rec.messages.clear()
    sink.hooked.clear()


def test_a_refused_command_is_recorded_as_its_size_and_hash_never_its_payload(broker, tmp_path, admin):
    """Anyone who may publish on the command topic must not be able to write into the audit log:
    a refused command becomes reason, a short command name, size and sha256 (issue 15)."""
    import hashlib

    sink = make_sink(tmp_path, broker.url, verifier=_verifier(admin, tmp_path), commands=_status_handler())
    sink.start()
    rec = Recorder(broker.port, [T.response + "/#"]).start()
    try:
        assert sink.link.wait_connected(10)
        wait_listening(sink, rec)
        flood = "x" * 200_000
        unsigned = {k: v for k, v in sign_command(admin, "reload", device_id=DEVICE).items() if k != "sig"}
        payloads = [json.dumps({**unsigned, "command": flood}).encode(), json.dumps(unsigned).encode()]
        for payload in payloads:
            rec.client.publish(T.command, payload, qos=1)
        assert rec.wait_for(lambda: len(rec.on(T.response)) >= 2)
        replies = rec.json_on(T.response)
        assert [r["reason"] for r in replies] == ["unsigned", "unsigned"]
        assert replies[0]["command"] is None and replies[1]["command"] == "reload"
        refused = [f for k, f in sink.hooked if k == "command_refused"]
        assert [f["command"] for f in refused] == [None, "reload"]
        for fields, payload in zip(refused, payloads):
            assert fields["bytes"] == len(payload) and fields["sha256"] == hashlib.sha256(payload).hexdigest()
            assert len(json.dumps(fields)) < 300  # nothing of the payload itself
    finally:
        rec.stop()
        sink.close()


def test_a_flood_of_unsigned_commands_is_recorded_as_a_count_not_line_by_line(broker, tmp_path, admin):
    """300 unsigned 10 kB commands: at most REFUSED_BURST refusals are recorded one by one, the
    rest as one `commands_suppressed` count, so such traffic cannot rotate verdicts out of the
    audit log; a signed command after the flood is still carried out."""
    from edge.mqtt.sink import REFUSED_BURST

    sink = make_sink(tmp_path, broker.url, verifier=_verifier(admin, tmp_path), commands=_status_handler())
    sink.start()
    rec = Recorder(broker.port, [T.response + "/#"]).start()
    try:
        assert sink.link.wait_connected(10)
        junk = json.dumps({"command": "reload", "pad": "x" * 10_000}).encode()
        for _ in range(300):
            rec.client.publish(T.command, junk, qos=1)
        deadline = time.monotonic() + 30
        while sink.counts["commands"] + sink.counts["commands_dropped"] < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.counts["commands"] + sink.counts["commands_dropped"] == 300
        rec.client.publish(T.command, json.dumps(sign_command(admin, "status", device_id=DEVICE)), qos=1)
        assert rec.wait_for(lambda: any(r.get("ok") for r in rec.json_on(T.response)))
    finally:
        rec.stop()
        sink.close()
    one_by_one = [k for k, _f in sink.hooked if k in ("command_refused", "command_dropped")]
    assert len(one_by_one) == REFUSED_BURST
    (summary,) = [f for k, f in sink.hooked if k == "commands_suppressed"]
    assert sum(summary["suppressed"].values()) == 300 - REFUSED_BURST


def test_a_signed_command_sent_during_a_flood_is_carried_out_and_verdicts_keep_flowing(broker, tmp_path, admin):
    """3,000 unsigned 1 kB messages on a real broker; a signed `reload` sent in the middle of them
    is carried out and verdicts published meanwhile all arrive. (Here the command worker keeps
    up; the next test fills the queue on purpose.)"""
    reloads = []
    handler = CommandHandler(status=lambda: {}, reload=lambda: reloads.append(time.monotonic()))
    sink = make_sink(tmp_path, broker.url, verifier=_verifier(admin, tmp_path), commands=handler)
    sink.start()
    rec = Recorder(broker.port, [T.response + "/#", T.verdict]).start()
    flooder = Recorder(broker.port, [T.availability], client_id="flooder").start()
    try:
        assert sink.link.wait_connected(10)
        junk = json.dumps({"command": "reload", "pad": "x" * 1000}).encode()
        for i in range(3000):
            flooder.client.publish(T.command, junk, qos=1)
            if i == 1500:
                rec.client.publish(T.command, json.dumps(sign_command(admin, "reload", device_id=DEVICE)), qos=1)
            if i % 300 == 0:
                sink.publish(make_verdict(i // 300 + 1))
        assert rec.wait_for(lambda: any(r.get("ok") for r in rec.json_on(T.response)), timeout=60)
        assert rec.wait_for(lambda: len(rec.on(T.verdict)) == 10, timeout=30)
        assert rec.seqs(T.verdict) == list(range(1, 11))
        assert len(reloads) == 1
    finally:
        flooder.stop()
        rec.stop()
        sink.close()


class DoorCamera:
    """A camera at a door: the astronaut walks up (`present` frames) and away (`away` empty
    frames), again and again, at most `fps` frames a second, until `leave` is set and the
    current visit is over (then the source ends, as a file would)."""

    def __init__(self, face: np.ndarray, *, present: int = 6, away: int = 12, fps: float = 20.0) -> None:
        empty = np.full((480, 640, 3), 96, np.uint8)
        rng = np.random.default_rng(0)
        visit = []
        for _ in range(present):
            frame = empty.copy()
            dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
            frame[16 + dy : 464 + dy, 96 + dx : 544 + dx] = cv2.resize(face, (448, 448))
            visit.append(frame)
        self.cycle = visit + [empty] * away
        self.name, self.finite, self.fps = "door", True, fps
        self.leave = threading.Event()
        self.reads = 0
        self._next = 0.0

    def open(self):
        pass

    def read(self):
        if self.leave.is_set() and self.reads % len(self.cycle) == 0:
            return None
        wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._next = time.monotonic() + 1.0 / self.fps
        self.reads += 1
        return self.cycle[(self.reads - 1) % len(self.cycle)]

    def close(self):
        pass


def test_a_flood_on_the_command_topic_loses_no_verdict_and_a_signed_revoke_is_carried_out(
    broker, tmp_path, admin, astronaut_rgb
):
    """Issue 15's acceptance test: an appliance built as `edge run` builds it (vault, real engine,
    MQTT and audit log from the config) sees the astronaut come and go while a publisher floods
    its command topic with 3,000 unsigned 2 kB messages, 40 larger ones under the size limit and
    20 over it (≈ 15 MB); a signed `revoke` of the astronaut is sent in the middle. Every verdict
    is in the audit log (seq 1…N, no gap) and was received on the verdict topic; the revoke was
    carried out; the flood did not rotate the audit log (its max_bytes is a fifteenth of the
    flood) and at most REFUSED_BURST refusals are recorded one by one, the rest as a count."""
    from edge.admin.signing import public_key_text
    from edge.app import appliance_from_config
    from edge.config import config_from_dict
    from edge.engine import Engine
    from edge.mqtt.sink import REFUSED_BURST
    from edge.vault import Vault, enroll

    engine = Engine(profile="fast")
    vault = Vault.init(tmp_path / "vault")
    photo = cv2.imencode(".png", cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    enroll(engine, vault, "Eileen Collins", [photo])
    limit, audit_max = 256 * 1024, 1024 * 1024
    audit = tmp_path / "audit.jsonl"
    config = config_from_dict(
        {
            "device": {"id": DEVICE},
            "engine": {"profile": "fast"},
            "vault": {"path": str(vault.directory)},
            "decision": {"cooldown_s": 0.0, "track_max_age": 4},
            "audit": {"path": str(audit), "max_bytes": audit_max, "backups": 3},
            "sinks": {"stdout": False},
            "mqtt": {
                "enabled": True,
                "url": broker.url,
                "outbox_path": str(tmp_path / "outbox"),
                "reconnect_min": 0.2,
                "admin_keys": [public_key_text(admin)],
                "command_max_bytes": limit,
            },
        }
    )
    rec = Recorder(broker.port, [T.verdict, T.response + "/#"]).start()
    flooder = Recorder(broker.port, [T.availability], client_id="flooder").start()
    camera = DoorCamera(astronaut_rgb)
    app = appliance_from_config(config, engine=engine, source=camera)
    assert app.gallery.people == ["Eileen Collins"]
    sink = next(s for s in app.sinks if s.name == "mqtt")
    stats: dict = {}
    runner = threading.Thread(target=lambda: stats.update(app.run(handle_signals=False)), name="appliance")
    t0 = time.monotonic()
    runner.start()
    flood = {"messages": 0, "bytes": 0}
    try:
        assert sink.link.wait_connected(10)
        assert rec.wait_for(lambda: rec.on(T.verdict), timeout=30), "no verdict before the flood"
        revoke = sign_command(admin, "revoke", {"name": "Eileen Collins"}, device_id=DEVICE, reply_to=T.response + "/r")
        small = json.dumps({"command": "reload", "pad": "x" * 2000}).encode()
        larger = json.dumps({"command": "import", "args": {"bundle": "A" * (limit - 100)}}).encode()
        oversized = b"{" + b" " * (limit + 10_000) + b"}"
        last, before = None, len(rec.on(T.verdict))
        for i in range(3060):
            payload = larger if i % 75 == 37 else oversized if i % 150 == 74 else small
            last = flooder.client.publish(T.command, payload, qos=1)
            flood["messages"] += 1
            flood["bytes"] += len(payload)
            if i == 1500:
                rec.client.publish(T.command, json.dumps(revoke), qos=1)
            if i % 50 == 0:
                time.sleep(0.1)  # spread over a few seconds, so that verdicts are made during the flood
        last.wait_for_publish(30)
        flood["seconds"] = time.monotonic() - t0
        flood["verdicts during"] = len(rec.on(T.verdict)) - before
        assert flood["verdicts during"] >= 2, "verdicts did not flow during the flood"
        assert rec.wait_for(lambda: rec.on(T.response + "/r"), timeout=30), "no reply to the revoke"
        (reply,) = rec.json_on(T.response + "/r")
        assert reply["ok"], reply
        assert reply["result"]["name"] == "Eileen Collins" and reply["result"]["photos"] == 1
        seen = lambda: sum(sink.counts[k] for k in ("commands", "commands_dropped", "commands_too_large"))  # noqa: E731
        deadline = time.monotonic() + 30
        while seen() < flood["messages"] + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen() == flood["messages"] + 1, sink.counts
        time.sleep(1.0)  # a verdict or two after the flood, now of a stranger
    finally:
        camera.leave.set()
        runner.join(60)
        flooder.stop()
    duration = time.monotonic() - t0
    assert not runner.is_alive()
    # the revoke was carried out: gone from the vault and from what the appliance matches against
    assert Vault.open(vault.directory).people(engine.model_version)[0] == []
    assert app.gallery.people == []
    # every verdict in the audit log, numbered without a gap, and on MQTT
    assert not audit.with_name("audit.jsonl.1").exists(), "the flood rotated the audit log"
    assert audit.stat().st_size < audit_max
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    verdicts = [r["seq"] for r in records if r["type"] == "verdict"]
    assert verdicts == list(range(1, stats["last_seq"] + 1)) and len(verdicts) >= 3
    assert sum(stats["verdicts"].values()) == len(verdicts)
    assert rec.wait_for(lambda: set(rec.seqs(T.verdict)) == set(verdicts), timeout=20)
    decisions = [(r["decision"], r["name"]) for r in records if r["type"] == "verdict"]
    assert ("granted", "Eileen Collins") in decisions
    events = [r for r in records if r["type"] == "event"]
    assert any(e["event"] == "reloaded" and e["people"] == 0 for e in events)
    # refusals: a handful one by one, the rest counted
    one_by_one = [e for e in events if e["event"] in ("command_refused", "command_dropped")]
    summaries = [e for e in events if e["event"] == "commands_suppressed"]
    assert len(one_by_one) <= REFUSED_BURST * (1 + int(duration // 60))
    assert len(summaries) >= 1
    suppressed = sum(n for e in summaries for n in e["suppressed"].values())
    assert len(one_by_one) + suppressed == flood["messages"]
    assert all(len(json.dumps(e)) < 400 for e in one_by_one)
    rec.stop()
    print(
        f"\nflood: {flood['messages']} messages, {flood['bytes'] / 1e6:.1f} MB in {flood['seconds']:.1f} s "
        f"({flood['verdicts during']} verdicts received meanwhile); "
        f"run {duration:.1f} s; refusals recorded {len(one_by_one)}, suppressed {suppressed} "
        f"({json.dumps([e['suppressed'] for e in summaries])}); verdicts {len(verdicts)} "
        f"{sorted(set(decisions))}; counts {sink.counts}; audit {audit.stat().st_size} bytes"
    )


def test_a_full_command_queue_drops_unsigned_messages_but_never_a_signed_one(tmp_path, admin):
    """The intake (paho's network thread) with the queue full: an unsigned or forged message is
    dropped and counted; a signed one goes to the signed lane, which the worker serves first."""
    from types import SimpleNamespace

    from edge.mqtt.sink import MAX_COMMAND_QUEUE

    sink = make_sink(tmp_path, "mqtt://127.0.0.1:1", verifier=_verifier(admin, tmp_path), commands=_status_handler())
    junk = SimpleNamespace(topic=T.command, payload=b'{"command": "reload"}', properties=None)
    for _ in range(MAX_COMMAND_QUEUE + 5):
        sink._on_message(junk)
    forged = sign_command(admin, "reload", device_id=DEVICE)
    forged["args"] = {"x": 1}
    sink._on_message(SimpleNamespace(topic=T.command, payload=json.dumps(forged).encode(), properties=None))
    assert sink._commands.full() and sink._signed.empty() and sink.counts["commands_dropped"] == 6
    signed = json.dumps(sign_command(admin, "reload", device_id=DEVICE)).encode()
    sink._on_message(SimpleNamespace(topic=T.command, payload=signed, properties=None))
    assert sink._signed.qsize() == 1 and sink.counts["commands_dropped"] == 6
    sink.outbox.close()


def test_an_oversized_command_is_refused_from_its_length_before_any_parsing(tmp_path, admin):
    """On paho's network thread: a payload over `command_max_bytes` is refused as too_large even
    when it is genuinely signed and the queue is full (so it never reaches `signed()`, which
    parses it): not queued, not in the signed lane, recorded as size and hash only."""
    import hashlib
    from types import SimpleNamespace

    from edge.mqtt.sink import MAX_COMMAND_QUEUE

    limit = 16 * 1024
    sink = make_sink(
        tmp_path, "mqtt://127.0.0.1:1", verifier=_verifier(admin, tmp_path), commands=_status_handler(),
        command_max_bytes=limit,
    )  # fmt: skip
    big = json.dumps(sign_command(admin, "status", {"pad": "x" * limit}, device_id=DEVICE)).encode()
    nested = b"[" * (limit + 1)
    for payload in (big, nested):
        sink._on_message(SimpleNamespace(topic=T.command, payload=payload, properties=None))
    assert sink._commands.empty() and sink._signed.empty()
    junk = SimpleNamespace(topic=T.command, payload=b'{"command": "reload"}', properties=None)
    for _ in range(MAX_COMMAND_QUEUE):
        sink._on_message(junk)
    sink._on_message(SimpleNamespace(topic=T.command, payload=big, properties=None))
    assert sink._commands.full() and sink._signed.empty()
    assert sink.counts["commands_too_large"] == 3 and sink.counts["commands_dropped"] == 0
    refused = [f for k, f in sink.hooked if k == "command_refused"]
    assert [f["reason"] for f in refused] == ["too_large"] * 3
    assert refused[0] == {
        "reason": "too_large", "command": None, "bytes": len(big), "sha256": hashlib.sha256(big).hexdigest(),
        "limit": limit,
    }  # fmt: skip
    just_fits = json.dumps(sign_command(admin, "status", device_id=DEVICE)).encode()
    sink._commands.get_nowait()
    sink._on_message(SimpleNamespace(topic=T.command, payload=just_fits, properties=None))
    assert sink._commands.full() and sink.counts["commands_too_large"] == 3
    sink.outbox.close()


def test_an_oversized_command_over_mqtt_gets_a_too_large_reply(broker, tmp_path, admin):
    """A signed command over the limit sent with `edge admin send`'s client: not carried out, the
    reply says too_large (on the response topic the sender asked for, MQTT 5), the limit taken
    from the config as `edge run` builds the sink; a nested-JSON bomb is `malformed`."""
    from edge.admin.signing import public_key_text
    from edge.app import mqtt_sink_from_config
    from edge.config import config_from_dict
    from edge.mqtt.admin import send_command

    cfg = config_from_dict(
        {
            "device": {"id": DEVICE},
            "mqtt": {
                "enabled": True,
                "url": broker.url,
                "outbox_path": str(tmp_path / "outbox"),
                "admin_keys": [public_key_text(admin)],
                "command_max_bytes": 64 * 1024,
            },
        }
    )
    sink = mqtt_sink_from_config(cfg)
    assert sink.command_max_bytes == 64 * 1024
    sink.commands = _status_handler()
    events = []
    sink.set_event_hook(lambda kind, fields: events.append((kind, fields)))
    sink.start()
    rec = Recorder(broker.port, [T.response + "/#"]).start()
    try:
        assert sink.link.wait_connected(10)
        settings = settings_for(broker.url)
        big = send_command(settings, admin, DEVICE, "status", {"pad": "x" * 70_000}, timeout=20)
        assert big["ok"] is False and big["reason"] == "too_large" and "65,536" in big["error"]
        assert send_command(settings, admin, DEVICE, "status", {"pad": "x" * 60_000}, timeout=20)["ok"]
        rec.client.publish(T.command, b"[" * 60_000, qos=1)
        assert rec.wait_for(lambda: any(r.get("reason") == "malformed" for r in rec.json_on(T.response)), timeout=20)
    finally:
        rec.stop()
        sink.close()
    reasons = [f["reason"] for k, f in events if k == "command_refused"]
    assert reasons == ["too_large", "malformed"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_commands_over_mqtt(broker, tmp_path, admin, protocol):
    """`edge admin send` round trip; replayed, forged and unsigned commands refused on command/response."""
    verifier = _verifier(admin, tmp_path)
    sink = make_sink(tmp_path, broker.url, verifier=verifier, commands=_status_handler(), mqtt={"protocol": protocol})
    sink.start()
    rec = Recorder(broker.port, [T.response + "/#"]).start()  # "/#" matches command/response too
    try:
        assert sink.link.wait_connected(10)
        cli = [sys.executable, "-m", "edge.cli", "admin", "send", "--mqtt", broker.url, "--device-id", DEVICE]
        cli += ["--admin-key", str(tmp_path / "admin.key"), "--protocol", protocol, "--timeout", "10", "status"]
        out = subprocess.run(cli, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        reply = json.loads(out.stdout)
        assert reply["ok"] and reply["code"] == 1000 and reply["result"]["fps"] == 12.0 and reply["request_id"]

        signed = sign_command(admin, "status", device_id=DEVICE)
        for _ in range(2):  # the second is a replay
            rec.client.publish(T.command, json.dumps(signed), qos=1)
        forged = sign_command(admin, "revoke", {"name": "Ada"}, device_id=DEVICE)
        forged["args"]["name"] = "Grace"
        rec.client.publish(T.command, json.dumps(forged), qos=1)
        unsigned = {k: v for k, v in sign_command(admin, "reload", device_id=DEVICE).items() if k != "sig"}
        rec.client.publish(T.command, json.dumps(unsigned), qos=1)
        rec.client.publish(T.command, b"garbage", qos=1)
        assert rec.wait_for(lambda: len(rec.on(T.response)) >= 5)
        replies = rec.json_on(T.response)
        assert [r["ok"] for r in replies[:2]] == [True, False]
        assert [r.get("reason") for r in replies[1:5]] == ["replayed", "bad_signature", "unsigned", "malformed"]
        assert all(r["code"] == 1200 and r["error"] for r in replies[1:5])
        assert [k for k, _f in sink.hooked].count("command_refused") == 4
        if protocol == "5":  # the MQTT 5 way: response topic and correlation data, no reply_to
            from edge.mqtt.client import response_properties

            reply_topic = T.response + "/mine"
            plain = sign_command(admin, "status", device_id=DEVICE)
            rec.client.publish(
                T.command, json.dumps(plain), qos=1, properties=response_properties(reply_topic, b"c-42")
            )
            assert rec.wait_for(lambda: rec.on(reply_topic))
            props = [p for t, p in rec.properties if t == reply_topic][0]
            assert props.CorrelationData == b"c-42" and json.loads(rec.on(reply_topic)[0])["ok"]
    finally:
        sink.close()
        rec.stop()


def test_vault_commands_people_import_revoke(broker, tmp_path, admin, astronaut_rgb):
    """import (a bundle sealed to the device), people, revoke, against a real vault and engine."""
    from edge.engine import Engine
    from edge.mqtt.admin import send_command
    from edge.vault import Vault, make_bundle

    engine = Engine(profile="fast")
    vault = Vault.init(tmp_path / "vault")
    reloads = []
    handler = CommandHandler(
        status=lambda: {}, vault_path=str(vault.directory), engine=engine, reload=lambda: reloads.append(1)
    )
    sink = make_sink(tmp_path, broker.url, verifier=_verifier(admin, tmp_path), commands=handler).start()
    try:
        assert sink.link.wait_connected(10)
        photo = cv2.imencode(".png", cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        bundle = make_bundle(vault.private_key.public_key, "Eileen Collins", [photo])
        settings = settings_for(broker.url)

        def send(command, args=None):
            return send_command(settings, admin, DEVICE, command, args, timeout=30)

        r = send("import", {"bundle": base64.b64encode(bundle).decode()})
        assert r["ok"], r
        assert r["result"]["name"] == "Eileen Collins"
        people = send("people")["result"]["people"]
        assert [p["name"] for p in people] == ["Eileen Collins"]
        assert "template" not in json.dumps(people).lower().replace("templates", "")
        assert send("revoke", {"name": "Eileen Collins"})["result"]["photos"] == 1
        assert send("people")["result"]["people"] == []
        bad = send("revoke", {"name": "Nobody"})
        assert not bad["ok"] and bad["code"] == 1200
        assert send("import", {"bundle": "bm90IGEgYnVuZGxl"})["ok"] is False
        assert len(reloads) == 2
    finally:
        sink.close()


def test_face_only_sealed_to_the_configured_recipient(broker, tmp_path, astronaut_rgb):
    from nacl.public import PrivateKey, SealedBox

    from edge.appliance.loop import face_crop_jpeg

    recipient = PrivateKey.generate()
    pub = base64.b64encode(bytes(recipient.public_key)).decode()
    sink = make_sink(tmp_path, broker.url, face_recipient=pub).start()
    rec = Recorder(broker.port, [T.verdict]).start()
    try:
        assert sink.wants_face
        verdict = make_verdict(1)
        from dataclasses import replace

        jpeg = face_crop_jpeg(astronaut_rgb, (170, 40, 120, 130))
        sink.publish(replace(verdict, face_jpeg=jpeg))
        assert rec.wait_for(lambda: rec.on(T.verdict))
        payload = rec.json_on(T.verdict)[0]
        sealed = base64.b64decode(payload["face"]["sealed"])
        assert jpeg not in rec.on(T.verdict)[0] and b"JFIF" not in sealed
        opened = SealedBox(recipient).decrypt(sealed)
        assert opened == jpeg
        img = cv2.imdecode(np.frombuffer(opened, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and min(img.shape[:2]) > 50
        assert "face_jpeg" not in json.dumps(verdict.to_dict())  # stdout and the audit log never carry it
    finally:
        sink.close()
        rec.stop()


def _frames_dir(path: Path, rgb: np.ndarray, n: int) -> Path:
    path.mkdir()
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 80:560] = cv2.resize(rgb, (480, 480))
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for i in range(n):
        cv2.imwrite(str(path / f"{i:04d}.jpg"), bgr)
    return path


def test_edge_run_last_will_after_sigkill(broker, tmp_path, astronaut_rgb):
    """`edge run --mqtt`: online, a verdict with seq, then SIGKILL → the broker publishes the last will."""
    conf, frames = _door(tmp_path, astronaut_rgb, 600, keepalive=5)
    rec = Recorder(broker.port, ["edge/#"]).start()
    proc = _edge_run(conf, frames, broker.url)
    try:
        assert rec.wait_for(lambda: rec.seqs(T.verdict), timeout=60)
        assert rec.on(T.availability) == [b"online"]
        assert rec.json_on(T.verdict)[0]["seq"] == 1 and rec.json_on(T.verdict)[0]["name"] == "astronaut"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert rec.wait_for(lambda: rec.on(T.availability)[-1:] == [b"offline"], timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        rec.stop()


def test_protocol_fallback_to_311(tmp_path):
    """A broker that only speaks 3.1.1 answers MQTT 5 with 'unacceptable protocol version': fall back.

    The only fake in this file: mosquitto cannot be told to refuse MQTT 5, so a few lines of
    socket code play a 3.1.1-only broker for the CONNECT/CONNACK exchange.
    """
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    levels = []

    def serve():
        for _ in range(2):
            conn, _addr = server.accept()
            with conn:
                data = conn.recv(1024)
                level = data[8]  # fixed header (2) + "\x00\x04MQTT" (6) → protocol level
                levels.append(level)
                conn.sendall(bytes([0x20, 2, 0, 1 if level == 5 else 0]))
                if level == 4:
                    time.sleep(1.0)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    statuses = []
    from edge.mqtt.client import MqttLink

    link = MqttLink(settings_for(f"mqtt://127.0.0.1:{port}"), on_status=lambda k, d: statuses.append(k))
    link.start()
    t.join(10)
    assert levels == [5, 4], levels
    assert link.protocol == "3.1.1" and "fallback" in statuses
    link.stop(timeout=2)
    server.close()


def test_docs_show_the_discovery_payloads_the_code_makes(repo_root):
    text = (repo_root / "docs" / "mqtt.md").read_text()
    for topic, payload in discovery_messages("door-1", Topics.for_device("door-1"), sw_version="0.1.0"):
        block = f"`{topic}`\n\n```json\n{json.dumps(payload, indent=2)}\n```"
        assert block in text, f"docs/mqtt.md does not show {topic} as the code makes it"


def test_full_outbox_drops_oldest_with_a_counted_event(tmp_path):
    """Wired from the config as `edge run` does: a full outbox drops the oldest and says so."""
    from edge.app import mqtt_sink_from_config
    from edge.config import config_from_dict

    cfg = config_from_dict(
        {
            "device": {"id": DEVICE},
            "mqtt": {
                "enabled": True,
                "url": f"mqtt://127.0.0.1:{free_port()}",  # nobody there
                "outbox_path": str(tmp_path / "outbox"),
                "outbox_max": 10,
            },
        }
    )
    sink = mqtt_sink_from_config(cfg)
    events = []
    sink.set_event_hook(lambda kind, fields: events.append((kind, fields)))
    sink.start()
    for seq in range(1, 16):
        sink.publish(make_verdict(seq))
    sink.close()
    drops = [f for k, f in events if k == "outbox_dropped"]
    assert [d["first_seq"] for d in drops] == [1, 2, 3, 4, 5] and drops[-1]["total"] == 5
    assert Outbox(tmp_path / "outbox").seqs() == list(range(6, 16))


def test_edge_run_obeys_signed_commands(broker, tmp_path, admin, astronaut_rgb):
    """The whole chain: `edge admin send` → broker → `edge run` (vault, engine, loop) → reply; revoke reloads."""
    from edge.admin.signing import public_key_text

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    edge = [sys.executable, "-m", "edge.cli"]
    subprocess.run([*edge, "keys", "init", "--vault", str(tmp_path / "vault")], check=True, capture_output=True)
    subprocess.run(
        [*edge, "enroll", "--vault", str(tmp_path / "vault"), "Eileen Collins", str(photo)],
        check=True,
        capture_output=True,
    )
    conf, frames = _door(tmp_path, astronaut_rgb, 600, admin_keys=[public_key_text(admin)])
    text = conf.read_text().replace('[vault]\npath = ""', f'[vault]\npath = "{tmp_path / "vault"}"')
    conf.write_text(text.replace(f'[gallery]\npath = "{tmp_path / "gallery"}"', '[gallery]\npath = ""'))
    rec = Recorder(broker.port, [T.event, T.availability]).start()
    proc = _edge_run(conf, frames, broker.url)
    send = [*edge, "admin", "send", "--mqtt", broker.url, "--device-id", DEVICE]
    send += ["--admin-key", str(tmp_path / "admin.key"), "--timeout", "30"]
    try:
        assert rec.wait_for(lambda: rec.on(T.availability) == [b"online"], timeout=60)
        status = subprocess.run([*send, "status"], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        result = json.loads(status.stdout)["result"]
        assert result["enrolled"] == 1 and result["source"] == str(frames) and "outbox" in result["mqtt"]
        revoke = subprocess.run([*send, "revoke", "Eileen Collins"], capture_output=True, text=True, timeout=60)
        assert revoke.returncode == 0, revoke.stderr
        assert json.loads(revoke.stdout)["result"]["photos"] == 1
        assert rec.wait_for(
            lambda: any(e["event"] == "reloaded" and e["people"] == 0 for e in rec.json_on(T.event)), timeout=30
        )
        again = subprocess.run([*send, "revoke", "Eileen Collins"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and json.loads(again.stdout)["reason"] == "failed"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        rec.stop()
    assert proc.returncode == 0
    assert rec.on(T.availability)[-1] == b"stopped"
