"""Fleet enrolment (docs/fleet.md) on loopback: two real mosquitto brokers bridged both ways, 20
`edge node` processes with real vaults and the real engine, one signed group command to enrol
and one to revoke — and the attacks: a replayed group command, a command for another group, a
command signed for a group published on another group's topic, a forged signature.
"""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
import pytest
from fleet_harness import GROUP, Fleet
from mqtt_broker import available
from vault_helpers import encode

from edge.admin.fleet import group_target, import_chunks, read_device_keys, target_group
from edge.admin.signing import CommandRefused, CommandVerifier, generate_admin_key, public_key_text, sign_command
from edge.mqtt.fleet import fleet_rows, read_fleet

pytestmark = pytest.mark.skipif(not available(), reason="mosquitto is not installed")

SIZE = 20


def _raw_publish(port: int, topic: str, payload: bytes) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fleet-attacker")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _responses(fleet: Fleet, nonce: str) -> dict[str, dict]:
    out = {}
    for topic, payload, _r in list(fleet.recorder.messages):
        if topic.endswith("/command/response"):
            data = json.loads(payload)
            if data.get("nonce") == nonce:
                out[data["device_id"]] = data
    return out


def _wait_responses(fleet: Fleet, nonce: str, devices: list[str], timeout: float = 30.0) -> dict[str, dict]:
    fleet.recorder.wait_for(lambda: set(devices) <= set(_responses(fleet, nonce)), timeout)
    return _responses(fleet, nonce)


@pytest.mark.slow
def test_one_group_command_enrols_and_revokes_on_twenty_doors_across_a_bridge(tmp_path, astronaut_rgb, capsys):
    photo = encode(astronaut_rgb, ".jpg")
    with Fleet(tmp_path, size=SIZE, timeout=90.0) as fleet:
        # half the doors are on the site broker: everything they get crossed the bridge
        assert {fleet.broker_of(i).port for i in range(SIZE)} == {fleet.hub.port, fleet.site.port}
        before = {d: fleet.latest_state(d) for d in fleet.doors}
        assert all(s["people"] == 0 and s["groups"] == [GROUP] for s in before.values())
        assert {d: s["public_key"] for d, s in before.items()} == {d: fleet.keys[d] for d in fleet.doors}

        enrol = fleet.enrol("Ada Lovelace", [photo])
        assert len(fleet.last_outcome["nonces"]) == 1  # 20 sealed copies fit in one command
        assert enrol.missing == [] and enrol.failed == {}, enrol.summary(SIZE)
        assert set(enrol.replies) == set(fleet.doors)
        after = {d: fleet.latest_state(d) for d in fleet.doors}
        assert all(s["people"] == 1 and s["generation"] != before[d]["generation"] for d, s in after.items())
        assert len({s["people_sha256"] for s in after.values()}) == 1  # the same people on every door
        assert "Ada" not in json.dumps(after)  # a digest, never the names
        # the outsider (group "garage", on the site broker) was not enrolled
        outsider = fleet.outsiders[0]
        assert fleet.latest_state(outsider)["people"] == 0

        # every door's fleet status says it has the latest enrolment
        rows = fleet_rows(read_fleet(fleet.settings(fleet.site), wait=1.5), group=GROUP)
        assert [r["device_id"] for r in rows] == fleet.doors
        assert all(r["latest"][GROUP].startswith("yes (import") and r["people"] == 1 for r in rows), rows

        # a replay of the very command (captured off the group topic) is refused by every door
        captured = fleet.recorder.on(f"edge/group/{GROUP}/cmd")
        assert len(captured) == 1
        nonce = json.loads(captured[0])["nonce"]
        replies_before = len(_responses(fleet, nonce))
        _raw_publish(fleet.site.port, f"edge/group/{GROUP}/cmd", captured[0])
        fleet.recorder.wait_for(lambda: len(fleet.recorder.on(f"edge/group/{GROUP}/cmd")) == 2, 10)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            refusals = [p for t, p, _r in fleet.recorder.messages if t.endswith("/command/response")]
            replayed = [json.loads(p) for p in refusals if json.loads(p).get("reason") == "replayed"]
            if len(replayed) == SIZE:
                break
            time.sleep(0.2)
        assert sorted(r["device_id"] for r in replayed) == fleet.doors
        assert replies_before == SIZE

        revoke = fleet.revoke("Ada Lovelace")
        assert revoke.missing == [] and revoke.failed == {}, revoke.summary(SIZE)
        assert all(fleet.latest_state(d)["people"] == 0 for d in fleet.doors)
        rows = fleet_rows(read_fleet(fleet.settings(), wait=1.5), group=GROUP)
        assert all(r["latest"][GROUP].startswith("yes (revoke") for r in rows), rows

        with capsys.disabled():
            print(f"\nfleet: {SIZE} doors on 2 bridged brokers, started in {fleet.started_s:.1f} s")
            for op in (enrol, revoke):
                print(f"  {json.dumps(op.summary(SIZE))}")


