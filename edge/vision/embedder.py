"""Aligned 112×112 face crop → L2-normalised embedding.

One thin class per model, in the style of opencv_zoo's ``sface.py``: `infer` and
`match`, nothing else. How a model must be fed (mean, std, colour order) is read
from its entry in ``models/manifest.json``, so the numbers live in one place --
next to the weights they belong to.

Every shipped embedder takes an NHWC float crop, (x - mean) / std of the RGB pixels:
MobileFaceNet (127.5, 128), fr_feature (127, 128) and SFace (127.5, 128 -- the source
graph normalised raw 0..255 pixels inside itself; the conversion moved that here).
Crops are always RGB; a model whose manifest says ``"colour": "BGR"`` gets its
channels reversed here, so no caller ever feeds a model the wrong colour order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.runtime import Model

CROP_SIZE = 112


class Embedder:
    """A face embedder (MobileFaceNet, fr_feature, SFace, …) behind one interface."""

    def __init__(self, model: Model, *, mean: float, std: float, name: str = "", colour: str = "RGB") -> None:
        self.model = model
        self.mean = float(mean)
        self.std = float(std)
        self.name = name or model.path.stem
        if colour not in ("RGB", "BGR"):
            raise ValueError(f"{self.name}: colour order must be RGB or BGR, got {colour!r}")
        self.colour = colour
        shape = model.inputs[0].shape
        if len(shape) != 4 or shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            from edge.runtime import ModelShapeError

            raise ModelShapeError(f"{self.name}: expected an NHWC 112×112×3 input, got {shape}")
        self.batch = shape[0]
        self.dim = int(model.outputs[0].shape[-1])

    @classmethod
    def open(cls, key: str, *, threads: int = 1, directory=None) -> Embedder:
        from edge.runtime import model_info, open_model

        spec = model_info(key, directory)["input"]
        model = open_model(key, threads=threads, directory=directory)
        return cls(model, mean=spec["mean"], std=spec["std"], name=key, colour=spec.get("colour", "RGB"))

    def infer(self, crops: np.ndarray) -> np.ndarray:
        """(112,112,3) or (n,112,112,3) RGB uint8 → (n, dim) float32, unit length."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if self.colour == "BGR":
            crops = crops[..., ::-1]
        out = np.empty((len(crops), self.dim), np.float32)
        for i in range(0, len(crops), self.batch):
            chunk = (crops[i : i + self.batch].astype(np.float32) - self.mean) / self.std
            n = len(chunk)
            if n < self.batch:  # a fixed-batch graph: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]), np.float32)])
            out[i : i + n] = next(iter(self.model.run(chunk).values())).reshape(self.batch, -1)[:n]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    @staticmethod
    def match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity of unit embeddings, row by row (or one pair)."""
        return np.sum(np.asarray(a) * np.asarray(b), axis=-1)
