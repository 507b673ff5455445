"""`edge run` with `http.enabled`: the HTTP API served beside the camera loop, from the same
process and engine (docs/http.md). A real `edge run` on a video file, real photos, a real
socket: verify while the loop runs, enrol over /v1/ and the loop grants that person, SIGTERM
ends both."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the http extra (starlette, uvicorn, python-multipart)")
httpx = pytest.importorskip("httpx", reason="the test extra")

from edge.console.auth import hash_password  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ADMIN = "admin-run-5d1e-90aa-3c7f"
CONSOLE_PASSWORD = "console-run-password"
NAME = "Eileen Collins"
FPS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(rgb: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def write_clip(path: Path, astronaut: np.ndarray) -> Path:
    """An empty hallway for 20 s (time to start, verify and enrol), then the astronaut at the
    door for 20 s: 40 s played in real time at 5 fps."""
    hallway = np.full((480, 640, 3), 96, np.uint8)
    visitor = hallway.copy()
    visitor[0:480, 64:576] = cv2.resize(astronaut, (512, 480))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    for frame in [hallway] * (20 * FPS) + [visitor] * (20 * FPS):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class Lines:
    """A process's stdout lines, read on a thread (so the test can wait for one with a deadline)."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.queue.put(line)

    def wait_for(self, predicate, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if predicate(record):
                return record
        return None


@pytest.fixture
def running(tmp_path, _skimage_photos):
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    write_clip(tmp_path / "clip.avi", _skimage_photos["astronaut"])
    port = free_port()
    (tmp_path / "edge.toml").write_text(
        f"""
[camera]
source = "clip.avi"
fps = {FPS}
realtime = true

[vault]
path = "vault"

[audit]
path = ""

[http]
enabled = true
port = {port}
admin_keys = ["{ADMIN}"]

[console]
password_hash = "{hash_password(CONSOLE_PASSWORD)}"

[log]
level = "info"
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MODELS_DIR"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", "edge.toml"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the HTTP API did not come up"
            time.sleep(0.2)
        yield proc, base, Lines(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_edge_run_serves_http_beside_the_loop_and_grants_whom_v1_enrolled(running, _skimage_photos):
    proc, base, lines = running
    astronaut = _skimage_photos["astronaut"]
    photo, mirrored = encode(astronaut), encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png")
    health = httpx.get(f"{base}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["model_version"]
    assert lines.wait_for(lambda r: r.get("event") == "started", 30), lines.seen

    pair = {"first_image_file": ("a.jpg", photo), "second_image_file": ("b.png", mirrored)}
    verified = httpx.post(f"{base}/identity/image_verification/stateless", files=pair, timeout=60)
    assert verified.status_code == 200 and verified.json()["verification_score"] >= 0.7, verified.json()

    key = {"X-API-Key": ADMIN}
    assert httpx.get(f"{base}/v1/people", headers=key, timeout=30).json()["people"] == []
    upload = [("file", ("a.jpg", photo))]
    enrolled = httpx.post(f"{base}/v1/people/{NAME}/photos", files=upload, headers=key, timeout=60)
    assert enrolled.status_code == 201, enrolled.json()
    # the running appliance's gallery has them already: identify answers from it at once
    found = httpx.post(f"{base}/v1/identify", files=[("file", ("b.png", mirrored))], headers=key, timeout=60)
    assert found.status_code == 200 and found.json()["name"] == NAME, found.json()
    assert httpx.get(f"{base}/v1/vault", headers=key, timeout=30).json()["gallery_people"] == 1

    # the web console is served by the same process: its pages need a login, the door display not
    assert httpx.get(f"{base}/console/api/people", timeout=10).status_code == 401
    assert httpx.get(f"{base}/console/door", timeout=10).status_code == 200
    with httpx.Client(base_url=base, timeout=30) as browser:
        wrong = browser.post("/console/api/login", json={"password": "not-the-password"}, headers={"Origin": base})
        assert wrong.status_code == 401
        login = browser.post("/console/api/login", json={"password": CONSOLE_PASSWORD}, headers={"Origin": base})
        assert login.status_code == 200 and "httponly" in login.headers["set-cookie"].lower()
        people = browser.get("/console/api/people").json()["people"]
        assert [p["name"] for p in people] == [NAME]

    granted = lines.wait_for(lambda r: r.get("decision") == "granted", 60)
    assert granted is not None and granted["name"] == NAME, lines.seen[-20:]
    # the engine keeps answering HTTP while the loop works on the visitor's frames
    again = httpx.post(f"{base}/identity/image_verification/stateless", files=pair, timeout=60)
    assert again.status_code == 200 and again.json()["code"] == 1000

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr.read()
    stats = lines.wait_for(lambda r: r.get("type") == "stats", 10)
    assert stats is not None and stats["reason"] == "signal SIGTERM" and stats["verdicts"]["granted"] >= 1
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)
    err = proc.stderr.read()
    assert "Traceback" not in err and "ERROR" not in err, err


def test_edge_run_refuses_to_start_when_the_http_port_is_taken(tmp_path, _skimage_photos):
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    write_clip(tmp_path / "clip.avi", _skimage_photos["astronaut"][:64, :64])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "edge.toml").write_text(
            f'[camera]\nsource = "clip.avi"\n[vault]\npath = "vault"\n[audit]\npath = ""\n'
            f"[http]\nenabled = true\nport = {port}\n"
        )
        env = {**{k: v for k, v in os.environ.items() if k != "EDGE_MODELS_DIR"}, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "edge.cli", "run", "--config", "edge.toml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 2, proc.stderr
    assert "http.port" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_http_engine_jobs_run_on_the_loop_thread_while_it_runs(tmp_path, _skimage_photos, monkeypatch):
    """The engine is not thread-safe: beside the loop, every HTTP engine call runs on the loop's
    thread (so never at the same time as a frame's). A spy on Engine.verify says where it ran."""
    from starlette.testclient import TestClient

    from edge.app import appliance_from_config, http_app_from_config
    from edge.config import config_from_dict
    from edge.engine import Engine
    from edge.vault import Vault

    Vault.init(tmp_path / "vault")
    hallway = tmp_path / "hallway"
    hallway.mkdir()
    for i in range(100):  # 20 s at 5 fps in real time: the loop is running during the request
        cv2.imwrite(str(hallway / f"{i:04d}.jpg"), np.full((240, 320, 3), 96, np.uint8))
    config = config_from_dict(
        {
            "camera": {"source": str(hallway), "fps": FPS, "realtime": True},
            "vault": {"path": str(tmp_path / "vault")},
            "audit": {"path": ""},
            "sinks": {"stdout": False},
            "http": {"enabled": True},
        }
    )
    where: list[threading.Thread] = []
    verify = Engine.verify

    def spy(self, *args, **kwargs):
        where.append(threading.current_thread())
        return verify(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "verify", spy)
    appliance = appliance_from_config(config)
    loop = threading.Thread(target=appliance.run, kwargs={"handle_signals": False}, name="camera-loop")
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while appliance.counts["frames"] < 2:
            assert loop.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        astronaut = _skimage_photos["astronaut"]
        pair = {"first_image_file": ("a.jpg", encode(astronaut)), "second_image_file": ("b.jpg", encode(astronaut))}
        with TestClient(http_app_from_config(config, appliance=appliance)) as client:
            answer = client.post("/identity/image_verification/stateless", files=pair)
        assert answer.status_code == 200 and answer.json()["code"] == 1000, answer.json()
        assert loop.is_alive()
    finally:
        appliance.stop()
        loop.join(30)
    assert where == [loop]
