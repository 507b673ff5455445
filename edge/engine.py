"""The face engine: one object that wires the stages and answers the public API.

    image ─▶ intake ─▶ detector ─▶ landmarks ─▶ aligner ─▶ embedder(s) ─▶ matcher
                                        └────────▶ quality

`Engine()` loads every model once; keep it and reuse it. The CLI, MQTT and HTTP
transports and the camera loop all call this class; none of the stages import it.
The per-face recipe (landmarks → align → quality) is written once, in `align_face`;
`faces` and the camera loop both use it, so a template enrolled from a photo and a probe
from a camera frame are made the same way. `identify` is the one 1:N entry point.

Coordinates (`rect`, `landmarks`) are pixels of the image as it is displayed:
after its EXIF orientation, before any `auto_rotate` turn the engine tried.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np

from edge.errors import INVALID_ARGUMENT, NO_FACE_DETECTED, SUCCESS, EdgeError
from edge.images import DEFAULT_LIMITS, Image, IntakeLimits, load_image
from edge.matching import (
    CALIBRATION_FILE,
    DEFAULT_THRESHOLD,
    Calibration,
    Gallery,
    Match,
    far_of_score,
    load_calibrations,
)
from edge.profiles import PROFILE_OPTIONS, PROFILES, Profile
from edge.runtime import ModelError, load_manifest, models_dir, open_model
from edge.vision import quality as quality_stage
from edge.vision.align import align, points_from_detection
from edge.vision.blink import Blink
from edge.vision.detector import TILE, Detection, FaceDetector, clip_rect
from edge.vision.embedder import Embedder
from edge.vision.landmarks import FaceMesh, MeshResult, five_points_of
from edge.vision.liveness import Liveness


@dataclass(frozen=True)
class EngineConfig:
    """What the engine runs. Profiles set the defaults; every field can be overridden."""

    embedders: tuple[str, ...] = PROFILES["accurate"]
    flip: bool = False  # also embed the mirrored crop and average
    landmarks: Literal["facemesh", "blazeface"] = "facemesh"
    # Which BlazeFace models look for faces when every face is wanted (`faces`,
    # `compare_faces`). When only the largest face matters (`verify`,
    # `faces(max_faces=1)`) "both" is narrowed to "cascade": short range, then full
    # range only if short range saw nothing -- the largest face is near enough for
    # short range whenever there is one, at a quarter of the cost.
    detector_mode: Literal["both", "cascade", "full", "short"] = "both"
    # In frames whose long side is at least 1.5 of this, full range also looks at square tiles
    # of this side, so faces down to ~24 px are found in 640×480 (0: off; edge.vision.detector).
    detector_tile: int = TILE
    # Interpreter threads per model; 0 = one per CPU core, at most 4. On an idle 2-core
    # machine two threads cut a photo from 21.8 to 14.1 ms (scripts/bench/bench_vs_dlib.py);
    # under CPU contention they cost more than they gain (25.5 against 21.7 ms), which is
    # why the camera loop, which shares the CPU with its capture thread, runs one
    # (`[engine] threads` in firmware_config/edge.toml).
    threads: int = 0
    limits: IntakeLimits = DEFAULT_LIMITS
    # 1:N cascade: the first embedder's gallery-aware score decides alone when it is more than
    # this below the threshold (a confident non-match); every possible match is confirmed by the
    # full fusion. None: always the full fusion. Chosen by scripts/eval/identification.py.
    cascade_margin: float | None = PROFILE_OPTIONS["accurate"]["cascade_margin"]
    quality_level: int = 2
    models_dir: str | None = None

    @classmethod
    def profile(cls, name: Profile = "accurate", **overrides: Any) -> EngineConfig:
        if name not in PROFILES:
            raise ValueError(f"unknown engine profile {name!r}; choose one of {', '.join(PROFILES)}")
        options = {"cascade_margin": None, **PROFILE_OPTIONS.get(name, {})}
        return replace(cls(embedders=PROFILES[name], **options), **overrides)

    def signature(self) -> dict:
        """What a calibration must have been measured with to be valid for this config."""
        manifest = load_manifest(self.models_dir)["models"]
        return {
            "embedders": {key: manifest[key]["sha256"] for key in self.embedders},
            "flip": self.flip,
            "landmarks": self.landmarks,
        }

    def model_version(self) -> str:
        """16 hex digits naming the embedding recipe: sha256 of `signature()` (templates carry it)."""
        canonical = json.dumps(self.signature(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Identified(NamedTuple):
    """1:N answers for aligned crops: the matches, how many crops needed every embedder, and
    each crop's full embedding (None where the cascade decided on the first embedder alone)."""

    matches: list[Match]
    completed: int
    embeddings: list[np.ndarray | None]


