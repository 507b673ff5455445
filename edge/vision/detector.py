"""BlazeFace face detection: letterbox, run, decode SSD anchors, weighted NMS.

Two MediaPipe BlazeFace models are shipped (see ``models/manifest.json``):

``detector_short`` (short range, 128×128 input, 896 anchors)
    faces that fill a good part of the frame (within ~2 m of a webcam).
``detector_full`` (full range, 192×192 input, 2,304 anchors)
    faces down to a few percent of the frame (far from the camera).

Both regress, per anchor, 16 numbers in input pixels: box centre offset (x, y), box
width and height, then six keypoints (x, y). Their options are MediaPipe's own
(``face_detection_short_range.pbtxt`` / ``face_detection_full_range.pbtxt``):
SsdAnchorsCalculator with ``fixed_anchor_size: true`` and anchor offset 0.5, strides
[8, 16, 16, 16] with 2 anchors per cell per layer (short) or [4] with 1 anchor (full);
TensorsToDetectionsCalculator with x/y/w/h scale = input size, ``sigmoid_score``,
``score_clipping_thresh: 100``, ``min_score_thresh`` 0.5 (short) / 0.6 (full); and
NonMaxSuppressionCalculator with ``min_suppression_threshold: 0.3``, IoU overlap and
the WEIGHTED algorithm. The image is letterboxed (aspect kept, black padding, centred)
and scaled to [-1, 1], as MediaPipe's ImageToTensorCalculator does.

Keypoint order (``KEYPOINTS``) is the subject's: right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion. The subject's right eye is the one on the
*image's* left in an unmirrored photo.

Outputs are found by shape, not name (regressor = last dim 16, classifier = last
dim 1), so a re-quantized model with renamed tensors is a drop-in; int8 inputs and
outputs are (de)quantized by `edge.runtime.Model`.

Measured with ``scripts/eval/eval_detector.py`` on ../shared/data/lfw-dev (6,922 photos,
250×250, one face of ~105 px centred in each), one LiteRT thread and one OpenCV
thread on the 2-core x86_64 dev machine (a Raspberry Pi will be several times
slower), float16 models, ms per photo for the whole ``detect`` (letterbox, model,
decode, NMS; JPEG decoding excluded):

=======  ===================  =======  ======  ==========
mode     photos with ≥1 face  faces    ms      ms median
=======  ===================  =======  ======  ==========
both     6,922 (100 %)        7,769    9.10    9.40
cascade  6,922 (100 %)        7,745    2.43    2.53
short    6,922 (100 %)        7,745    2.40    2.51
full     6,848 (98.93 %)      7,280    6.45    6.68
=======  ===================  =======  ======  ==========

With the int8-weight full-range file (``detector_full_int8w``) in place of float16:
full 6,816 photos (98.47 %, 32 fewer), 6.15 ms; both, cascade and short unchanged
(6,922). Against its float16 source on 1,000 photos: mean top-box IoU 0.994 where
both found a face, keypoints 0.3 px apart, 3 photos where only float16 found one.

Notes from the float16 measurements:

* LFW is short range's home ground (the face is ~40 % of the frame). Full range at
  MediaPipe's 0.6 misses 74 photos; at 0.5 it would miss 8 (its extra detections
  between 0.5 and 0.6 were, on inspection, mostly real background faces).
* Group photos are full range's: in multiface-dev ``facenet_pytorch/multiface.jpg``
  (6 faces, 1200×630) and ``insightface/t1.jpg`` (6 faces, 1280×886) short range finds
  none, full range 6 and 5. Tight face crops are short range's: on the 12 aligned
  96–160 px crops in multiface-dev full range finds none, short range all. ``both``
  and ``cascade`` found everything either model found on every set above.
* Smallest faces (astronaut pasted into a grey frame): short range needs ~16 px of
  its 128 input (≈ 13 % of the frame's long side), full range ~13 px of its 192
  (≈ 7 %; a ~95 px face in 1280×960).
* Rotation: at 90° / 270° both models still find the face, but the keypoints are
  off and an aligned crop comes out tilted by up to ~30°; at 180° only short range
  answers (score 0.60, keypoints wrong). Frames must be upright.
* False positives: none on skimage's coffee, chelsea (a cat), rocket,
  immunohistochemistry, retina, hubble_deep_field; short range scores the
  colour wheel (``skimage.data.colorwheel``) 0.58.
* Per model call, letterbox + decode + NMS cost ~0.3–0.5 ms here; the ``both``
  merge ~0.25 ms. Boxes differ by model: full range's is ~5 % wider and ~5 % of its
  width higher than short range's (median IoU between them 0.80).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

if TYPE_CHECKING:  # runtime is only needed for the type; callers hand us a loaded Model
    from edge.runtime import Model

Kind = Literal["short", "full"]
Mode = Literal["short", "full", "both", "cascade"]
MODES = ("both", "cascade", "short", "full")

KEYPOINTS = (
    "right_eye",  # subject's right = image left
    "left_eye",
    "nose_tip",
    "mouth_centre",
    "right_ear_tragion",
    "left_ear_tragion",
)

# Full range also looks at overlapping square tiles of this side in large frames, so faces
# down to ~24 px are found in 640×480 (scripts/eval/conditions.py); 0 turns tiling off.
TILE = 352
# In a frame large enough to be tiled, detections narrower than this are located again by
# short range on a tight crop (0: off): TAR at FAR 1e-4 for 80 px faces in 640×480 frames
# 98.8 → 99.5 %, 32 px 94.3 → 95.5 % (800 held-out lfw-dev photos, scripts/eval/conditions.py).
REFINE_BELOW = 100.0
# At most this many tiles along a side (64 in all): see `FaceDetector.tiles`.
MAX_TILES_PER_SIDE = 8
SCORE_CLIPPING = 100.0
NUM_COORDS = 16
NUM_KEYPOINTS = 6


@dataclass(frozen=True)
class BlazeFaceConfig:
    """MediaPipe's calculator options for one BlazeFace variant."""

    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # aspect ratio 1.0, plus 1 interpolated scale if 2
    num_anchors: int
    score_threshold: float  # MediaPipe's min_score_thresh


