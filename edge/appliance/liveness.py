"""Liveness of a tracked face: is it a live person, or a photo or a screen held up to the camera?

Pure logic over per-frame cues the loop hands in; it runs no model (the cues come from
`edge.vision.liveness` and the FaceMesh landmarks) and knows nothing of transports.

Per track it keeps the last `window` frames':

- ``live``: the passive model's probability that the face is live (None: the stage failed
  or took too long on that frame — no evidence, never evidence of life);
- ``pose``: (yaw, pitch) in degrees from the quality stage (for the challenge);
- ``eye_openness``: the eyelid stage's measurement (`edge.vision.blink`), reported with
  whether a blink was seen (`BLINK_*`: a frame under 0.6 of the track's median openness between
  frames at 0.85 of it or more, all within 0.6 s). Reported only: it decides nothing until a
  blink rule is measured on real blinks (docs/liveness.md "Blink cue");
- ``planarity``: the motion cue (`edge.vision.motion`) for the frame pair ending here (None:
  the face did not move enough to tell). Near 0 a face moves as a flat picture; a turning
  head has parallax. It is evidence of life only while the head turns: a live person walking
  straight in moves as a plane too, so planar motion alone is never called a spoof.

`status(track_id)`:

``live``     at least `min_frames` frames with a passive score and their mean ≥ `threshold`
             (mode "passive"); in "passive+challenge" also the challenge followed (below).
``spoof``    at least `min_frames` passive scores with a mean ≤ `spoof_below`, or a challenge
             not followed in time. Sticky for the track: fail closed.
``pending``  not enough evidence either way: no grant.
``challenge`` (passive+challenge) the passive cue says live and a prompt is out: no grant
             until the face follows it.

The challenge (`issue_challenge`): a prompt drawn at random — turn left, right or up, leaving
out a way the head is already turned (a face held 20° to the left cannot turn much further
and stay in view) — with a deadline; it is followed when the head turns at least `turn_deg`
(left, right) or `up_deg` (up) that way from where it was when the prompt went out, within
`challenge_s`, with non-planar motion during the turn (a photo turned in the hand moves as a
plane; a replay cannot know the prompt). While a face is turned away for its challenge
(`turned_away`) its frames show the turn, not who it is: the loop keeps them out of the
recognition evidence but still checks that the face stays the same one.
"""

from __future__ import annotations

import secrets
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

LIVENESS_MODES = ("off", "passive", "passive+challenge")
PROMPTS = ("left", "right", "up")
# A head already turned this far one way is not asked to turn further that way.
ALREADY_TURNED_DEG = 10.0
# A blink: eyes under BLINK_CLOSED of the track's median openness, between frames at
# BLINK_OPEN of it or more, the three within BLINK_S (a blink lasts 0.1-0.4 s).
BLINK_CLOSED, BLINK_OPEN, BLINK_S = 0.6, 0.85, 0.6
Status = Literal["live", "spoof", "pending", "challenge"]


@dataclass
class _Challenge:
    prompt: str
    issued: float  # frame time
    start_pose: tuple[float, float] | None
    followed: bool = False
    non_planar: bool = False


@dataclass
class _TrackLiveness:
    live: deque
    planar: deque
    poses: deque
    eyes: deque  # (frame time, eye_openness)
    spoof_reason: str | None = None
    challenge: _Challenge | None = None
    errors: int = 0
    blinked: bool = False


