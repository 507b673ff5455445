"""A fleet on loopback: two real mosquitto brokers bridged both ways, N `edge node` processes
(real vaults, the real engine for imports) split across them, and the administrator's group
commands. Used by tests/test_fleet.py and scripts/eval/fleet.py.

    with Fleet(tmp, size=20) as fleet:
        report = fleet.enrol("Ada", [photo_bytes])   # one signed command → every door
        report = fleet.revoke("Ada")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mqtt_broker import Broker
from mqtt_helpers import Recorder

from edge.admin.fleet import group_target, import_chunks
from edge.admin.signing import generate_admin_key, public_key_text
from edge.config import MqttConfig
from edge.mqtt.client import MqttSettings
from edge.mqtt.fleet import send_group_commands
from edge.vault import Vault, make_bundle, parse_public_key

ROOT = Path(__file__).resolve().parents[1]
GROUP = "lobby"


def bridge_lines(name: str, remote_port: int, topics: tuple[str, ...] = ("edge/#",)) -> list[str]:
    """A mosquitto bridge to a broker on loopback, `topics` both ways (as docs/fleet.md explains)."""
    return [
        f"connection {name}",
        f"address 127.0.0.1:{remote_port}",
        *(f"topic {t} both 1" for t in topics),
        "try_private true",  # mosquitto ↔ mosquitto: the remote marks the bridge, no message loops
        "cleansession false",
        "restart_timeout 1 5",
        "bridge_protocol_version mqttv311",
    ]


class StampedRecorder(Recorder):
    """A Recorder that also notes when (monotonic) each message arrived."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[float] = []

    def _on_message(self, client, userdata, message) -> None:
        with self.cond:
            self.stamps.append(time.monotonic())
        super()._on_message(client, userdata, message)

    def timed(self) -> list[tuple[float, str, bytes]]:
        with self.cond:
            return [(t, topic, payload) for t, (topic, payload, _r) in zip(self.stamps, self.messages, strict=False)]


@dataclass
class Operation:
    """What one group command did: replies and fleet states, each door's delay after publishing."""

    command: str
    published: float = 0.0
    replies: dict[str, float] = field(default_factory=dict)  # door → seconds to its reply
    failed: dict[str, str] = field(default_factory=dict)
    states: dict[str, float] = field(default_factory=dict)  # door → seconds to its fleet state showing it
    missing: list[str] = field(default_factory=list)

    def summary(self, size: int) -> dict[str, Any]:
        def span(d: dict[str, float]) -> dict[str, Any]:
            v = sorted(d.values())
            return {"n": len(v), "first_s": round(v[0], 3), "last_s": round(v[-1], 3)} if v else {"n": 0}

        return {
            "command": self.command,
            "doors": size,
            "replies": span(self.replies),
            "fleet_state": span(self.states),
            "failed": self.failed,
            "lost": self.missing,
        }