@pytest.mark.slow
def test_a_door_refuses_another_groups_command_and_a_forgery(tmp_path, astronaut_rgb):
    with Fleet(tmp_path, size=2, others=1, timeout=60.0) as fleet:
        outsider = fleet.outsiders[0]  # in group "garage", subscribed to edge/group/garage/cmd
        # signed for lobby, sent on garage's topic: the signed target decides, not the topic
        lobby = sign_command(fleet.admin_key, "revoke", {"name": "x"}, device_id=group_target(GROUP))
        _raw_publish(fleet.hub.port, "edge/group/garage/cmd", json.dumps(lobby).encode())
        got = _wait_responses(fleet, lobby["nonce"], [outsider])
        assert got[outsider]["reason"] == "wrong_group"
        # a group command with its target changed after signing (lobby → garage)
        forged = {**lobby, "device_id": group_target("garage")}
        _raw_publish(fleet.hub.port, "edge/group/garage/cmd", json.dumps(forged).encode())
        fleet.recorder.wait_for(
            lambda: any(
                json.loads(p).get("reason") == "bad_signature"
                for t, p, _r in fleet.recorder.messages
                if t == f"edge/{outsider}/command/response"
            ),
            20,
        )
        # signed by a key the doors do not trust
        stranger = generate_admin_key(tmp_path / "stranger.key")
        rogue = sign_command(stranger, "revoke", {"name": "x"}, device_id=group_target("garage"))
        _raw_publish(fleet.hub.port, "edge/group/garage/cmd", json.dumps(rogue).encode())
        assert _wait_responses(fleet, rogue["nonce"], [outsider])[outsider]["reason"] == "unknown_key"
        # a group may only be sent import, revoke, reload
        status = sign_command(fleet.admin_key, "people", {}, device_id=group_target("garage"))
        _raw_publish(fleet.hub.port, "edge/group/garage/cmd", json.dumps(status).encode())
        assert _wait_responses(fleet, status["nonce"], [outsider])[outsider]["reason"] == "unknown_command"
        # none of it touched a lobby door, nor the outsider's vault
        assert all(fleet.latest_state(d)["applied"] == [] for d in [*fleet.doors, outsider])
        assert not any(t.startswith("edge/door-") and t.endswith("/response") for t, _p, _r in fleet.recorder.messages)


def test_the_verifier_takes_only_its_own_groups(tmp_path):
    key = generate_admin_key(tmp_path / "admin.key")
    verifier = CommandVerifier([public_key_text(key)], device_id="door-1", groups=["lobby"])
    assert verifier.verify(sign_command(key, "revoke", {"name": "x"}, device_id="group:lobby"))
    with pytest.raises(CommandRefused) as refused:
        verifier.verify(sign_command(key, "revoke", {"name": "x"}, device_id="group:garage"))
    assert refused.value.reason == "wrong_group"
    loner = CommandVerifier([public_key_text(key)], device_id="door-1")
    with pytest.raises(CommandRefused) as refused:
        loner.verify(sign_command(key, "revoke", {"name": "x"}, device_id="group:lobby"))
    assert refused.value.reason == "wrong_group"
    command = sign_command(key, "revoke", {"name": "x"}, device_id="group:lobby")
    verifier.verify(dict(command))
    with pytest.raises(CommandRefused) as refused:
        verifier.verify(dict(command))
    assert refused.value.reason == "replayed"
    assert target_group("group:lobby") == "lobby" and target_group("door-1") is None


def test_large_groups_are_split_into_commands_under_the_limit(tmp_path):
    bundles = {f"door-{i}": bytes(3000) for i in range(50)}
    chunks = import_chunks(bundles, 40_000)
    assert len(chunks) > 1
    assert sorted(d for c in chunks for d in c["bundles"]) == sorted(bundles)  # each door exactly once
    assert all(len(json.dumps(c)) < 40_000 for c in chunks)
    keys = tmp_path / "keys"
    keys.write_text("# doors\ndoor-1 AAAA\n\ndoor-2 BBBB  # lobby\n")
    assert read_device_keys(keys) == {"door-1": "AAAA", "door-2": "BBBB"}


