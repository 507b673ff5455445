"""Face quality check (the API's ``check_quality``): blur, size, pose, exposure, occlusion.

``assess(rgb, detection, landmarks, crop, level=2, presence=logit)`` measures one face
and holds every measurement to the thresholds of a level; ``measure`` gives the raw,
level-independent values and ``judge`` applies a level to them (log once, judge at any
level). Inputs are what the engine already has: the photo, the BlazeFace `Detection`,
the 468 FaceMesh landmarks in image pixels, the 112×112 crop aligned on their five
points (``align(rgb, five_points_of(landmarks))``; None: made here) and, optionally,
the FaceMesh presence logit (``MeshResult.presence_logit``). No model runs here;
numpy and OpenCV only.

Measurements
------------

Each is a `Measurement` (name, check, value, unit, min/max bound, ok); the check it
belongs to is in brackets.

``in_frame`` [framing]
    Fraction of the detection box inside the photo (boxes are not clipped). A face cut
    by the frame edge loses the parts the embedder needs.
``face_size`` [face_size], px
    Inter-ocular distance in original pixels, as implied by the 5-point similarity fit
    of the alignment (35.24 crop px / the fit's scale): steadier under yaw than the raw
    eye distance, and exactly "how much the crop is enlarged" (35.2 px = native).
``sharpness`` [blur], ratio
    On the grey crop, inside the hull of the inner-face landmarks: fine-band over
    mid-band energy, ``mean|g − G₁g| / mean|G₁g − G₂g|`` with 1-D Gaussians along four
    directions (x, y, both diagonals), the *smallest* of the four. Blur removes the
    fine band first; both bands scale with contrast, so the ratio ignores brightness
    and contrast, which the usual variance of the Laplacian does not (on lfw-dev the
    median photo darkened ×0.2 had a lower Laplacian variance than one blurred with
    σ 2.5, and the clean and σ 1.5 ranges overlapped; darkening does not lower the
    ratio). The worst direction catches motion blur: at 0.7 % false alarms on clean
    photos an isotropic ratio flagged 29 % of 9-px motion blur, this one 93 %.
``mid_sharpness`` [blur], ratio
    The same ratio one band coarser, ``mean|G₁g − G₂g| / mean|G₂g − G₃g|``, the
    *second-best* of the four directions, divided by ``(sharpness / 0.5 × face_size /
    35.2)^¼``. JPEG's 8×8 blocks put energy into the finest band, so a strongly blurred
    face saved as JPEG (quality 60-80) reads sharp to ``sharpness``; the blocks hardly
    reach this band, and Gaussian blur lowers it in every direction, while motion blur
    leaves the directions across the motion (hence the second-best, not the worst). The
    divisor: fine-band energy without mid-band energy is the JPEG signature, not
    detail (a soft but honest photo is low in both), and a large face is shrunk into
    the crop, so the same blur in the photo reads sharper there. Both must pass
    (docs/quality.md, "Blur through JPEG").
``brightness``, ``clipped`` [exposure]
    Mean grey (0-255) of the inner face, and the fraction of its pixels crushed
    (grey ≤ 5) or blown (any channel ≥ 250). Darkness alone hardly hurts the embedder
    (a ×0.35 darkened LFW photo still has cosine 0.97 to its original, below), so the
    lower bound is loose; blown highlights destroy detail (×2: 0.89, ×3: 0.67).
``yaw``, ``pitch``, ``roll`` [pose], degrees (signed; bounds apply to |value|)
    A scaled-orthographic camera fitted to 17 landmarks of a generic 3-D face
    (`MODEL_3D`: FaceMesh's own 3-D output averaged over lfw-dev by generalised
    Procrustes, mirror-symmetrised, LFW's median pitch = 0), read as z·y·x Euler
    angles; roll is the eye line's angle. yaw > 0: nose to the image's right; pitch > 0:
    nose up; roll > 0: clockwise. There is no ground-truth pose in the data; checks:
    against a 3-D rigid fit that uses FaceMesh's depth output, mean absolute
    difference 1.0° yaw, 2.4° pitch, 0.3° roll (6,922 photos); on mirrored photos the
    median |yaw + yaw_mirrored| is 1.35°, corr(yaw, −yaw_mirrored) 0.984. Roll does
    not hurt recognition (alignment undoes it: cosine 0.99 at 35°); it is bounded
    because BlazeFace's keypoints degrade with rotation.
``occlusion`` [occlusion], z
    Parts of the face that do not look like themselves. The face's own skin colour is
    the median L*a*b* of both cheeks and the glabella (the crop's FaceMesh polygons).
    For each part — eyes, nose, mouth, chin — six statistics relative to that skin:
    10th/50th/90th percentile of L* (``dark``, ``median``, ``bright``, over the skin's
    L*), median a* and b* minus the skin's (``a``, ``b``: a blue, white or black mask,
    dark lenses) and the log mean gradient (``texture``); eyes and mouth add two
    *local* contrasts against the ring of skin around them (``local_dark``: eyelashes,
    iris, the lip line; ``local_a``: red lips), which vanish under a hand or a mask in
    skin colour. Left-right differences of the eyes and of the cheeks catch a hand
    over one side. Each of the 50 statistics is turned into a z-score with its lfw-dev
    mean and standard deviation (`OCCLUSION_STATS`, fitted on the identities with an
    even CRC32 — 3,474 photos — and nothing else: a one-class model, never shown an
    occluder); the value is the worst |z|, ``detail`` names it (e.g. ``eye_r.b``). The
    cheeks alone are not scored: as the skin reference they mostly measure uneven
    light, and their tails cost more false alarms than they caught.
``presence`` [occlusion], logit (only when given)
    FaceMesh's face-presence logit (``conv2d_30``). It drops for a lower face that is
    covered (masks, a hand) and for strong blur; ≈ 35 on a normal face.

Levels
------

0 NONE measures nothing and passes; 1 LOW, 2 NORMAL (the default for verification and the
door), 3 HIGH, 4 STRICT tighten every bound (`THRESHOLDS`), so whatever passes a level
passes every lower one. What each rule is worth, measured on lfw-dev and its degraded
copies (`scripts/eval/eval_quality.py`, `scripts/eval/conditions.py`,
`scripts/eval/gate_ablation.py`), is in docs/quality.md.

Degradation
-----------

`degradation(crop)` is not a gate rule: it describes how a face is degraded (motion-blur
vector, darkness, backlight) so that `edge.matching.Calibration.penalty` can lower the
score of two photos degraded alike, and enrolment refuses degraded faces
(`degradation_problems`).

Errors
------

`QualityReport.occluded` is True — answer 4004 (FACE_OCCLUDED) — when the occlusion
check fails and nothing explains it away: framing, face size and blur pass at the
requested level (a cut, tiny or blurred face loses the detail the occlusion cues need;
the presence logit also drops with blur), and exposure and pose do not fail grossly
(at LOW). Exposure or pose failing only at the requested level does not veto 4004,
because an occluder moves them itself: a black mask reads as dark skin, a covered face
confuses the landmarks. Everything else is a quality failure: ``error_code(code)``
returns the code the caller gives for those, ``to_error(code)`` an `EdgeError` whose
message lists the failed measurements (``blur: sharpness 0.38 < 0.42``). For that code
use a new one — e.g. 4005 "face quality too low", HTTP 400 — not 1200 (INVALID_ARGUMENT
means the request is malformed; here it is fine and the photo must be retaken), with
``report.to_dict()`` in the response for the details.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge.errors import FACE_OCCLUDED, EdgeError
from edge.vision.align import ARCFACE_5, TEMPLATE_SIZE, align, transform_for
from edge.vision.landmarks import five_points_of

if TYPE_CHECKING:
    from edge.vision.detector import Detection

# --- levels and thresholds -------------------------------------------------------------


class QualityLevel(IntEnum):
    """How demanding the check is; 0 switches it off."""

    NONE = 0
    LOW = 1
    NORMAL = 2
    HIGH = 3
    STRICT = 4


@dataclass(frozen=True)
class Thresholds:
    """The bounds one level compares the measurements against (see the module docstring)."""

    min_face_size: float  # inter-ocular distance, original-image pixels
    min_in_frame: float  # fraction of the face box inside the image
    min_sharpness: float  # fine-band / mid-band energy of the aligned crop, worst direction
    min_mid_sharpness: float  # mid_sharpness_score: mid/coarse band, second-best direction, JPEG- and size-corrected
    max_noise: float  # the same ratio, bounded above: a finest band that is mostly sensor noise (low light)
    max_yaw: float  # degrees, |value|
    max_pitch: float
    max_roll: float
    min_brightness: float  # mean grey of the face, 0-255
    max_brightness: float
    max_clipped: float  # fraction of face pixels at the ends of the range
    max_occlusion: float  # worst z-score of the face-part statistics
    min_presence: float  # FaceMesh face-presence logit (used only when given)


THRESHOLDS: dict[QualityLevel, Thresholds] = {
    QualityLevel.LOW: Thresholds(
        min_face_size=8.0,
        min_in_frame=0.6,
        min_sharpness=0.40,
        min_mid_sharpness=0.78,
        max_noise=1.2,
        max_yaw=50.0,
        max_pitch=40.0,
        max_roll=45.0,
        min_brightness=25.0,
        max_brightness=235.0,
        max_clipped=0.5,
        max_occlusion=12.0,
        min_presence=0.0,
    ),
    QualityLevel.NORMAL: Thresholds(
        min_face_size=12.0,  # ~32 px faces: TAR 92.8 % at FAR 1e-4, FAR held (conditions.py)
        min_in_frame=0.75,
        min_sharpness=0.42,  # 9-px motion blur still matches (TAR 93 % at FAR 1e-4): let it through
        min_mid_sharpness=0.79,  # σ 4 refused at every JPEG quality 60-95, no clean lfw-dev photo (docs/quality.md)
        max_noise=0.9,  # refuses 99.9 % of low-light faces, 0.3 % of clean ones (docs/quality.md)
        max_yaw=40.0,
        max_pitch=30.0,
        max_roll=45.0,  # alignment undoes roll: 35° costs no TAR and no FAR (docs/quality.md)
        min_brightness=35.0,
        max_brightness=220.0,
        max_clipped=0.25,
        max_occlusion=7.0,
        min_presence=6.0,
    ),
    QualityLevel.HIGH: Thresholds(
        min_face_size=30.0,
        min_in_frame=0.95,
        min_sharpness=0.53,
        min_mid_sharpness=0.82,
        max_noise=0.85,
        max_yaw=25.0,
        max_pitch=20.0,
        max_roll=15.0,
        min_brightness=60.0,
        max_brightness=200.0,
        max_clipped=0.1,
        max_occlusion=5.5,
        min_presence=15.0,
    ),
    QualityLevel.STRICT: Thresholds(
        min_face_size=40.0,
        min_in_frame=1.0,
        min_sharpness=0.56,
        min_mid_sharpness=0.84,
        max_noise=0.8,
        max_yaw=15.0,
        max_pitch=15.0,
        max_roll=8.0,
        min_brightness=80.0,
        max_brightness=190.0,
        max_clipped=0.05,
        max_occlusion=4.5,
        min_presence=20.0,
    ),
}

# The order failures are listed in (framing first: it makes everything else unreliable).
CHECKS = ("framing", "face_size", "blur", "exposure", "pose", "occlusion")


def parse_level(level: QualityLevel | int | str) -> QualityLevel:
    """2, "NORMAL", "normal" or QualityLevel.NORMAL → QualityLevel.NORMAL."""
    if isinstance(level, QualityLevel):
        return level
    if isinstance(level, str):
        text = level.strip()
        if text.isdigit():
            return parse_level(int(text))
        try:
            return QualityLevel[text.upper()]
        except KeyError:
            raise ValueError(
                f"unknown quality level {level!r}; use one of {[lv.name for lv in QualityLevel]}"
            ) from None
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise ValueError(f"quality level must be an int 0-4 or a name, got {level!r}")
    try:
        return QualityLevel(int(level))
    except ValueError:
        raise ValueError(f"quality level must be 0-4, got {level}") from None


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One named measurement and the bound(s) it was held to.

    ``ok`` is ``minimum <= value <= maximum`` (a missing bound is not checked); with
    ``absolute`` the bounds apply to ``|value|`` (pose angles keep their sign).
    ``detail`` says what drove the value when that is not obvious (for ``occlusion``:
    the face part and statistic furthest from normal).
    """

    name: str
    check: str
    value: float
    unit: str
    minimum: float | None = None
    maximum: float | None = None
    absolute: bool = False
    detail: str | None = None

    @property
    def ok(self) -> bool:
        if not math.isfinite(self.value):
            return False
        v = abs(self.value) if self.absolute else self.value
        if self.minimum is not None and v < self.minimum:
            return False
        return not (self.maximum is not None and v > self.maximum)

    @property
    def threshold(self) -> float | tuple[float, float] | None:
        """The bound compared against: a number, or (min, max) for a range."""
        if self.minimum is not None and self.maximum is not None:
            return (self.minimum, self.maximum)
        return self.minimum if self.minimum is not None else self.maximum

    def describe(self) -> str:
        """E.g. ``sharpness 0.38 < 0.42``, or ``|yaw| 42 > 40``."""
        v = abs(self.value) if self.absolute else self.value
        name = f"|{self.name}|" if self.absolute else self.name
        if self.minimum is not None and not v >= self.minimum:
            text = f"{name} {_fmt(v)} < {_fmt(self.minimum)}"
        elif self.maximum is not None and not v <= self.maximum:
            text = f"{name} {_fmt(v)} > {_fmt(self.maximum)}"
        else:
            text = f"{name} {_fmt(v)} ok"
        return f"{text} ({self.detail})" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "value": _json_float(self.value),
            "unit": self.unit,
            "ok": self.ok,
            "min": self.minimum,
            "max": self.maximum,
        }
        if self.absolute:
            out["absolute"] = True
        if self.detail:
            out["detail"] = self.detail
        return out


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def _json_float(x: float) -> float | None:
    return round(float(x), 4) if math.isfinite(x) else None