class Fleet:
    def __init__(self, directory: Path, *, size: int = 20, others: int = 1, timeout: float = 120.0) -> None:
        self.dir = Path(directory)
        self.size, self.timeout = size, timeout
        self.hub = Broker(self.dir / "hub")
        self.site = Broker(self.dir / "site")
        with self.site.conf.open("a") as f:  # the site broker bridges to the hub: edge/# both ways
            f.write("\n".join(bridge_lines("site-to-hub", self.hub.port)) + "\n")
        self.admin_key = generate_admin_key(self.dir / "admin.key")
        self.doors = [f"door-{i:02d}" for i in range(1, size + 1)]
        self.outsiders = [f"other-{i:02d}" for i in range(1, others + 1)]  # group "garage": must not take lobby's
        self.keys: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.recorder: StampedRecorder | None = None
        self.started_s = 0.0

    # --- start and stop --------------------------------------------------------------------------

    def broker_of(self, index: int) -> Broker:
        return self.hub if index % 2 == 0 else self.site

    def _config(self, device: str, index: int, group: str) -> Path:
        base = self.dir / device
        vault = Vault.init(base / "vault")
        self.keys[device] = vault.public_key_b64
        text = f"""
[device]
id = "{device}"
[vault]
path = "{base / "vault"}"
[mqtt]
enabled = true
url = "{self.broker_of(index).url}"
outbox_path = "{base / "outbox"}"
discovery = false
state_interval = 30.0
admin_keys = ["{public_key_text(self.admin_key)}"]
groups = ["{group}"]
[log]
level = "warning"
"""
        path = base / "edge.toml"
        path.write_text(text)
        return path

    def start(self) -> Fleet:
        self.hub.start()
        self.site.start()
        self.recorder = StampedRecorder(self.hub.port, ["edge/#"], client_id="fleet-watch").start()
        self._wait_bridge()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        everyone = [(d, i, GROUP) for i, d in enumerate(self.doors)]
        everyone += [(d, i, "garage") for i, d in enumerate(self.outsiders, len(self.doors))]
        for device, index, group in everyone:
            config = self._config(device, index, group)
            log = (self.dir / device / "node.log").open("w")
            self.procs[device] = subprocess.Popen(
                [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())", "node",
                 "--config", str(config)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
            )  # fmt: skip
        ready = self.wait_states(lambda device, s: True, list(self.procs), self.timeout)
        if len(ready) < len(self.procs):
            raise RuntimeError(f"doors that never reported: {sorted(set(self.procs) - set(ready))}")
        self.started_s = time.monotonic() - t0
        return self

    def _wait_bridge(self) -> None:
        """A message published on the site broker reaches the hub (and so the bridge is up)."""
        probe = Recorder(self.site.port, ["edge/bridge-probe"], client_id="fleet-probe").start()
        try:
            end = time.monotonic() + 20
            while time.monotonic() < end:
                probe.client.publish("edge/bridge-probe", b"ping", qos=1)
                if self.recorder.wait_for(lambda: self.recorder.on("edge/bridge-probe"), 0.5):
                    return
            raise RuntimeError("the bridge between the two brokers did not come up")
        finally:
            probe.stop()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.recorder is not None:
            self.recorder.stop()
        self.site.kill()
        self.hub.kill()

    def __enter__(self) -> Fleet:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc) -> None:
        self.stop()

    # --- what the doors report ------------------------------------------------------------------------

    def latest_state(self, device: str) -> dict[str, Any] | None:
        states = self.recorder.json_on(f"edge/{device}/fleet")
        return states[-1] if states else None

    def wait_states(self, predicate, devices: list[str], timeout: float, since: float = 0.0) -> dict[str, float]:
        """door → seconds after `since` (monotonic) at which its fleet state first met `predicate`."""
        seen: dict[str, float] = {}
        end = time.monotonic() + timeout
        while len(seen) < len(devices) and time.monotonic() < end:
            for device in devices:
                if device not in seen:
                    state = self.latest_state(device)
                    if state is not None and predicate(device, state):
                        seen[device] = time.monotonic() - since
            self.recorder.wait_for(lambda: False, 0.05)
        return seen

    # --- the administrator -------------------------------------------------------------------------------

    def settings(self, broker: Broker | None = None) -> MqttSettings:
        return MqttSettings.from_config(MqttConfig(url=(broker or self.hub).url), client_id="edge-admin")

    def _run(self, command: str, args_list: list[dict], done) -> Operation:
        op = Operation(command)
        since = time.monotonic()
        outcome: dict[str, Any] = {}
        sender = threading.Thread(
            target=lambda: outcome.update(
                send_group_commands(
                    self.settings(), self.admin_key, GROUP, command, args_list, expect=self.doors,
                    timeout=self.timeout,
                )
            )
        )  # fmt: skip
        sender.start()
        op.states = self.wait_states(done, self.doors, self.timeout, since=since)
        sender.join()
        for device, reply in outcome["replies"].items():
            if not reply.get("ok"):
                op.failed[device] = f"{reply.get('reason')}: {reply.get('error')}"
        op.replies = self._reply_times(outcome["nonces"], since)
        op.missing = sorted(set(self.doors) - set(op.states))
        self.last_outcome = outcome
        return op

    def _reply_times(self, nonces: list[str], since: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for stamp, topic, payload in self.recorder.timed():
            if topic.endswith("/command/response"):
                data = json.loads(payload)
                if data.get("nonce") in nonces and data.get("device_id") not in out:
                    out[data["device_id"]] = stamp - since
        return out

    def enrol(self, name: str, photos: list[bytes]) -> Operation:
        bundles = {d: make_bundle(parse_public_key(self.keys[d]), name, photos) for d in self.doors}
        before = {d: (self.latest_state(d) or {}).get("generation") for d in self.doors}

        def has_it(device: str, state: dict) -> bool:
            return state.get("people") == 1 and state.get("generation") != before[device]

        return self._run("import", import_chunks(bundles, MqttConfig().command_max_bytes), has_it)

    def revoke(self, name: str) -> Operation:
        return self._run("revoke", [{"name": name}], lambda _d, state: state.get("people") == 0)

    def group_target(self) -> str:
        return group_target(GROUP)
