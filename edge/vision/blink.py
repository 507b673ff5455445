"""Eye openness from eyelid-aware landmarks: the measurement a blink cue is made of.

FaceMesh's own eye points do not follow the eyelids (on labelled lfw-dev photos their eye
aspect ratio separates closed eyes from open ones no better than chance: AUC 0.57,
docs/liveness.md "Blink cue"), so each eye is given to MediaPipe's iris landmark model
(``iris_landmark``, shipped as MediaPipe built it), fed as MediaPipe feeds it
(``iris_landmark_landmarks_to_roi``):

* the eye's two FaceMesh corners (33 → 133 for the image-left eye, 362 → 263 for the
  image-right one) give the crop: their bounding box's longer side × 2.3, a square centred
  on the corners' midpoint, rotated so the corner line is horizontal, resampled (bilinear,
  the frame's edge repeated outside it) to 64×64; the image-right eye is mirrored so both
  look like a left eye to the model;
* RGB, x / 255, NHWC;
* the first output holds 71 points (x, y, z) in crop pixels: 0–8 the lower eyelid corner to
  corner, 9–15 the upper eyelid between the corners, then brows and halo rings.

**eye_openness** of one eye = the mean distance between the upper and the lower eyelid
over the 7 facing point pairs ÷ the corner-to-corner distance (scale-free; measured on the
model's own points, so the crop's rotation and mirroring cancel). The face's value is the
mean of its two eyes. Open eyes read about 0.2 (0.19–0.24 for the middle half of labelled
open faces), closed ones about 0.1; eyes narrowed by a smile or looking down fall between.

This module measures; it decides nothing. A blink is a temporal event (open → closed →
open within about half a second) and is for the caller to find in a track's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.runtime import Model

MODEL_KEY = "iris_landmark"
MEASUREMENT = "eye_openness"
INPUT_SIZE = 64
SCALE = 2.3
# FaceMesh corner pairs, (start, end) as MediaPipe orders them; the second eye is mirrored.
EYE_CORNERS = ((33, 133), (362, 263))
CONTOUR_POINTS = 71
LOWER_LID = slice(1, 8)  # between the corners (0 and 8)
UPPER_LID = slice(9, 16)  # above LOWER_LID, point for point
FACEMESH_POINTS = 468


@dataclass(frozen=True)
class EyeOpenness:
    """Both eyes of one face. ``left``/``right`` are the image-left and image-right eye
    (the subject's right and left in an unmirrored frame); ``width_px`` each eye's
    corner-to-corner width in frame pixels (how much detail the model had)."""

    left: float
    right: float
    width_px: tuple[float, float]

    @property
    def value(self) -> float:
        """The face's eye_openness: the mean of the two eyes."""
        return (self.left + self.right) / 2


def crop_transform(landmarks: np.ndarray, eye: int) -> np.ndarray:
    """2×3 affine from frame pixels into the 64×64 crop of eye 0 (image-left) or 1 (image-right, mirrored)."""
    a, b = (np.asarray(landmarks[i, :2], np.float64) for i in EYE_CORNERS[eye])
    side = max(abs(b[0] - a[0]), abs(b[1] - a[1])) * SCALE
    if not side > 0:
        raise ValueError(f"eye {eye}: its FaceMesh corners coincide ({a.tolist()}, {b.tolist()})")
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    c, s = math.cos(angle), math.sin(angle)
    k = INPUT_SIZE / side
    m = np.array([[c, s], [-s, c]]) * k  # rotate by -angle: the corner line becomes horizontal
    if eye == 1:
        m[0] *= -1  # mirrored, as MediaPipe flips the right eye
    t = INPUT_SIZE / 2 - m @ ((a + b) / 2)
    return np.hstack([m, t[:, None]])


def openness_of(contour: np.ndarray) -> float:
    """Eye contour points (at least the first 16, (x, y) in any one frame) → lid distance / eye width."""
    pts = np.asarray(contour, np.float64)[:, :2]
    width = float(np.linalg.norm(pts[8] - pts[0]))
    if not width > 0:
        return math.nan
    return float(np.linalg.norm(pts[UPPER_LID] - pts[LOWER_LID], axis=1).mean() / width)


def _landmarks_of(face) -> np.ndarray:
    pts = np.asarray(getattr(face, "landmarks", face))
    if pts.ndim != 2 or pts.shape[0] != FACEMESH_POINTS or pts.shape[1] < 2:
        raise ValueError(f"expected FaceMesh's (468, 2) landmarks or a MeshResult, got shape {pts.shape}")
    if not np.isfinite(pts[[i for pair in EYE_CORNERS for i in pair], :2]).all():
        raise ValueError("the FaceMesh eye corners are not finite")
    return pts


class Blink:
    """The eyelid stage: `get(frame, face)` → the face's eye_openness (see the module text)."""

    def __init__(self, model: Model, *, name: str = "") -> None:
        self.model = model
        self.name = name or model.path.stem
        shape = model.inputs[0].shape
        if shape != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"{self.name}: expected an NHWC 1×64×64×3 input, got {shape}")
        contour = [o.name for o in model.outputs if int(np.prod(o.shape)) == CONTOUR_POINTS * 3]
        if len(contour) != 1:
            raise ValueError(f"{self.name}: expected one output of {CONTOUR_POINTS}×3 values, outputs {model.outputs}")
        self._contour = contour[0]

    @classmethod
    def open(cls, key: str = MODEL_KEY, *, threads: int = 1, directory=None) -> Blink:
        from edge.runtime import open_model

        return cls(open_model(key, threads=threads, directory=directory), name=key)

    @staticmethod
    def crop(img_rgb: np.ndarray, face, eye: int) -> np.ndarray:
        """The 64×64 RGB uint8 crop the model is fed for eye 0 (image-left) or 1 (image-right, mirrored)."""
        rgb = np.ascontiguousarray(_frame(img_rgb)[..., :3])
        m = crop_transform(_landmarks_of(face), eye)
        return cv2.warpAffine(rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def contour(self, crop_rgb: np.ndarray) -> np.ndarray:
        """(71, 3) eye-contour points in crop pixels for one 64×64 RGB crop."""
        out = self.model.run(np.asarray(crop_rgb, np.float32)[None] / 255.0)
        return out[self._contour].reshape(CONTOUR_POINTS, 3)

    def eyes(self, img_rgb: np.ndarray, face) -> EyeOpenness:
        """Both eyes of the face whose FaceMesh landmarks (or MeshResult) are `face`, in an RGB frame."""
        _frame(img_rgb)
        pts = _landmarks_of(face)
        values, widths = [], []
        for eye in (0, 1):
            values.append(openness_of(self.contour(self.crop(img_rgb, pts, eye))))
            a, b = EYE_CORNERS[eye]
            widths.append(float(np.linalg.norm(pts[b, :2] - pts[a, :2])))
        return EyeOpenness(values[0], values[1], (widths[0], widths[1]))

    def get(self, img_rgb: np.ndarray, face) -> float:
        """The face's eye_openness: mean eyelid distance / eye width of its two eyes."""
        return self.eyes(img_rgb, face).value


def _frame(img_rgb) -> np.ndarray:
    img = np.asarray(img_rgb)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {img.dtype} {img.shape}")
    return img
