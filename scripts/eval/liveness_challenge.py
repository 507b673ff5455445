#!/usr/bin/env python3
"""The liveness challenge end to end: interactive synthetic subjects through the real loop.

    python scripts/eval/liveness_challenge.py [--lfw ../shared/data/lfw-dev] [--live 100] [--print 100]
        [--bent 50] [--screen 100] [--mode passive+challenge] [--seconds 8] [--seed 0]

Every subject is a different lfw-dev person with at least two photos: the gallery holds the
embedding of one (they are enrolled); they present another. A subject is rendered frame by
frame by `scripts/build/spoofs.py` (`HeadRig`, `PlanarRig`) and *reacts* to the loop:

``live``    a synthetic live head (FaceMesh mesh warp: real parallax) standing with small
            natural motion; when the loop announces a `liveness_challenge` for its track it
            turns the asked way (left/right: 28° of yaw, up: 30° of pitch, as rendered) over
            0.8 s, holds 0.5 s and comes back — a person following the door display.
``print`` / ``print_bent`` / ``screen``
            the photo on paper (flat or bent) or on a screen, held up with hand jitter; when
            asked it is turned the asked way by the same angle, as a plane — the best a photo
            can do.

Each live subject is also run with liveness off (same frames but for the turn): a subject
the engine does not recognise then is a recognition miss, not the liveness layer's; the
script prints live grants over all live subjects and over those.

Every frame goes through the same camera finish as the clips (noise, JPEG) and the real
`Appliance.process` (detector, tracker, FaceMesh, quality gate, cascade, 1:N, decision policy,
liveness judge with the shipped passive model) with `[liveness] mode` and its default
thresholds, for `--seconds` at 15 fps. Printed per kind: subjects, granted (the enrolled
person), spoof verdicts, neither; prompts announced and followed. Exits 0.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import spoofs  # noqa: E402

from edge.app import engine_from_config  # noqa: E402
from edge.appliance.loop import Appliance  # noqa: E402
from edge.camera.base import Frame  # noqa: E402
from edge.config import Config, config_from_dict  # noqa: E402
from edge.matching import Gallery  # noqa: E402
from edge.sinks import Sink  # noqa: E402

FPS = spoofs.FPS
KINDS = ("live", "print", "print_bent", "screen")
# Rendered pose for each prompt (the renderer's yaw sign is the mirror of the quality stage's:
# rendered +20° reads as −17° there, so "left", which the judge wants as yaw ≥ +turn, is −28).
TURN = {"left": (-28.0, 0.0), "right": (28.0, 0.0), "up": (0.0, -30.0)}
TURN_S, HOLD_S = 0.8, 0.5
log = logging.getLogger("liveness_challenge")


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        self.verdicts, self.events = [], []

    def publish(self, verdict) -> None:
        self.verdicts.append(verdict)

    def event(self, event) -> None:
        self.events.append(event)


class Presenter:
    """One subject in front of the camera, turning when asked."""

    def __init__(self, kind: str, subject, rng: np.random.Generator) -> None:
        self.kind, self.rng = kind, rng
        background = spoofs.background_image(rng, None)
        if kind == "live":
            self.rig = spoofs.head_rig(subject, rng, background, rng.uniform(100, 150))
        else:
            self.rig = spoofs.PlanarRig(subject, kind, rng, background)
            self.rig.finish_setup()
            self.cx, self.cy = spoofs.W / 2 + rng.uniform(-60, 60), spoofs.H / 2 + rng.uniform(-40, 40)
        self.noise, self.quality = rng.uniform(2, 5), int(rng.integers(70, 91))
        self.prompt: tuple[str, int] | None = None  # (direction, frame it was heard)

    def hear(self, direction: str, frame: int) -> None:
        """A prompt for its track (a new track, after a split, gets its own prompt: followed too)."""
        self.prompt = (direction, frame)

    def frame(self, i: int) -> np.ndarray:
        yaw, pitch = (float(v) for v in self.rng.normal(0, 0.35, 2))
        if self.prompt is not None:
            direction, heard = self.prompt
            s = (i - heard) / FPS
            k = min(s / TURN_S, 1.0) if s < TURN_S + HOLD_S else max(0.0, 1 - (s - TURN_S - HOLD_S) / TURN_S)
            k = 0.5 - 0.5 * np.cos(np.pi * k)  # ease in and out
            yaw += TURN[direction][0] * k
            pitch += TURN[direction][1] * k
        if self.kind == "live":
            raw = self.rig.frame(yaw, pitch, self.rng.normal(0, 0.3), *self.rng.normal(0, 0.5, 2))
        else:
            jx, jy = self.rng.normal(0, 0.8, 2)
            raw = self.rig.frame(yaw, pitch, self.rng.normal(0, 0.3), self.cx + jx, self.cy + jy, self.rig.depth)
        return spoofs.camera_finish(raw, self.rng, self.noise, self.quality)


def subjects(engine, lfw: Path, n: int, seed: int):
    """(name, enrolment embedding, Subject of another photo) for up to n people with ≥ 2 photos."""
    by: dict[str, list[Path]] = {}
    for line in (lfw / "labels.csv").read_text().splitlines()[1:]:
        image, name = line.rsplit(",", 1)
        by.setdefault(name, []).append(lfw / image)
    names = sorted(k for k, v in by.items() if len(v) >= 2)
    random.Random(seed).shuffle(names)
    for name in names:
        photos = sorted(by[name])
        faces = engine.faces(spoofs.read_rgb(photos[0]), max_faces=1)
        shown = spoofs.subject_from_photo(engine, spoofs.read_rgb(photos[1]), name)
        if faces and shown is not None:
            yield name, faces[0].embedding, shown
            n -= 1
            if n == 0:
                return


def run_one(engine, gallery, config, presenter: Presenter, name: str, frames: int) -> dict:
    """One subject through the loop until a grant or a spoof verdict, or `frames` frames."""
    sink = Recorder()
    app = Appliance(engine, gallery, None, config=config, sinks=[sink])
    heard = 0
    for i in range(frames):
        image = presenter.frame(i)
        app.process(Frame(image, i, i / FPS, time.monotonic()))
        for event in sink.events[heard:]:
            if event["event"] == "liveness_challenge":
                presenter.hear(event["prompt"], i + 1)
        heard = len(sink.events)
        if any(v.decision in ("granted", "spoof") for v in sink.verdicts):
            break
    decisions = [v.decision for v in sink.verdicts]
    granted = any(v.decision == "granted" and v.name == name for v in sink.verdicts)
    prompts = [e for e in sink.events if e["event"] == "liveness_challenge"]
    return {
        "granted": granted,
        "spoof": "spoof" in decisions and not granted,
        "prompted": bool(prompts),
        "frames": i + 1,
        "liveness_ms": app.stats()["stages_ms"].get("liveness", {}).get("p50"),
        "reason": next((v.liveness.get("reason") for v in sink.verdicts if v.decision == "spoof"), None),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--live", type=int, default=100)
    ap.add_argument("--print", dest="print_", type=int, default=100)
    ap.add_argument("--bent", type=int, default=50)
    ap.add_argument("--screen", type=int, default=100)
    ap.add_argument("--mode", default="passive+challenge", choices=("passive", "passive+challenge"))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = config_from_dict({"vault": {"path": ""}, "audit": {"path": ""}, "liveness": {"mode": args.mode}})
    off = config_from_dict({"vault": {"path": ""}, "audit": {"path": ""}, "liveness": {"mode": "off"}})
    engine = engine_from_config(Config())
    counts = {"live": args.live, "print": args.print_, "print_bent": args.bent, "screen": args.screen}
    total = sum(counts.values())
    people = list(subjects(engine, args.lfw, total, args.seed))
    gallery = Gallery.from_embeddings([p[0] for p in people], np.stack([p[1] for p in people]))
    results: dict[str, list[dict]] = {k: [] for k in KINDS}
    t0 = time.perf_counter()
    index = 0
    for kind in KINDS:
        for _ in range(counts[kind]):
            if index >= len(people):
                break
            name, _, subject = people[index]
            rng = np.random.default_rng([args.seed, KINDS.index(kind), index])
            presenter = Presenter(kind, subject, rng)
            r = run_one(engine, gallery, config, presenter, name, int(args.seconds * FPS))
            if kind == "live":  # the same subject and frames with liveness off: does the engine know them at all?
                presenter = Presenter(kind, subject, np.random.default_rng([args.seed, KINDS.index(kind), index]))
                r["granted_without_liveness"] = run_one(engine, gallery, off, presenter, name, int(args.seconds * FPS))[
                    "granted"
                ]
            results[kind].append(r)
            index += 1
            log.info("%s %s: granted=%s spoof=%s prompted=%s", kind, name, r["granted"], r["spoof"], r["prompted"])
    seconds = time.perf_counter() - t0
    print(f"liveness challenge: mode {args.mode}, {index} subjects (each a different lfw-dev person, enrolled")
    print(f"with another photo), {args.seconds:g} s at {FPS:g} fps each, the real loop; {seconds:.0f} s\n")
    print(f"{'kind':<11} {'subjects':>8} {'granted':>8} {'spoof':>6} {'neither':>8} {'prompted':>9}")
    for kind in KINDS:
        rs = results[kind]
        if not rs:
            continue
        g, s = sum(r["granted"] for r in rs), sum(r["spoof"] for r in rs)
        p = sum(r["prompted"] for r in rs)
        print(f"{kind:<11} {len(rs):>8} {g:>8} {s:>6} {len(rs) - g - s:>8} {p:>9}")
    reasons = Counter(
        r["reason"].split(" ")[0] + " " + r["reason"].split(" ")[1] for k in KINDS for r in results[k] if r["reason"]
    )
    print("\nspoof reasons:", dict(reasons))
    attacks = [r for k in KINDS[1:] for r in results[k]]
    live = results["live"]
    if attacks:
        print(f"attacks granted: {sum(r['granted'] for r in attacks)} of {len(attacks)}")
    if live:
        known = [r for r in live if r["granted_without_liveness"]]
        print(f"live subjects granted: {sum(r['granted'] for r in live)} of {len(live)}")
        print(
            f"live subjects granted, of those granted with liveness off (the engine knows them): "
            f"{sum(r['granted'] for r in known)} of {len(known)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
