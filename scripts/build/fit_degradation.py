#!/usr/bin/env python3
"""Fit the degradation penalty of a calibration (`edge.matching.Calibration.penalty`).

    python scripts/build/fit_degradation.py [--lfw ../shared/data/lfw-dev] [--profiles accurate]
                                            [--photos 1500] [--cache .cache/degradation]

Run after scripts/build/calibrate.py (which writes the clean calibration and drops old terms).
Calibration photos (lfw-dev photos not in pairs.csv, so scripts/eval/conditions.py measures
on photos and people this never saw; `--photos N`: the first N of a seeded shuffle) are
degraded with the *fitting* recipes of scripts/build/degrade.py — motion blur of 5, 7, 11 and
13 px, backlight at 25 % and 50 %, darkness at 12 % and 30 % — none of them the evaluation's
own (blur9, backlight at 35 %, lowlight at 20 %). For each recipe every impostor pair of two
degraded photos is scored, and the penalty terms are the grid point that keeps FAR at the
scores 0.6 and 0.7 within `LIMITS` (the table, plus sampling error) in every recipe while
costing the fewest genuine pairs at 0.7: blur terms on the blur recipes, darkness and
backlight terms on the others. The terms are written into models/calibration.json
(`info.degradation`) with the FAR each recipe measured before and after. Exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lfw as lfw_data  # noqa: E402
from calibrate import calibration_photos  # noqa: E402
from degrade import degrade, nearest  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.matching import (  # noqa: E402
    CALIBRATION_FILE,
    DEFAULT_THRESHOLD,
    Calibration,
    degradation_features,
    load_calibrations,
    save_calibrations,
)
from edge.runtime import models_dir  # noqa: E402
from edge.vision import quality  # noqa: E402

BLUR = ("blur5", "blur7", "blur11", "blur13")
DARK = ("backlight25", "backlight50", "dark12", "dark30")
FLOORS = {"blur_floor": quality.BLUR_FLOOR, "backlight_floor": quality.BACKLIGHT_FLOOR}
GRID = {
    "blurred": np.round(np.arange(0.0, 0.51, 0.02), 3),
    "blur": np.round(np.arange(0.0, 1.51, 0.1), 3),
    "direction": np.round(np.arange(0.0, 1.51, 0.1), 3),
    "dark": np.round(np.arange(0.0, 0.31, 0.01), 3),
    "backlit": np.round(np.arange(0.0, 0.41, 0.01), 3),
}
# FAR allowed at each score on every recipe: the table, with the sampling error of 1,500 clean
# calibration photos (their own FAR at 0.7 is 1.2e-4 against the 1e-4 of all of them)
LIMITS = {0.6: 1.25e-3, 0.7: 1.25e-4}


def embed(engine: Engine, lfw: Path, photos: list[tuple[Path, str]], condition: str, cache: Path):
    """(embeddings, degradation vectors, people) of the labelled face of every photo under `condition`."""
    path = cache / f"{condition}-{engine.model_version}-{len(photos)}.npz"
    if path.exists():
        data = np.load(path)
        return data["emb"], data["deg"], data["who"]
    emb, deg, who = [], [], []
    start = time.perf_counter()
    for i, (photo, person) in enumerate(photos):
        face0 = lfw_data.labelled_face(engine, photo)
        if face0 is None:
            continue
        frame, centre = degrade(engine.load(str(photo)).rgb, face0, condition, seed=i)
        face = nearest(engine.faces(frame, quality=False), centre)
        if face is not None:
            emb.append(face.embedding)
            deg.append(face.degradation)
            who.append(person)
        if (i + 1) % 500 == 0:
            logging.info("%s: %d/%d photos, %.0f s", condition, i + 1, len(photos), time.perf_counter() - start)
    cache.mkdir(parents=True, exist_ok=True)
    out = np.stack(emb), np.stack(deg), np.array(who)
    np.savez(path, emb=out[0], deg=out[1], who=out[2])
    return out


class Pairs:
    """The pairs of two degraded photos of one recipe that can reach a score of 0.55 (the rest
    cannot cross 0.6 after a penalty), with each pair's penalty features."""

    def __init__(self, cal: Calibration, emb: np.ndarray, deg: np.ndarray, who: np.ndarray) -> None:
        iu = np.triu_indices(len(emb), 1)
        same = who[iu[0]] == who[iu[1]]
        self.impostors = int((~same).sum())
        self.genuine = int(same.sum())
        raw = np.einsum("ij,ij->i", emb[iu[0]], emb[iu[1]])
        keep = raw >= cal.raw_threshold(0.55)
        i, j = iu[0][keep], iu[1][keep]
        self.same = same[keep]
        self.score = np.asarray(cal(raw[keep]), np.float64)
        self.features = degradation_features(deg[i].astype(np.float64), deg[j].astype(np.float64), FLOORS)

    def far(self, penalty: np.ndarray, t: float) -> float:
        return float(np.sum((self.score - penalty >= t) & ~self.same)) / max(self.impostors, 1)

    def tar(self, penalty: np.ndarray, t: float = DEFAULT_THRESHOLD) -> float:
        return float(np.sum((self.score - penalty >= t) & self.same)) / max(self.genuine, 1)

    def penalty(self, terms: dict) -> np.ndarray:
        return sum(float(terms[n]) * self.features[n] for n in GRID)


