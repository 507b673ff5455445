#!/usr/bin/env python3
"""Open-set 1:N on lfw-dev: how often a stranger is given a name, how often an enrolled person is missed.

    python scripts/eval/identification.py [--lfw ../shared/data/lfw-dev] [--seeds 100]
        [--sizes 10 100 1000] [--photos 1 3] [--profiles accurate] [--cache .cache/embeddings]

Held-out data only: the photos of pairs.csv (LFW folds 0–4), which the score calibration
(`scripts/build/calibrate.py`, on the other lfw-dev photos) never saw. Per seed and gallery
size N: N people are enrolled — people with at least two held-out photos first (so one photo
of each is left to probe with), topped up with one-photo people when there are fewer than N —
with 1 photo each, or up to `--photos` (never their last one). **Strangers** are the people with
exactly one photo in all of lfw-dev who were not enrolled; **genuine probes** are one held-out
photo of each enrolled person that was not enrolled. Every probe is searched against the
gallery with the engine's own matcher (`Engine.match`, largest face of each photo).

Printed per profile, enrolment depth and N (probes pooled over the seeds):
- FPIR (strangers given a name) and FNIR (enrolled people not named, or named wrongly) at
  thresholds 0.4 … 0.8 on the gallery-aware `score`, against the table 10^(3 − 10t) — and the
  same FPIR when the threshold is applied to the 1:1 `verification_score` instead (what the
  device did before scores were gallery-aware);
- FNIR at FPIR 1 % and 0.1 % (thresholds picked on the stranger scores: independent of the
  calibration; it measures the embedder and the enrolment).
The seeds search the same strangers against overlapping galleries, so one look-alike
stranger–person pair recurs in many searches: the gallery-aware FPIR is marked with the
number of *distinct* pairs behind it when under 10, and "too few" under 3. "distinct
expected" is how many distinct pairs the table's rate predicts over all the pairs compared
(FPIR / N per pair): where it is near or under 1 (N ≥ 100 at 0.7, N = 1,000 at 0.6), the
1,307 one-photo strangers of lfw-dev are too few to confirm or refute the calibration.
The 1:1 column counts events.

Ground truth, LFW's way: the labelled face of an LFW photo is the one at the centre of the
250×250 image, so that face is embedded (not the largest: some photos show a bigger second
person, who would then be "a stranger" matching an enrolled person perfectly). People whom
LFW files under two names are one identity here (`scripts/build/lfw.py`, as the calibration).

Embeddings are cached per model version in `--cache` (default .cache/embeddings, ignored by git).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import lfw as lfw_data  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD as T0  # noqa: E402
from edge.matching import Gallery, far_of_threshold  # noqa: E402

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)
TARGET_FPIRS = (1e-2, 1e-3)
DEFAULT_LFW = ROOT.parent / "shared" / "data" / "lfw-dev"


def held_out(lfw: Path) -> tuple[list[str], dict[str, str], Counter]:
    """pairs.csv's photos (sorted), every photo's identity, and each identity's photo count in all of lfw-dev."""
    identity = lfw_data.identities(lfw)
    return sorted(lfw_data.pairs_photos(lfw)), identity, Counter(identity.values())


def embeddings(engine: Engine, lfw: Path, photos: list[str], cache: Path | None) -> dict[str, np.ndarray]:
    """The labelled (centre) face's embedding of every photo where a face is found."""
    path = None if cache is None else cache / f"lfw-dev-centre-{engine.model_version}.npz"
    if path is not None and path.exists():
        data = np.load(path)
        names = [str(n) for n in data["photos"]]
        if set(names) >= set(photos):
            return {n: e for n, e, ok in zip(names, data["embeddings"], data["found"]) if ok}
    out, found = [], []
    start = time.perf_counter()
    for i, photo in enumerate(photos):
        face = lfw_data.labelled_face(engine, lfw / photo)
        found.append(face is not None)
        out.append(face.embedding if face is not None else np.zeros(engine.dim, np.float32))
        if (i + 1) % 500 == 0:
            logging.info("%d/%d photos embedded, %.0f s", i + 1, len(photos), time.perf_counter() - start)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, photos=np.array(photos), embeddings=np.stack(out), found=np.array(found))
    return {p: e for p, e, ok in zip(photos, out, found) if ok}


