"""`edge doctor` against real parts: the shipped models, a replay directory of real photos, a
real vault (one person enrolled with the real engine), a real mosquitto broker.

Brokers come from tests/mqtt_broker.py (mosquitto on a free local port in a temp dir, killed at
teardown); the broker tests skip when mosquitto is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import threading
import time
from collections import namedtuple
from pathlib import Path

import cv2
import mqtt_broker  # tests/: conftest puts it on sys.path
import pytest

from edge import doctor

NAME = "Eileen Collins"


def run(argv: list[str], capsys) -> tuple[int, str]:
    """`edge doctor ARGV` in this process (the parser `register` builds) → (exit code, stdout)."""
    parser = argparse.ArgumentParser(prog="edge")
    doctor.register(parser.add_subparsers())
    args = parser.parse_args(["doctor", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out


def run_json(argv: list[str], capsys) -> tuple[int, dict]:
    code, out = run([*argv, "--json"], capsys)
    return code, json.loads(out)


def lines(out: str) -> dict[str, str]:
    """check name → its report line (the summary line left out)."""
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ok", "WARN", "FAIL"):
            found[parts[1]] = line
    return found


# --- fixtures: real frames, a real vault, a real broker ----------------------------------------


@pytest.fixture(scope="module")
def frames(tmp_path_factory, _skimage_photos) -> Path:
    """A replay directory: three PNG frames of scikit-image's astronaut (512×512)."""
    directory = tmp_path_factory.mktemp("frames")
    bgr = cv2.cvtColor(_skimage_photos["astronaut"], cv2.COLOR_RGB2BGR)
    for i in range(3):
        assert cv2.imwrite(str(directory / f"{i:03d}.png"), bgr)
    return directory


@pytest.fixture(scope="module")
def vault_dir(tmp_path_factory, frames) -> Path:
    """A real vault with one person enrolled by the real engine (the one slow step, done once)."""
    from edge.engine import Engine
    from edge.vault import Vault, enroll

    directory = tmp_path_factory.mktemp("state") / "vault"
    vault = Vault.init(directory)
    enroll(Engine(), vault, NAME, [str(frames / "000.png")])
    return directory


def need_mosquitto() -> None:
    if not mqtt_broker.available():
        pytest.skip(f"mosquitto is not installed at {mqtt_broker.MOSQUITTO} (apt install mosquitto; scripts/setup.sh)")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """mqtt://127.0.0.1:PORT of a live mosquitto that takes anonymous clients."""
    need_mosquitto()
    with mqtt_broker.Broker(tmp_path_factory.mktemp("mosquitto")) as live:
        yield live.url


def write_config(path: Path, state: Path, **sections: dict) -> Path:
    """A TOML config with the audit log and the outbox under `state` (+ extra sections/keys)."""
    data = {
        "audit": {"path": str(state / "audit" / "audit.jsonl")},
        "mqtt": {"outbox_path": str(state / "outbox")},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    text = []
    for name, values in data.items():
        text.append(f"[{name}]")
        text += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(text) + "\n")
    return path


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path / "edge.toml", tmp_path, liveness={"mode": "passive"})


# --- (a) this machine, default config: there is no camera ----------------------------------------


def test_default_config_reports_no_camera(capsys):
    if os.path.exists("/dev/video0"):
        pytest.skip("this machine has /dev/video0: the no-camera report cannot be seen here")
    code, out = run([], capsys)
    assert code == 1, out
    camera = lines(out)["camera"]
    assert camera.startswith("FAIL"), camera
    assert 'no camera at /dev/video0 (camera.source = "0")' in camera
    assert "fix:" in camera and "--source" in camera
    assert out.strip().splitlines()[-1].startswith("doctor: not ready")


def test_picamera2_source_without_picamera2(capsys, tmp_path, config):
    import importlib.util

    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    code, out = run(["--config", str(config), "--source", "picamera2"], capsys)
    assert code == 1
    camera = lines(out)["camera"]
    assert camera.startswith("FAIL") and "picamera2 is not installed" in camera
    assert "python3-picamera2" in camera


# --- (b) a replay source, a good vault, a live broker: all ok -----------------------------------------


