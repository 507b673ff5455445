"""Calibration: threshold t must mean FAR 10^(3 − 10t)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.matching import (
    Calibration,
    far_of_threshold,
    fit_calibration,
    load_calibrations,
    save_calibrations,
    threshold_of_far,
)


@pytest.fixture(scope="module")
def impostors() -> np.ndarray:
    # Cosine similarities of unrelated faces look like a narrow bell around 0.
    return np.random.default_rng(3).normal(0.0, 0.1, 3_000_000)


def test_table():
    assert [round(far_of_threshold(t), 12) for t in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)] == [
        1e-1,
        1e-2,
        1e-3,
        1e-4,
        1e-5,
        1e-6,
    ]
    assert threshold_of_far(1e-4) == pytest.approx(0.7)


def test_fitted_thresholds_accept_the_table_share_of_impostors(impostors):
    cal = fit_calibration(impostors, {"recipe": "test"})
    fresh = np.random.default_rng(4).normal(0.0, 0.1, 3_000_000)  # same distribution, other draws
    scores = cal(fresh)
    for t in (0.4, 0.5, 0.6, 0.7):
        measured = np.mean(scores >= t)
        assert far_of_threshold(t) / 2 <= measured <= far_of_threshold(t) * 2, (t, measured)


def test_map_is_monotone_clipped_and_vectorised(impostors):
    cal = fit_calibration(impostors, {"recipe": "test"})
    raw = np.linspace(-1.0, 1.0, 1_000_001)
    scores = cal(raw)
    assert scores.shape == raw.shape and scores.dtype == np.float32
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0.0 and scores[-1] == 1.0
    assert isinstance(cal(0.3), float)
    # The tail above 0.8 continues the measured part without a jump.
    r8 = cal.raw_threshold(0.8)
    assert cal(r8 + 1e-4) - cal(r8) < 0.01


def test_too_few_impostors_are_refused():
    with pytest.raises(ValueError, match="too few"):
        fit_calibration(np.zeros(1000), {})


def test_save_and_load_round_trip(tmp_path, impostors):
    cal = fit_calibration(impostors, {"recipe": "a"})
    path = tmp_path / "calibration.json"
    save_calibrations(path, [cal], made_by="test")
    (loaded,) = load_calibrations(path)
    assert loaded.signature == {"recipe": "a"}
    raw = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(loaded(raw), cal(raw), atol=1e-5)


def test_knots_must_increase():
    with pytest.raises(ValueError):
        Calibration(raw=np.array([0.0, 0.0]), score=np.array([0.0, 1.0]), signature={}, info={})