CONFIGS: dict[str, BlazeFaceConfig] = {
    "short": BlazeFaceConfig(128, (8, 16, 16, 16), 2, 896, 0.5),
    "full": BlazeFaceConfig(192, (4,), 1, 2304, 0.6),
}


MODEL_KEYS: dict[str, str] = {"short": "detector_short", "full": "detector_full"}


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Detection:
    """One face in original-image pixels.

    ``box`` is (x, y, w, h) with (x, y) the top-left corner; it is not clipped to the
    image, so a face cut by the frame edge keeps its full extent. ``keypoints`` is a
    read-only (6, 2) float32 array of (x, y) in `KEYPOINTS` order. Coordinates are
    continuous: pixel column i spans [i, i + 1), so its centre is i + 0.5 (OpenCV puts
    it at i; `edge.vision.align.points_from_detection` converts). Equality is identity
    (the array field has no sensible ``==``).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def area(self) -> float:
        return max(self.box[2], 0.0) * max(self.box[3], 0.0)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        x, y, w, h = self.box
        return (x, y, x + w, y + h)

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2, y + h / 2)

    def iou(self, other: Detection) -> float:
        ax0, ay0, ax1, ay1 = self.xyxy
        bx0, by0, bx1, by1 = other.xyxy
        iw = min(ax1, bx1) - max(ax0, bx0)
        ih = min(ay1, by1) - max(ay0, by0)
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def clip_rect(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Corners → (x, y, w, h) in whole pixels, clipped to a width × height image (what APIs report)."""
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(width), x1), min(float(height), y1)
    return (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))


