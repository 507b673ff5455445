"""Logging: one logger per module, `--log-level` / `-v` / `[log] level`, and a quiet stderr by default.

The CLI's results stay on stdout; diagnostics are log records on stderr. The TFLite
runtimes' "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." line (printed from C++
when the first interpreter is made) is not shown at the default level, and what native
code prints as an error still is.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from edge import cli, logs, runtime
from edge.config import ConfigError, config_from_dict, load_config

DELEGATE_LINE = "Created TensorFlow Lite XNNPACK delegate for CPU."


# --- the command in a fresh process ------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(astronaut_files):
    return tuple(str(p) for p in astronaut_files)


def edge(repo_root, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MODELS_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=repo_root,
        env=env,
    )


def compare_result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()  # stdout: the one JSON line, as before
    return json.loads(line)


def test_a_successful_compare_prints_nothing_on_stderr_by_default(repo_root, photos):
    proc = edge(repo_root, "compare", *photos)
    assert compare_result(proc)["code"] == 1000
    assert proc.stderr == "", f"stderr at the default level: {proc.stderr!r}"


def test_info_level_still_hides_the_delegate_line(repo_root, photos):
    proc = edge(repo_root, "-v", "compare", *photos)
    assert compare_result(proc)["code"] == 1000
    assert DELEGATE_LINE not in proc.stderr


@pytest.mark.parametrize("flags", [["--log-level", "debug"], ["-vv"]])
def test_debug_level_shows_the_diagnostics(repo_root, photos, flags):
    proc = edge(repo_root, "compare", *photos, *flags)  # after the command works as well as before it
    assert compare_result(proc)["code"] == 1000
    assert DELEGATE_LINE in proc.stderr  # at debug the runtime's own output is not captured
    loaded = [line for line in proc.stderr.splitlines() if " DEBUG edge.runtime: loaded " in line]
    assert len(loaded) >= 3, proc.stderr  # detectors, landmarks, embedders; "time LEVEL logger: message"


def test_errors_are_log_records_on_stderr_and_stdout_stays_empty(repo_root):
    proc = edge(repo_root, "enroll", "somebody")
    assert proc.returncode == 2 and proc.stdout == ""
    assert " ERROR edge.cli: enroll: --vault DIR is needed" in proc.stderr
    quiet = edge(repo_root, "--log-level", "error", "identify", "nobody.jpg", "--vault", "/nonexistent/vault")
    assert quiet.returncode == 1 and " ERROR edge.cli: identify: " in quiet.stderr


# --- the native stderr capture -------------------------------------------------------------------


def test_native_output_becomes_records_at_its_level(caplog, capfd):
    caplog.set_level(logging.INFO, logger="edge.runtime")
    with runtime.native_stderr_logged("tflite-test"):
        os.write(2, b"INFO: " + DELEGATE_LINE.encode() + b"\n")
        os.write(2, b"WARNING: a native warning\nERROR: a native error\nError in cpuinfo: failed to parse\n")
    assert capfd.readouterr().err == ""  # nothing reached the real stderr
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "edge.runtime"]
    assert records == [
        (logging.WARNING, "tflite-test: WARNING: a native warning"),
        (logging.ERROR, "tflite-test: ERROR: a native error"),
        (logging.WARNING, "tflite-test: Error in cpuinfo: failed to parse"),  # unknown lines are warnings
    ]


def test_the_capture_ends_with_the_block_even_when_it_raises(caplog, capfd):
    caplog.set_level(logging.WARNING, logger="edge.runtime")
    with pytest.raises(RuntimeError, match="boom"):
        with runtime.native_stderr_logged("tflite-test"):
            os.write(2, b"ERROR: before the exception\n")
            raise RuntimeError("boom")
    os.write(2, b"after the block\n")
    assert capfd.readouterr().err == "after the block\n"
    assert [r.getMessage() for r in caplog.records] == ["tflite-test: ERROR: before the exception"]


def test_at_debug_nothing_is_captured(caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="edge.runtime")
    with runtime.native_stderr_logged("tflite-test"):
        os.write(2, b"INFO: shown as it is\n")
    assert capfd.readouterr().err == "INFO: shown as it is\n"


def test_a_model_that_cannot_load_is_still_an_error(tmp_path, capfd):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all " * 8)
    with pytest.raises(runtime.ModelError, match="junk.tflite"):
        runtime.Model(junk)
    os.write(2, b"fd 2 is back\n")
    assert capfd.readouterr().err.endswith("fd 2 is back\n")


# --- the flags and the config key ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, level",
    [
        (["models"], None),
        (["-v", "models"], logging.INFO),
        (["models", "-v"], logging.INFO),
        (["-vv", "models"], logging.DEBUG),
        (["models", "--verbose", "--verbose"], logging.DEBUG),
        (["--log-level", "ERROR", "models"], logging.ERROR),
        (["models", "--log-level", "info"], logging.INFO),
        (["--log-level", "warning", "-vv", "models"], logging.DEBUG),  # the more verbose wins
        (["vault", "check", "--vault", "v", "-v"], logging.INFO),  # nested commands take them too
        (["doctor", "--log-level", "debug"], logging.DEBUG),
    ],
)
def test_the_flags_give_the_level(argv, level):
    assert cli._cli_log_level(cli.build_parser().parse_args(argv)) == level


def test_a_bad_level_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(["--log-level", "loud", "models"])
    assert info.value.code == 2 and "--log-level" in capsys.readouterr().err


def test_the_config_key_is_validated_and_named():
    assert config_from_dict({"log": {"level": "debug"}}).log.level == "debug"
    assert config_from_dict({}).log.level == "warning"
    for bad in ("loud", "DEBUG", 10):
        with pytest.raises(ConfigError) as err:
            config_from_dict({"log": {"level": bad}})
        assert err.value.key == "log.level"
        assert "log.level: " in str(err.value)


def test_edge_run_refuses_a_bad_log_level_naming_the_key(tmp_path, capsys, root_logging):
    path = tmp_path / "edge.toml"
    path.write_text('[log]\nlevel = "loud"\n')
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "log.level: must be one of 'debug', 'info', 'warning', 'error', got 'loud'" in err
    with pytest.raises(ConfigError, match=r"edge\.toml: log\.level"):
        load_config(path)


def test_edge_run_uses_the_config_level_unless_a_flag_is_given(tmp_path, capsys, root_logging):
    path = tmp_path / "edge.toml"
    # the source fails after the config (and its level) is read, before any model loads
    path.write_text(f'[log]\nlevel = "debug"\n[camera]\nsource = "{tmp_path / "missing.avi"}"\n')
    assert cli.main(["run", "--config", str(path)]) == 2
    assert root_logging.level == logging.DEBUG
    assert cli.main(["run", "--config", str(path), "--log-level", "error"]) == 2
    assert root_logging.level == logging.ERROR
    assert cli.main(["-v", "run", "--config", str(path)]) == 2
    assert root_logging.level == logging.INFO
    assert "camera.source" in capsys.readouterr().err


def test_configure_installs_one_handler_on_stderr(root_logging, capsys):
    logs.configure("info")
    logs.configure("debug")
    ours = [h for h in root_logging.handlers if isinstance(h, logs._StderrHandler)]
    assert len(ours) == 1 and root_logging.level == logging.DEBUG
    logging.getLogger("edge.somewhere").info("hello %s", "there")
    err = capsys.readouterr().err
    assert err.endswith(" INFO edge.somewhere: hello there\n")
    assert err[:4].isdigit()  # the time comes first
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure("loud")


# --- modules log their warnings -----------------------------------------------------------------


def test_the_mqtt_link_logs_its_status(caplog):
    from edge.config import MqttConfig
    from edge.mqtt.client import MqttLink, MqttSettings

    caplog.set_level(logging.INFO, logger="edge.mqtt.client")
    seen = []
    link = MqttLink(
        MqttSettings.from_config(MqttConfig(url="mqtt://user:secret@broker.invalid"), client_id="t"),
        on_status=lambda kind, detail: seen.append(kind),
    )
    link._status("unreachable", "cannot connect to broker.invalid:1883")
    link._status("connected", "MQTT 5")
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "edge.mqtt.client"]
    assert records[0][0] == logging.WARNING and records[1][0] == logging.INFO
    assert "unreachable: cannot connect to broker.invalid:1883" in records[0][1]
    assert "secret" not in records[0][1]  # the broker URL is redacted
    assert seen == ["unreachable", "connected"]


def test_cli_warnings_reach_the_logger(caplog):
    cli._report_problems("people", ["record abc: does not open"])
    (record,) = caplog.records
    assert (record.name, record.levelno) == ("edge.cli", logging.WARNING)
    assert record.getMessage() == "people: record abc: does not open (skipped; the other records are in use)"
