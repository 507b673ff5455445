"""The decision policy: K of N (evidence "count"), the mean-evidence rule, denials, unknown events, cooldowns."""

from __future__ import annotations

import pytest

from edge.appliance.policy import DecisionPolicy, Evidence, Observation


def feed(policy: DecisionPolicy, track: int, observations, t0: float = 0.0, dt: float = 1 / 30):
    """Observe a sequence of (name, score) on one track; → [(index, Decision)]."""
    out = []
    for i, (name, score) in enumerate(observations):
        for d in policy.observe(track, Observation(name, score, 0.2), t0 + i * dt):
            out.append((i, d))
    return out


def test_granted_when_k_of_the_last_n_frames_match_one_person():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5)
    got = feed(p, 1, [("ann", 0.80), ("ann", 0.60), ("ann", 0.90), ("bob", 0.95), ("ann", 0.75)])
    assert [(i, d.kind, d.name) for i, d in got] == [(4, "granted", "ann")]
    d = got[0][1]
    assert d.score == pytest.approx(0.75)  # the k-th best matching score: each of 3 frames reached it
    assert d.frames_used == 5 and d.track_id == 1


def test_matches_must_be_within_the_window_and_at_the_threshold():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5)
    # three matches, but never three within five consecutive observations
    seq = [("ann", 0.8), ("ann", 0.8), (None, 0.1), (None, 0.1), (None, 0.1), ("ann", 0.8), (None, 0.1)]
    assert feed(p, 1, seq) == []
    # exactly at the threshold counts; just below does not
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=2)
    assert feed(p, 1, [("ann", 0.7), ("ann", 0.7)])[0][1].kind == "granted"
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=2)
    assert feed(p, 1, [("ann", 0.7), ("ann", 0.6999)]) == []


def test_different_people_do_not_add_up():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5)
    assert feed(p, 1, [("ann", 0.9), ("bob", 0.9), ("ann", 0.9), ("bob", 0.9), ("cid", 0.9)]) == []


def test_one_grant_per_track_however_long_it_stays():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5, cooldown_s=0)
    got = feed(p, 1, [("ann", 0.9)] * 200)
    assert [d.kind for _, d in got] == ["granted"]
    assert p.decided(1)


def test_cooldown_per_person_across_tracks():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, cooldown_s=10.0)
    assert [d.kind for _, d in feed(p, 1, [("ann", 0.9)] * 3, t0=0.0)] == ["granted"]
    p.end(1)
    # ann again on a new track 5 s later: withheld (counted), and the track counts as granted
    assert feed(p, 2, [("ann", 0.9)] * 3, t0=5.0) == []
    assert p.suppressed == 1 and p.decided(2)
    assert feed(p, 2, [(None, 0.1)] * 20, t0=6.0) == []  # a granted track is never denied
    # bob is not affected by ann's cooldown
    assert [d.name for _, d in feed(p, 3, [("bob", 0.9)] * 2, t0=6.0)] == ["bob"]
    # after the cooldown (from the last *emitted* grant, at t≈0.03) ann is granted again
    assert [d.kind for _, d in feed(p, 4, [("ann", 0.9)] * 2, t0=10.5)] == ["granted"]


def test_unknown_once_then_denied_once_for_a_stranger():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5, deny_after=10, unknown_after=5)
    scores = [0.30, 0.42, 0.35, 0.20, 0.38] + [0.3] * 30
    got = feed(p, 7, [("ann", s) for s in scores])  # the nearest person is named, but never close
    assert [(i, d.kind) for i, d in got] == [(4, "unknown"), (9, "denied")]
    unknown, denied = got[0][1], got[1][1]
    assert unknown.name is None and denied.name is None
    assert unknown.score == pytest.approx(0.42)  # the closest the face came
    assert (unknown.frames_used, denied.frames_used) == (5, 10)
    assert p.decided(7)


def test_a_match_resets_the_non_match_run():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5, deny_after=4, unknown_after=3)
    seq = [(None, 0.2), (None, 0.2), ("ann", 0.8), (None, 0.2), (None, 0.2), ("ann", 0.8), (None, 0.2)]
    assert feed(p, 1, seq) == []


def test_unknown_after_zero_turns_unknown_events_off():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5, deny_after=3, unknown_after=0)
    assert [d.kind for _, d in feed(p, 1, [(None, 0.1)] * 10)] == ["denied"]


def test_a_denied_track_can_still_be_granted_on_better_frames():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, deny_after=3, unknown_after=0)
    got = feed(p, 1, [(None, 0.1)] * 3 + [("ann", 0.9)] * 2)
    assert [d.kind for _, d in got] == ["denied", "granted"]


def test_ending_a_track_forgets_it():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, deny_after=2, unknown_after=0, cooldown_s=0)
    feed(p, 1, [(None, 0.1)] * 2)
    assert p.decided(1)
    p.end(1)
    assert not p.decided(1)
    assert [d.kind for _, d in feed(p, 1, [(None, 0.1)] * 2)] == ["denied"]


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 6, "n": 5}, {"deny_after": 0}, {"unknown_after": -1}, {"cooldown_s": -1}, {"evidence": "vote"}],
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        DecisionPolicy(**kwargs)


# --- evidence "mean" (the default): the track's mean embedding decides -------------------------


def feed_evidence(policy: DecisionPolicy, track: int, observations, dt: float = 1 / 30):
    """Observe (frame name, frame score, evidence name, evidence score, evidence frames); → [(index, Decision)]."""
    out = []
    for i, (name, score, ev_name, ev_score, frames) in enumerate(observations):
        ev = None if frames == 0 else Evidence(ev_name, ev_score, 0.3, frames)
        for d in policy.observe(track, Observation(name, score, 0.2, ev), i * dt):
            out.append((i, d))
    return out


