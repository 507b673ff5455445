#!/usr/bin/env python3
"""Presentation-attack detection on a folder of labelled clips: ISO/IEC 30107-3 figures per cue.

    python scripts/eval/liveness_clips.py DIR [--gap 4] [--min-motion 0.03] [--limit N]
        [--frame-score MODULE:FUNCTION ...] [--dump FILE.npz | --load FILE.npz]

DIR holds ``labels.csv`` (columns ``clip`` — a path relative to DIR —, ``label`` — ``live``
for bona fide, anything else an attack —, ``attack_type``, ``subject``) and the clips
(anything OpenCV reads). `scripts/build/spoofs.py` writes such folders; real attack
recordings can be dropped in the same way.

Every frame runs through the appliance's own stages (`Engine.detect`, then FaceMesh via
`Engine.landmarks`, for one face followed from frame to frame: each clip is one presentation,
one track; see `follow`). Per clip,
each cue gives one score, higher = more live:

``planarity``     `edge.vision.motion.planarity` over the track's FaceMesh landmarks (median over
                  pairs ``--gap`` frames apart that moved at least ``--min-motion`` of the face
                  size); no answer ("not enough motion") with fewer than ``--min-pairs`` such pairs.
``<name>``        every ``--frame-score MODULE:FUNCTION``: a function ``frame_score(rgb, detection)
                  -> float`` (e.g. a passive CNN's live probability) called on every frame with a
                  face; the clip's score is the mean over its frames.

Printed per cue: the score per attack type (median, 10th–90th percentile, clips without an
answer); the EER between attacks and bona fide, for planarity also per frame pair; and the
ISO/IEC 30107-3 figures at the threshold where BPCER = 5 % on the bona fide clips that have an
answer (APCER per attack type, a clip without an answer counted as refused — i.e. an attack
without an answer is *not* an error, a bona fide one is, shown as "BPCER all"), and the cost of
each cue per frame in ms (detection and FaceMesh, shared by everything, on their own lines);
then, per subject (the ``subject`` column), how many subjects have a bona fide clip refused or an
attack clip accepted at that threshold, and the worst of them.
``--dump`` saves the landmark tracks, ``--load`` reads them back instead of running the models
(to try another ``--gap`` or ``--min-motion`` in seconds).
Exits 0.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import logging
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.app import engine_from_config  # noqa: E402
from edge.config import Config  # noqa: E402
from edge.vision import motion  # noqa: E402

log = logging.getLogger("liveness_clips")
BONA_FIDE = "live"
TARGET_BPCER = 0.05


def read_labels(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.setdefault("attack_type", row["label"])
        row.setdefault("subject", "")
        if not row["attack_type"]:
            row["attack_type"] = row["label"]
    return rows


def frames_of(path: Path):
    """RGB frames of a clip."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def load_frame_score(spec: str) -> tuple[str, Callable]:
    """'module:function' (a module importable from the checkout or scripts/) → (name, function)."""
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--frame-score wants MODULE:FUNCTION, got {spec!r}")
    return name, getattr(importlib.import_module(module), name)


def follow(detections: list, previous) -> object:
    """The presentation's face: the most confident detection near the previous frame's one (within half
    its width), else the most confident (a blurred face on a background poster scores lower)."""
    if previous is not None:
        px, py = previous.centre
        near = [d for d in detections if math.dist(d.centre, (px, py)) < 0.5 * previous.box[2]]
        if near:
            return max(near, key=lambda d: d.score)
    return max(detections, key=lambda d: d.score)


def run_clip(engine, path: Path, frame_scores: dict[str, Callable], cost: dict[str, list[float]]) -> dict:
    """Landmarks of the largest face per frame (None without one) and the per-frame scores."""
    track: list[np.ndarray | None] = []
    scores: dict[str, list[float]] = {name: [] for name in frame_scores}
    previous = None
    for rgb in frames_of(path):
        t0 = time.perf_counter()
        detections = engine.detect(rgb)
        t1 = time.perf_counter()
        cost["detect"].append(t1 - t0)
        if not detections:
            track.append(None)
            continue
        det = follow(detections, previous)
        previous = det
        _, mesh = engine.landmarks(rgb, det)
        t2 = time.perf_counter()
        cost["facemesh"].append(t2 - t1)
        track.append(None if mesh is None else np.asarray(mesh.landmarks, np.float64))
        for name, fn in frame_scores.items():
            t = time.perf_counter()
            scores[name].append(float(fn(rgb, det)))
            cost[name].append(time.perf_counter() - t)
    return {"track": track, "scores": scores}


