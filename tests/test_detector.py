"""edge.vision.detector: BlazeFace anchors, decoding, NMS, and real photos.

Expected values are what the shipped float16 models measured, with margins wide enough
for a re-quantized drop-in (boxes within IoU ~0.85 of float).
"""

from __future__ import annotations

import csv
import dataclasses

import cv2
import numpy as np
import pytest

from edge import runtime
from edge.runtime import TensorSpec
from edge.vision.detector import (
    CONFIGS,
    BlazeFace,
    Detection,
    FaceDetector,
    decode,
    iou_matrix,
    letterbox,
    ssd_anchors,
    weighted_nms,
)

RIGHT_EYE, LEFT_EYE, NOSE, MOUTH = 0, 1, 2, 3


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detectors(short, full) -> dict[str, FaceDetector]:
    return {mode: FaceDetector(full, short, mode=mode) for mode in ("both", "cascade", "short", "full")}


def _skimage(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def _box(xywh) -> Detection:
    return Detection(tuple(float(v) for v in xywh), 1.0, np.zeros((6, 2), np.float32))


def _inside(point, det: Detection) -> bool:
    x0, y0, x1, y1 = det.xyxy
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


# --- anchors, letterbox, decode, NMS (no model) -------------------------------------------


def test_anchor_counts_and_layout():
    s = CONFIGS["short"]
    a = ssd_anchors(s.input_size, s.strides, s.anchors_per_layer)
    assert a.shape == (896, 2)
    # stride 8: 16×16 grid, 2 anchors per cell, y outer / x inner
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[32], [0.5 / 16, 1.5 / 16])
    # the three stride-16 layers share one 8×8 grid with 6 anchors per cell
    np.testing.assert_allclose(a[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(a[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])

    f = CONFIGS["full"]
    b = ssd_anchors(f.input_size, f.strides, f.anchors_per_layer)
    assert b.shape == (2304, 2)
    np.testing.assert_allclose(b[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(b[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(b[-1], [47.5 / 48, 47.5 / 48])


def test_letterbox_pads_centred_and_maps_back():
    rgb = np.full((100, 200, 3), 255, np.uint8)
    tensor, fit = letterbox(rgb, 128)
    assert tensor.shape == (1, 128, 128, 3) and tensor.dtype == np.float32
    assert (fit.pad_x, fit.pad_y) == (0, 32)
    assert tensor[0, :32].max() == -1.0 and tensor[0, -32:].max() == -1.0  # black padding
    assert tensor[0, 32:96].min() == 1.0  # white image scaled to [-1, 1]
    corners = np.array([[0.0, 32 / 128], [1.0, 96 / 128]], np.float32)
    np.testing.assert_allclose(fit.to_image(corners), [[0, 0], [200, 100]], atol=1e-4)


def test_letterbox_big_frame_is_anti_aliased():
    # 1-pixel black/white stripes must average to grey, not alias to a pattern
    stripes = np.zeros((960, 1280, 3), np.uint8)
    stripes[:, ::2] = 255
    tensor, _ = letterbox(stripes, 192)
    inner = tensor[0, 30:160, 10:180]
    assert abs(float(inner.mean())) < 0.05 and float(inner.std()) < 0.05


def test_letterbox_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        letterbox(np.zeros((10, 10), np.uint8), 128)
    with pytest.raises(ValueError, match="uint8"):
        letterbox(np.zeros((10, 10, 3), np.float32), 128)


def test_decode_one_anchor():
    anchors = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[1, :4] = [12.8, -6.4, 32.0, 64.0]  # dx, dy, w, h in 128-px input units
    raw[1, 4:] = np.arange(12)
    logits = np.array([-5.0, 3.0], np.float32)
    boxes, kps, scores = decode(raw, logits, anchors, 128, 0.5)
    assert len(scores) == 1
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))], rtol=1e-6)
    cx, cy, w, h = 0.75 + 0.1, 0.5 - 0.05, 0.25, 0.5
    np.testing.assert_allclose(boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.75 + 0 / 128, 0.5 + 1 / 128], atol=1e-6)
    np.testing.assert_allclose(kps[0, 5], [0.75 + 10 / 128, 0.5 + 11 / 128], atol=1e-6)


def test_decode_clips_huge_logits():
    anchors = np.zeros((1, 2), np.float32)
    raw = np.zeros((1, 16), np.float32)
    raw[0, 2:4] = 10
    _, _, scores = decode(raw, np.array([1e6], np.float32), anchors, 128, 0.5)
    assert np.isfinite(scores).all() and scores[0] == pytest.approx(1.0)


def test_weighted_nms_merges_overlaps_and_keeps_the_top_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kps = np.stack([np.full((6, 2), v, np.float32) for v in (0, 3, 100)])
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    np.testing.assert_allclose(s, [0.9, 0.7])
    np.testing.assert_allclose(b[0], (0.6 * boxes[0] + 0.9 * boxes[1]) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(k[0], np.full((6, 2), 0.9 * 3 / 1.5), rtol=1e-6)
    np.testing.assert_allclose(b[1], boxes[2])


def test_weighted_nms_empty():
    b, k, s = weighted_nms(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))
    assert len(b) == len(k) == len(s) == 0


def test_iou_matrix():
    a = np.array([[0, 0, 2, 2], [10, 10, 11, 11]], np.float32)
    b = np.array([[1, 1, 3, 3]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 7], [0]], rtol=1e-6)


