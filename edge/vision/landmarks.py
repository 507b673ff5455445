"""FaceMesh: true five alignment points (eye centres, nose tip, mouth corners).

BlazeFace gives only the mouth *centre*; the ArcFace template wants both mouth
corners. FaceMesh (468 landmarks on a 192×192 crop) supplies them. The crop is
MediaPipe's: the detection box, squared and enlarged 1.5×, rotated so the eye
line is horizontal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.runtime import Model
    from edge.vision.detector import Detection

INPUT = 192
SCALE = 1.5
# FaceMesh indices; "image-left" is the subject's right in an unmirrored photo.
EYE_IMAGE_LEFT = (33, 133)
EYE_IMAGE_RIGHT = (362, 263)
NOSE_TIP = 1
MOUTH_IMAGE_LEFT = 61
MOUTH_IMAGE_RIGHT = 291


class FaceMesh:
    """FaceMesh model: `infer` gives 468 (x, y) landmarks in image pixels."""

    def __init__(self, model: Model) -> None:
        self.model = model
        spec = model.inputs[0]
        if spec.shape != (1, INPUT, INPUT, 3):
            raise ValueError(f"FaceMesh wants a [1,192,192,3] input, model has {spec.shape}")
        # The landmark tensor is the one with 1404 = 468 × 3 values.
        self._landmarks = next(o.name for o in model.outputs if int(np.prod(o.shape)) == 468 * 3)

    @staticmethod
    def crop_transform(detection: Detection) -> np.ndarray:
        """2×3 affine from image pixels into the 192×192 model crop."""
        x, y, w, h = detection.box
        right_eye, left_eye = detection.keypoints[0], detection.keypoints[1]  # image-left, image-right
        angle = math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
        size = max(w, h) * SCALE
        centre = (x + w / 2, y + h / 2)
        m = cv2.getRotationMatrix2D(centre, angle, INPUT / size)
        m[:, 2] += (INPUT / 2 - centre[0], INPUT / 2 - centre[1])
        return m

    def infer(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        m = self.crop_transform(detection)
        crop = cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out = self.model.run(crop[None].astype(np.float32) / 255.0)[self._landmarks]
        xy = out.reshape(468, 3)[:, :2]
        inverse = cv2.invertAffineTransform(m)
        return xy @ inverse[:, :2].T + inverse[:, 2]

    def five_points(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """(5, 2): image-left eye, image-right eye, nose tip, image-left and image-right mouth corner."""
        pts = self.infer(rgb, detection)
        return np.stack(
            [
                pts[list(EYE_IMAGE_LEFT)].mean(axis=0),
                pts[list(EYE_IMAGE_RIGHT)].mean(axis=0),
                pts[NOSE_TIP],
                pts[MOUTH_IMAGE_LEFT],
                pts[MOUTH_IMAGE_RIGHT],
            ]
        ).astype(np.float32)
