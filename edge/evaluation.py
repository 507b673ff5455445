"""Verification metrics on labelled pairs: k-fold accuracy and TAR at a given FAR.

Shared by the model build (quantized against float) and `edge evaluate`, so both
report figures computed the same way.
"""

from __future__ import annotations

import numpy as np


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy on (scores, same); midpoint between neighbours."""
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(bool)
    # Accuracy when everything at index >= i is called "same".
    tp_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    tn_below = np.concatenate([[0], np.cumsum(~y)])
    correct = tp_above + tn_below
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def kfold_accuracy(
    scores: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray | int = 10,
    missed: np.ndarray | None = None,
) -> tuple[float, float]:
    """LFW protocol: per fold, pick the threshold on the other folds, score this one.

    `folds` is a per-pair fold id, or a count (pairs dealt round-robin). Pairs
    flagged in `missed` (a face was not found) take no part in choosing a
    threshold and always count as errors. Returns (mean accuracy, std), fractions.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same).astype(bool)
    missed = np.zeros(len(scores), bool) if missed is None else np.asarray(missed, bool)
    if np.ndim(folds) == 0:
        folds = np.arange(len(scores)) % int(folds)
    folds = np.asarray(folds)
    accs = []
    for f in np.unique(folds):
        test = folds == f
        train = ~test & ~missed
        t = best_threshold(scores[train], same[train])
        correct = ((scores[test] > t) == same[test]) & ~missed[test]
        accs.append(np.mean(correct))
    return float(np.mean(accs)), float(np.std(accs))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """True-accept rate at the threshold where the impostor accept rate is `far`.

    Returns (tar, threshold). Scores strictly above the threshold are accepted.
    """
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    k = int(np.floor(far * len(impostor)))  # impostors allowed above the threshold
    if k >= len(impostor):
        threshold = float(impostor[0]) - 1e-9
    else:
        threshold = float(impostor[len(impostor) - 1 - k])
    genuine = np.asarray(genuine, dtype=np.float64)
    return float(np.mean(genuine > threshold)), threshold


# --- `edge evaluate`: an engine on a pairs file ----------------------------------------------


def read_pairs(pairs_csv, root) -> tuple[list, np.ndarray, np.ndarray]:
    """pairs.csv (img_a, img_b, same[, fold]) → (pairs of paths, same, 10-fold ids).

    With a `fold` column of k folds, each fold is dealt into ceil(10 / k) parts
    so there are ten; without one, pairs are dealt round-robin into ten.
    """
    import csv
    from pathlib import Path

    root = Path(root)
    with open(pairs_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"img_a", "img_b", "same"} <= set(rows[0]):
        raise ValueError(f"{pairs_csv}: expected a CSV with columns img_a, img_b, same[, fold]")
    pairs = [(root / r["img_a"], root / r["img_b"]) for r in rows]
    same = np.array([str(r["same"]).strip() in ("1", "true", "True") for r in rows])
    if "fold" in rows[0]:
        fold = np.array([int(r["fold"]) for r in rows])
        k = len(np.unique(fold))
        parts = int(np.ceil(10 / k))
        rank = np.zeros(len(rows), int)
        for f in np.unique(fold):
            idx = np.flatnonzero(fold == f)
            rank[idx] = np.arange(len(idx)) % parts
        folds = fold * parts + rank
    else:
        folds = np.arange(len(rows)) % 10
    return pairs, same, folds


def identities(photos, root) -> list[str]:
    """Who is in each photo: labels.csv (image, identity) in `root` if present, else the folder name."""
    import csv
    from pathlib import Path

    labels = Path(root) / "labels.csv"
    if labels.exists():
        with open(labels, newline="") as fh:
            known = {str(Path(root) / r["image"]): r["identity"] for r in csv.DictReader(fh)}
        return [known.get(str(p), Path(p).parent.name) for p in photos]
    return [Path(p).parent.name for p in photos]