def test_detection_is_immutable_and_measures():
    d = Detection((10.0, 20.0, 30.0, 40.0), 0.9, np.zeros((6, 2), np.float32))
    assert d.area == 1200 and d.xyxy == (10, 20, 40, 60) and d.centre == (25, 40)
    assert d.iou(d) == pytest.approx(1.0)
    assert d.iou(_box((40, 60, 5, 5))) == 0.0
    assert d.iou(_box((25, 20, 30, 40))) == pytest.approx(600 / 1800)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.score = 0.1


# --- the models ----------------------------------------------------------------------------


def test_blazeface_rejects_the_wrong_kind(short, full):
    with pytest.raises(ValueError, match="input"):
        BlazeFace(short.model, "full")
    with pytest.raises(ValueError, match="kind"):
        BlazeFace(short.model, "medium")
    with pytest.raises(ValueError, match="mode"):
        FaceDetector(full, short, mode="fast")
    with pytest.raises(ValueError, match="short-range"):
        FaceDetector(full, None, mode="both")


class _Renamed:
    """A model whose outputs have other names and the other order (a re-converted file)."""

    def __init__(self, model):
        self._model = model
        self.inputs = model.inputs
        self.outputs = [dataclasses.replace(s, name=f"out{i}") for i, s in enumerate(reversed(model.outputs))]
        self._names = {s.name: f"out{i}" for i, s in enumerate(reversed(model.outputs))}

    def run(self, *arrays):
        return {self._names[k]: v for k, v in self._model.run(*arrays).items()}


def test_outputs_are_found_by_shape_not_name(short, astronaut_rgb):
    renamed = BlazeFace(_Renamed(short.model), "short")
    assert [s.name for s in renamed.model.outputs] == ["out0", "out1"]
    a, b = short.detect(astronaut_rgb), renamed.detect(astronaut_rgb)
    assert len(a) == len(b) == 1 and a[0].iou(b[0]) == pytest.approx(1.0)


def test_outputs_of_the_wrong_shape_are_refused(short):
    fake = _Renamed(short.model)
    fake.outputs = [TensorSpec("x", 0, (1, 10, 16), np.dtype(np.float32), 0.0, 0)]
    with pytest.raises(ValueError, match="BlazeFace"):
        BlazeFace(fake, "short")