def matcher(engine, margin):
    """`engine.match` on full embeddings, or the cascade (`Engine.cascade_match`) at `margin`,
    fed from the full embeddings: the first embedder's part is their first block times √k."""
    if margin is None:
        return lambda probes, gallery: (engine.match(probes, gallery), len(probes))
    k = len(engine.embedders)

    def cascade(probes, gallery):
        first = probes[:, : engine.first_dim] * np.sqrt(k)
        first /= np.linalg.norm(first, axis=1, keepdims=True)
        return engine.cascade_match(first, gallery, lambda rows: probes[rows], threshold=T0, margin=margin)

    return cascade


def simulate(engine, emb, identity, counts, n_people, depth, seeds, margin=None):
    """Pooled stranger and genuine matches over `seeds` random galleries of `n_people`."""
    match = matcher(engine, margin)
    completed = 0
    by_person = defaultdict(list)
    for photo in sorted(emb):
        by_person[identity[photo]].append(photo)
    multi = sorted(p for p, ph in by_person.items() if len(ph) >= 2)
    singles = sorted(p for p, ph in by_person.items() if len(ph) == 1 and counts[p] == 1)
    strangers_scores, strangers_one, stranger_pairs = [], [], []
    everyone = {p: i for i, p in enumerate(sorted(by_person))}
    enrolled_in = np.zeros((seeds, len(everyone)), dtype=bool)  # who was enrolled in which seed
    genuine = []  # (named correctly at score s, score, verification_score)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        chosen = list(rng.permutation(multi)[:n_people])
        fillers = []
        if len(chosen) < n_people:
            fillers = list(rng.permutation(singles)[: n_people - len(chosen)])
        names, rows, probes, truth = [], [], [], []
        for person in chosen:
            photos = list(rng.permutation(by_person[person]))
            k = min(depth, len(photos) - 1)
            for photo in photos[:k]:
                names.append(person)
                rows.append(emb[photo])
            probes.append(emb[photos[k]])
            truth.append(person)
        for person in fillers:
            names.append(person)
            rows.append(emb[by_person[person][0]])
        gallery = Gallery.from_embeddings(names, np.stack(rows))
        enrolled = set(chosen) | set(fillers)
        enrolled_in[seed, [everyone[p] for p in enrolled]] = True
        probed = [p for p in singles if p not in enrolled]
        found, done = match(np.stack([emb[by_person[p][0]] for p in probed]), gallery)
        completed += done
        for m, who in zip(found, probed):
            strangers_scores.append(m.score)
            strangers_one.append(m.verification_score)
            stranger_pairs.append((who, m.candidate))
        found, done = match(np.stack(probes), gallery)
        completed += done
        for m, who in zip(found, truth):
            genuine.append((m.candidate == who, m.score, m.verification_score))
    # Distinct (stranger, enrolled person) pairs ever compared: the seeds re-use the same strangers
    # against overlapping galleries, so one look-alike pair recurs in many searches.
    distinct = 0
    for p in singles:
        distinct += int(np.any(enrolled_in[~enrolled_in[:, everyone[p]]], axis=0).sum())
    return (
        Strangers(np.array(strangers_scores), stranger_pairs, distinct),
        np.array(strangers_one),
        np.array([g[0] for g in genuine]),
        np.array([g[1] for g in genuine]),
        len(singles),
        len(multi),
        completed,
    )


class Strangers(NamedTuple):
    scores: np.ndarray  # the gallery-aware score of every stranger search
    pairs: list  # (stranger, best candidate) of every search
    distinct: int  # distinct (stranger, enrolled person) pairs compared over all seeds


def fpir_text(scores: np.ndarray, t: float, pairs: list | None = None) -> str:
    """FPIR at t, with the number of events; with `pairs`, also how many distinct stranger–person pairs
    they come from (an FPIR resting on fewer than 3 distinct pairs is marked: too few to measure)."""
    hits = scores >= t
    events = int(np.sum(hits))
    rate = events / len(scores)
    if pairs is not None:
        distinct = len({pairs[i] for i in np.flatnonzero(hits)})
        if distinct < 3:
            return f"{rate:8.2e} (too few: {events} events, {distinct} distinct)"
        return f"{rate:8.2e}" + (f" ({distinct} distinct)" if distinct < 10 else "")
    if events < 3:
        return f"{rate:8.2e} (too few events: {events})"
    return f"{rate:8.2e}" + (f" ({events} events)" if events < 10 else "")


def fnir_at_fpir(strangers: np.ndarray, right: np.ndarray, genuine: np.ndarray, fpir: float) -> tuple[float, float]:
    """FNIR with the threshold that names at most `fpir` of the strangers; (FNIR, that threshold)."""
    t = float(np.quantile(strangers, 1.0 - fpir, method="higher")) + 1e-9
    return float(np.mean(~(right & (genuine >= t)))), t


