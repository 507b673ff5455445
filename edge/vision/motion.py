"""Planar-motion cue: does a face move like a flat picture?

A printed photo or a phone screen is a plane: however it is turned, tilted or moved, its image
in one frame maps onto its image in another by one homography (a 3×3 projective transform). A
live head is not flat: when it turns, the nose moves against the cheeks and the ears against the
eyes (parallax), and no homography maps one frame's landmarks onto another's.

**planarity** of a pair of frames (a few frames apart in one track) is

    planarity = RMS residual of the least-squares homography from the first landmark set to the second
                ─────────────────────────────────────────────────────────────────────────────────────
                mean displacement of the landmarks between the two frames

the fraction of the face's motion that no plane explains: ≈ 0 for a picture (up to landmark
noise), larger for a head that turns. It is scale-free (the same at any face size) and a pair only
counts when the face moved enough for it to mean something: a mean displacement of at least
`MIN_MOTION` of the face size (landmark noise alone would make a still face look non-planar).
The track's planarity is the median over its pairs that moved enough; a track with fewer than
`MIN_PAIRS` such pairs has none (`None`: "not enough motion", its own answer, neither live nor attack).

What it cannot see: a live face that only translates, scales (walks towards the door) or rolls
also moves as a plane (weak perspective); only out-of-plane rotation (a head turn or nod) makes
parallax. A bent print is slightly non-planar. So the cue is positive evidence of liveness when
the head turned, never a reason to refuse a still face: it must be combined with a passive cue.

Pure numpy/OpenCV on landmark arrays (FaceMesh's (468, 2) image pixels, or any (N, 2) points
tracked over frames); it knows no model, engine or appliance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

GAP = 4  # frames between the two landmark sets of a pair (≈ 0.27 s at 15 fps)
MIN_MOTION = 0.03  # a pair counts when its mean displacement is at least this fraction of the face size
MIN_PAIRS = 3  # a track needs this many such pairs for an answer (one lucky pair of noise is not one)
MAX_PAIRS = 64  # pairs `PlanarMotion` keeps (the most recent)


@dataclass(frozen=True)
class PairFit:
    """One homography fit between two landmark sets of a track (all in pixels)."""

    residual: float  # RMS distance of the second set from the first set mapped by the fitted homography
    displacement: float  # mean distance each landmark moved between the two sets
    face_size: float  # sqrt(width × height) of the landmarks' bounding box (mean of the two sets)

    @property
    def planarity(self) -> float:
        """Residual / displacement: the share of the motion that no plane explains (0 for a picture)."""
        return self.residual / max(self.displacement, 1e-9)

    @property
    def motion(self) -> float:
        """Displacement / face size: how much the face moved, scale-free."""
        return self.displacement / max(self.face_size, 1e-9)

    def enough(self, min_motion: float = MIN_MOTION) -> bool:
        return self.motion >= min_motion


def face_size(points: np.ndarray) -> float:
    """sqrt(width × height) of the bounding box of (N, 2) points."""
    pts = np.asarray(points, np.float64)[:, :2]
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return float(np.sqrt(max(w, 0.0) * max(h, 0.0)))


def pair_fit(first: np.ndarray, second: np.ndarray) -> PairFit | None:
    """Least-squares homography from `first` to `second` ((N, 2), N ≥ 5, same order); None if it fails."""
    a = np.ascontiguousarray(np.asarray(first, np.float64)[:, :2])
    b = np.ascontiguousarray(np.asarray(second, np.float64)[:, :2])
    if a.shape != b.shape or a.shape[0] < 5:
        raise ValueError(f"expected two equal (N≥5, 2) point sets, got {a.shape} and {b.shape}")
    homography, _ = cv2.findHomography(a, b, 0)
    if homography is None or not np.all(np.isfinite(homography)):
        return None
    mapped = cv2.perspectiveTransform(a[None], homography)[0]
    residual = float(np.sqrt(np.mean(np.sum((mapped - b) ** 2, axis=1))))
    displacement = float(np.mean(np.linalg.norm(b - a, axis=1)))
    return PairFit(residual, displacement, (face_size(a) + face_size(b)) / 2)


def pair_fits(track: Sequence[np.ndarray | None], gap: int = GAP) -> list[PairFit]:
    """Fits of every pair (i, i + gap) of a track's landmark sets; frames without landmarks (None) are skipped."""
    out = []
    for i in range(len(track) - gap):
        a, b = track[i], track[i + gap]
        if a is None or b is None:
            continue
        fit = pair_fit(a, b)
        if fit is not None:
            out.append(fit)
    return out


def aggregate(fits: Iterable[PairFit], min_motion: float = MIN_MOTION, min_pairs: int = MIN_PAIRS) -> float | None:
    """Median planarity of the pairs that moved enough; None ("not enough motion") with fewer than `min_pairs`."""
    values = [f.planarity for f in fits if f.enough(min_motion)]
    return float(np.median(values)) if values and len(values) >= min_pairs else None


def planarity(
    track: Sequence[np.ndarray | None], gap: int = GAP, min_motion: float = MIN_MOTION, min_pairs: int = MIN_PAIRS
) -> float | None:
    """A track's planarity: the median over its pairs `gap` frames apart that moved enough, or None."""
    return aggregate(pair_fits(track, gap), min_motion, min_pairs)


class PlanarMotion:
    """The cue kept up to date frame by frame for one track.

    `push(landmarks)` once per frame (None when the frame had no landmarks for the track) returns
    the new pair's fit (or None); `value` is the track's planarity so far (None: not enough motion).
    """

    def __init__(
        self, gap: int = GAP, min_motion: float = MIN_MOTION, min_pairs: int = MIN_PAIRS, max_pairs: int = MAX_PAIRS
    ) -> None:
        self.gap, self.min_motion, self.min_pairs = gap, min_motion, min_pairs
        self._recent: deque[np.ndarray | None] = deque(maxlen=gap + 1)
        self.fits: deque[PairFit] = deque(maxlen=max_pairs)

    def push(self, landmarks: np.ndarray | None) -> PairFit | None:
        self._recent.append(None if landmarks is None else np.asarray(landmarks, np.float64)[:, :2].copy())
        if len(self._recent) <= self.gap or self._recent[0] is None or self._recent[-1] is None:
            return None
        fit = pair_fit(self._recent[0], self._recent[-1])
        if fit is not None:
            self.fits.append(fit)
        return fit

    @property
    def value(self) -> float | None:
        return aggregate(self.fits, self.min_motion, self.min_pairs)
