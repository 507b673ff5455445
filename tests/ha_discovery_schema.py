"""Home Assistant's MQTT discovery, reconstructed from its docs as a checker (tests only).

Sources: home-assistant.io/integrations/mqtt ("MQTT Discovery": topic format, abbreviations, the
device and origin maps, removal by an empty retained config) and the pages of the components
used here: binary_sensor.mqtt, sensor.mqtt, event.mqtt, button.mqtt, switch.mqtt. For each
component: the keys HA accepts (with their types), the ones it requires, and the few rules
between keys its docs state. Abbreviated keys (`stat_t`, `dev`, `ids`, ...) are expanded first,
as HA does. `validate(topic, payload)` returns a list of problems (empty: HA would take it).
"""

from __future__ import annotations

import re
from typing import Any

# Abbreviations HA expands (a subset of homeassistant/components/mqtt/abbreviations.py: the
# ones for the keys below).
ABBREVIATIONS = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "cmd_t": "command_topic",
    "cmd_tpl": "command_template",
    "def_ent_id": "default_entity_id",
    "dev": "device",
    "dev_cla": "device_class",
    "e": "encoding",
    "en": "enabled_by_default",
    "ent_cat": "entity_category",
    "ent_pic": "entity_picture",
    "evt_typ": "event_types",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "lrst_val_tpl": "last_reset_value_template",
    "o": "origin",
    "obj_id": "object_id",
    "off_dly": "off_delay",
    "opt": "optimistic",
    "ops": "options",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "pl_prs": "payload_press",
    "p": "platform",
    "ret": "retain",
    "stat_cla": "state_class",
    "stat_off": "state_off",
    "stat_on": "state_on",
    "stat_t": "state_topic",
    "sug_dsp_prc": "suggested_display_precision",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {
    "cns": "connections",
    "cu": "configuration_url",
    "hw": "hw_version",
    "ids": "identifiers",
    "mf": "manufacturer",
    "mdl": "model",
    "mdl_id": "model_id",
    "sa": "suggested_area",
    "sn": "serial_number",
    "sw": "sw_version",
}
ORIGIN_ABBREVIATIONS = {"sw": "sw_version", "url": "support_url"}
AVAILABILITY_ABBREVIATIONS = {"t": "topic", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
                              "val_tpl": "value_template"}  # fmt: skip

STR, BOOL, INT, NUM, LIST, DICT = str, bool, int, (int, float), list, dict