@pytest.mark.parametrize("mode", ["both", "cascade", "short", "full"])
def test_astronaut_one_face(detectors, mode, astronaut_rgb):
    faces = detectors[mode].detect(astronaut_rgb)
    assert len(faces) == 1
    face = faces[0]
    # measured: short (178, 81, 94×94) 0.92, full (173, 68, 107×107) 0.94, both (176, 74, 100×100)
    x, y, w, h = face.box
    assert 80 <= w <= 130 and 80 <= h <= 130
    assert 160 <= x <= 195 and 50 <= y <= 95
    assert face.score > 0.85
    kp = face.keypoints
    assert kp.shape == (6, 2) and kp.dtype == np.float32 and not kp.flags.writeable
    for i in (RIGHT_EYE, LEFT_EYE, NOSE, MOUTH):
        assert _inside(kp[i], face), i
    # the subject's right eye is on the image's left; eyes above nose above mouth
    assert kp[RIGHT_EYE, 0] + 20 < kp[LEFT_EYE, 0]
    assert max(kp[RIGHT_EYE, 1], kp[LEFT_EYE, 1]) < kp[NOSE, 1] < kp[MOUTH, 1]
    assert kp[4, 0] < kp[RIGHT_EYE, 0] and kp[5, 0] > kp[LEFT_EYE, 0]  # ears outside the eyes
    # measured right eye (204, 101), left eye (248, 106)
    assert np.linalg.norm(kp[RIGHT_EYE] - [205, 102]) < 8
    assert np.linalg.norm(kp[LEFT_EYE] - [247, 106]) < 8


def test_cameraman_is_found(detectors, camera_rgb):
    # grey, three-quarter profile behind a camera: found by both models (0.79 / 0.77)
    for mode in ("short", "full", "both"):
        faces = detectors[mode].detect(camera_rgb)
        assert len(faces) == 1, mode
        x, y, w, h = faces[0].box
        assert 170 <= x <= 215 and 110 <= y <= 140 and 60 <= w <= 100, (mode, faces[0].box)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "immunohistochemistry", "retina"])
def test_no_face_in_photos_without_faces(detectors, name):
    image = _skimage(name)
    for mode, detector in detectors.items():
        assert detector.detect(image) == [], mode


@pytest.mark.parametrize("quarter_turns", [1, 3])
def test_quarter_turned_face_is_found_but_not_upright(detectors, astronaut_rgb, quarter_turns):
    """Measured: at 90° / 270° both models still find the face (short 0.86 / 0.77, full 0.72 /
    0.66; box IoU ≥ 0.67 with the turned upright box), but the keypoints are a few pixels off,
    so an aligned crop comes out tilted (see test_align). At 180° only short range answers
    (0.60, keypoints wrong). Frames must be upright: fix orientation (EXIF, camera) first."""
    upright = detectors["both"].detect(astronaut_rgb)[0]
    turned = np.ascontiguousarray(np.rot90(astronaut_rgb, quarter_turns))
    x0, y0, x1, y1 = upright.xyxy
    corners = np.array([[x0, y0], [x1, y1]])
    for _ in range(quarter_turns):  # np.rot90: (x, y) -> (y, W - x)
        corners = np.c_[corners[:, 1], 512 - corners[:, 0]]
    expected = _box((*corners.min(0), *(corners.max(0) - corners.min(0))))
    faces = detectors["both"].detect(turned)
    # at 90° short range also scores the turned shuttle 0.50, right at its threshold
    assert 1 <= len(faces) <= 2
    assert faces[0].iou(expected) > 0.55 and faces[0].score > 0.6


