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