def eer(bona: np.ndarray, attack: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): scores higher = more live, accepted when score ≥ threshold."""
    if len(bona) == 0 or len(attack) == 0:
        return math.nan, math.nan
    best = (2.0, math.nan, math.nan)
    for t in np.unique(np.concatenate([bona, attack])):
        bpcer = float(np.mean(bona < t))
        apcer = float(np.mean(attack >= t))
        gap = abs(apcer - bpcer)
        if gap < best[0]:
            best = (gap, t, (apcer + bpcer) / 2)
    return best[2], best[1]


def threshold_at_bpcer(bona: np.ndarray, target: float = TARGET_BPCER) -> float:
    """The highest threshold with BPCER ≤ target on these bona fide scores (accept when score ≥ threshold)."""
    ordered = np.sort(bona)
    k = int(math.floor(target * len(ordered)))  # this many may fall below
    return float(ordered[min(k, len(ordered) - 1)])


def describe(values: list[float]) -> str:
    if not values:
        return f"{'—':>8} {'—':>17}"
    v = np.asarray(values)
    return f"{np.median(v):>8.3f} {np.percentile(v, 10):>8.3f}–{np.percentile(v, 90):<8.3f}"


def report(name: str, rows: list[dict], clip_scores: list[float | None], pair_scores: list[list[float]] | None) -> None:
    """Distribution per attack type, EER, ISO/IEC 30107-3 figures at BPCER 5 % for one cue."""
    types = sorted({r["attack_type"] for r in rows}, key=lambda t: (rows_label(rows, t) != BONA_FIDE, t))
    print(f"\n## {name}\n")
    print(f"{'attack type':<12} {'label':<7} {'clips':>5} {'no answer':>9} {'median':>8} {'p10–p90':>17}"
          + (f" {'pairs':>6} {'pair median':>11}" if pair_scores is not None else ""))  # fmt: skip
    for t in types:
        idx = [i for i, r in enumerate(rows) if r["attack_type"] == t]
        vals = [clip_scores[i] for i in idx if clip_scores[i] is not None]
        line = f"{t:<12} {rows[idx[0]]['label']:<7} {len(idx):>5} {len(idx) - len(vals):>9} {describe(vals)}"
        if pair_scores is not None:
            pairs = [p for i in idx for p in pair_scores[i]]
            line += f" {len(pairs):>6} {np.median(pairs) if pairs else math.nan:>11.3f}"
        print(line)
    is_bona = np.array([r["label"] == BONA_FIDE for r in rows])
    answered = np.array([s is not None for s in clip_scores])
    score = np.array([s if s is not None else -math.inf for s in clip_scores])
    bona = score[is_bona & answered]
    attacks = score[~is_bona & answered]
    e, t_eer = eer(bona, attacks)
    print(f"\nclip-level EER (attacks vs bona fide, clips with an answer): {e:.1%} at {t_eer:.4g} "
          f"({len(bona)} bona fide, {len(attacks)} attacks)")  # fmt: skip
    if pair_scores is not None:
        pb = np.array([p for i in np.flatnonzero(is_bona) for p in pair_scores[i]])
        pa = np.array([p for i in np.flatnonzero(~is_bona) for p in pair_scores[i]])
        pe, pt = eer(pb, pa)
        print(f"pair-level EER: {pe:.1%} at {pt:.4g} ({len(pb)} bona fide pairs, {len(pa)} attack pairs)")
    if len(bona) == 0:
        print("no bona fide clip with an answer: no ISO/IEC 30107-3 figures")
        return
    thr = threshold_at_bpcer(bona)
    print(f"\nISO/IEC 30107-3 at threshold {thr:.4g} (BPCER {TARGET_BPCER:.0%} on the answered bona fide clips):")
    every = np.mean(score[is_bona] < thr)
    print(f"  BPCER (answered bona fide) {np.mean(bona < thr):.1%}; BPCER all bona fide {every:.1%}")
    worst = 0.0
    for t in types:
        idx = np.array([r["attack_type"] == t for r in rows])
        if rows_label(rows, t) == BONA_FIDE:
            print(f"  {t:<12} BPCER {np.mean(score[idx] < thr):6.1%} of {idx.sum()}")
        else:
            apcer = float(np.mean(score[idx] >= thr))
            worst = max(worst, apcer)
            print(f"  {t:<12} APCER {apcer:6.1%} of {idx.sum()}")
    print(f"  APCER (worst attack type) {worst:.1%}")
    per_subject(rows, score, thr)


def per_subject(rows: list[dict], score: np.ndarray, thr: float, show: int = 15) -> None:
    """At the threshold, per subject: bona fide clips refused and attack clips accepted. Errors
    are systematic per person and scene, not frame noise, so the worst subjects are listed."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.get("subject"):
            by[r["subject"]].append(i)
    if not by:
        return
    table = []
    for subject, idx in by.items():
        bona = [i for i in idx if rows[i]["label"] == BONA_FIDE]
        attack = [i for i in idx if rows[i]["label"] != BONA_FIDE]
        refused = sum(score[i] < thr for i in bona)
        accepted = sum(score[i] >= thr for i in attack)
        table.append((refused + accepted, subject, len(bona), refused, len(attack), accepted))
    wrong = sorted((t for t in table if t[0]), key=lambda t: (-t[0], t[1]))
    print(f"\n  per subject: {len(wrong)} of {len(table)} subjects with an error at this threshold", end="")
    print(f" (the {min(show, len(wrong))} worst below)" if wrong else "")
    if wrong:
        print(f"  {'subject':<28} {'bona fide':>9} {'refused':>8} {'attacks':>8} {'accepted':>9}")
        for _, subject, nb, refused, na, accepted in wrong[:show]:
            print(f"  {subject[:28]:<28} {nb:>9} {refused:>8} {na:>8} {accepted:>9}")


