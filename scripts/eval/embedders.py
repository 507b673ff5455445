#!/usr/bin/env python3
"""Embedders alone and fused on lfw-dev: MobileFaceNet, fr_feature, SFace and every combination.

    python scripts/eval/embedders.py [--lfw ../shared/data/lfw-dev] [--embedders mobilefacenet fr_feature sface]

1. Every lfw-dev photo (labels.csv) once through the engine's own face path -- the
   detector `verify` uses (cascade), the largest face, FaceMesh 5-point alignment
   (`Engine.align_face`) -- and its crop embedded by each shipped embedder. Crops and
   embeddings are cached under .cache/eval_embedders/ (keyed by the models' sha256),
   so a second run only scores.
2. Every combination of the embedders (alone, pairs, all) scored on pairs.csv as
   `edge evaluate` scores the engine: 10-fold pair accuracy (`edge.evaluation.read_pairs`
   folds; a missed face is an error) and TAR at FAR 1e-3 / 1e-4 / 1e-5 with every
   cross-identity pair of the pairs.csv photos as an impostor (`kfold_accuracy`,
   `tar_at_far`). Fusion is the engine's: the mean of the per-model cosines.
3. One crop timed per embedder in LiteRT, with 1 thread and with the engine's default
   thread count (interleaved rounds, median); a combination costs the sum of its members.

Prints a table (docs/accuracy.md quotes it) and writes it as JSON with --json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.engine import Engine, EngineConfig, _default_threads  # noqa: E402
from edge.evaluation import genuine_and_impostor, identities, read_pairs, verification_figures  # noqa: E402
from edge.runtime import model_info  # noqa: E402
from edge.vision.embedder import Embedder  # noqa: E402

EMBEDDERS = ("mobilefacenet", "fr_feature", "sface")
FARS = (1e-3, 1e-4, 1e-5)


def log(msg: str) -> None:
    print(f"[embedders {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_photos(lfw: Path) -> list[Path]:
    with open(lfw / "labels.csv", newline="") as fh:
        return sorted(lfw / r["image"] for r in csv.DictReader(fh))


def aligned_crops(engine: Engine, photos: list[Path], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, 112, 112, 3) uint8 crops of each photo's largest face, and which photos had one."""
    key = hashlib.sha256("\n".join(str(p) for p in photos).encode()).hexdigest()[:12]
    path = cache / f"crops_{key}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["crops"], data["found"]
    crops = np.zeros((len(photos), 112, 112, 3), np.uint8)
    found = np.zeros(len(photos), bool)
    start = time.perf_counter()
    for i, photo in enumerate(photos):
        rgb = engine.load(photo).rgb
        # As `Engine.faces(max_faces=1)`, which `verify` and `edge evaluate` use.
        faces = sorted(engine.largest_face_detector.detect(rgb), key=lambda d: d.area, reverse=True)
        if faces:
            crops[i] = engine.align_face(rgb, faces[0], quality=False).crop
            found[i] = True
        if (i + 1) % 1000 == 0:
            log(f"aligned {i + 1}/{len(photos)} photos, {time.perf_counter() - start:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, crops=crops, found=found)
    return crops, found


def embeddings(key: str, crops: np.ndarray, found: np.ndarray, cache: Path) -> np.ndarray:
    """(n, dim) unit embeddings of the crops by one shipped embedder (zeros where no face)."""
    digest = model_info(key)["sha256"][:12]
    path = cache / f"emb_{key}_{digest}_{len(crops)}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    emb = np.zeros((len(crops), Embedder.open(key).dim), np.float32)
    emb[found] = Embedder.open(key, threads=1).infer(crops[found])
    log(f"{key}: {int(found.sum())} crops embedded in {time.perf_counter() - start:.0f} s")
    np.save(path, emb)
    return emb


def score(parts: list[np.ndarray], photos: list[Path], found: np.ndarray, lfw: Path) -> dict:
    """`edge evaluate`'s figures for the fusion of `parts` (each (n, dim) unit embeddings of `photos`).

    The fused similarity is the engine's: the mean of the per-model cosines, which is the dot
    product of the concatenated unit vectors scaled by 1/√k.
    """
    emb = np.concatenate(parts, axis=1) / np.sqrt(len(parts))
    pairs, same, folds = read_pairs(lfw / "pairs.csv", lfw)
    index = {p: i for i, p in enumerate(photos)}
    ia = np.array([index[a] for a, _ in pairs])
    ib = np.array([index[b] for _, b in pairs])
    missed = ~(found[ia] & found[ib])
    # Every pair of the pairs.csv photos: genuine when the same person; a photo without a
    # face loses its genuine pairs (counted as misses) and its impostor pairs.
    held_out = np.array(sorted({index[p] for pair in pairs for p in pair}))
    who = np.array(identities([photos[i] for i in held_out], lfw))
    ok = found[held_out]
    genuine, impostor = genuine_and_impostor(emb[held_out], who, ok)
    return {
        "photos": len(held_out),
        "photos_without_face": int((~ok).sum()),
        **verification_figures(np.sum(emb[ia] * emb[ib], axis=1), same, folds, missed, genuine, impostor),
    }


def time_crop(keys: tuple[str, ...], crop: np.ndarray, threads: int, rounds: int, per_round: int = 10) -> dict:
    """Median ms per crop of each embedder's `infer` (normalisation included), interleaved."""
    models = {k: Embedder.open(k, threads=threads) for k in keys}
    for e in models.values():
        for _ in range(5):
            e.infer(crop)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(rounds):
        for k, e in models.items():
            start = time.perf_counter()
            for _ in range(per_round):
                e.infer(crop)
            samples[k].append((time.perf_counter() - start) / per_round * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--embedders", nargs="+", default=list(EMBEDDERS))
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "eval_embedders")
    ap.add_argument("--rounds", type=int, default=15, help="timing rounds (10 crops each)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    keys = tuple(args.embedders)

    photos = load_photos(args.lfw)
    # The engine's face path (detector, FaceMesh, alignment); its embedders are not used here.
    engine = Engine(EngineConfig.profile("accurate", embedders=keys[:1], threads=1), require_calibration=False)
    log(f"{len(photos)} lfw-dev photos; aligning (cached in {args.cache})")
    crops, found = aligned_crops(engine, photos, args.cache)
    emb = {k: embeddings(k, crops, found, args.cache) for k in keys}

    default_threads = _default_threads()
    crop = crops[int(np.flatnonzero(found)[0])]
    ms = {
        1: time_crop(keys, crop, 1, args.rounds),
        default_threads: time_crop(keys, crop, default_threads, args.rounds),
    }

    rows = []
    for k in range(1, len(keys) + 1):
        for combo in itertools.combinations(keys, k):
            f = score([emb[c] for c in combo], photos, found, args.lfw)
            f["embedders"] = list(combo)
            f["dim"] = int(sum(emb[c].shape[1] for c in combo))
            f["ms_per_crop"] = {str(t): sum(v[c] for c in combo) for t, v in ms.items()}
            rows.append(f)
            log(f"{' + '.join(combo)}: {f['pair_accuracy']:.4f}, TAR@1e-4 {f['tar_at_far']['1e-04']:.4f}")

    first = rows[0]
    threads_label = f"{default_threads} threads"
    print(
        f"lfw-dev: {first['photos']} pairs.csv photos ({first['photos_without_face']} without a face), "
        f"{first['pairs']} pairs ({first['pairs_missed']} missed); {first['genuine_pairs']:,} genuine and "
        f"{first['impostor_pairs']:,} impostor pairs; fusion = mean of the cosines; ms = LiteRT, one aligned "
        f"crop, sum over the embedders"
    )
    print()
    print(
        f"| embedders | dim | pair accuracy (10-fold) | TAR @1e-3 | TAR @1e-4 | TAR @1e-5 | ms/crop 1 thread | "
        f"ms/crop {threads_label} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["tar_at_far"]
        print(
            f"| {' + '.join(r['embedders'])} | {r['dim']} | {100 * r['pair_accuracy']:.2f} % ± "
            f"{100 * r['pair_accuracy_std']:.2f} | {100 * t['1e-03']:.2f} % | {100 * t['1e-04']:.2f} % | "
            f"{100 * t['1e-05']:.2f} % | {r['ms_per_crop']['1']:.2f} | {r['ms_per_crop'][str(default_threads)]:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads_default": default_threads, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