def cascade_report(engine, emb, identity, counts, args) -> None:
    """The cascade against the full fusion, on the same galleries: FNIR and FPIR at 0.7, share that needed stage 2."""
    print(
        f"\n  cascade ({engine.config.embedders[0]} first; the rest only when its gallery-aware score is within "
        "the margin of 0.7 or above), one enrolment photo:"
    )
    print(f"    {'N':>5} {'margin':>6}  {'stage 2 share':>13}  {f'FPIR at {T0:g}':>12}  {f'FNIR at {T0:g}':>11}")
    for n in args.sizes:
        for margin in (None, *args.cascade):
            strangers, _, right, genuine, _, _, completed = simulate(
                engine, emb, identity, counts, n, 1, args.seeds, margin
            )
            share = completed / (len(strangers.scores) + len(genuine))
            fpir = float(np.mean(strangers.scores >= T0))
            fnir = float(np.mean(~(right & (genuine >= T0))))
            label = "full" if margin is None else f"{margin:.2f}"
            print(f"    {n:>5} {label:>6}  {100 * share:12.1f}%  {fpir:12.2e}  {100 * fnir:10.2f}%")


def parse_eval_args(ap: argparse.ArgumentParser, needs: str) -> argparse.Namespace | None:
    """Add -v, parse, set up logging; None (after saying so) when `args.lfw` lacks the file `needs`."""
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not (args.lfw / needs).exists():
        print(f"no lfw-dev at {args.lfw} (no {needs})", file=sys.stderr)
        return None
    return args


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--photos", type=int, nargs="+", default=[1, 3], help="enrolment photos per person (at most)")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--profiles", nargs="+", default=["accurate"], help="engine profiles to compare")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "embeddings")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument(
        "--cascade", type=float, nargs="*", default=[], help="also simulate the 1:N cascade at these score margins"
    )
    args = parse_eval_args(ap, "pairs.csv")
    if args is None:
        return 2
    photos, identity, counts = held_out(args.lfw)
    summary = []
    for profile in args.profiles:
        engine = Engine(EngineConfig.profile(profile))
        emb = embeddings(engine, args.lfw, photos, None if args.no_cache else args.cache)
        print(
            f"\nprofile {profile} (embedders {', '.join(engine.config.embedders)}; model version "
            f"{engine.model_version}); {len(emb)}/{len(photos)} held-out photos with a face; {args.seeds} seeds"
        )
        for depth in args.photos:
            for n in args.sizes:
                strangers, strangers_one, right, genuine, n_singles, n_multi, _ = simulate(
                    engine, emb, identity, counts, n, depth, args.seeds
                )
                print(
                    f"\n  N = {n:,} people, up to {depth} enrolment photo(s); {len(strangers.scores):,} stranger "
                    f"searches (of {n_singles} one-photo people; {strangers.distinct:,} distinct stranger–person "
                    f"pairs), {len(genuine):,} genuine searches"
                )
                print(
                    f"    {'t':>4} {'table FPIR':>10}  {'distinct expected':>17}  {'FPIR (score)':<38} "
                    f"{'FPIR (1:1 score)':<30} {'FNIR':>7}"
                )
                for t in THRESHOLDS:
                    fnir = float(np.mean(~(right & (genuine >= t))))
                    # At the table's rate, a stranger–person pair is a false positive with probability
                    # FPIR / N, so this many distinct pairs would be seen: below ~3, no measurement
                    # can confirm or refute the table there.
                    expected = strangers.distinct * far_of_threshold(t) / n
                    print(
                        f"    {t:4.1f} {far_of_threshold(t):10.0e}  {expected:17.1f}  "
                        f"{fpir_text(strangers.scores, t, strangers.pairs):<38} "
                        f"{fpir_text(strangers_one, t):<30} {100 * fnir:6.2f}%"
                    )
                for target in TARGET_FPIRS:
                    fnir, t = fnir_at_fpir(strangers.scores, right, genuine, target)
                    print(f"    FNIR at FPIR {100 * target:g} %: {100 * fnir:6.2f}%  (score threshold {t:.3f})")
                    summary.append((profile, depth, n, target, fnir))
        if args.cascade and len(engine.embedders) > 1:
            cascade_report(engine, emb, identity, counts, args)
    if len(args.profiles) > 1 or len(args.photos) > 1:
        print("\nFNIR at FPIR (lower is better):")
        for profile, depth, n, target, fnir in summary:
            print(f"  {profile:<10} up to {depth} photo(s)  N={n:<5}  FPIR {100 * target:g} %: FNIR {100 * fnir:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
