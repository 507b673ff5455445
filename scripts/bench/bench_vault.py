#!/usr/bin/env python3
"""What the vault's index and no-follow reads cost: enrolment, loading, checking, against a baseline checkout.

    python scripts/bench/bench_vault.py [--baseline /work/main] [--people 500] [--dim 512] [--rounds 3]

Each checkout (this one, and `--baseline`, the code before the change) runs in its own child
process on its own temporary vault, alternately for `--rounds` rounds (medians are shown: on
a shared machine the load moves between runs): `--people` synthetic people are enrolled (one entry, two
small photos and two templates each, through `Vault.add_entry`: no engine), then it times

  * enrol: the mean `add_entry` of the last 50 enrolments (the index then lists them all, and is
    written twice per enrolment);
  * load: `Vault.open` + `templates()` of the model version, what `edge run` does at start-up
    and on every reload (every meta and template record decrypted; with the index, people/ is
    also listed and compared with it);
  * check: `Vault.check()` (every record, photos included);

and prints the ratio this checkout / baseline for each (median over the rounds), and the
index's size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout

_CHILD = r"""
import json, os, sys, tempfile, time
from pathlib import Path
import cv2
import numpy as np
from edge.vault import Vault

people, dim = int(sys.argv[1]), int(sys.argv[2])
mv = "0123456789abcdef"
rng = np.random.default_rng(0)
ok, buf = cv2.imencode(".png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
photo = buf.tobytes()
rows = rng.standard_normal((people, 2, dim)).astype(np.float32)
rows /= np.linalg.norm(rows, axis=2, keepdims=True)
with tempfile.TemporaryDirectory() as tmp:
    vault = Vault.init(Path(tmp) / "vault")
    enrol = []
    for i in range(people):
        t0 = time.perf_counter()
        vault.add_entry(f"Person {i}", [photo, photo], rows[i], mv)
        enrol.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    loaded = Vault.open(vault.directory).templates(mv, dim)
    load = time.perf_counter() - t0
    assert loaded.matrix.shape == (2 * people, dim) and not loaded.problems
    t0 = time.perf_counter()
    good, problems = Vault.open(vault.directory).check()
    check = time.perf_counter() - t0
    assert not problems
    index = Path(tmp) / "vault" / "index.rec"
    print(json.dumps({
        "enrol_ms": 1000 * sum(enrol[-50:]) / len(enrol[-50:]),
        "load_s": load,
        "check_s": check,
        "records": good,
        "index_bytes": index.stat().st_size if index.exists() else 0,
    }))
"""


def run(checkout: Path, people: int, dim: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(people), str(dim)],
        env=env,
        cwd=tempfile.gettempdir(),  # not a checkout: PYTHONPATH decides which `edge` is imported
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, default=Path("/work/main"), help="checkout of the code before the change")
    ap.add_argument("--people", type=int, default=500)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    for _ in range(args.rounds):
        runs["base"].append(run(args.baseline, args.people, args.dim))
        runs["new"].append(run(ROOT, args.people, args.dim))
    base, new = ({k: statistics.median(r[k] for r in rs) for k in rs[0]} for rs in (runs["base"], runs["new"]))
    print(
        f"vault of {args.people} people, 2 photos + 2 templates of {args.dim} floats each ({new['records']:.0f} "
        f"records); medians of {args.rounds} alternating runs"
    )
    print(f"{'':8}{'baseline':>12}{'this':>12}{'ratio':>8}")
    for key, unit in (("enrol_ms", "ms"), ("load_s", "s"), ("check_s", "s")):
        print(
            f"{key[:-3] if unit == 'ms' else key[:-2]:8}{base[key]:>10.3f}{unit:>2}{new[key]:>10.3f}{unit:>2}"
            f"{new[key] / base[key]:>7.2f}x"
        )
    print(
        f"index.rec: {new['index_bytes'] / 1024:.0f} KiB ({new['index_bytes'] / args.people:.0f} bytes per enrolment)"
    )
    print(f"({time.perf_counter() - t0:.0f} s; baseline {args.baseline}, this {ROOT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
