"""scripts/build/spoofs.py and scripts/eval/liveness_clips.py on skimage's astronaut (no ../shared needed):
deterministic clips, a print moves as a plane, a synthetic head turn does not, a still head has no answer,
and the measurement tool runs end to end on a tiny labelled folder."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "build"))
sys.path.insert(0, str(ROOT / "scripts" / "eval"))

import spoofs  # noqa: E402

from edge.vision import motion  # noqa: E402

FRAMES = 20


@pytest.fixture(scope="module")
def engine():
    from edge.engine import Engine

    return Engine()


@pytest.fixture(scope="module")
def subject(engine, _skimage_photos):
    photo = cv2.resize(_skimage_photos["astronaut"], (250, 250), interpolation=cv2.INTER_AREA)  # LFW-sized
    subject = spoofs.subject_from_photo(engine, photo, "astronaut")
    assert subject is not None
    return subject


@pytest.fixture(scope="module")
def clips(subject):
    return {kind: spoofs.make_clip(subject, kind, spoofs.clip_rng(7, kind, 0), frames=FRAMES) for kind in spoofs.KINDS}


def _digest(frames: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for f in frames:
        h.update(f.tobytes())
    return h.hexdigest()


def _track(engine, frames):
    out = []
    for rgb in frames:
        dets = engine.detect(rgb)
        if not dets:
            out.append(None)
            continue
        _, mesh = engine.landmarks(rgb, max(dets, key=lambda d: d.area))
        out.append(mesh.landmarks)
    return out


@pytest.mark.parametrize("kind", ["screen", "live_turn"])
def test_same_seed_same_frames(subject, clips, kind):
    first = spoofs.make_clip(subject, kind, spoofs.clip_rng(7, kind, 1), frames=4)
    again = spoofs.make_clip(subject, kind, spoofs.clip_rng(7, kind, 1), frames=4)
    assert _digest(again) == _digest(first)
    other = spoofs.make_clip(subject, kind, spoofs.clip_rng(8, kind, 1), frames=4)
    assert _digest(other) != _digest(first)


def test_every_kind_is_640x480_uint8_with_a_door_sized_face(engine, clips):
    for kind, frames in clips.items():
        assert len(frames) == FRAMES and all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames), kind
        widths = [max((d.box[2] for d in engine.detect(f)), default=0) for f in frames[::4]]
        found = [w for w in widths if w]
        assert len(found) >= 0.6 * len(widths), (kind, widths)
        assert 60 <= np.median(found) <= 220, (kind, widths)


def test_a_print_moves_as_a_plane_and_a_head_turn_does_not(engine, clips):
    printed = motion.planarity(_track(engine, clips["print"]))
    turned = motion.planarity(_track(engine, clips["live_turn"]))
    assert printed is not None and turned is not None
    assert printed < 0.04 < 0.06 < turned, (printed, turned)


def test_a_still_head_has_not_enough_motion(engine, clips):
    assert motion.planarity(_track(engine, clips["live_still"])) is None


def test_the_tool_prints_iso_figures_for_a_labelled_folder(clips, tmp_path, capsys):
    import liveness_clips

    rows = []
    for kind in ("print", "screen", "live_turn", "live_still"):
        label = spoofs.LABEL[kind]
        spoofs.write_clip(tmp_path / label / f"{kind}.avi", clips[kind])
        rows.append({"clip": f"{label}/{kind}.avi", "label": label, "attack_type": kind, "subject": "astronaut",
                     "photo": "astronaut", "frames": FRAMES})  # fmt: skip
    spoofs.write_labels(tmp_path, rows)
    sys.modules["fake_score"] = type(sys)("fake_score")
    sys.modules["fake_score"].brightness = lambda rgb, det: float(rgb.mean()) / 255
    assert liveness_clips.main([str(tmp_path), "--frame-score", "fake_score:brightness"]) == 0
    out = capsys.readouterr().out
    assert "4 clips" in out and "planarity" in out and "brightness" in out
    for figure in ("EER", "APCER", "BPCER", "cost per frame (ms)", "facemesh", "live_still"):
        assert figure in out, figure
    # every clip is the astronaut's: one subject, and at BPCER 5 % some clip of it is wrong
    assert "per subject: 1 of 1 subjects with an error" in out and "astronaut" in out
