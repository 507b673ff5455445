#!/usr/bin/env python3
"""The 1:1 cascade of `Engine.verify` against the full fusion, on lfw-dev's held-out pairs.

    python scripts/eval/verify_cascade.py [--lfw ../shared/data/lfw-dev] [--profile sface] [--margin 0.3]

`verify` with a cascade (the `sface` profile) embeds both faces with the first embedder
(MobileFaceNet) and answers with its own calibrated score when that is more than `margin` below
0.7; otherwise it runs the other embedders and answers with the full fusion's score. Here every
pairs.csv photo is embedded once as `verify` does (largest face), both scores are computed for
every pair of photos — pairs.csv's pairs for the 10-fold accuracy, every same-identity pair as
genuine and every cross-identity pair as impostor for TAR at FAR, as `edge evaluate` counts them —
and the cascade's answers are compared with the full fusion's. Printed: the share of genuine and
impostor comparisons that needed the second stage, pair accuracy, TAR at FAR 1e-2 … 1e-5 (the
threshold set on each score's own impostors) and the calibration (FAR at 0.4 … 0.8) of both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.evaluation import FARS, identities, kfold_accuracy, read_pairs, tar_at_far  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--margin", type=float, default=None, help="default: the profile's cascade_margin")
    args = ap.parse_args()
    if not (args.lfw / "pairs.csv").exists():
        print(f"no lfw-dev at {args.lfw}", file=sys.stderr)
        return 2
    engine = Engine(EngineConfig.profile(args.profile))
    margin = engine.config.cascade_margin if args.margin is None else args.margin
    if margin is None or len(engine.embedders) < 2 or engine.first_calibration is None:
        print(f"profile {args.profile} has no cascade", file=sys.stderr)
        return 2
    pairs, same, folds = read_pairs(args.lfw / "pairs.csv", args.lfw)
    photos = sorted({p for pair in pairs for p in pair})
    emb = np.zeros((len(photos), engine.dim), np.float32)
    found = np.zeros(len(photos), bool)
    for i, path in enumerate(photos):
        faces = engine.faces(path, max_faces=1, quality=False)  # the largest face, as `verify` uses
        if faces:
            emb[i], found[i] = faces[0].embedding, True
    first = emb[:, : engine.first_dim] * np.sqrt(len(engine.embedders))
    first /= np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-12)
    cut = DEFAULT_THRESHOLD - margin

    def scores(raw_full: np.ndarray, raw_first: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        full = np.asarray(engine.calibration(raw_full), np.float64)
        fast = np.asarray(engine.first_calibration(raw_first), np.float64)
        stage2 = fast >= cut
        return full, np.where(stage2, full, fast), stage2

    index = {p: i for i, p in enumerate(photos)}
    ia = np.array([index[a] for a, _ in pairs])
    ib = np.array([index[b] for _, b in pairs])
    missed = ~(found[ia] & found[ib])
    full_p, casc_p, _ = scores(np.sum(emb[ia] * emb[ib], 1), np.sum(first[ia] * first[ib], 1))
    who = np.array(identities(photos, args.lfw))
    ok = np.flatnonzero(found)
    iu = np.triu_indices(len(ok), 1)
    genuine_mask = (who[ok][:, None] == who[ok][None, :])[iu]
    full_all, casc_all, stage2 = scores((emb[ok] @ emb[ok].T)[iu], (first[ok] @ first[ok].T)[iu])
    print(
        f"profile {args.profile} ({' + '.join(engine.config.embedders)}), cascade margin {margin:g}: the first "
        f"embedder alone answers below {cut:.2f}; {len(photos)} photos, {int(genuine_mask.sum()):,} genuine and "
        f"{int((~genuine_mask).sum()):,} impostor comparisons"
    )
    print(
        f"  needed the second stage: {100 * stage2[genuine_mask].mean():.2f} % of genuine, "
        f"{100 * stage2[~genuine_mask].mean():.2f} % of impostor comparisons"
    )
    print(f"  {'':<14} {'full fusion':>12} {'cascade':>12}")
    for name, f_p, c_p in (("pair accuracy", full_p, casc_p),):
        a_full, _ = kfold_accuracy(f_p, same, folds, missed)
        a_casc, _ = kfold_accuracy(c_p, same, folds, missed)
        print(f"  {name:<14} {100 * a_full:11.2f}% {100 * a_casc:11.2f}%")
    for far in FARS:
        t_full = tar_at_far(full_all[genuine_mask], full_all[~genuine_mask], far)[0]
        t_casc = tar_at_far(casc_all[genuine_mask], casc_all[~genuine_mask], far)[0]
        print(f"  TAR @ {far:.0e}    {100 * t_full:11.2f}% {100 * t_casc:11.2f}%")
    for t in (0.4, 0.5, 0.6, 0.7, 0.8):
        imp_full, imp_casc = full_all[~genuine_mask], casc_all[~genuine_mask]
        print(
            f"  FAR at {t:.1f}     {np.mean(imp_full >= t):12.2e} {np.mean(imp_casc >= t):12.2e}  "
            f"(table {10 ** (3 - 10 * t):.0e})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