@dataclass(frozen=True)
class QualityReport:
    """All measurements of one face at one level.

    ``ok`` when every measurement passes. ``occluded`` (→ 4004) when the occlusion
    check fails and its evidence is not explained by something else: the face must pass
    framing, face size and blur at this level (a cut, tiny or blurred face loses the
    detail the occlusion cues look at, and the FaceMesh presence score drops with blur),
    and must not fail exposure or pose grossly, i.e. at LOW (`gross`). Exposure and pose
    failing only at the requested level do not veto 4004, because an occluder itself
    moves them: a black mask reads as dark skin, a covered face confuses the landmarks.
    """

    level: QualityLevel
    measurements: Mapping[str, Measurement]
    gross: tuple[str, ...] = ()  # checks that fail even at LOW

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.measurements.values())

    @property
    def failures(self) -> tuple[str, ...]:
        """Names of the failed measurements, in check order."""
        failed = [m for m in self.measurements.values() if not m.ok]
        failed.sort(key=lambda m: CHECKS.index(m.check))
        return tuple(m.name for m in failed)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        failed = {m.check for m in self.measurements.values() if not m.ok}
        return tuple(c for c in CHECKS if c in failed)

    @property
    def occluded(self) -> bool:
        failed = set(self.failed_checks)
        if "occlusion" not in failed or failed & {"framing", "face_size", "blur"}:
            return False
        return not set(self.gross) & {"exposure", "pose"}

    def error_code(self, quality_code: int) -> int | None:
        """None if ok; 4004 (FACE_OCCLUDED) if `occluded`; otherwise `quality_code`."""
        if self.ok:
            return None
        return FACE_OCCLUDED if self.occluded else int(quality_code)

    def message(self) -> str:
        """Human-readable failures, e.g. ``blur: sharpness 0.21 < 0.27``."""
        if self.ok:
            return "face quality ok"
        parts = [f"{self.measurements[n].check}: {self.measurements[n].describe()}" for n in self.failures]
        return "; ".join(parts)

    def to_error(self, quality_code: int) -> EdgeError | None:
        """The EdgeError to raise for this report (None if ok); the message lists what failed."""
        code = self.error_code(quality_code)
        if code is None:
            return None
        prefix = "face occluded" if code == FACE_OCCLUDED else "face quality too low"
        return EdgeError(code, f"{prefix}: {self.message()}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.name,
            "ok": self.ok,
            "occluded": self.occluded,
            "failed_checks": list(self.failed_checks),
            "gross_failures": list(self.gross),
            "failures": list(self.failures),
            "measurements": {name: m.to_dict() for name, m in self.measurements.items()},
        }


