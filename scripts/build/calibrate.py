#!/usr/bin/env python3
"""Fit the raw-similarity → score map so that threshold t means FAR 10^(3 − 10t).

    python scripts/build/calibrate.py [--lfw ../shared/data/lfw-dev] [--profiles accurate fast]

Calibration photos are the lfw-dev photos that do *not* appear in pairs.csv,
so `edge evaluate` on pairs.csv measures the calibration on photos it has
never seen. Each photo gives its labelled face (the centre one) and LFW's few
people filed under two names count as one (`lfw.py`): an impostor pair must be
two different people, or the far tail is thickened by same-person "impostors".
Every cross-identity pair of calibration photos is an impostor pair (millions
of them); `edge.matching.fit_calibration` turns their similarities into the map
and extrapolates the thin tail above 0.8 (see its docstring). The result is
written to models/calibration.json, one entry per engine profile, each bound to
the sha256 of the embedders it was measured with. It has no degradation penalty
(`Calibration.penalty`): scripts/build/fit_degradation.py adds that afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lfw as lfw_data  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.matching import CALIBRATION_FILE, fit_calibration, save_calibrations  # noqa: E402
from edge.runtime import load_manifest, models_dir  # noqa: E402


def calibration_photos(lfw: Path) -> list[tuple[Path, str]]:
    eval_photos = lfw_data.pairs_photos(lfw)
    return [(lfw / p, who) for p, who in sorted(lfw_data.identities(lfw).items()) if p not in eval_photos]


def embed_all(engine: Engine, photos: list[tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray]:
    embeddings, people = [], []
    start = time.perf_counter()
    for i, (path, who) in enumerate(photos):
        face = lfw_data.labelled_face(engine, path)
        if face is not None:
            embeddings.append(face.embedding)
            people.append(who)
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(photos)} photos, {time.perf_counter() - start:.0f} s", flush=True)
    return np.stack(embeddings), np.array(people)


def impostor_similarities(emb: np.ndarray, people: np.ndarray) -> np.ndarray:
    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), 1)
    return sims[iu][people[iu[0]] != people[iu[1]]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--profiles", nargs="+", default=["accurate", "fast", "fr_feature"])
    ap.add_argument("--out", type=Path, default=None, help="default: models/calibration.json")
    args = ap.parse_args()

    photos = calibration_photos(args.lfw)
    print(f"{len(photos)} calibration photos (not in pairs.csv) of {len({w for _, w in photos})} people")
    calibrations = []
    for profile in args.profiles:
        engine = Engine(EngineConfig.profile(profile), require_calibration=False)
        emb, people = embed_all(engine, photos)
        impostor = impostor_similarities(emb, people)
        cal = fit_calibration(impostor, engine.config.signature())
        cal.info.update(
            {
                "profile": profile,
                "data": "lfw-dev photos not in pairs.csv; the labelled (centre) face per photo; "
                "LFW's same-person names merged (scripts/build/lfw.py)",
                "photos": int(len(photos)),
                "photos_with_face": int(len(emb)),
                "people": int(len(set(people))),
            }
        )
        print(f"profile {profile}: {len(impostor):,} impostor pairs; threshold → raw similarity, FAR on this data")
        for t in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            raw = cal.raw_threshold(t)
            measured = float(np.mean(impostor > raw))
            print(f"  {t:.1f} → raw {raw:.4f}  FAR {measured:.2e} (table {10 ** (3 - 10 * t):.0e})")
        calibrations.append(cal)
    out = args.out or models_dir() / CALIBRATION_FILE
    save_calibrations(
        out,
        calibrations,
        made_by="scripts/build/calibrate.py",
        models_version=load_manifest()["version"],
        meaning="a score threshold t accepts a fraction 10^(3 - 10 t) of impostors: 0.7 -> 1/10,000",
    )
    print(f"wrote {out}")
    print("the degradation penalty is not in it: run scripts/build/fit_degradation.py next")
    return 0


if __name__ == "__main__":
    sys.exit(main())
