"""Run statistics: per-stage timings as percentiles, with constant memory, and process facts.

A `Histogram` keeps counts in log-spaced bins (1 % wide, 1 µs to 100 s), so a loop that
runs for months reports p50/p99 over its whole life without storing samples; a
percentile is exact to within one bin (1 %).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

_IMPORTED = time.monotonic()


class Histogram:
    LO_MS = 1e-3
    HI_MS = 1e5
    STEP = 1.01

    def __init__(self) -> None:
        self._log_step = math.log(self.STEP)
        self.bins = int(math.ceil(math.log(self.HI_MS / self.LO_MS) / self._log_step)) + 1
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, ms: float) -> None:
        i = 0 if ms <= self.LO_MS else min(self.bins - 1, int(math.log(ms / self.LO_MS) / self._log_step) + 1)
        self.counts[i] += 1
        self.n += 1
        self.total += ms
        if ms > self.max:
            self.max = ms

    def percentile(self, q: float) -> float:
        if not self.n:
            return math.nan
        rank = max(1, math.ceil(q / 100 * self.n))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        upper = self.LO_MS * self.STEP**i  # the bin's upper edge
        return min(upper, self.max)

    def summary(self) -> dict:
        if not self.n:
            return {"n": 0}
        return {
            "n": self.n,
            "mean": round(self.total / self.n, 3),
            "p50": round(self.percentile(50), 3),
            "p99": round(self.percentile(99), 3),
            "max": round(self.max, 3),
        }


class Timings:
    """Named histograms: `add("detect", ms)`; `summary()` → {name: {n, mean, p50, p99, max}}."""

    def __init__(self) -> None:
        self.stages: dict[str, Histogram] = {}

    def add(self, name: str, ms: float) -> None:
        h = self.stages.get(name)
        if h is None:
            h = self.stages[name] = Histogram()
        h.add(ms)

    def summary(self) -> dict[str, dict]:
        return {name: h.summary() for name, h in self.stages.items()}


def process_age() -> float:
    """Seconds since this process started (from /proc on Linux; else since this module loaded)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 (starttime), counted after "pid (comm)"
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def peak_rss_mb() -> float | None:
    """The process's peak resident memory (VmHWM), MiB; None where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except (ImportError, OSError):  # pragma: no cover
        return None
