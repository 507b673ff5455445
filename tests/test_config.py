"""The appliance config: typed, validated at load, errors that name the key; the documented default file."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import tomllib

from edge import cli
from edge.config import Config, ConfigError, config_from_dict, field_paths, load_config


@pytest.fixture(scope="module")
def firmware(repo_root):
    return repo_root / "firmware_config" / "edge.toml"


def test_the_firmware_config_documents_every_key_with_its_default(firmware):
    text = firmware.read_text()
    data = tomllib.loads(text)
    for path in field_paths():
        section, key = path.split(".")
        assert key in data.get(section, {}), f"{path} is not in firmware_config/edge.toml"
    # ... and nothing else, with exactly the built-in defaults
    assert load_config(firmware) == Config()
    # every key line sits in a paragraph that has a comment explaining it
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in paragraph.splitlines() if ln.strip()]
        keys = [ln for ln in lines if re.match(r"[a-z_]+\s*=", ln)]
        if keys:
            assert any(ln.startswith("#") for ln in lines), f"undocumented: {keys}"


def test_every_section_is_a_dataclass_with_defaults():
    cfg = Config()
    for f in fields(Config):
        section = getattr(cfg, f.name)
        assert all(getattr(section, g.name) is not None for g in fields(section))
    assert cfg.decision.threshold == 0.7  # edge.matching.DEFAULT_THRESHOLD (test_the_default_threshold_…)


def test_values_are_read_and_typed():
    cfg = config_from_dict(
        {
            "device": {"id": "door-1"},
            "camera": {"source": 2, "fps": 15, "realtime": True},
            "decision": {"k": 2, "n": 4, "threshold": 0.75},
            "vault": {"path": ""},
            "gallery": {"path": "people/"},
        }
    )
    assert cfg.device_id == "door-1"
    assert cfg.camera.source == "2"  # a bare device index is accepted as a number
    assert cfg.camera.fps == 15.0 and isinstance(cfg.camera.fps, float)
    assert (cfg.decision.k, cfg.decision.n, cfg.decision.threshold) == (2, 4, 0.75)
    assert cfg.engine.detector == "cascade"  # untouched keys keep their defaults
    assert Config().device_id  # empty id → the hostname


@pytest.mark.parametrize(
    "data, key, words",
    [
        ({"decision": {"k": 7}}, "decision.k", "must be an integer between 1 and decision.n (5), got 7"),
        ({"decision": {"kk": 1}}, "decision.kk", "unknown key"),
        ({"camera": {"source": "0", "colour": "red"}}, "camera.colour", "unknown key"),
        ({"cameras": {}}, "cameras", "unknown section"),
        ({"decision": 3}, "decision", "must be a table"),
        ({"decision": {"threshold": 1.5}}, "decision.threshold", "between 0 and 1, got 1.5"),
        ({"decision": {"threshold": "high"}}, "decision.threshold", "must be a number"),
        ({"decision": {"n": 2.5}}, "decision.n", "must be an integer"),
        ({"decision": {"n": True}}, "decision.n", "must be an integer"),
        ({"camera": {"realtime": "yes"}}, "camera.realtime", "must be true or false"),
        ({"camera": {"fps": 0}}, "camera.fps", "between 0.1 and 240"),
        ({"camera": {"source": ""}}, "camera.source", "must not be empty"),
        ({"camera": {"reopen_backoff": 5, "reopen_backoff_max": 1}}, "camera.reopen_backoff_max", "at least"),
        ({"engine": {"detector": "yolo"}}, "engine.detector", "must be one of 'cascade', 'both'"),
        ({"engine": {"profile": "best"}}, "engine.profile", "must be one of"),
        ({"device": {"id": "door 1"}}, "device.id", "letters, digits"),
        ({"gallery": {"path": "g/"}}, "gallery.path", "either vault.path or gallery.path"),
        ({"audit": {"backups": 0}}, "audit.backups", "between 1 and"),
        ({"mqtt": {"enabled": True, "url": "http://broker"}}, "mqtt.url", "mqtt:// or mqtts://"),
        ({"mqtt": {"admin_keys": "AAAA"}}, "mqtt.admin_keys", "must be a list of strings"),
        ({"mqtt": {"reconnect_min": 5.0, "reconnect_max": 1.0}}, "mqtt.reconnect_max", "at least mqtt.reconnect_min"),
        ({"mqtt": {"cert_file": "c.pem"}}, "mqtt.key_file", "together"),
        ({"mqtt": {"host": "broker"}}, "mqtt.host", "unknown key"),
    ],
)
def test_a_bad_value_stops_loading_and_names_its_key(data, key, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert err.value.key == key
    assert words in str(err.value)
    assert str(err.value).split("] ", 1)[1].startswith(f"{key}: ")


def test_file_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("[decision]\nk = 9\n")
    with pytest.raises(ConfigError, match=r"edge\.toml: decision\.k: must be an integer between 1 and decision\.n"):
        load_config(path)
    path.write_text("[decision\nk = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_overrides_are_checked_like_the_file(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text('[camera]\nsource = "/dev/video0"\n[device]\nid = "a"\n')
    cfg = load_config(path, overrides={"camera": {"source": "clip.avi"}, "device": {"id": None}})
    assert cfg.camera.source == "clip.avi" and cfg.device.id == "a"  # None leaves the file's value
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides={"device": {"id": "no spaces allowed"}})
    assert err.value.key == "device.id"


def test_edge_run_refuses_a_bad_config_before_loading_anything(tmp_path, capsys):
    path = tmp_path / "edge.toml"
    path.write_text("[decision]\nk = 6\nn = 5\n")
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "decision.k: must be an integer between 1 and decision.n (5), got 6" in err
    path.write_text('[camera]\nsource = "/nonexistent/clip.avi"\n')
    assert cli.main(["run", "--config", str(path)]) == 2
    assert "camera.source" in capsys.readouterr().err


# A threshold written as a literal 0.7 (the recommended one) instead of DEFAULT_THRESHOLD:
# `threshold=0.7`, `"threshold": 0.7`, `default=0.7`, `t: float = 0.7`, `score >= 0.7`, `0.7 - margin`.
_THRESHOLD_COPY = re.compile(
    r"""(threshold\w*["']?\s*[:=]\s*(float\s*=\s*)?0\.7\b(?!\d)|default\s*=\s*0\.7\b(?!\d)"""
    r"""|\bt\s*:\s*float\s*=\s*0\.7\b(?!\d)|>=\s*0\.7\b(?!\d)|\b0\.7\s*-\s*\w)""",
    re.IGNORECASE,
)


def test_the_default_threshold_is_written_in_one_place(repo_root):
    """`edge.matching.DEFAULT_THRESHOLD` is the recommended decision threshold everywhere: the
    config's default, the policy's, the engine's and the CLI's (None: the engine's default),
    and no module or script under edge/ or scripts/ writes its own 0.7 for it."""
    import inspect

    from edge.appliance.policy import DecisionPolicy
    from edge.engine import Engine
    from edge.matching import DEFAULT_THRESHOLD

    assert Config().decision.threshold == DEFAULT_THRESHOLD
    assert tomllib.loads((repo_root / "firmware_config" / "edge.toml").read_text())["decision"]["threshold"] == (
        DEFAULT_THRESHOLD
    )
    assert inspect.signature(DecisionPolicy).parameters["threshold"].default == DEFAULT_THRESHOLD
    assert inspect.signature(Engine.identify).parameters["threshold"].default in (None, DEFAULT_THRESHOLD)
    identify = cli.build_parser()._subparsers._group_actions[0].choices["identify"]
    assert identify.parse_args(["photo.jpg", "--vault", "v"]).threshold is None
    copies = []
    for path in sorted([*(repo_root / "edge").rglob("*.py"), *(repo_root / "scripts").rglob("*.py")]):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _THRESHOLD_COPY.search(code) and "DEFAULT_THRESHOLD = " not in code:
                copies.append(f"{path.relative_to(repo_root)}:{n}: {line.strip()}")
    assert not copies, "use edge.matching.DEFAULT_THRESHOLD:\n" + "\n".join(copies)
    assert _THRESHOLD_COPY.search('"decision": {"evidence": mode, "threshold": 0.7, "k": 3}')  # the regex bites
    assert not _THRESHOLD_COPY.search("THRESHOLDS = (0.6, 0.7, 0.8)") and not _THRESHOLD_COPY.search("x = 0.75")
