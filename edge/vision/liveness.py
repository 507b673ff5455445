"""Passive (single-frame) liveness: a face's detector box → probability that it is live.

One thin class per model, like the embedders. The model is faceplugin's
``fr_liveness`` (MiniFASNet-style, 3 classes, class 0 = live), converted to TFLite by
``scripts/build/build_models.py``; how it must be fed is read from its entry in
``models/manifest.json``:

* the crop is a **square** of the detector box's larger side × 2.7, centred on the
  box centre, resized (bilinear) to 128×128; where it leaves the frame the frame's
  edge pixels are repeated (black there made the model call half of 300 lfw-dev
  faces -- 92 % of whose squares leave their 250×250 frame -- attacks: p(live) median
  0.48 against 0.9996 with the edge repeated; docs/liveness.md);
* **BGR** channel order (fed RGB the model does not separate live from replay),
  raw 0–255 floats, no normalisation;
* the graph ends in logits: the softmax is taken here.

Frames are RGB everywhere in edge; `crop` returns the BGR crop the model wants, so
no caller ever reverses channels itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.runtime import Model

MODEL_KEY = "fr_liveness"
INPUT_SIZE = 128
SCALE = 2.7
LIVE_CLASS = 0


def crop(img_rgb: np.ndarray, box, *, scale: float = SCALE, size: int = INPUT_SIZE) -> np.ndarray:
    """The model's input crop: (size, size, 3) uint8 **BGR**.

    `box` is (x, y, w, h) in continuous pixel coordinates (pixel column i spans
    [i, i + 1), as `edge.vision.detector.Detection.box`), or anything with a ``.box``.
    The square of side max(w, h) × `scale` around the box centre is resampled
    (bilinear, pixel centres matched as ``cv2.resize`` does) to size × size; where it
    leaves the frame the frame's edge pixels are repeated (not black: see the module text).
    """
    x, y, w, h = (float(v) for v in getattr(box, "box", box))
    side = max(w, h) * scale
    if not side > 0:
        raise ValueError(f"liveness crop: empty box {(x, y, w, h)}")
    x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
    s = size / side
    # Source pixel index u (centre at u + 0.5) -> crop index v: v + 0.5 = (u + 0.5 - x0) * s.
    matrix = np.array([[s, 0.0, (0.5 - x0) * s - 0.5], [0.0, s, (0.5 - y0) * s - 0.5]])
    rgb = np.ascontiguousarray(img_rgb[..., :3])
    out = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out[..., ::-1])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


class Liveness:
    """The passive liveness model behind one interface: `get(frame, detection)` → p(live)."""

    def __init__(
        self,
        model: Model,
        *,
        scale: float = SCALE,
        live_class: int = LIVE_CLASS,
        colour: str = "BGR",
        name: str = "",
    ) -> None:
        self.model = model
        self.name = name or model.path.stem
        self.scale = float(scale)
        self.live_class = int(live_class)
        if colour != "BGR":
            raise ValueError(f"{self.name}: this stage feeds BGR crops; the manifest says {colour!r}")
        from edge.runtime import ModelShapeError

        shape = model.inputs[0].shape
        if len(shape) != 4 or shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3) or shape[0] != 1:
            raise ModelShapeError(f"{self.name}: expected an NHWC 1×128×128×3 input, got {shape}")
        self.classes = int(model.outputs[0].shape[-1])
        if not 0 <= self.live_class < self.classes:
            raise ModelShapeError(f"{self.name}: live class {self.live_class} of {self.classes}")

    @classmethod
    def open(cls, key: str = MODEL_KEY, *, threads: int = 1, directory=None) -> Liveness:
        from edge.runtime import model_info, open_model

        info = model_info(key, directory)
        spec = info["input"]
        model = open_model(key, threads=threads, directory=directory)
        return cls(
            model,
            scale=spec.get("crop_scale", SCALE),
            live_class=info.get("live_class", LIVE_CLASS),
            colour=spec.get("colour", "BGR"),
            name=key,
        )

    def crop(self, img_rgb: np.ndarray, box) -> np.ndarray:
        """The BGR 128×128 crop this model is fed for `box` (a Detection or (x, y, w, h))."""
        return crop(img_rgb, box, scale=self.scale)

    def infer(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(128,128,3) or (n,128,128,3) BGR uint8 crops → (n, classes) float32 probabilities."""
        crops_bgr = np.asarray(crops_bgr)
        if crops_bgr.ndim == 3:
            crops_bgr = crops_bgr[None]
        logits = np.empty((len(crops_bgr), self.classes), np.float32)
        for i, one in enumerate(crops_bgr):
            logits[i] = next(iter(self.model.run(one[None].astype(np.float32)).values())).reshape(-1)
        return softmax(logits)

    def probabilities(self, img_rgb: np.ndarray, box) -> np.ndarray:
        """(classes,) probabilities for the face in `box` of an RGB frame."""
        return self.infer(self.crop(img_rgb, box))[0]

    def get(self, img_rgb: np.ndarray, box) -> float:
        """Probability that the face in `box` (a Detection or (x, y, w, h)) of an RGB frame is live."""
        return float(self.probabilities(img_rgb, box)[self.live_class])
