"""The engine's stages one detection at a time, so the loop can embed only the faces it needs.

`Engine.faces` runs detect → landmarks → align → quality → embed for every face of a
frame. The loop detects every frame but identifies a tracked face only while it is
undecided (and then every few frames), so it calls the stages separately. The recipe
(landmarks, alignment, embedder fusion) must be exactly the engine's, or scores would
not match the enrolment's: these calls reuse the engine's own objects and methods.

NOTE for the lead: `Engine._embed` and `Engine._quality` are private today. A public
`Engine.face_of(rgb, detection)` (or `embed_crop` / `assess`) would let this file stop
reaching into the engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.vision import landmarks as mesh_points
from edge.vision.align import align, points_from_detection
from edge.vision.detector import Detection


def five_points(mesh: np.ndarray) -> np.ndarray:
    """FaceMesh's 468 points → (5, 2): eye centres, nose tip, mouth corners (image-left first)."""
    return np.stack(
        [
            mesh[list(mesh_points.EYE_IMAGE_LEFT)].mean(axis=0),
            mesh[list(mesh_points.EYE_IMAGE_RIGHT)].mean(axis=0),
            mesh[mesh_points.NOSE_TIP],
            mesh[mesh_points.MOUTH_IMAGE_LEFT],
            mesh[mesh_points.MOUTH_IMAGE_RIGHT],
        ]
    ).astype(np.float32)


class FaceStages:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.detector = engine.detector  # the mode the engine was built with ([engine] detector)
        self.use_mesh = engine.config.landmarks == "facemesh"

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return self.detector.detect(rgb)

    def landmarks(self, rgb: np.ndarray, det: Detection) -> tuple[np.ndarray, np.ndarray | None]:
        """(alignment points, FaceMesh landmarks or None)."""
        if self.use_mesh:
            mesh = self.engine.mesh.infer(rgb, det)
            return five_points(mesh), mesh
        return points_from_detection(det), None

    @staticmethod
    def align(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        return align(rgb, points)

    def quality(self, rgb: np.ndarray, det: Detection, mesh: np.ndarray | None, crop: np.ndarray) -> dict | None:
        return self.engine._quality(rgb, det, mesh, crop)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(k, d) unit embeddings, the engine's fusion of its embedders."""
        if not crops:
            return np.empty((0, self.engine.dim), np.float32)
        return np.stack([self.engine._embed(c) for c in crops])
