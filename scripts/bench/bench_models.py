#!/usr/bin/env python3
"""Single-thread speed of every shipped model, each variant against its float source.

    python scripts/bench/bench_models.py                     # LiteRT (this interpreter)
    python scripts/bench/bench_models.py --runtime both      # + tflite-runtime 2.14 (.venv-tflite214)

Variants of one family are timed interleaved -- round after round, each model in
turn -- so a busy neighbour slows them all alike and the printed ratio against the
float model stays fair. Prints ms per inference (median over rounds) and the ratio.
Works with numpy 1.x so it can run inside the tflite-runtime environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.runtime import Model, load_manifest  # noqa: E402

DEFAULT_TFLITE_PYTHON = ROOT / ".venv-tflite214" / "bin" / "python"


def time_models(
    paths: dict[str, Path], *, backend: str | None = None, rounds: int = 15, per_round: int = 10, warmup: int = 5
) -> dict[str, float]:
    """Median ms per inference of each model, interleaved over `rounds`."""
    import numpy as np

    rng = np.random.default_rng(0)
    models, feeds = {}, {}
    for label, path in paths.items():
        m = Model(path, threads=1, backend=backend)
        spec = m.inputs[0]
        feeds[label] = rng.uniform(-1, 1, spec.shape).astype(np.float32)
        models[label] = m
        for _ in range(warmup):
            m.run(feeds[label])
    samples: dict[str, list[float]] = {label: [] for label in paths}
    for _ in range(rounds):
        for label, m in models.items():
            x = feeds[label]
            m._set(m.inputs[0], x)
            start = time.perf_counter()
            for _ in range(per_round):
                m._interpreter.invoke()
            samples[label].append((time.perf_counter() - start) / per_round * 1000)
    return {label: statistics.median(v) for label, v in samples.items()}


def families(directory: Path) -> dict[str, dict[str, Path]]:
    """family -> {manifest key: path}, the float reference first."""
    manifest = load_manifest(directory)["models"]
    out: dict[str, dict[str, Path]] = {}

    def float_first(item):
        return item[1]["family"], item[1]["variant"] not in ("float32", "float16")

    for key, info in sorted(manifest.items(), key=float_first):
        out.setdefault(info["family"], {})[key] = directory / info["file"]
    return out


def bench_directory(directory: Path, backend: str | None, rounds: int) -> dict[str, float]:
    result: dict[str, float] = {}
    for paths in families(directory).values():
        result.update(time_models(paths, backend=backend, rounds=rounds))
    return result


def bench_in_tflite_runtime(directory: Path, python: Path, rounds: int) -> dict[str, float]:
    """Run this script in the tflite-runtime environment and read its JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            str(python),
            __file__,
            "--models-dir",
            str(directory),
            "--runtime",
            "tflite-runtime",
            "--rounds",
            str(rounds),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tflite-runtime benchmark failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)["tflite-runtime"]


def table(directory: Path, results: dict[str, dict[str, float]]) -> str:
    manifest = load_manifest(directory)["models"]
    runtimes = list(results)
    head = f"{'model':<24} {'variant':<13} {'default':<7}"
    head += "".join(f" {r + ' ms':>19} {'x float':>8}" for r in runtimes)
    lines = [head, "-" * len(head)]
    for paths in families(directory).values():
        ref = next(iter(paths))
        for key in paths:
            info = manifest[key]
            row = f"{key:<24} {info['variant']:<13} {'yes' if info.get('default') else '':<7}"
            for r in runtimes:
                ms = results[r][key]
                row += f" {ms:>19.2f} {ms / results[r][ref]:>8.2f}"
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--runtime", choices=["ai-edge-litert", "tflite-runtime", "both"], default="ai-edge-litert")
    ap.add_argument(
        "--tflite-python",
        type=Path,
        default=DEFAULT_TFLITE_PYTHON,
        help="python of an environment with tflite-runtime 2.14 and numpy<2",
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    results: dict[str, dict[str, float]] = {}
    if args.runtime in ("ai-edge-litert", "both"):
        results["ai-edge-litert"] = bench_directory(args.models_dir, "ai-edge-litert", args.rounds)
    if args.runtime == "tflite-runtime":
        results["tflite-runtime"] = bench_directory(args.models_dir, "tflite-runtime", args.rounds)
    elif args.runtime == "both":
        if not args.tflite_python.exists():
            print(f"{args.tflite_python} not found: run scripts/setup.sh first", file=sys.stderr)
            return 2
        results["tflite-runtime"] = bench_in_tflite_runtime(args.models_dir, args.tflite_python, args.rounds)
    if args.json:
        print(json.dumps(results))
    else:
        print(f"single thread, median of {args.rounds} interleaved rounds; 'x float' = time / float model's time")
        print(table(args.models_dir, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
