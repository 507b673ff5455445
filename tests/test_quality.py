"""edge.vision.quality: each check on real photos, the levels, the report and its error code."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import errors, runtime
from edge.vision import quality
from edge.vision.align import align
from edge.vision.detector import FaceDetector
from edge.vision.landmarks import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FaceMesh, MeshResult, five_points_of
from edge.vision.quality import FaceMeasures, QualityLevel, QualityReport, judge

QUALITY_CODE = 4005  # stands in for whatever code the API gives non-occlusion failures


def _models_dir() -> Path:
    try:
        return runtime.models_dir()
    except Exception:  # not installed: the checkout's models/ folder
        return Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.open("both", directory=_models_dir())


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(runtime.open_model("face_mesh", directory=_models_dir()))


@pytest.fixture
def pipeline(detector, mesh):
    """rgb → (detection, MeshResult, crop) for the largest face, or None."""

    def run(rgb: np.ndarray):
        faces = detector.detect(rgb)
        if not faces:
            return None
        face = max(faces, key=lambda d: d.area)
        result = mesh.run(rgb, face)
        return face, result, align(rgb, five_points_of(result.landmarks))

    return run


@pytest.fixture
def check(pipeline):
    """rgb, level → QualityReport of the largest face (fails the test if no face is found)."""

    def run(rgb: np.ndarray, level=QualityLevel.NORMAL) -> QualityReport:
        found = pipeline(rgb)
        assert found is not None, "no face found"
        face, result, crop = found
        return quality.assess(rgb, face, result.landmarks, crop, level=level, presence=result.presence_logit)

    return run


@pytest.fixture
def astronaut_landmarks(astronaut_rgb, pipeline) -> np.ndarray:
    return pipeline(astronaut_rgb)[1].landmarks


def _iod(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[list(EYE_IMAGE_LEFT)].mean(0) - landmarks[list(EYE_IMAGE_RIGHT)].mean(0)))


def _fill(rgb: np.ndarray, polygon: np.ndarray, colour) -> np.ndarray:
    out = rgb.copy()
    cv2.fillPoly(out, [np.round(polygon).astype(np.int32)], colour)
    return out


# --- FaceMesh presence output -------------------------------------------------------------


def test_mesh_run_adds_presence_and_keeps_infer(astronaut_rgb, detector, mesh):
    face = max(detector.detect(astronaut_rgb), key=lambda d: d.area)
    result = mesh.run(astronaut_rgb, face)
    assert isinstance(result, MeshResult)
    assert result.landmarks.shape == (468, 2) and result.depth.shape == (468,)
    np.testing.assert_allclose(result.landmarks, mesh.infer(astronaut_rgb, face))
    np.testing.assert_allclose(five_points_of(result.landmarks), mesh.five_points(astronaut_rgb, face))
    assert result.presence_logit > 10 and result.presence > 0.999
    # the nose tip is nearer the camera than the outer eye corners
    assert result.depth[1] < result.depth[33] and result.depth[1] < result.depth[263]


# --- real photos, one check each ----------------------------------------------------------


def test_astronaut_passes_every_level(astronaut_rgb, check):
    for level in QualityLevel:
        report = check(astronaut_rgb, level)
        assert report.ok, (level, report.message())
        assert not report.occluded and report.error_code(QUALITY_CODE) is None
    report = check(astronaut_rgb)
    assert set(report.measurements) == {
        "in_frame",
        "face_size",
        "sharpness",
        "mid_sharpness",
        "brightness",
        "clipped",
        "noise",
        "yaw",
        "pitch",
        "roll",
        "occlusion",
        "presence",
    }
    m = report.measurements
    assert 30 < m["face_size"].value < 55  # ~41 px between the eyes in the 512×512 photo
    assert abs(m["yaw"].value) < 10 and abs(m["pitch"].value) < 10 and abs(m["roll"].value) < 8


def test_low_light_noise_is_refused_where_plain_darkness_is_not(astronaut_rgb, check):
    """Sensor noise swamping the finest detail (a dark door at night) makes two photos of
    different people match (docs/quality.md): refused at NORMAL; the same face merely darker
    passes."""
    import cv2

    rng = np.random.default_rng(5)
    dim = astronaut_rgb.astype(np.float32) * 0.35
    noisy = np.clip(dim + rng.normal(0, 5, dim.shape), 0, 255).astype(np.uint8)
    noisy = cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_UNCHANGED)
    report = check(noisy)
    assert not report.ok and "noise" in report.failures and not report.occluded, report.message()
    assert report.measurements["noise"].value > 0.9
    assert check(dim.astype(np.uint8)).ok


def test_report_to_dict_is_json(astronaut_rgb, check):
    d = check(astronaut_rgb).to_dict()
    text = json.dumps(d)
    assert json.loads(text)["ok"] is True
    assert d["level"] == "NORMAL" and d["failures"] == [] and d["occluded"] is False
    sharp = d["measurements"]["sharpness"]
    assert sharp["check"] == "blur" and sharp["min"] == quality.THRESHOLDS[QualityLevel.NORMAL].min_sharpness
    assert d["measurements"]["yaw"]["absolute"] is True


def test_blurred_astronaut_fails_blur(astronaut_rgb, check):
    report = check(cv2.GaussianBlur(astronaut_rgb, (0, 0), 3.0))
    assert "blur" in report.failed_checks
    assert not report.occluded and report.error_code(QUALITY_CODE) == QUALITY_CODE


JPEG_QUALITIES = tuple(range(60, 100, 5))  # 60, 65, ..., 95


def _jpeg(rgb: np.ndarray, q: int) -> np.ndarray:
    data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])[1]
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_jpeg_blocks_do_not_make_a_blurred_face_pass(astronaut_rgb, check, sigma):
    """JPEG's 8×8 blocks add fine-band energy that `sharpness` reads as detail: the σ 4 blurred
    astronaut saved at quality 75 or lower used to pass NORMAL (and get enrolled).
    `mid_sharpness` refuses it at every quality (σ 4 also at LOW; σ 3 scores 0.77-0.79,
    just under NORMAL's 0.79 and about LOW's 0.78); the unblurred face passes at every
    quality (it scores 1.00)."""
    blurred = cv2.GaussianBlur(astronaut_rgb, (0, 0), sigma)
    for q in JPEG_QUALITIES:
        report = check(_jpeg(blurred, q))
        assert "blur" in report.failed_checks and "mid_sharpness" in report.failures, (q, report.message())
        assert not report.occluded and report.error_code(QUALITY_CODE) == QUALITY_CODE
        if sigma >= 4:
            assert "blur" in check(_jpeg(blurred, q), QualityLevel.LOW).failed_checks, q
        clean = check(_jpeg(astronaut_rgb, q))
        assert clean.ok, (q, clean.message())
        assert clean.measurements["mid_sharpness"].ok, q


def test_mid_sharpness_score_parts_soft_clean_photos_from_blurred_jpegs():
    """Raw mid-band ratios (second-best direction) of held-out lfw-dev faces: σ 4 + JPEG 60
    on a normal-size face (fine band lifted by the blocks) and at quality 75 on a large face
    read *sharper* than the softest clean photo that passes NORMAL; the score corrects both."""
    normal = quality.THRESHOLDS[QualityLevel.NORMAL].min_mid_sharpness
    soft_clean = quality.mid_sharpness_score(0.803, 0.463, 38.2)  # Sara_Elisabeth_Ahmad_0001
    jpeg_blocks = quality.mid_sharpness_score(0.849, 0.702, 36.0)  # σ 4 + JPEG 60
    large_face = quality.mid_sharpness_score(0.854, 0.430, 75.9)  # σ 4 + JPEG 75, eyes 76 px apart
    assert jpeg_blocks < normal <= soft_clean and large_face < normal
    assert math.isnan(quality.mid_sharpness_score(0.9, 0.0, 40.0))  # no fine band at all: not a pass


def test_mid_sharpness_is_optional_in_cached_measures():
    """Measures made before `mid_sharpness` existed (scripts' caches) are judged without it."""
    report = judge(GOOD, QualityLevel.STRICT)
    assert report.ok and "mid_sharpness" not in report.measurements
    blurred = judge(dataclasses.replace(GOOD, mid_sharpness=0.75))
    assert blurred.failures == ("mid_sharpness",) and blurred.failed_checks == ("blur",)
    assert judge(dataclasses.replace(GOOD, mid_sharpness=1.1), QualityLevel.STRICT).ok


def test_motion_blur_a_face_still_matches_through_passes_normal_and_heavy_blur_does_not(astronaut_rgb, check):
    """NORMAL lets through the motion blur of a person walking up to the door (9-px motion
    blur still matches at TAR 93 %, docs/quality.md); HIGH, for enrolment, does not; a
    strong Gaussian blur fails both."""
    kernel = np.zeros((11, 11), np.float32)
    kernel[5, :] = 1 / 11  # horizontal motion: vertical detail survives
    walking = cv2.filter2D(astronaut_rgb, -1, kernel)
    assert check(walking).ok
    assert "blur" in check(walking, QualityLevel.HIGH).failed_checks
    assert "blur" in check(cv2.GaussianBlur(astronaut_rgb, (0, 0), 3)).failed_checks


def test_darkened_astronaut_fails_exposure(astronaut_rgb, check):
    dark = (astronaut_rgb.astype(np.float32) * 0.12).astype(np.uint8)
    report = check(dark)
    assert report.failed_checks == ("exposure",)
    assert report.measurements["brightness"].value < quality.THRESHOLDS[QualityLevel.NORMAL].min_brightness


def test_overexposed_astronaut_fails_exposure(astronaut_rgb, check):
    bright = np.clip(astronaut_rgb.astype(np.float32) * 2.5, 0, 255).astype(np.uint8)
    report = check(bright)
    assert "exposure" in report.failed_checks and not report.occluded


def test_small_astronaut_fails_face_size(astronaut_rgb, check):
    small = cv2.resize(astronaut_rgb, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    canvas = np.full((360, 360, 3), 128, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small[:360, :360]
    report = check(canvas)
    assert "face_size" in report.failed_checks
    assert 8 < report.measurements["face_size"].value < 12  # ~10 px between the eyes
    assert "face_size" not in check(canvas, QualityLevel.LOW).failed_checks  # small but usable
    # 16 px between the eyes (a ~40 px face) is enough at NORMAL: such faces still match
    # (scripts/eval/conditions.py, docs/quality.md)
    bigger = cv2.resize(astronaut_rgb, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    canvas[: bigger.shape[0], : bigger.shape[1]] = bigger[:360, :360]
    assert "face_size" not in check(canvas).failed_checks


def test_face_cut_by_the_frame_fails_framing(astronaut_rgb, pipeline, check):
    x, _, w, _ = pipeline(astronaut_rgb)[0].box
    cut = np.ascontiguousarray(astronaut_rgb[:, : int(x + 0.62 * w)])  # ~40 % of the face box outside
    report = check(cut)
    assert "framing" in report.failed_checks and not report.occluded
    assert report.measurements["in_frame"].value < 0.75


@pytest.mark.parametrize("degrees", [25, -25])
def test_rolled_astronaut_fails_pose_at_high(astronaut_rgb, astronaut_landmarks, check, degrees):
    c = astronaut_landmarks[[33, 263, 152, 10]].mean(0)
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), degrees, 1.0)
    rotated = cv2.warpAffine(astronaut_rgb, m, (512, 512), borderMode=cv2.BORDER_REFLECT101)
    high = check(rotated, QualityLevel.HIGH)
    assert high.failures == ("roll",)
    # OpenCV's positive angle turns the picture counter-clockwise: roll goes negative
    assert high.measurements["roll"].value == pytest.approx(2.8 - degrees, abs=4)
    assert check(rotated, QualityLevel.NORMAL).ok  # roll is undone by alignment; NORMAL allows 30°


def test_eye_bar_is_occluded(astronaut_rgb, astronaut_landmarks, check):
    lm = astronaut_landmarks
    iod = _iod(lm)
    left, right = lm[list(EYE_IMAGE_LEFT)].mean(0), lm[list(EYE_IMAGE_RIGHT)].mean(0)
    centre = (left + right) / 2
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    bar = cv2.boxPoints(((float(centre[0]), float(centre[1])), (2.0 * iod, 0.55 * iod), angle))
    report = check(_fill(astronaut_rgb, bar, (10, 10, 10)))
    assert report.occluded, report.message()
    assert report.error_code(QUALITY_CODE) == errors.FACE_OCCLUDED
    assert report.measurements["occlusion"].detail.startswith("eye")
    err = report.to_error(QUALITY_CODE)
    assert err.code == errors.FACE_OCCLUDED and err.http_status == 400 and "occluded" in err.message


def test_sunglasses_are_occluded(astronaut_rgb, astronaut_landmarks, check):
    lm = astronaut_landmarks
    iod = _iod(lm)
    out = astronaut_rgb.copy()
    for eye in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
        c = lm[list(eye)].mean(0)
        axes = (int(0.42 * iod), int(0.3 * iod))
        cv2.ellipse(out, (int(c[0]), int(c[1] + 0.05 * iod)), axes, 0, 0, 360, (25, 22, 20), -1)
    report = check(out)
    assert report.occluded, report.message()


@pytest.mark.parametrize("colour", [(120, 170, 210), (235, 235, 232), (30, 30, 34)])
def test_mask_is_occluded(astronaut_rgb, astronaut_landmarks, check, colour):
    lm = astronaut_landmarks
    bridge = lm[[6, 197, 195]].mean(0)
    top = np.array([lm[234], lm[116], bridge, lm[345], lm[454]], np.float64)
    top[[0, -1], 1] = bridge[1] + 0.1 * _iod(lm)
    outline = [454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234]
    masked = _fill(astronaut_rgb, np.vstack([top, lm[outline]]), colour)
    report = check(masked)
    assert report.occluded, report.message()
    assert report.error_code(QUALITY_CODE) == errors.FACE_OCCLUDED


def test_no_false_alarm_on_the_mirrored_astronaut(astronaut_rgb, check):
    mirrored = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    a, b = check(astronaut_rgb), check(mirrored)
    assert b.ok
    assert b.measurements["roll"].value == pytest.approx(-a.measurements["roll"].value, abs=1.5)


# --- levels -----------------------------------------------------------------------------------


def test_thresholds_tighten_with_the_level():
    levels = [QualityLevel.LOW, QualityLevel.NORMAL, QualityLevel.HIGH, QualityLevel.STRICT]
    for lower, higher in zip(levels, levels[1:]):
        a, b = quality.THRESHOLDS[lower], quality.THRESHOLDS[higher]
        for field in dataclasses.fields(quality.Thresholds):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if field.name.startswith("min_"):
                assert y >= x, (field.name, lower, higher)
            else:
                assert y <= x, (field.name, lower, higher)
        assert b.min_brightness < b.max_brightness


def _random_measures(rng: np.random.Generator) -> FaceMeasures:
    return FaceMeasures(
        face_size=float(rng.uniform(5, 80)),
        in_frame=float(rng.choice([1.0, rng.uniform(0.4, 1.0)])),
        sharpness=float(rng.uniform(0.3, 0.9)),
        brightness=float(rng.uniform(10, 250)),
        clipped=float(rng.choice([0.0, rng.uniform(0, 0.6)])),
        yaw=float(rng.normal(0, 25)),
        pitch=float(rng.normal(0, 18)),
        roll=float(rng.normal(0, 20)),
        occlusion=float(rng.gamma(2.0, 2.0)),
        occlusion_detail="mouth.a",
        presence=None if rng.random() < 0.3 else float(rng.normal(30, 15)),
    )


def test_levels_are_monotone():
    rng = np.random.default_rng(0)
    levels = [QualityLevel.LOW, QualityLevel.NORMAL, QualityLevel.HIGH, QualityLevel.STRICT]
    passed = {lv: 0 for lv in levels}
    for _ in range(3000):
        m = _random_measures(rng)
        reports = [judge(m, lv) for lv in levels]
        for lower, higher in zip(reports, reports[1:]):
            assert set(lower.failures) <= set(higher.failures)
            if higher.ok:
                assert lower.ok
        for lv, r in zip(levels, reports):
            passed[lv] += r.ok
        assert judge(m, QualityLevel.NONE).ok
    assert passed[QualityLevel.LOW] > passed[QualityLevel.NORMAL] > passed[QualityLevel.HIGH]
    assert passed[QualityLevel.HIGH] > passed[QualityLevel.STRICT] > 0


def test_levels_monotone_on_real_photos(astronaut_rgb, pipeline):
    images = [
        astronaut_rgb,
        cv2.GaussianBlur(astronaut_rgb, (0, 0), 1.5),
        (astronaut_rgb * 0.3).astype(np.uint8),
        cv2.resize(astronaut_rgb, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
    ]
    for rgb in images:
        face, result, crop = pipeline(rgb)
        m = quality.measure(rgb, face, result.landmarks, crop, presence=result)
        oks = [judge(m, lv).ok for lv in QualityLevel]
        assert oks == sorted(oks, reverse=True), oks  # once failing, failing at every higher level


def test_level_none_measures_nothing(astronaut_rgb):
    report = quality.assess(astronaut_rgb, None, np.zeros((468, 2)), None, level=0)
    assert report.ok and not report.measurements and report.error_code(QUALITY_CODE) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [(2, QualityLevel.NORMAL), ("high", QualityLevel.HIGH), ("STRICT", QualityLevel.STRICT), ("0", QualityLevel.NONE)],
)
def test_parse_level(given, expected):
    assert quality.parse_level(given) is expected


@pytest.mark.parametrize("bad", [5, -1, "medium", 2.5, True, None])
def test_parse_level_rejects(bad):
    with pytest.raises(ValueError):
        quality.parse_level(bad)


# --- report logic -----------------------------------------------------------------------------

GOOD = FaceMeasures(
    face_size=45.0,
    in_frame=1.0,
    sharpness=0.7,
    brightness=130.0,
    clipped=0.0,
    yaw=3.0,
    pitch=-2.0,
    roll=1.0,
    occlusion=2.0,
    occlusion_detail="nose.b",
    presence=40.0,
)


def test_good_measures_pass_every_level():
    for lv in QualityLevel:
        assert judge(GOOD, lv).ok


def test_occlusion_alone_is_4004():
    r = judge(dataclasses.replace(GOOD, occlusion=20.0))
    assert r.failures == ("occlusion",) and r.occluded and r.error_code(QUALITY_CODE) == 4004
    assert judge(dataclasses.replace(GOOD, presence=-3.0)).occluded


@pytest.mark.parametrize(
    "change",
    [{"sharpness": 0.3}, {"face_size": 10.0}, {"in_frame": 0.5}, {"brightness": 10.0}, {"yaw": 70.0}],
)
def test_occlusion_with_a_degraded_face_is_a_quality_failure(change):
    r = judge(dataclasses.replace(GOOD, occlusion=20.0, **change))
    assert "occlusion" in r.failed_checks and not r.occluded
    assert r.error_code(QUALITY_CODE) == QUALITY_CODE
    assert r.to_error(QUALITY_CODE).code == QUALITY_CODE


def test_marginal_exposure_or_pose_does_not_hide_an_occlusion():
    # an occluder shifts these statistics itself: failing NORMAL but not LOW keeps 4004
    r = judge(dataclasses.replace(GOOD, occlusion=20.0, brightness=30.0, yaw=45.0))
    assert set(r.failed_checks) == {"exposure", "pose", "occlusion"}
    assert r.gross == ("occlusion",) and r.occluded


def test_measurement_bounds_and_text():
    m = quality.Measurement("yaw", "pose", -42.0, "deg", maximum=40.0, absolute=True)
    assert not m.ok and m.threshold == 40.0 and m.describe() == "|yaw| 42 > 40"
    r = quality.Measurement("brightness", "exposure", 120.0, "grey", minimum=35.0, maximum=220.0)
    assert r.ok and r.threshold == (35.0, 220.0)
    assert not quality.Measurement("sharpness", "blur", math.nan, "ratio", minimum=0.5).ok
    assert quality.Measurement("sharpness", "blur", math.nan, "ratio", minimum=0.5).to_dict()["value"] is None


def test_message_lists_failures_in_check_order():
    r = judge(dataclasses.replace(GOOD, sharpness=0.3, face_size=10.0, yaw=60.0))
    assert r.failures == ("face_size", "sharpness", "yaw")
    assert r.message().startswith("face_size: face_size 10 < 12; blur: sharpness 0.3 < ")
    assert "quality too low" in r.to_error(QUALITY_CODE).message


# --- pose from synthetic landmarks -------------------------------------------------------------


def _project(yaw: float, pitch: float, roll: float, scale: float = 80.0) -> np.ndarray:
    """468 landmarks with the model points of a head turned by (yaw, pitch, roll), orthographic."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    # forward (nose) direction: yaw to the image right, pitch up
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    pts = np.full((468, 2), 200.0)
    for index, xyz in quality.MODEL_3D.items():
        pts[index] = (rot @ np.asarray(xyz))[:2] * scale + 200.0
    return pts


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (30, 0, 0), (-20, 10, 0), (10, -15, 12), (0, 0, -25)])
def test_head_pose_recovers_synthetic_rotations(yaw, pitch, roll):
    got = quality.head_pose(_project(yaw, pitch, roll))
    # roll is the eye line's angle: equal to the rotation only without yaw and pitch
    assert got[0] == pytest.approx(yaw, abs=1.0)
    assert got[1] == pytest.approx(pitch, abs=1.0)
    if yaw == 0 and pitch == 0:
        assert got[2] == pytest.approx(roll, abs=0.5)


# --- lfw-dev -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_lfw_sample_passes_normal(shared_dir, pipeline):
    root = shared_dir / "lfw-dev"
    with (root / "labels.csv").open(newline="") as fh:
        paths = [root / row["image"] for row in csv.DictReader(fh)]
    sample = paths[:: len(paths) // 200][:200]
    passed = occluded = faces = 0
    for path in sample:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        found = pipeline(rgb)
        if found is None:
            continue
        face, result, crop = found
        faces += 1
        report = quality.assess(rgb, face, result.landmarks, crop, presence=result.presence_logit)
        passed += report.ok
        occluded += report.occluded
    assert faces >= 195
    # 97.3 % of all 6,922 lfw-dev photos pass NORMAL (module docstring); allow for the sample
    assert passed / faces >= 0.93, passed / faces
    assert occluded / faces <= 0.03
    # Its speed (about 2 ms a face here) is measured by scripts/eval/eval_quality.py, not asserted:
    # a timed assertion fails on a slow or emulated machine without anything being wrong.


@pytest.mark.slow
def test_lfw_blurred_faces_are_refused_at_every_jpeg_quality(shared_dir, check):
    """The JPEG test above on lfw-dev faces (about 41 px between the eyes, where σ 4 is a
    heavier blur than on the astronaut): refused at every quality; the same photos unblurred
    at quality 60 pass. (σ 3 is borderline on lfw-dev: a few per cent pass the blur check,
    docs/quality.md.)"""
    root = shared_dir / "lfw-dev"
    with (root / "labels.csv").open(newline="") as fh:
        paths = [root / row["image"] for row in csv.DictReader(fh)]
    for path in paths[:: len(paths) // 6][:6]:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        assert check(_jpeg(rgb, 60)).ok, path.name
        blurred = cv2.GaussianBlur(rgb, (0, 0), 4.0)
        for q in JPEG_QUALITIES:
            report = check(_jpeg(blurred, q))
            assert "blur" in report.failed_checks, (path.name, q, report.message())
