"""A verdict about one tracked face, as every sink publishes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from edge.matching import far_of_score
from edge.sinks.base import json_line


def iso(ts: float) -> str:
    """Epoch seconds → ISO 8601 UTC with milliseconds ("2025-11-22T18:40:01.123Z")."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def compact_quality(quality: dict | None) -> dict | None:
    """The quality stage's report, small enough for every verdict: ok, failures, one value per measurement.

    ``{"ok": true, "failures": [], "occluded": false, "face_size": 67.7, "sharpness": 0.54, "yaw": -3.7, …}``.
    A report of another shape is passed through unchanged.
    """
    if not isinstance(quality, dict) or not isinstance(quality.get("measurements"), dict):
        return quality
    out = {k: quality[k] for k in ("ok", "failures", "occluded") if k in quality}
    for name, m in quality["measurements"].items():
        value = m.get("value") if isinstance(m, dict) else m
        out[name] = round(value, 3) if isinstance(value, float) else value
    return out


@dataclass(frozen=True)
class Verdict:
    device_id: str
    seq: int  # 1, 2, 3 … for this device; continues across restarts when there is an audit log
    decision: str  # "granted" | "denied" | "unknown" | "spoof"
    name: str | None  # the person (granted only)
    score: float  # gallery-aware 0..1: t ↔ FPIR 10^(3 − 10t) per search (edge.matching.identification_score)
    threshold: float
    margin: float | None  # best person's score minus the runner-up's
    frames_used: int
    track_id: int
    rect: tuple[int, int, int, int]  # x, y, w, h in the frame
    quality: dict | None  # the quality stage's report on the deciding frame, if installed (compacted in JSON)
    first_seen: float  # epoch seconds: the track's first frame
    frame_time: float  # epoch seconds: the deciding frame was captured
    decided: float  # epoch seconds: the verdict was made
    latency_ms: float  # deciding frame captured → verdict made
    frame_index: int
    pts: float  # the deciding frame's time in its source (seconds; file position for replays)
    # The deciding frame's 1:1 score of the named (or best) person's best template: t ↔ FAR per comparison.
    verification_score: float | None = None
    # The liveness evidence behind the verdict (`edge.appliance.liveness`), when liveness is on.
    liveness: dict | None = None
    # The face crop as JPEG, only when a sink asked for it (MQTT with mqtt.face_recipient, which
    # seals it); never in `to_dict`, so stdout and the audit log never hold a face.
    face_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def fpir(self) -> float:
        """The false-positive identification rate per search that `score` stands for."""
        return far_of_score(self.score)

    @property
    def far(self) -> float | None:
        """The per-comparison false-accept rate that `verification_score` stands for."""
        return None if self.verification_score is None else far_of_score(self.verification_score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "verdict",
            "device_id": self.device_id,
            "seq": self.seq,
            "decision": self.decision,
            "name": self.name,
            "score": round(float(self.score), 4),
            "fpir": float(f"{self.fpir:.3g}"),
            "verification_score": None if self.verification_score is None else round(float(self.verification_score), 4),
            "far": None if self.far is None else float(f"{self.far:.3g}"),
            "threshold": self.threshold,
            "margin": None if self.margin is None else round(float(self.margin), 4),
            "frames_used": self.frames_used,
            "track_id": self.track_id,
            "rect": list(self.rect),
            "quality": compact_quality(self.quality),
            "timestamps": {
                "first_seen": iso(self.first_seen),
                "frame": iso(self.frame_time),
                "decided": iso(self.decided),
            },
            "latency_ms": round(self.latency_ms, 2),
            "frame_index": self.frame_index,
            "pts": round(self.pts, 3),
            **({"liveness": self.liveness} if self.liveness is not None else {}),
        }

    def to_json(self) -> str:
        return json_line(self.to_dict())
