#!/usr/bin/env python3
"""Accuracy ablation on lfw-dev: what each choice of the face path is worth.

    python scripts/eval/ablation.py [--lfw ../shared/data/lfw-dev] [--out docs/accuracy-ablation.json]

Runs every pairs.csv photo once through detection and both landmark sources,
embeds each crop with every embedder, mirrored and not, and then scores every
recipe (embedders × alignment × flip) the same way `edge evaluate` does:
10-fold pair accuracy (a missed face is an error) and TAR at FAR 1e-3 / 1e-4 /
1e-5 over all cross-identity pairs of those photos. Prints a table; the
figures go to docs/accuracy.md by hand, with what was chosen and why.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.evaluation import kfold_accuracy, tar_at_far  # noqa: E402
from edge.runtime import open_model  # noqa: E402
from edge.vision.align import align, points_from_detection  # noqa: E402
from edge.vision.detector import FaceDetector  # noqa: E402
from edge.vision.embedder import Embedder  # noqa: E402
from edge.vision.landmarks import FaceMesh, five_points_of  # noqa: E402

EMBEDDERS = ("mobilefacenet", "fr_feature")


def figures(emb: np.ndarray, found: np.ndarray, photos: list[Path], pairs) -> dict:
    """Pair accuracy and TAR at FAR; `found[i]` False means photo i had no face."""
    index = {p: i for i, p in enumerate(photos)}
    ia = np.array([index[a] for a, _, _, _ in pairs])
    ib = np.array([index[b] for _, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    folds = np.array([f for *_, f in pairs]) * 2 + (np.arange(len(pairs)) % 2)
    missed = ~(found[ia] & found[ib])
    acc, _ = kfold_accuracy(np.sum(emb[ia] * emb[ib], axis=1), same, folds, missed)
    who = np.array([p.parent.name for p in photos])
    ok = np.flatnonzero(found)
    sims = emb[ok] @ emb[ok].T
    iu = np.triu_indices(len(ok), 1)
    s = sims[iu]
    g = (who[ok][:, None] == who[ok][None, :])[iu]
    _, counts = np.unique(who, return_counts=True)
    genuine_total = int(sum(c * (c - 1) // 2 for c in counts))
    genuine = np.concatenate([s[g], np.full(genuine_total - int(g.sum()), -np.inf)])
    out = {"pair_accuracy": acc, "missed_photos": int((~found).sum())}
    for far in (1e-3, 1e-4, 1e-5):
        out[f"tar@{far:.0e}"] = tar_at_far(genuine, s[~g], far)[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy-ablation.json")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "ablation.npz")
    args = ap.parse_args()

    with open(args.lfw / "pairs.csv") as fh:
        pairs = [
            (args.lfw / r["img_a"], args.lfw / r["img_b"], r["same"] == "1", int(r["fold"])) for r in csv.DictReader(fh)
        ]
    photos = sorted({p for a, b, *_ in pairs for p in (a, b)})

    if args.cache.exists():
        cached = np.load(args.cache)
        emb, found = dict(cached), cached["found"]
    else:
        detector = FaceDetector.open("both")
        mesh = FaceMesh(open_model("face_mesh"))
        embedders = {k: Embedder.open(k) for k in EMBEDDERS}
        emb = {}
        found = np.zeros(len(photos), bool)
        crops = {"4pt": [], "5pt": []}
        start = time.perf_counter()
        for i, path in enumerate(photos):
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            faces = detector.detect(rgb)
            if faces:
                face = max(faces, key=lambda d: d.area)
                found[i] = True
                crops["4pt"].append(align(rgb, points_from_detection(face)))
                crops["5pt"].append(align(rgb, five_points_of(mesh.infer(rgb, face))))
            else:
                crops["4pt"].append(np.zeros((112, 112, 3), np.uint8))
                crops["5pt"].append(np.zeros((112, 112, 3), np.uint8))
            if (i + 1) % 500 == 0:
                print(f"  {i + 1}/{len(photos)} photos, {time.perf_counter() - start:.0f} s", flush=True)
        for (key, e), (align_name, c) in itertools.product(embedders.items(), crops.items()):
            c = np.stack(c)
            emb[f"{key}|{align_name}|plain"] = e.infer(c)
            emb[f"{key}|{align_name}|mirror"] = e.infer(np.ascontiguousarray(c[:, :, ::-1]))
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.cache, found=found, **emb)

    def recipe(models: tuple[str, ...], align_name: str, flip: bool) -> np.ndarray:
        parts = []
        for m in models:
            e = emb[f"{m}|{align_name}|plain"]
            if flip:
                e = e + emb[f"{m}|{align_name}|mirror"]
                e = e / np.linalg.norm(e, axis=1, keepdims=True)
            parts.append(e)
        return np.concatenate(parts, axis=1) / np.sqrt(len(parts))

    rows = []
    for models in (("mobilefacenet",), ("fr_feature",), EMBEDDERS):
        for align_name in ("4pt", "5pt"):
            for flip in (False, True):
                f = figures(recipe(models, align_name, flip), found, photos, pairs)
                rows.append({"embedders": "+".join(models), "alignment": align_name, "flip": flip, **f})
                print(
                    f"{'+'.join(models):<27} {align_name} flip={flip!s:<5} acc {100 * f['pair_accuracy']:.2f} %  "
                    f"TAR@1e-3 {100 * f['tar@1e-03']:.2f}  @1e-4 {100 * f['tar@1e-04']:.2f}  "
                    f"@1e-5 {100 * f['tar@1e-05']:.2f}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"photos": len(photos), "pairs": len(pairs), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
