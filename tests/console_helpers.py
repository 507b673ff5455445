"""A running appliance with its console, for the console's tests: a real engine, a real (empty)
vault, a video file of real photos replayed in a loop at its frame rate, and the console on
uvicorn on a free port.

The clip is built from lfw-dev (../shared) when present (Tony Blair, photos that are not the
ones captured), else from scikit-image's astronaut: a grey hall, then the visitor for three
seconds, again and again, so there is always a next visit.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.app import appliance_from_config
from edge.camera.opencv import OpenCVSource
from edge.config import config_from_dict
from edge.console import ConsoleContext, console_app
from edge.console.actions import VaultActions
from edge.console.auth import hash_password

FPS = 15.0
PASSWORD = "door-console-test-password"
SHARED_LFW = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "lfw-dev" / "images"


class LoopingVideo(OpenCVSource):
    """A video file that starts again at its end (a camera that never stops)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), finite=True)

    def read(self):
        image = super().read()
        if image is None and self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.position = 0
            image = super().read()
        return image


def visitor_photos() -> tuple[list[np.ndarray], float, str]:
    """(photos of one person, scale into a 640×480 frame, where they come from)."""
    if (SHARED_LFW / "Tony_Blair").is_dir():
        photos = [
            cv2.cvtColor(cv2.imread(str(SHARED_LFW / "Tony_Blair" / f"Tony_Blair_{i:04d}.jpg")), cv2.COLOR_BGR2RGB)
            for i in (3, 4, 5)
        ]
        return photos, 1.6, "lfw-dev Tony_Blair 3-5"
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    return [astronaut, cv2.convertScaleAbs(astronaut, alpha=1.1, beta=10)], 0.9, "scikit-image astronaut"


def write_visits(path: Path, photos: list[np.ndarray], scale: float, *, cycles: int = 3, seed: int = 0) -> Path:
    """An MJPG clip: 1.3 s of an empty hall, then the visitor's photos (1 s each, a little jitter), × cycles."""
    rng = np.random.default_rng(seed)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    for _ in range(cycles):
        for _ in range(20):
            vw.write(np.full((480, 640, 3), 96, np.uint8))
        for photo in photos:
            for _ in range(int(FPS)):
                vw.write(cv2.cvtColor(_scene(photo, rng, scale), cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def _scene(photo: np.ndarray, rng, scale: float) -> np.ndarray:
    canvas = np.full((480, 640, 3), 96, np.uint8)
    s = scale * rng.uniform(0.97, 1.03)
    img = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)))
    h, w = img.shape[:2]
    x = int(320 - w // 2 + rng.integers(-8, 9))
    y = int(240 - h // 2 + rng.integers(-5, 6))
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, 640), min(y + h, 480)
    canvas[y0:y1, x0:x1] = img[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    url: str
    appliance: Any
    console: Any
    config: Any
    vault: Path
    source: str
    server: Any
    threads: list
    extra: dict

    def stop(self) -> None:
        self.console.close()
        self.server.should_exit = True
        self.appliance.stop("test over")
        for t in self.threads:
            t.join(15)


def start_console(tmp: Path, engine, *, console: dict | None = None, cycles: int = 3) -> Running:
    """Vault + clip + appliance thread + console on uvicorn; `Running.stop()` ends both."""
    import uvicorn

    from edge.vault import Vault

    vault = tmp / "vault"
    Vault.init(vault)
    photos, scale, where = visitor_photos()
    clip = write_visits(tmp / "visits.avi", photos, scale, cycles=cycles)
    config = config_from_dict(
        {
            "vault": {"path": str(vault)},
            "audit": {"path": str(tmp / "audit.jsonl"), "fsync": False},
            "sinks": {"stdout": False},
            "camera": {"source": str(clip), "realtime": True, "fps": FPS},
            "decision": {"cooldown_s": 1.0},
            "console": {"password_hash": hash_password(PASSWORD), **(console or {})},
        }
    )
    appliance = appliance_from_config(config, engine=engine, source=LoopingVideo(clip))
    actions = VaultActions(appliance, str(vault))
    ctx = ConsoleContext(
        appliance,
        config,
        enrol=actions.enrol,
        revoke=actions.revoke,
        people=actions.people,
        check_photo=actions.check_photo,
    )
    app = console_app(ctx)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    threads = [
        threading.Thread(target=appliance.run, kwargs={"handle_signals": False}, name="loop", daemon=True),
        threading.Thread(target=server.run, name="uvicorn", daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return Running(
        f"http://127.0.0.1:{port}",
        appliance,
        app.state.console,
        replace(config),
        vault,
        where,
        server,
        threads,
        {"upload": upload_photos(tmp)},
    )


def upload_photos(tmp: Path) -> list[Path]:
    """Two photo files of someone who is not the visitor: scikit-image's astronaut, as taken and mirrored."""
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    paths = [tmp / "eileen-1.jpg", tmp / "eileen-2.png"]
    cv2.imwrite(str(paths[0]), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths[1]), cv2.cvtColor(astronaut[:, ::-1], cv2.COLOR_RGB2BGR))
    return paths