def fit(recipes: dict[str, Pairs], names: tuple[str, ...], fixed: dict) -> dict:
    """The grid point over `names` (others at `fixed`) meeting LIMITS in every recipe with the
    most genuine pairs kept; among ties the smallest terms."""
    best = None
    for values in itertools.product(*(GRID[n] for n in names)):
        terms = {**fixed, **dict(zip(names, map(float, values)))}
        pens = {r: p.penalty(terms) for r, p in recipes.items()}
        if any(p.far(pens[r], t) > limit for r, p in recipes.items() for t, limit in LIMITS.items()):
            continue
        kept = float(np.mean([p.tar(pens[r]) for r, p in recipes.items()]))
        key = (kept, -sum(values))
        if best is None or key > best[0]:
            best = (key, terms)
    if best is None:
        raise SystemExit(f"no grid point keeps FAR within the table for {sorted(recipes)}; widen GRID")
    return best[1]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--profiles", nargs="+", default=["accurate"])
    ap.add_argument("--photos", type=int, default=1500)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "degradation")
    ap.add_argument("--out", type=Path, default=None, help="default: models/calibration.json")
    args = ap.parse_args()
    if not (args.lfw / "labels.csv").is_file():
        print(f"lfw-dev not found at {args.lfw}", file=sys.stderr)
        return 2
    photos = calibration_photos(args.lfw)
    order = np.random.default_rng(0).permutation(len(photos))[: args.photos]
    photos = [photos[k] for k in sorted(order)]
    out = args.out or models_dir() / CALIBRATION_FILE
    calibrations = load_calibrations(out)
    for profile in args.profiles:
        engine = Engine(EngineConfig.profile(profile))
        cal = next(c for c in calibrations if c.signature == engine.config.signature())
        bare = Calibration(cal.raw, cal.score, cal.signature, {k: v for k, v in cal.info.items() if k != "degradation"})
        recipes = {r: Pairs(bare, *embed(engine, args.lfw, photos, r, args.cache)) for r in ("clean", *BLUR, *DARK)}
        zero = {name: 0.0 for name in GRID}
        terms = fit({r: recipes[r] for r in BLUR}, ("blurred", "blur", "direction"), zero)
        terms = fit({r: recipes[r] for r in DARK}, ("dark", "backlit"), terms)
        terms = {**FLOORS, **terms}
        print(f"profile {profile}: terms {terms}")
        head = ("impostors", "FAR@0.6 before", "after", "FAR@0.7 before", "after", "TAR@0.7 before", "after")
        print(f"{'recipe':<12} " + " ".join(f"{h:>{w}}" for h, w in zip(head, (10, 14, 8, 14, 8, 14, 8))))
        measured = {}
        for r, p in recipes.items():
            pen, none = p.penalty(terms), np.zeros(len(p.score))
            row = [p.far(none, 0.6), p.far(pen, 0.6), p.far(none, 0.7), p.far(pen, 0.7), p.tar(none), p.tar(pen)]
            measured[r] = [float(f"{v:.3g}") for v in row]
            print(f"{r:<12} {p.impostors:>10,} " + " ".join(f"{v:>{w}.2e}" for v, w in zip(row, (14, 8, 14, 8)))
                  + f" {row[4]:>14.2%} {row[5]:>8.2%}")  # fmt: skip
        cal.info["degradation"] = {
            **terms,
            "fitted_by": "scripts/build/fit_degradation.py",
            "photos": len(photos),
            "recipes": "impostor pairs of two degraded lfw-dev calibration photos per recipe; "
            "[FAR@0.6, after, FAR@0.7, after, TAR@0.7, after]",
            "measured": measured,
        }
    data = json.loads(out.read_text())
    save_calibrations(out, calibrations, **{k: v for k, v in data.items() if k != "calibrations"})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
