#!/usr/bin/env python3
"""Track integrity and tailgating, end to end: door clips built from lfw-dev, run by `edge run`.

    python scripts/eval/track_integrity.py [--lfw ../shared/data/lfw-dev] [--pairs 4] [--seed 0]
        [--width 110] [--work DIR]

Each pair is an enrolled person (enrolled with two photos by `edge enroll` into a fresh
vault; a third photo, with no other face in it, is the one at the door) and a stranger (a
one-photo lfw-dev person, not enrolled, whose face passes the quality gate: a face the gate
refuses is never decided, only reported as `quality_rejected`); the first enrolled person
is Colin Powell, as in issue 15. Every clip is
640×480 at 15 fps, each face scaled to the same width (`--width` px) and put in the same
spot, with a few pixels of jitter per frame: the hardest case for the tracker, which keeps
the track across the change. Clips, per pair:

``alone``            the enrolled person for 45 frames;
``swap G``           the enrolled person for 30 frames (granted), G empty frames (0, 5, 12),
                     then the stranger for 60 frames in the same spot;
``after G``          the stranger for 30 frames (denied), G empty frames (0, 5), then the
                     enrolled person for 45 frames;
``two at the door``  the enrolled person and the stranger side by side for 45 frames;
``two enrolled``     two enrolled people side by side for 45 frames (no tailgate: both granted).

Each clip is written as an MJPG .avi and run with `edge run --source CLIP --vault V
--config C` in a subprocess; the verdicts and events are read from its stdout. Printed: a
markdown table, one row per clip (verdicts in order with their frame; frames from the
person's first frame to the grant; tailgate events) and a PASS/FAIL line per rule:

- after a swap the stranger gets ``unknown`` and ``denied``, and nobody is granted again;
- the enrolled person who follows a stranger is granted within ±2 frames of ``alone``;
- ``two at the door`` raises ``tailgate``; ``two enrolled`` grants both and raises none.

Exits 1 when a rule fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.app import engine_from_config  # noqa: E402
from edge.config import Config  # noqa: E402

DEFAULT_LFW = ROOT.parent / "shared" / "data" / "lfw-dev"
FPS = 15
W, H = 640, 480
FIRST = "Colin_Powell"
log = logging.getLogger("track_integrity")


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


class Stage:
    """Puts a photo's face at a given width and centre in 640×480 frames."""

    def __init__(self, engine, width: int, seed: int) -> None:
        self.engine, self.width = engine, width
        self.rng = np.random.default_rng(seed)
        self._rects: dict[int, tuple] = {}

    def blank(self) -> np.ndarray:
        return np.clip(self.rng.normal(96, 3, (H, W, 3)), 0, 255).astype(np.uint8)

    def put(self, canvas: np.ndarray, photo: np.ndarray, centre=(320, 240)) -> np.ndarray:
        key = id(photo)
        if key not in self._rects:
            faces = self.engine.faces(photo, max_faces=1, quality=False)
            if not faces:
                raise ValueError("no face in a clip photo")
            self._rects[key] = faces[0].rect
        x, y, w, h = self._rects[key]
        s = self.width / w * self.rng.uniform(0.98, 1.02)
        img = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
        cx, cy = centre[0] + self.rng.integers(-3, 4), centre[1] + self.rng.integers(-2, 3)
        left, top = int(round(cx - (x + w / 2) * s)), int(round(cy - (y + h / 2) * s))
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + img.shape[1], W), min(top + img.shape[0], H)
        canvas[y0:y1, x0:x1] = img[y0 - top : y1 - top, x0 - left : x1 - left]
        return canvas

    def frames(self, *photos_at, n: int) -> list[np.ndarray]:
        """n frames with each (photo, centre) in `photos_at` pasted in."""
        out = []
        for _ in range(n):
            canvas = self.blank()
            for photo, centre in photos_at:
                self.put(canvas, photo, centre)
            out.append(canvas)
        return out

    def empty(self, n: int) -> list[np.ndarray]:
        return [self.blank() for _ in range(n)]


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def edge(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "edge.cli", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, input=stdin, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def run_clip(clip: Path, vault: Path, config: Path) -> tuple[list[dict], list[dict]]:
    out = edge("run", "--source", str(clip), "--vault", str(vault), "--config", str(config)).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    verdicts = [r for r in records if r.get("type") == "verdict"]
    events = [r for r in records if r.get("type") == "event"]
    return verdicts, events


def pick_people(engine, lfw: Path, vault: Path, pairs: int, seed: int) -> list[tuple[str, list[Path], str, Path]]:
    """Enrol `pairs` + 1 people (two photos each; those `edge enroll` refuses are passed over) →
    (name, [enrol, enrol, visit] photos, stranger name, stranger photo); the last has no stranger.
    A visit or stranger photo shows one face only (LFW photos often hold a second person, who
    would be a third face in the clip)."""

    def one_face(path: Path) -> bool:
        return len(engine.faces(rgb(path), quality=False)) == 1

    def judgeable(path: Path) -> bool:  # one face, and it passes the quality gate
        faces = engine.faces(rgb(path))
        return len(faces) == 1 and bool(faces[0].quality and faces[0].quality.get("ok"))

    by: dict[str, list[Path]] = {}
    for line in (lfw / "labels.csv").read_text().splitlines()[1:]:
        image, name = line.rsplit(",", 1)
        by.setdefault(name, []).append(lfw / image)
    rng = random.Random(seed)
    candidates = sorted(n for n, v in by.items() if len(v) >= 3 and n != FIRST)
    rng.shuffle(candidates)
    strangers = [n for n in sorted(n for n, v in by.items() if len(v) == 1)]
    rng.shuffle(strangers)
    strangers = [n for n in strangers[: pairs * 4] if judgeable(by[n][0])][:pairs]
    chosen: list[tuple[str, list[Path]]] = []
    for name in [FIRST, *candidates]:
        if len(chosen) == pairs + 1:  # one spare: "two enrolled" needs a second person
            break
        photos = sorted(by[name])[:3]
        if not one_face(photos[2]):
            continue
        try:
            edge("enroll", "--vault", str(vault), name, *map(str, photos[:2]))
        except RuntimeError as exc:
            log.info("passed over %s: %s", name, str(exc).splitlines()[-1][-160:])
            continue
        chosen.append((name, photos))
    out = [(n, photos, s, by[s][0]) for (n, photos), s in zip(chosen, strangers)]
    return out + [(chosen[-1][0], chosen[-1][1], "", Path())]


def named(verdict: dict) -> str:
    return f"({verdict['name']})" if verdict.get("name") else ""


def frames_to_grant(verdicts: list[dict], name: str, change: int) -> int | None:
    """Frames from the enrolled person's first frame (`change`) to their grant."""
    grants = [v["frame_index"] for v in verdicts if v["decision"] == "granted" and v["name"] == name]
    grants = [f for f in grants if f >= change]
    return grants[0] - change if grants else None


def judge(label, verdicts, tailgates, name, spare_name, change, grant_at, alone_at) -> bool:
    """Whether a clip's run kept the rule for its kind (the module's docstring lists them)."""
    granted = [v for v in verdicts if v["decision"] == "granted"]
    if label == "alone":
        return grant_at is not None
    if label.startswith("after"):
        early = [v for v in granted if v["frame_index"] < change]
        return grant_at is not None and alone_at is not None and abs(grant_at - alone_at) <= 2 and not early
    if label.startswith("swap"):
        kinds = [v["decision"] for v in verdicts if v["frame_index"] >= change]
        before = [v for v in granted if v["frame_index"] < change]
        return bool(before) and "granted" not in kinds and "unknown" in kinds and "denied" in kinds
    if label == "two at the door":
        return any(v["name"] == name for v in granted) and bool(tailgates)
    return {v["name"] for v in granted} == {name, spare_name} and not tailgates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=110, help="face width in the frames, px")
    ap.add_argument("--detector", default=None, help="engine.detector for the runs (default: the config's)")
    ap.add_argument("--work", type=Path, default=None, help="keep clips and the vault here (default: a temp dir)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not (args.lfw / "labels.csv").is_file():
        log.error("lfw-dev not found at %s", args.lfw)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="track-integrity-"))
    work.mkdir(parents=True, exist_ok=True)
    vault = work / "vault"
    config = work / "edge.toml"
    config.write_text(
        f'[camera]\nfps = {FPS}\n[audit]\npath = "{work / "audit.jsonl"}"\n[sinks]\nstdout = true\n'
        f'[mqtt]\nenabled = false\n[log]\nlevel = "warning"\n'
        + (f'[engine]\ndetector = "{args.detector}"\n' if args.detector else "")
    )
    if vault.exists():
        raise SystemExit(f"{vault} exists: give a fresh --work directory")
    edge("keys", "init", "--vault", str(vault))
    engine = engine_from_config(Config())
    people = pick_people(engine, args.lfw, vault, args.pairs, args.seed)
    stage = Stage(engine, args.width, args.seed)
    rows, failures = [], []
    spare_name, spare_photos = people[-1][0], people[-1][1]
    for name, photos, stranger, stranger_photo in people[:-1]:
        visit, other = rgb(photos[2]), rgb(stranger_photo)
        clips: list[tuple[str, list, int]] = [("alone", stage.frames((visit, (320, 240)), n=45), 0)]
        centre = (320, 240)
        for gap in (0, 5, 12):
            frames = stage.frames((visit, centre), n=30) + stage.empty(gap) + stage.frames((other, centre), n=60)
            clips.append((f"swap {gap}", frames, 30 + gap))
        for gap in (0, 5):
            frames = stage.frames((other, centre), n=30) + stage.empty(gap) + stage.frames((visit, centre), n=45)
            clips.append((f"after {gap}", frames, 30 + gap))
        clips.append(("two at the door", stage.frames((visit, (170, 240)), (other, (470, 240)), n=45), 0))
        spare = rgb(spare_photos[2])
        clips.append(("two enrolled", stage.frames((visit, (170, 240)), (spare, (470, 240)), n=45), 0))
        alone_at = None
        for label, frames, change in clips:
            clip = write_clip(work / f"{name}-{label.replace(' ', '_')}.avi", frames)
            verdicts, events = run_clip(clip, vault, config)
            tailgates = [e for e in events if e.get("event") == "tailgate"]
            splits = [e for e in events if e.get("event") == "track_split"]
            grant_at = (
                frames_to_grant(verdicts, name, change) if label == "alone" or label.startswith("after") else None
            )
            if label == "alone":
                alone_at = grant_at
            ok = judge(label, verdicts, tailgates, name, spare_name, change, grant_at, alone_at)
            row = (
                name,
                stranger if label != "two enrolled" else spare_name,
                label,
                ", ".join(f"{v['decision']}{named(v)}@{v['frame_index']}" for v in verdicts) or "—",
                "" if grant_at is None else str(grant_at),
                ", ".join(f"{e['reason']}@{e['frame_index']}" for e in splits) or "—",
                str(len(tailgates)),
                "PASS" if ok else "FAIL",
            )
            rows.append(row)
            log.info("%s", " | ".join(row))
            if not ok:
                failures.append(row)
    print(
        f"track integrity: {len(rows)} clips, {args.pairs} pairs, faces {args.width} px, {FPS} fps, `edge run` each\n"
    )
    print(
        "| enrolled | other | clip | verdicts (decision@frame) | frames to grant | track splits (why@frame) "
        "| tailgate events | |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{len(rows) - len(failures)} of {len(rows)} clips pass")
    if args.work is None:
        for p in sorted(work.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        os.rmdir(work)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
