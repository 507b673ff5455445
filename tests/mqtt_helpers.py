"""Test helpers for MQTT: a recording subscriber and verdicts to publish (used by tests and the soak)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as paho

from edge.appliance.verdict import Verdict


def make_verdict(
    seq: int, *, decision: str = "granted", name: str | None = "Ada", device_id: str = "door-1"
) -> Verdict:
    now = time.time()
    return Verdict(
        device_id=device_id,
        seq=seq,
        decision=decision,
        name=name if decision == "granted" else None,
        score=0.93 if decision == "granted" else 0.31,
        threshold=0.7,
        margin=0.4,
        frames_used=3,
        track_id=seq,
        rect=(10, 20, 80, 80),
        quality=None,
        first_seen=now - 0.2,
        frame_time=now - 0.05,
        decided=now,
        latency_ms=12.5,
        frame_index=seq * 3,
        pts=seq / 10,
    )


class Recorder:
    """A subscriber that keeps every message; optionally a persistent session (survives broker restarts)."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "recorder",
        persistent: bool = False,
        protocol: int = paho.MQTTv5,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.properties: list[tuple[str, Any]] = []  # (topic, MQTT 5 properties) of each message
        self.cond = threading.Condition()
        self.topics = topics
        self.connected = threading.Event()
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": protocol}
        if protocol != paho.MQTTv5:
            kwargs["clean_session"] = not persistent
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, **kwargs)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_a: self.connected.clear()
        self._subacked = threading.Event()
        self.client.on_subscribe = lambda *_a: self._subacked.set()
        self.persistent = persistent
        self.port = port

    def start(self, timeout: float = 10.0) -> Recorder:
        props = None
        if self.client._protocol == paho.MQTTv5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            if self.persistent:
                props.SessionExpiryInterval = 3600
        self.client.connect_async(
            "127.0.0.1", self.port, keepalive=10, clean_start=not self.persistent if props else 3, properties=props
        )
        self.client.loop_start()
        if not self._subacked.wait(timeout):
            raise TimeoutError("recorder did not subscribe")
        return self

    def _on_connect(self, client, _u, _f, reason, _p) -> None:
        if reason.is_failure:
            return
        for t in self.topics:
            client.subscribe(t, qos=1)
        self.connected.set()

    def _on_message(self, _c, _u, message) -> None:
        with self.cond:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.properties.append((message.topic, getattr(message, "properties", None)))
            self.cond.notify_all()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[bytes]:
        with self.cond:
            return [p for t, p, _r in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def seqs(self, topic: str) -> list[int]:
        return [json.loads(p)["seq"] for p in self.on(topic)]