def test_clean_device_is_all_ok(capsys, tmp_path, config, frames, vault_dir, broker):
    argv = ["--config", str(config), "--source", str(frames), "--vault", str(vault_dir), "--mqtt", broker]
    code, out = run(argv, capsys)
    assert code == 0, out
    found = lines(out)
    assert set(found) == {
        "config",
        "runtime",
        "models",
        "models.load",
        "camera",
        "vault",
        "liveness",
        "mqtt",
        "clock",
        "disk.vault",
        "disk.audit",
        "disk.outbox",
    }
    assert all(line.startswith("ok") for line in found.values()), out
    assert "512x512 frame" in found["camera"] and "(replay)" in found["camera"]
    assert "1 person enrolled" in found["vault"] and "key ok (0600)" in found["vault"]
    assert f"connected to {broker}" in found["mqtt"]
    assert "files match manifest.json" in found["models"]
    assert "face_mesh" in found["models.load"] and "sface" in found["models.load"]
    assert out.strip().splitlines()[-1].startswith("doctor: ready: 0 failed")
    # doctor only looks: the audit and outbox directories are not created
    assert not (tmp_path / "audit").exists() and not (tmp_path / "outbox").exists()


def test_liveness_off_is_said_plainly(capsys, tmp_path, frames, vault_dir):
    """Off (the default) the door opens for a photo of an enrolled person: doctor says so."""
    conf = write_config(tmp_path / "off.toml", tmp_path)
    code, out = run(["--config", str(conf), "--source", str(frames), "--vault", str(vault_dir)], capsys)
    liveness = lines(out)["liveness"]
    assert (
        liveness.startswith("WARN") and "a printed photo or a phone screen" in liveness and "opens the door" in liveness
    )
    assert 'mode = "passive"' in liveness


def test_video_file_source_passes(capsys, tmp_path, config, frames, vault_dir):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (512, 512))
    assert writer.isOpened()
    for png in sorted(frames.iterdir()):
        writer.write(cv2.imread(str(png)))
    writer.release()
    code, out = run(["--config", str(config), "--source", str(clip), "--vault", str(vault_dir)], capsys)
    assert code == 0, out
    assert "512x512 frame" in lines(out)["camera"]
    assert lines(out)["mqtt"].startswith("ok") and "MQTT disabled (mqtt.enabled = false)" in out