def rows_label(rows: list[dict], attack_type: str) -> str:
    return next(r["label"] for r in rows if r["attack_type"] == attack_type)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--gap", type=int, default=motion.GAP, help="frames between the two sets of a pair")
    ap.add_argument("--min-motion", type=float, default=motion.MIN_MOTION, help="displacement / face size")
    ap.add_argument("--min-pairs", type=int, default=motion.MIN_PAIRS, help="pairs that moved enough, for an answer")
    ap.add_argument("--frame-score", action="append", default=[], metavar="MODULE:FUNCTION")
    ap.add_argument("--passive", action="store_true", help="also score every frame with the shipped passive model")
    ap.add_argument("--limit", type=int, default=0, help="at most this many clips of each attack type (0: all)")
    ap.add_argument("--dump", type=Path, help="save every clip's landmark track (npz) for later analysis")
    ap.add_argument("--load", type=Path, help="read the landmark tracks from a --dump file instead of the clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rows = read_labels(args.folder)
    if args.limit:
        seen: dict[str, int] = defaultdict(int)
        kept = []
        for r in rows:
            if seen[r["attack_type"]] < args.limit:
                seen[r["attack_type"]] += 1
                kept.append(r)
        rows = kept
    sys.path.insert(0, str(ROOT / "scripts" / "eval"))
    frame_scores = dict(load_frame_score(s) for s in args.frame_score)
    if args.passive:
        from edge.vision.liveness import Liveness

        frame_scores["passive"] = Liveness.open(threads=1).get
    loaded = np.load(args.load) if args.load else None
    if loaded is not None and frame_scores:
        raise SystemExit("--frame-score needs the clips, not --load")
    engine = None if loaded is not None else engine_from_config(Config())
    cost: dict[str, list[float]] = defaultdict(list)
    planarity: list[float | None] = []
    pairs: list[list[float]] = []
    clip_frame_scores: dict[str, list[float | None]] = {name: [] for name in frame_scores}
    tracks = {}
    start = time.perf_counter()
    n_frames = faces = 0
    for done, row in enumerate(rows, 1):
        if loaded is not None:
            saved = loaded[row["clip"].replace("/", "__")]
            result = {"track": [None if np.isnan(p).any() else p for p in saved], "scores": {}}
        else:
            result = run_clip(engine, args.folder / row["clip"], frame_scores, cost)
        track = result["track"]
        n_frames += len(track)
        faces += sum(p is not None for p in track)
        t = time.perf_counter()
        fits = motion.pair_fits(track, args.gap)
        planarity.append(motion.aggregate(fits, args.min_motion, args.min_pairs))
        cost["planarity"].append((time.perf_counter() - t) / max(len(track), 1))
        pairs.append([f.planarity for f in fits if f.enough(args.min_motion)])
        for name, values in result["scores"].items():
            clip_frame_scores[name].append(float(np.mean(values)) if values else None)
        if args.dump:
            tracks[row["clip"]] = np.stack([np.full((468, 2), np.nan) if p is None else p for p in track])
        if done % 25 == 0:
            log.info("%d/%d clips, %.0f s", done, len(rows), time.perf_counter() - start)

    print(
        f"{len(rows)} clips, {n_frames} frames, a face in {faces} ({faces / max(n_frames, 1):.1%}); gap {args.gap}, "
        f"min motion {args.min_motion}, min pairs {args.min_pairs}; {time.perf_counter() - start:.0f} s"
    )
    report("planarity (residual / displacement of the landmark homography)", rows, planarity, pairs)
    for name, scores in clip_frame_scores.items():
        report(f"{name} (mean per-frame score)", rows, scores, None)
    print("\ncost per frame (ms): " + ", ".join(
        f"{name} {1000 * float(np.mean(v)):.2f}" for name, v in cost.items() if v))  # fmt: skip
    if args.dump:
        np.savez_compressed(args.dump, **{k.replace("/", "__"): v for k, v in tracks.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
