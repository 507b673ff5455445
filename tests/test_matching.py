"""The matcher: calibration (threshold t must mean FAR 10^(3 − 10t)) and the 1:N gallery search."""

from __future__ import annotations

import numpy as np
import pytest

from edge.matching import (
    DEFAULT_THRESHOLD,
    Calibration,
    Gallery,
    Match,
    far_of_score,
    far_of_threshold,
    fit_calibration,
    identification_score,
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


# --- the gallery ---------------------------------------------------------------------------------


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_search_is_the_python_loop_answer_with_a_runner_up_of_another_person():
    rng = np.random.default_rng(3)
    matrix = unit_rows(300, 64, seed=3)
    owners = rng.integers(0, 40, 300)
    names = [f"p{o:02d}" for o in owners]  # one name per row, people interleaved
    gallery = Gallery.from_embeddings(names, matrix)
    assert gallery.people == sorted(set(names)) and len(gallery) == 300
    probes = unit_rows(20, 64, seed=4)
    probes[0] = matrix[17]  # an exact hit
    batch = gallery.search(probes)
    for i, probe in enumerate(probes):
        per_person: dict[str, float] = {}
        for name, r in zip(names, matrix @ probe):
            per_person[name] = max(per_person.get(name, -9.0), float(r))
        ranked = sorted(per_person.items(), key=lambda kv: -kv[1])
        for hits, row in ((batch, i), (gallery.search(probe), 0)):  # a batch and a single probe agree
            assert gallery.people[hits.person[row]] == ranked[0][0]
            assert hits.raw[row] == pytest.approx(ranked[0][1], abs=1e-5)
            assert gallery.people[hits.runner_up[row]] == ranked[1][0]
            assert hits.runner_up_raw[row] == pytest.approx(ranked[1][1], abs=1e-5)
    assert gallery.people[batch.person[0]] == names[17] and batch.raw[0] == pytest.approx(1.0, abs=1e-5)


LINEAR = Calibration(raw=np.array([-1.0, 1.0]), score=np.array([0.0, 1.0]), signature={}, info={})  # s = (r + 1) / 2


def test_match_calibrates_the_best_and_the_runner_up():
    matrix = unit_rows(6, 16, seed=1)
    gallery = Gallery.from_embeddings(["a", "a", "b", "b", "c", "c"], matrix)
    probe = matrix[3] + 0.3 * matrix[0]
    probe /= np.linalg.norm(probe)
    raw = matrix @ probe
    best = {n: max(raw[i] for i in idx) for n, idx in (("a", (0, 1)), ("b", (2, 3)), ("c", (4, 5)))}
    ranked = sorted(best, key=best.get, reverse=True)
    (m,) = gallery.match(probe, LINEAR)
    assert isinstance(m, Match) and m.candidate == ranked[0] and m.runner_up == ranked[1]
    assert m.verification_score == pytest.approx((best[ranked[0]] + 1) / 2, abs=1e-6)  # the 1:1 score
    gallery_score = identification_score(LINEAR, np.array([best[ranked[0]]]), 6)[0]
    runner_score = identification_score(LINEAR, np.array([best[ranked[1]]]), 6)[0]
    assert m.score == pytest.approx(gallery_score, abs=1e-6) and m.margin == pytest.approx(gallery_score - runner_score)
    assert m.name(m.score) == m.candidate and m.name(m.score + 1e-3) is None


def test_gallery_edge_cases():
    empty = Gallery.from_embeddings([], np.zeros((0, 8), np.float32))
    assert empty.search(unit_rows(1, 8)[0]).person.tolist() == [-1] and empty.people == []
    assert empty.match(unit_rows(2, 8), LINEAR) == [Match(None, 0.0, 0.0, 0.0, None)] * 2
    one = Gallery.from_embeddings(["solo"] * 3, unit_rows(3, 8))
    hits = one.search(unit_rows(2, 8, seed=5))
    assert hits.person.tolist() == [0, 0] and hits.runner_up.tolist() == [-1, -1]
    (m,) = one.match(unit_rows(1, 8, seed=5), LINEAR)
    assert m.margin == pytest.approx(m.score) and m.runner_up is None  # no runner-up: the margin is the score
    with pytest.raises(ValueError):
        one.search(np.zeros(9, np.float32))
    with pytest.raises(ValueError):
        Gallery.from_embeddings(["a", "b"], unit_rows(3, 8))


# --- the gallery-aware score ---------------------------------------------------------------------


def test_identification_score_is_the_1to1_score_for_one_comparison(impostors):
    cal = fit_calibration(impostors, {"recipe": "test"})
    raw = np.linspace(cal.raw_threshold(0.35), cal.raw_threshold(0.99), 50)
    np.testing.assert_allclose(identification_score(cal, raw, 1), cal(raw), atol=2e-3)


@pytest.mark.parametrize("comparisons", [10, 100, 1000])
def test_identification_score_means_fpir_per_search(impostors, comparisons):
    """Threshold t names a stranger in 10^(3 − 10t) of searches of a gallery of independent impostors."""
    cal = fit_calibration(impostors, {"recipe": "test"})
    rng = np.random.default_rng(7)
    searches = 20_000
    best = np.empty(searches)
    for lo in range(0, searches, 500):  # the best of `comparisons` fresh impostor similarities per search
        best[lo : lo + 500] = rng.normal(0.0, 0.1, (500, comparisons)).max(axis=1)
    scores = identification_score(cal, best, comparisons)
    for t in (0.4, 0.5, 0.6):
        expected = far_of_threshold(t)
        if expected * searches < 30:
            continue  # too few events to measure here
        measured = float(np.mean(scores >= t))
        assert expected / 1.5 <= measured <= expected * 1.5, (t, measured, expected)


def test_identification_score_goes_past_the_1to1_ceiling(impostors):
    """A far-tail match still outranks a weaker one in a big gallery: the tail is extrapolated past FAR 1e-7."""
    cal = fit_calibration(impostors, {"recipe": "test"})
    top = float(cal.raw[np.argmax(cal.score >= 1.0)])  # the first raw similarity scored 1
    strong, stronger = identification_score(cal, np.array([top + 0.002, top + 0.004]), 1000)
    assert cal(top + 0.002) == cal(top + 0.004) == 1.0  # the 1:1 score is flat there
    assert 0.7 < strong < stronger <= 1.0
    assert identification_score(cal, np.array([top]), 1000)[0] == pytest.approx(0.7, abs=1e-3)  # FAR 1e-7 × 1000


def test_one_default_threshold_and_far_map():
    assert DEFAULT_THRESHOLD == 0.7 and far_of_score(DEFAULT_THRESHOLD) == pytest.approx(1e-4)
    assert far_of_score(0.0) == 1.0  # never more than 1


def test_enrolling_more_people_lowers_the_score_of_the_same_face(impostors):
    """The score is calibrated against the gallery as it is: more templates, more tries for a stranger."""
    cal = fit_calibration(impostors, {"recipe": "test"})
    rows = unit_rows(400, 256, seed=11)  # random people: cosines near 0
    other = unit_rows(1, 256, seed=12)[0]
    other -= (other @ rows[0]) * rows[0]
    probe = 0.45 * rows[0] + np.sqrt(1 - 0.45**2) * other / np.linalg.norm(other)  # raw 0.45 with the first person
    scores = []
    for n in (1, 10, 100, 400):
        (m,) = Gallery.from_embeddings([f"p{i}" for i in range(n)], rows[:n]).match(probe, cal)
        assert m.candidate == "p0"
        scores.append(m.score)
        assert m.verification_score == pytest.approx(float(cal(float(rows[0] @ probe))), abs=1e-6)
    assert scores[0] >= scores[1] >= scores[2] >= scores[3] and scores[0] > scores[3]


def test_a_gallery_refuses_rows_that_are_not_unit_embeddings():
    rows = unit_rows(3, 8)
    with pytest.raises(ValueError, match="unit length"):
        Gallery.from_embeddings(["a", "b", "c"], rows * 2.0)
    rows[1, 0] = np.nan
    with pytest.raises(ValueError, match="unit length"):
        Gallery.from_embeddings(["a", "b", "c"], rows)


def _with_terms(**terms) -> Calibration:
    info = {
        "degradation": {
            **{"blurred": 0.05, "blur": 0.2, "direction": 0.5, "dark": 0.1, "backlit": 0.3},
            **{"blur_floor": 0.15, "backlight_floor": 0.5, **terms},
        }
    }
    return Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0]), {}, info)


