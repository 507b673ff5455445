"""Home Assistant fit (docs/mqtt.md, "Home Assistant"): discovery checked against HA's schema, the
event entity, the retained last verdict across a broker restart, discovery removal, the unsigned
commands HA may send. Broker tests run a real mosquitto (tests/mqtt_broker.py)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from ha_discovery_schema import validate
from mqtt_broker import Broker, available
from mqtt_helpers import Recorder, make_verdict

from edge import config as edge_config
from edge.app import console_url, ha_options_from_config
from edge.cli import main
from edge.config import ConfigError, MqttConfig, load_config
from edge.mqtt.admin import HaCommandGate
from edge.mqtt.client import MqttSettings
from edge.mqtt.outbox import Outbox
from edge.mqtt.sink import MqttSink
from edge.mqtt.topics import EVENT_TYPES, HA_COMMANDS, HaOptions, Topics, discovery_messages, person_slug

DEVICE = "door-1"
T = Topics.for_device(DEVICE)
EVERYTHING = HaOptions(
    area="Front door", console_url="http://door-1.local:8080/console/", people=("Ada", "Grace Hopper", "Ada L."),
    commands=HA_COMMANDS,
)  # fmt: skip


# --- discovery against the schema --------------------------------------------------------------------


@pytest.mark.parametrize("ha", [HaOptions(), EVERYTHING], ids=["defaults", "everything"])
@pytest.mark.parametrize("device_id", ["door-1", "Door.1_west"])  # device.id takes [A-Za-z0-9._-]
def test_every_discovery_payload_is_valid_ha_discovery(ha, device_id):
    messages = discovery_messages(device_id, Topics.for_device(device_id), sw_version="0.1.0", ha=ha)
    assert len(messages) >= 8
    for topic, payload in messages:
        assert validate(topic, payload) == [], topic
        assert validate(topic, json.loads(json.dumps(payload))) == []  # as it goes over the wire
    ids = [p["unique_id"] for _t, p in messages]
    assert len(set(ids)) == len(ids)


def test_the_schema_catches_what_ha_would_refuse():
    """A checker that accepts everything proves nothing: each of these is a real mistake."""
    (topic, good), *_ = [(t, p) for t, p in discovery_messages(DEVICE, T, ha=EVERYTHING) if "/event/" in t]
    assert validate(topic, good) == []
    bad = {
        "no event_types": {k: v for k, v in good.items() if k != "event_types"},
        "empty event_types": {**good, "event_types": []},
        "unknown key": {**good, "state_topik": "x"},
        "wrong type": {**good, "qos": "1"},
        "wildcard topic": {**good, "state_topic": "edge/+/ha/event"},
        "device without ids": {**good, "device": {"name": "x"}},
        "bad configuration_url": {**good, "device": {**good["device"], "configuration_url": "ftp://x"}},
        "origin without name": {**good, "origin": {"sw": "1"}},
        "both spellings": {**good, "stat_t": good["state_topic"]},
        "bad device_class": {**good, "device_class": "safety"},
        "no unique_id": {k: v for k, v in good.items() if k != "unique_id"},
    }
    for why, payload in bad.items():
        assert validate(topic, payload), why
    assert validate("homeassistant/event/edge_door.1/verdict/config", good)  # a dot in the node id
    abbreviated = {"stat_t": "edge/door-1/ha/event", "evt_typ": ["a"], "uniq_id": "u", "dev": {"ids": ["x"]},
                   "o": {"name": "edge"}}  # fmt: skip
    assert validate(topic, abbreviated) == []
    timestamp = next(p for t, p in discovery_messages(DEVICE, T) if t.endswith("/last_seen/config"))
    assert validate("homeassistant/sensor/n/o/config", {**timestamp, "unit_of_measurement": "s"})


def test_entities_hold_the_promises_of_the_issue():
    msgs = {t.split("/")[-2]: p for t, p in discovery_messages(DEVICE, T, ha=EVERYTHING)}
    assert msgs["verdict"]["event_types"] == ["granted", "denied", "unknown", "spoof", "tailgate"]
    for key in ("last_person", "last_score", "last_seen"):
        assert msgs[key]["state_topic"] == T.ha_last  # the retained one
    assert msgs["access_granted"]["state_topic"] == T.verdict  # momentary: never replayed to HA as a grant
    device = msgs["verdict"]["device"]
    assert device["configuration_url"] == "http://door-1.local:8080/console/"
    assert device["suggested_area"] == "Front door"
    assert msgs["reload"]["command_topic"] == msgs["door"]["command_topic"] == T.ha_command
    seen = [k for k in msgs if k.startswith("seen_")]
    assert len(seen) == 3 and f"seen_{person_slug('Ada')}" in seen
    # no slug of a name reaches another topic, and two names that look alike stay two
    assert person_slug("Ada L.") != person_slug("Ada L_")
    assert "/" not in person_slug("../#/+") and "+" not in person_slug("../#/+")
    plain = {t.split("/")[-2] for t, _p in discovery_messages(DEVICE, T)}
    assert not plain & {"reload", "door"} and not any(k.startswith("seen_") for k in plain)


# --- config ------------------------------------------------------------------------------------------


def test_ha_config_errors_name_the_key():
    cases = {
        "discovery_stranger": ("Unknown", "mqtt.discovery_stranger"),
        "discovery_console_url": ("javascript:alert(1)", "mqtt.discovery_console_url"),
        "discovery_area": ("a\nb", "mqtt.discovery_area"),
        "ha_commands": (["reload", "revoke"], "mqtt.ha_commands[1]"),
    }
    for key, (value, path) in cases.items():
        with pytest.raises(ConfigError) as exc:
            load_config(overrides={"mqtt": {"enabled": True, key: value}})
        assert exc.value.key == path, (key, exc.value)
    assert edge_config.HA_COMMANDS == HA_COMMANDS  # the config may not import the transport: same list


def test_configuration_url_points_at_the_console_when_ha_can_reach_it():
    def url(http=None, mqtt=None):
        return console_url(load_config(overrides={"http": http or {}, "mqtt": mqtt or {}}))

    assert url() == ""  # no HTTP
    assert url({"enabled": True}) == ""  # loopback: HA on another host cannot open it
    assert url({"enabled": True, "host": "192.0.2.7", "port": 8443}) == "http://192.0.2.7:8443/console/"
    assert url({"enabled": True, "host": "0.0.0.0"}).endswith(":8080/console/")
    assert url({"enabled": True}, {"discovery_console_url": "https://door.example/console/"}) == (
        "https://door.example/console/"
    )


# --- the gate for unsigned commands ----------------------------------------------------------------


def test_the_gate_takes_exactly_the_configured_names_once_in_a_while():
    now = [100.0]
    gate = HaCommandGate(("reload", "door_disable"), min_interval=2.0, clock=lambda: now[0])
    assert gate.check(b"reload") == ("reload", "")
    assert gate.check(b"reload") == (None, "too_soon")  # HA (or a loop in an automation) cannot hammer it
    assert gate.check(b"door_disable\n") == ("door_disable", "")
    now[0] += 2.5
    assert gate.check(b" reload ") == ("reload", "")
    for payload, reason in (
        (b"door_enable", "not_allowed"),  # a real command, not configured
        (b"revoke", "not_allowed"),  # signed commands are never taken unsigned
        (b'{"command":"reload"}', "not_allowed"),
        (b"RELOAD", "not_allowed"),
        (b"reload\x00", "not_allowed"),
        ("relöad".encode(), "not_allowed"),
        (b"x" * 33, "too_large"),
    ):
        now[0] += 5
        assert gate.check(payload) == (None, reason), payload
    now[0] += 5
    assert gate.check(b"door_disable", retained=True) == (None, "retained")  # would run on every reconnect
    assert HaCommandGate(()).check(b"reload") == (None, "not_allowed")


# --- against a real broker -------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path):
    if not available():
        pytest.skip("mosquitto is not installed (scripts/setup.sh installs it)")
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()


def ha_sink(tmp_path: Path, url: str, *, device_id: str = DEVICE, **kw) -> MqttSink:
    cfg = MqttConfig(url=url, reconnect_min=0.2, reconnect_max=1.0)
    sink = MqttSink(
        MqttSettings.from_config(cfg, client_id=f"edge-{device_id}"),
        device_id=device_id,
        outbox=Outbox(tmp_path / f"outbox-{device_id}"),
        announced_path=tmp_path / "ha-announced.json",
        **kw,
    )
    sink.hooked = []
    sink.set_event_hook(lambda kind, fields: sink.hooked.append((kind, fields)))
    return sink


def retained(rec: Recorder, topic: str) -> list[bytes]:
    with rec.cond:
        return [p for t, p, r in rec.messages if t == topic and r]


def configs(rec: Recorder, node: str = "edge_door-1") -> dict[str, dict]:
    """The discovery configs seen, the latest per topic (an empty one: removed)."""
    with rec.cond:
        latest = {t: p for t, p, _r in rec.messages if t.startswith("homeassistant/") and f"/{node}/" in t}
    return {t: json.loads(p) for t, p in latest.items() if p}


def test_ha_subscriber_sees_discovery_events_and_states_across_a_broker_restart(broker, tmp_path):
    ha = Recorder(broker.port, ["homeassistant/#", "edge/door-1/#"], client_id="homeassistant").start()
    people = ["Ada", "Grace"]
    sink = ha_sink(tmp_path, broker.url, ha=HaOptions(area="Hall", commands=("reload",)), discovery_people=True,
                   stranger="Fremder")  # fmt: skip
    sink.people_source = lambda: list(people)
    sink.start()
    try:
        assert sink.link.wait_connected(10)
        sink.state({"fps": 30.0, "enrolled": 2})
        assert ha.wait_for(lambda: len(configs(ha)) == 11)  # 8 fixed + 2 people + reload
        for topic, payload in configs(ha).items():
            assert validate(topic, payload) == [], topic
        sink.publish(make_verdict(1, name="Ada"))
        assert ha.wait_for(lambda: len(ha.on(T.ha_last)) == 1)
        time.sleep(0.01)  # the same person again, a moment later
        sink.publish(make_verdict(2, name="Ada"))
        sink.publish(make_verdict(3, decision="unknown"))
        sink.event({"type": "event", "event": "tailgate", "track_id": 7, "status": "unknown", "withheld": False})
        assert ha.wait_for(lambda: len(ha.json_on(T.ha_event)) == 4)
        events = ha.json_on(T.ha_event)
        assert [e["event_type"] for e in events] == ["granted", "granted", "unknown", "tailgate"]
        assert all(e["event_type"] in EVENT_TYPES for e in events)
        assert events[0]["name"] == "Ada" and events[2]["name"] is None and events[3]["track_id"] == 7
        assert ha.wait_for(lambda: len(ha.on(T.ha_last)) == 3)
        lasts = ha.json_on(T.ha_last)
        assert [x["person"] for x in lasts] == ["Ada", "Ada", "Fremder"]  # never "unknown"
        assert lasts[0]["last_seen"] != lasts[1]["last_seen"]  # the same person twice changes the state
        ada = T.ha_seen(person_slug("Ada"))
        assert ha.wait_for(lambda: len(ha.on(ada)) == 2)
    finally:
        sink.close()
    assert ha.wait_for(lambda: ha.on(T.availability)[-1:] == [b"stopped"])

    # The broker restarts (SIGTERM: it saves its persistence file); nobody republishes anything.
    with ha.cond:
        ha.messages.clear()
    broker.stop()
    broker.start()
    assert ha.wait_for(lambda: ha.connected.is_set() and retained(ha, T.ha_last) and len(configs(ha)) == 11, 20)
    assert json.loads(retained(ha, T.ha_last)[-1])["person"] == "Fremder"
    assert ha.wait_for(lambda: retained(ha, T.state) and retained(ha, T.availability) and retained(ha, ada))
    assert json.loads(retained(ha, T.state)[-1])["fps"] == 30.0
    assert retained(ha, ada)[-1].decode() == lasts[1]["last_seen"]  # Ada's second visit
    assert not ha.on(T.ha_event) and not ha.on(T.verdict)  # events are not retained: no automation re-fires
    ha.stop()


def test_discovery_of_a_renamed_device_and_a_revoked_person_is_removed(broker, tmp_path):
    people = ["Ada", "Grace"]
    first = ha_sink(tmp_path, broker.url, discovery_people=True)
    first.people_source = lambda: list(people)
    first.start()
    assert first.link.wait_connected(10)
    first.state({"enrolled": 2})
    watcher = Recorder(broker.port, ["homeassistant/#"], client_id="watcher").start()
    assert watcher.wait_for(lambda: len(configs(watcher)) == 10)
    grace = f"seen_{person_slug('Grace')}"
    people.remove("Grace")  # revoked: the enrolled count changes, the people are read again
    first.state({"enrolled": 1})
    assert watcher.wait_for(lambda: len(configs(watcher)) == 9)
    assert not any(grace in t for t in configs(watcher))
    first.close()

    # The same device comes back as door-7 (device.id changed; the record is beside the outbox).
    renamed = ha_sink(tmp_path, broker.url, device_id="door-7")
    renamed.start()
    try:
        assert renamed.link.wait_connected(10)
        assert watcher.wait_for(lambda: not configs(watcher) and len(configs(watcher, "edge_door-7")) == 8)
    finally:
        renamed.close()
    watcher.stop()
    late = Recorder(broker.port, ["homeassistant/#", "edge/door-1/ha/#"], client_id="late").start()
    assert late.wait_for(lambda: len(configs(late, "edge_door-7")) == 8)
    time.sleep(0.5)
    assert not configs(late) and not late.on(T.ha_last)  # nothing of door-1 left on the broker
    late.stop()


def test_edge_mqtt_remove_discovery_takes_the_device_out_of_ha(broker, tmp_path, capsys):
    sink = ha_sink(tmp_path, broker.url, discovery_people=True, ha=HaOptions(commands=HA_COMMANDS))
    sink.people_source = lambda: ["Ada"]
    sink.start()
    assert sink.link.wait_connected(10)
    sink.publish(make_verdict(1, name="Ada"))
    watcher = Recorder(broker.port, ["homeassistant/#", "edge/door-1/ha/#"], client_id="watcher").start()
    assert watcher.wait_for(lambda: len(configs(watcher)) == 11 and watcher.on(T.ha_last))
    sink.close()
    conf = tmp_path / "edge.toml"
    conf.write_text(
        f'[device]\nid = "{DEVICE}"\n[mqtt]\nurl = "{broker.url}"\noutbox_path = "{tmp_path / "outbox-door-1"}"\n'
    )
    (tmp_path / "outbox-door-1" / "ha-announced.json").write_text((tmp_path / "ha-announced.json").read_text())
    assert main(["mqtt", "remove-discovery", "--config", str(conf)]) == 0
    done = json.loads(capsys.readouterr().out)
    assert not done["refused"] and len(done["cleared"]) >= 13
    assert not (tmp_path / "outbox-door-1" / "ha-announced.json").exists()
    watcher.stop()
    late = Recorder(broker.port, ["homeassistant/#", "edge/door-1/ha/#"], client_id="late").start()
    time.sleep(1.0)
    assert late.messages == []  # no config, no last verdict, no name left retained
    late.stop()


def test_home_assistant_presses_reload_and_nothing_else_gets_through(broker, tmp_path):
    pressed = threading.Event()
    ha = Recorder(broker.port, ["homeassistant/#"], client_id="homeassistant").start()
    # A command left retained (by mistake or on purpose) would run on every reconnect: refused.
    ha.client.publish(T.ha_command, b"reload", qos=1, retain=True).wait_for_publish(5)
    sink = ha_sink(tmp_path, broker.url, ha=HaOptions(commands=("reload",)))
    sink.ha_actions["reload"] = pressed.set
    sink.start()
    try:
        assert sink.link.wait_connected(10)
        assert ha.wait_for(lambda: any("/button/" in t for t in configs(ha)))
        button = next(p for t, p in configs(ha).items() if "/button/" in t)
        assert button["command_topic"] == T.ha_command
        crafted = b"revoke Ada; " + b"A" * 10
        ha.client.publish(button["command_topic"], crafted, qos=1)
        ha.client.publish(button["command_topic"], b"door_disable", qos=1)  # not configured here
        assert ha.wait_for(lambda: len([k for k, _f in sink.hooked if k == "ha_command_refused"]) == 3)
        assert not pressed.is_set()
        ha.client.publish(button["command_topic"], b"", qos=1, retain=True)  # clear the retained one
        ha.client.publish(button["command_topic"], button["payload_press"], qos=1)
        assert pressed.wait(5)
        assert ha.wait_for(lambda: any(k == "ha_command" for k, _f in sink.hooked))
        refused = [f for k, f in sink.hooked if k == "ha_command_refused"]
        # the last: the empty message that cleared the retained one (recorded like any other)
        assert [f["reason"] for f in refused] == ["retained", "not_allowed", "not_allowed", "not_allowed"]
        assert refused[1]["sha256"] == hashlib.sha256(crafted).hexdigest()
        assert "revoke" not in json.dumps(refused)  # recorded as size and hash, never the payload
        assert ("ha_command", {"command": "reload", "ok": True}) in sink.hooked
    finally:
        sink.close()
        ha.stop()


def test_ha_options_come_from_the_config(tmp_path):
    cfg = load_config(
        overrides={
            "mqtt": {"outbox_path": str(tmp_path), "discovery_area": "Hall", "discovery_stranger": "visitor",
                     "ha_commands": ["reload"], "discovery_people": True},
            "http": {"enabled": True, "host": "192.0.2.1"},
        }
    )  # fmt: skip
    opts = ha_options_from_config(cfg)
    assert opts["ha"] == HaOptions(area="Hall", console_url="http://192.0.2.1:8080/console/", commands=("reload",))
    assert opts["stranger"] == "visitor" and opts["discovery_people"] is True
    assert opts["announced_path"] == f"{tmp_path}/ha-announced.json"
