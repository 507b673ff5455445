"""edge.vision.align: the similarity fit, the warp, and BlazeFace keypoints on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.vision.align import (
    ARCFACE_4,
    ARCFACE_5,
    MOUTH_CENTRE,
    align,
    estimate_similarity,
    points_from_detection,
    template,
    transform_for,
)
from edge.vision.detector import Detection


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array(
        [[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]], dtype=np.float64
    )


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- the fit ---------------------------------------------------------------------------------


def test_templates():
    assert ARCFACE_5.shape == (5, 2) and ARCFACE_4.shape == (4, 2)
    np.testing.assert_allclose(ARCFACE_5[0], [38.2946, 51.6963], rtol=1e-6)
    np.testing.assert_allclose(ARCFACE_4[3], MOUTH_CENTRE)
    np.testing.assert_allclose(template(5, 224), ARCFACE_5 * 2)


@pytest.mark.parametrize("angle,scale", [(0, 1), (30, 1.7), (-120, 0.3), (180, 2.5)])
def test_estimate_similarity_recovers_an_exact_similarity(angle, scale):
    truth = _similarity(angle, scale, 12.5, -40.0)
    src = np.random.default_rng(0).uniform(0, 200, (5, 2))
    np.testing.assert_allclose(estimate_similarity(src, _apply(truth, src)), truth, atol=1e-9)


def test_estimate_similarity_never_reflects():
    src = ARCFACE_5.astype(np.float64)
    mirrored = src * [-1, 1] + [112, 0]  # a mirror image: no rotation can match it
    matrix = estimate_similarity(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_estimate_similarity_is_least_squares():
    src = ARCFACE_5.astype(np.float64)
    noisy = src + np.random.default_rng(1).normal(0, 1.0, src.shape)
    best = estimate_similarity(src, noisy)
    cost = ((_apply(best, src) - noisy) ** 2).sum()
    rng = np.random.default_rng(2)
    for _ in range(50):  # no nearby similarity does better
        other = _similarity(rng.normal(0, 0.5), 1 + rng.normal(0, 0.01), *rng.normal(0, 0.3, 2)) @ np.vstack(
            [best, [0, 0, 1]]
        )
        assert ((_apply(other, src) - noisy) ** 2).sum() >= cost - 1e-9


@pytest.mark.parametrize(
    "src,dst,match",
    [
        (np.zeros((1, 2)), np.zeros((1, 2)), "at least 2"),
        (np.ones((4, 2)), ARCFACE_4, "coincide"),
        (np.zeros((4, 3)), np.zeros((4, 3)), r"\(N, 2\)"),
        (ARCFACE_4, ARCFACE_5, "same shape"),
        (np.full((4, 2), np.nan), ARCFACE_4, "finite"),
    ],
)
def test_estimate_similarity_refuses_bad_points(src, dst, match):
    with pytest.raises(ValueError, match=match):
        estimate_similarity(src, dst)


def test_align_wants_four_or_five_points():
    with pytest.raises(ValueError, match="4 points"):
        align(np.zeros((50, 50, 3), np.uint8), ARCFACE_5[:3])
    with pytest.raises(ValueError, match="RGB"):
        align(np.zeros((50, 50), np.uint8), ARCFACE_5)


# --- the warp ---------------------------------------------------------------------------------


def test_template_points_give_the_identity_crop(astronaut_rgb):
    image = np.ascontiguousarray(astronaut_rgb[100:212, 150:262])
    for points in (ARCFACE_5, ARCFACE_4):
        crop = align(image, points)
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        np.testing.assert_array_equal(crop, image)


def test_size_scales_the_template(astronaut_rgb):
    crop = align(astronaut_rgb, ARCFACE_5 + 100, size=224)
    small = align(astronaut_rgb, ARCFACE_5 + 100)
    assert crop.shape == (224, 224, 3)
    assert _mean_abs_diff(cv2.resize(crop, (112, 112), interpolation=cv2.INTER_AREA), small) < 3


def test_border_constant_is_black_and_replicate_is_not(astronaut_rgb):
    corner = ARCFACE_5 - 30  # the crop hangs over the top-left corner of the photo
    black = align(astronaut_rgb, corner)
    assert (black[:20, :20] == 0).all()
    replicated = align(astronaut_rgb, corner, border="replicate")
    assert (replicated[:20, :20] > 0).any()
    np.testing.assert_array_equal(black[40:, 40:], replicated[40:, 40:])


def test_big_faces_are_reduced_without_aliasing():
    # 1-pixel stripes seen at 1/10 scale: a plain bilinear warp hits only white columns
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, ::2] = 255
    crop = align(stripes, ARCFACE_5 * 10 + 500)
    assert abs(float(crop.mean()) - 127.5) < 2 and float(crop.std()) < 2


# --- real faces ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut_points(short) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    faces = short.detect(np.ascontiguousarray(data.astronaut()[..., :3]))
    assert len(faces) == 1
    return points_from_detection(faces[0])


def test_points_from_detection_orders_image_left_eye_first(astronaut_points):
    assert astronaut_points.shape == (4, 2) and astronaut_points.dtype == np.float32
    assert astronaut_points[0, 0] < astronaut_points[1, 0]  # subject's right eye = image left
    kps = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_allclose(points_from_detection(Detection((0, 0, 1, 1), 1.0, kps)), kps[:4] - 0.5)


def test_astronaut_points_land_on_the_template(astronaut_points):
    # the similarity cannot match BlazeFace's points exactly: measured residuals 2.6, 2.8, 0.6, 2.3 px
    mapped = _apply(transform_for(astronaut_points), astronaut_points)
    assert np.linalg.norm(mapped - ARCFACE_4, axis=1).max() < 4


def test_redetected_eyes_sit_on_the_template(short, astronaut_rgb, astronaut_points):
    crop = align(astronaut_rgb, astronaut_points)
    faces = short.detect(crop)
    assert len(faces) == 1
    # measured: eyes 2.9 and 1.1 px from the template, nose 5.1 (BlazeFace's nose tip sits lower)
    found = points_from_detection(faces[0]) + 0.5  # back to the crop's continuous coordinates
    error = np.linalg.norm(found - ARCFACE_4, axis=1)
    assert error[:2].max() < 4.5 and error.max() < 7


@pytest.mark.parametrize("angle,scale", [(25, 1.4), (-30, 0.7), (0, 2.5), (10, 0.6)])
def test_known_similarity_of_the_photo_gives_the_same_crop(astronaut_rgb, astronaut_points, angle, scale):
    reference = align(astronaut_rgb, astronaut_points)
    centre = astronaut_points.mean(axis=0)
    matrix = _similarity(angle, scale, 0, 0)
    matrix[:, 2] = [600, 500] - _apply(matrix, centre[None])[0]  # keep the face inside 1200×1000
    warped = cv2.warpAffine(astronaut_rgb, matrix, (1200, 1000), flags=cv2.INTER_CUBIC)
    crop = align(warped, _apply(matrix, astronaut_points))
    # measured 1.0–2.9 grey levels: resampling only (at 0.4× the face loses detail: 5.2)
    assert _mean_abs_diff(crop, reference) < 5


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_turned_photo_with_turned_points_comes_out_upright(astronaut_rgb, astronaut_points, quarter_turns):
    reference = align(astronaut_rgb, astronaut_points)
    turned = np.ascontiguousarray(np.rot90(astronaut_rgb, quarter_turns))
    points = astronaut_points.astype(np.float64)
    for _ in range(quarter_turns):  # np.rot90 moves pixel (x, y) to (y, W - 1 - x)
        points = np.c_[points[:, 1], 511 - points[:, 0]]
    diff = np.abs(align(turned, points).astype(np.int16) - reference)
    assert diff.max() <= 1  # a pixel permutation, up to rounding of the fitted matrix


@pytest.mark.parametrize("angle", [10, 25])
def test_redetection_after_rotation_recovers_the_crop(full, astronaut_rgb, angle):
    """Full range re-detected on a rotated photo: its keypoints, mapped back, land within a
    few crop pixels of where they were (measured eyes ≤ 2 px, all ≤ 4.4 px). BlazeFace's
    keypoints jitter by ~3 px of the crop even when the face is merely moved (short range
    more than full), so exact equality is not expected."""
    upright = points_from_detection(full.detect(astronaut_rgb)[0])
    to_crop = transform_for(upright)
    matrix = cv2.getRotationMatrix2D((225.0, 130.0), angle, 1.0)
    matrix[:, 2] += (300 - 225, 300 - 130)
    rotated = cv2.warpAffine(astronaut_rgb, matrix, (600, 600))
    faces = full.detect(rotated)
    assert len(faces) == 1
    back = _apply(cv2.invertAffineTransform(matrix), points_from_detection(faces[0]))
    error = np.linalg.norm(_apply(to_crop, back) - _apply(to_crop, upright), axis=1)
    assert error[:2].max() < 5 and error.max() < 8


def test_upscaled_photo_gives_the_same_crop(astronaut_rgb, astronaut_points):
    """A face 4× bigger than the crop goes through the INTER_AREA reduction."""
    reference = align(astronaut_rgb, astronaut_points)
    big = cv2.resize(astronaut_rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    points = (astronaut_points + 0.5) * 4 - 0.5  # pixel centres scale about the pixel corner
    assert np.sqrt(np.linalg.det(transform_for(points)[:, :2])) < 0.5
    assert _mean_abs_diff(align(big, points), reference) < 3  # measured 1.6
