"""Faces followed across frames, so a decision is about one person, not one frame.

Association per frame, greedy (a door camera sees a handful of faces, so an optimal
assignment would buy nothing):

1. pairs of (track, face) by box IoU, highest first, while IoU ≥ `iou`;
2. for what is left, by centre distance, nearest first, while the centre moved at most
   `max_shift` × the larger box width and the widths differ by less than 2× (a face
   moving fast between two frames overlaps its old box little, but stays close);
3. every face still unmatched starts a new track (ids count up from 1).

A track not seen for more than `max_age` frames ends; its id is never reused. The loop
may `split` a track whose face turned out to be someone else's: the old track ends and
the face goes on under a new id, so nothing decided about the old face follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
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
    gap: int = 0  # frames it was missing before its latest hit (0: seen in the frame before)
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


# A face's appearance, frame to frame: its box as a 16×16 grey thumbnail (zero mean, unit
# norm) and its mean colour. The same face one frame later correlates ≥ 0.88 in 99 % of
# jittered frames at 120 px (≥ 0.59 at 60 px); another face put in the same spot at the same
# size correlates at most 0.8 and its colour moves more than 12 levels (240 of 240 lfw-dev
# swaps). A change is only a reason to look again (the loop re-identifies the track), so
# false alarms cost one identification; docs/appliance.md, "Track integrity".
APPEARANCE_SIDE = 16
APPEARANCE_MIN_CORRELATION = 0.8
APPEARANCE_MAX_COLOUR_SHIFT = 12.0
APPEARANCE_MAX_SCALE = 1.25


def appearance(rgb: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(thumbnail, mean colour, width) of the face in `box`; None when the box is off the frame."""
    x, y, w, h = (int(round(v)) for v in box)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    # One area-averaging resize of the colour patch: its grey is the thumbnail, its mean the colour.
    small = cv2.resize(rgb[y0:y1, x0:x1], (APPEARANCE_SIDE, APPEARANCE_SIDE), interpolation=cv2.INTER_AREA)
    colour = small.reshape(-1, 3).mean(axis=0)
    thumb = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    thumb -= thumb.mean()
    thumb /= float(np.linalg.norm(thumb)) + 1e-6
    return thumb, colour, float(max(w, 1))


def appearance_changed(before, after) -> bool:
    """Whether a face's appearance changed abruptly between two frames (see `appearance`)."""
    if before is None or after is None:
        return False
    (t0, c0, w0), (t1, c1, w1) = before, after
    return (
        float(t0 @ t1) < APPEARANCE_MIN_CORRELATION
        or float(np.abs(c0 - c1).max()) > APPEARANCE_MAX_COLOUR_SHIFT
        or max(w0, w1) / min(w0, w1) > APPEARANCE_MAX_SCALE
    )


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
                tr.gap = tr.misses
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

    def split(self, track: Track, t: float, frame: int) -> Track:
        """End `track` and go on with its current box under a new id (a new face took its place)."""
        new = Track(self._next_id, track.box, t, t, frame)
        self._next_id += 1
        self.tracks = [new if tr is track else tr for tr in self.tracks]
        return new

    def clear(self) -> list[Track]:
        """End every track (the loop stops); returns them."""
        ended, self.tracks = self.tracks, []
        return ended
