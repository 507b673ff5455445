"""FaceMesh: true five alignment points (eye centres, nose tip, mouth corners).

BlazeFace gives only the mouth *centre*; the ArcFace template wants both mouth
corners. FaceMesh (468 landmarks on a 192×192 crop) supplies them. The crop is
MediaPipe's: the detection box, squared and enlarged 1.5×, rotated so the eye
line is horizontal.

The model has a second output, ``conv2d_30`` ([1, 1, 1, 1]): the face-presence logit
(MediaPipe's "face flag", sigmoid → probability that the crop holds a face). `run`
returns it with the landmarks; `edge.vision.quality` can use it as an extra occlusion
cue (see that module for what it is worth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


@dataclass(frozen=True, eq=False)
class MeshResult:
    """One FaceMesh run: 468 landmarks in image pixels and the face-presence score.

    ``landmarks`` (468, 2) float (x, y) in image pixels, exactly what `FaceMesh.infer`
    returns; ``depth`` (468,) the model's relative z in image-pixel scale (smaller = nearer
    the camera); ``presence_logit`` the raw ``conv2d_30`` value and ``presence`` its sigmoid.
    """

    landmarks: np.ndarray
    depth: np.ndarray
    presence_logit: float

    @property
    def presence(self) -> float:
        return presence_probability(self.presence_logit)


def presence_probability(logit: float) -> float:
    """Sigmoid of the presence logit, safe for large magnitudes."""
    logit = float(logit)
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


class FaceMesh:
    """FaceMesh model: `infer` gives 468 (x, y) landmarks in image pixels; `run` adds depth and presence."""

    def __init__(self, model: Model) -> None:
        self.model = model
        spec = model.inputs[0]
        from edge.runtime import ModelShapeError

        if spec.shape != (1, INPUT, INPUT, 3):
            raise ModelShapeError(f"FaceMesh wants a [1,192,192,3] input, model has {spec.shape}")
        # The landmark tensor is the one with 1404 = 468 × 3 values.
        landmarks = [o.name for o in model.outputs if int(np.prod(o.shape)) == 468 * 3]
        if not landmarks:
            raise ModelShapeError(
                f"FaceMesh has an output of 468 × 3 values; {model} has {[o.shape for o in model.outputs]}"
            )
        self._landmarks = landmarks[0]
        # The presence logit is the one-value output (absent from a stripped model: then None).
        self._presence = next((o.name for o in model.outputs if int(np.prod(o.shape)) == 1), None)

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

    def run(self, rgb: np.ndarray, detection: Detection) -> MeshResult:
        """Landmarks (image pixels), their relative depth, and the presence logit (NaN if the model lacks it)."""
        m = self.crop_transform(detection)
        crop = cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        outputs = self.model.run(crop[None].astype(np.float32) / 255.0)
        xyz = outputs[self._landmarks].reshape(468, 3)
        inverse = cv2.invertAffineTransform(m)
        xy = xyz[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        scale = 1.0 / math.sqrt(abs(float(np.linalg.det(m[:, :2]))))  # crop px → image px
        logit = float(outputs[self._presence].reshape(-1)[0]) if self._presence is not None else math.nan
        return MeshResult(xy, xyz[:, 2] * scale, logit)

    def infer(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        return self.run(rgb, detection).landmarks

    def five_points(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """(5, 2): image-left eye, image-right eye, nose tip, image-left and image-right mouth corner."""
        return five_points_of(self.infer(rgb, detection))


def five_points_of(landmarks: np.ndarray) -> np.ndarray:
    """468 FaceMesh landmarks → the (5, 2) float32 alignment points `FaceMesh.five_points` gives."""
    pts = np.asarray(landmarks)
    if pts.ndim != 2 or pts.shape[0] != 468 or pts.shape[1] < 2:
        raise ValueError(f"expected (468, 2) FaceMesh landmarks, got shape {pts.shape}")
    pts = pts[:, :2]
    return np.stack(
        [
            pts[list(EYE_IMAGE_LEFT)].mean(axis=0),
            pts[list(EYE_IMAGE_RIGHT)].mean(axis=0),
            pts[NOSE_TIP],
            pts[MOUTH_IMAGE_LEFT],
            pts[MOUTH_IMAGE_RIGHT],
        ]
    ).astype(np.float32)