@dataclass
class Face:
    rect: tuple[int, int, int, int]  # x, y, w, h in pixels of the original image
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose tip, mouth left, mouth right (image left/right)
    score: float  # detection confidence
    quality: dict | None
    embedding: np.ndarray  # 1-D float32, unit length
    detection: Detection | None = field(default=None, repr=False)
    rotation: int = 0  # degrees the image was turned to find this face (auto_rotate)
    quality_report: Any = field(default=None, repr=False)  # edge.vision.quality.QualityReport
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)  # the aligned 112×112 crop
    _degradation: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def degradation(self) -> np.ndarray | None:
        """`edge.vision.quality.degradation` of the crop (blur vector, darkness, backlight), for
        `Engine.pair_penalty` and the enrolment gate; measured on first use (~0.4 ms), None
        without a crop."""
        if self._degradation is None and self.crop is not None:
            self._degradation = quality_stage.degradation(self.crop)
        return self._degradation

    def to_dict(self) -> dict:
        return {
            "rect": list(self.rect),
            "landmarks": np.round(self.landmarks, 1).tolist(),
            "score": round(float(self.score), 4),
            "quality": self.quality,
            "rotation": self.rotation,
        }


@dataclass
class AlignedFace:
    """One detection after the per-face recipe: what the embedder and the quality gate need."""

    points: np.ndarray  # (5, 2) alignment points in the frame
    mesh: MeshResult | None  # FaceMesh result (None with BlazeFace landmarks)
    crop: np.ndarray  # aligned 112×112 RGB crop
    quality: Any  # edge.vision.quality.QualityReport, or None (not asked, or no FaceMesh)
    seconds: dict[str, float]  # time spent in "landmarks", "align", "quality"


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _request_id() -> str:
    return uuid.uuid4().hex


def _error(code: int, message: str, request_id: str) -> dict:
    return {"code": code, "message": message, "request_id": request_id}


