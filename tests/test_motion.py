"""edge.vision.motion: a plane moves by a homography (planarity ≈ 0), a turning 3D head does not."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision import motion


def _rotation(yaw: float, pitch: float = 0.0) -> np.ndarray:
    y, p = np.radians([yaw, pitch])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rx @ ry


def _head(n: int = 468, seed: int = 0) -> np.ndarray:
    """Points on the front half of an ellipsoid 120 px wide: a face-like 3D point cloud."""
    rng = np.random.default_rng(seed)
    theta, phi = rng.uniform(-1.2, 1.2, n), rng.uniform(-1.1, 1.1, n)
    return np.stack([60 * np.sin(theta) * np.cos(phi), 75 * np.sin(phi), -45 * np.cos(theta) * np.cos(phi)], axis=1)


def _track(points3d: np.ndarray, yaws, noise: float = 0.3, seed: int = 1, shift=(0.0, 0.0)) -> list[np.ndarray]:
    """Orthographic views of a 3D point cloud turned by each yaw, with landmark noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i, yaw in enumerate(yaws):
        p = points3d @ _rotation(yaw, 0.3 * yaw).T
        out.append(p[:, :2] + [320 + shift[0] * i, 240 + shift[1] * i] + rng.normal(0, noise, (len(p), 2)))
    return out


def test_a_turning_head_is_not_planar():
    yaws = 20 * np.sin(np.linspace(0, np.pi, 30)) ** 2
    value = motion.planarity(_track(_head(), yaws))
    assert value is not None and value > 0.1


def test_a_turning_picture_is_planar():
    flat = _head()
    flat[:, 2] = 0.0  # the same face printed on a plane, turned the same way
    yaws = 25 * np.sin(np.linspace(0, np.pi, 30)) ** 2
    value = motion.planarity(_track(flat, yaws, noise=0.15, shift=(3.0, 1.5)))
    assert value is not None and value < 0.05


def test_a_picture_under_perspective_is_planar_exactly():
    rng = np.random.default_rng(2)
    pts = rng.uniform(-60, 60, (468, 2))
    track = []
    for i in range(12):
        h = np.array([[1 + 0.01 * i, 0.02 * i, 3.0 * i], [-0.01 * i, 1, 1.0 * i], [1e-4 * i, -5e-5 * i, 1]])
        q = np.c_[pts, np.ones(len(pts))] @ h.T
        track.append(q[:, :2] / q[:, 2:])
    value = motion.planarity(track)
    assert value is not None and value < 1e-4


def test_a_still_face_has_not_enough_motion():
    track = _track(_head(), np.zeros(30), noise=0.5)
    assert motion.planarity(track) is None
    fits = motion.pair_fits(track)
    assert fits and all(not f.enough() for f in fits)


def test_frames_without_landmarks_are_skipped_and_the_incremental_cue_agrees():
    yaws = 18 * np.sin(np.linspace(0, np.pi, 24)) ** 2
    track: list[np.ndarray | None] = list(_track(_head(), yaws, shift=(2.0, 0.5)))
    track[7] = track[15] = None
    batch = motion.planarity(track)
    live = motion.PlanarMotion()
    for landmarks in track:
        live.push(landmarks)
    assert batch is not None and live.value == pytest.approx(batch)
    assert len(live.fits) == len(motion.pair_fits(track))


def test_the_measure_is_scale_free():
    yaws = 20 * np.sin(np.linspace(0, np.pi, 30)) ** 2
    small = motion.planarity(_track(_head(), yaws, noise=0.0))
    big = motion.planarity([p * 2.5 for p in _track(_head(), yaws, noise=0.0)])
    assert small == pytest.approx(big, rel=1e-3)


def test_pair_fit_wants_matching_point_sets():
    with pytest.raises(ValueError):
        motion.pair_fit(np.zeros((10, 2)), np.zeros((9, 2)))


def test_a_track_needs_a_few_pairs_that_moved():
    still = _track(_head(), np.zeros(12), noise=0.2)
    jolt = [p + (40.0 if i >= 6 else 0.0) for i, p in enumerate(still)]  # one jump: pairs (2..5, 6..9) moved
    moved = [f for f in motion.pair_fits(jolt) if f.enough()]
    assert len(moved) == 4
    assert motion.planarity(jolt, min_pairs=5) is None
    assert motion.planarity(jolt) is not None and motion.planarity(jolt) < 0.05  # a pure shift is planar
