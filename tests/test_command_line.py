"""The `edge` command as a user meets it: every option explained in --help, one JSON style,
clean failures with documented exit statuses (docs/cli.md), and the sources `edge run` takes."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from checkout import REPO

from edge import cli

MODELS = REPO / "models"
DEV_CONFIG = REPO / "firmware_config" / "dev.toml"


def _parsers(parser: argparse.ArgumentParser, path: str = "edge"):
    """(command path, parser) for `edge` and every (nested) subcommand."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"`{path} {name}` has no help line in `{path} --help`"
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_and_argument_is_explained_in_help():
    blank = []
    seen = 0
    for path, parser in _parsers(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            seen += 1
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
                blank.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert seen > 100  # every command, every option
    assert not blank, "options without a help text: " + ", ".join(blank)


# --- running the command -------------------------------------------------------------------------


def edge(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 180):
    """`edge ARGS` in a fresh process (the checkout's package), as a user runs it."""
    base = {k: v for k, v in os.environ.items() if k not in ("EDGE_MODELS_DIR", "EDGE_MQTT_PASSWORD")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def one_json_line(proc: subprocess.CompletedProcess):
    """stdout's one line of JSON, in the one style: compact, non-ASCII as it is."""
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1, proc.stdout
    value = json.loads(proc.stdout)
    assert proc.stdout == json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"
    return value


@pytest.fixture(scope="module")
def photos(astronaut_files):
    return astronaut_files


# --- compare: the decision -----------------------------------------------------------------------


def test_compare_adds_the_decision_at_the_calibrated_threshold_or_the_one_given(photos, tmp_path, _skimage_photos):
    """The astronaut against herself mirrored, and against the cameraman (another person)."""
    from edge.matching import DEFAULT_THRESHOLD

    a, b = photos
    cameraman = tmp_path / "cameraman.png"
    cv2.imwrite(str(cameraman), _skimage_photos["camera"])
    same = edge("compare", str(a), str(b))
    assert same.returncode == 0, same.stderr
    result = one_json_line(same)
    assert result["threshold"] == DEFAULT_THRESHOLD and result["verification_score"] >= DEFAULT_THRESHOLD
    assert result["match"] is True and list(result)[-1] == "request_id"
    other = one_json_line(edge("compare", str(a), str(cameraman)))
    score = other["verification_score"]
    assert score < DEFAULT_THRESHOLD and other["match"] is False and other["threshold"] == DEFAULT_THRESHOLD
    lenient = edge("compare", str(a), str(cameraman), "--threshold", f"{score:.4f}")
    assert lenient.returncode == 0 and one_json_line(lenient)["match"] is True  # score >= T
    assert one_json_line(edge("compare", str(a), str(cameraman), "--threshold", "1"))["match"] is False
    for bad in ("1.5", "-0.1", "nan", "high"):
        refused = edge("compare", str(a), str(b), "--threshold", bad)
        assert refused.returncode == 2 and "--threshold: must be a number from 0 to 1" in refused.stderr
    failed = edge("compare", str(a), str(a.parent / "missing.jpg"))
    assert failed.returncode == 1
    assert not {"threshold", "match"} & set(one_json_line(failed)), "no decision without a score"


# --- damaged models --------------------------------------------------------------------------------


def damaged_models(directory: Path, kind: str) -> Path:
    """A copy of the shipped models (symlinks) with the default MobileFaceNet damaged:
    "truncated" (the manifest's sha256 catches it), "garbage" (rehashed: it reaches the
    interpreter) or "swapped" (another valid model, rehashed: the wrong tensors)."""
    directory.mkdir()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    target = manifest["models"]["mobilefacenet"]["file"]
    for item in MODELS.iterdir():
        if item.name not in (target, "manifest.json"):
            (directory / item.name).symlink_to(item)
    original = (MODELS / target).read_bytes()
    data = {
        "truncated": original[: len(original) // 3],
        "garbage": b"\x00garbage" * 4096,
        "swapped": (MODELS / "detector_short_float16.tflite").read_bytes(),
    }[kind]
    (directory / target).write_bytes(data)
    if kind != "truncated":
        manifest["models"]["mobilefacenet"]["sha256"] = hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, photos):
    """A vault with the astronaut enrolled, a folder of frames and a pairs file, for every command."""
    root = tmp_path_factory.mktemp("workspace")
    a, b = photos
    assert edge("keys", "init", "--vault", str(root / "vault")).returncode == 0
    enrolled = edge("enroll", "--vault", str(root / "vault"), "José Álvarez", str(a))
    assert enrolled.returncode == 0, enrolled.stderr
    (root / "frames").mkdir()
    shutil.copy(b, root / "frames" / "0001.jpg")
    (root / "pairs.csv").write_text(f"img_a,img_b,same\n{a.name},{b.name},1\n")
    return root


@pytest.mark.parametrize("kind", ["truncated", "garbage", "swapped"])
def test_a_damaged_model_is_a_clean_failure_from_every_command(tmp_path, workspace, photos, kind):
    """One JSON line (compare, compare-faces, identify) or one error record, exit status 4, and
    never a traceback, from every command that loads the models."""
    models = damaged_models(tmp_path / "models", kind)
    a, b = photos
    vault = str(workspace / "vault")
    json_commands = {
        "compare": ["compare", str(a), str(b)],
        "compare-faces": ["compare-faces", str(a), str(b)],
        "identify": ["identify", "--vault", vault, str(b)],
    }
    other_commands = {
        "enroll": ["enroll", "--vault", vault, "Grace Hopper", str(b)],
        "run": ["run", "--vault", vault, "--source", str(workspace / "frames"), "--config", str(DEV_CONFIG)],
        "vault rebuild": ["vault", "rebuild", "--vault", vault, "--force"],
        "evaluate": ["evaluate", "--pairs", str(workspace / "pairs.csv"), "--root", str(a.parent)],
    }
    if kind != "garbage":  # one kind runs every command; the others the JSON ones
        other_commands = {}
    for name, argv in {**json_commands, **other_commands}.items():
        proc = edge(*argv, env={"EDGE_MODELS_DIR": str(models)}, cwd=tmp_path)
        assert proc.returncode == cli.EXIT_MODEL_FAULT, (name, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, (name, proc.stderr)
        assert f"ERROR edge.cli: {name}: the models cannot be used: " in proc.stderr, (name, proc.stderr)
        if name in json_commands:
            result = one_json_line(proc)
            assert result["code"] == 5000 and "the models cannot be used" in result["message"], result
        else:
            assert proc.stdout == "", (name, proc.stdout)
    assert not (tmp_path / "state").exists(), "nothing written before the models loaded"
    people = edge("people", "--vault", vault, "--json")  # the vault is as it was
    assert [p["name"] for p in one_json_line(people)] == ["José Álvarez"]


def test_an_unexpected_error_is_a_message_and_exit_5_with_the_traceback_only_at_debug(
    monkeypatch, capsys, root_logging
):
    def broken(_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_engine", broken)
    assert cli.main(["compare", "a.jpg", "b.jpg"]) == cli.EXIT_INTERNAL
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["code"] == 5000 and result["message"] == "internal error: RuntimeError: a bug"
    assert "compare: internal error: RuntimeError: a bug" in err and "Traceback" not in err
    assert cli.main(["evaluate", "--pairs", __file__, "--root", str(REPO), "-vv"]) == cli.EXIT_INTERNAL
    out, err = capsys.readouterr()
    assert out == "" and "evaluate: internal error: RuntimeError: a bug" in err
    assert "Traceback" in err and 'raise RuntimeError("a bug")' in err

    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_engine", interrupted)
    assert cli.main(["compare", "a.jpg", "b.jpg"]) == cli.EXIT_INTERRUPTED
    assert "compare: interrupted" in capsys.readouterr().err


# --- edge evaluate without the development data ------------------------------------------------------


def test_the_readme_evaluate_example_without_the_data_is_a_clear_usage_error(tmp_path):
    """The README's `edge evaluate` line, run where ../shared does not exist."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "edge evaluate --pairs ../shared" in ln)
    argv = line.split("edge ", 1)[1].split("#")[0].split()
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    proc = edge(*argv, cwd=cwd, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "evaluate: no pairs file ../shared/data/lfw-dev/pairs.csv" in proc.stderr
    not_csv = tmp_path / "pairs.csv"
    not_csv.write_text("a,b\n1,2\n")
    proc = edge("evaluate", "--pairs", str(not_csv), "--root", str(tmp_path), timeout=60)
    assert proc.returncode == 2 and "is not a pairs file" in proc.stderr and "Traceback" not in proc.stderr


# --- edge run: sources, and a laptop ----------------------------------------------------------------


def test_edge_run_refuses_a_source_that_is_not_a_camera_video_or_folder(tmp_path, capsys, root_logging):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    for source, why in ((notes, "is not a video file OpenCV can read"), (tmp_path / "gone.mp4", "no such file")):
        started = time.monotonic()
        assert cli.main(["run", "--config", str(DEV_CONFIG), "--source", str(source)]) == 2
        assert time.monotonic() - started < 10, "refused at start-up, not retried"
        err = capsys.readouterr().err
        assert "run: " in err and "camera.source" in err and why in err, err


def test_edge_run_warns_on_an_empty_folder_and_ends_with_no_frames(tmp_path, workspace):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here\n")
    proc = edge("run", "--config", str(DEV_CONFIG), "--vault", str(workspace / "vault"), "--source", str(empty),
                cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"WARNING edge.camera: {empty} has no images" in proc.stderr and "(1 other file(s))" in proc.stderr
    stats = json.loads(proc.stdout.splitlines()[-1])
    assert stats["frames"] == 0, stats


def test_the_development_config_keeps_everything_under_the_working_directory(tmp_path, workspace):
    """firmware_config/dev.toml: every path relative; `edge run` with it writes only under its
    working directory (and the non-ASCII name comes out as it is)."""
    from edge.config import field_paths, load_config

    config = load_config(DEV_CONFIG)
    paths = {key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in field_paths()
             if key.endswith("path")}  # fmt: skip
    assert paths["vault.path"] == "vault" and paths["audit.path"].startswith("state/")
    assert not [key for key, value in paths.items() if os.path.isabs(value)]
    shutil.copytree(workspace / "vault", tmp_path / "vault")
    before = {p for p in tmp_path.rglob("*")}
    proc = edge("run", "--config", str(DEV_CONFIG), "--source", str(workspace / "frames"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    verdicts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert verdicts[-1]["frames"] == 1
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")} - {
        p.relative_to(tmp_path).as_posix() for p in before
    }
    assert written == {"state", "state/audit.jsonl"}, written


# --- one JSON style ----------------------------------------------------------------------------------


def test_every_json_output_is_one_compact_line_with_names_as_they_are(workspace, photos):
    """identify and people print the same name, unescaped; models, people and identify all in
    the one style."""
    _a, b = photos
    vault = str(workspace / "vault")
    identified = one_json_line(edge("identify", "--vault", vault, str(b)))
    listed = one_json_line(edge("people", "--vault", vault, "--json"))
    assert identified["name"] == listed[0]["name"] == "José Álvarez"
    models = one_json_line(edge("models", "--json"))
    assert models["models"] and all(row["sha256_ok"] for row in models["models"])


def test_the_exit_statuses_are_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    for status in (0, 1, 2, 3, cli.EXIT_MODEL_FAULT, cli.EXIT_INTERNAL, cli.EXIT_INTERRUPTED):
        assert re.search(rf"^\| {status} \|", doc, re.M), f"exit status {status} is not in docs/cli.md's table"
