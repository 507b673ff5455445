"""The passive liveness stage (edge/vision/liveness.py) and its shipped model, fr_liveness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.runtime import model_info
from edge.vision.detector import FaceDetector
from edge.vision.liveness import INPUT_SIZE, MODEL_KEY, SCALE, Liveness, crop

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "liveness_onnx.json"


@pytest.fixture(scope="module")
def liveness() -> Liveness:
    return Liveness.open()


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.open("both")


def test_the_model_loads_as_the_manifest_describes_it(liveness):
    info = model_info(MODEL_KEY)
    assert info["role"] == "liveness" and info["default"]
    assert info["input"]["colour"] == "BGR" and info["input"]["crop_scale"] == SCALE
    assert info["live_class"] == 0 == liveness.live_class
    assert liveness.model.inputs[0].shape == (1, INPUT_SIZE, INPUT_SIZE, 3)
    assert liveness.classes == 3
    assert "MIT per package.json" in info["license"] and "LICENSE file names" in info["license"]


def test_a_live_face_in_a_real_photo(liveness, detector, astronaut_rgb):
    """skimage's astronaut: a photograph, but of a live face, and the model calls it live."""
    (face,) = detector.detect(astronaut_rgb)
    p = liveness.probabilities(astronaut_rgb, face)
    assert p.shape == (3,) and np.all(p >= 0)
    assert abs(float(p.sum()) - 1.0) < 1e-5  # the stage's softmax over the graph's logits
    assert liveness.get(astronaut_rgb, face) == pytest.approx(float(p[0]))
    assert liveness.get(astronaut_rgb, face) > 0.5
    # A Detection or its (x, y, w, h) box: the same crop.
    assert liveness.get(astronaut_rgb, face.box) == liveness.get(astronaut_rgb, face)


def test_the_crop_is_bgr_square_and_centred(astronaut_rgb):
    """Where the x2.7 square is exactly 128 px wide (scale 1) at whole-pixel offsets, the crop is the
    frame's pixels themselves -- in BGR order."""
    w = INPUT_SIZE / SCALE
    box = (256 - w / 2, 200 - w / 2, w, w)
    got = crop(astronaut_rgb, box)
    assert got.shape == (INPUT_SIZE, INPUT_SIZE, 3) and got.dtype == np.uint8
    by_hand = astronaut_rgb[136:264, 192:320]
    np.testing.assert_array_equal(got, by_hand[..., ::-1])
    assert not np.array_equal(got, by_hand)  # not RGB
    # A tall box: the square follows its larger side, centred on the box centre.
    tall = crop(astronaut_rgb, (256 - w / 4, 200 - w / 2, w / 2, w))
    np.testing.assert_array_equal(tall, got)


def test_rgb_and_bgr_crops_give_different_answers(liveness, astronaut_rgb):
    face = (175.4, 74.4, 100.4, 100.4)
    bgr = liveness.crop(astronaut_rgb, face)
    assert not np.allclose(liveness.infer(bgr), liveness.infer(bgr[..., ::-1]), atol=1e-3)


def test_a_face_at_the_frame_edge(liveness, detector, astronaut_rgb):
    """The face cut close by the frame: the square leaves the frame, the frame's edge pixels are
    repeated there (not black: black borders read as an attack), and the model still answers."""
    frame = np.ascontiguousarray(astronaut_rgb[60:, 160:])
    (face,) = detector.detect(frame)
    x, y, w, h = face.box
    side = max(w, h) * SCALE
    assert x + w / 2 - side / 2 < 0 and y + h / 2 - side / 2 < 0  # the crop leaves the frame
    c = liveness.crop(frame, face)
    np.testing.assert_array_equal(c[:4, :4], np.broadcast_to(frame[0, 0, ::-1], (4, 4, 3)))  # the corner repeated
    assert c[INPUT_SIZE // 2 :, INPUT_SIZE // 2 :].mean() > 20  # inside: the photo
    p = liveness.probabilities(frame, face)
    assert np.isfinite(p).all() and abs(float(p.sum()) - 1.0) < 1e-5
    # A box wholly outside the frame gives a crop of repeated edge pixels, not an error.
    assert crop(frame, (-500.0, -500.0, 50.0, 50.0)).shape == (INPUT_SIZE, INPUT_SIZE, 3)


def test_an_empty_box_is_refused(astronaut_rgb):
    with pytest.raises(ValueError, match="empty box"):
        crop(astronaut_rgb, (10.0, 10.0, 0.0, 0.0))


@pytest.mark.parametrize("case", json.loads(FIXTURE.read_text())["cases"], ids=lambda c: c["name"])
def test_parity_with_the_source_model_in_onnxruntime(liveness, _skimage_photos, case):
    """Probabilities the build computed with the source .onnx in onnxruntime on the same crops
    (tests/fixtures/liveness_onnx.json, written by scripts/build/build_models.py)."""
    y0, y1, x0, x1 = case["region"]
    frame = np.ascontiguousarray(_skimage_photos[case["photo"]][y0:y1, x0:x1])
    got = liveness.probabilities(frame, case["box"])
    np.testing.assert_allclose(got, case["probabilities_onnxruntime"], atol=1e-4)


def test_the_loop_reports_eye_openness_and_a_blink_of_painted_shut_eyes(astronaut_rgb):
    """Real frames through the real loop with the shipped models: the astronaut, whose eyes are
    painted shut on two frames (as tests/test_blink.py paints them), then open again; the grant's
    liveness figures carry the track's eye_openness and the blink. The same frames without the
    painted ones: no blink."""
    import time

    from test_blink import _paint_eyes_shut

    from edge.app import engine_from_config
    from edge.appliance.loop import Appliance
    from edge.camera.base import Frame
    from edge.config import Config, config_from_dict
    from edge.matching import Gallery

    engine = engine_from_config(Config())
    (face,) = engine.faces(astronaut_rgb, max_faces=1)
    gallery = Gallery.from_embeddings(["astronaut"], face.embedding[None])
    det = max(engine.detect(astronaut_rgb), key=lambda d: d.area)
    shut = _paint_eyes_shut(astronaut_rgb, engine.landmarks(astronaut_rgb, det)[1].landmarks)
    config = config_from_dict(
        {"vault": {"path": ""}, "audit": {"path": ""}, "liveness": {"mode": "passive", "blink": True}}
    )

    def grant(frames):
        app = Appliance(engine, gallery, None, config=config, sinks=[])
        verdicts = []
        for i, image in enumerate(frames):
            verdicts += app.process(Frame(image, i, i / 15, time.monotonic()))
        (granted,) = [v for v in verdicts if v.decision == "granted"]
        assert app.stats()["stages_ms"]["blink"]["n"] >= 5
        return granted.to_dict()["liveness"]

    blinking = grant([astronaut_rgb, shut, shut] + [astronaut_rgb] * 7)
    still = grant([astronaut_rgb] * 10)
    assert blinking["blink"] is True and still["blink"] is False, (blinking, still)
    assert 0.15 < still["eye_openness"] < 0.3