def _detections(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[Detection]:
    """Arrays (xyxy boxes, keypoints, scores), already sorted, → Detection objects."""
    out = []
    for box, kps, score in zip(boxes.tolist(), keypoints.astype(np.float32), scores.tolist()):
        kps.setflags(write=False)
        out.append(Detection((box[0], box[1], box[2] - box[0], box[3] - box[1]), float(score), kps))
    return out


# --- anchors, letterbox, decode, NMS ---------------------------------------------------


def ssd_anchors(input_size: int, strides: Sequence[int], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres (N, 2) as MediaPipe's SsdAnchorsCalculator lays them out.

    Consecutive layers with the same stride share one grid; their anchors are
    interleaved per cell. With ``fixed_anchor_size`` every anchor is 1×1, so only
    the centres ((x + 0.5) / grid, (y + 0.5) / grid) matter.
    """
    parts = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = anchors_per_layer * (last - layer)
        grid = math.ceil(input_size / strides[layer])
        centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        xx, yy = np.meshgrid(centres, centres)  # row-major: y outer, x inner
        cells = np.stack([xx.ravel(), yy.ravel()], axis=1)
        parts.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square model input (input px = orig px * scale + pad)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    size: int

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Normalised input coordinates (..., 2) → original-image pixels."""
        out = np.empty_like(xy, dtype=np.float32)
        out[..., 0] = (xy[..., 0] * self.size - self.pad_x) / self.scale_x
        out[..., 1] = (xy[..., 1] * self.size - self.pad_y) / self.scale_y
        return out


def _crop_padded(rgb: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The side × side square at (left, top), black where it leaves the image."""
    height, width = rgb.shape[:2]
    out = np.zeros((side, side, 3), np.uint8)
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + side), min(height, top + side)
    if x1 > x0 and y1 > y0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = rgb[y0:y1, x0:x1]
    return out


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got dtype {rgb.dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"empty image of shape {rgb.shape}")
    return rgb


def shrink(rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Resize to width×height without aliasing, cheaply.

    While the image is at least twice the target it is halved with an exact 2:1
    INTER_AREA (OpenCV's fast path; an odd last row/column is dropped), then one
    bilinear resize finishes. A direct INTER_AREA at a non-integer ratio costs ~5 ms on
    a 1280×960 frame on the dev machine, this ~0.8 ms; plain bilinear (0.2 ms) aliases:
    on 300 LFW photos pasted into 1280×960 frames full range found 251 of the faces
    with it, 261 with INTER_AREA and 263 with this. Returns the image and the width and height of the original it
    covers (smaller than the original by the dropped odd rows/columns).
    """
    h, w = rgb.shape[:2]
    covered_w, covered_h, factor = w, h, 1
    while w >= 2 * width and h >= 2 * height:
        w, h = w // 2, h // 2
        rgb = cv2.resize(rgb[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)
        factor *= 2
        covered_w, covered_h = w * factor, h * factor
    if (w, h) != (width, height):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    return rgb, covered_w, covered_h


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit `rgb` (H, W, 3) uint8 into a black size×size square, aspect kept, centred.

    Returns the model tensor (1, size, size, 3) float32 in [-1, 1] and the mapping.
    """
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw = min(size, max(1, round(w * scale)))
    nh = min(size, max(1, round(h * scale)))
    rgb, covered_w, covered_h = shrink(rgb, nw, nh)
    pad_x = (size - nw) // 2
    pad_y = (size - nh) // 2
    tensor = np.full((1, size, size, 3), -1.0, dtype=np.float32)
    region = tensor[0, pad_y : pad_y + nh, pad_x : pad_x + nw]
    np.multiply(rgb, np.float32(1 / 127.5), out=region, casting="unsafe")
    region -= 1.0
    return tensor, Letterbox(nw / covered_w, nh / covered_h, pad_x, pad_y, size)


def decode(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    input_size: int,
    score_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw model outputs → candidates above `score_threshold`, in normalised input coords.

    `raw_boxes` (N, 16), `raw_scores` (N,) logits. Returns (boxes (M, 4) xyxy,
    keypoints (M, 6, 2), scores (M,)). Only the M candidates are decoded.
    """
    logits = np.clip(raw_scores.reshape(-1), -SCORE_CLIPPING, SCORE_CLIPPING)
    # sigmoid(x) >= t  <=>  x >= logit(t): threshold on logits, sigmoid the few survivors
    t = min(max(score_threshold, 1e-7), 1 - 1e-7)
    keep = np.flatnonzero(logits >= math.log(t / (1 - t)))
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32)
    scores = 1.0 / (1.0 + np.exp(-logits[keep].astype(np.float32)))
    raw = raw_boxes.reshape(-1, NUM_COORDS)[keep].astype(np.float32) / np.float32(input_size)
    centre = raw[:, 0:2] + anchors[keep]
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[keep][:, None, :]
    sane = (raw[:, 2] > 0) & (raw[:, 3] > 0)
    return boxes[sane], keypoints[sane], scores[sane]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box in `a` (N, 4) against every box in `b` (M, 4) → (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Take the best remaining candidate; every remaining candidate whose IoU with it
    exceeds `threshold` (itself included) joins its cluster; the cluster's boxes and
    keypoints are averaged weighted by score, and the cluster keeps the best score.
    Returns (boxes, keypoints, scores) sorted by score, descending. The IoU matrix is
    computed once; the loop runs once per face, not per candidate.
    """
    n = len(scores)
    if n == 0:
        return boxes, keypoints, scores
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    overlap = iou_matrix(boxes, boxes) > threshold
    alive = np.ones(n, dtype=bool)
    out_boxes, out_kps, out_scores = [], [], []
    for i in range(n):
        if not alive[i]:
            continue
        members = alive & overlap[i]
        members[i] = True
        weights = scores[members]
        total = weights.sum()
        out_boxes.append(weights @ boxes[members] / total)
        out_kps.append(np.tensordot(weights, keypoints[members], axes=1) / total)
        out_scores.append(scores[i])
        alive &= ~members
    return np.stack(out_boxes), np.stack(out_kps), np.asarray(out_scores, dtype=np.float32)


def _pack(detections: Sequence[Detection]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not detections:
        return np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32)
    boxes = np.asarray([d.xyxy for d in detections], dtype=np.float32)
    kps = np.stack([d.keypoints for d in detections]).astype(np.float32)
    scores = np.asarray([d.score for d in detections], dtype=np.float32)
    return boxes, kps, scores


# --- one model ---------------------------------------------------------------------


class BlazeFace:
    """One BlazeFace model: ``detect(rgb)`` → faces sorted by score, descending.

    `score_threshold` defaults to MediaPipe's (0.5 short, 0.6 full); `nms_threshold`
    is the IoU above which candidates merge.
    """

    def __init__(
        self,
        model: Model,
        kind: Kind,
        score_threshold: float | None = None,
        nms_threshold: float = 0.3,
    ) -> None:
        if kind not in CONFIGS:
            raise ValueError(f"kind must be one of {sorted(CONFIGS)}, got {kind!r}")
        config = CONFIGS[kind]
        size = config.input_size
        shape = tuple(model.inputs[0].shape)
        if shape != (1, size, size, 3):
            from edge.runtime import ModelShapeError

            raise ModelShapeError(
                f"{kind}-range BlazeFace takes input (1, {size}, {size}, 3), but {model} has {shape}; "
                "wrong kind or wrong model file"
            )
        self.model = model
        self.kind = kind
        self.config = config
        self.score_threshold = config.score_threshold if score_threshold is None else float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.anchors = ssd_anchors(size, config.strides, config.anchors_per_layer)
        self._regressor, self._classifier = self._find_outputs(model, config.num_anchors)

    @staticmethod
    def _find_outputs(model: Model, num_anchors: int) -> tuple[str, str]:
        regressor = classifier = None
        for spec in model.outputs:
            if int(np.prod(spec.shape)) == num_anchors * NUM_COORDS and spec.shape[-1] == NUM_COORDS:
                regressor = spec.name
            elif int(np.prod(spec.shape)) == num_anchors and spec.shape[-1] == 1:
                classifier = spec.name
        if regressor is None or classifier is None:
            from edge.runtime import ModelShapeError

            raise ModelShapeError(
                f"{model} does not look like BlazeFace: want outputs [1, {num_anchors}, 16] and "
                f"[1, {num_anchors}, 1], got {[s.shape for s in model.outputs]}"
            )
        return regressor, classifier

    def candidates(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces after NMS as arrays in original pixels: (xyxy (K, 4), keypoints (K, 6, 2), scores (K,))."""
        size = self.config.input_size
        tensor, fit = letterbox(rgb, size)
        outputs = self.model.run(tensor)
        boxes, kps, scores = decode(
            outputs[self._regressor], outputs[self._classifier], self.anchors, size, self.score_threshold
        )
        boxes, kps, scores = weighted_nms(boxes, kps, scores, self.nms_threshold)
        if len(scores):
            boxes = fit.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
            kps = fit.to_image(kps)
        return boxes, kps, scores

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return _detections(*self.candidates(rgb))

    __call__ = detect


# --- both models -------------------------------------------------------------------


class FaceDetector:
    """Full-range and/or short-range BlazeFace, merged.

    Modes:

    ``"both"`` (default)
        run both models on the whole frame and merge their faces with a second
        weighted NMS in image pixels (each model's face is one vote, weighted by its
        score), so a face seen by both comes out once with averaged box and keypoints.
        Finds every face either model finds; costs both models.
    ``"cascade"``
        run short range; only if it finds no face (of at least `min_face`) run full
        range. Costs the short model when someone stands close, both when the frame is
        empty or the face is far. Misses a far face when a near one is present, which
        is fine for 1:1 verification (the nearest face is the subject).
    ``"short"``
        cheapest; faces must fill ≳13 % of the frame's long side.
    ``"full"``
        faces down to ≈7 % of the long side, but on LFW-like portraits it misses more
        (at MediaPipe's 0.6 threshold) than short range does.

    Faces whose box is narrower than `min_face` pixels are dropped.

    ``both`` is the default because it is the only mode that never trades a face for
    time. ``cascade`` found the same faces on every set measured (module docstring) at
    27 % of ``both``'s cost on LFW, and is the one to pick for the appliance loop when
    the subject stands close to the camera.
    """

    def __init__(
        self,
        full: BlazeFace | None = None,
        short: BlazeFace | None = None,
        *,
        mode: Mode = "both",
        min_face: float = 0.0,
        nms_threshold: float = 0.3,
        tile: int = TILE,
        refine_below: float = REFINE_BELOW,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "short" and full is None:
            raise ValueError(f"mode {mode!r} needs the full-range detector")
        if mode != "full" and short is None:
            raise ValueError(f"mode {mode!r} needs the short-range detector")
        if full is not None and full.kind != "full":
            raise ValueError("`full` must be a full-range BlazeFace")
        if short is not None and short.kind != "short":
            raise ValueError("`short` must be a short-range BlazeFace")
        self.full = full
        self.short = short
        self.mode = mode
        self.min_face = float(min_face)
        self.nms_threshold = float(nms_threshold)
        if tile and tile < 64:
            raise ValueError(f"tile must be 0 (off) or at least 64 px, got {tile}")
        self.tile = int(tile)
        self.refine_below = float(refine_below) if short is not None else 0.0

    @classmethod
    def open(
        cls,
        mode: Mode = "both",
        *,
        threads: int = 1,
        directory: str | os.PathLike | None = None,
        min_face: float = 0.0,
        tile: int = TILE,
        refine_below: float = REFINE_BELOW,
    ) -> FaceDetector:
        """Load the manifest's detector(s) that `mode` needs."""
        from edge.runtime import open_model

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        full = short = None
        if mode != "short":
            full = BlazeFace(open_model(MODEL_KEYS["full"], threads=threads, directory=directory), "full")
        if mode != "full" or refine_below > 0:
            short = BlazeFace(open_model(MODEL_KEYS["short"], threads=threads, directory=directory), "short")
        return cls(full, short, mode=mode, min_face=min_face, tile=tile, refine_below=refine_below)

    def like(self, mode: Mode) -> FaceDetector:
        """The same models and settings in another mode."""
        return FaceDetector(
            self.full,
            self.short,
            mode=mode,
            min_face=self.min_face,
            nms_threshold=self.nms_threshold,
            tile=self.tile,
            refine_below=self.refine_below,
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        rgb = _check_rgb(rgb)
        if self.mode == "full":
            found = self._keep(*self._full(rgb))
        elif self.mode == "short":
            found = self._keep(*self.short.candidates(rgb))
        elif self.mode == "cascade":
            found = self._keep(*self.short.candidates(rgb))
            if not len(found[2]):
                found = self._keep(*self._full(rgb))
        else:
            fb, fk, fs = self._full(rgb)
            sb, sk, ss = self.short.candidates(rgb)
            found = self._keep(
                *weighted_nms(
                    np.concatenate([fb, sb]), np.concatenate([fk, sk]), np.concatenate([fs, ss]), self.nms_threshold
                )
            )
        if self.refine_below > 0 and len(found[2]) and self.tiles(rgb.shape[1], rgb.shape[0]):
            found = self._refine(rgb, *found)
        return _detections(*found)

    def detect_nearest_and_every(self, rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """(what ``cascade`` finds, what ``both`` finds) in one frame, each model run once.

        For 1:1 verification, which takes the largest face from the cascade's answer but
        reports how many faces the photo holds: the short-range pass is shared, where running
        the two modes one after the other would repeat it. Mode ``both`` only.
        """
        if self.mode != "both":
            raise ValueError(f"detect_nearest_and_every needs mode 'both', not {self.mode!r}")
        rgb = _check_rgb(rgb)
        fb, fk, fs = self._full(rgb)
        sb, sk, ss = self.short.candidates(rgb)
        near = self._keep(sb, sk, ss)
        cascade = near if len(near[2]) else self._keep(fb, fk, fs)
        every = self._keep(
            *weighted_nms(
                np.concatenate([fb, sb]), np.concatenate([fk, sk]), np.concatenate([fs, ss]), self.nms_threshold
            )
        )
        tiled = self.refine_below > 0 and bool(self.tiles(rgb.shape[1], rgb.shape[0]))

        def finish(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[Detection]:
            return _detections(*(self._refine(rgb, *found) if tiled and len(found[2]) else found))

        return finish(cascade), finish(every)

    def tiles(self, width: int, height: int) -> list[tuple[int, int, int]]:
        """(x, y, side) of the square tiles full range also looks at in a width × height frame.

        None unless the frame's long side is at least 1.5 tiles: then the whole-frame pass
        shrinks it so much that faces under ~13 / (192 / long side) px vanish (43 px in
        640×480). The tiles are spread evenly and overlap by at least 16 px at the
        whole-frame pass's scale (48 px in 640×480), so a face too small for that pass lies
        whole inside some tile. At most `MAX_TILES_PER_SIDE` along a side: larger frames
        (photos) get larger tiles.
        """
        t = self.tile
        long_side = max(width, height)
        if not t or long_side < 1.5 * t:
            return []
        overlap = max(48, math.ceil(16 * long_side / CONFIGS["full"].input_size))
        # The overlap grows with the frame and would reach the tile side at ~4,200 px (a 4096-px
        # photo had 141,000 tiles: minutes per photo). Beyond MAX_TILES_PER_SIDE tiles a side the
        # tiles grow instead: frames up to ~1,750 px keep `tile`; a 4096-px photo gets 8×8 tiles
        # of ~810 px, which find faces down to ~55 px there.
        t = max(t, overlap + math.ceil((long_side - overlap) / MAX_TILES_PER_SIDE))

        def starts(size: int) -> list[int]:
            if size <= t:
                return [0]
            n = math.ceil((size - overlap) / (t - overlap))
            return sorted({round(i * (size - t) / (n - 1)) for i in range(n)})

        return [(x, y, t) for y in starts(height) for x in starts(width)]

    def _full(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full range on the whole frame and, in a large frame, on overlapping tiles; merged."""
        found = [self.full.candidates(rgb)]
        height, width = rgb.shape[:2]
        for x, y, side in self.tiles(width, height):
            b, k, s = self.full.candidates(rgb[y : y + side, x : x + side])
            if len(s):
                found.append((b + np.float32([x, y, x, y]), k + np.float32([x, y]), s))
        if len(found) == 1:
            return found[0]
        boxes, kps, scores = (np.concatenate(parts) for parts in zip(*found))
        return weighted_nms(boxes, kps, scores, self.nms_threshold)

    def _refine(
        self, rgb: np.ndarray, boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Small faces located again by short range on a tight crop around them.

        A face found small in a large frame was located at a coarse scale (full range sees
        640×480 at 0.3–0.55×), so its box and keypoints are off by pixels that matter to the
        alignment. Short range on a square crop three face-widths wide, upscaled to its
        128 px input, sees the same face at a third of its input — its best range.
        """
        boxes, kps = boxes.copy(), kps.copy()
        for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            w = max(x1 - x0, y1 - y0)
            if w >= self.refine_below or w <= 0:
                continue
            side = int(round(3 * w))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
            crop = _crop_padded(rgb, left, top, side)
            b, k, s = self.short.candidates(crop)
            if not len(s):
                continue
            b = b + np.float32([left, top, left, top])
            k = k + np.float32([left, top])
            ious = iou_matrix(boxes[i : i + 1], b)[0]
            j = int(np.argmax(ious))
            if ious[j] < 0.3:
                continue
            boxes[i], kps[i] = b[j], k[j]
        return boxes, kps, scores

    __call__ = detect

    def _keep(
        self, boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.min_face > 0 and len(scores):
            keep = (boxes[:, 2] - boxes[:, 0]) >= self.min_face
            return boxes[keep], kps[keep], scores[keep]
        return boxes, kps, scores
