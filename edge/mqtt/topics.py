"""Topic names under the device's prefix, and Home Assistant discovery payloads (docs/mqtt.md)."""

from __future__ import annotations

import hashlib
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

    # --- Home Assistant (docs/mqtt.md, "Home Assistant") ---
    @property
    def ha_last(self) -> str:
        """The last verdict, summarised and retained: HA's sensors are right after HA restarts."""
        return f"{self.prefix}/ha/last"

    @property
    def ha_event(self) -> str:
        """`{"event_type": ...}` for HA's event entity: one per verdict (and tailgate), never retained."""
        return f"{self.prefix}/ha/event"

    @property
    def ha_command(self) -> str:
        """The unsigned commands HA may send (mqtt.ha_commands); the broker's ACL guards who may publish."""
        return f"{self.prefix}/ha/command"

    def ha_seen(self, slug: str) -> str:
        """A person's "last seen" time (retained), when mqtt.discovery_people is on."""
        return f"{self.prefix}/ha/seen/{slug}"

    def is_response_topic(self, topic: str) -> bool:
        """Replies go only to command/response or below it (so a site ACL of `prefix/#` covers them)."""
        return topic == self.response or (topic.startswith(self.response + "/") and not set(topic) & {"+", "#"})


def ha_id(text: str) -> str:
    """Home Assistant ids take only [a-zA-Z0-9_-]."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


def person_slug(name: str) -> str:
    """A name as an id part: HA's characters, lower case, and a hash of the name so that "Ada L." and
    "Ada L_" (the same after replacement) stay two entities, and no name can reach another topic."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{ha_id(name).lower()[:40]}_{digest}"


# Decisions and events the HA event entity fires; `tailgate` comes from the tailgate event, the
# others from verdicts. HA ignores (and logs) an event_type that is not in the list.
EVENT_TYPES = ("granted", "denied", "unknown", "spoof", "tailgate")
# The unsigned commands HA may send on `<prefix>/ha/command` (when listed in mqtt.ha_commands).
HA_COMMANDS = ("reload", "door_enable", "door_disable")


@dataclass(frozen=True)
class HaOptions:
    """What the discovery announces beyond the fixed entities (mqtt.discovery_* keys)."""

    area: str = ""  # the device's suggested_area
    console_url: str = ""  # the device's configuration_url
    people: tuple[str, ...] = ()  # a "last seen" sensor each (mqtt.discovery_people)
    commands: tuple[str, ...] = ()  # unsigned commands offered as a button / switch


AVAILABLE = "{{ 'online' if value == 'online' else 'offline' }}"  # "stopped" is unavailable too


def discovery_messages(
    device_id: str,
    topics: Topics,
    *,
    prefix: str = "homeassistant",
    sw_version: str = "",
    model: str = "",
    ha: HaOptions | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config payload) for every entity: access granted, presentation attack, verdict (event),
    last person, last score, last seen, camera fps, enrolled; and as `ha` says, a last seen sensor
    per person, a reload button and a door switch."""
    ha = ha or HaOptions()
    node = f"edge_{ha_id(device_id)}"
    device = {
        "identifiers": [node],
        "name": f"edge {device_id}",
        "manufacturer": "edge",
        "model": model or "face verification appliance",
        "sw_version": sw_version,
    }
    if ha.console_url:
        device["configuration_url"] = ha.console_url
    if ha.area:
        device["suggested_area"] = ha.area
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
            # Fires on every verdict, the same person twice included; the payload's other keys
            # (name, score, seq, device_id) become the event's attributes.
            "event",
            "verdict",
            {
                "name": "Verdict",
                "state_topic": topics.ha_event,
                "event_types": list(EVENT_TYPES),
                "icon": "mdi:face-recognition",
            },
        ),
        (
            # From the retained summary (`ha/last`): right after HA restarts. `person` is the name
            # of whoever was granted, else the stranger word (never HA's reserved "unknown").
            "sensor",
            "last_person",
            {
                "name": "Last person",
                "state_topic": topics.ha_last,
                "value_template": "{{ value_json.person }}",
                "json_attributes_topic": topics.ha_last,
                "json_attributes_template": "{{ {'decision': value_json.decision, 'score': value_json.score, "
                "'seq': value_json.seq, 'last_seen': value_json.last_seen} | tojson }}",
                "icon": "mdi:account",
            },
        ),
        (
            "sensor",
            "last_score",
            {
                "name": "Last score",
                "state_topic": topics.ha_last,
                "value_template": "{{ value_json.score }}",
                "state_class": "measurement",
                "icon": "mdi:face-recognition",
            },
        ),
        (
            # Changes on every verdict: the same person twice is two different states.
            "sensor",
            "last_seen",
            {
                "name": "Last seen",
                "state_topic": topics.ha_last,
                "value_template": "{{ value_json.last_seen }}",
                "device_class": "timestamp",
                "icon": "mdi:clock-check",
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
    entities += _optional_entities(topics, ha)
    out = []
    for component, object_id, config in entities:
        payload = {**config, "unique_id": f"{node}_{object_id}", **common}
        out.append((f"{prefix}/{component}/{node}/{object_id}/config", payload))
    return out


def _optional_entities(topics: Topics, ha: HaOptions) -> list[tuple[str, str, dict[str, Any]]]:
    """Per-person "last seen" sensors and the controls for the unsigned commands, as `ha` asks."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in sorted(set(ha.people)):
        slug = person_slug(name)
        config = {"name": f"{name} last seen", "state_topic": topics.ha_seen(slug), "device_class": "timestamp"}
        out.append(("sensor", f"seen_{slug}", {**config, "icon": "mdi:account-clock"}))
    if "reload" in ha.commands:
        out.append(
            (
                "button",
                "reload",
                {
                    "name": "Reload enrolments",
                    "command_topic": topics.ha_command,
                    "payload_press": "reload",
                    "entity_category": "config",
                    "icon": "mdi:reload",
                },
            )
        )
    if {"door_enable", "door_disable"} <= set(ha.commands):
        out.append(
            (
                # ON: a grant opens the door; OFF: verdicts go on, the relay stays locked.
                "switch",
                "door",
                {
                    "name": "Door",
                    "command_topic": topics.ha_command,
                    "payload_on": "door_enable",
                    "payload_off": "door_disable",
                    "state_topic": topics.state,
                    "value_template": "{{ 'ON' if value_json.door_enabled else 'OFF' }}",
                    "state_on": "ON",
                    "state_off": "OFF",
                    "entity_category": "config",
                    "icon": "mdi:door",
                },
            )
        )
    return out