@pytest.mark.parametrize("scale", [2.0, 0.5, 0.2])
def test_scaled_photo_gives_the_scaled_box(detectors, astronaut_rgb, scale):
    reference = detectors["both"].detect(astronaut_rgb)[0]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(astronaut_rgb, None, fx=scale, fy=scale, interpolation=interpolation)
    faces = detectors["both"].detect(image)
    assert len(faces) == 1
    # measured IoU 0.97–1.0; keypoints within 2 % of the box
    assert faces[0].iou(_box([v * scale for v in reference.box])) > 0.9
    shift = np.linalg.norm(faces[0].keypoints - reference.keypoints * scale, axis=1).max()
    assert shift < 0.06 * faces[0].box[2]


@pytest.mark.parametrize("crop", [(0, 512, 0, 400), (0, 300, 0, 512), (0, 512, 100, 400)])
def test_letterbox_removal_on_non_square_photos(short, full, astronaut_rgb, crop):
    y0, y1, x0, x1 = crop
    part = np.ascontiguousarray(astronaut_rgb[y0:y1, x0:x1])
    for model in (short, full):
        whole = model.detect(astronaut_rgb)[0]
        found = model.detect(part)
        assert len(found) == 1
        x, y, w, h = found[0].box
        assert _box((x + x0, y + y0, w, h)).iou(whole) > 0.85, model.kind


def test_small_face_in_a_big_frame_needs_full_range(detectors, astronaut_rgb):
    """A ~95 px face in a 1280×960 frame (7 % of the width, 14 px in the 192 input): full
    range finds it, short range cannot (its floor is ~16 px of its 128 input ≈ 13 % of
    the long side). Full range's floor here was ~13 px of its input (7 % of 1280)."""
    frame = np.full((960, 1280, 3), 128, np.uint8)
    frame[448:960, 700:1212] = astronaut_rgb
    assert detectors["short"].detect(frame) == []
    for mode in ("full", "both", "cascade"):
        faces = detectors[mode].detect(frame)
        assert len(faces) == 1, mode
        assert faces[0].iou(_box((874, 517, 94, 94))) > 0.75, faces[0].box


def _far_face_frame(astronaut_rgb, face_px: float, seed: int = 0):
    """The astronaut scaled so her face (box (174, 69, 94, 94) in the photo) is `face_px` wide,
    pasted into a noisy grey 640×480 frame; → (frame, her face box in it, paste offset, scale)."""
    scale = face_px / 94.0
    small = cv2.resize(astronaut_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(110, 6, (480, 640, 3)), 0, 255).astype(np.uint8)
    x0, y0 = min(400, 640 - small.shape[1]), min(200, 480 - small.shape[0])
    frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    truth = _box((x0 + 174 * scale, y0 + 69 * scale, 94 * scale, 94 * scale))
    return frame, truth, np.float32([x0, y0]), scale


def test_tiles_cover_a_large_frame_with_overlap_and_skip_small_ones(short, full):
    detector = FaceDetector(full, short, mode="both", tile=352)
    tiles = detector.tiles(640, 480)
    assert len(tiles) == 4 and all(side == 352 for _, _, side in tiles)
    covered = np.zeros((480, 640), int)
    for x, y, side in tiles:
        assert 0 <= x and 0 <= y and x + side <= 640 and y + side <= 480
        covered[y : y + side, x : x + side] += 1
    assert covered.min() >= 1  # every pixel in some tile
    assert detector.tiles(250, 250) == [] and detector.tiles(500, 400) == []  # the whole-frame pass suffices
    assert len(detector.tiles(1280, 960)) > 4
    assert FaceDetector(full, short, mode="both", tile=0).tiles(640, 480) == []
    with pytest.raises(ValueError):
        FaceDetector(full, short, tile=10)


@pytest.mark.parametrize("face_px", [32, 48])
def test_far_faces_are_found_by_the_tiles(short, full, astronaut_rgb, face_px):
    """A 32–48 px face in 640×480 is ~10–14 px of full range's input over the whole frame: lost;
    in a 352 px tile it is 17–26 px: found (scripts/eval/conditions.py: 13 % → 98 % at 32 px)."""
    frame, truth, _, _ = _far_face_frame(astronaut_rgb, face_px)
    if face_px == 32:  # 10 px of the whole-frame input: below full range's floor
        untiled = FaceDetector(full, short, mode="both", tile=0, refine_below=0).detect(frame)
        assert not any(f.iou(truth) > 0.4 for f in untiled)
    for mode in ("both", "cascade", "full"):
        found = FaceDetector(full, short, mode=mode).detect(frame)
        assert len(found) == 1 and found[0].iou(truth) > 0.5, (mode, [f.box for f in found])


