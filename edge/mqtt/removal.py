"""`edge mqtt remove-discovery`: take this device out of Home Assistant (uninstall, or before a rename).

Publishes an empty retained message on every discovery config the device announces or announced
(its record, `<outbox_path>/ha-announced.json`) and on its retained HA values (`ha/last`, the
per-person `ha/seen/...`, which hold names), waits for the broker's acks, and forgets the record.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time

from edge.mqtt.announced import Announced
from edge.mqtt.client import MqttLink, MqttSettings
from edge.mqtt.topics import HA_COMMANDS, HaOptions, Topics, discovery_messages


def topics_to_clear(device_id: str, topics: Topics, *, prefix: str, announced: Announced) -> list[str]:
    """Every config this device could announce (any command entity) and everything on record."""
    configs, values = announced.load()
    every = discovery_messages(device_id, topics, prefix=prefix, ha=HaOptions(commands=HA_COMMANDS))
    out = [t for t, _p in every] + configs + [topics.ha_last] + values
    return list(dict.fromkeys(out))  # in order, once each


def remove_discovery(settings: MqttSettings, clear: list[str], *, timeout: float = 15.0) -> dict[str, list[str]]:
    """Publish an empty retained message on each topic in `clear`; which were acked and which the
    broker refused (MQTT 5 reason code >= 0x80, e.g. its ACL). ConnectionError when it cannot connect."""
    acks: dict[int, int] = {}
    lock = threading.Condition()

    def on_publish(_session: int, mid: int, code: int) -> None:
        with lock:
            acks[mid] = code
            lock.notify_all()

    errors: list[str] = []
    link = MqttLink(
        dataclasses.replace(settings, client_id=f"edge-remove-{secrets.token_hex(4)}"),
        on_publish=on_publish,
        on_status=lambda kind, detail: errors.append(detail) if kind in ("refused", "unreachable", "error") else None,
    )
    link.start()
    try:
        if not link.wait_connected(timeout):
            raise ConnectionError(errors[0] if errors else f"could not connect to {settings.broker.redacted()}")
        mids = {}
        for topic in clear:
            mid = link.publish(topic, b"", qos=1, retain=True)
            if mid is None:
                raise ConnectionError("the connection was lost while clearing")
            mids[mid] = topic
        end = time.monotonic() + timeout
        with lock:
            lock.wait_for(lambda: set(mids) <= set(acks), max(0.0, end - time.monotonic()))
        done = {"cleared": [], "refused": [], "unanswered": []}
        for mid, topic in mids.items():
            code = acks.get(mid)
            done["unanswered" if code is None else "refused" if code >= 0x80 else "cleared"].append(topic)
        return done
    finally:
        link.stop(timeout=2.0)
