"""The engine's intake from the caller's side: paths refused for network callers, mistyped file
names on the command line, large photos, and how many faces `verify` reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from test_engine import _png  # the same PNG encoder

from edge.engine import Engine, EngineConfig
from edge.errors import EdgeError
from edge.images import IntakeLimits
from edge.vision.detector import FaceDetector

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _without_request_id(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "request_id"}


def _edge(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # this checkout's edge, from any working directory
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


# --------------------------------------------------------------------------- paths


def test_a_bytes_only_engine_never_reads_a_file(engine, astronaut_rgb, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n")
    missing = tmp_path / "shadoq"
    remote = engine.bytes_only()
    assert remote.detector is engine.detector and remote.embedders is engine.embedders  # the same models
    assert engine.allow_paths and not remote.allow_paths and remote.bytes_only() is remote
    answers = []
    for path in (secret, missing):
        for call in (remote.verify, remote.compare_faces):
            result = call(str(path), astronaut_rgb)
            assert result["code"] in (1200, 2005) and "root" not in result["message"]
            answers.append(_without_request_id(result) | {"message": result["message"].replace(str(path), "P")})
        assert remote.verify(path, astronaut_rgb)["code"] == 1200  # a Path: refused as such
    assert answers[:2] == answers[2:]  # an existing and a missing file: the same answers
    assert remote.verify(_png(astronaut_rgb), astronaut_rgb)["code"] == 1000  # content is fine
    # The default engine (the CLI's, a local caller's) still reads files, and still shows none of them.
    local = engine.verify(str(secret), astronaut_rgb)
    assert local["code"] == 2005 and "root" not in local["message"] and "72 6f" not in local["message"]
    assert Engine.__init__.__kwdefaults__["allow_paths"] is True


def test_mqtt_commands_get_a_bytes_only_engine(engine):
    from edge.app import attach_mqtt

    mqtt = SimpleNamespace(
        commands=None,
        wants_face=False,
        state_payload=lambda: {"mqtt": {}},
        set_event_hook=lambda hook: None,
        start=lambda: None,
        ha_actions={},  # Home Assistant's unsigned commands, filled by attach_mqtt
    )
    appliance = SimpleNamespace(
        engine=engine,
        want_face=False,
        snapshot=dict,
        reload=lambda: None,
        call_in_loop=lambda fn: fn(),
        post_event=lambda *a, **k: None,
        gallery=SimpleNamespace(people=[]),
    )
    attach_mqtt(appliance, mqtt, vault_path=None)
    assert mqtt.commands.engine.allow_paths is False and mqtt.commands.engine.detector is engine.detector


@pytest.mark.parametrize("word", ["face", "IMG_0001", "selfie12", "X.jpg"])
def test_cli_a_mistyped_file_name_is_file_not_found(tmp_path, astronaut_rgb, word):
    photo = tmp_path / "a.png"
    photo.write_bytes(_png(astronaut_rgb))
    done = _edge("compare", word, str(photo), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["code"] == 1200 and result["message"].startswith(f"file not found: {word!r}"), result


# --------------------------------------------------------------------------- large photos


def test_downscaled_faces_are_reported_in_the_pixels_of_the_photo_as_sent(engine, astronaut_rgb):
    big = cv2.resize(astronaut_rgb, (5120, 5120), interpolation=cv2.INTER_CUBIC)  # 26 MP, 10× the astronaut
    data = _png(big)
    small = engine.compare_faces(astronaut_rgb, astronaut_rgb)["face_rects"]["first"][0]
    assert engine.compare_faces(data, astronaut_rgb)["code"] == 2004  # the seed's limits by default: > 5 MiB
    roomy = IntakeLimits(max_bytes=2**25)
    assert Engine(EngineConfig.profile("accurate", limits=roomy)).compare_faces(data, astronaut_rgb)["code"] == 2003
    downscaling = Engine(EngineConfig.profile("accurate", limits=IntakeLimits(downscale=True, max_bytes=2**25)))
    result = downscaling.compare_faces(data, astronaut_rgb)
    assert result["code"] == 1000, result
    (rect,) = result["face_rects"]["first"]
    assert all(abs(r - 10 * s) <= 0.05 * 10 * small[3] for r, s in zip(rect, small)), (rect, small)
    assert result["scores"][0][0] > 0.9


def test_cli_downscale_and_limit_flags(tmp_path, astronaut_rgb):
    photo, big = tmp_path / "a.png", tmp_path / "IMG_0002.jpg"
    photo.write_bytes(_png(astronaut_rgb))
    ok, buf = cv2.imencode(".jpg", cv2.resize(cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR), (6000, 4000)))
    big.write_bytes(buf.tobytes())  # 24 MP
    refused = _edge("compare", str(big), str(photo))
    assert refused.returncode == 1 and json.loads(refused.stdout)["code"] == 2003
    accepted = _edge("compare", str(big), str(photo), "--downscale")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert json.loads(accepted.stdout)["verification_score"] > 0.7
    raised = _edge("compare", str(big), str(photo), "--max-side", "6000", "--max-pixels", "24000000")
    assert raised.returncode == 0 and json.loads(raised.stdout)["code"] == 1000
    bad = _edge("compare", str(big), str(photo), "--max-side", "10")
    assert bad.returncode == 2 and "--max-side must be at least 64" in bad.stderr


# --------------------------------------------------------------------------- face_count


@pytest.fixture(scope="module")
def crowd(_skimage_photos) -> np.ndarray:
    """One near face and four far ones: short range (the cascade's first look) sees only the near one."""
    astronaut = _skimage_photos["astronaut"]
    canvas = np.full((1200, 1800, 3), 200, np.uint8)
    canvas[50:1150, 0:1100] = cv2.resize(astronaut, (1100, 1100))
    small = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    for y, x in ((50, 1150), (50, 1400), (600, 1150), (600, 1400)):
        canvas[y : y + 200, x : x + 200] = small
    return canvas


def test_verify_counts_every_face_in_the_photo(engine, crowd, astronaut_rgb):
    assert len(engine.largest_face_detector.detect(crowd)) == 1  # what face_count used to say
    every = engine.compare_faces(crowd, astronaut_rgb)
    assert every["code"] == 1000 and len(every["face_rects"]["first"]) == 5
    result = engine.verify(crowd, astronaut_rgb)
    assert result["code"] == 1000 and result["face_count"] == {"first": 5, "second": 1}, result
    assert result["verification_score"] > 0.9  # still the largest face
    turned = engine.verify(crowd, astronaut_rgb, auto_rotate=True)
    assert turned["face_count"]["first"] == 5


def test_the_nearest_and_every_face_in_one_pass_are_the_two_modes_answers(engine, crowd, astronaut_rgb):
    both = engine.detector
    for frame in (crowd, astronaut_rgb, np.full((480, 640, 3), 90, np.uint8)):
        nearest, every = both.detect_nearest_and_every(frame)
        for ours, theirs in ((nearest, both.like("cascade").detect(frame)), (every, both.detect(frame))):
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(a.box, b.box)
                np.testing.assert_allclose(a.keypoints, b.keypoints)
                assert a.score == pytest.approx(b.score)
    with pytest.raises(ValueError, match="both"):
        both.like("cascade").detect_nearest_and_every(crowd)


def test_large_frames_get_at_most_64_tiles(short, full):
    detector = FaceDetector(full, short, mode="both")
    assert [side for _, _, side in detector.tiles(640, 480)] == [352] * 4  # camera frames: as before
    assert len(detector.tiles(1280, 960)) == 20 and {s for _, _, s in detector.tiles(1280, 960)} == {352}
    for width, height in ((4096, 4096), (4080, 3060), (4096, 64)):
        tiles = detector.tiles(width, height)
        assert 0 < len(tiles) <= 64  # a 4096² photo had 141,376
        covered = np.zeros((height, width), bool)
        for x, y, side in tiles:
            covered[y : y + side, x : x + side] = True
        assert covered.all()


def test_a_phone_photo_enrolled_with_downscale_is_rebuilt_by_a_default_engine(engine, astronaut_rgb, tmp_path):
    from edge.vault import Vault, enroll, rebuild

    canvas = np.full((4500, 6000, 3), 120, np.uint8)  # 27 MP: above the default limits
    canvas[2000:2512, 2700:3212] = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)  # a sharp face, at its own size
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    photo = tmp_path / "IMG_0003.jpg"
    photo.write_bytes(buf.tobytes())
    vault = Vault.init(tmp_path / "vault")
    with pytest.raises(EdgeError) as info:
        enroll(engine, vault, "Eileen Collins", [photo])
    assert info.value.code == 2003
    downscaling = Engine(EngineConfig.profile("accurate", limits=IntakeLimits(downscale=True)))
    assert enroll(downscaling, vault, "Eileen Collins", [photo]).photos == 1
    report = rebuild(engine, vault, force=True)  # `edge vault rebuild`, no flags: the stored photo still decodes
    assert report.written == 1 and not report.problems, report.problems
