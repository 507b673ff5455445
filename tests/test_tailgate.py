"""The tailgating guard: who else was in view while the door was open, and holding a grant back."""

from __future__ import annotations

import pytest

from edge.appliance.tailgate import TailgateGuard


def test_a_stranger_in_view_at_the_grant_is_flagged_at_once():
    g = TailgateGuard("flag", door_open_s=5)
    g.granted(1, "ann", seq=7, t=0.0)
    (event,) = g.frame(0.0, {1: "granted", 2: "denied"})
    grant = {"track_id": 1, "name": "ann", "seq": 7}
    assert event == {"track_id": 2, "status": "denied", "withheld": False, "granted": [grant]}
    assert g.frame(0.1, {1: "granted", 2: "denied"}) == []  # once per face


def test_an_undecided_face_is_flagged_when_the_door_closes_unless_it_is_granted():
    g = TailgateGuard("flag", door_open_s=5)
    g.granted(1, "ann", seq=1, t=0.0)
    assert g.frame(0.0, {1: "granted", 2: "undecided", 3: "new", 4: "new"}) == []
    assert g.frame(1.0, {1: "granted", 2: "granted", 3: "new"}) == []  # 2 was granted: not a tailgater
    assert g.frame(1.1, {1: "granted", 3: "new"}) == []
    assert g.frame(4.9, {1: "granted"}) == []
    # the door closed: 3 was seen on 3 frames, and never identified; 4 on one frame (a false detection)
    (event,) = g.frame(5.1, {1: "granted"})
    assert event["track_id"] == 3 and event["status"] == "undecided"
    assert g.frame(6.0, {3: "unknown"}) == []  # the door is shut: nothing to follow


def test_a_face_that_follows_while_the_door_is_open_is_flagged_and_a_second_grant_keeps_it_open():
    g = TailgateGuard("flag", door_open_s=5)
    g.granted(1, "ann", seq=1, t=0.0)
    g.granted(2, "bob", seq=2, t=4.0)  # two people granted in the door's time: no tailgate
    assert g.frame(4.0, {1: "granted", 2: "granted"}) == []
    (event,) = g.frame(8.5, {3: "unknown"})  # still open: bob's grant keeps it open until 9.0
    assert event["track_id"] == 3 and [x["name"] for x in event["granted"]] == ["ann", "bob"]


def test_the_loop_stopping_closes_the_door():
    g = TailgateGuard("flag", door_open_s=5)
    g.granted(1, "ann", seq=1, t=0.0)
    for t in (0.5, 0.6, 0.7):
        g.frame(t, {1: "granted", 2: "undecided"})
    (event,) = g.close()
    assert event["track_id"] == 2 and g.close() == []


def test_withhold_holds_a_grant_while_an_unrecognised_face_is_in_view():
    g = TailgateGuard("withhold", door_open_s=5)
    view = {1: "undecided", 2: "unknown"}
    assert g.hold(1, view)
    event = g.withheld(1, "ann", view)
    assert event["withheld"] and event["others"] == [{"track_id": 2, "status": "unknown"}]
    assert g.withheld(1, "ann", view) is None  # reported once per track
    assert not g.hold(1, {1: "undecided"})  # the stranger left
    # two enrolled people together: each waits for the other at most once; the waiting one is no stranger
    assert not g.hold(3, {1: "undecided", 3: "undecided"})


@pytest.mark.parametrize("mode", ["off", "flag"])
def test_only_withhold_holds_and_off_flags_nothing(mode):
    g = TailgateGuard(mode, door_open_s=5)
    assert not g.hold(1, {1: "undecided", 2: "denied"})
    g.granted(1, "ann", seq=1, t=0.0)
    assert (g.frame(0.0, {1: "granted", 2: "denied"}) == []) == (mode == "off")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        TailgateGuard("loud")
    with pytest.raises(ValueError):
        TailgateGuard("flag", door_open_s=-1)