def test_the_degradation_penalty_needs_both_faces_degraded_and_grows_when_they_are_degraded_alike():
    # [blur_x, blur_y, darkness, backlight]; blur as double-angle vectors: x and y motion point opposite ways
    sharp = np.array([0.05, -0.03, 0.0, 0.2])
    blur_x, blur_x2, blur_y = np.array([0.40, 0, 0, 0]), np.array([0.30, 0, 0, 0]), np.array([-0.40, 0, 0, 0])
    dark, darker = np.array([0, 0, 0.8, 0]), np.array([0, 0, 1.5, 0])
    backlit, backlit2 = np.array([0, 0, 0.5, 1.5]), np.array([0, 0, 0.2, 2.0])
    cal = _with_terms()
    pen = cal.penalty(np.stack([sharp, blur_x, blur_y, dark, backlit]), np.stack([sharp, blur_x2, darker, backlit2]))
    assert pen.shape == (5, 4)
    assert np.all(pen[0] == 0) and np.all(pen[:, 0] == 0)  # one clean side: nothing
    same_way, crossed = pen[1, 1], pen[2, 1]
    assert crossed == pytest.approx(0.05 + 0.2 * (0.30 - 0.15))  # blurred, but not alike
    assert same_way > crossed and same_way == pytest.approx(0.05 + (0.2 + 0.5) * 0.15)
    assert pen[3, 2] == pytest.approx(0.1 * 0.8)  # the lesser darkness
    assert pen[4, 3] == pytest.approx(0.1 * 0.2 + 0.3)  # darkness, and both backlit
    assert pen[1, 2] == 0 and pen[3, 1] == 0  # blurred against dark: neither is shared
    plain = Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0]), {}, {})
    assert np.all(plain.penalty(np.stack([blur_x, dark]), np.stack([blur_x2, darker])) == 0)
    # a face that cannot take part in any term: its pairs need no measurement of the other face
    faces = np.stack([sharp, blur_x, dark, backlit])
    assert cal.may_penalise(faces).tolist() == [False, True, True, True]
    assert np.all(cal.penalty(faces[:1], faces) == 0) and not plain.may_penalise(faces).any()


def test_the_shipped_default_calibration_has_fitted_degradation_terms():
    from edge.engine import EngineConfig
    from edge.runtime import models_dir

    shipped = load_calibrations(models_dir() / "calibration.json")
    for profile in ("accurate", "fast"):
        signature = EngineConfig.profile(profile).signature()
        terms = next(c for c in shipped if c.signature == signature).info["degradation"]
        assert terms["fitted_by"] == "scripts/build/fit_degradation.py"
        assert terms["blurred"] + terms["blur"] + terms["direction"] > 0 and terms["dark"] + terms["backlit"] > 0
        for recipe, row in terms["measured"].items():  # FAR at 0.7 held on every fitting recipe
            assert row[3] <= 1.25e-4, (profile, recipe)  # the table, plus the sampling error of 1,500 photos
