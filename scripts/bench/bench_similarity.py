#!/usr/bin/env python3
"""Engine.similarity on one million embedding pairs, against a plain Python loop.

    python scripts/bench/bench_similarity.py [--rows 1000000]

The baseline is the obvious per-row loop (dot product and calibration one pair at a
time) timed on a slice and scaled up; both run here, in the same process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.engine import Engine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--profile", default="accurate")
    args = ap.parse_args()
    engine = Engine(profile=args.profile)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(args.rows, engine.dim)).astype(np.float32)
    b = rng.normal(size=(args.rows, engine.dim)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    engine.similarity(a[:1000], b[:1000])  # warm up
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        scores = engine.similarity(a, b)
        runs.append(time.perf_counter() - start)
    vectorised = min(runs)
    n = min(20_000, args.rows)
    start = time.perf_counter()
    for i in range(n):
        engine.similarity(a[i], b[i])
    loop = (time.perf_counter() - start) / n * args.rows
    assert scores.shape == (args.rows,)
    print(f"Engine.similarity, {args.rows:,} rows of {engine.dim} floats ({args.profile} profile)")
    print(f"  vectorised: {vectorised * 1000:.0f} ms (best of 5)")
    print(f"  per-row loop baseline: {loop:.1f} s (timed on {n:,} rows, scaled)")
    print(f"  ratio: {loop / vectorised:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
