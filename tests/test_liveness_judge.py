"""The liveness judge: per-track evidence from the passive score, the motion cue and the challenge."""

from __future__ import annotations

import pytest

from edge.appliance.liveness import LivenessJudge


def feed(judge, track, scores, t0=0.0, dt=0.1, **kw):
    for i, s in enumerate(scores):
        judge.observe(track, s, t0 + i * dt, **kw)


def test_passive_needs_min_frames_of_scores_and_a_mean_at_the_threshold():
    j = LivenessJudge("passive", threshold=0.5, spoof_below=0.1, window=10, min_frames=5)
    feed(j, 1, [0.9] * 4)
    assert j.status(1) == "pending"
    feed(j, 1, [0.9])
    assert j.status(1) == "live"
    assert j.figures(1)["live"] == pytest.approx(0.9) and j.figures(1)["frames"] == 5


def test_failed_scores_are_never_evidence_of_life():
    j = LivenessJudge("passive", min_frames=3)
    feed(j, 1, [None] * 50)
    assert j.status(1) == "pending" and j.figures(1)["errors"] == 50


def test_a_low_mean_is_a_spoof_and_stays_one():
    j = LivenessJudge("passive", threshold=0.5, spoof_below=0.1, window=5, min_frames=5)
    feed(j, 1, [0.05] * 5)
    assert j.status(1) == "spoof" and "passive liveness" in j.spoof_reason(1)
    feed(j, 1, [0.99] * 20)  # later frames cannot undo it: fail closed
    assert j.status(1) == "spoof"


def test_planar_motion_alone_is_reported_but_never_a_spoof():
    """A live person walking straight in moves as a plane too: planarity is evidence only in a turn."""
    j = LivenessJudge("passive", planar_below=0.06, min_frames=3)
    feed(j, 1, [0.9] * 5, planarity=0.005)
    assert j.status(1) == "live" and j.figures(1)["planarity"] == pytest.approx(0.005)


def test_the_challenge_is_issued_once_and_followed_by_a_non_planar_turn():
    j = LivenessJudge("passive+challenge", min_frames=3, turn_deg=15, challenge_s=5, choose=lambda o: "left")
    feed(j, 1, [0.9] * 3, pose=(0.0, 0.0))
    assert j.status(1) == "challenge"
    prompt = j.issue_challenge(1, 0.3)
    assert prompt == {"track_id": 1, "prompt": "left", "within_s": 5.0} and j.issue_challenge(1, 0.4) is None
    j.observe(1, 0.9, 0.5, pose=(8.0, 0.0), planarity=0.1)
    assert j.status(1) == "challenge"
    j.observe(1, 0.9, 0.6, pose=(17.0, 1.0), planarity=0.1)
    assert j.status(1) == "live" and j.figures(1)["challenge"] == {"prompt": "left", "followed": True}


def test_a_turn_the_wrong_way_or_a_planar_one_is_not_followed_and_time_runs_out():
    j = LivenessJudge("passive+challenge", min_frames=3, turn_deg=15, challenge_s=2, choose=lambda o: "right")
    feed(j, 1, [0.9] * 3, pose=(0.0, 0.0))
    j.issue_challenge(1, 0.3)
    j.observe(1, 0.9, 0.5, pose=(20.0, 0.0), planarity=0.1)  # turned left
    j.observe(1, 0.9, 0.6, pose=(-20.0, 0.0), planarity=0.001)  # right, but as a plane (a photo)
    assert j.status(1) == "challenge"
    j.observe(1, 0.9, 2.4, pose=(0.0, 0.0))
    assert j.status(1) == "spoof" and "not followed" in j.spoof_reason(1)


def test_off_is_off_and_bad_settings_are_refused():
    assert not LivenessJudge("off").enabled
    assert LivenessJudge("passive").issue_challenge(1, 0.0) is None
    for kwargs in ({"mode": "loud"}, {"min_frames": 20, "window": 10}, {"threshold": 0.1, "spoof_below": 0.2}):
        with pytest.raises(ValueError):
            LivenessJudge(**{"mode": "passive", **kwargs})


def test_up_needs_up_deg_of_measured_pitch():
    """The pose estimate reads pitch at about 0.6 of the true angle: "up" has its own, smaller bar."""
    j = LivenessJudge("passive+challenge", min_frames=3, turn_deg=15, up_deg=10, choose=lambda o: "up")
    feed(j, 1, [0.9] * 3, pose=(0.0, -5.0))
    j.issue_challenge(1, 0.3)
    j.observe(1, 0.9, 0.5, pose=(0.0, 4.0), planarity=0.1)  # 9° up: not yet
    assert j.status(1) == "challenge"
    j.observe(1, 0.9, 0.6, pose=(1.0, 6.0), planarity=0.1)  # 11°
    assert j.status(1) == "live"


def test_a_head_already_turned_one_way_is_not_asked_to_turn_further_that_way():
    offered = []
    j = LivenessJudge("passive+challenge", min_frames=3, choose=lambda o: offered.append(o) or o[0])
    feed(j, 1, [0.9] * 3, pose=(20.0, 0.0))  # turned well to its left
    assert j.issue_challenge(1, 0.3)["prompt"] == "right"
    feed(j, 2, [0.9] * 3, pose=(-3.0, 12.0))  # facing the camera, chin up
    j.issue_challenge(2, 0.3)
    feed(j, 3, [0.9] * 3, pose=(2.0, 1.0))
    j.issue_challenge(3, 0.3)
    assert offered == [("right", "up"), ("left", "right"), ("left", "right", "up")]


def test_a_face_is_turned_away_while_more_than_half_the_asked_turn_off_its_start():
    j = LivenessJudge("passive+challenge", min_frames=3, turn_deg=15, up_deg=10, choose=lambda o: "left")
    feed(j, 1, [0.9] * 3, pose=(2.0, 0.0))
    assert not j.turned_away(1, (30.0, 0.0))  # no challenge out yet: every frame counts
    j.issue_challenge(1, 0.3)
    assert not j.turned_away(1, (9.0, 0.0)) and not j.turned_away(1, (2.0, 4.9))
    assert j.turned_away(1, (10.0, 0.0)) and j.turned_away(1, (-6.0, 0.0)) and j.turned_away(1, (2.0, 5.5))
    assert j.turned_away(1, None) and not j.turned_away(2, (40.0, 0.0))


def _eyes(j, track, values, fps=15.0):
    for i, v in enumerate(values):
        j.observe(track, 0.9, i / fps, eye_openness=v)


def test_a_blink_is_open_closed_open_within_the_time_and_is_only_reported():
    j = LivenessJudge("passive", min_frames=3)
    _eyes(j, 1, [0.21, 0.22, 0.20, 0.21, 0.08, 0.07, 0.21, 0.22])  # closed for 2 frames (0.13 s)
    _eyes(j, 2, [0.21, 0.22, 0.20, 0.21, 0.19, 0.20, 0.21, 0.22])  # never
    _eyes(j, 3, [0.21, 0.22, 0.20, 0.21] + [0.08] * 12 + [0.21, 0.22])  # closed 0.8 s: eyes shut, not a blink
    _eyes(j, 4, [0.21, 0.22, 0.08, 0.07])  # closing, not yet open again
    assert [j.figures(t)["blink"] for t in (1, 2, 3, 4)] == [True, False, False, False]
    assert j.figures(1)["eye_openness"] == pytest.approx(0.21)
    assert all(j.status(t) == "live" for t in (1, 2, 3, 4))  # it decides nothing
    assert "eye_openness" not in LivenessJudge("passive").figures(9)
