"""The decision policy: per tracked face, frames of (name, score) in, verdicts out.

Pure logic. It does not know which detector or embedder ran, nor where the scores came
from; the loop feeds it one `Observation` per track for every frame that track was
identified in (frames where a face was not identified, because it failed the quality
gate or the track is decided and not due for a re-check, are simply not observed).

An observation is a **match** when it names a person and its score is at least
`threshold`; otherwise it is a **confident non-match**: the face passed the quality gate,
was embedded and compared, and resembles no enrolled person enough.

``granted``  (evidence "mean", the default) when the track's aggregated evidence -- the mean
             embedding of its last `n` frames of one face, at least `k` of them
             (`edge.appliance.evidence`) -- names a person with a score of at least
             `threshold`, and the frame just seen names that person too. The score is the
             evidence's. (Evidence "count": when `k` of the track's last `n` observations
             match the same person; the score is the k-th best matching score in the
             window.) Once per track, for one person; and not again for that person, on any
             track, within `cooldown_s` of their last `granted` (suppressed grants are
             counted, and still count as the track's grant).
``unknown``  once per track, when `unknown_after` non-matches came in a row (no match
             in between) and the track was never granted: "a face we do not know is here".
             0 turns it off.
``denied``   once per track, when `deny_after` non-matches came in a row and the track was
             never granted: the access decision for that face. A denied track may still be
             granted later if it then matches (a better view); a granted track is never
             denied.

Time (`t`) is the frame time the loop passes (seconds, any origin), so cooldowns hold
the same in a replay at any speed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from edge.matching import DEFAULT_THRESHOLD

# "withheld" is not a verdict (see `hold`); "spoof" is the liveness judge's, made by the loop.
Kind = Literal["granted", "denied", "unknown", "withheld", "spoof"]
EVIDENCE_MODES = ("mean", "count")


class Evidence(NamedTuple):
    """The 1:N answer for a track's aggregated evidence (its frames' mean embedding)."""

    name: str | None
    score: float
    margin: float
    frames: int  # frames in the mean


class Observation(NamedTuple):
    name: str | None  # the best-matching enrolled person (None: nobody enrolled / no candidate)
    score: float  # calibrated 0..1
    margin: float = 0.0  # best person's score minus the second best's
    evidence: Evidence | None = None  # the track's evidence including this frame (None: none held)


@dataclass(frozen=True)
class Decision:
    kind: Kind
    track_id: int
    name: str | None
    score: float
    margin: float | None
    frames_used: int  # observations the decision rests on (the window, or the non-match run)
    t: float


@dataclass
class _TrackState:
    window: deque  # (matched name or None, score, margin), at most n
    run: int = 0  # non-matches since the last match
    run_best: float = 0.0  # the best score among them
    frames: int = 0
    granted: set[str] = field(default_factory=set)
    denied: bool = False
    unknown: bool = False
    doubt: int = 0  # identified frames in a row since the grant that did not name the granted person


class DecisionPolicy:
    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        k: int = 3,
        n: int = 5,
        deny_after: int = 10,
        unknown_after: int = 5,
        cooldown_s: float = 15.0,
        evidence: str = "mean",
        lose_after: int = 5,
    ) -> None:
        if evidence not in EVIDENCE_MODES:
            raise ValueError(f"evidence must be one of {', '.join(EVIDENCE_MODES)}, got {evidence!r}")
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        if deny_after < 1 or unknown_after < 0 or cooldown_s < 0 or lose_after < 1:
            raise ValueError("deny_after and lose_after must be >= 1, unknown_after >= 0, cooldown_s >= 0")
        self.threshold = float(threshold)
        self.k, self.n = int(k), int(n)
        self.deny_after = int(deny_after)
        self.unknown_after = int(unknown_after)
        self.cooldown_s = float(cooldown_s)
        self.evidence = evidence
        self.lose_after = int(lose_after)
        self.suppressed = 0  # grants withheld by a cooldown
        self._tracks: dict[int, _TrackState] = {}
        self._last_grant: dict[str, float] = {}

    def _state(self, track_id: int) -> _TrackState:
        st = self._tracks.get(track_id)
        if st is None:
            st = self._tracks[track_id] = _TrackState(deque(maxlen=self.n))
        return st

    def decided(self, track_id: int) -> bool:
        """The track was granted or denied (the loop then only re-checks it now and then)."""
        st = self._tracks.get(track_id)
        return st is not None and (bool(st.granted) or st.denied)

    def status(self, track_id: int) -> str:
        """What the track is now: "granted", "denied", "unknown", "undecided" (no verdict yet) or
        "new" (never observed)."""
        st = self._tracks.get(track_id)
        if st is None:
            return "new"
        if st.granted:
            return "granted"
        return "denied" if st.denied else "unknown" if st.unknown else "undecided"

    def doubted(self, track_id: int) -> bool:
        """A granted track whose latest identified frame did not name the granted person: the
        loop identifies it on every frame until it matches again or has `lost` its identity."""
        st = self._tracks.get(track_id)
        return st is not None and st.doubt > 0

    def lost(self, track_id: int) -> bool:
        """`lose_after` identified frames in a row since the grant did not name the granted person."""
        st = self._tracks.get(track_id)
        return st is not None and st.doubt >= self.lose_after

    def unjudged(self, track_id: int) -> None:
        """A frame of the track could not be judged (it failed the quality gate). On a granted
        track that is a re-check that did not name the granted person: a face turned away cannot
        keep a grant any more than a stranger's can."""
        st = self._tracks.get(track_id)
        if st is not None and st.granted:
            st.doubt += 1

    def observe(self, track_id: int, obs: Observation, t: float, *, hold: bool = False) -> list[Decision]:
        """One identified frame of a track → the verdicts it completes (usually none)."""
        st = self._state(track_id)
        st.frames += 1
        if st.granted:
            # Judged on the frame alone: the evidence still holds the granted person's frames.
            own = obs.name in st.granted and obs.score >= self.threshold
            st.doubt = 0 if own else st.doubt + 1
        ev = obs.evidence
        evidence_match = (
            self.evidence == "mean"
            and ev is not None
            and ev.name is not None
            and ev.name == obs.name
            and ev.frames >= self.k
            and ev.score >= self.threshold
        )
        match = (obs.name is not None and obs.score >= self.threshold) or evidence_match
        st.window.append((obs.name if match else None, float(obs.score), float(obs.margin)))
        out: list[Decision] = []
        if match:
            st.run, st.run_best = 0, 0.0
            if not st.granted:  # one person per track: another face is split off first (`lost`)
                grant = None
                if self.evidence == "mean":
                    if evidence_match:
                        grant = (ev.score, ev.margin, ev.frames)
                else:
                    scores = sorted((s for name, s, _ in st.window if name == obs.name), reverse=True)
                    if len(scores) >= self.k:
                        grant = (scores[self.k - 1], obs.margin, len(st.window))
                if grant is not None and hold:
                    out.append(Decision("withheld", track_id, obs.name, grant[0], grant[1], grant[2], t))
                elif grant is not None:
                    st.granted.add(obs.name)
                    last = self._last_grant.get(obs.name)
                    if last is not None and 0 <= t - last < self.cooldown_s:
                        self.suppressed += 1
                    else:
                        self._last_grant[obs.name] = t
                        self._prune(t)
                        out.append(Decision("granted", track_id, obs.name, grant[0], grant[1], grant[2], t))
            return out
        st.run += 1
        st.run_best = max(st.run_best, float(obs.score))
        if st.granted:
            return out
        if self.unknown_after and not st.unknown and st.run >= self.unknown_after:
            st.unknown = True
            out.append(Decision("unknown", track_id, None, st.run_best, None, st.run, t))
        if not st.denied and st.run >= self.deny_after:
            st.denied = True
            out.append(Decision("denied", track_id, None, st.run_best, None, st.run, t))
        return out

    def end(self, track_id: int) -> None:
        """The track is gone; forget it (the per-person cooldowns stay)."""
        self._tracks.pop(track_id, None)

    def _prune(self, t: float) -> None:
        if len(self._last_grant) > 1024:
            self._last_grant = {n: s for n, s in self._last_grant.items() if t - s < self.cooldown_s}