# --- geometry ----------------------------------------------------------------------------

# Generic 3-D face (x right, y down, z away from the camera; unit = outer eye-corner
# distance) at FaceMesh indices: the mean FaceMesh 3-D output over lfw-dev after
# generalised Procrustes, mirror-symmetrised, with LFW's median pitch as 0.
MODEL_3D: dict[int, tuple[float, float, float]] = {
    33: (-0.5000, -0.2849, +0.0872),  # outer eye corner, image-left
    133: (-0.1916, -0.2682, +0.0266),  # inner eye corner
    362: (+0.1916, -0.2682, +0.0266),
    263: (+0.5000, -0.2849, +0.0872),
    1: (+0.0000, +0.1538, -0.3880),  # nose tip
    4: (+0.0000, +0.0827, -0.4120),
    6: (+0.0000, -0.2423, -0.2080),  # nose bridge
    168: (+0.0000, -0.3284, -0.1596),
    98: (-0.1939, +0.1949, -0.1227),  # nose wings
    327: (+0.1939, +0.1949, -0.1227),
    2: (+0.0000, +0.2217, -0.2133),  # under the nose
    61: (-0.3086, +0.4493, +0.0360),  # mouth corners
    291: (+0.3086, +0.4493, +0.0360),
    152: (+0.0000, +0.9527, +0.0644),  # chin
    10: (+0.0000, -0.8463, -0.1128),  # top of the forehead
    234: (-0.7729, -0.0880, +0.6876),  # cheek contour at the ears
    454: (+0.7729, -0.0880, +0.6876),
}
_POSE_INDEX = np.array(list(MODEL_3D), dtype=np.intp)
_POSE_MODEL = np.array(list(MODEL_3D.values()), dtype=np.float64)
_POSE_MODEL_CENTRED = _POSE_MODEL - _POSE_MODEL.mean(axis=0)
_POSE_PINV = np.linalg.pinv(_POSE_MODEL_CENTRED)  # (3, N)

