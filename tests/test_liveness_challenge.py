"""The challenge end to end through the real loop: a synthetic live head that follows the prompt is
granted; a photo held up and turned as a plane is not (scripts/eval/liveness_challenge.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edge.config import config_from_dict
from edge.matching import Gallery


@pytest.fixture(scope="module")
def harness(repo_root):
    sys.path.insert(0, str(repo_root / "scripts" / "eval"))
    sys.path.insert(0, str(repo_root / "scripts" / "build"))
    import liveness_challenge

    return liveness_challenge


@pytest.fixture(scope="module")
def setup(harness, _skimage_photos):
    from edge.app import engine_from_config
    from edge.config import Config

    astronaut_rgb = _skimage_photos["astronaut"].copy()
    engine = engine_from_config(Config())
    (face,) = engine.faces(astronaut_rgb, max_faces=1)
    gallery = Gallery.from_embeddings(["astronaut"], face.embedding[None])
    subject = harness.spoofs.subject_from_photo(engine, astronaut_rgb, "astronaut")
    return engine, gallery, subject


CONFIG = config_from_dict({"vault": {"path": ""}, "audit": {"path": ""}, "liveness": {"mode": "passive+challenge"}})


def test_a_live_head_that_follows_the_prompt_is_granted(harness, setup):
    engine, gallery, subject = setup
    presenter = harness.Presenter("live", subject, np.random.default_rng(1))
    result = harness.run_one(engine, gallery, CONFIG, presenter, "astronaut", 120)
    assert result["prompted"] and result["granted"] and not result["spoof"], result


@pytest.mark.parametrize("kind", ["print", "screen"])
def test_a_photo_turned_as_a_plane_is_never_granted(harness, setup, kind):
    engine, gallery, subject = setup
    for seed in range(3):
        presenter = harness.Presenter(kind, subject, np.random.default_rng([seed, 7]))
        result = harness.run_one(engine, gallery, CONFIG, presenter, "astronaut", 120)
        assert not result["granted"], (kind, seed, result)


def test_a_live_head_that_does_not_follow_is_a_spoof(harness, setup):
    """Liveness without the turn: a still head (or a replay that cannot know the prompt)."""
    engine, gallery, subject = setup
    presenter = harness.Presenter("live", subject, np.random.default_rng(2))
    presenter.hear = lambda direction, frame: None  # it never reacts
    config = config_from_dict(
        {"vault": {"path": ""}, "audit": {"path": ""}, "liveness": {"mode": "passive+challenge", "challenge_s": 2.0}}
    )
    result = harness.run_one(engine, gallery, config, presenter, "astronaut", 90)
    assert result["prompted"] and not result["granted"] and result["spoof"], result
    assert "not followed" in result["reason"]


@pytest.fixture(scope="module")
def two_people(harness, shared_dir):
    """Two lfw-dev people with two photos each: (name, enrolment embedding, subject) ×2."""
    from edge.app import engine_from_config
    from edge.config import Config

    engine = engine_from_config(Config())
    return engine, list(harness.subjects(engine, shared_dir / "lfw-dev", 2, seed=3))


@pytest.mark.parametrize("back", [False, True], ids=["attacker-stays", "victim-returns"])
def test_a_face_swapped_in_for_the_turn_is_not_granted(harness, two_people, back):
    """The enrolled face (a replay, say: it follows no prompt) gets the prompt; another live person
    does the turn (and, in the second case, the enrolled face is shown again afterwards). The
    frames of the turn do not vote on who it is, but the check that the face is still the same
    one runs on them: the track is split, the enrolled face must follow a prompt of its own."""
    engine, people = two_people
    (victim, victim_embedding, victim_subject), (_, _, attacker_subject) = people
    gallery = Gallery.from_embeddings([victim], victim_embedding[None])
    presenter = harness.Presenter("live", victim_subject, np.random.default_rng(5))
    own_rig = presenter.rig
    stand_in = harness.spoofs.head_rig(attacker_subject, np.random.default_rng(6), own_rig.background, 130)
    stand_in.ox, stand_in.oy = own_rig.ox, own_rig.oy  # in the same place
    swaps = []

    def hear(direction, frame):
        if not swaps:  # the first prompt: the stand-in does the turn; the enrolled face follows no prompt
            swaps.append(frame)
            presenter.rig = stand_in
            presenter.prompt = (direction, frame)

    presenter.hear = hear
    frame_of = presenter.frame

    def frame(i):
        if back and swaps and i - swaps[0] > (harness.TURN_S + harness.HOLD_S) * harness.FPS:
            presenter.rig = own_rig
        return frame_of(i)

    presenter.frame = frame
    result = harness.run_one(engine, gallery, CONFIG, presenter, victim, 120)
    assert swaps and not result["granted"], result


def test_a_sink_attached_while_the_loop_runs_gets_the_prompt_and_a_detached_one_nothing(harness, setup):
    """The hook a console or a door display uses: `Appliance.add_sink` / `remove_sink`."""
    import time

    from edge.appliance.loop import Appliance
    from edge.camera.base import Frame

    engine, gallery, subject = setup
    presenter = harness.Presenter("live", subject, np.random.default_rng(3))
    presenter.hear = lambda direction, frame: None  # a still face: the prompt stays out
    app = Appliance(engine, gallery, None, config=CONFIG, sinks=[])
    display, viewer = harness.Recorder(), harness.Recorder()
    for i in range(40):
        if i == 2:
            app.add_sink(display)
            app.add_sink(viewer)
        if i == 3:
            app.remove_sink(viewer)
        app.process(Frame(presenter.frame(i), i, i / harness.FPS, time.monotonic()))
    (prompt,) = [e for e in display.events if e["event"] == "liveness_challenge"]
    assert prompt["prompt"] in ("left", "right", "up") and prompt["track_id"] >= 1
    assert viewer.events == [] and viewer.verdicts == [] and app.sinks == [display]
