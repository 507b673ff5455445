#!/usr/bin/env python3
"""A/B: one benchmark in two checkouts, interleaved in one run, with the ratio of each figure.

    python scripts/bench/ab.py --rounds 3 \
        --before "cd ../before && ../main/.venv/bin/python scripts/bench_loop.py --seconds 5" \
        --after  ".venv/bin/python scripts/bench/bench_loop.py --seconds 5" \
        --metric 'tracked fps=tracked loop\\s+([\\d.]+) fps' --metric 'p99 ms=tracked loop.*p99\\s+([\\d.]+) ms'

A change's speed is judged against the code before it, measured on the same machine in the
same run (docs/architecture.md). The two commands run alternately (before, after, after,
before, …) so that a drift in machine load hits both alike; each `--metric NAME=REGEX` is read
from a command's output (stdout and stderr) by the regex's first group. Printed per metric:
every round's value, the median of each side, and after / before. Exits 1 when a command fails
or a metric is missing from its output.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time


def run(command: str, timeout: float) -> str:
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"`{command}` exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + "\n" + proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="shell command: the benchmark in the checkout before the change")
    ap.add_argument("--after", required=True, help="shell command: the same benchmark with the change")
    ap.add_argument("--metric", action="append", required=True, help="NAME=REGEX whose first group is a number")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each command (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = ap.parse_args(argv)
    metrics = []
    for spec in args.metric:
        name, sep, pattern = spec.partition("=")
        if not sep:
            ap.error(f"--metric {spec!r}: expected NAME=REGEX")
        metrics.append((name, re.compile(pattern)))

    values: dict[str, dict[str, list[float]]] = {
        side: {name: [] for name, _ in metrics} for side in ("before", "after")
    }
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for side in order:
            start = time.monotonic()
            try:
                out = run(getattr(args, side), args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"round {r + 1} {side}: {exc}", file=sys.stderr)
                return 1
            for name, pattern in metrics:
                m = pattern.search(out)
                if m is None:
                    print(f"round {r + 1} {side}: no {name!r} in the output:\n{out[-3000:]}", file=sys.stderr)
                    return 1
                values[side][name].append(float(m.group(1)))
            got = ", ".join(f"{n} {values[side][n][-1]:g}" for n, _ in metrics)
            print(f"round {r + 1} {side:<6} ({time.monotonic() - start:5.1f} s): {got}", flush=True)

    print(f"\n{'metric':<28} {'before (median)':>16} {'after (median)':>16} {'after/before':>13}")
    for name, _ in metrics:
        before, after = statistics.median(values["before"][name]), statistics.median(values["after"][name])
        ratio = after / before if before else float("nan")
        print(f"{name:<28} {before:>16.3f} {after:>16.3f} {ratio:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
