#!/usr/bin/env python3
"""What each rule of the quality gate (NORMAL) is worth: the faces it refuses, how they match.

    python scripts/eval/gate_ablation.py [--cache .cache/conditions] [--level 2]

Reads the caches of scripts/eval/conditions.py (run it first, same `--cache`; every condition
of it, held-out lfw-dev photos degraded the way a door camera degrades them) and holds every
face's cached measurements to the level's thresholds (`edge.vision.quality.judge`). Per check
(framing, face size, blur, exposure, pose, occlusion), over the faces of every condition
pooled: how many it refuses, and how those faces match — TAR at 0.7 against the clean
enrolled photos of the same person and FAR at 0.7 against other people's clean photos (one
side degraded), and FAR at 0.7 between two refused faces of the same condition (both sides,
with the degradation penalty of `Engine.verify`) — next to the faces that pass every check.
A rule earns its place when the faces it refuses match worse (lower TAR) or lie (FAR above
the table's 1e-4). Exits 0.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import lfw as lfw_data  # noqa: E402
from conditions import CONDITIONS, cross, failed_checks, scores  # noqa: E402
from identification import DEFAULT_LFW  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD as T  # noqa: E402
from edge.vision import quality  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "conditions")
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--level", default="2")
    args = ap.parse_args()
    engine = Engine(EngineConfig.profile(args.profile))
    level = quality.parse_level(args.level)
    identity = lfw_data.identities(args.lfw) if (args.lfw / "labels.csv").is_file() else None

    def load(condition: str):
        paths = sorted(args.cache.glob(f"{condition}-{engine.model_version}-*.npz"))
        return np.load(paths[-1]) if paths else None

    clean = load("clean")
    if clean is None or identity is None or "deg" not in clean.files:
        print(f"run scripts/eval/conditions.py --cache {args.cache} first (needs lfw-dev)", file=sys.stderr)
        return 2
    who = np.array([identity[p] for p in clean["photos"]])
    enrolled = (clean["emb"], clean["deg"])
    # per check: [faces, genuine ≥ 0.7, genuine, impostor ≥ 0.7, impostors, both ≥ 0.7, both pairs]
    totals: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(7))
    used = []
    for condition in CONDITIONS:
        data = load(condition)
        if data is None or "deg" not in data.files:
            continue
        used.append(condition)
        fails = failed_checks(data, level)
        found = data["found"]
        side = (data["emb"], data["deg"])
        one = scores(engine, side, enrolled)
        two = scores(engine, side, side)
        groups = {"passes every check": np.array([bool(f) and not fails[i] for i, f in enumerate(found)])}
        for check in quality.CHECKS:
            groups[f"refused: {check}"] = np.array([check in f for f in fails])
        for name, chosen in groups.items():
            if not chosen.any():
                continue
            genuine, impostor = cross(one, who, chosen, clean["found"], both=False)
            genuine = genuine[np.isfinite(genuine)]  # only the chosen faces' genuine pairs
            _, both = cross(two, who, chosen, chosen, both=True)
            totals[name] += [chosen.sum(), np.sum(genuine >= T), len(genuine), np.sum(impostor >= T),
                             len(impostor), np.sum(both >= T), len(both)]  # fmt: skip
    n = sum(int(load(c)["found"].sum()) for c in used)
    print(f"level {level.name}; {n} faces found over {len(used)} conditions ({', '.join(used)}); threshold {T:g}")
    tar, far1, far2 = f"TAR@{T:g}", f"FAR@{T:g} 1 side", f"FAR@{T:g} both"
    print(f"{'faces':<22} {'count':>8} {tar:>8} {far1:>14} {far2:>12} {'both pairs':>11}")
    for name in ("passes every check", *(f"refused: {c}" for c in quality.CHECKS)):
        t = totals.get(name)
        if t is None:
            print(f"{name:<22} {0:>8}")
            continue
        far_both = f"{t[5] / t[6]:12.1e}" if t[6] else f"{'-':>12}"
        tar, far = t[1] / max(t[2], 1), t[3] / max(t[4], 1)
        print(f"{name:<22} {int(t[0]):>8} {tar:8.2%} {far:14.1e} {far_both} {int(t[6]):>11,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