FARS = (1e-2, 1e-3, 1e-4, 1e-5)


def genuine_and_impostor(emb: np.ndarray, who: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw similarities of every same-identity pair (genuine; a photo without a face makes its
    pairs misses, -inf) and of every cross-identity pair of photos with a face (impostor)."""
    ok = np.flatnonzero(found)
    iu = np.triu_indices(len(ok), 1)
    raw = (emb[ok] @ emb[ok].T)[iu]
    genuine_mask = (who[ok][:, None] == who[ok][None, :])[iu]
    _, counts = np.unique(who, return_counts=True)
    genuine_total = int(sum(c * (c - 1) // 2 for c in counts))
    genuine = np.concatenate([raw[genuine_mask], np.full(genuine_total - int(genuine_mask.sum()), -np.inf)])
    return genuine, raw[~genuine_mask]


def verification_figures(pair_scores, same, folds, missed, genuine, impostor) -> dict:
    """The figures `edge evaluate` prints: 10-fold pair accuracy and TAR at each of `FARS`."""
    acc, std = kfold_accuracy(pair_scores, same, folds, missed)
    return {
        "pairs": len(same),
        "pairs_missed": int(missed.sum()),
        "pair_accuracy": acc,
        "pair_accuracy_std": std,
        "genuine_pairs": len(genuine),
        "impostor_pairs": int(len(impostor)),
        "tar_at_far": {f"{far:.0e}": tar_at_far(genuine, impostor, far)[0] for far in FARS},
    }


THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def evaluate_pairs(engine, pairs_csv, root, *, progress=None, limit: int | None = None) -> dict:
    """Run `engine` on every photo of a pairs file; verification figures and calibration check.

    A photo whose face is missed makes its pairs errors (accuracy) and its
    genuine pairs misses (TAR); its impostor pairs are dropped.
    """
    import time

    pairs, same, folds = read_pairs(pairs_csv, root)
    if limit:
        pairs, same, folds = pairs[:limit], same[:limit], folds[:limit]
    photos = sorted({p for pair in pairs for p in pair})
    index = {p: i for i, p in enumerate(photos)}
    emb = np.zeros((len(photos), engine.dim), np.float32)
    found = np.zeros(len(photos), bool)
    errors: dict[str, int] = {}
    start = time.perf_counter()
    for i, path in enumerate(photos):
        try:
            faces = engine.faces(path, max_faces=1, quality=False)  # the largest face, as `verify` uses
        except Exception as exc:  # noqa: BLE001 - an unreadable photo is a miss, counted by kind
            faces = []
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        if faces:
            emb[i] = faces[0].embedding
            found[i] = True
        if progress:
            progress(i + 1, len(photos))
    seconds = time.perf_counter() - start

    ia = np.array([index[a] for a, _ in pairs])
    ib = np.array([index[b] for _, b in pairs])
    missed = ~(found[ia] & found[ib])

    genuine, impostor = genuine_and_impostor(emb, np.array(identities(photos, root)), found)
    genuine_total = len(genuine)
    result = {
        "photos": len(photos),
        "photos_without_face": int((~found).sum()),
        "photo_errors": errors,
        **verification_figures(np.sum(emb[ia] * emb[ib], axis=1), same, folds, missed, genuine, impostor),
        "ms_per_photo": 1000 * seconds / max(len(photos), 1),
    }
    if engine.calibration is not None:
        scores = np.asarray(engine.score(impostor))
        gscores = np.asarray(engine.score(genuine[np.isfinite(genuine)]))
        result["calibration"] = [
            {
                "threshold": t,
                "table_far": 10.0 ** (3 - 10 * t),
                "measured_far": float(np.mean(scores >= t)) if len(scores) else None,
                "impostors_accepted": int(np.sum(scores >= t)),
                "tar": float(np.sum(gscores >= t) / max(genuine_total, 1)),
            }
            for t in THRESHOLDS
        ]
    return result