def test_empty_replay_directory_fails(capsys, tmp_path, config, vault_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run(["--config", str(config), "--source", str(empty), "--vault", str(vault_dir)], capsys)
    assert code == 1
    assert lines(out)["camera"].startswith("FAIL") and "holds no frames" in lines(out)["camera"]


def test_hanging_source_cannot_hang_doctor(capsys, config, vault_dir):
    """A stream that accepts the connection and never sends a byte: doctor gives up after --timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stopping.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        t0 = time.monotonic()
        code, out = run(
            ["--config", str(config), "--source", f"http://127.0.0.1:{port}/video", "--timeout", "1"], capsys
        )
        elapsed = time.monotonic() - t0
    finally:
        stopping.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()
    assert code == 1
    camera = lines(out)["camera"]
    assert camera.startswith("FAIL") and "gave no frame within 1 s" in camera, camera
    assert elapsed < 4.0, f"doctor took {elapsed:.1f} s with --timeout 1"


# --- (c) the vault's key --------------------------------------------------------------------------


def test_group_readable_key_fails_with_the_chmod(capsys, tmp_path, config):
    from edge.vault import Vault

    directory = tmp_path / "vault"
    Vault.init(directory)
    key = directory / "device.key"
    key.chmod(0o644)
    code, out = run(["--config", str(config), "--vault", str(directory)], capsys)
    assert code == 1
    vault = lines(out)["vault"]
    assert vault.startswith("FAIL")
    assert "mode 0644" in vault and f"fix: chmod 600 {key}" in vault


def test_missing_key_fails_with_keys_init(capsys, tmp_path, config):
    missing = tmp_path / "no-vault"
    code, out = run(["--config", str(config), "--vault", str(missing)], capsys)
    assert code == 1
    vault = lines(out)["vault"]
    assert vault.startswith("FAIL") and f"edge keys init --vault {missing}" in vault
    missing.mkdir()
    code, out = run(["--config", str(config), "--vault", str(missing)], capsys)
    assert code == 1 and f"no device key at {missing / 'device.key'}" in lines(out)["vault"]


def test_writable_vault_or_missing_index_fails_with_the_fix(capsys, tmp_path, config):
    from edge.vault import Vault

    directory = tmp_path / "vault"
    Vault.init(directory)
    directory.chmod(0o777)
    code, out = run(["--config", str(config), "--vault", str(directory)], capsys)
    vault = lines(out)["vault"]
    assert code == 1 and vault.startswith("FAIL") and "writable by group or others" in vault
    assert f"fix: chmod 700 {directory}" in vault
    directory.chmod(0o700)
    (directory / "index.rec").unlink()
    code, out = run(["--config", str(config), "--vault", str(directory)], capsys)
    vault = lines(out)["vault"]
    assert code == 1 and vault.startswith("FAIL") and "index.rec: missing" in vault
    assert f"edge vault reindex --vault {directory}" in vault.split("fix:")[1]


def test_empty_vault_warns(capsys, tmp_path, config, frames):
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    code, out = run(["--config", str(config), "--source", str(frames), "--vault", str(tmp_path / "vault")], capsys)
    assert code == 0, out  # warnings are allowed
    vault = lines(out)["vault"]
    assert vault.startswith("WARN") and "no one is enrolled" in vault and "edge enroll --vault" in vault


def test_gallery_is_development_only(capsys, tmp_path, frames):
    gallery = tmp_path / "gallery"
    (gallery / NAME).mkdir(parents=True)
    shutil.copy(frames / "000.png", gallery / NAME / "1.png")
    cfg = write_config(tmp_path / "edge.toml", tmp_path, vault={"path": ""}, gallery={"path": str(gallery)})
    code, out = run(["--config", str(cfg), "--source", str(frames)], capsys)
    assert code == 0, out
    assert lines(out)["vault"].startswith("WARN") and "development only" in lines(out)["vault"]


# --- (d) the broker ---------------------------------------------------------------------------------


def test_unreachable_broker_fails_fast(capsys, config, frames, vault_dir):
    port = mqtt_broker.free_port()  # nothing listens there
    t0 = time.monotonic()
    code, out = run(
        [
            "--config",
            str(config),
            "--source",
            str(frames),
            "--vault",
            str(vault_dir),
            "--mqtt",
            f"mqtt://127.0.0.1:{port}",
        ],
        capsys,
    )
    elapsed = time.monotonic() - t0
    assert code == 1
    mqtt = lines(out)["mqtt"]
    assert mqtt.startswith("FAIL") and f"127.0.0.1:{port}" in mqtt and "refused" in mqtt.lower(), mqtt
    assert "fix: start the broker or correct the host/port in mqtt.url" in mqtt
    assert elapsed < 5.0, f"doctor took {elapsed:.1f} s against a closed port"
    assert lines(out)["disk.outbox"].startswith("ok")  # mqtt on: the outbox is checked


def test_refused_login_fails_naming_the_credentials(capsys, tmp_path, config, frames, vault_dir):
    need_mosquitto()
    with mqtt_broker.Broker(tmp_path / "broker", users={"door-1": "right"}) as live:
        code, out = run(
            ["--config", str(config), "--source", str(frames), "--vault", str(vault_dir)]
            + ["--mqtt", f"mqtt://door-1:secret@127.0.0.1:{live.port}"],
            capsys,
        )
    assert code == 1
    mqtt = lines(out)["mqtt"]
    assert mqtt.startswith("FAIL") and "refused the login" in mqtt, mqtt
    assert "secret" not in out  # the password is never printed
    assert "mqtt.username" in mqtt and "mqtt.password_file" in mqtt


def test_unreadable_password_file_names_the_key(capsys, tmp_path, frames, vault_dir):
    cfg = write_config(
        tmp_path / "edge.toml", tmp_path, mqtt={"enabled": True, "password_file": str(tmp_path / "nope")}
    )
    code, out = run(["--config", str(cfg), "--source", str(frames), "--vault", str(vault_dir)], capsys)
    assert code == 1
    assert lines(out)["mqtt"].startswith("FAIL  mqtt") and "mqtt.password_file" in lines(out)["mqtt"]


# --- (e) a config that does not load --------------------------------------------------------------


def test_bad_config_key_is_a_finding_and_exit_2(capsys, tmp_path):
    cfg = tmp_path / "edge.toml"
    cfg.write_text("[decision]\nk = 7\n")
    code, out = run(["--config", str(cfg)], capsys)
    assert code == 2
    config_line = lines(out)["config"]
    assert config_line.startswith("FAIL") and "decision.k" in config_line
    assert f"fix: correct decision.k in {cfg}" in config_line
    # what does not need the config still ran
    assert lines(out)["runtime"].startswith("ok") and lines(out)["models"].startswith("ok")
    assert "camera" not in lines(out)

    cfg.write_text("[camera]\ncolour = 1\n")
    code, out = run(["--config", str(cfg)], capsys)
    assert code == 2 and "camera.colour: unknown key" in lines(out)["config"]


def test_bad_override_names_the_flag(capsys):
    code, out = run(["--mqtt", "http://broker"], capsys)
    assert code == 2
    assert "mqtt.url" in lines(out)["config"] and "fix: correct --mqtt" in lines(out)["config"]


def test_usage_errors_exit_2(capsys, tmp_path):
    code, out = run(["--config", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "no such config file" in lines(out)["config"]
    assert run(["--timeout", "0"], capsys)[0] == 2
    with pytest.raises(SystemExit) as exc:
        run(["--timeout", "soon"], capsys)
    assert exc.value.code == 2


# --- (f) --json -------------------------------------------------------------------------------------


def test_json_shape(capsys, config, frames, vault_dir, tmp_path):
    code, report = run_json(["--config", str(config), "--source", str(frames), "--vault", str(vault_dir)], capsys)
    assert code == 0
    assert set(report) == {"ok", "checks"} and report["ok"] is True
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "WARN", "FAIL") and isinstance(check["detail"], str)
        assert check["fix"] is None or isinstance(check["fix"], str)
    assert [c["name"] for c in report["checks"]][:4] == ["config", "runtime", "models", "models.load"]

    code, report = run_json(["--config", str(config), "--vault", str(tmp_path / "none")], capsys)
    assert code == 1 and report["ok"] is False
    vault = next(c for c in report["checks"] if c["name"] == "vault")
    assert vault["status"] == "FAIL" and vault["fix"].startswith("edge keys init --vault")


# --- clock and disk ---------------------------------------------------------------------------------


def test_clock_behind_the_models_fails():
    when, _what = doctor.build_reference()
    (finding,) = doctor.check_clock(now=when - 30 * 86_400)
    assert finding.status == "FAIL" and "the clock is behind" in finding.detail
    assert "timedatectl set-ntp true" in finding.fix and "command_max_age" in finding.detail
    (finding,) = doctor.check_clock(now=1_000_000_000.0)  # 2001: never set
    assert finding.status == "FAIL" and "never set" in finding.detail
    (finding,) = doctor.check_clock()
    assert finding.status in ("ok", "WARN") and "NTP" in finding.detail


def test_audit_path_that_cannot_be_created_fails(capsys, tmp_path, frames, vault_dir):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be\n")
    cfg = write_config(tmp_path / "edge.toml", tmp_path, audit={"path": str(blocker / "audit.jsonl")})
    code, out = run(["--config", str(cfg), "--source", str(frames), "--vault", str(vault_dir)], capsys)
    assert code == 1
    audit = lines(out)["disk.audit"]
    assert audit.startswith("FAIL") and "audit.path" in audit and "not a directory" in audit


def test_low_disk_thresholds(tmp_path, monkeypatch):
    """500 MB / 50 MB, with the filesystem's answer replaced (a nearly full disk cannot be made here)."""
    usage = namedtuple("usage", "total used free")
    for free, status in ((400 << 20, "WARN"), (10 << 20, "FAIL"), (2 << 30, "ok")):
        monkeypatch.setattr(doctor.shutil, "disk_usage", lambda _p, f=free: usage(8 << 30, 0, f))
        finding = doctor.check_disk_path("disk.audit", "audit.path", tmp_path)
        assert finding.status == status, finding


def test_cli_wires_doctor():
    from edge.cli import build_parser

    args = build_parser().parse_args(["doctor", "--json", "--timeout", "2"])
    assert args.func is doctor.cmd_doctor and args.json and args.timeout == 2.0