@pytest.mark.slow
def test_the_administrators_commands_keys_enroll_status_revoke(tmp_path, astronaut_files, capsys):
    from edge.cli import main

    with Fleet(tmp_path, size=2, others=1, timeout=60.0) as fleet:
        broker = ["--mqtt", fleet.site.url]  # the site broker: the doors on the hub answer across the bridge
        signed = [*broker, "--group", GROUP, "--admin-key", str(tmp_path / "admin.key"), "--timeout", "30"]
        capsys.readouterr()
        assert main(["admin", "fleet", "keys", *broker, "--group", GROUP, "--wait", "1"]) == 0
        keys_text = capsys.readouterr().out
        assert keys_text.splitlines() == [f"{d} {fleet.keys[d]}" for d in fleet.doors]  # not the outsider
        keys = tmp_path / "lobby.keys"
        keys.write_text(keys_text)

        photos = [str(p) for p in astronaut_files]
        assert main(["admin", "fleet", "enroll", *signed, "--keys", str(keys), "Eileen Collins", *photos]) == 0
        sent = json.loads(capsys.readouterr().out)
        assert sent["ok"] == fleet.doors and sent["failed"] == {} and sent["missing"] == []

        assert main(["admin", "fleet", "status", *broker, "--json", "--wait", "1.5"]) == 0
        rows = {r["device_id"]: r for r in json.loads(capsys.readouterr().out)["devices"]}
        assert sorted(rows) == sorted([*fleet.doors, *fleet.outsiders])
        assert all(rows[d]["people"] == 1 and rows[d]["latest"][GROUP].startswith("yes") for d in fleet.doors)
        assert rows[fleet.outsiders[0]]["people"] == 0 and rows[fleet.outsiders[0]]["latest"] == {"garage": "none sent"}

        # a door that is down misses the revoke: the sender says so, and so does the status
        fleet.procs[fleet.doors[1]].terminate()
        fleet.procs[fleet.doors[1]].wait(15)
        signed[-1] = "5"
        assert main(["admin", "fleet", "revoke", *signed, "--keys", str(keys), "Eileen Collins"]) == 1
        sent = json.loads(capsys.readouterr().out)
        assert sent["ok"] == [fleet.doors[0]] and sent["missing"] == [fleet.doors[1]]
        assert main(["admin", "fleet", "status", *broker, "--json", "--group", GROUP, "--wait", "1.5"]) == 0
        rows = {r["device_id"]: r for r in json.loads(capsys.readouterr().out)["devices"]}
        assert rows[fleet.doors[0]]["latest"][GROUP].startswith("yes (revoke")
        assert rows[fleet.doors[1]]["latest"][GROUP].startswith("NO (missing revoke")
        assert rows[fleet.doors[1]]["availability"] == "stopped" and rows[fleet.doors[1]]["people"] == 1


@pytest.mark.slow
def test_edge_run_takes_a_group_enrolment_on_its_loop_and_then_recognises_the_person(tmp_path, astronaut_rgb, capsys):
    """The camera appliance (not `edge node`): the group import runs on the loop thread, the loop
    reloads, and the next frames of the person are granted."""
    import signal
    import subprocess

    from mqtt_broker import Broker
    from mqtt_helpers import Recorder
    from test_mqtt import DEVICE, _door, _edge_run

    from edge.cli import main
    from edge.vault import Vault

    admin = generate_admin_key(tmp_path / "admin.key")
    vault = Vault.init(tmp_path / "vault")  # empty: the person arrives by the group command
    conf, frames = _door(tmp_path, astronaut_rgb, 900, admin_keys=[public_key_text(admin)], groups=["lobby"])
    text = conf.read_text().replace('[vault]\npath = ""', f'[vault]\npath = "{tmp_path / "vault"}"')
    conf.write_text(text.replace(f'[gallery]\npath = "{tmp_path / "gallery"}"', '[gallery]\npath = ""'))
    keys = tmp_path / "lobby.keys"
    keys.write_text(f"{DEVICE} {vault.public_key_b64}\n")
    photo = tmp_path / "ada.jpg"
    photo.write_bytes(encode(astronaut_rgb, ".jpg"))
    with Broker(tmp_path / "broker") as broker:
        rec = Recorder(broker.port, [f"edge/{DEVICE}/#"]).start()
        proc = _edge_run(conf, frames, broker.url)
        try:
            assert rec.wait_for(lambda: rec.on(f"edge/{DEVICE}/fleet"), timeout=60)
            assert rec.json_on(f"edge/{DEVICE}/fleet")[-1]["people"] == 0
            assert not any(v["decision"] == "granted" for v in rec.json_on(f"edge/{DEVICE}/verdict"))
            capsys.readouterr()
            enrol = ["admin", "fleet", "enroll", "--mqtt", broker.url, "--group", "lobby", "--keys", str(keys)]
            assert main([*enrol, "--admin-key", str(tmp_path / "admin.key"), "Ada", str(photo)]) == 0
            assert json.loads(capsys.readouterr().out)["ok"] == [DEVICE]
            assert rec.wait_for(lambda: rec.json_on(f"edge/{DEVICE}/fleet")[-1]["people"] == 1, timeout=30)
            verdicts = f"edge/{DEVICE}/verdict"
            granted = lambda: [v for v in rec.json_on(verdicts) if v["decision"] == "granted"]  # noqa: E731
            assert rec.wait_for(lambda: any(v["name"] == "Ada" for v in granted()), timeout=60)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            rec.stop()
