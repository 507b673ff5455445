"""Comparing two detectors on the same photo (a re-quantized one against its float source).

Build- and evaluation-time only: `build_models.py` checks that an int8-weight detector still
puts its top box where the float16 one does, and `scripts/eval/eval_detector.py --reference
--candidate` reports the same figures for any pair. Nothing here runs on the device.

Both take `edge.vision.detector.Detection` lists (anything with `score`, `iou()`, `box` as
(x, y, w, h) and `keypoints` (6, 2) will do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.vision.detector import Detection


def _top_pair(ref: Sequence[Detection], cand: Sequence[Detection]) -> tuple[Detection, Detection, float] | None:
    """Best-scoring reference face and the candidate face overlapping it most."""
    if not ref or not cand:
        return None
    top = max(ref, key=lambda d: d.score)
    ious = [top.iou(c) for c in cand]
    best = int(np.argmax(ious))
    return top, cand[best], ious[best]


def match_iou(ref: Sequence[Detection], cand: Sequence[Detection]) -> float:
    """IoU between the reference's top face and the candidate face that overlaps it most.

    1.0 when neither found a face (they agree), 0.0 when only one did. Used to check
    that a re-quantized detector still puts boxes where the float one does.
    """
    pair = _top_pair(ref, cand)
    if pair is None:
        return 1.0 if not ref and not cand else 0.0
    return float(pair[2])


def match_keypoints(ref: Sequence[Detection], cand: Sequence[Detection], *, relative: bool = True) -> float:
    """Mean displacement of the six keypoints between the pair `match_iou` compares.

    In pixels, or (``relative=True``) as a fraction of the reference box width, so
    photos of different sizes are comparable. NaN when either side found no face.
    """
    pair = _top_pair(ref, cand)
    if pair is None:
        return math.nan
    top, other, _ = pair
    shift = float(np.linalg.norm(top.keypoints - other.keypoints, axis=1).mean())
    return shift / top.box[2] if relative and top.box[2] > 0 else shift
