"""What the HTTP API's tests share: photos as the clients send them, a free port, a raw
socket request, and `edge serve` run as a subprocess until /healthz answers."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def encode(rgb: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def skimage_photos() -> dict[str, bytes]:
    """scikit-image's real photographs, encoded: a face, the same face mirrored (PNG), another
    person (the cameraman), a cup (no face), and the face shrunk to 32×32 (PNG)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos")
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    return {
        "astronaut": encode(astronaut),
        "mirrored": encode(np.ascontiguousarray(astronaut[:, ::-1]), ".png"),
        "cameraman": encode(np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))),
        "coffee": encode(np.ascontiguousarray(data.coffee()[..., :3])),
        "tiny": encode(cv2.resize(astronaut, (32, 32)), ".png"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_request(port: int, head: str, body: bytes = b"", *, read_timeout: float = 10.0, until: bytes = b"") -> bytes:
    """Send `head` (and `body`) and read until the server closes, `until` arrives after the
    headers, or `read_timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head.encode() + body)
        chunks = []
        with contextlib.suppress(socket.timeout):
            while chunk := s.recv(65536):
                chunks.append(chunk)
                got = b"".join(chunks)
                if until and b"\r\n\r\n" in got and until in got:
                    break
        return b"".join(chunks)


@contextlib.contextmanager
def edge_serve(folder: Path, config_text: str, *, timeout: float = 120.0) -> Iterator[int]:
    """`edge serve` with `config_text` as its edge.toml (written in `folder`) on a free port,
    yielded once /healthz answers; terminated afterwards."""
    import httpx

    port = free_port()
    config = folder / "edge.toml"
    config.write_text(config_text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--config", str(config), "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"edge serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"edge serve did not answer /healthz within {timeout:g} s")
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class BlockingEngine:
    """The real engine, whose `verify` waits for `release` first: holds the queue's only place."""

    def __init__(self, engine) -> None:
        self.engine = engine.bytes_only()
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def bytes_only(self):
        return self

    def verify(self, *args, **kwargs):
        self.entered.set()
        assert self.release.wait(30)
        return self.engine.verify(*args, **kwargs)