_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _unrotate_points(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """Map (x, y) from an image turned clockwise by `rotation` back to the original (w×h)."""
    x, y = points[..., 0], points[..., 1]
    if rotation == 0:
        return points
    if rotation == 90:  # rotated (h × w): x' = h - 1 - y, y' = x
        return np.stack([y, height - 1 - x], axis=-1)
    if rotation == 180:
        return np.stack([width - 1 - x, height - 1 - y], axis=-1)
    if rotation == 270:  # x' = y, y' = w - 1 - x
        return np.stack([width - 1 - y, x], axis=-1)
    raise ValueError(rotation)


def _upright(det: Detection) -> bool:
    """Eyes above the mouth: the face reads upright in this frame."""
    right_eye, left_eye, _, mouth = det.keypoints[:4]
    eyes = (right_eye + left_eye) / 2
    down = mouth - eyes
    eye_line = left_eye - right_eye
    return bool(down[1] > 0 and abs(down[0]) < down[1] and eye_line[0] > 0)


class Engine:
    """Loads once, then answers `faces`, `similarity`, `verify` and `compare_faces`."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        profile: Profile = "accurate",
        require_calibration: bool = True,
        allow_paths: bool = True,
    ) -> None:
        self.config = config or EngineConfig.profile(profile)
        # False: images are content only (bytes, base64, arrays); a path is refused and no string
        # is ever opened as a file. Network front ends (HTTP, MQTT) use this (`bytes_only`).
        self.allow_paths = bool(allow_paths)
        threads = self.config.threads or _default_threads()
        directory = self.config.models_dir
        self.detector = FaceDetector.open(
            self.config.detector_mode, threads=threads, directory=directory, tile=self.config.detector_tile
        )
        d = self.detector
        self.largest_face_detector = d.like("cascade") if d.mode == "both" else d
        self.mesh = FaceMesh(open_model("face_mesh", threads=threads, directory=directory))
        self.embedders = [Embedder.open(key, threads=threads, directory=directory) for key in self.config.embedders]
        self.dim = sum(e.dim for e in self.embedders)
        self._threads, self._liveness = threads, None  # the passive liveness stage, opened when first asked
        self._blink = None  # the eyelid stage, likewise
        # The embedding recipe's version: templates carry it, and those of another never match.
        self.model_version = self.config.model_version()
        self.calibration = self._load_calibration()
        # The first embedder alone, for the cascade (its own calibration, e.g. the "fast" profile's).
        self.first_dim = self.embedders[0].dim
        self.first_calibration = (
            self._load_calibration(replace(self.config, embedders=self.config.embedders[:1]))
            if len(self.embedders) > 1
            else self.calibration
        )
        if self.calibration is None and require_calibration:
            raise ModelError(
                f"models/{CALIBRATION_FILE} has no calibration for this engine configuration "
                f"(embedders {list(self.config.embedders)}, flip={self.config.flip}, "
                f"landmarks={self.config.landmarks}); "
                "scores would not mean what the threshold table says. Use a shipped profile, or run "
                "`python scripts/build/calibrate.py`"
            )

    # --- calibration -------------------------------------------------------------------

    def _load_calibration(self, config: EngineConfig | None = None) -> Calibration | None:
        """The calibration measured for exactly this embedding recipe (or `config`'s), if there is one."""
        directory = models_dir() if self.config.models_dir is None else Path(self.config.models_dir)
        path = directory / CALIBRATION_FILE
        if not path.exists():
            return None
        signature = (config or self.config).signature()
        return next((c for c in load_calibrations(path) if c.signature == signature), None)

    # --- stages ------------------------------------------------------------------------

    def bytes_only(self) -> Engine:
        """This engine, sharing its loaded models, for callers whose images come from the network:
        it refuses paths (1200) and never opens a string as a file, so a client can neither make
        the device read a file nor learn whether one exists (docs/api.md, "Paths")."""
        if not self.allow_paths:
            return self
        view = copy.copy(self)
        view.allow_paths = False
        return view

    def load(self, image: Any) -> Image:
        """Any accepted image form → a checked, decoded `Image` (`EdgeError` with the seed's code otherwise)."""
        return load_image(image, limits=self.config.limits, allow_paths=self.allow_paths)

    def _detect(
        self, rgb: np.ndarray, auto_rotate: bool, detector: FaceDetector
    ) -> tuple[list[Detection], int, np.ndarray]:
        """Faces, the clockwise turn (degrees) they were found at, and the turned frame.

        With `auto_rotate` all four turns are tried and the one whose best upright face
        scores highest wins: an upside-down face is still "found" upright, with a low
        score and keypoints in the wrong places, so only a comparison tells them apart.
        """
        faces = detector.detect(rgb)
        if not auto_rotate:
            return faces, 0, rgb
        best: tuple[list[Detection], int, np.ndarray] = ([d for d in faces if _upright(d)], 0, rgb)
        best_score = max((d.score for d in best[0]), default=-1.0)
        for rotation, code in _ROTATE.items():
            turned = cv2.rotate(rgb, code)
            found = [d for d in detector.detect(turned) if _upright(d)]
            score = max((d.score for d in found), default=-1.0)
            if score > best_score:
                best, best_score = (found, rotation, turned), score
        return best

    def faces(
        self, image: Any, *, auto_rotate: bool = False, max_faces: int | None = None, quality: bool = True
    ) -> list[Face]:
        """Every face in `image` (bytes, path, array or base64), largest first.

        `max_faces` stops after the largest N (they are still found among all);
        `quality=False` skips the quality measurements (`Face.quality` is None).
        """
        return self._faces(image, auto_rotate=auto_rotate, max_faces=max_faces, quality=quality)[0]

    def _faces(
        self,
        image: Any,
        *,
        auto_rotate: bool,
        max_faces: int | None,
        quality: bool,
        first_only: bool = False,
        count_every: bool = False,
    ) -> tuple[list[Face], int]:
        """`faces`, and the total number of faces found; `first_only`: embeddings of the first embedder alone.

        The total is of the faces the detector used found. With `count_every` it is of every
        face, as `faces` and `compare_faces` find them, even when only the largest one is wanted
        (`verify`'s `face_count`): the cascade stops at short range, which misses far faces.
        """
        img = image if isinstance(image, Image) else self.load(image)
        rgb = img.rgb
        height, width = rgb.shape[:2]
        detector = self.largest_face_detector if max_faces == 1 else self.detector
        if count_every and detector is not self.detector and not auto_rotate:
            detections, every = self.detector.detect_nearest_and_every(rgb)
            rotation, frame, total = 0, rgb, len(every)
        else:
            detections, rotation, frame = self._detect(rgb, auto_rotate, detector)
            total = len(detections)
            if count_every and detector is not self.detector:
                total = len(self.detector.detect(frame))
        detections = sorted(detections, key=lambda d: d.area, reverse=True)
        chosen = detections[:max_faces]
        aligned = [self.align_face(frame, det, quality=quality) for det in chosen]
        if first_only:
            embeddings = [self._embed_one(self.embedders[0], a.crop) for a in aligned]
        else:
            embeddings = self.embed_many([a.crop for a in aligned])
        # A downscaled photo's faces are reported in the pixels of the photo as sent.
        shown_width, shown_height = img.displayed_size if img.scale != 1.0 else (width, height)
        to_shown = np.array([shown_width / width, shown_height / height])
        out = []
        for det, a, embedding in zip(chosen, aligned, embeddings):
            x0, y0, x1, y1 = det.xyxy
            corners = _unrotate_points(np.array([[x0, y0], [x1, y1]], np.float64), rotation, width, height) * to_shown
            (ax, ay), (bx, by) = corners.min(axis=0), corners.max(axis=0)
            rect = clip_rect(ax, ay, bx, by, shown_width, shown_height)
            landmarks = (_unrotate_points(np.asarray(a.points, np.float64), rotation, width, height) * to_shown).astype(
                np.float32
            )
            report = a.quality
            out.append(
                Face(
                    rect,
                    landmarks,
                    float(det.score),
                    report.to_dict() if report is not None else None,
                    embedding,
                    det,
                    rotation,
                    report,
                    a.crop,
                )
            )
        return out, total

    # --- the per-face recipe (the camera loop calls these directly) -------------------------

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every face the configured detector finds in an RGB frame (no rotation tried)."""
        return self.detector.detect(rgb)

    def align_face(self, rgb: np.ndarray, det: Detection, *, quality: bool = True) -> AlignedFace:
        """Landmarks → aligned crop → quality report (when `quality`) for one detection."""
        t0 = time.perf_counter()
        points, mesh = self.landmarks(rgb, det)
        t1 = time.perf_counter()
        crop = align(rgb, points)
        t2 = time.perf_counter()
        report = self.assess(rgb, det, mesh, crop) if quality else None
        t3 = time.perf_counter()
        return AlignedFace(points, mesh, crop, report, {"landmarks": t1 - t0, "align": t2 - t1, "quality": t3 - t2})

    def open_liveness(self) -> Liveness:
        """The passive liveness stage (`edge.vision.liveness`), opened once."""
        if self._liveness is None:
            self._liveness = Liveness.open(threads=self._threads, directory=self.config.models_dir)
        return self._liveness

    def open_blink(self) -> Blink:
        """The eyelid stage (`edge.vision.blink`), opened once."""
        if self._blink is None:
            self._blink = Blink.open(threads=self._threads, directory=self.config.models_dir)
        return self._blink

    def eye_openness(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """The face's `eye_openness` from its FaceMesh landmarks (the eyelid stage; its model is
        opened on the first call unless `open_blink` came first)."""
        return self.open_blink().get(rgb, landmarks)

    def live_probability(self, rgb: np.ndarray, det: Detection) -> float:
        """Probability that the face in `det` is live, not a photo or a screen (the passive
        liveness stage; its model is opened on the first call unless `open_liveness` came first)."""
        return self.open_liveness().get(rgb, det)

    def landmarks(self, rgb: np.ndarray, det: Detection) -> tuple[np.ndarray, MeshResult | None]:
        """(5-point alignment points, the FaceMesh result or None) for one detection."""
        if self.config.landmarks == "facemesh":
            mesh = self.mesh.run(rgb, det)
            return five_points_of(mesh.landmarks), mesh
        return points_from_detection(det), None

    def assess(self, rgb: np.ndarray, det: Detection, mesh: MeshResult | None, crop: np.ndarray):
        """The quality report (edge.vision.quality) at the configured level; None without FaceMesh."""
        if mesh is None:
            return None
        return quality_stage.assess(
            rgb, det, mesh.landmarks, crop, level=self.config.quality_level, presence=mesh.presence_logit
        )

    def embed(self, crop: np.ndarray) -> np.ndarray:
        """Aligned 112×112 crop → the fused, unit-length embedding."""
        return self._fuse([self._embed_one(embedder, crop) for embedder in self.embedders])

    def _embed_one(self, embedder: Embedder, crop: np.ndarray) -> np.ndarray:
        if self.config.flip:
            e = embedder.infer(np.stack([crop, crop[:, ::-1]])).sum(axis=0)
            return e / np.linalg.norm(e)
        return embedder.infer(crop)[0]

    def _complete(self, first: np.ndarray, crop: np.ndarray) -> np.ndarray:
        """The full fused embedding of a crop whose first-embedder embedding is `first` (the cascade's
        second stage: the other embedders only)."""
        return self._fuse([first, *(self._embed_one(e, crop) for e in self.embedders[1:])])

    def _fuse(self, parts: list[np.ndarray]) -> np.ndarray:
        # Concatenated unit vectors scaled by 1/√k: the dot product of two such
        # embeddings is the mean of the per-model cosines (score-level fusion).
        return (np.concatenate(parts) / np.sqrt(len(parts))).astype(np.float32)

    def embed_many(self, crops: list[np.ndarray]) -> np.ndarray:
        """(k, d) embeddings of k aligned crops; (0, d) for none."""
        if not crops:
            return np.empty((0, self.dim), np.float32)
        return np.stack([self.embed(c) for c in crops])

    def identify_crops(
        self, crops: list[np.ndarray], gallery: Gallery, *, threshold: float = DEFAULT_THRESHOLD
    ) -> tuple[list[Match], int]:
        """1:N for aligned crops, with the cascade when configured: (matches, crops that needed every embedder).

        The first embedder runs on every crop; a crop whose first-embedder gallery-aware score
        is more than `cascade_margin` below `threshold` is a confident non-match and stops there.
        Every other crop — every possible match — gets the full fusion, so no grant rests on
        the first embedder alone.
        """
        found = self.identify_aligned(crops, gallery, threshold=threshold)
        return found.matches, found.completed

    def identify_aligned(
        self, crops: list[np.ndarray], gallery: Gallery, *, threshold: float = DEFAULT_THRESHOLD
    ) -> Identified:
        """`identify_crops`, also returning each crop's full embedding (None where the cascade
        stopped at the first embedder: a confident non-match)."""
        if not crops:
            return Identified([], 0, [])
        if not self._cascades(gallery):
            embeddings = self.embed_many(crops)
            return Identified(self.match(embeddings, gallery), len(crops), list(embeddings))
        first = np.stack([self._embed_one(self.embedders[0], c) for c in crops])
        full: list[np.ndarray | None] = [None] * len(crops)

        def complete(rows: np.ndarray) -> np.ndarray:
            out = np.stack([self._complete(first[i], crops[i]) for i in rows])
            for i, row in zip(rows.tolist(), out):
                full[i] = row
            return out

        matches, completed = self.cascade_match(first, gallery, complete, threshold=threshold)
        return Identified(matches, completed, full)

    @property
    def cascades(self) -> bool:
        """A cascade is configured and possible: several embedders, the first one calibrated alone."""
        return self.config.cascade_margin is not None and len(self.embedders) > 1 and self.first_calibration is not None

    def _cascades(self, gallery: Gallery) -> bool:
        return self.cascades and len(gallery) > 0 and gallery.dim == self.dim

    def cascade_match(
        self,
        first: np.ndarray,
        gallery: Gallery,
        complete: Any,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float | None = None,
    ) -> tuple[list[Match], int]:
        """The cascade on first-embedder unit vectors (k, d1); `complete(rows)` → their full embeddings.

        Returns the matches and how many probes needed the full embedding. `margin` defaults to
        the configured `cascade_margin`.
        """
        block = (0, self.first_dim, float(np.sqrt(len(self.embedders))))
        matches = gallery.match(first, self.first_calibration, block)
        margin = float(self.config.cascade_margin if margin is None else margin)
        open_rows = np.array([i for i, m in enumerate(matches) if m.score >= threshold - margin], dtype=np.int64)
        if len(open_rows):
            for i, m in zip(open_rows.tolist(), self.match(complete(open_rows), gallery)):
                matches[i] = m
        return matches, len(open_rows)

    # --- matching ----------------------------------------------------------------------

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """Calibrated score in 0..1 for embeddings (d,) → float, or (n, d) → (n,) row by row."""
        a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
        if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] != self.dim:
            raise EdgeError(
                INVALID_ARGUMENT,
                f"embeddings must both be ({self.dim},) or (n, {self.dim}); got {a.shape} and {b.shape}",
            )
        raw = np.einsum("...i,...i->...", a, b)
        return self.score(raw)

    def score(self, raw: np.ndarray | float) -> np.ndarray | float:
        """Raw similarity → the calibrated 1:1 score (threshold t ↔ FAR 10^(3 − 10t) per comparison)."""
        if self.calibration is None:
            raise ModelError(
                f"this engine has no calibration (models/{CALIBRATION_FILE}); run `python scripts/build/calibrate.py`"
            )
        return self.calibration(raw)

    def match(self, embeddings: np.ndarray, gallery: Gallery) -> list[Match]:
        """1:N for embeddings (k, d) or (d,): the best enrolled person of each, calibrated."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[-1:] != (self.dim,) or embeddings.ndim not in (1, 2):
            raise EdgeError(
                INVALID_ARGUMENT, f"embeddings must be ({self.dim},) or (k, {self.dim}), got {embeddings.shape}"
            )
        # Only unit vectors mean anything to the calibration; a scaled one would score above any
        # threshold against whoever it points at, so it is refused, not normalised.
        norms = np.linalg.norm(embeddings, axis=-1)
        if not np.all(np.isfinite(embeddings)) or np.any(np.abs(norms - 1.0) > 1e-3):
            raise EdgeError(
                INVALID_ARGUMENT, "an embedding must be finite and of unit length, as Engine.faces makes it"
            )
        if len(gallery) and gallery.dim != self.dim:
            raise EdgeError(
                INVALID_ARGUMENT,
                f"the gallery's templates have {gallery.dim} values but this engine makes {self.dim}: "
                "they were enrolled with another model or profile; re-enrol",
            )
        if self.calibration is None:
            raise ModelError(
                f"this engine has no calibration (models/{CALIBRATION_FILE}); run `python scripts/build/calibrate.py`"
            )
        return gallery.match(embeddings, self.calibration)

    def identify(
        self, probe: Any, gallery: Gallery, *, threshold: float | None = None, auto_rotate: bool = False
    ) -> dict:
        """1:N: who, of everyone in `gallery`, is the largest face of `probe`?

        `probe` is an image in any form the engine accepts, or a 1-D embedding. →
        ``{"code": 1000, "name", "candidate", "score", "verification_score", "margin", "fpir", "far",
        "request_id"}``: `candidate` is the best-scoring person; `score` is gallery-aware (threshold t
        ↔ a stranger is given a name in 10^(3 − 10t) of searches of this gallery, `fpir`), and
        `name` is the candidate when it reaches `threshold` (default
        `edge.matching.DEFAULT_THRESHOLD`, 0.7), else None; `verification_score` is the 1:1
        score of the candidate's best template (`far` per comparison); `margin` is the score
        minus the best *other* person's. Errors as `verify`'s: ``{"code", "message", "request_id"}``.
        """
        request_id = _request_id()
        try:
            threshold = DEFAULT_THRESHOLD if threshold is None else threshold
            if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
                raise EdgeError(INVALID_ARGUMENT, f"threshold must be a calibrated score in 0..1, got {threshold!r}")
            if isinstance(probe, np.ndarray) and probe.ndim == 1:
                embedding = probe
            else:
                faces = self.faces(probe, auto_rotate=auto_rotate, max_faces=1, quality=False)
                if not faces:
                    raise EdgeError(NO_FACE_DETECTED, "no face detected in the image")
                embedding = faces[0].embedding
            m = self.match(embedding, gallery)[0]
            return {
                "code": SUCCESS,
                "name": m.name(float(threshold)),
                "candidate": m.candidate,
                "score": round(m.score, 4),
                "verification_score": round(m.verification_score, 4),
                "margin": round(m.margin, 4),
                "fpir": float(f"{far_of_score(m.score):.3g}"),
                "far": float(f"{far_of_score(m.verification_score):.3g}"),
                "request_id": request_id,
            }
        except EdgeError as exc:
            return _error(exc.code, exc.message, request_id)

    # --- the classic API ---------------------------------------------------------------

    def verify(self, image_a: Any, image_b: Any, *, auto_rotate: bool = False, check_quality: bool = False) -> dict:
        """1:1: the largest face of each image → ``{"code": 1000, "verification_score", "face_count", "request_id"}``.

        `check_quality` refuses a face the quality gate rejects (4004 occluded, else 1200);
        errors are ``{"code", "message", "request_id"}`` (docs/api.md).
        """
        request_id = _request_id()
        cascade = self.cascades
        try:
            chosen, counts = [], {}
            for label, image in (("first", image_a), ("second", image_b)):
                found, total = self._faces(
                    image,
                    auto_rotate=auto_rotate,
                    max_faces=1,
                    quality=check_quality,
                    first_only=cascade,
                    count_every=True,
                )
                if not found:
                    raise EdgeError(NO_FACE_DETECTED, f"no face detected in the {label} image")
                face = found[0]  # the largest
                if check_quality:
                    self._check_quality(face, label)
                chosen.append(face)
                counts[label] = total
            if cascade:
                score = self._cascade_score(chosen[0], chosen[1])
            else:
                score = float(self.similarity(chosen[0].embedding, chosen[1].embedding))
            score = max(0.0, score - float(self.pair_penalty(chosen[:1], chosen[1:])[0, 0]))
            return {
                "code": SUCCESS,
                "verification_score": round(score, 4),
                "face_count": counts,
                "request_id": request_id,
            }
        except EdgeError as exc:
            return _error(exc.code, exc.message, request_id)

    def _cascade_score(self, a: Face, b: Face) -> float:
        """1:1 cascade on two faces embedded by the first embedder: its own calibrated score when it is
        more than `cascade_margin` below the recommended threshold (0.7 − 0.3 = 0.4, i.e. FAR above
        1/10: no sensible threshold accepts it), else the full fusion's."""
        fast = float(self.first_calibration(float(np.dot(a.embedding, b.embedding))))
        if fast < DEFAULT_THRESHOLD - float(self.config.cascade_margin):
            return fast
        full = [self._complete(f.embedding, f.crop) for f in (a, b)]
        return float(self.similarity(full[0], full[1]))

    def compare_faces(self, image_a: Any, image_b: Any, *, auto_rotate: bool = False) -> dict:
        """N×M: every face of A against every face of B → ``{"code": 1000, "scores", "face_rects", "request_id"}``."""
        request_id = _request_id()
        try:
            sides = []
            for label, image in (("first", image_a), ("second", image_b)):
                found = self.faces(image, auto_rotate=auto_rotate, quality=False)
                if not found:
                    raise EdgeError(NO_FACE_DETECTED, f"no face detected in the {label} image")
                sides.append(found)
            first, second = sides
            a = np.stack([f.embedding for f in first])
            b = np.stack([f.embedding for f in second])
            scores = np.maximum(
                0.0, np.asarray(self.score(a @ b.T), dtype=np.float64) - self.pair_penalty(first, second)
            )
            return {
                "code": SUCCESS,
                "scores": np.round(scores, 4).tolist(),
                "face_rects": {"first": [list(f.rect) for f in first], "second": [list(f.rect) for f in second]},
                "request_id": request_id,
            }
        except EdgeError as exc:
            return _error(exc.code, exc.message, request_id)

    def pair_penalty(self, first: list[Face], second: list[Face]) -> np.ndarray:
        """(N, M) score penalty for pairs of photos degraded alike (`Calibration.penalty`): two
        blurred or two dark photos of different people look alike, and the calibration, measured
        on clean photos, would overstate the evidence. 0 when either face is clean."""
        none = np.zeros((len(first), len(second)))
        if self.calibration is None or not first or not second:
            return none
        a = np.stack([f.degradation for f in first])
        if not self.calibration.may_penalise(a).any():  # the usual case: no need to measure `second`
            return none
        return self.calibration.penalty(a, np.stack([f.degradation for f in second]))

    def _check_quality(self, face: Face, label: str) -> None:
        """Occluded → 4004; any other failed check → 1200 (the photo cannot be used; the
        seed API has no other code for it), naming the image and what failed."""
        report = face.quality_report
        if report is None:
            return
        error = report.to_error(INVALID_ARGUMENT)
        if error is not None:
            raise EdgeError(error.code, f"{error.message} (the {label} image)")


__all__ = ["AlignedFace", "Engine", "EngineConfig", "Face", "Identified"]
