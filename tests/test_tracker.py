"""Face tracking across frames: IoU, centre distance, ages, ids."""

from __future__ import annotations

import numpy as np
import pytest

from edge.appliance.tracker import Tracker, iou_matrix
from edge.vision.detector import Detection


def test_a_face_moving_a_little_keeps_its_track():
    t = Tracker(iou=0.3, max_age=5)
    ids = []
    for i in range(30):
        (tr,), ended = t.update([(100 + 3 * i, 80 + (i % 3), 120, 120)], t=i / 30, frame=i)
        ids.append(tr.id)
        assert ended == []
    assert set(ids) == {1}
    assert t.tracks[0].hits == 30 and t.tracks[0].first_frame == 0


def test_two_faces_keep_two_tracks_whatever_their_order():
    t = Tracker()
    a, b = (50, 50, 100, 100), (400, 60, 90, 90)
    first, _ = t.update([a, b])
    second, _ = t.update([b, a])
    assert [tr.id for tr in first] == [1, 2]
    assert [tr.id for tr in second] == [2, 1]


def test_a_fast_move_is_followed_by_centre_distance():
    t = Tracker(iou=0.3, max_shift=0.5)
    (tr1,), _ = t.update([(100, 100, 100, 100)])
    # moved (40, 30): IoU = 4200 / 15800 ≈ 0.27 < 0.3, but the centre moved 50 px = 0.5 widths
    (tr2,), _ = t.update([(140, 130, 100, 100)])
    assert tr2.id == tr1.id == 1
    # moved (45, 30): IoU ≈ 0.24 and 54 px = 0.54 widths: too far, a new face
    (tr3,), _ = t.update([(185, 160, 100, 100)])
    assert tr3.id == 2
    # with centre matching off, only overlap counts
    t = Tracker(iou=0.3, max_shift=0.0)
    t.update([(100, 100, 100, 100)])
    (tr,), _ = t.update([(140, 130, 100, 100)])
    assert tr.id == 2


def test_a_box_twice_the_size_is_not_the_same_face_by_distance():
    t = Tracker(iou=0.5, max_shift=1.0)
    t.update([(100, 100, 50, 50)])
    (tr,), _ = t.update([(90, 90, 110, 110)])  # IoU ≈ 0.21 < 0.5; centre close but 2.2× wider
    assert tr.id == 2


def test_tracks_end_after_max_age_unseen_frames_and_ids_are_not_reused():
    t = Tracker(max_age=3)
    t.update([(10, 10, 80, 80)])
    for _ in range(3):
        _, ended = t.update([])
        assert ended == []
    _, ended = t.update([])
    assert [tr.id for tr in ended] == [1] and t.tracks == []
    (tr,), _ = t.update([(10, 10, 80, 80)])
    assert tr.id == 2


def test_a_track_seen_again_within_max_age_continues():
    t = Tracker(max_age=3)
    t.update([(10, 10, 80, 80)])
    t.update([])
    t.update([])
    (tr,), _ = t.update([(12, 10, 80, 80)])
    assert tr.id == 1 and tr.misses == 0 and tr.hits == 2


def test_iou_matrix_agrees_with_detection_iou():
    rng = np.random.default_rng(1)
    a = np.c_[rng.uniform(0, 200, (6, 2)), rng.uniform(10, 120, (6, 2))]
    b = np.c_[rng.uniform(0, 200, (4, 2)), rng.uniform(10, 120, (4, 2))]
    m = iou_matrix(a, b)
    kps = np.zeros((6, 2), np.float32)
    for i in range(6):
        for j in range(4):
            da, db = Detection(tuple(a[i]), 1.0, kps), Detection(tuple(b[j]), 1.0, kps)
            assert m[i, j] == pytest.approx(da.iou(db), abs=1e-9)


def test_clear_ends_everything():
    t = Tracker()
    t.update([(0, 0, 50, 50), (200, 0, 50, 50)])
    assert len(t.clear()) == 2 and t.tracks == []


def test_a_track_that_was_missing_says_for_how_long():
    t = Tracker(max_age=10)
    (tr,), _ = t.update([(100, 100, 80, 80)])
    (tr,), _ = t.update([(100, 100, 80, 80)])
    assert tr.gap == 0
    for _ in range(4):
        t.update([])
    (back,), _ = t.update([(102, 100, 80, 80)])
    assert back is tr and back.gap == 4
    (again,), _ = t.update([(102, 100, 80, 80)])
    assert again.gap == 0


def test_a_split_track_goes_on_under_a_new_id_and_the_old_one_is_gone():
    t = Tracker()
    (a, b), _ = t.update([(100, 100, 80, 80), (400, 100, 80, 80)])
    new = t.split(a, t=1.0, frame=7)
    assert new.id == 3 and new.box == a.box and new.first_frame == 7 and new.data == {}
    assert t.tracks == [new, b]
    (c, d), _ = t.update([(101, 100, 80, 80), (400, 100, 80, 80)])
    assert c is new and d is b