TEMPLATE_IOD = float(np.linalg.norm(ARCFACE_5[1] - ARCFACE_5[0]))  # 35.24 px in the 112 crop


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 468 FaceMesh landmarks (image pixels).

    Yaw and pitch: a scaled-orthographic camera (x ≈ s·R₂·X + t) is fitted by least
    squares to the 17 landmarks of `MODEL_3D`, the 2×3 fit is projected onto the
    nearest scaled rotation (SVD), completed to a rotation R, and R is read as
    roll · yaw · pitch (z · y · x Euler angles), so yaw and pitch do not depend on
    roll. Roll: the angle of the line through the eye centres (what alignment undoes).
    Signs: yaw > 0 when the nose points to the image's right, pitch > 0 when it points
    up, roll > 0 when the face is turned clockwise in the image.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    x = pts[_POSE_INDEX]
    a = (_POSE_PINV @ (x - x.mean(axis=0))).T  # (2, 3): x_c ≈ a @ X_c
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    r12 = u @ vt  # nearest pair of orthonormal rows
    r3 = np.cross(r12[0], r12[1])
    # R = Rz(roll) Ry(b) Rx(c): R[2] = (-sin b, cos b sin c, cos b cos c); +b and +c turn the nose left / down
    yaw = -math.degrees(math.asin(max(-1.0, min(1.0, -float(r3[0])))))
    pitch = -math.degrees(math.atan2(float(r3[1]), float(r3[2])))
    five = five_points_of(pts)
    d = five[1] - five[0]
    roll = math.degrees(math.atan2(float(d[1]), float(d[0])))
    return yaw, pitch, roll


# --- regions of the aligned crop ---------------------------------------------------------

