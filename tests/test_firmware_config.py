"""firmware_config/: the Pi's config.txt fragment and the site broker (Mosquitto) example.

The broker tests run the REAL mosquitto (Debian package; scripts/setup.sh installs it) on
free loopback ports in a temp dir, with a config DERIVED from the shipped
firmware_config/mosquitto/edge.conf (only ports and file paths rewritten), the shipped ACL
file as it is, TLS with a CA and broker certificate made here with the openssl CLI, and a
password file made with `mosquitto_passwd -b`. They prove what the README promises: a
device writes only its own topics, reads only its own commands, wrong logins are refused,
another valid login cannot take a door's client id over (with a control broker without the
setting, where it can), and the real edge MQTT client (verdicts, availability, discovery,
signed commands) works through the ACL unchanged. One broker serves the module; it is killed at
the end (the control broker lives for its one test).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from mqtt_broker import MOSQUITTO, free_port, make_ca
from mqtt_helpers import make_verdict

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware_config"
MOSQ = FIRMWARE / "mosquitto"
CONFIG_TXT = FIRMWARE / "config.txt"

WAIT = 5.0  # seconds: the longest any single broker round trip may take before a test fails
SETTING = re.compile(r"#?[a-z_]+=\S+")  # a config.txt setting line, active or commented out
PASSWORDS = {"door-1": "pw-door-1", "door-2": "pw-door-2", "admin": "pw-admin", "homeassistant": "pw-ha"}


def _directives(path: Path) -> list[tuple[str, str]]:
    """(key, value) for every non-comment line of a mosquitto config or ACL file, in order."""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value.strip()))
    return out


# --- config.txt ------------------------------------------------------------------------------------


def test_config_txt_auto_detect_and_commented_overlays():
    lines = CONFIG_TXT.read_text().splitlines()
    active = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    assert active == ["camera_auto_detect=1"], "only auto-detection is on; manual overlays stay commented"
    commented = {ln.lstrip("#").strip() for ln in lines if SETTING.fullmatch(ln)}
    for sensor in ("ov5647", "imx219", "imx708", "imx477", "imx296"):  # v1, v2, Camera Module 3, HQ, GS
        assert f"dtoverlay={sensor}" in commented, sensor
    assert any(re.fullmatch(r"dtoverlay=\w+,cam0", c) for c in commented)  # second connector (Pi 5 / CM)
    assert any(re.fullmatch(r"dtoverlay=\w+,cam1", c) for c in commented)
    assert not any(c.startswith(("gpu_mem=", "start_x=")) for c in commented), "legacy stack settings"


def test_config_txt_every_setting_is_explained():
    """Each setting line (active or commented out) has a comment line of prose somewhere above it in its block."""
    lines = CONFIG_TXT.read_text().splitlines()
    for i, line in enumerate(lines):
        if not SETTING.fullmatch(line):
            continue
        block = []
        for prev in reversed(lines[:i]):
            if not prev.strip():
                break
            block.append(prev)
        prose = [p for p in block if p.startswith("#") and not SETTING.fullmatch(p) and len(p) > 2]
        assert prose, f"config.txt line {i + 1} ({line!r}) has no comment explaining it"


# --- the shipped broker files ------------------------------------------------------------------------


def test_broker_conf_is_locked_down():
    d = _directives(MOSQ / "edge.conf")
    keys = dict(d)  # last value wins, as in mosquitto; listeners checked separately below
    assert keys["allow_anonymous"] == "false"
    assert keys["per_listener_settings"] == "false"  # one password file and ACL for every listener
    assert keys["password_file"] == "/etc/mosquitto/passwd"
    assert keys["acl_file"] == "/etc/mosquitto/acl"
    assert keys["persistence"] == "true"
    listeners = [v for k, v in d if k == "listener"]
    assert listeners == ["8883", "1883 127.0.0.1"], "TLS on the network, plain text on loopback only"
    tls_block = [k for k, _v in d[d.index(("listener", "8883")) : d.index(("listener", "1883 127.0.0.1"))]]
    for key in ("cafile", "certfile", "keyfile", "tls_version"):
        assert key in tls_block, f"{key} belongs to the 8883 listener"
    assert keys["tls_version"] in ("tlsv1.2", "tlsv1.3")
    # Debian's mosquitto.conf sets these; a second assignment is a fatal "Duplicate" error.
    assert not {"pid_file", "persistence_location", "log_dest", "user"} & set(keys)


def test_acl_grants_nothing_to_anonymous_clients():
    rules = _directives(MOSQ / "acl")
    first_user = next(i for i, (k, _v) in enumerate(rules) if k == "user")
    assert all(k == "pattern" for k, _v in rules[:first_user]), "topic lines before `user` would apply to anonymous"
    assert not any(v.split()[-1] in ("#", "edge/#") for k, v in rules if k == "pattern"), "no blanket pattern"


# --- a real broker from the shipped files ------------------------------------------------------------


@dataclass
class SiteBroker:
    tls_port: int
    local_port: int
    ca: Path
    log: Path


def derive_config(shipped: str, *, tls_port: int, local_port: int, certs: dict[str, Path], workdir: Path) -> str:
    """The shipped edge.conf with its listeners moved to free loopback ports and its files to `workdir`.

    Every other line is kept as it is. A new line naming a file fails here, so this test is
    updated along with the config rather than silently running without it.
    """
    files = {
        "/etc/mosquitto/certs/ca.crt": certs["ca"],
        "/etc/mosquitto/certs/broker.crt": certs["server_cert"],
        "/etc/mosquitto/certs/broker.key": certs["server_key"],
        "/etc/mosquitto/passwd": workdir / "passwd",
        "/etc/mosquitto/acl": MOSQ / "acl",  # the shipped ACL, verbatim
    }
    out = []
    for line in shipped.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "listener":
            port = {"8883": tls_port, "1883 127.0.0.1": local_port}[value.strip()]
            line = f"listener {port} 127.0.0.1"  # tests listen on loopback only
        elif "/" in value and not key.startswith("#"):
            assert value in files, f"edge.conf names a file this test does not provide: {line}"
            line = f"{key} {files[value]}"
        out.append(line)
    out += [
        "",
        "# --- test only ---",
        f"persistence_location {workdir}/",  # mosquitto.conf's job on a real broker
        f"log_dest file {workdir}/mosquitto.log",
        "log_type all",
    ]
    if os.geteuid() == 0:  # as root mosquitto switches to user "mosquitto", who cannot read the temp dir
        out.append("user root")
    return "\n".join(out) + "\n"


def _need_broker_tools() -> None:
    missing = [tool for tool, path in (("mosquitto", MOSQUITTO), ("mosquitto_passwd", None), ("openssl", None))
               if not (Path(path).exists() if path else shutil.which(tool))]  # fmt: skip
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install mosquitto openssl; scripts/setup.sh)")


@contextlib.contextmanager
def running_site_broker(work: Path, shipped: str):
    """A real mosquitto from `shipped` (the text of an edge.conf) on free loopback ports; killed on exit."""
    certs = make_ca(work / "certs")
    passwd = work / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True, timeout=30)
    tls_port, local_port = free_port(), free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(derive_config(shipped, tls_port=tls_port, local_port=local_port, certs=certs, workdir=work))
    log, stderr = work / "mosquitto.log", work / "mosquitto.stderr"
    with stderr.open("wb") as err:  # a file, not a pipe: a full pipe would stall the broker
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], cwd=work, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 10
        pending = {tls_port, local_port}
        while pending:
            if proc.poll() is not None:
                logs = stderr.read_text() + (log.read_text() if log.exists() else "")
                pytest.fail(f"mosquitto exited ({proc.returncode}): {logs}")
            if time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not listen on {sorted(pending)} within 10 s")
            for port in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    pending.discard(port)
                except OSError:
                    time.sleep(0.05)
        yield SiteBroker(tls_port, local_port, certs["ca"], log)
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site_broker(tmp_path_factory):
    _need_broker_tools()
    with running_site_broker(tmp_path_factory.mktemp("site-broker"), (MOSQ / "edge.conf").read_text()) as broker:
        yield broker


class Client:
    """A paho MQTT 5 client with blocking helpers that all time out (WAIT)."""

    def __init__(self, broker: SiteBroker, user: str | None, password: str | None = None, *, tls: bool = True):
        self.user = user
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv5)  # fmt: skip
        if user is not None:
            self.client.username_pw_set(user, PASSWORDS.get(user) if password is None else password)
        if tls:
            self.client.tls_set(ca_certs=str(broker.ca))
        self.port = broker.tls_port if tls else broker.local_port
        self.connack: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.acks: dict[int, object] = {}
        self.subacks: queue.Queue = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        # retained messages (left by earlier tests) are not what these tests look at
        self.client.on_message = lambda _c, _u, m: None if m.retain else self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put(rcs)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc)

    def connect(self):
        """Connect and return the CONNACK reason code (Success or the refusal)."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        try:
            return self.connack.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"no CONNACK for {self.user} within {WAIT} s")

    def __enter__(self) -> Client:
        rc = self.connect()
        assert not rc.is_failure, f"{self.user} could not log in: {rc}"
        return self

    def __exit__(self, *_exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, *topics: str) -> None:
        self.client.subscribe([(t, 1) for t in topics])
        codes = self.subacks.get(timeout=WAIT)
        assert not any(rc.is_failure for rc in codes), codes

    def publish(self, topic: str, payload: bytes | str, retain: bool = False, wait: float = WAIT):
        """Publish at QoS 1 and return the PUBACK reason code (MQTT 5 says 'Not authorized' for ACL refusals)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=wait)
        deadline = time.monotonic() + wait
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def received_until(self, marker: tuple[str, bytes], wait: float = WAIT) -> list[tuple[str, bytes]]:
        """Every message up to and including `marker` (which must arrive within `wait` seconds)."""
        got = []
        deadline = time.monotonic() + wait
        while True:
            try:
                msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{self.user}: {marker[0]} did not arrive within {wait} s; got {len(got)} others")
            got.append(msg)
            if msg == marker:
                return got


def _refused(rc) -> bool:
    return rc.is_failure and rc.value in (134, 135)  # Bad user name or password / Not authorized


def test_device_publishes_its_own_topics_admin_receives(site_broker):
    with Client(site_broker, "admin") as admin, Client(site_broker, "door-1") as door:
        admin.subscribe("edge/#")
        for leaf in ("verdict", "availability", "state", "event", "command/response", "command/response/ab12"):
            rc = door.publish(f"edge/door-1/{leaf}", leaf)
            assert not rc.is_failure, (leaf, rc)
        got = admin.received_until(("edge/door-1/command/response/ab12", b"command/response/ab12"))
        assert [t for t, _p in got] == [
            f"edge/door-1/{leaf}"
            for leaf in ("verdict", "availability", "state", "event", "command/response", "command/response/ab12")
        ]


def test_device_cannot_write_as_another_device_or_send_commands(site_broker):
    with Client(site_broker, "admin") as admin, Client(site_broker, "door-1") as door:
        admin.subscribe("edge/#", "homeassistant/#")
        forged = [
            "edge/door-2/verdict",
            "edge/door-2/availability",
            "edge/door-1/command",  # commands come from the admin only
            "edge/door-2/command",
            "edge/door-1",
            "edge/door-1x/verdict",
            "homeassistant/sensor/edge_door-2/granted/config",
            "homeassistant/status",
        ]
        for topic in forged:
            rc = door.publish(topic, b"forged")
            assert rc.is_failure and rc.value == 135, (topic, rc)  # PUBACK: Not authorized
        # Messages from one client are delivered in order: once the marker is here, a forged
        # message that got through would have arrived before it.
        assert not door.publish("edge/door-1/verdict", b"marker").is_failure
        got = admin.received_until(("edge/door-1/verdict", b"marker"))
        assert got == [("edge/door-1/verdict", b"marker")], got


def test_device_receives_only_its_own_commands(site_broker):
    with Client(site_broker, "admin") as admin, Client(site_broker, "door-1") as door:
        door.subscribe("edge/+/command", "homeassistant/status")
        assert not admin.publish("edge/door-2/command", b"for door-2").is_failure
        assert not admin.publish("edge/door-1/command", b"for door-1").is_failure
        assert door.received_until(("edge/door-1/command", b"for door-1")) == [("edge/door-1/command", b"for door-1")]


def test_device_cannot_read_other_devices(site_broker):
    with (
        Client(site_broker, "door-2") as other,
        Client(site_broker, "admin") as admin,
        Client(site_broker, "door-1") as door,
    ):
        door.subscribe("edge/#")  # allowed to subscribe; each message is still checked against the ACL
        for leaf in ("verdict", "state", "event", "command/response"):
            assert not other.publish(f"edge/door-2/{leaf}", b"door-2's").is_failure
        # Mosquitto queues a message for its subscribers before it sends the PUBACK, so anything
        # door-2 sent is ahead of this marker in door-1's queue.
        assert not admin.publish("edge/door-1/command", b"marker").is_failure
        assert door.received_until(("edge/door-1/command", b"marker")) == [("edge/door-1/command", b"marker")]


def test_discovery_and_home_assistant_birth(site_broker):
    with Client(site_broker, "homeassistant") as ha, Client(site_broker, "door-1") as door:
        ha.subscribe("homeassistant/+/+/+/config", "edge/#")
        door.subscribe("homeassistant/status")
        topic = "homeassistant/binary_sensor/edge_door-1/access_granted/config"
        assert not door.publish(topic, b"{}", retain=True).is_failure
        assert ha.received_until((topic, b"{}")) == [(topic, b"{}")]
        assert not ha.publish("homeassistant/status", b"online").is_failure
        assert door.received_until(("homeassistant/status", b"online")) == [("homeassistant/status", b"online")]
        assert not door.publish(topic, b"", retain=True).is_failure  # clear the retained config again


@pytest.mark.parametrize(
    ("user", "password", "tls"),
    [
        ("door-1", "wrong", True),
        ("door-3", "pw-door-1", True),  # not in the password file
        (None, None, True),  # anonymous
        (None, None, False),  # anonymous on the loopback listener
        ("admin", "wrong", False),
    ],
)
def test_bad_logins_are_refused(site_broker, user, password, tls):
    c = Client(site_broker, user, password, tls=tls)
    try:
        rc = c.connect()
        assert _refused(rc), rc
    finally:
        c.client.loop_stop()


def test_loopback_listener_obeys_the_same_acl(site_broker):
    with Client(site_broker, "admin") as admin, Client(site_broker, "door-1", tls=False) as door:
        admin.subscribe("edge/#")
        assert door.publish("edge/door-2/verdict", b"forged").value == 135
        assert not door.publish("edge/door-1/verdict", b"marker").is_failure
        assert admin.received_until(("edge/door-1/verdict", b"marker")) == [("edge/door-1/verdict", b"marker")]


def test_tls_listener_needs_tls_and_the_site_ca(site_broker, tmp_path):
    # plain MQTT on the TLS port: no CONNACK, only the end of the connection (or a TLS alert)
    connect = bytes([0x10, 16, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 4]) + b"test"
    with socket.create_connection(("127.0.0.1", site_broker.tls_port), timeout=WAIT) as s:
        s.sendall(connect)
        try:
            reply = s.recv(16)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    assert not reply.startswith(b"\x20"), "the TLS listener answered plain MQTT"
    # a client that trusts another CA refuses the broker's certificate
    other_ca = make_ca(tmp_path / "other")["ca"]
    ctx = ssl.create_default_context(cafile=str(other_ca))
    with socket.create_connection(("127.0.0.1", site_broker.tls_port), timeout=WAIT) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # and one that trusts the site CA gets through, checking the name in the certificate
    ctx = ssl.create_default_context(cafile=str(site_broker.ca))
    with socket.create_connection(("127.0.0.1", site_broker.tls_port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_edge_client_works_through_the_acl(site_broker, tmp_path):
    """The real device client (MqttSink) and `edge admin send`, logged in as the README says."""
    from edge.admin.commands import CommandHandler
    from edge.admin.signing import CommandVerifier, generate_admin_key, public_key_text
    from edge.config import MqttConfig
    from edge.mqtt.admin import send_command
    from edge.mqtt.client import MqttSettings
    from edge.mqtt.outbox import Outbox
    from edge.mqtt.sink import MqttSink
    from edge.mqtt.topics import Topics, discovery_messages

    url = f"mqtts://127.0.0.1:{site_broker.tls_port}"

    def settings(user: str) -> MqttSettings:
        password_file = tmp_path / f"{user}.password"  # as /etc/edge/mqtt.password on a device
        password_file.write_text(PASSWORDS[user] + "\n")
        cfg = MqttConfig(url=url, username=user, password_file=str(password_file), ca_file=str(site_broker.ca),
                         reconnect_min=0.2, reconnect_max=1.0)  # fmt: skip
        return MqttSettings.from_config(cfg, client_id=f"edge-{user}-{uuid.uuid4().hex[:6]}")

    key = generate_admin_key(tmp_path / "admin.key")
    verifier = CommandVerifier([public_key_text(key)], device_id="door-1", nonce_log=tmp_path / "nonces.json")
    handler = CommandHandler(status=lambda: {"fps": 12.5, "enrolled": 2})
    topics = Topics.for_device("door-1")
    n_entities = len(discovery_messages("door-1", topics))
    with Client(site_broker, "homeassistant") as ha:
        ha.subscribe("edge/door-1/#", "homeassistant/+/edge_door-1/+/config")
        sink = MqttSink(settings("door-1"), device_id="door-1", outbox=Outbox(tmp_path / "outbox"),
                        verifier=verifier, commands=handler)  # fmt: skip
        sink.start()
        try:
            assert sink.link.wait_connected(WAIT), sink.link.last_error
            sink.state({"fps": 12.5, "enrolled": 2})
            sink.publish(make_verdict(1))
            deadline = time.monotonic() + WAIT
            seen: dict[str, bytes] = {}
            while not (topics.verdict in seen and topics.state in seen and topics.availability in seen
                       and sum(t.endswith("/config") for t in seen) == n_entities):  # fmt: skip
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"the device's messages did not all pass the ACL: {sorted(seen)}"
                try:
                    topic, payload = ha.messages.get(timeout=remaining)
                except queue.Empty:
                    continue
                seen[topic] = payload
            assert json.loads(seen[topics.verdict])["seq"] == 1
            assert seen[topics.availability] == b"online"
            reply = send_command(settings("admin"), key, "door-1", "status", timeout=10)
            assert reply["ok"] and reply["result"]["fps"] == 12.5, reply
            for topic in [t for t in seen if t.endswith("/config")]:  # leave no retained discovery behind
                sink.link.publish(topic, b"", qos=1, retain=True)
        finally:
            sink.close()


def test_the_broker_cuts_off_packets_far_over_the_devices_command_limit(site_broker):
    """max_packet_size (10 MiB): a command just over the device's default limit (8 MiB) still
    reaches the device, which refuses and records it; one of 11 MiB never crosses the broker."""
    from edge.config import MqttConfig

    limit = MqttConfig().command_max_bytes
    with Client(site_broker, "door-1") as door:
        door.subscribe("edge/door-1/command")
        with Client(site_broker, "admin") as admin:
            # 8 MiB through the broker: a slow round trip on a loaded machine is not a failure
            assert not admin.publish("edge/door-1/command", b"x" * (limit + 1024), wait=60).is_failure
            got = door.received_until(("edge/door-1/command", b"x" * (limit + 1024)), wait=60)
            assert len(got) == 1
        with Client(site_broker, "admin") as admin:
            admin.client.publish("edge/door-1/command", b"y" * (11 * 1024 * 1024), qos=1)
            time.sleep(1.0)
        with Client(site_broker, "admin") as admin:
            assert not admin.publish("edge/door-1/command", b"marker").is_failure
        assert door.received_until(("edge/door-1/command", b"marker")) == [("edge/door-1/command", b"marker")]


# --- client ids are bound to user names --------------------------------------------------------------

TAKEOVER_ATTEMPTS = 10


def _takeover_attempts(broker: SiteBroker, *, tls: bool) -> dict:
    """The real device client (MqttLink, client id edge-door-1, last will `offline`) logged in as
    door-1; then other valid logins (door-2, homeassistant) connect again and again with the client
    id edge-door-1. What the device and an admin watching its availability saw."""
    from edge.config import MqttConfig
    from edge.mqtt.client import MqttLink, MqttSettings
    from edge.mqtt.topics import Topics

    topics = Topics.for_device("door-1")
    password_file = broker.log.parent / "door-1.password"
    password_file.write_text(PASSWORDS["door-1"] + "\n")
    scheme, port = ("mqtts", broker.tls_port) if tls else ("mqtt", broker.local_port)
    cfg = MqttConfig(url=f"{scheme}://127.0.0.1:{port}", username="door-1", password_file=str(password_file),
                     ca_file=str(broker.ca) if tls else "", reconnect_min=0.2, reconnect_max=0.5)  # fmt: skip
    statuses: list[tuple[str, str]] = []
    device = MqttLink(
        MqttSettings.from_config(cfg, client_id="edge-door-1"),  # as `edge run` names it (edge/app.py)
        will=(topics.availability, b"offline", 1, True),
        on_status=lambda kind, detail: statuses.append((kind, detail)),
    )
    accepted = 0
    with Client(broker, "admin") as admin:
        admin.subscribe(topics.availability)
        device.start()
        try:
            assert device.wait_connected(WAIT), device.last_error
            assert device.publish(topics.availability, b"online", qos=1, retain=True) is not None
            admin.received_until((topics.availability, b"online"))
            for i in range(TAKEOVER_ATTEMPTS):
                user = ("door-2", "homeassistant")[i % 2]
                attacker = Client(broker, user, tls=tls)
                attacker.client._client_id = b"edge-door-1"  # the device's client id
                try:
                    rc = attacker.connect()
                    accepted += not rc.is_failure
                    time.sleep(0.1)  # long enough for a takeover to reach the device
                finally:
                    attacker.client.disconnect()
                    attacker.client.loop_stop()
            # Publish a marker through the device once it is connected (without the binding, after
            # the last takeover it reconnects within reconnect_max): whatever it lost comes before.
            time.sleep(0.6)
            assert device.wait_connected(WAIT), device.last_error
            assert device.publish(topics.availability, b"marker", qos=1) is not None
            seen = admin.received_until((topics.availability, b"marker"), wait=10)
        finally:
            device.stop(timeout=2.0)
    return {
        "accepted": accepted,
        "connects": device.connects,
        "disconnects": [d for k, d in statuses if k == "disconnected"],
        "offline": sum(payload == b"offline" for _t, payload in seen),
    }


@pytest.mark.parametrize("tls", [True, False], ids=["tls-listener", "loopback-listener"])
def test_another_login_cannot_take_over_a_devices_client_id(site_broker, tls):
    """use_username_as_clientid: whatever client id door-2 or homeassistant asks for, the broker
    gives it its user name, so the door's session is never taken over (no disconnect, no
    false `offline` from its last will)."""
    got = _takeover_attempts(site_broker, tls=tls)
    assert got["accepted"] == TAKEOVER_ATTEMPTS, "valid logins still get in (under their own client id)"
    assert got == {"accepted": TAKEOVER_ATTEMPTS, "connects": 1, "disconnects": [], "offline": 0}


def test_without_the_binding_another_login_takes_over_the_client_id(tmp_path):
    """The attack the setting stops, shown on the same broker configuration minus
    use_username_as_clientid: each login with the door's client id throws the door off and
    makes the broker publish its last will."""
    _need_broker_tools()
    shipped = (MOSQ / "edge.conf").read_text()
    unbound = "\n".join(ln for ln in shipped.splitlines() if not ln.startswith("use_username_as_clientid"))
    with running_site_broker(tmp_path, unbound) as broker:
        got = _takeover_attempts(broker, tls=False)
    assert got["accepted"] == TAKEOVER_ATTEMPTS
    assert got["connects"] > 1 and got["disconnects"] and got["offline"] >= 1, got


def test_every_listener_binds_client_ids_to_user_names():
    d = _directives(MOSQ / "edge.conf")
    listeners = [i for i, (k, _v) in enumerate(d) if k == "listener"]
    for start, end in zip(listeners, [*listeners[1:], len(d)]):
        block = dict(d[start:end])
        assert block.get("use_username_as_clientid") == "true", f"listener {d[start][1]}"


# --- Home Assistant's topics (docs/mqtt.md, "Home Assistant") ---------------------------------------------


def test_only_home_assistant_may_send_the_unsigned_commands(site_broker):
    """edge/<id>/ha/command carries no signature: the ACL is its guard. HA may write it; a door (its
    own or another's), the admin and anyone else may not; the device reads only its own."""
    with (
        Client(site_broker, "homeassistant") as ha,
        Client(site_broker, "admin") as admin,
        Client(site_broker, "door-2") as other,
        Client(site_broker, "door-1") as door,
    ):
        door.subscribe("edge/+/ha/command")
        for client, topic in (
            (other, "edge/door-1/ha/command"),
            (door, "edge/door-1/ha/command"),
            (admin, "edge/door-1/ha/command"),
        ):
            rc = client.publish(topic, b"door_disable")
            assert rc.is_failure and rc.value == 135, (client.user, topic, rc)
        assert not ha.publish("edge/door-2/ha/command", b"reload").is_failure  # not door-1's to read
        assert not ha.publish("edge/door-1/ha/command", b"reload").is_failure
        got = door.received_until(("edge/door-1/ha/command", b"reload"))
        assert got == [("edge/door-1/ha/command", b"reload")], got


def test_device_publishes_its_home_assistant_view_and_only_its_own(site_broker):
    with Client(site_broker, "homeassistant") as ha, Client(site_broker, "door-1") as door:
        ha.subscribe("edge/#")
        for leaf in ("ha/last", "ha/event", "ha/seen/ada_12345678"):
            assert not door.publish(f"edge/door-1/{leaf}", leaf).is_failure, leaf
        for topic in ("edge/door-2/ha/last", "edge/door-2/ha/seen/x", "edge/door-1/ha/seen/x/y", "edge/door-1/ha/x"):
            rc = door.publish(topic, b"forged")
            assert rc.is_failure and rc.value == 135, (topic, rc)
        assert not door.publish("edge/door-1/verdict", b"marker").is_failure
        got = ha.received_until(("edge/door-1/verdict", b"marker"))
        assert [t for t, _p in got] == [
            "edge/door-1/ha/last",
            "edge/door-1/ha/event",
            "edge/door-1/ha/seen/ada_12345678",
            "edge/door-1/verdict",
        ]


# --- fleet enrolment (docs/fleet.md): group commands and the retained fleet state ---------------------------


def test_fleet_topics_doors_read_group_commands_and_write_only_their_own_fleet_state(site_broker):
    with Client(site_broker, "admin") as admin, Client(site_broker, "door-1") as door:
        admin.subscribe("edge/#")
        door.subscribe("edge/group/+/cmd")
        assert not admin.publish("edge/group/lobby/cmd", b"group").is_failure
        assert door.received_until(("edge/group/lobby/cmd", b"group")) == [("edge/group/lobby/cmd", b"group")]
        for topic in ("edge/door-2/fleet", "edge/group/lobby/cmd"):  # another door's state; a group command
            rc = door.publish(topic, b"forged")
            assert rc.is_failure and rc.value == 135, (topic, rc)
        assert not door.publish("edge/door-1/fleet", b"{}", retain=True).is_failure
        got = admin.received_until(("edge/door-1/fleet", b"{}"))  # the forgeries would be before it
        assert got == [("edge/group/lobby/cmd", b"group"), ("edge/door-1/fleet", b"{}")], got
        assert not door.publish("edge/door-1/fleet", b"", retain=True).is_failure
