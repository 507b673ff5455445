"""Helpers shared by the vault tests: small photos and synthetic templates, no engine needed."""

from __future__ import annotations

import cv2
import numpy as np

MV = "0123456789abcdef"  # a made-up model version
DIM = 32


def png(seed: int, side: int = 72) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def encode(rgb: np.ndarray, ext: str = ".png", quality: int = 92) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    assert ok
    return buf.tobytes()


def other_view(rgb: np.ndarray) -> np.ndarray:
    """The same person, another picture: rescaled, shifted, a little brighter, re-encoded (as test_engine)."""
    h, w = rgb.shape[:2]
    moved = cv2.warpAffine(rgb, np.float32([[0.8, 0, 40], [0, 0.8, 30]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    moved = cv2.convertScaleAbs(moved, alpha=1.1, beta=8)
    return cv2.cvtColor(
        cv2.imdecode(np.frombuffer(encode(moved, ".jpg", 80), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
