"""The administrator's side of signed commands: sign, send, wait for the reply (`edge admin send`)."""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from nacl.signing import SigningKey

from edge.admin.signing import CommandRefused, parse_json_object, sign_command
from edge.mqtt.client import MqttLink, MqttSettings, response_properties
from edge.mqtt.topics import Topics


def admin_link(
    settings: MqttSettings,
    on_message: Callable[[Any], None],
    errors: list[str],
    done: threading.Event,
    *,
    on_connect: Callable[[MqttLink, bool], None] | None = None,
) -> MqttLink:
    """The administrator's started connection (a client id of its own): a refusal or an
    unreachable broker is put in `errors` and ends the wait on `done`."""

    def on_status(kind: str, detail: str) -> None:
        if kind in ("refused", "unreachable", "error"):
            errors.append(detail)
            done.set()

    link = MqttLink(
        dataclasses.replace(settings, client_id=f"edge-admin-{secrets.token_hex(4)}"),
        on_connect=on_connect,
        on_message=on_message,
        on_status=on_status,
    )
    link.start()
    return link


def send_command(
    settings: MqttSettings,
    key: SigningKey,
    device_id: str,
    command: str,
    args: dict[str, Any] | None = None,
    *,
    topic_prefix: str = "",
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Sign `command` for `device_id`, publish it, and return the device's reply.

    The reply comes back on ``<prefix>/command/response/<random>``: named in the signed
    command (`reply_to`, for MQTT 3.1.1 devices) and, under MQTT 5, as the response topic
    with correlation data. Raises TimeoutError when no reply arrives (device offline, or
    the broker's ACL does not let it answer).
    """
    topics = Topics.for_device(device_id, topic_prefix)
    reply_topic = f"{topics.response}/{secrets.token_hex(8)}"
    signed = sign_command(key, command, args, device_id=device_id, reply_to=reply_topic)
    correlation = signed["nonce"].encode()
    got: dict[str, Any] = {}
    done = threading.Event()
    connected = threading.Event()
    errors: list[str] = []

    def on_message(message) -> None:
        try:  # whoever may publish on the reply topic: bounded like a command (depth checked first)
            data = parse_json_object(message.payload)
        except CommandRefused:
            return
        props = getattr(message, "properties", None)
        # Our nonce, or (MQTT 5) our correlation data: a command refused from its size alone
        # (too_large) was never parsed, so its reply cannot name the nonce.
        ours = getattr(props, "CorrelationData", None) == correlation if props is not None else False
        if isinstance(data, dict) and (data.get("nonce") == signed["nonce"] or ours):
            got.update(data)
            done.set()

    link = admin_link(settings, on_message, errors, done, on_connect=lambda _link, _first: connected.set())
    try:
        connected.wait(timeout)
        # the reply topic must be subscribed before the device can answer
        if not link.connected.is_set() or not link.subscribe(reply_topic, qos=1, wait=timeout):
            raise ConnectionError(errors[0] if errors else f"could not connect to {settings.broker.redacted()}")
        props = response_properties(reply_topic, correlation)
        link.publish(topics.command, json.dumps(signed), qos=1, properties=props)
        if not done.wait(timeout) or not got:
            if errors:
                raise ConnectionError(errors[0])
            raise TimeoutError(
                f"no reply from {device_id!r} within {timeout:g} s (is it online? does it know this key?)"
            )
        return got
    finally:
        link.stop(timeout=2.0)


# --- Unsigned commands from Home Assistant (mqtt.ha_commands; docs/mqtt.md) ------------------------
#
# HA cannot sign, so these carry no signature: they are guarded by the broker's ACL (only the
# `homeassistant` user may publish on edge/<id>/ha/command) and are limited to harmless, reversible
# actions. revoke and import stay signed (above).

HA_COMMAND_MAX_BYTES = 32  # the longest name is 12 bytes; anything longer is not a command
HA_COMMAND_MIN_INTERVAL = 2.0  # seconds between two runs of the same command


class HaCommandGate:
    """Which payloads on `<prefix>/ha/command` are obeyed: exactly one of the configured names
    (surrounding whitespace aside), not retained (a retained "door_disable" would run again on every
    reconnect), and not again within `min_interval` seconds of the same one."""

    def __init__(
        self,
        allowed: tuple[str, ...] | list[str],
        *,
        min_interval: float = HA_COMMAND_MIN_INTERVAL,
        clock=time.monotonic,
    ) -> None:
        self.allowed = frozenset(allowed)
        self.min_interval = min_interval
        self.clock = clock
        self._last: dict[str, float] = {}

    def check(self, payload: bytes, *, retained: bool = False) -> tuple[str | None, str]:
        """(command, "") when it is to be run, else (None, reason): too_large, retained, not_allowed, too_soon."""
        if len(payload) > HA_COMMAND_MAX_BYTES:
            return None, "too_large"
        if retained:
            return None, "retained"
        try:
            name = payload.decode("ascii").strip()
        except UnicodeDecodeError:
            return None, "not_allowed"
        if name not in self.allowed:
            return None, "not_allowed"
        now = self.clock()
        if now - self._last.get(name, -1e18) < self.min_interval:
            return None, "too_soon"
        self._last[name] = now
        return name, ""
