"""The run loop: camera frames in, verdicts about tracked faces out.

    source ─▶ capture thread ─▶ detect ─▶ track ─▶ [landmarks ─▶ align ─▶ quality gate ─▶ embed ─▶ 1:N]
                                                      (only for tracks due: undecided, or a re-check)
                                           ─▶ decision policy ─▶ verdicts ─▶ sinks

Every frame is detected and tracked. A track is identified on every frame until the
policy has decided it (granted or denied); after that every `recheck_every` frames or
`recheck_s` seconds, and at once when its face was gone or changed abruptly, so a person
standing at the door costs a detection per frame, not a full face pipeline. A track whose
face turns out to be someone else's is split, and the new face decided from scratch; the
tailgating guard watches who else is in view while the door is open (docs/appliance.md).
The stages are the engine's own (`Engine.detect`, `Engine.align_face`, `Engine.embed_many`,
`Engine.match`), handed in with the gallery and the sinks by the composition root
(`edge.app`); this module imports no engine, transport or vault.

`Appliance.run` owns the capture thread, signals (SIGTERM/SIGINT: stop after the current
frame, flush and close the sinks; SIGHUP: re-read the enrolments), systemd
notifications, and returns the run statistics.
`Appliance.process(frame)` is one frame, for tests and benchmarks that drive the loop.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from edge.appliance.evidence import TrackEvidence
from edge.appliance.liveness import LivenessJudge
from edge.appliance.metrics import Timings, peak_rss_mb, process_age
from edge.appliance.notify import Notifier
from edge.appliance.policy import Decision, DecisionPolicy, Evidence, Observation
from edge.appliance.tailgate import TailgateGuard
from edge.appliance.tracker import Track, Tracker, appearance, appearance_changed
from edge.appliance.verdict import Verdict, iso
from edge.camera import Capture, Frame, Source
from edge.config import Config
from edge.matching import Gallery
from edge.sinks import Sink
from edge.vision.detector import clip_rect
from edge.vision.motion import PlanarMotion

logger = logging.getLogger(__name__)

POLL_S = 0.25  # the longest the loop waits for a frame before it looks at signals and the watchdog


class Appliance:
    """The run loop over one source. `engine` is an `edge.engine.Engine` (or anything with its
    `detect`, `align_face`, `identify_aligned`, `match`, `calibration` and `model_version`); `gallery` the enrolled
    people; `reload_gallery`, when given, re-reads them (SIGHUP, the `reload` command)."""

    def __init__(
        self,
        engine: Any,
        gallery: Gallery,
        source: Source,
        *,
        reload_gallery: Callable[[], Gallery] | None = None,
        config: Config | None = None,
        sinks: Sequence[Sink] = (),
        device_id: str | None = None,
        notifier: Notifier | None = None,
        seq_start: int = 0,
        live_score: Callable[[Any, Any], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or Config()
        self.engine = engine
        self.gallery = gallery
        self.reload_gallery = reload_gallery
        self.source = source
        self.sinks = list(sinks)
        self.device_id = device_id or self.config.device_id
        self.notifier = notifier or Notifier({})
        self.clock, self.wall = clock, wall
        d = self.config.decision
        self.tracker = Tracker(iou=d.track_iou, max_shift=d.track_max_shift, max_age=d.track_max_age)
        self.policy = DecisionPolicy(
            threshold=d.threshold,
            k=d.k,
            n=d.n,
            deny_after=d.deny_after,
            unknown_after=d.unknown_after,
            cooldown_s=d.cooldown_s,
            evidence=d.evidence,
            lose_after=d.lose_after,
        )
        self.guard = TailgateGuard(d.tailgate, d.door_open_s)
        lv = self.config.liveness
        self.liveness = LivenessJudge.from_settings(lv)
        # The passive liveness stage, (rgb, detection) → probability the face is live. None with
        # liveness on: no evidence ever, so no grant (fail closed; `edge doctor` says so).
        self.live_score = live_score if live_score is not None else getattr(engine, "live_probability", None)
        self.live_timeout_s = lv.timeout_ms / 1e3
        # The eyelid stage, (rgb, FaceMesh landmarks) → eye_openness: reported, never deciding.
        self.eye_score = getattr(engine, "eye_openness", None) if lv.blink else None
        self.evidence_size = d.n
        # The 1:1 score a frame needs against its track's evidence, as a raw similarity (once).
        self.same_face_raw = engine.calibration.raw_threshold(d.same_face_score)
        self.threshold = d.threshold
        self.recheck_every = d.recheck_every
        self.recheck_s = d.recheck_s
        self.max_faces = self.config.engine.max_faces
        self.min_face = self.config.quality.min_face
        self.min_score = self.config.quality.min_score
        self.gate = self.config.quality.gate
        self.seq = int(seq_start)
        self.timings = Timings()
        self.counts: Counter[str] = Counter()
        self.capture: Capture | None = None
        self.first_frame_s: float | None = None
        self.stop_reason: str | None = None
        self._stopping = threading.Event()
        self._signals = 0
        self._reload = threading.Event()
        self._offset = wall() - clock()  # monotonic → epoch seconds
        self._first_start: float | None = None
        self._last_done: float | None = None
        self._posted: deque[tuple[str, dict]] = deque(maxlen=1000)  # events from other threads
        self._calls: queue.Queue = queue.Queue()  # work other threads need done on the loop thread
        self._loop_thread: threading.Thread | None = None
        self.started_wall = wall()
        self.want_face = any(getattr(s, "wants_face", False) for s in self.sinks)
        # Callables told about every processed frame (a console's live view). An empty tuple
        # when nobody watches: the loop then pays one falsy test per frame and nothing else.
        self._frame_observers: tuple[Callable[[Frame, list[dict], list[Verdict]], None], ...] = ()

    # --- one frame -------------------------------------------------------------------------

    def process(self, frame: Frame) -> list[Verdict]:
        """Detect, track, identify the tracks that are due, decide; publish and return the verdicts."""
        c = self.clock
        t0 = c()
        if self._first_start is None:
            self._first_start = t0
        rgb = frame.image
        engine, timings = self.engine, self.timings
        dets = engine.detect(rgb)
        t1 = c()
        if dets:
            dets = [d for d in dets if d.box[2] >= self.min_face and d.score >= self.min_score]
            if len(dets) > 1:
                dets.sort(key=lambda d: d.area, reverse=True)
            del dets[self.max_faces :]
        tracks, ended = self.tracker.update([d.box for d in dets], frame.pts, frame.index)
        for tr in ended:
            self._end_track(tr)
        t2 = c()
        self.counts["faces"] += len(dets)
        due = []
        for det, tr in zip(dets, tracks):
            data = tr.data
            if "first_wall" not in data:
                data["first_wall"] = frame.captured + self._offset
                data["since"] = 0
            else:
                data["since"] += 1
            look = appearance(rgb, det.box)
            if tr.gap > 0 or appearance_changed(data.get("appearance"), look):
                data["look_again"] = True  # kept until the track is identified (this frame may fail the gate)
            data["appearance"] = look
            if self._due(tr, frame.pts):
                due.append((det, tr))
        kept, crops = [], []
        if due:
            spent = Counter()
            for det, tr in due:
                face = engine.align_face(rgb, det)
                spent.update(face.seconds)
                quality = None if face.quality is None else face.quality.to_dict()
                if self._frame_observers:  # the live view shows the last reading of each face
                    tr.data["quality"] = quality
                if self.gate and quality is not None and quality.get("ok") is False:
                    self.counts["quality_rejected"] += 1
                    if self.liveness.enabled:  # a turn's far end fails the pose check; the challenge still sees it
                        tr.data["landmarks"] = None if face.mesh is None else face.mesh.landmarks
                        self._observe_motion(tr, quality, frame)
                    # A granted face that cannot be judged after it changed (or while in doubt) may be
                    # someone else; one that merely has a poor moment, same as before, keeps its grant.
                    if tr.data.get("look_again") or self.policy.doubted(tr.id):
                        self.policy.unjudged(tr.id)
                    if self.policy.lost(tr.id):
                        tr = self._split(tr, frame, "cannot be verified")
                    if not tr.data.get("reject_reported"):  # one event per track, not one per frame
                        tr.data["reject_reported"] = True
                        self.event("quality_rejected", track_id=tr.id, failures=quality.get("failures"))
                    continue
                kept.append((det, tr, quality))
                crops.append(face.crop)
                if self.liveness.enabled:  # the motion cue's input
                    tr.data["landmarks"] = None if face.mesh is None else face.mesh.landmarks
            for stage in ("landmarks", "align", "quality"):
                timings.add(stage, spent[stage] * 1e3)
        verdicts: list[Verdict] = []
        t3 = c()
        if crops:
            found = engine.identify_aligned(crops, self.gallery, threshold=self.threshold)
            evidence, away = [], []
            for i, ((_, tr, quality), emb, m) in enumerate(zip(kept, found.embeddings, found.matches)):
                # A face turned away for its liveness challenge matches worse than it will face on:
                # its frames show the turn, not who it is, so they do not vote. That it is still the
                # track's face is checked on them all the same (a swap during the turn is split),
                # and that needs the full embedding where the cascade stopped early. Once the
                # track is decided, its re-checks vote as before, turned or not.
                turned = (
                    self.liveness.enabled
                    and not self.policy.decided(tr.id)
                    and self.liveness.turned_away(tr.id, _pose(quality))
                )
                if turned and emb is None:
                    emb = self.engine.embed_many([crops[i]])[0]
                reason = self._identity_change(tr, emb, m)
                if reason:
                    tr = self._split(tr, frame, reason)
                    kept[i] = (kept[i][0], tr, kept[i][2])
                    turned = False  # a new track: no challenge out
                away.append(turned)
                evidence.append(None if turned else self._evidence(tr, emb, m))
            t5 = c()
            timings.add("identify", (t5 - t3) * 1e3)  # embed and 1:N (the cascade, when configured)
            self.counts["identified"] += len(crops)
            self.counts["identified_full"] += found.completed
            for (det, tr, quality), m, ev, turned in zip(kept, found.matches, evidence, away):
                tr.data.update(since=0, checked=frame.pts, look_again=False)
                obs = Observation(m.candidate, m.score, m.margin, ev)
                not_live = self.liveness.enabled and self._judge_liveness(tr, det, rgb, quality, frame, verdicts)
                if turned:
                    continue
                hold = not_live or (self.guard.withholds and self.guard.hold(tr.id, self._in_view()))
                for decision in self.policy.observe(tr.id, obs, frame.pts, hold=hold):
                    if decision.kind == "withheld":
                        if not_live:
                            self._challenge(tr, frame)
                        else:
                            self._tailgate(self.guard.withheld(tr.id, decision.name, self._in_view()))
                        continue
                    verdict = self._verdict(decision, tr, det, quality, frame, rgb, m.verification_score)
                    verdicts.append(verdict)
                    if decision.kind == "granted":
                        self.guard.granted(tr.id, decision.name, verdict.seq, frame.pts)
                if self.policy.lost(tr.id):
                    self._split(tr, frame, "no longer matches")
            t3 = c()
            timings.add("decide", (t3 - t5) * 1e3)
        for v in verdicts:
            self._publish(v)
        if self.guard.watching:
            for event in self.guard.frame(frame.pts, self._in_view()):
                self._tailgate(event)
        done = c()
        timings.add("detect", (t1 - t0) * 1e3)
        timings.add("track", (t2 - t1) * 1e3)
        if verdicts:
            timings.add("publish", (done - t3) * 1e3)
            timings.add("verdict_latency", (done - frame.captured) * 1e3)
        timings.add("frame", (done - t0) * 1e3)
        timings.add("latency", (done - frame.captured) * 1e3)
        self.counts["frames"] += 1
        self._last_done = done
        if self.first_frame_s is None:
            self.first_frame_s = process_age()
        if self._frame_observers:
            self._tell_observers(frame, dets, tracks, verdicts)
        return verdicts

    # --- frame observers (the console's live view) -------------------------------------------

    def add_frame_observer(self, observer: Callable[[Frame, list[dict], list[Verdict]], None]) -> None:
        """Call `observer(frame, faces, verdicts)` after every processed frame, on the loop thread.

        `faces` are plain dicts (box, track id, the track's status, its last quality report and
        liveness figures). The observer must return at once (keep a reference, encode elsewhere):
        it runs inside the decision path. The tuple is replaced, never changed in place."""
        self._frame_observers = (*self._frame_observers, observer)

    def remove_frame_observer(self, observer: Callable) -> None:
        # `!=`, not `is not`: a bound method is a new object each time it is looked up, equal to the last.
        self._frame_observers = tuple(o for o in self._frame_observers if o != observer)

    def _tell_observers(self, frame: Frame, dets: list, tracks: list, verdicts: list[Verdict]) -> None:
        live = self.liveness.enabled
        faces = [
            {
                "box": [int(v) for v in det.box[:4]],
                "score": round(float(det.score), 3),
                "track_id": tr.id,
                "status": self.policy.status(tr.id),
                "quality": tr.data.get("quality"),
                "liveness": self.liveness.figures(tr.id) if live else None,
            }
            for det, tr in zip(dets, tracks)
        ]
        for observer in self._frame_observers:
            try:
                observer(frame, faces, verdicts)
            except Exception as exc:  # noqa: BLE001 - a viewer never stops the loop
                self.counts["observer_errors"] += 1
                logger.error("frame observer: %s: %s", type(exc).__name__, exc)

    def _due(self, track: Track, t: float) -> bool:
        """Whether a track is identified on this frame: on every frame until the policy has decided
        it, and while a granted track's frames stop naming its person; after that at once when its
        face went missing or changed abruptly, else every `recheck_every` frames or `recheck_s` s."""
        policy, data = self.policy, track.data
        decided = policy.decided(track.id) or data.get("spoof_reported")  # a spoof is decided too: not every frame
        if not decided or policy.doubted(track.id):
            return True
        if data.get("look_again"):
            self.counts["rechecks_triggered"] += 1
            return True
        return data["since"] >= self.recheck_every or t - data.get("checked", t) >= self.recheck_s

    def _identity_change(self, track: Track, embedding, match) -> str | None:
        """Why this frame's face is not the one the track was about (None: it is): unlike the
        track's evidence so far, or an enrolled person on a track already reported as a stranger."""
        held = track.data.get("evidence")
        if embedding is not None and held is not None and held.differs(embedding, self.same_face_raw):
            return "another face"
        if match.candidate is not None and match.score >= self.threshold:
            if self.policy.status(track.id) in ("unknown", "denied"):
                return "recognised"
        return None

    def _split(self, track: Track, frame: Frame, reason: str) -> Track:
        """End `track`'s identity: its face goes on under a new track, decided from scratch."""
        new = self.tracker.split(track, frame.pts, frame.index)
        new.data.update(first_wall=frame.captured + self._offset, since=0, appearance=track.data.get("appearance"))
        self.counts["track_splits"] += 1
        self.event(
            "track_split",
            track_id=track.id,
            new_track_id=new.id,
            reason=reason,
            was=self.policy.status(track.id),
            frame_index=frame.index,
        )
        self._end_track(track)
        return new

    def _end_track(self, track: Track) -> None:
        self.policy.end(track.id)
        self.guard.end(track.id)
        self.liveness.end(track.id)

    def _judge_liveness(self, track: Track, det, rgb, quality, frame: Frame, verdicts: list) -> bool:
        """Feed this frame's liveness cues to the judge; publish a `spoof` verdict when it says so.
        True when the track is not (yet) live, i.e. a grant must wait."""
        live = None
        if self.live_score is not None:
            t0 = self.clock()
            try:
                live = float(self.live_score(rgb, det))
            except Exception as exc:  # noqa: BLE001 - a failing stage is no evidence, never a crash
                self.counts["liveness_errors"] += 1
                logger.error("liveness stage: %s: %s", type(exc).__name__, exc)
            elapsed = self.clock() - t0
            self.timings.add("liveness", elapsed * 1e3)
            if live is not None and (elapsed > self.live_timeout_s or not 0.0 <= live <= 1.0):
                self.counts["liveness_errors"] += 1  # too late (or nonsense) to count as evidence
                live = None
        self._observe_motion(track, quality, frame, live=live, scored=True, eyes=self._eye_openness(track, rgb))
        status = self.liveness.status(track.id)
        if status == "spoof" and not track.data.get("spoof_reported") and self.policy.status(track.id) != "granted":
            track.data["spoof_reported"] = True
            figures = self.liveness.figures(track.id)
            decision = Decision("spoof", track.id, None, figures.get("live") or 0.0, None, figures["frames"], frame.pts)
            verdicts.append(self._verdict(decision, track, det, quality, frame, rgb, 0.0))
        return status != "live"

    def _eye_openness(self, track: Track, rgb) -> float | None:
        """This frame's eye_openness, or None (no stage, no landmarks, or it failed: it decides nothing)."""
        landmarks = track.data.get("landmarks")
        if self.eye_score is None or landmarks is None:
            return None
        t0 = self.clock()
        try:
            value = float(self.eye_score(rgb, landmarks))
        except Exception as exc:  # noqa: BLE001 - a reported-only measurement never stops the loop
            logger.warning("eyelid stage: %s: %s", type(exc).__name__, exc)
            return None
        finally:
            self.timings.add("blink", (self.clock() - t0) * 1e3)
        return value

    def _observe_motion(
        self, track: Track, quality, frame: Frame, *, live=None, scored: bool = False, eyes: float | None = None
    ) -> None:
        """The frame's head pose and landmark motion (and, when `scored`, its passive score and
        eye openness) to the judge."""
        motion = track.data.get("motion")
        if motion is None:
            motion = track.data["motion"] = PlanarMotion()
        fit = motion.push(track.data.get("landmarks"))
        planarity = fit.planarity if fit is not None and fit.enough() else None
        self.liveness.observe(
            track.id, live, frame.pts, pose=_pose(quality), planarity=planarity, scored=scored, eye_openness=eyes
        )

    def _challenge(self, track: Track, frame: Frame) -> None:
        """A grant waits for liveness: when the passive cue is satisfied and a challenge is due, announce it."""
        if self.liveness.status(track.id) != "challenge":
            return
        prompt = self.liveness.issue_challenge(track.id, frame.pts)
        if prompt:
            self.counts["challenges"] += 1
            self.event("liveness_challenge", **prompt)

    def _in_view(self) -> dict[int, str]:
        """The tracks seen in this frame → what the policy says about each."""
        return {tr.id: self.policy.status(tr.id) for tr in self.tracker.tracks if tr.misses == 0}

    def _tailgate(self, fields: dict | None) -> None:
        if fields:
            self.counts["tailgate"] += 1
            self.event("tailgate", **fields)

    def _evidence(self, track, embedding, frame_match) -> Evidence | None:
        """Add this frame to the track's evidence and search the gallery with the evidence's mean.

        A frame the cascade stopped early (a confident non-match: no full embedding) or one
        unlike the evidence so far is another face, so the evidence starts afresh."""
        held = track.data.get("evidence")
        if held is None:
            held = track.data["evidence"] = TrackEvidence(self.evidence_size)
        if embedding is None:
            if len(held):
                self.counts["evidence_resets"] += 1
            held.clear()
            return None
        if held.add_frame(embedding, self.same_face_raw):
            self.counts["evidence_resets"] += 1
        if len(held) == 1:  # the mean is this frame's embedding
            m = frame_match
        else:
            (m,) = self.engine.match(held.mean(), self.gallery)
        return Evidence(m.candidate, m.score, m.margin, len(held))

    def _verdict(self, decision, track, det, quality, frame: Frame, rgb, verification_score: float) -> Verdict:
        self.seq += 1
        height, width = rgb.shape[:2]
        rect = clip_rect(*det.xyxy, width, height)
        now = self.clock()
        self.counts[decision.kind] += 1
        return Verdict(
            device_id=self.device_id,
            seq=self.seq,
            decision=decision.kind,
            name=decision.name,
            score=float(decision.score),
            threshold=self.threshold,
            margin=decision.margin,
            frames_used=decision.frames_used,
            track_id=track.id,
            rect=rect,
            quality=quality,
            first_seen=track.data.get("first_wall", frame.captured + self._offset),
            frame_time=frame.captured + self._offset,
            decided=now + self._offset,
            latency_ms=(now - frame.captured) * 1e3,
            frame_index=frame.index,
            pts=frame.pts,
            verification_score=float(verification_score),
            liveness=self.liveness.figures(track.id) if self.liveness.enabled else None,
            face_jpeg=face_crop_jpeg(rgb, rect) if self.want_face else None,
        )

    # --- sinks -----------------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        """Attach a sink while the loop runs (from any thread): a console's live view or a door
        display gets every verdict and event from then on — a `liveness_challenge` prompt too.
        The list is replaced, never changed in place, so a frame being published is unaffected."""
        self.sinks = [*self.sinks, sink]
        self.want_face = self.want_face or bool(getattr(sink, "wants_face", False))

    def remove_sink(self, sink: Sink) -> None:
        """Detach a sink added with `add_sink` (a viewer that left); unknown sinks are ignored."""
        self.sinks = [s for s in self.sinks if s is not sink]
        self.want_face = any(getattr(s, "wants_face", False) for s in self.sinks)

    def _publish(self, verdict: Verdict) -> None:
        for sink in self.sinks:
            try:
                sink.publish(verdict)
            except Exception as exc:  # noqa: BLE001 - a sink never stops the loop
                self.counts["sink_errors"] += 1
                logger.error("sink %s: %s", getattr(sink, "name", sink), exc)

    def event(self, kind: str, **fields: Any) -> dict:
        """Publish an operational event to every sink (source problems are also logged)."""
        ts = fields.pop("ts", None) or self.wall()
        event = {"type": "event", "event": kind, "device_id": self.device_id, "ts": iso(ts), **fields}
        for sink in self.sinks:
            try:
                sink.event(event)
            except Exception as exc:  # noqa: BLE001
                self.counts["sink_errors"] += 1
                logger.error("sink %s: %s", getattr(sink, "name", sink), exc)
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
        if kind.startswith("source_") and kind != "source_opened":
            logger.log(logging.WARNING if kind == "source_error" else logging.INFO, "%s: %s", kind, detail)
        else:
            logger.debug("event %s: %s", kind, detail)
        return event

    def post_event(self, kind: str, **fields: Any) -> None:
        """`event` from any thread: published by the loop thread before its next frame."""
        self._posted.append((kind, {"ts": self.wall(), **fields}))

    def _pump_events(self) -> None:
        if self.capture is not None:
            for e in self.capture.events():
                self.event(e.pop("event"), **e)
        while self._posted:
            kind, fields = self._posted.popleft()
            self.event(kind, **fields)

    def call_in_loop(self, fn: Callable[[], Any], timeout: float = 120.0) -> Any:
        """Run `fn` on the loop thread between frames (it owns the engine) and return its result.

        Called from the loop thread itself, or when the loop is not running, `fn` runs at once.
        """
        loop = self._loop_thread
        if loop is None or loop is threading.current_thread() or not loop.is_alive():
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}
        self._calls.put((fn, box, done))
        if not done.wait(timeout):
            raise TimeoutError(f"the loop did not get to the call within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _run_calls(self) -> None:
        while True:
            try:
                fn, box, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                box["result"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
            done.set()

    def snapshot(self) -> dict[str, Any]:
        """What the device is doing now: for the MQTT state topic and the `status` command."""
        cap = self.capture
        return {
            "enrolled": len(self.gallery.people),
            "model_version": getattr(self.engine, "model_version", None),
            "profile": self.config.engine.profile,
            "fps": round(self._fps(), 2),
            "frames": self.counts["frames"],
            "last_seq": self.seq,
            "verdicts": {k: self.counts[k] for k in ("granted", "denied", "unknown", "spoof")},
            "source": self.source.name,
            "source_errors": cap.failures if cap else 0,
            "started": iso(self.started_wall),
            "uptime_s": round(self.wall() - self.started_wall, 1),
        }

    def _push_state(self) -> None:
        snap = self.snapshot()
        for sink in self.sinks:
            try:
                sink.state(snap)
            except Exception as exc:  # noqa: BLE001
                self.counts["sink_errors"] += 1
                logger.error("sink %s: %s", getattr(sink, "name", sink), exc)

    # --- the run ---------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to stop after the current frame (thread- and signal-safe)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopping.set()

    def reload(self) -> None:
        """Ask the loop to re-read the enrolments (SIGHUP) before its next frame."""
        self._reload.set()

    def reload_now(self) -> None:
        """Re-read the enrolments now, on the loop thread (waiting for it): for an enrolment made
        over HTTP, which the next identification must already see."""
        self.call_in_loop(self._reload_gallery)

    def _reload_gallery(self) -> None:
        self._reload.clear()
        if self.reload_gallery is None:
            logger.warning("these enrolments cannot be reloaded; restart to see new enrolments")
            return
        try:
            self.gallery = self.reload_gallery()
        except Exception as exc:  # noqa: BLE001 - keep the enrolments we have
            logger.error("reloading the enrolments failed, keeping the old ones: %s", exc)
            self.event("reload_failed", error=str(exc))
            return
        self.event("reloaded", people=len(self.gallery.people))

    def _on_hangup(self, _signum, _frame) -> None:
        self.reload()

    def _on_signal(self, signum, _frame) -> None:
        # Counted, not inferred from `_stopping`: a SIGTERM that arrives while the loop is already
        # winding down on its own (end of a file) is the first signal, not an impatient second one.
        self._signals += 1
        if self._signals > 1:  # a second signal: stop now (sinks are still flushed)
            raise KeyboardInterrupt
        self.stop(f"signal {signal.Signals(signum).name}")

    def run(self, *, max_frames: int | None = None, handle_signals: bool = True, close_sinks: bool = True) -> dict:
        """Run until the source ends, `max_frames` frames, `stop()` or SIGTERM/SIGINT; return the stats."""
        cam = self.config.camera
        self.capture = Capture(
            self.source,
            realtime=cam.realtime,
            fps=cam.fps,
            backoff=cam.reopen_backoff,
            backoff_max=cam.reopen_backoff_max,
            clock=self.clock,
            wall=self.wall,
        )
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
            if hasattr(signal, "SIGHUP"):
                previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        poll = POLL_S
        if self.notifier.watchdog_interval:
            poll = min(poll, self.notifier.watchdog_interval / 2)
        self._loop_thread = threading.current_thread()
        try:
            self.capture.start()
            self.event(
                "started",
                source=self.source.name,
                realtime=cam.realtime,
                people=len(self.gallery.people) or None,
            )
            self.notifier.ready(f"running: {self.source.name}")
            last_status = last_state = self.clock()
            self._push_state()
            while not self._stopping.is_set():
                self._pump_events()
                self._run_calls()
                self.notifier.watchdog()
                if self._reload.is_set():
                    self._reload_gallery()
                if self.clock() - last_state >= 1.0:
                    last_state = self.clock()
                    self._push_state()
                frame = self.capture.next(timeout=poll)
                if frame is None:
                    if self.capture.ended:
                        self.stop("end of source")
                    continue
                try:
                    self.process(frame)
                except Exception as exc:  # noqa: BLE001 - one bad frame never ends the run
                    self.counts["frame_errors"] += 1
                    if self.counts["frame_errors"] <= 5 or self.counts["frame_errors"] % 1000 == 0:
                        logger.error(
                            "frame %s: %s: %s",
                            frame.index,
                            type(exc).__name__,
                            exc,
                            exc_info=logger.isEnabledFor(logging.DEBUG),
                        )
                if max_frames is not None and self.counts["frames"] >= max_frames:
                    self.stop("max_frames")
                now = self.clock()
                if self.notifier.enabled and now - last_status >= 10.0:
                    last_status = now
                    self.notifier.status(f"{self._fps():.1f} fps, {self.seq} verdicts")
        finally:
            if self.stop_reason is None:
                self.stop_reason = "interrupted"
            self.notifier.stopping(f"stopping: {self.stop_reason}")
            self.capture.stop()
            for sink in self.sinks:
                try:
                    sink.finish()  # e.g. MQTT's count of suppressed refusals: into the audit log before it closes
                except Exception as exc:  # noqa: BLE001
                    self.counts["sink_errors"] += 1
                    logger.error("sink %s: %s", getattr(sink, "name", sink), exc)
            self._pump_events()
            for event in self.guard.close():  # the door's time is cut short: who followed, so far
                self._tailgate(event)
            for tr in self.tracker.clear():
                self._end_track(tr)
            self._loop_thread = None
            self._run_calls()  # anyone still waiting gets an answer
            stats = self.stats()
            self._push_state()
            self.event("stopped", reason=self.stop_reason, frames=stats["frames"], verdicts=stats["verdicts"])
            for sink in self.sinks:
                try:
                    sink.close() if close_sinks else sink.flush()
                except Exception as exc:  # noqa: BLE001
                    self.counts["sink_errors"] += 1
                    logger.error("sink %s: %s", getattr(sink, "name", sink), exc)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stats()

    def _fps(self) -> float:
        if self._first_start is None or self._last_done is None or self._last_done <= self._first_start:
            return 0.0
        return self.counts["frames"] / (self._last_done - self._first_start)

    def stats(self) -> dict:
        """The run statistics: one JSON-able dict (what `edge run` prints on exit)."""
        timings = self.timings.summary()
        cap = self.capture
        c = self.counts
        duration = 0.0 if self._first_start is None or self._last_done is None else self._last_done - self._first_start
        return {
            "type": "stats",
            "device_id": self.device_id,
            "reason": self.stop_reason,
            "frames": c["frames"],
            "duration_s": round(duration, 3),
            "fps": round(self._fps(), 2),
            "source_frames": cap.produced if cap else c["frames"],
            "dropped": cap.dropped if cap else 0,
            "source_errors": cap.failures if cap else 0,
            "source_reopens": cap.reopens if cap else 0,
            "faces": c["faces"],
            "identified": c["identified"],
            "identified_full": c["identified_full"],  # of those, embedded by every embedder (see the cascade)
            "evidence_resets": c["evidence_resets"],  # track evidence started afresh: another face, or nobody
            "track_splits": c["track_splits"],  # a track's face turned out to be someone else's: split off
            "rechecks_triggered": c["rechecks_triggered"],  # decided tracks looked at again: gone a while, or changed
            "tailgate": c["tailgate"],
            "challenges": c["challenges"],  # liveness challenges announced
            "liveness_errors": c["liveness_errors"],  # liveness scores that failed, came late or were nonsense
            "quality_rejected": c["quality_rejected"],
            "verdicts": {k: c[k] for k in ("granted", "denied", "unknown", "spoof")},
            "suppressed": self.policy.suppressed,
            "last_seq": self.seq,
            "frame_errors": c["frame_errors"],
            "sink_errors": c["sink_errors"],
            "first_frame_s": None if self.first_frame_s is None else round(self.first_frame_s, 3),
            "peak_rss_mb": peak_rss_mb(),
            "latency_ms": timings.pop("latency", {"n": 0}),
            "verdict_latency_ms": timings.pop("verdict_latency", {"n": 0}),
            "frame_ms": timings.pop("frame", {"n": 0}),
            "stages_ms": timings,
        }


def face_crop_jpeg(rgb, rect: tuple[int, int, int, int], *, margin: float = 0.25, size: int = 160) -> bytes | None:
    """The face (with a margin) as a small JPEG, for sinks configured to carry it sealed."""
    import cv2

    x, y, w, h = rect
    height, width = rgb.shape[:2]
    dx, dy = int(w * margin), int(h * margin)
    crop = rgb[max(0, y - dy) : min(height, y + h + dy), max(0, x - dx) : min(width, x + w + dx)]
    if crop.size == 0:
        return None
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None


def _pose(quality: dict | None) -> tuple[float, float] | None:
    """(yaw, pitch) in degrees from a quality report, when it has them."""
    m = (quality or {}).get("measurements") or {}
    try:
        return float(m["yaw"]["value"]), float(m["pitch"]["value"])
    except (KeyError, TypeError, ValueError):
        return None