# Keys every MQTT entity takes.
COMMON: dict[str, Any] = {
    "availability": LIST,
    "availability_mode": STR,
    "availability_template": STR,
    "availability_topic": STR,
    "default_entity_id": STR,
    "device": DICT,
    "enabled_by_default": BOOL,
    "encoding": STR,
    "entity_category": STR,
    "entity_picture": STR,
    "icon": STR,
    "json_attributes_template": STR,
    "json_attributes_topic": STR,
    "name": (str, type(None)),
    "object_id": STR,
    "origin": DICT,
    "payload_available": STR,
    "payload_not_available": STR,
    "platform": STR,
    "qos": INT,
    "unique_id": STR,
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "binary_sensor": {
        "required": {"state_topic"},
        "keys": {
            "state_topic": STR,
            "value_template": STR,
            "device_class": STR,
            "expire_after": INT,
            "force_update": BOOL,
            "off_delay": INT,
            "payload_on": STR,
            "payload_off": STR,
        },  # fmt: skip
        "device_classes": {
            "battery",
            "battery_charging",
            "carbon_monoxide",
            "cold",
            "connectivity",
            "door",
            "garage_door",
            "gas",
            "heat",
            "light",
            "lock",
            "moisture",
            "motion",
            "moving",
            "occupancy",
            "opening",
            "plug",
            "power",
            "presence",
            "problem",
            "running",
            "safety",
            "smoke",
            "sound",
            "tamper",
            "update",
            "vibration",
            "window",
        },  # fmt: skip
    },
    "sensor": {
        "required": {"state_topic"},
        "keys": {
            "state_topic": STR,
            "value_template": STR,
            "device_class": STR,
            "state_class": STR,
            "unit_of_measurement": STR,
            "expire_after": INT,
            "force_update": BOOL,
            "last_reset_value_template": STR,
            "suggested_display_precision": INT,
            "options": LIST,
        },  # fmt: skip
        "device_classes": {
            "apparent_power",
            "aqi",
            "atmospheric_pressure",
            "battery",
            "carbon_dioxide",
            "carbon_monoxide",
            "current",
            "data_rate",
            "data_size",
            "date",
            "distance",
            "duration",
            "energy",
            "enum",
            "frequency",
            "gas",
            "humidity",
            "illuminance",
            "irradiance",
            "moisture",
            "monetary",
            "power",
            "power_factor",
            "precipitation",
            "pressure",
            "signal_strength",
            "sound_pressure",
            "speed",
            "temperature",
            "timestamp",
            "voltage",
            "volume",
            "water",
            "weight",
            "wind_speed",
        },  # fmt: skip
    },
    "event": {
        "required": {"state_topic", "event_types"},
        "keys": {"state_topic": STR, "event_types": LIST, "value_template": STR, "device_class": STR},
        "device_classes": {"button", "doorbell", "motion"},
    },
    "button": {
        "required": {"command_topic"},
        "keys": {
            "command_topic": STR,
            "command_template": STR,
            "payload_press": STR,
            "retain": BOOL,
            "device_class": STR,
        },  # fmt: skip
        "device_classes": {"identify", "restart", "update"},
    },
    "switch": {
        "required": {"command_topic"},
        "keys": {
            "command_topic": STR,
            "command_template": STR,
            "state_topic": STR,
            "value_template": STR,
            "payload_on": STR,
            "payload_off": STR,
            "state_on": STR,
            "state_off": STR,
            "optimistic": BOOL,
            "retain": BOOL,
            "device_class": STR,
        },  # fmt: skip
        "device_classes": {"outlet", "switch"},
    },
}
DEVICE_KEYS = {"identifiers": LIST, "connections": LIST, "configuration_url": STR, "hw_version": STR,
               "manufacturer": STR, "model": STR, "model_id": STR, "name": STR, "serial_number": STR,
               "suggested_area": STR, "sw_version": STR, "via_device": STR}  # fmt: skip
ORIGIN_KEYS = {"name": STR, "sw_version": STR, "support_url": STR}
AVAILABILITY_KEYS = {"topic": STR, "payload_available": STR, "payload_not_available": STR, "value_template": STR}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config; ids are [a-zA-Z0-9_-]
TOPIC = re.compile(r"(?P<prefix>[^+#\x00]+)/(?P<component>[a-z_]+)/(?:(?P<node>[a-zA-Z0-9_-]+)/)?"
                   r"(?P<object>[a-zA-Z0-9_-]+)/config")  # fmt: skip
TOPIC_KEYS = ("state_topic", "command_topic", "json_attributes_topic", "availability_topic")


