#!/usr/bin/env python3
"""Speed acceptance: the default engine against face_recognition 1.3 (dlib), per photo.

    python scripts/bench/bench_vs_dlib.py [--photos 200] [--lfw ../shared/data/lfw-dev] [--json]

The target: per photo (read the file, decode, detect every face, align and embed the
largest) the default engine (`Engine()`, profile "accurate") is at least 6x faster than
face_recognition 1.3.0 (dlib HOG detector + ResNet embedding). Both are timed in this one
run, on the same photos (a seeded sample of lfw-dev's labels.csv, read in place), photo by
photo with the contestants in rotating order so that load from other processes hits all
of them alike. Also timed: the engine with one thread (LiteRT and OpenCV), and the "fast"
profile. Prints mean / median / p90 wall ms per photo, CPU ms per photo (all threads of
the process) and "cores" = CPU / wall (below 1: the process waited for a core, i.e. the
machine was busy; the load average is printed too), the photos where each found a face,
the ratios dlib / engine of the mean, the median and the CPU ms, and a PASS/FAIL line.
The acceptance uses the mean wall time (total time over the same photos). Exits 0
either way; 2 when face_recognition is not installed.

The baseline is used with its library defaults: ``face_locations(img)`` (model="hog",
number_of_times_to_upsample=1), then ``face_encodings(img, known_face_locations=[largest])``
(model="small", the 5-point landmark predictor; num_jitters=1); the image comes from
``face_recognition.load_image_file`` (PIL). The engine side is ``engine.faces(path,
max_faces=1, quality=False)`` -- what `verify` runs without `check_quality`.

Installing the baseline (not part of setup.sh; CI does not run this benchmark).
face_recognition 1.3.0 requires the `dlib` distribution, which compiles from source;
`dlib-bin` ships the same `dlib` module as a prebuilt wheel, so face_recognition itself
goes in with --no-deps (`pip check` then still says "requires dlib, which is not
installed": expected). It works with NumPy 2 in the project venv::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/pip install --no-deps face_recognition==1.3.0

Threads: dlib-bin is built without BLAS, LAPACK, CUDA or OpenMP (it uses AVX), so
face_recognition runs on one core; the "cores" column shows it. OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set to 1 before NumPy loads unless already
set, and printed. The engine runs with its configured LiteRT threads (EngineConfig.threads
0 = the number of cores, at most 4) and OpenCV's default; the "1 thread" rows set both
LiteRT and OpenCV (cv2.setNumThreads) to one.
"""

from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _var in THREAD_VARS:  # before NumPy (and its BLAS) is imported
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

REPO = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

DEFAULT_LFW = REPO.parent / "shared" / "data" / "lfw-dev"
TARGET = 6.0
SEED = 0
WARMUP_PHOTOS = 3
INSTALL = "pip install -e '.[bench]' && pip install --no-deps face_recognition==1.3.0"


