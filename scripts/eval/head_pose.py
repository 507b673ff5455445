#!/usr/bin/env python3
"""How the quality stage's head pose reads a known turn: synthetic live heads rendered at known angles.

    python scripts/eval/head_pose.py [--lfw ../shared/data/lfw-dev] [--people 40] [--seed 1]

Each of `--people` lfw-dev people (the subjects of `liveness_challenge.py`) becomes a synthetic
live head (`scripts/build/spoofs.py` `head_rig`, a FaceMesh mesh warp, 120 px wide), rendered
frontal and then turned by each rendered angle below; the measured change is the quality
stage's yaw or pitch (`Engine.faces`) of the turned frame minus that of the frontal one, in the
asked direction. The liveness challenge's `turn_deg` and `up_deg` are set from this
(docs/liveness.md). Prints min, p10, median and max per rendered turn. Exits 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT / "scripts" / "eval"))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import liveness_challenge  # noqa: E402
import spoofs  # noqa: E402

from edge.app import engine_from_config  # noqa: E402
from edge.config import Config  # noqa: E402

# (label, rendered yaw, rendered pitch, the measured axis, the sign of a turn that way).
# The renderer's yaw is the mirror of the quality stage's (see liveness_challenge.TURN).
TURNS = (
    ("28° left", -28.0, 0.0, 0, 1.0),
    ("28° right", 28.0, 0.0, 0, -1.0),
    ("15° left", -15.0, 0.0, 0, 1.0),
    ("30° up", 0.0, -30.0, 1, 1.0),
    ("20° up", 0.0, -20.0, 1, 1.0),
)


def measured_pose(engine, rig, yaw: float, pitch: float) -> tuple[float, float] | None:
    image = np.clip(rig.frame(yaw, pitch, 0.0), 0, 255).astype(np.uint8)
    faces = engine.faces(image, max_faces=1)
    m = (faces[0].quality or {}).get("measurements") if faces else None
    return (m["yaw"]["value"], m["pitch"]["value"]) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    engine = engine_from_config(Config())
    change: dict[str, list[float]] = {t[0]: [] for t in TURNS}
    for index, (_, _, subject) in enumerate(liveness_challenge.subjects(engine, args.lfw, args.people, 0)):
        rng = np.random.default_rng([args.seed, index])
        rig = spoofs.head_rig(subject, rng, spoofs.background_image(rng, None), 120)
        frontal = measured_pose(engine, rig, 0.0, 0.0)
        if frontal is None:
            continue
        for label, yaw, pitch, axis, sign in TURNS:
            turned = measured_pose(engine, rig, yaw, pitch)
            if turned is not None:
                change[label].append(sign * (turned[axis] - frontal[axis]))
    print(f"measured change of the quality stage's pose, synthetic live heads ({args.people} lfw-dev people)\n")
    print(f"{'rendered turn':<14} {'faces':>5} {'min':>6} {'p10':>6} {'median':>7} {'max':>6}")
    for label, values in change.items():
        v = np.array(values)
        print(
            f"{label:<14} {len(v):>5} {v.min():>6.1f} {np.percentile(v, 10):>6.1f} {np.median(v):>7.1f} {v.max():>6.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
