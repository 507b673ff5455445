"""Shared fixtures: the repo, the development data in ../shared, and two real photos."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# tests/ helpers (tflite_builder, ...) importable by plain name.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared/data beside the repo (lfw-dev, multiface-dev, ...); skips when absent."""
    if not (SHARED_DATA / "lfw-dev").is_dir():
        pytest.skip(
            f"../shared/data/lfw-dev not present: expected at {SHARED_DATA / 'lfw-dev'} "
            "(the development data lives beside the repository, never inside it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def _skimage_photos() -> dict[str, np.ndarray]:
    data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos")
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3], dtype=np.uint8)
    camera = data.camera()
    camera = np.ascontiguousarray(np.repeat(camera[..., None], 3, axis=2), dtype=np.uint8)
    return {"astronaut": astronaut, "camera": camera}


@pytest.fixture
def astronaut_rgb(_skimage_photos) -> np.ndarray:
    """skimage's astronaut.png (Eileen Collins, one frontal face): 512×512×3 RGB uint8, a fresh copy."""
    return _skimage_photos["astronaut"].copy()


@pytest.fixture
def camera_rgb(_skimage_photos) -> np.ndarray:
    """skimage's camera.png (cameraman, grey, small face in profile) as 512×512×3 RGB uint8, a fresh copy."""
    return _skimage_photos["camera"].copy()


@pytest.fixture(scope="session")
def short():
    """The shipped short-range BlazeFace."""
    from edge.runtime import open_model
    from edge.vision.detector import MODEL_KEYS, BlazeFace

    return BlazeFace(open_model(MODEL_KEYS["short"]), "short")


@pytest.fixture(scope="session")
def full():
    """The shipped full-range BlazeFace."""
    from edge.runtime import open_model
    from edge.vision.detector import MODEL_KEYS, BlazeFace

    return BlazeFace(open_model(MODEL_KEYS["full"]), "full")


@pytest.fixture(scope="session")
def astronaut_files(tmp_path_factory, _skimage_photos):
    """The astronaut as a.png and, mirrored, b.jpg in a temporary folder: two photo files of one face."""
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    rgb = _skimage_photos["astronaut"]
    a, b = folder / "a.png", folder / "b.jpg"
    cv2.imwrite(str(a), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(b), cv2.cvtColor(np.ascontiguousarray(rgb[:, ::-1]), cv2.COLOR_RGB2BGR))
    return a, b


@pytest.fixture
def root_logging():
    """Put the root logger back as it was: `cli.main` configures it for the whole process."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture(autouse=True)
def _logging_as_found():
    """A test that runs `edge.cli.main` in-process installs the CLI's stderr handler; later tests
    must not inherit it (they would see records on stderr that a real process would not print)."""
    yield
    from edge import logs

    logs.unconfigure()