@dataclass
class Contestant:
    name: str
    run: Callable[[str], int]  # photo path -> faces embedded (0 or 1)
    threads: str  # what it was allowed, for the report
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    found: int = 0
    errors: list[str] = field(default_factory=list)

    def measure(self, path: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            n = self.run(path)
        except Exception as exc:  # noqa: BLE001 - a measurement: count it and go on
            n = 0
            self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        self.wall_ms.append(wall * 1000)
        self.cpu_ms.append(cpu * 1000)
        self.found += n > 0

    def summary(self) -> dict:
        wall = self.wall_ms
        mean = statistics.fmean(wall)
        cpu = statistics.fmean(self.cpu_ms)
        return {
            "threads": self.threads,
            "mean_ms": round(mean, 2),
            "median_ms": round(statistics.median(wall), 2),
            "p90_ms": round(sorted(wall)[int(0.9 * (len(wall) - 1))], 2),
            "cpu_ms": round(cpu, 2),
            "cores_used": round(cpu / mean, 2) if mean else 0.0,
            "photos_with_face": self.found,
            "errors": len(self.errors),
        }


# --- photos -----------------------------------------------------------------------------------


def select_photos(lfw: Path, n: int) -> list[Path]:
    """A seeded sample of `n` photos from lfw's labels.csv (same photos every run)."""
    with open(lfw / "labels.csv", newline="") as f:
        images = sorted(row["image"] for row in csv.DictReader(f))
    if n > len(images):
        raise SystemExit(f"--photos {n}: {lfw / 'labels.csv'} lists only {len(images)} photos")
    return [lfw / image for image in random.Random(SEED).sample(images, n)]


# --- contestants ------------------------------------------------------------------------------


def engine_default_threads() -> int:
    """LiteRT threads per model of the default `EngineConfig` (0 there means one per core)."""
    import edge.engine as engine_module

    configured = engine_module.EngineConfig().threads
    return configured or engine_module._default_threads()


def dlib_contestant() -> tuple[Contestant, dict]:
    try:
        import dlib
        import face_recognition
    except ImportError as exc:
        raise SystemExit(f"face_recognition is not installed ({exc}); install it with: {INSTALL}") from exc

    def run(path: str) -> int:
        img = face_recognition.load_image_file(path)
        boxes = face_recognition.face_locations(img)  # (top, right, bottom, left); hog, upsample 1
        if not boxes:
            return 0
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        return len(face_recognition.face_encodings(img, known_face_locations=[largest]))  # model="small"

    info = {
        # face_recognition 1.3.0's own __version__ still says 1.2.3: ask the installed distribution
        "face_recognition": metadata.version("face_recognition"),
        "dlib": dlib.__version__,
        "blas": bool(dlib.DLIB_USE_BLAS),
        "lapack": bool(dlib.DLIB_USE_LAPACK),
        "cuda": bool(dlib.DLIB_USE_CUDA),
        "avx": bool(dlib.USE_AVX_INSTRUCTIONS),
        "calls": "face_locations(img) [model='hog', upsample=1]; "
        "face_encodings(img, [largest]) [model='small' (5-point), num_jitters=1]",
    }
    return Contestant("face_recognition 1.3 (dlib)", run, "1 (no BLAS/OpenMP)"), info


def engine_contestant(label: str, profile: str, threads: int) -> tuple[Contestant, bool]:
    """An engine contestant; `threads` 0 = the engine's default. Returns (it, calibrated)."""
    from edge.engine import Engine, EngineConfig
    from edge.runtime import ModelError

    overrides = {"threads": threads} if threads else {}
    config = EngineConfig.profile(profile, **overrides)
    try:
        engine, calibrated = Engine(config), True
    except ModelError as exc:  # the calibration does not change the speed
        if "calibration" not in str(exc):
            raise
        engine, calibrated = Engine(config, require_calibration=False), False
    resolved = config.threads or engine_default_threads()
    opencv_default = cv2.getNumThreads()

    if threads == 1:

        def run(path: str) -> int:
            cv2.setNumThreads(1)  # "one thread" means OpenCV too
            try:
                return len(engine.faces(path, max_faces=1, quality=False))
            finally:
                cv2.setNumThreads(opencv_default)

        described = "1 LiteRT, 1 OpenCV"
    else:

        def run(path: str) -> int:
            return len(engine.faces(path, max_faces=1, quality=False))

        described = f"{resolved} LiteRT, {opencv_default} OpenCV"
    return Contestant(label, run, described), calibrated


# --- the run ----------------------------------------------------------------------------------


def bench(photos: Sequence[Path]) -> dict:
    baseline, dlib_info = dlib_contestant()
    default_threads = engine_default_threads()
    engines = []
    uncalibrated = []
    for label, profile, threads in (
        ("edge accurate (default)", "accurate", 0),
        ("edge accurate (1 thread)", "accurate", 1),
        (f"edge accurate ({os.cpu_count()} threads)", "accurate", os.cpu_count() or 1),
        ("edge fast (default)", "fast", 0),
    ):
        contestant, calibrated = engine_contestant(label, profile, threads)
        engines.append(contestant)
        if not calibrated:
            uncalibrated.append(label)
    everyone = [*engines, baseline]

    paths = [str(p) for p in photos]
    for path in paths:  # into the page cache, so no contestant pays the first disk read
        Path(path).read_bytes()
    for path in paths[:WARMUP_PHOTOS]:
        for c in everyone:
            c.run(path)

    load_before = os.getloadavg()
    start = time.perf_counter()
    for i, path in enumerate(paths):
        k = i % len(everyone)
        for c in everyone[k:] + everyone[:k]:  # rotating order
            c.measure(path)
    elapsed = time.perf_counter() - start
    load_after = os.getloadavg()

    base = baseline.summary()
    rows = {}
    for c in everyone:
        s = c.summary()
        if c is not baseline:
            s["speedup_mean"] = round(base["mean_ms"] / s["mean_ms"], 2)
            s["speedup_median"] = round(base["median_ms"] / s["median_ms"], 2)
            s["cpu_ratio"] = round(base["cpu_ms"] / s["cpu_ms"], 2) if s["cpu_ms"] else None
        rows[c.name] = s
    default = rows[engines[0].name]
    return {
        "photos": len(paths),
        "sample": f"random.Random({SEED}).sample of labels.csv",
        "target_speedup": TARGET,
        "pass": default["speedup_mean"] >= TARGET,
        "default_engine": engines[0].name,
        "speedup": default["speedup_mean"],
        "single_core_speedup": rows[engines[1].name]["speedup_mean"],
        "contestants": rows,
        "dlib": dlib_info,
        "env": {
            **{var: os.environ.get(var) for var in THREAD_VARS},
            "cpu_count": os.cpu_count(),
            "opencv_threads_default": cv2.getNumThreads(),
            "engine_default_threads": default_threads,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "timed_seconds": round(elapsed, 1),
        },
        "uncalibrated": uncalibrated,
        "errors": {c.name: c.errors[:5] for c in everyone if c.errors},
    }


def print_report(result: dict, lfw: Path) -> None:
    env, dlib_info = result["env"], result["dlib"]
    print(f"{result['photos']} lfw-dev photos from {lfw} ({result['sample']}, seed {SEED}), read in place")
    print(
        "per photo: read file + decode + detect every face + align/embed the largest; "
        "photo by photo, contestants in rotating order"
    )
    print(
        "threads: "
        + ", ".join(f"{var}={env[var]}" for var in THREAD_VARS)
        + f"; {env['cpu_count']} CPU cores; OpenCV default {env['opencv_threads_default']} threads; "
        f"engine default: {env['engine_default_threads']} LiteRT thread(s) per model"
    )
    print(
        f"dlib {dlib_info['dlib']} (dlib-bin): BLAS {dlib_info['blas']}, LAPACK {dlib_info['lapack']}, "
        f"CUDA {dlib_info['cuda']}, AVX {dlib_info['avx']}; face_recognition {dlib_info['face_recognition']} "
        f"defaults: {dlib_info['calls']}"
    )
    print(
        f"load average (1/5/15 min) before {env['loadavg_before']}, after {env['loadavg_after']}; "
        f"timed part took {env['timed_seconds']} s"
    )
    if result["uncalibrated"]:
        print(f"note: no calibration for {', '.join(result['uncalibrated'])} (require_calibration=False; speed alike)")
    print()
    header = (
        f"{'contestant':30} {'threads':34} {'mean ms':>8} {'median':>8} {'p90':>8} {'cpu ms':>8} {'cores':>6} "
        f"{'faces':>9} {'dlib/this':>10} {'(median)':>9} {'(cpu ms)':>9}"
    )
    print(header)
    print("-" * len(header))
    n = result["photos"]
    for name, s in result["contestants"].items():
        ratio = f"{s['speedup_mean']:.2f}x" if "speedup_mean" in s else "1.00x"
        ratio_med = f"{s['speedup_median']:.2f}x" if "speedup_median" in s else "1.00x"
        ratio_cpu = f"{s['cpu_ratio']:.2f}x" if s.get("cpu_ratio") else "1.00x"
        print(
            f"{name:30} {s['threads']:34} {s['mean_ms']:8.1f} {s['median_ms']:8.1f} {s['p90_ms']:8.1f} "
            f"{s['cpu_ms']:8.1f} {s['cores_used']:6.2f} {s['photos_with_face']:>4}/{n:<4} "
            f"{ratio:>10} {ratio_med:>9} {ratio_cpu:>9}"
        )
    for name, errors in result["errors"].items():
        print(f"errors in {name}: {errors}")
    print()
    print(f"single core: edge accurate (1 thread) is {result['single_core_speedup']:.2f}x faster than dlib (mean)")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(
        f"{verdict}: {result['default_engine']} is {result['speedup']:.2f}x faster than face_recognition 1.3 "
        f"per photo (mean ms, dlib / engine; target >= {TARGET:g}x)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200, help="photos to time (default: %(default)s)")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="lfw-dev folder (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.photos < 1:
        parser.error("--photos must be >= 1")
    try:
        photos = select_photos(args.lfw, args.photos)
        result = bench(photos)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    if args.json:
        print(json.dumps({"lfw": str(args.lfw), **result}, indent=1))
    else:
        print_report(result, args.lfw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