# FaceMesh polygons; "_l" is the image-left side (the subject's right).
# fmt: off
REGIONS: dict[str, tuple[int, ...]] = {
    "eye_l": (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    "eye_r": (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    "nose": (168, 417, 465, 357, 277, 355, 429, 358, 327, 326, 2, 97, 98, 129, 126, 47, 128, 245, 193),
    "mouth": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    "cheek_l": (50, 101, 118, 117, 123, 187, 205, 36),
    "cheek_r": (280, 330, 347, 346, 352, 411, 425, 266),
    "chin": (17, 314, 405, 321, 375, 291, 422, 430, 394, 379, 378, 400, 377, 152, 148, 176, 149, 150, 169,
             210, 202, 61, 146, 91, 181, 84),
    "glabella": (107, 9, 336, 285, 417, 168, 193, 55),
}
# fmt: on
SKIN_REFERENCE = ("cheek_l", "cheek_r", "glabella")
RINGS = {"eye_l": 7, "eye_r": 7, "mouth": 9}  # dilation kernel (crop px) that makes the ring of skin around the part
OCCLUSION_PARTS = ("eye_l", "eye_r", "nose", "mouth", "cheek_l", "cheek_r", "chin")
OCCLUSION_PAIRS = (("eye_l", "eye_r"), ("cheek_l", "cheek_r"))
# What the occlusion score looks at. The cheeks are the skin reference, so on their own
# they mostly measure uneven lighting (their tails cost more false alarms than they
# caught); their left-right difference is kept.
OCCLUSION_SCORED = ("eye_l", "eye_r", "nose", "mouth", "chin", "eye_l~eye_r", "cheek_l~cheek_r")
PART_FEATURES = ("dark", "median", "bright", "a", "b", "texture")
RING_FEATURES = ("local_dark", "local_a")
_MIN_PIXELS = 8

# Mean and standard deviation of each part's features on lfw-dev (identities with an
# even CRC32, 3,474 photos), from `scripts/eval/eval_quality.py --fit`.
OCCLUSION_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "eye_l": (
        (-0.6828, -0.4399, -0.1667, -4.7605, -8.1367, -0.0445, -0.5801, -1.9534),
        (0.1482, 0.1743, 0.1956, 4.5627, 6.0194, 0.3160, 0.1638, 2.6523),
    ),
    "eye_r": (
        (-0.6810, -0.4368, -0.1623, -4.6643, -8.0055, -0.0438, -0.5806, -1.9482),
        (0.1493, 0.1729, 0.1963, 4.6175, 6.0460, 0.3155, 0.1606, 2.6127),
    ),
    "nose": ((-0.3438, -0.0125, 0.2164, 1.0161, -1.1621, -0.5973), (0.1372, 0.0990, 0.1911, 2.3729, 2.6054, 0.3487)),
    "mouth": (
        (-0.5384, -0.2453, 0.0364, 3.8705, -5.7755, -0.2131, -0.4677, 4.1232),
        (0.1733, 0.1362, 0.1821, 5.2208, 4.5415, 0.3228, 0.1837, 4.2476),
    ),
    "chin": ((-0.3224, -0.1053, 0.0724, -0.6416, -1.6577, -1.0726), (0.1549, 0.1174, 0.1467, 3.1474, 3.5443, 0.3551)),
    "eye_l~eye_r": (
        (-0.0017, -0.0030, -0.0043, -0.0973, -0.1310, -0.0006, 0.0003, -0.0058),
        (0.0896, 0.1213, 0.1594, 2.8138, 3.2756, 0.2107, 0.1029, 2.3087),
    ),
    "cheek_l~cheek_r": (
        (-0.0137, -0.0062, -0.0006, -0.2862, -0.3000, 0.0337),
        (0.3090, 0.2656, 0.2417, 4.7503, 5.9734, 0.6537),
    ),
}


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceMeasures:
    """The raw, level-independent values `judge` holds to a level's thresholds.

    ``presence`` is None when no FaceMesh presence logit was given; ``occlusion_detail``
    names the face part and statistic behind ``occlusion`` (e.g. ``"mouth.local_dark"``).
    """

    face_size: float
    in_frame: float
    sharpness: float
    brightness: float
    clipped: float
    yaw: float
    pitch: float
    roll: float
    occlusion: float
    occlusion_detail: str
    presence: float | None = None
    # `mid_sharpness_score`; None (e.g. measures cached before it existed): not checked
    mid_sharpness: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = _json_float(value) if isinstance(value, float) else value
        return out


class _Face:
    """The aligned crop and everything derived from it that the measurements share."""

    def __init__(self, rgb: np.ndarray, landmarks: np.ndarray, crop: np.ndarray | None) -> None:
        self.points = _check_landmarks(landmarks)
        five = five_points_of(self.points)
        self.matrix = transform_for(five)  # image → crop, as `align` warps with these landmarks
        self.crop = align(rgb, five) if crop is None else _check_crop(crop)
        self.scale = math.sqrt(abs(float(np.linalg.det(self.matrix[:, :2]))))  # crop px per image px
        m = self.matrix
        self.crop_points = self.points @ m[:, :2].T + m[:, 2]
        self.valid = _valid_mask(m, rgb.shape[1], rgb.shape[0])
        self.masks = {name: self._polygon(idx) & self.valid for name, idx in _REGION_INDEX.items()}
        hull = cv2.convexHull(np.round(self.crop_points[_INNER_INDEX] * 4).astype(np.int32))
        inner = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
        cv2.fillConvexPoly(inner, hull, 1, lineType=cv2.LINE_8, shift=2)
        self.inner = (inner > 0) & self.valid
        self.grey = cv2.cvtColor(self.crop, cv2.COLOR_RGB2GRAY)

    def _polygon(self, index: np.ndarray) -> np.ndarray:
        mask = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
        cv2.fillPoly(mask, [np.round(self.crop_points[index] * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
        return mask > 0


_REGION_INDEX = {name: np.array(idx, dtype=np.intp) for name, idx in REGIONS.items()}
_INNER_INDEX = np.unique(np.concatenate([np.array(REGIONS[n], dtype=np.intp) for n in REGIONS]))
_CORNERS = np.array([[0, 0], [TEMPLATE_SIZE - 1, 0], [0, TEMPLATE_SIZE - 1], [TEMPLATE_SIZE - 1] * 2], np.float64)
_GRID = (
    np.stack(np.meshgrid(np.arange(TEMPLATE_SIZE), np.arange(TEMPLATE_SIZE)), axis=-1).reshape(-1, 2).astype(np.float64)
)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] != 468 or pts.shape[1] < 2:
        raise ValueError(f"expected (468, 2) FaceMesh landmarks in image pixels, got shape {pts.shape}")
    pts = pts[:, :2]
    if not np.isfinite(pts).all():
        raise ValueError("landmarks must be finite")
    return pts


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def _check_crop(crop: np.ndarray) -> np.ndarray:
    crop = np.asarray(crop)
    if crop.shape != (TEMPLATE_SIZE, TEMPLATE_SIZE, 3) or crop.dtype != np.uint8:
        raise ValueError(f"expected the aligned 112×112×3 uint8 crop, got {crop.dtype} {crop.shape}")
    return crop


def _valid_mask(matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """Crop pixels whose source lies inside the photo (the rest is `align`'s black fill)."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = _CORNERS @ inverse[:, :2].T + inverse[:, 2]
    if corners.min() >= 0 and corners[:, 0].max() <= width - 1 and corners[:, 1].max() <= height - 1:
        return np.ones((TEMPLATE_SIZE, TEMPLATE_SIZE), dtype=bool)  # the usual case: all inside
    src = _GRID @ inverse[:, :2].T + inverse[:, 2]
    inside = (src[:, 0] >= 0) & (src[:, 0] <= width - 1) & (src[:, 1] >= 0) & (src[:, 1] <= height - 1)
    return inside.reshape(TEMPLATE_SIZE, TEMPLATE_SIZE)


def _gauss(sigma: float) -> np.ndarray:
    r = math.ceil(3 * sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def _directional(sigma: float) -> tuple[np.ndarray, ...]:
    """1-D Gaussians along x, y and the two diagonals (diagonal taps are √2 apart)."""
    k, d = _gauss(sigma), _gauss(sigma / math.sqrt(2))
    return (k[None, :], k[:, None], np.diag(d), np.ascontiguousarray(np.fliplr(np.diag(d))))


_FINE, _COARSE, _COARSER = _directional(1.0), _directional(2.0), _directional(3.0)


def _core(mask: np.ndarray) -> np.ndarray | None:
    """`mask` without the pixels near the face's edge and the photo's (None: too few pixels)."""
    core = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    if np.count_nonzero(core) < 64:
        core = mask
    if np.count_nonzero(core) < _MIN_PIXELS:
        return None
    return core.astype(np.uint8)


def sharpness(grey: np.ndarray, mask: np.ndarray) -> float:
    """Fine-band / mid-band energy of the grey crop over `mask`, in the worst direction.

    Along each of four directions θ (1-D Gaussians G_σ,θ, σ in crop pixels):
    ``mean|g − G₁g| / mean|G₁g − G₂g|``; the result is the smallest of the four. Blur
    removes the finest band first, so the ratio falls; both bands scale alike with
    contrast and brightness, so a dark or flat-lit face is not mistaken for a blurred
    one (the variance of the Laplacian is). Taking the worst direction catches motion
    blur, which leaves detail across the motion untouched (an isotropic ratio missed
    two thirds of 9-px motion blur at the same false-alarm rate).
    """
    core = _core(mask)  # keep pixels away from the face's edge and the photo's
    if core is None:
        return math.nan
    return min(_band_ratios(grey.astype(np.float32), core))


def mid_sharpness(grey: np.ndarray, mask: np.ndarray) -> float:
    """Mid-band / coarse-band energy of the grey crop over `mask`, second-best direction.

    ``mean|G₁g − G₂g| / mean|G₂g − G₃g|`` along x, y and the diagonals, as `sharpness` one
    band coarser. Why a second blur measure: JPEG's 8×8 blocking adds energy to the finest
    band, so a face blurred with σ 4 (original pixels) and saved at quality 60-80 reads
    sharp to `sharpness` (lfw-dev median 0.54 at quality 60 against 0.42 without JPEG;
    NORMAL wants 0.42). This band is barely touched by the blocks (0.76 against 0.72) and
    mostly keeps clean faces (median 1.10, 99.5 % above 0.90) apart from blurred ones (σ 4
    at any quality: at most 0.85 on 400 lfw-dev faces, the softest clean photos 0.80;
    `mid_sharpness_score` parts those). The second-best of the four
    directions, not the worst: motion blur lowers the band along the motion only, and the
    door must let 9-px motion blur through (`sharpness` already judges it). Separate from
    `_band_ratios`, so that `degradation` (and the penalty fitted on it) is unchanged.
    """
    core = _core(mask)
    if core is None:
        return math.nan
    g = grey.astype(np.float32)
    pixels = max(cv2.countNonZero(core), 1)
    ratios = []
    for k1, k2, k3 in zip(_FINE, _COARSE, _COARSER):
        g1 = cv2.filter2D(g, -1, k1, borderType=cv2.BORDER_REFLECT)
        g2 = cv2.filter2D(g, -1, k2, borderType=cv2.BORDER_REFLECT)
        g3 = cv2.filter2D(g, -1, k3, borderType=cv2.BORDER_REFLECT)
        coarse = cv2.norm(g2, g3, cv2.NORM_L1, core)
        ratios.append(cv2.norm(g1, g2, cv2.NORM_L1, core) / coarse if coarse > 1e-6 * pixels else 0.0)
    return sorted(ratios)[-2]


def mid_sharpness_score(mid: float, sharp: float, face_size: float) -> float:
    """`mid_sharpness` as judged: ``mid / (sharp / 0.5 × face_size / TEMPLATE_IOD)^¼``.

    `mid_sharpness` alone could not keep every clean lfw-dev photo and refuse every σ 4 +
    JPEG face: the softest clean photos that pass NORMAL (out of focus, upscaled) go down
    to 0.80, while σ 4 + JPEG faces reach 0.85 (a normal-size face at quality 60, its fine
    band lifted by the blocks; faces 65-76 px between the eyes at quality 70-75). Two
    corrections part them (held-out lfw-dev, 3,448 clean photos and 400 faces blurred at
    each quality; docs/quality.md):

    * ÷ sharpness^¼: JPEG's blocks lift the fine band (`sharp`) but not the mid band, so a
      blurred JPEG has a high-ish `sharp` for its `mid`; a soft clean photo is low in both.
    * ÷ face_size^¼: the crop shrinks a face with eyes 70 px apart to 35 px, which halves
      a blur measured in photo pixels, so a large blurred face reads sharper in the crop.

    The exponents were swept (0-0.6 each, steps of 0.05); ¼ and ¼ gave the widest gap
    between the best-scoring σ 4 face the old `sharpness` let through (0.776) and the
    worst clean photo passing NORMAL (0.802). `degradation` does not use this.
    """
    if not (sharp > 0 and face_size > 0) or not math.isfinite(mid):
        return math.nan
    return mid / ((sharp / 0.5) * (face_size / TEMPLATE_IOD)) ** 0.25


def _band_ratios(grey: np.ndarray, mask: np.ndarray) -> list[float]:
    """``mean|g − G₁g| / mean|G₁g − G₂g|`` over `mask` (uint8) along x, y and the two
    diagonals (0 where the mid band is empty): what `sharpness` and `degradation` read."""
    pixels = max(cv2.countNonZero(mask), 1)
    ratios = []
    for fine, coarse in zip(_FINE, _COARSE):
        g1 = cv2.filter2D(grey, -1, fine, borderType=cv2.BORDER_REFLECT)
        g2 = cv2.filter2D(grey, -1, coarse, borderType=cv2.BORDER_REFLECT)
        mid = cv2.norm(g1, g2, cv2.NORM_L1, mask)  # sums over the mask: their ratio is the ratio of means
        ratios.append(cv2.norm(grey, g1, cv2.NORM_L1, mask) / mid if mid > 1e-6 * pixels else 0.0)
    return ratios


def exposure(crop: np.ndarray, grey: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean grey 0-255, fraction of pixels clipped: grey ≤ 5 or any channel ≥ 250) over `mask`."""
    if mask.sum() < _MIN_PIXELS:
        return math.nan, math.nan
    n = int(np.count_nonzero(mask))
    brightness = float(cv2.mean(grey, mask.view(np.uint8))[0])
    top = cv2.max(cv2.max(crop[..., 0], crop[..., 1]), crop[..., 2])
    clipped = ((grey <= 5) | (top >= 250)) & mask
    return brightness, float(np.count_nonzero(clipped)) / n


# Where the face is in every aligned crop (alignment puts it there), for `degradation`, which
# needs no landmarks; the rest of the crop is its surround.
_yy, _xx = np.mgrid[0:TEMPLATE_SIZE, 0:TEMPLATE_SIZE]
_DEGRADATION_MASK = (((_xx - 56) / 40.0) ** 2 + ((_yy - 60) / 48.0) ** 2) <= 1.0
del _yy, _xx
_SURROUND_MASK = ~_DEGRADATION_MASK
_MASKS_U8 = tuple(  # the face region at full and at half resolution, as cv2.norm's masks
    cv2.resize(_DEGRADATION_MASK.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    for side in (TEMPLATE_SIZE, TEMPLATE_SIZE // 2)
)
# The blur vector of a sharp face is not 0 by itself (eyes, brows and mouth are horizontal):
# the mean over clean lfw-dev calibration photos, taken off.
_FACE_ANISOTROPY = np.array([-0.124, 0.004])
DARK_REFERENCE = 70.0  # mean face grey below which a face counts as dark (clean lfw-dev: 0.4 % of faces)
BLUR_FLOOR = 0.30  # blur-vector length up to which a face counts as unblurred (clean lfw-dev: 96 %)
BACKLIGHT_FLOOR = 0.5  # log2(surround / face grey) up to which a face counts as evenly lit (clean lfw-dev: 98 %)


def degradation(crop: np.ndarray) -> np.ndarray:
    """What makes two poor photos of *different* people look alike: ``[blur_x, blur_y, darkness,
    backlight]``.

    (blur_x, blur_y) is motion blur as a double-angle vector: along x, y and the two diagonals,
    the band ratio ``|g − G₁g| / |G₁g − G₂g|`` of `sharpness` on the crop and on the crop
    halved (one octave down, so that long blur shows too), each made ``((r_x − r_y), (r_d −
    r_a)) / mean(r)`` and summed, less a sharp face's own anisotropy. Its length grows with
    anisotropic blur and its angle follows the motion's; impostor pairs blurred the same way
    share the smear and score high (docs/quality.md). `darkness` is log2(DARK_REFERENCE / mean
    grey of the face), `backlight` log2(mean grey of the surround / of the face), both 0 when
    negative. `edge.matching.Calibration.penalty` turns two faces' vectors into a score penalty.
    About 0.4 ms a face, so `Face.degradation` is computed only when asked for.
    """
    grey = cv2.cvtColor(_check_crop(crop), cv2.COLOR_RGB2GRAY).astype(np.float32)
    vector = -_FACE_ANISOTROPY
    for image, mask in zip((grey, cv2.pyrDown(grey)), _MASKS_U8):
        r_x, r_y, r_d, r_a = _band_ratios(image, mask)
        mean = max((r_x + r_y + r_d + r_a) / 4.0, 1e-6)
        vector = vector + np.array([(r_x - r_y) / mean, (r_d - r_a) / mean])
    face = max(float(grey[_DEGRADATION_MASK].mean()), 1.0)
    surround = max(float(grey[_SURROUND_MASK].mean()), 1.0)
    darkness = max(0.0, math.log2(DARK_REFERENCE / face))
    backlight = max(0.0, math.log2(surround / face))
    return np.array([vector[0], vector[1], darkness, backlight], np.float32)


def degradation_problems(vector: np.ndarray) -> list[str]:
    """Why a face's `degradation` makes it a poor template ([] when undegraded: blur length up
    to BLUR_FLOOR, not dark, backlight up to BACKLIGHT_FLOOR). Enrolment refuses such faces, so
    the pair penalty of any enrolled template is 0 and 1:N scores need no conditioning."""
    problems = []
    blur = float(np.hypot(vector[0], vector[1]))
    if blur > BLUR_FLOOR:
        problems.append(f"motion blur (blur length {blur:.2f} > {BLUR_FLOOR})")
    if vector[2] > 0:
        problems.append(f"too dark (mean grey {DARK_REFERENCE / 2 ** float(vector[2]):.0f} < {DARK_REFERENCE:.0f})")
    if vector[3] > BACKLIGHT_FLOOR:
        problems.append(f"backlit (the surround {2 ** float(vector[3]):.1f}× as bright as the face)")
    return problems


def _quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Nearest-rank quantiles with one partial sort (np.percentile costs ~10× more here)."""
    n = len(values)
    ks = [min(n - 1, max(0, round(q * (n - 1)))) for q in qs]
    part = np.partition(values, ks)
    return [float(part[k]) for k in ks]


def part_features(face: _Face) -> dict[str, np.ndarray]:
    """Per face part, statistics relative to the face's own skin (see the module docstring).

    For each part in `OCCLUSION_PARTS`: ``dark``, ``median``, ``bright`` (10th, 50th and
    90th percentile of L*, minus the skin's L*, over the skin's L*), ``a``, ``b`` (median
    a*, b* minus the skin's), ``texture`` (log of the mean L* gradient over the skin's
    L*); eyes and mouth add ``local_dark`` (10th percentile against the ring of skin
    around the part) and ``local_a`` (a* against that ring). Pairs (left − right) are
    the differences of the two parts' vectors. NaN where a part has too few pixels.
    """
    lab = cv2.cvtColor(face.crop, cv2.COLOR_RGB2Lab)
    lum = lab[..., 0].astype(np.float32)
    grad = cv2.magnitude(cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1)).reshape(-1)
    chans = lab.reshape(-1, 3).T.astype(np.float32)  # (3, N): L*, a*, b* (OpenCV's 8-bit scaling)
    ref_mask = np.zeros_like(face.valid)
    for name in SKIN_REFERENCE:
        ref_mask |= face.masks[name]
    if ref_mask.sum() < _MIN_PIXELS:
        ref_mask = face.inner
    if ref_mask.sum() < _MIN_PIXELS:
        return {name: np.full(_n_features(name), np.nan) for name in _feature_keys()}
    ref_px = chans[:, np.flatnonzero(ref_mask)]
    ref = [_quantiles(ref_px[c], (0.5,))[0] for c in range(3)]
    lref = max(ref[0], 12.0)
    out: dict[str, np.ndarray] = {}
    for name in OCCLUSION_PARTS:
        mask = face.masks[name]
        idx = np.flatnonzero(mask)
        if len(idx) < _MIN_PIXELS:
            out[name] = np.full(_n_features(name), np.nan)
            continue
        px = chans[:, idx]
        p10, p50, p90 = _quantiles(px[0], (0.1, 0.5, 0.9))
        a = _quantiles(px[1], (0.5,))[0]
        b = _quantiles(px[2], (0.5,))[0]
        texture = math.log(float(grad[idx].mean()) / lref + 1e-3)
        f = [(p10 - ref[0]) / lref, (p50 - ref[0]) / lref, (p90 - ref[0]) / lref, a - ref[1], b - ref[2], texture]
        if name in RINGS:
            k = RINGS[name]
            ring = (cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0) & ~mask & face.valid
            ring_idx = np.flatnonzero(ring)
            if len(ring_idx) >= _MIN_PIXELS:
                lring = _quantiles(chans[0, ring_idx], (0.5,))[0]
                aring = _quantiles(chans[1, ring_idx], (0.5,))[0]
                f += [(p10 - lring) / max(lring, 12.0), a - aring]
            else:
                f += [math.nan, math.nan]
        out[name] = np.asarray(f, dtype=np.float64)
    for left, right in OCCLUSION_PAIRS:
        out[f"{left}~{right}"] = out[left] - out[right]
    return out


def occlusion_features(rgb: np.ndarray, landmarks: np.ndarray, crop: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """`part_features` of one face, keyed by part (for refitting `OCCLUSION_STATS`)."""
    return part_features(_Face(_check_rgb(rgb), landmarks, crop))


def _n_features(name: str) -> int:
    part = name.split("~")[0]
    return len(PART_FEATURES) + (len(RING_FEATURES) if part in RINGS else 0)


def _feature_keys() -> list[str]:
    return list(OCCLUSION_PARTS) + [f"{a}~{b}" for a, b in OCCLUSION_PAIRS]


def feature_names(key: str) -> tuple[str, ...]:
    part = key.split("~")[0]
    return PART_FEATURES + (RING_FEATURES if part in RINGS else ())


def _stats_vectors() -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    keys, means, stds = [], [], []
    for key, (mean, std) in OCCLUSION_STATS.items():
        keys.append((key, len(mean)))
        means.extend(mean)
        stds.extend(std)
    return keys, np.asarray(means, np.float64), np.asarray(stds, np.float64)


_STAT_KEYS, _STAT_MEAN, _STAT_STD = _stats_vectors()
_STAT_NAMES = [f"{key}.{name}" for key, n in _STAT_KEYS for name in feature_names(key)[:n]]


def occlusion_score(features: Mapping[str, np.ndarray]) -> tuple[float, str]:
    """Worst |z| of the part features against `OCCLUSION_STATS`, and which one it was."""
    vector = np.concatenate([np.asarray(features.get(key, np.full(n, np.nan)), np.float64) for key, n in _STAT_KEYS])
    z = np.abs(vector - _STAT_MEAN) / _STAT_STD
    if not np.isfinite(z).any():
        return 0.0, "none"
    i = int(np.nanargmax(z))
    return float(z[i]), _STAT_NAMES[i]


def measure(
    rgb: np.ndarray,
    detection: Detection | None,
    landmarks: np.ndarray,
    crop: np.ndarray | None = None,
    *,
    presence: float | Any | None = None,
) -> FaceMeasures:
    """All raw measurements of one face (see `assess`)."""
    rgb = _check_rgb(rgb)
    face = _Face(rgb, landmarks, crop)
    height, width = rgb.shape[:2]
    if detection is not None:
        x, y, w, h = (float(v) for v in detection.box)
    else:
        (x, y), (x1, y1) = face.points.min(axis=0).tolist(), face.points.max(axis=0).tolist()
        w, h = x1 - x, y1 - y
    area = max(w, 0.0) * max(h, 0.0)
    inside = max(0.0, min(x + w, width) - max(x, 0.0)) * max(0.0, min(y + h, height) - max(y, 0.0))
    in_frame = float(inside / area) if area > 0 else 0.0
    yaw, pitch, roll = head_pose(face.points)
    brightness, clipped = exposure(face.crop, face.grey, face.inner)
    occlusion, detail = occlusion_score(part_features(face))
    if presence is not None and hasattr(presence, "presence_logit"):
        presence = presence.presence_logit
    face_size = TEMPLATE_IOD / face.scale
    sharp = sharpness(face.grey, face.inner)
    return FaceMeasures(
        face_size=face_size,
        in_frame=in_frame,
        sharpness=sharp,
        brightness=brightness,
        clipped=clipped,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        occlusion=occlusion,
        occlusion_detail=detail,
        presence=None if presence is None else float(presence),
        mid_sharpness=mid_sharpness_score(mid_sharpness(face.grey, face.inner), sharp, face_size),
    )


def judge(measures: FaceMeasures, level: QualityLevel | int | str = QualityLevel.NORMAL) -> QualityReport:
    """Hold raw measurements to one level's thresholds."""
    level = parse_level(level)
    if level is QualityLevel.NONE:
        return QualityReport(level, {})
    t = THRESHOLDS[level]
    m = measures
    items = [
        Measurement("in_frame", "framing", m.in_frame, "fraction", minimum=t.min_in_frame),
        Measurement("face_size", "face_size", m.face_size, "px", minimum=t.min_face_size),
        Measurement("sharpness", "blur", m.sharpness, "ratio", minimum=t.min_sharpness),
        *(
            [Measurement("mid_sharpness", "blur", m.mid_sharpness, "ratio", minimum=t.min_mid_sharpness)]
            if m.mid_sharpness is not None
            else []
        ),
        Measurement("brightness", "exposure", m.brightness, "grey", minimum=t.min_brightness, maximum=t.max_brightness),
        Measurement("noise", "exposure", m.sharpness, "ratio", maximum=t.max_noise),
        Measurement("clipped", "exposure", m.clipped, "fraction", maximum=t.max_clipped),
        Measurement("yaw", "pose", m.yaw, "deg", maximum=t.max_yaw, absolute=True),
        Measurement("pitch", "pose", m.pitch, "deg", maximum=t.max_pitch, absolute=True),
        Measurement("roll", "pose", m.roll, "deg", maximum=t.max_roll, absolute=True),
        Measurement("occlusion", "occlusion", m.occlusion, "z", maximum=t.max_occlusion, detail=m.occlusion_detail),
    ]
    if m.presence is not None:
        items.append(Measurement("presence", "occlusion", m.presence, "logit", minimum=t.min_presence))
    report = QualityReport(level, {item.name: item for item in items})
    if level is QualityLevel.LOW or report.ok:
        gross = report.failed_checks
    else:
        gross = judge(measures, QualityLevel.LOW).failed_checks
    return QualityReport(level, report.measurements, gross)


def assess(
    rgb: np.ndarray,
    detection: Detection | None,
    landmarks: np.ndarray,
    crop: np.ndarray | None = None,
    *,
    level: QualityLevel | int | str = QualityLevel.NORMAL,
    presence: float | Any | None = None,
) -> QualityReport:
    """Quality of one face: every measurement against the thresholds of `level`.

    `rgb` the photo (H, W, 3) uint8; `detection` its BlazeFace `Detection` (the box
    gives ``in_frame``; None: the landmarks' bounding box); `landmarks` the 468
    FaceMesh points in image pixels; `crop` the 112×112 crop aligned from those
    landmarks' five points (None: made here); `presence` the FaceMesh presence
    *logit* (``MeshResult.presence_logit``, or the MeshResult itself), optional.
    Level 0 (NONE) measures nothing and passes.
    """
    level = parse_level(level)
    if level is QualityLevel.NONE:
        return QualityReport(level, {})
    return judge(measure(rgb, detection, landmarks, crop, presence=presence), level)
