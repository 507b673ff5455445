"""Faces followed across frames, so a decision is about one person, not one frame.

Association per frame, greedy (a door camera sees a handful of faces, so an optimal
assignment would buy nothing):

1. pairs of (track, face) by box IoU, highest first, while IoU ≥ `iou`;
2. for what is left, by centre distance, nearest first, while the centre moved at most
   `max_shift` × the larger box width and the widths differ by less than 2× (a face
   moving fast between two frames overlaps its old box little, but stays close);
3. every face still unmatched starts a new track (ids count up from 1).

A track not seen for more than `max_age` frames ends; its id is never reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h


@dataclass(eq=False)
class Track:
    id: int
    box: Box
    first_seen: float  # frame time (pts) of the first frame
    last_seen: float
    first_frame: int  # frame index
    hits: int = 1  # frames with this face
    misses: int = 0  # frames in a row without it
    data: dict[str, Any] = field(default_factory=dict)  # the loop's per-track scratch


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box in a (n, 4) against every one in b (m, 4) → (n, m)."""
    ax0, ay0 = a[:, 0:1], a[:, 1:2]
    ax1, ay1 = ax0 + a[:, 2:3], ay0 + a[:, 3:4]
    bx0, by0 = b[:, 0], b[:, 1]
    bx1, by1 = bx0 + b[:, 2], by0 + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


class Tracker:
    def __init__(self, *, iou: float = 0.3, max_shift: float = 0.5, max_age: int = 10) -> None:
        self.iou = float(iou)
        self.max_shift = float(max_shift)
        self.max_age = int(max_age)
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: Sequence[Box], t: float = 0.0, frame: int = 0) -> tuple[list[Track], list[Track]]:
        """Assign this frame's boxes to tracks.

        Returns (the track of each box, in `boxes` order; the tracks that ended now).
        """
        n, m = len(self.tracks), len(boxes)
        assigned: list[Track | None] = [None] * m
        used: set[int] = set()
        if n and m:
            tb = np.array([tr.box for tr in self.tracks], dtype=np.float64)
            bb = np.array(boxes, dtype=np.float64)
            ious = iou_matrix(tb, bb)
            for flat in np.argsort(-ious, axis=None):
                i, j = divmod(int(flat), m)
                if ious[i, j] < self.iou or ious[i, j] <= 0:
                    break
                if i in used or assigned[j] is not None:
                    continue
                used.add(i)
                assigned[j] = self.tracks[i]
            if self.max_shift > 0 and len(used) < n and any(a is None for a in assigned):
                tc = tb[:, :2] + tb[:, 2:] / 2
                bc = bb[:, :2] + bb[:, 2:] / 2
                dist = np.linalg.norm(tc[:, None, :] - bc[None, :, :], axis=2)
                wider = np.maximum(tb[:, 2:3], bb[None, :, 2])
                narrower = np.maximum(np.minimum(tb[:, 2:3], bb[None, :, 2]), 1e-6)
                ok = (dist <= self.max_shift * wider) & (wider / narrower < 2.0)
                for flat in np.argsort(dist, axis=None):
                    i, j = divmod(int(flat), m)
                    if not ok[i, j] or i in used or assigned[j] is not None:
                        continue
                    used.add(i)
                    assigned[j] = self.tracks[i]
        out: list[Track] = []
        for j, box in enumerate(boxes):
            tr = assigned[j]
            box = tuple(float(v) for v in box)
            if tr is None:
                tr = Track(self._next_id, box, t, t, frame)
                self._next_id += 1
                self.tracks.append(tr)
            else:
                tr.box, tr.last_seen, tr.hits, tr.misses = box, t, tr.hits + 1, 0
            out.append(tr)
        ended = []
        seen = {id(tr) for tr in out}
        for tr in self.tracks:
            if id(tr) not in seen:
                tr.misses += 1
                if tr.misses > self.max_age:
                    ended.append(tr)
        if ended:
            gone = {id(tr) for tr in ended}
            self.tracks = [tr for tr in self.tracks if id(tr) not in gone]
        return out, ended

    def clear(self) -> list[Track]:
        """End every track (the loop stops); returns them."""
        ended, self.tracks = self.tracks, []
        return ended