def test_mean_evidence_grants_what_noisy_frames_would_not():
    """Frames that hover below the threshold add up when their mean is a clear match."""
    p = DecisionPolicy(threshold=0.7, k=3, n=5)
    assert p.evidence == "mean"
    seq = [("ann", 0.66, "ann", 0.66, 1), ("ann", 0.72, "ann", 0.69, 2), ("ann", 0.64, "ann", 0.74, 3)]
    got = feed_evidence(p, 1, seq)
    assert [(i, d.kind, d.name) for i, d in got] == [(2, "granted", "ann")]
    assert got[0][1].score == pytest.approx(0.74) and got[0][1].frames_used == 3
    # counting frames, the same track is not granted: only one frame reached 0.7
    p = DecisionPolicy(evidence="count", threshold=0.7, k=3, n=5)
    assert feed_evidence(p, 1, seq) == []


def test_mean_evidence_needs_k_frames_its_own_score_and_the_same_person_in_the_frame():
    p = DecisionPolicy(threshold=0.7, k=3, n=5)
    # high frame scores but the evidence holds only two frames (it was just reset): no grant yet
    assert feed_evidence(p, 1, [("ann", 0.9, "ann", 0.9, 1), ("ann", 0.9, "ann", 0.9, 2)]) == []
    # the evidence names ann but this frame's best candidate is bob: no grant for either
    p = DecisionPolicy(threshold=0.7, k=3, n=5)
    assert feed_evidence(p, 2, [("bob", 0.75, "ann", 0.8, 3)] * 4) == []
    # frames match but the mean does not reach the threshold: no grant (the mean decides)
    p = DecisionPolicy(threshold=0.7, k=3, n=5)
    assert feed_evidence(p, 3, [("ann", 0.71, "ann", 0.69, 3)] * 6) == []
    # no evidence at all (every frame a confident non-match): denied as before
    p = DecisionPolicy(threshold=0.7, k=3, n=5, deny_after=4, unknown_after=0)
    assert [d.kind for _, d in feed_evidence(p, 4, [("ann", 0.2, None, 0.0, 0)] * 4)] == ["denied"]


def test_track_evidence_is_the_unit_mean_of_its_last_frames_of_one_face():
    import numpy as np

    from edge.appliance.evidence import TrackEvidence

    rng = np.random.default_rng(0)
    unit = [v / np.linalg.norm(v) for v in rng.normal(size=(7, 16)).astype(np.float32)]
    held = TrackEvidence(size=3)
    assert held.mean() is None and len(held) == 0
    for v in unit[:5]:
        held.add(v)
    assert len(held) == 3  # the last n frames
    expected = np.sum(unit[2:5], axis=0)
    np.testing.assert_allclose(held.mean(), expected / np.linalg.norm(expected), atol=1e-6)
    held.add(unit[5], same_face=False)  # another face: the evidence starts afresh with it
    assert len(held) == 1 and held.resets == 1
    np.testing.assert_allclose(held.mean(), unit[5], atol=1e-6)
    held.clear()
    assert held.mean() is None and held.resets == 2
    with pytest.raises(ValueError):
        TrackEvidence(size=0)


# --- track integrity: a granted track keeps its grant only while it keeps matching ----------------


def test_a_granted_track_is_lost_after_lose_after_frames_that_do_not_name_its_person():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, lose_after=3)
    assert [d.kind for _, d in feed(p, 1, [("ann", 0.9)] * 2)] == ["granted"]
    assert p.status(1) == "granted" and not p.doubted(1) and not p.lost(1)
    feed(p, 1, [(None, 0.2), (None, 0.2)])
    assert p.doubted(1) and not p.lost(1)
    feed(p, 1, [("ann", 0.75)])  # it matches again: the doubt is gone
    assert not p.doubted(1)
    # bob at the threshold, or ann below it, does not keep ann's grant
    got = feed(p, 1, [("bob", 0.95), ("ann", 0.69), (None, 0.1)])
    assert got == [] and p.lost(1)  # and bob was never granted on ann's track


def test_a_grant_on_hold_is_withheld_and_comes_once_the_hold_is_gone():
    p = DecisionPolicy(threshold=0.7, k=2, n=3)
    ev = Evidence("ann", 0.9, 0.3, 3)
    assert [d.kind for d in p.observe(1, Observation("ann", 0.9, 0.3, ev), 0.0, hold=True)] == ["withheld"]
    assert p.status(1) == "undecided" and not p.decided(1)
    assert [d.kind for d in p.observe(1, Observation("ann", 0.9, 0.3, ev), 0.1, hold=True)] == ["withheld"]
    assert [d.kind for d in p.observe(1, Observation("ann", 0.9, 0.3, ev), 0.2)] == ["granted"]
    assert p.status(1) == "granted"


def test_status_names_what_the_policy_said_about_a_track():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, unknown_after=2, deny_after=4)
    assert p.status(9) == "new"
    feed(p, 9, [(None, 0.1)])
    assert p.status(9) == "undecided"
    feed(p, 9, [(None, 0.1)])
    assert p.status(9) == "unknown"
    feed(p, 9, [(None, 0.1)] * 2)
    assert p.status(9) == "denied"


def test_frames_that_cannot_be_judged_do_not_keep_a_grant():
    p = DecisionPolicy(evidence="count", threshold=0.7, k=2, n=3, lose_after=2)
    p.unjudged(1)  # nothing to lose yet
    assert p.status(1) == "new"
    feed(p, 1, [("ann", 0.9)] * 2)
    p.unjudged(1)
    assert p.doubted(1) and not p.lost(1)
    p.unjudged(1)
    assert p.lost(1)