class LivenessJudge:
    def __init__(
        self,
        mode: str = "off",
        *,
        threshold: float = 0.5,
        spoof_below: float = 0.1,
        window: int = 15,
        min_frames: int = 5,
        planar_below: float = 0.06,
        challenge_s: float = 5.0,
        turn_deg: float = 15.0,
        up_deg: float = 10.0,
        choose=None,
    ) -> None:
        if mode not in LIVENESS_MODES:
            raise ValueError(f"liveness mode must be one of {', '.join(LIVENESS_MODES)}, got {mode!r}")
        if not 1 <= min_frames <= window:
            raise ValueError(f"need 1 <= min_frames <= window, got {min_frames}, {window}")
        if not 0.0 <= spoof_below <= threshold <= 1.0:
            raise ValueError(f"need 0 <= spoof_below <= threshold <= 1, got {spoof_below}, {threshold}")
        self.mode = mode
        self.threshold, self.spoof_below = float(threshold), float(spoof_below)
        self.window, self.min_frames = int(window), int(min_frames)
        self.planar_below = float(planar_below)
        self.challenge_s, self.turn_deg, self.up_deg = float(challenge_s), float(turn_deg), float(up_deg)
        self._choose = choose or (lambda options: options[secrets.randbelow(len(options))])
        self._tracks: dict[int, _TrackLiveness] = {}

    @classmethod
    def from_settings(cls, settings) -> LivenessJudge:
        """From anything with the `[liveness]` keys as attributes (`edge.config.LivenessConfig`)."""
        keys = ("threshold", "spoof_below", "window", "min_frames", "planar_below", "challenge_s", "turn_deg", "up_deg")
        return cls(settings.mode, **{k: getattr(settings, k) for k in keys})

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _state(self, track_id: int) -> _TrackLiveness:
        st = self._tracks.get(track_id)
        if st is None:
            w = self.window
            st = self._tracks[track_id] = _TrackLiveness(
                deque(maxlen=w), deque(maxlen=w), deque(maxlen=w), deque(maxlen=max(w, 30))
            )
        return st

    def observe(
        self,
        track_id: int,
        live: float | None,
        t: float,
        *,
        pose: tuple[float, float] | None = None,
        planarity: float | None = None,
        scored: bool = True,
        eye_openness: float | None = None,
    ) -> None:
        """One frame of a track. `scored` False: the frame was not given to the passive stage (it
        failed the quality gate, e.g. at the far end of a turn) and only its pose and motion count."""
        st = self._state(track_id)
        if scored and live is None:
            st.errors += 1
        elif scored:
            st.live.append(float(live))
        if planarity is not None:
            st.planar.append(float(planarity))
        if pose is not None:
            st.poses.append(pose)
        if eye_openness is not None:
            st.eyes.append((t, float(eye_openness)))
            st.blinked = st.blinked or _blinked(st.eyes)
        ch = st.challenge
        if ch is None or ch.followed or st.spoof_reason:
            return
        if t - ch.issued > self.challenge_s:
            st.spoof_reason = f"challenge '{ch.prompt}' not followed within {self.challenge_s:g} s"
            return
        if planarity is not None:  # the latest motion decides: a turn that ends as a plane is a photo turned
            ch.non_planar = planarity >= self.planar_below
        if pose is not None and ch.start_pose is not None:
            yaw, pitch = pose[0] - ch.start_pose[0], pose[1] - ch.start_pose[1]
            # yaw > 0: the nose to the image's right, i.e. the person turns to their left
            turned = {"left": yaw >= self.turn_deg, "right": yaw <= -self.turn_deg, "up": pitch >= self.up_deg}
            if turned[ch.prompt] and ch.non_planar:
                ch.followed = True
        elif pose is not None:
            ch.start_pose = pose

    def status(self, track_id: int) -> Status:
        st = self._tracks.get(track_id)
        if st is None:
            return "pending"
        if st.spoof_reason:
            return "spoof"
        if len(st.live) >= self.min_frames:
            mean = sum(st.live) / len(st.live)
            if mean <= self.spoof_below:
                st.spoof_reason = f"passive liveness {mean:.2f} ≤ {self.spoof_below:g}"
                return "spoof"
            if mean >= self.threshold:
                if self.mode != "passive+challenge":
                    return "live"
                if st.challenge is not None and st.challenge.followed:
                    return "live"
                return "challenge"
        return "pending"

    def issue_challenge(self, track_id: int, t: float) -> dict | None:
        """A track the policy would grant and the passive cue says live: the prompt to announce
        (once per track; None when one is already out or the mode has no challenge)."""
        if self.mode != "passive+challenge":
            return None
        st = self._state(track_id)
        if st.challenge is not None:
            return None
        pose = st.poses[-1] if st.poses else None
        options = PROMPTS
        if pose is not None:
            yaw, pitch = pose
            already = {
                "left": yaw >= ALREADY_TURNED_DEG,
                "right": yaw <= -ALREADY_TURNED_DEG,
                "up": pitch >= ALREADY_TURNED_DEG,
            }
            options = tuple(p for p in PROMPTS if not already[p]) or PROMPTS
        st.challenge = _Challenge(self._choose(options), t, pose)
        return {"track_id": track_id, "prompt": st.challenge.prompt, "within_s": self.challenge_s}

    def turned_away(self, track_id: int, pose: tuple[float, float] | None) -> bool:
        """Whether a face with this frame's `pose` is turned away for its challenge: more than half
        the asked turn off the pose it had when the prompt went out, or its pose unknown then."""
        st = self._tracks.get(track_id)
        ch = None if st is None else st.challenge
        if ch is None or ch.start_pose is None:
            return False
        if pose is None:
            return True
        yaw, pitch = abs(pose[0] - ch.start_pose[0]), abs(pose[1] - ch.start_pose[1])
        return yaw > self.turn_deg / 2 or pitch > self.up_deg / 2

    def spoof_reason(self, track_id: int) -> str | None:
        st = self._tracks.get(track_id)
        return None if st is None else st.spoof_reason

    def figures(self, track_id: int) -> dict:
        """What the liveness evidence was, for the verdict."""
        st = self._tracks.get(track_id)
        if st is None:
            return {"mode": self.mode, "frames": 0}
        out = {
            "mode": self.mode,
            "live": round(sum(st.live) / len(st.live), 4) if st.live else None,
            "frames": len(st.live),
            "errors": st.errors,
            "planarity": round(statistics.median(st.planar), 4) if st.planar else None,
        }
        if st.eyes:
            out["eye_openness"] = round(statistics.median(v for _, v in st.eyes), 4)
            out["blink"] = st.blinked
        if st.challenge is not None:
            out["challenge"] = {"prompt": st.challenge.prompt, "followed": st.challenge.followed}
        if st.spoof_reason:
            out["reason"] = st.spoof_reason
        return out

    def end(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)


def _blinked(eyes: deque) -> bool:
    """Whether the latest frame closes a blink: open, then closed, then open again (this frame)
    within `BLINK_S`, against the median openness of the frames kept."""
    if len(eyes) < 5:
        return False
    level = statistics.median(v for _, v in eyes)
    t_end, last = eyes[-1]
    if last < BLINK_OPEN * level:
        return False
    closed = False  # walking back from this open frame: a closed one seen yet?
    for t, v in reversed(list(eyes)[:-1]):
        if t_end - t > BLINK_S:
            return False
        if not closed:
            closed = v < BLINK_CLOSED * level
        elif v >= BLINK_OPEN * level:
            return True
    return False