def test_only_small_faces_in_large_frames_are_located_again(short, full, astronaut_rgb):
    """Refinement is for faces found small in a tiled frame; a 250×250 photo is left alone.
    (What it buys, the final alignment of far faces, is tested in test_engine.py.)"""
    frame, truth, _, _ = _far_face_frame(astronaut_rgb, 60)
    coarse = FaceDetector(full, short, mode="both", refine_below=0).detect(frame)
    fine = FaceDetector(full, short, mode="both", refine_below=100).detect(frame)
    assert len(coarse) == len(fine) == 1 and fine[0].box != coarse[0].box and fine[0].iou(truth) > 0.5
    photo = cv2.resize(astronaut_rgb, (250, 250), interpolation=cv2.INTER_AREA)
    a = FaceDetector(full, short, mode="both", refine_below=0).detect(photo)
    b = FaceDetector(full, short, mode="both", refine_below=1000).detect(photo)
    assert [f.box for f in a] == [f.box for f in b]


def test_two_faces_sorted_by_score(detectors, astronaut_rgb):
    frame = np.full((512, 1024, 3), 128, np.uint8)
    frame[:, :512] = astronaut_rgb
    frame[:, 512:] = (astronaut_rgb[:, ::-1] * 0.6).astype(np.uint8)  # mirrored and darker
    faces = detectors["both"].detect(frame)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    assert sorted(f.centre[0] for f in faces)[0] < 512 < sorted(f.centre[0] for f in faces)[1]  # one each side
    mirrored = faces[1].keypoints
    assert mirrored[RIGHT_EYE, 0] < mirrored[LEFT_EYE, 0]  # still in the subject's order


def test_min_face_drops_small_faces(short, full, astronaut_rgb):
    assert len(FaceDetector(full, short, min_face=60).detect(astronaut_rgb)) == 1
    assert FaceDetector(full, short, min_face=200).detect(astronaut_rgb) == []


def test_both_merges_one_face_from_each_model(short, full, detectors, astronaut_rgb):
    a, b = short.detect(astronaut_rgb)[0], full.detect(astronaut_rgb)[0]
    merged = detectors["both"].detect(astronaut_rgb)[0]
    assert merged.score == pytest.approx(max(a.score, b.score))
    assert min(a.box[2], b.box[2]) <= merged.box[2] <= max(a.box[2], b.box[2])


def test_face_detector_open_uses_the_manifest():
    try:
        runtime.models_dir()
    except ImportError:
        pytest.skip("edge is not installed: edge.models is not importable")
    detector = FaceDetector.open("cascade")
    assert detector.full is not None and detector.short is not None and detector.mode == "cascade"
    assert FaceDetector.open("short").full is None


def test_lfw_sample_all_found(shared_dir, detectors):
    """The first 40 lfw-dev photos: short range and both find a face in every one (over all
    6,922: short 100 %, both 100 %, full 98.9 %; see scripts/eval/eval_detector.py)."""
    folder = shared_dir / "lfw-dev"
    with (folder / "labels.csv").open(newline="") as fh:
        rows = [r["image"] for _, r in zip(range(40), csv.DictReader(fh))]
    for name in rows:
        rgb = cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
        for mode in ("short", "both"):
            faces = detectors[mode].detect(rgb)
            assert faces, (mode, name)
            # LFW centres the photographed person: some face covers the centre
            assert any(_inside((125, 125), f) for f in faces), (mode, name)
