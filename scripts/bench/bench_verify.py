#!/usr/bin/env python3
"""Engine.verify and Engine.compare_faces end to end on decoded photos: ms per call.

    python scripts/bench/bench_verify.py [--rounds 5] [--profile accurate]

Photos: scikit-image's astronaut and cameraman, and each motion-blurred (so that a pair of two
blurred faces pays the degradation penalty's cost too); every ordered pair of the four, each
call timed, best of `--rounds` per pair, then the mean over pairs. Run it in two checkouts
with scripts/bench/ab.py to see what a change costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.engine import Engine, EngineConfig  # noqa: E402


def photos() -> list[np.ndarray]:
    from skimage import data

    kernel = np.zeros((9, 9), np.float32)
    kernel[4, :] = 1 / 9
    sharp = [data.astronaut(), cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)]
    return sharp + [cv2.filter2D(p, -1, kernel) for p in sharp]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", default="accurate")
    args = ap.parse_args()
    engine = Engine(EngineConfig.profile(args.profile))
    images = photos()
    for name, call in (("verify", engine.verify), ("compare_faces", engine.compare_faces)):
        per_pair = []
        for a in images:
            for b in images:
                call(a, b)  # warm
                best = min(_timed(call, a, b) for _ in range(args.rounds))
                per_pair.append(best)
        print(f"{name} mean ms {1000 * statistics.mean(per_pair):.2f} over {len(per_pair)} pairs")
    return 0


def _timed(call, a, b) -> float:
    start = time.perf_counter()
    result = call(a, b)
    elapsed = time.perf_counter() - start
    if result["code"] != 1000:
        raise SystemExit(f"{result}")
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
