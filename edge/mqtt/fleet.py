"""Fleet enrolment over MQTT (docs/fleet.md): group command topics, the retained fleet state, and
the administrator's side (`edge admin fleet …`).

Topics:

    <group_prefix>/<group>/cmd     → doors    signed group commands (edge.admin.fleet), QoS 1
    <prefix>/fleet                 door →     retained: vault generation, people count and digest,
                                              public key, the last group commands applied
    <prefix>/command/response      door →     each door's reply to a group command (its own topic)
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from nacl.signing import SigningKey

from edge.admin.fleet import AppliedLog, NotForThisDevice, VaultSummary, device_args, group_target, target_group
from edge.admin.signing import CommandRefused, parse_json_object, sign_command
from edge.mqtt.admin import admin_link
from edge.mqtt.client import MqttLink, MqttSettings
from edge.mqtt.topics import Topics

logger = logging.getLogger(__name__)


def group_command_topic(group_prefix: str, group: str) -> str:
    return f"{group_prefix}/{group}/cmd"


def fleet_state_topic(topics: Topics) -> str:
    return f"{topics.prefix}/fleet"


class FleetDoor:
    """A door's part in the fleet: its group topics, what it applied, its retained fleet state.

    The MQTT sink hands it group commands after the signature checks (`carry_out`), tells it
    when it connected (`connected`) and calls `tick` from its publisher thread, which publishes
    the state when something changed and every `interval` seconds (the "last seen")."""

    def __init__(
        self,
        *,
        device_id: str,
        topics: Topics,
        groups: Iterable[str],
        group_prefix: str = "edge/group",
        vault_path: str | None = None,
        applied_log: str | None = None,
        interval: float = 30.0,
        summary: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.device_id = device_id
        self.groups = tuple(groups)
        self.topic = fleet_state_topic(topics)
        self.group_topics = {group_command_topic(group_prefix, g) for g in self.groups}
        self.applied = AppliedLog(applied_log)
        self.interval = float(interval)
        self._summary = summary or VaultSummary(vault_path)
        self._due = threading.Event()
        self._due.set()
        self._last = -1e18

    def is_group_topic(self, topic: str) -> bool:
        return topic in self.group_topics

    def connected(self, link: MqttLink) -> None:
        """On every connect (network thread): subscribe the group topics; the state follows from `tick`."""
        for topic in sorted(self.group_topics):
            link.subscribe(topic, qos=1)
        self._due.set()

    def changed(self) -> None:
        """A command may have changed the vault: publish the state again soon."""
        self._due.set()

    def carry_out(self, data: dict[str, Any], handle: Callable[[str, dict], dict]) -> dict[str, Any] | None:
        """Run a verified group command through the door's command handler. None: it carried
        nothing for this door (another door's bundle), so there is nothing to answer."""
        group = target_group(data.get("device_id")) or ""
        command, args = data["command"], data.get("args") or {}
        batch = args.get("batch") if isinstance(args.get("batch"), str) and len(args["batch"]) <= 64 else None
        record = {"nonce": batch or data["nonce"], "command": command, "group": group, "ts": float(data["ts"])}
        try:
            own = device_args(command, args, self.device_id)
        except NotForThisDevice:
            logger.debug("group command %s carries nothing for %s", data["nonce"], self.device_id)
            return None
        try:
            result = handle(command, own)
        except CommandRefused:
            raise
        except Exception as exc:
            self.applied.add(**record, ok=False, reason=str(getattr(exc, "message", exc))[:200])
            self._due.set()
            raise
        self.applied.add(**record, ok=True)
        self._due.set()
        return result

    def tick(self, link: MqttLink) -> None:
        """Publish the retained fleet state if it is due (publisher thread; link connected)."""
        if not self._due.is_set() and time.monotonic() - self._last < self.interval:
            return
        self._due.clear()
        self._last = time.monotonic()
        try:
            summary = self._summary()
        except Exception as exc:  # noqa: BLE001 - a report; the door goes on
            logger.warning("fleet state: cannot read the vault: %s", exc)
            summary = {"error": str(getattr(exc, "message", exc))[:200]}
        now = time.time()
        payload = {
            "type": "fleet",
            "device_id": self.device_id,
            "groups": list(self.groups),
            **summary,
            "applied": self.applied.items,
            "ts": round(now, 3),
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        link.publish(self.topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=True)


# --- the administrator's side ----------------------------------------------------------------------------


def _connect(link: MqttLink, topics: list[str], timeout: float, errors: list[str], settings: MqttSettings) -> None:
    end = time.monotonic() + timeout
    while not link.connected.is_set() and not errors and time.monotonic() < end:
        link.connected.wait(0.1)
    if not link.connected.is_set():
        raise ConnectionError(errors[0] if errors else f"could not connect to {settings.broker.redacted()}")
    for topic in topics:
        if not link.subscribe(topic, qos=1, wait=timeout):
            raise ConnectionError(f"the broker did not confirm the subscription to {topic}")


def send_group_commands(
    settings: MqttSettings,
    key: SigningKey,
    group: str,
    command: str,
    args_list: list[dict[str, Any]],
    *,
    expect: Iterable[str] = (),
    group_prefix: str = "edge/group",
    responses: str = "edge/+/command/response",
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Sign one command per `args_list` item for every door of `group`, publish them on the group
    topic and collect the doors' replies until every door in `expect` answered (or `timeout`).

    Returns {"nonces": [...], "replies": {device id: reply}, "missing": [...], "seconds": …}."""
    target = group_target(group)
    batch = secrets.token_hex(16)  # shared by the chunks of one operation: fleet status compares it
    signed = [sign_command(key, command, {**args, "batch": batch}, device_id=target) for args in args_list]
    nonces = {s["nonce"] for s in signed}
    replies: dict[str, dict[str, Any]] = {}
    waiting = set(expect)
    done = threading.Event()
    errors: list[str] = []
    lock = threading.Lock()

    def on_message(message) -> None:
        try:
            data = parse_json_object(message.payload)
        except CommandRefused:
            return
        if data.get("nonce") in nonces and isinstance(data.get("device_id"), str):
            with lock:
                replies[data["device_id"]] = data
                if waiting and waiting <= set(replies):
                    done.set()

    link = admin_link(settings, on_message, errors, done)
    try:
        _connect(link, [responses], timeout, errors, settings)
        started = time.monotonic()
        topic = group_command_topic(group_prefix, group)
        for command_fields in signed:
            link.publish(topic, json.dumps(command_fields), qos=1)
        done.wait(timeout if waiting else min(timeout, 5.0))
        seconds = time.monotonic() - started
    finally:
        link.stop(timeout=2.0)
    if errors and not replies:
        raise ConnectionError(errors[0])
    with lock:
        got = dict(replies)
    return {
        "batch": batch,
        "nonces": [s["nonce"] for s in signed],
        "replies": got,
        "missing": sorted(waiting - set(got)),
        "seconds": round(seconds, 3),
    }


def read_fleet(
    settings: MqttSettings,
    *,
    states: str = "edge/+/fleet",
    availability: str = "edge/+/availability",
    wait: float = 2.0,
) -> dict[str, dict[str, Any]]:
    """The retained fleet states and availabilities on the broker: {device id: {"fleet": …, "availability": …}}."""
    devices: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    errors: list[str] = []
    done = threading.Event()
    state_root, avail_root = states.split("+")[0], availability.split("+")[0]

    def on_message(message) -> None:
        topic = message.topic
        with lock:
            if topic.startswith(state_root) and topic.endswith("/fleet"):
                try:
                    data = parse_json_object(message.payload)
                except CommandRefused:
                    return
                device = data.get("device_id")
                if isinstance(device, str):
                    devices.setdefault(device, {})["fleet"] = data
            elif topic.startswith(avail_root) and topic.endswith("/availability"):
                device = topic[len(avail_root) : -len("/availability")]
                devices.setdefault(device, {})["availability"] = message.payload.decode("utf-8", "replace")[:32]

    link = admin_link(settings, on_message, errors, done)
    try:
        _connect(link, [states, availability], max(wait, 5.0), errors, settings)
        time.sleep(wait)  # retained messages arrive right after the SUBACK
    finally:
        link.stop(timeout=2.0)
    with lock:
        return {d: v for d, v in devices.items() if "fleet" in v}


def fleet_rows(devices: dict[str, dict[str, Any]], *, group: str | None = None, now: float | None = None) -> list[dict]:
    """One row per door: its groups, vault generation, people, whether it applied its groups' latest
    group command (the newest any door of the group reports), and when it was last seen."""
    now = time.time() if now is None else now
    latest: dict[str, dict[str, Any]] = {}  # group → the newest applied operation any door reports
    for entry in devices.values():
        for item in entry["fleet"].get("applied") or []:
            g = item.get("group")
            if isinstance(g, str) and isinstance(item.get("ts"), (int, float)):
                if g not in latest or item["ts"] > latest[g]["ts"]:
                    latest[g] = item
    rows = []
    for device, entry in sorted(devices.items()):
        state = entry["fleet"]
        groups = [g for g in state.get("groups") or [] if isinstance(g, str)]
        if group is not None and group not in groups:
            continue
        applied = {(i.get("group"), i.get("nonce")): i for i in state.get("applied") or [] if isinstance(i, dict)}
        status = {}
        for g in groups:
            newest = latest.get(g)
            if newest is None:
                status[g] = "none sent"
                continue
            mine = applied.get((g, newest.get("nonce")))
            label = f"{newest.get('command')} {newest.get('nonce', '')[:8]}"
            status[g] = (
                f"yes ({label})"
                if mine and mine.get("ok")
                else (f"FAILED ({label}: {mine.get('reason', '')})" if mine else f"NO (missing {label})")
            )
        ts = state.get("ts")
        rows.append({
            "device_id": device,
            "availability": entry.get("availability", "?"),
            "groups": groups,
            "generation": state.get("generation"),
            "people": state.get("people"),
            "people_sha256": state.get("people_sha256"),
            "latest": status,
            "last_seen": state.get("time"),
            "seen_ago_s": round(now - ts, 1) if isinstance(ts, (int, float)) else None,
        })  # fmt: skip
    return rows
