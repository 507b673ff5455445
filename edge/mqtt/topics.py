"""Topic names under the device's prefix, and Home Assistant discovery payloads (docs/mqtt.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Topics:
    prefix: str  # "edge/<device_id>" unless mqtt.topic_prefix says otherwise

    @classmethod
    def for_device(cls, device_id: str, prefix: str = "") -> Topics:
        return cls(prefix or f"edge/{device_id}")

    @property
    def verdict(self) -> str:
        return f"{self.prefix}/verdict"

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def event(self) -> str:
        return f"{self.prefix}/event"

    @property
    def command(self) -> str:
        return f"{self.prefix}/command"

    @property
    def response(self) -> str:
        return f"{self.prefix}/command/response"

    def is_response_topic(self, topic: str) -> bool:
        """Replies go only to command/response or below it (so a site ACL of `prefix/#` covers them)."""
        return topic == self.response or (topic.startswith(self.response + "/") and not set(topic) & {"+", "#"})


def ha_id(text: str) -> str:
    """Home Assistant ids take only [a-zA-Z0-9_-]."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


AVAILABLE = "{{ 'online' if value == 'online' else 'offline' }}"  # "stopped" is unavailable too


def discovery_messages(
    device_id: str, topics: Topics, *, prefix: str = "homeassistant", sw_version: str = "", model: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config payload) for every entity: access granted, presentation attack, last person, last
    score, camera fps, enrolled."""
    node = f"edge_{ha_id(device_id)}"
    device = {
        "identifiers": [node],
        "name": f"edge {device_id}",
        "manufacturer": "edge",
        "model": model or "face verification appliance",
        "sw_version": sw_version,
    }
    common = {
        "availability": [
            {
                "topic": topics.availability,
                "value_template": AVAILABLE,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        "device": device,
        "origin": {"name": "edge", "sw_version": sw_version},
        "qos": 1,
    }
    entities = [
        (
            "binary_sensor",
            "access_granted",
            {
                "name": "Access granted",
                "state_topic": topics.verdict,
                "value_template": "{{ 'ON' if value_json.decision == 'granted' else 'OFF' }}",
                "off_delay": 5,
                "json_attributes_topic": topics.verdict,
                "json_attributes_template": "{{ {'name': value_json.name, 'score': value_json.score, "
                "'seq': value_json.seq} | tojson }}",
                "icon": "mdi:door-open",
            },
        ),
        (
            # ON for 30 s after a `spoof` verdict (liveness on: a photo or a screen held up, or a
            # liveness challenge not followed); "safety": HA shows ON as unsafe.
            "binary_sensor",
            "presentation_attack",
            {
                "name": "Presentation attack",
                "state_topic": topics.verdict,
                "value_template": "{{ 'ON' if value_json.decision == 'spoof' else 'OFF' }}",
                "off_delay": 30,
                "device_class": "safety",
                "json_attributes_topic": topics.verdict,
                "json_attributes_template": "{{ (value_json.liveness or {}) | tojson }}",
                "icon": "mdi:shield-alert",
            },
        ),
        (
            "sensor",
            "last_person",
            {
                "name": "Last person",
                "state_topic": topics.verdict,
                "value_template": "{{ value_json.name if value_json.name else value_json.decision }}",
                "icon": "mdi:account",
            },
        ),
        (
            "sensor",
            "last_score",
            {
                "name": "Last score",
                "state_topic": topics.verdict,
                "value_template": "{{ value_json.score }}",
                "state_class": "measurement",
                "icon": "mdi:face-recognition",
            },
        ),
        (
            "sensor",
            "camera_fps",
            {
                "name": "Camera fps",
                "state_topic": topics.state,
                "value_template": "{{ value_json.fps }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:camera",
            },
        ),
        (
            "sensor",
            "enrolled",
            {
                "name": "Enrolled people",
                "state_topic": topics.state,
                "value_template": "{{ value_json.enrolled }}",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:account-group",
            },
        ),
    ]
    out = []
    for component, object_id, config in entities:
        payload = {**config, "unique_id": f"{node}_{object_id}", **common}
        out.append((f"{prefix}/{component}/{node}/{object_id}/config", payload))
    return out
