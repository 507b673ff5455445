"""The engine's stages one detection at a time, so the loop can embed only the faces it needs.

`Engine.faces` runs detect → landmarks → align → quality → embed for every face of a
frame. The loop detects every frame but identifies a tracked face only while it is
undecided (and then every few frames), so it calls the stages separately. The recipe
(landmarks, alignment, embedder fusion) must be exactly the engine's, or scores would
not match the enrolment's: these calls reuse the engine's own objects and methods.

The engine exposes each step for this (`Engine.landmarks`, `Engine.assess`,
`Engine.embed`), so the loop times them one by one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.vision.align import align
from edge.vision.detector import Detection


class FaceStages:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.detector = engine.detector  # the mode the engine was built with ([engine] detector)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return self.detector.detect(rgb)

    def landmarks(self, rgb: np.ndarray, det: Detection) -> tuple[np.ndarray, Any]:
        """(alignment points, FaceMesh result or None)."""
        return self.engine.landmarks(rgb, det)

    @staticmethod
    def align(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        return align(rgb, points)

    def quality(self, rgb: np.ndarray, det: Detection, mesh: Any, crop: np.ndarray) -> dict | None:
        report = self.engine.assess(rgb, det, mesh, crop)
        return None if report is None else report.to_dict()

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(k, d) unit embeddings, the engine's fusion of its embedders."""
        if not crops:
            return np.empty((0, self.engine.dim), np.float32)
        return np.stack([self.engine.embed(c) for c in crops])