def expand(data: dict[str, Any], table: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    out, problems = {}, []
    for key, value in data.items():
        full = table.get(key, key)
        if full in out:
            problems.append(f"{key!r} and its other spelling are both given")
        out[full] = value
    return out, problems


def _typed(where: str, data: dict[str, Any], allowed: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in data.items():
        if key not in allowed:
            problems.append(f"{where}: {key!r} is not a key HA takes here")
        elif isinstance(value, bool) and allowed[key] in (INT, NUM):
            problems.append(f"{where}: {key!r} must be a number, not a bool")
        elif not isinstance(value, allowed[key]):
            problems.append(f"{where}: {key!r} must be {allowed[key]}, got {type(value).__name__}")
    return problems


def publish_topic_problem(topic: Any) -> str | None:
    if not isinstance(topic, str) or not topic:
        return "empty"
    if set(topic) & {"+", "#", "\x00"}:
        return "has a wildcard or NUL (one cannot publish there)"
    if len(topic.encode()) > 65535:
        return "longer than MQTT allows"
    return None


def validate(topic: str, payload: dict[str, Any]) -> list[str]:
    """Problems HA would have with this discovery message (empty: none)."""
    m = TOPIC.fullmatch(topic)
    if not m:
        return [f"{topic!r} is not <prefix>/<component>/[<node_id>/]<object_id>/config with ids of [a-zA-Z0-9_-]"]
    component = m["component"]
    if component not in COMPONENTS:
        return [f"component {component!r} is not one this schema knows"]
    spec = COMPONENTS[component]
    if not isinstance(payload, dict):
        return ["the payload is not a JSON object"]
    data, problems = expand(payload, ABBREVIATIONS)
    problems += _typed(component, data, {**COMMON, **spec["keys"]})
    problems += [f"{component}: {key!r} is required" for key in sorted(spec["required"] - set(data))]
    for key in TOPIC_KEYS:
        if key in data and (why := publish_topic_problem(data[key])):
            problems.append(f"{key} {data[key]!r}: {why}")
    if "device_class" in data and data["device_class"] not in spec["device_classes"]:
        problems.append(f"{component}: device_class {data['device_class']!r} does not exist")
    if data.get("entity_category", "config") not in ENTITY_CATEGORIES:
        problems.append(f"entity_category {data['entity_category']!r} is not config or diagnostic")
    if data.get("qos", 0) not in (0, 1, 2):
        problems.append(f"qos {data['qos']!r} is not 0, 1 or 2")
    if "unique_id" in data and not data["unique_id"]:
        problems.append("unique_id is empty")
    if component == "sensor":
        problems += _sensor_rules(data)
    if component == "event":
        types = data.get("event_types", [])
        if not types or not all(isinstance(t, str) and t for t in types) or len(set(types)) != len(types):
            problems.append("event_types must be a non-empty list of distinct non-empty strings")
    problems += _availability(data)
    if "device" in data:
        problems += _device(data)
    if "origin" in data:
        origin, more = expand(data["origin"], ORIGIN_ABBREVIATIONS)
        problems += more + _typed("origin", origin, ORIGIN_KEYS)
        if not origin.get("name"):
            problems.append("origin: 'name' is required")
    return problems


def _sensor_rules(data: dict[str, Any]) -> list[str]:
    problems = []
    if data.get("state_class") is not None and data["state_class"] not in STATE_CLASSES:
        problems.append(f"sensor: state_class {data['state_class']!r} does not exist")
    if data.get("device_class") in ("timestamp", "date", "enum"):
        # HA: these hold no number, so no unit and no state class
        for key in ("unit_of_measurement", "state_class"):
            if key in data:
                problems.append(f"sensor: device_class {data['device_class']} takes no {key}")
    if data.get("device_class") == "enum" and not data.get("options"):
        problems.append("sensor: device_class enum needs options")
    return problems


def _availability(data: dict[str, Any]) -> list[str]:
    problems = []
    if "availability" in data and "availability_topic" in data:
        problems.append("availability and availability_topic are exclusive")
    for i, item in enumerate(data.get("availability", [])):
        if not isinstance(item, dict):
            problems.append(f"availability[{i}] is not an object")
            continue
        item, more = expand(item, AVAILABILITY_ABBREVIATIONS)
        problems += more + _typed(f"availability[{i}]", item, AVAILABILITY_KEYS)
        if why := publish_topic_problem(item.get("topic")):
            problems.append(f"availability[{i}].topic: {why}")
    if data.get("availability_mode", "latest") not in ("all", "any", "latest"):
        problems.append("availability_mode must be all, any or latest")
    return problems


def _device(data: dict[str, Any]) -> list[str]:
    device, problems = expand(data["device"], DEVICE_ABBREVIATIONS)
    problems += _typed("device", device, DEVICE_KEYS)
    if not device.get("identifiers") and not device.get("connections"):
        problems.append("device: identifiers or connections is required")
    if not data.get("unique_id"):
        problems.append("an entity with a device needs a unique_id (HA's device registry)")
    url = device.get("configuration_url")
    if url is not None and not re.fullmatch(r"(https?://\S+|homeassistant://\S+)", url):
        problems.append(f"device: configuration_url {url!r} is not http://, https:// or homeassistant://")
    return problems
