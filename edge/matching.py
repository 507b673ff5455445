"""Raw similarity → calibrated score, so that a threshold means a false-accept rate.

The score is defined by the impostor distribution measured on lfw-dev
(`scripts/build/calibrate.py`): a score of t is the raw similarity above which a
fraction 10^(3 − 10·t) of impostor pairs falls. So 0.4 ↔ FAR 1/10, 0.5 ↔ 1/100,
0.6 ↔ 1/1,000, 0.7 ↔ 1/10,000 (recommended), 0.8 ↔ 1/100,000, 0.9 ↔ 1/1,000,000.

Between knots the map is linear in raw similarity; it is monotone, clipped to
[0, 1]. The calibration file records which embedding it was measured for; an
engine refuses a calibration made for other models or another embedding recipe,
because its scores would no longer mean what the table says.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"


def far_of_threshold(t: float) -> float:
    """The false-accept rate a calibrated threshold stands for: 10^(3 − 10t)."""
    return 10.0 ** (3.0 - 10.0 * t)


def threshold_of_far(far: float) -> float:
    return (3.0 - math.log10(far)) / 10.0


@dataclass(frozen=True)
class Calibration:
    raw: np.ndarray  # increasing raw similarities (knots)
    score: np.ndarray  # calibrated scores at those knots, non-decreasing, in [0, 1]
    signature: dict  # what embedding this calibration belongs to
    info: dict  # how it was made (data, counts, tail fit)

    def __post_init__(self) -> None:
        if len(self.raw) < 2 or len(self.raw) != len(self.score):
            raise ValueError("calibration needs at least two (raw, score) knots of equal count")
        if np.any(np.diff(self.raw) <= 0) or np.any(np.diff(self.score) < 0):
            raise ValueError("calibration knots must be increasing")

    def __call__(self, raw: np.ndarray | float) -> np.ndarray | float:
        out = np.interp(raw, self.raw, self.score)
        return float(out) if np.ndim(out) == 0 else out.astype(np.float32)

    def raw_threshold(self, score: float) -> float:
        """The raw similarity a calibrated threshold corresponds to."""
        return float(np.interp(score, self.score, self.raw))

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(
            raw=np.asarray(data["knots"]["raw"], dtype=np.float64),
            score=np.asarray(data["knots"]["score"], dtype=np.float64),
            signature=data["signature"],
            info=data.get("info", {}),
        )

    def to_dict(self) -> dict:
        return {
            "signature": self.signature,
            "knots": {"raw": [round(float(v), 6) for v in self.raw], "score": [round(float(v), 6) for v in self.score]},
            "info": self.info,
        }


def load_calibrations(path: str | Path) -> list[Calibration]:
    """models/calibration.json holds one calibration per engine profile."""
    data = json.loads(Path(path).read_text())
    return [Calibration.from_dict(entry) for entry in data["calibrations"]]


def save_calibrations(path: str | Path, calibrations: list[Calibration], **meta) -> None:
    data = {**meta, "calibrations": [c.to_dict() for c in calibrations]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def fit_calibration(
    impostor: np.ndarray,
    signature: dict,
    *,
    empirical_min_far: float = 1e-5,
    tail_fit_far: tuple[float, float] = (2e-6, 1e-4),
) -> Calibration:
    """Fit the raw → score map from impostor similarities.

    Down to `empirical_min_far` (score 0.8) the map is the measured impostor
    survival function. Beyond it impostors are too few to measure, so the thin
    tail is extrapolated: log10 FAR is fitted as a straight line in raw
    similarity (an exponential tail) over FAR ∈ `tail_fit_far`, the rarest
    impostors still counted, and continued from the 0.8 knot up to score 1.0
    (FAR 1e-7). Fitting on the far end, where the tail has flattened, keeps the
    extrapolation from promising more than the data shows.
    """
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    n = len(imp)
    if n < 100_000:
        raise ValueError(f"{n} impostor pairs are too few to calibrate down to FAR {empirical_min_far:g}")

    # raw at FAR f: the similarity with a fraction f of impostors above it.
    def raw_at(far: float) -> float:
        return float(imp[min(n - 1, int(math.ceil(n * (1.0 - far))))])

    top = threshold_of_far(empirical_min_far)
    scores = np.round(np.arange(0.30, top + 1e-9, 0.01), 4)
    raws = [raw_at(far_of_threshold(s)) for s in scores]
    far = (n - np.arange(n)) / n  # fraction at or above imp[i]
    lo, hi = tail_fit_far
    sel = (far >= lo) & (far <= hi)
    slope, _ = np.polyfit(imp[sel], np.log10(far[sel]), 1)
    if slope >= 0:
        raise ValueError("impostor tail does not fall with similarity; cannot extrapolate")
    tail_scores = np.round(np.arange(top + 0.01, 1.0 + 1e-9, 0.01), 4)
    # The line through the last measured knot with the fitted slope.
    tail_raws = [
        raws[-1] + (math.log10(far_of_threshold(s)) - math.log10(empirical_min_far)) / slope for s in tail_scores
    ]
    raw = np.array([-1.0, *raws, *tail_raws], dtype=np.float64)
    score = np.array([0.0, *scores, *tail_scores], dtype=np.float64)
    # Enforce strictly increasing raw knots (quantiles can tie on coarse data).
    keep = np.concatenate([[True], np.diff(raw) > 1e-9])
    raw, score = raw[keep], score[keep]
    if raw[-1] < 1.0:
        raw, score = np.append(raw, 1.0), np.append(score, 1.0)
    info = {
        "impostor_pairs": n,
        "measured_down_to_far": empirical_min_far,
        "tail": {"fit_far_range": list(tail_fit_far), "log10_far_per_unit_raw": slope},
        "note": "scores up to 0.8 follow the measured impostor distribution; above 0.8 they follow the "
        "fitted exponential tail, so 0.9 is an extrapolation",
    }
    return Calibration(raw=raw, score=score, signature=signature, info=info)
