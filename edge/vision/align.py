"""Landmarks → the 112×112 face crop the ArcFace-family embedders were trained on.

A similarity transform (rotation, uniform scale, translation; never a reflection) is
fitted by least squares (Umeyama 1991) from the face's landmarks to the ArcFace
template, and the image is warped with it.

Points are (x, y) in OpenCV's pixel convention (the centre of pixel column i is x = i),
given in the *image's* left-to-right order for an upright, unmirrored face:
``[image-left eye, image-right eye, nose tip, mouth centre]`` (4-point, what BlazeFace
gives) or ``[image-left eye, image-right eye, nose tip, image-left mouth corner,
image-right mouth corner]`` (5-point, from a landmark model). The image-left eye is the
subject's right eye. For a tilted or upside-down face pass the points in the same
*anatomical* order (do not re-sort them by x): the transform then rotates the face
upright.

Border: pixels of the crop that fall outside the photo are filled with black
(``BORDER_CONSTANT``), as insightface's ``norm_crop`` does when it makes the training
crops of these embedders; replicated edge pixels would paint streaks the networks
never saw. ``border="replicate"`` is available for experiments.

Large faces: when the crop shrinks the face by more than 2× (a face filling a close
camera frame), the face region is first reduced with ``INTER_AREA`` so the bilinear
warp does not alias; for ordinary sizes the crop is one ``warpAffine``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

TEMPLATE_SIZE = 112

# ArcFace (insightface) 5-point template for 112×112: image-left eye, image-right eye,
# nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_5 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

# Where BlazeFace's mouth-centre keypoint lands on that template.
MOUTH_CENTRE = np.array([56.1396, 92.2848], dtype=np.float32)

# 4-point template used with BlazeFace keypoints.
ARCFACE_4 = np.vstack([ARCFACE_5[:3], MOUTH_CENTRE]).astype(np.float32)

# The warp may shrink by this much before the face region is pre-reduced with INTER_AREA.
_AREA_BELOW = 0.5


def estimate_similarity(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2×3 float64) mapping `src_pts` onto `dst_pts`.

    Umeyama's method with the reflection excluded: the result is
    ``s * R @ p + t`` with R a proper rotation. Needs ≥ 2 matching, finite,
    non-coincident points.
    """
    src = np.asarray(src_pts, dtype=np.float64)
    dst = np.asarray(dst_pts, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape:
        raise ValueError(f"need two (N, 2) point arrays of the same shape, got {src.shape} and {dst.shape}")
    if len(src) < 2:
        raise ValueError("need at least 2 points for a similarity transform")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points must be finite")
    n = len(src)
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c**2).sum() / n
    if src_var <= 1e-12:
        raise ValueError("source points coincide; no transform can be fitted")
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0  # the best orthogonal fit is a reflection: take the best rotation instead
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def template(num_points: int, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The 4- or 5-point template scaled to a size×size crop."""
    if num_points == 4:
        base = ARCFACE_4
    elif num_points == 5:
        base = ARCFACE_5
    else:
        raise ValueError(
            f"alignment takes 4 points (eyes, nose, mouth centre) or 5 (eyes, nose, mouth corners), got {num_points}"
        )
    return base * np.float32(size / TEMPLATE_SIZE)


def transform_for(points: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The 2×3 matrix `align` warps with for these landmarks."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (4, 2) or (5, 2), got shape {points.shape}")
    return estimate_similarity(points, template(len(points), size))


def align(
    rgb: np.ndarray,
    points: np.ndarray,
    size: int = TEMPLATE_SIZE,
    *,
    border: Literal["constant", "replicate"] = "constant",
) -> np.ndarray:
    """Warp the face at `points` into a size×size uint8 crop laid out like ArcFace's template.

    `points` is (4, 2) [image-left eye, image-right eye, nose, mouth centre] or (5, 2)
    [image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth
    corner], in `rgb`'s pixel coordinates (x, y).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if border not in ("constant", "replicate"):
        raise ValueError(f"border must be 'constant' or 'replicate', got {border!r}")
    matrix = transform_for(points, size)
    source = rgb
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < _AREA_BELOW:
        source, matrix = _reduce(rgb, matrix, size, scale)
    return cv2.warpAffine(
        source,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT if border == "constant" else cv2.BORDER_REPLICATE,
        borderValue=(0, 0, 0),
    )


def _reduce(rgb: np.ndarray, matrix: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut the region the crop samples and shrink it with INTER_AREA to the crop's scale.

    Returns the reduced region and the matrix that maps it to the crop, so the final
    warp is near scale 1 and samples an anti-aliased image.
    """
    h, w = rgb.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    mapped = corners @ inverse.T
    margin = 2.0 / scale  # the bilinear taps just outside the crop
    x0 = int(np.clip(np.floor(mapped[:, 0].min() - margin), 0, w))
    y0 = int(np.clip(np.floor(mapped[:, 1].min() - margin), 0, h))
    x1 = int(np.clip(np.ceil(mapped[:, 0].max() + margin), 0, w))
    y1 = int(np.clip(np.ceil(mapped[:, 1].max() + margin), 0, h))
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies (almost) wholly off the photo
        return rgb, matrix
    region = rgb[y0:y1, x0:x1]
    rw = max(1, round((x1 - x0) * scale))
    rh = max(1, round((y1 - y0) * scale))
    reduced = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
    sx = rw / (x1 - x0)
    sy = rh / (y1 - y0)
    # a pixel centre u in `reduced` sits at x0 + (u + 0.5) / sx - 0.5 in `rgb`
    to_original = np.array(
        [[1 / sx, 0, x0 + 0.5 / sx - 0.5], [0, 1 / sy, y0 + 0.5 / sy - 0.5], [0, 0, 1]],
        dtype=np.float64,
    )
    return reduced, matrix @ to_original


def points_from_detection(detection) -> np.ndarray:
    """BlazeFace keypoints → the (4, 2) float32 points `align` takes.

    BlazeFace's order is the subject's (right eye, left eye, nose tip, mouth centre,
    ...); the subject's right eye is the image-left one, so the first four keypoints
    are already in the aligner's order. They are not re-sorted by x, so a rotated face
    is rotated upright. Detections use continuous coordinates (pixel i spans [i, i+1));
    `align` uses OpenCV's (pixel i is centred on i), hence the half-pixel shift.
    """
    keypoints = np.asarray(detection.keypoints, dtype=np.float32)
    if keypoints.ndim != 2 or keypoints.shape[0] < 4 or keypoints.shape[1] != 2:
        raise ValueError(f"expected BlazeFace keypoints (6, 2), got shape {keypoints.shape}")
    return keypoints[:4] - np.float32(0.5)
