#!/usr/bin/env python3
"""Per-track evidence on door-camera clips: the mean of a track's frames against counting frames.

    python scripts/eval/track_evidence.py [--lfw ../shared/data/lfw-dev] [--people 1000]
        [--clips 300] [--frames 12] [--profile accurate] [--seed 0]

Held-out data only (the photos of pairs.csv, which the score calibration never saw), the
gallery as in `identification.py`: `--people` people enrolled with one photo each (people
with at least two held-out photos first, topped up with one-photo people). Each clip is
one held-out photo pasted into 640×480 frames the way a door camera sees a face that
stands still for a moment: the face 100–140 px wide, drifting a few pixels, and every
frame degraded on its own (motion blur up to 11 px, sensor noise σ 3–12, gain 0.5–1.4,
a roll of ±8°, JPEG quality 40–90). **Genuine clips** show an enrolled person in a photo
that was not enrolled; **stranger clips** show a one-photo person who is not enrolled.

Every clip runs through the real appliance loop (`Appliance.process`: detector, tracker,
FaceMesh alignment, quality gate, the cascade, 1:N, decision policy) once per evidence
mode of `[decision]`: "mean" (the track's mean embedding decides) and "count" (k of n
frames must each match), with the same k = 3, n = 5 and threshold 0.7 (gallery-aware).
Printed per mode: genuine clips granted to the right person, granted to someone else,
not granted; the median frame of the grant; stranger clips granted. Exits 0.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from identification import DEFAULT_LFW, embeddings, held_out, parse_eval_args  # noqa: E402

from edge.app import engine_from_config  # noqa: E402
from edge.appliance.loop import Appliance  # noqa: E402
from edge.camera.base import Frame  # noqa: E402
from edge.config import config_from_dict  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD, Gallery  # noqa: E402

MODES = ("mean", "count")
WIDTH, HEIGHT = 640, 480


def door_clip(photo: np.ndarray, frames: int, rng: random.Random) -> list[np.ndarray]:
    """`frames` RGB 640×480 frames of one photo (its face ~100–140 px wide), each degraded on its own."""
    scale = rng.uniform(0.85, 1.2)  # LFW's face is ~115 px of its 250 px photo
    size = int(round(250 * scale))
    face = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)
    x0, y0 = rng.randint(60, WIDTH - size - 60), rng.randint(20, HEIGHT - size - 20)
    vx, vy = rng.uniform(-2, 2), rng.uniform(-1, 1)
    out = []
    for i in range(frames):
        frame = np.full((HEIGHT, WIDTH, 3), 118, np.uint8)
        x, y = int(x0 + vx * i), int(y0 + vy * i)
        angle = rng.uniform(-8, 8)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
        turned = cv2.warpAffine(face, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
        frame[y : y + size, x : x + size] = turned
        length = rng.randint(1, 11)
        if length > 1:
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (length, length))
            kernel /= max(float(kernel.sum()), 1e-6)
            frame = cv2.filter2D(frame, -1, kernel)
        noisy = frame.astype(np.float32) * rng.uniform(0.5, 1.4)
        noisy += np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(3, 12), noisy.shape)
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 90)])
        out.append(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


def run_clip(engine, gallery: Gallery, frames: list[np.ndarray], mode: str, profile: str) -> tuple[str | None, int]:
    """The first `granted` of the clip: (name, frame index), or (None, -1)."""
    config = config_from_dict(
        {
            "vault": {"path": ""},
            "audit": {"path": ""},
            "engine": {"profile": profile},
            "decision": {"evidence": mode, "threshold": DEFAULT_THRESHOLD, "k": 3, "n": 5},
        }
    )
    app = Appliance(engine, gallery, source=None, config=config, sinks=[])
    for i, image in enumerate(frames):
        for v in app.process(Frame(image, i, i / 30, time.monotonic())):
            if v.decision == "granted":
                return v.name, i
    return None, -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--people", type=int, default=1000, help="people enrolled (one photo each)")
    ap.add_argument("--clips", type=int, default=300, help="genuine clips, and as many stranger clips")
    ap.add_argument("--frames", type=int, default=12, help="frames per clip (30 fps)")
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "embeddings")
    args = parse_eval_args(ap, "pairs.csv")
    if args is None:
        return 2

    config = config_from_dict({"vault": {"path": ""}, "audit": {"path": ""}, "engine": {"profile": args.profile}})
    engine = engine_from_config(config)
    photos, identity, counts = held_out(args.lfw)
    emb = embeddings(engine, args.lfw, photos, args.cache)
    by_person: dict[str, list[str]] = {}
    for photo in photos:
        if photo in emb:
            by_person.setdefault(identity[photo], []).append(photo)
    rng = random.Random(args.seed)
    several = sorted(p for p, ph in by_person.items() if len(ph) >= 2)
    singles = sorted(p for p, ph in by_person.items() if counts[p] == 1)
    rng.shuffle(several)
    rng.shuffle(singles)
    enrolled = several[: args.people]
    enrolled += singles[: max(0, args.people - len(enrolled))]
    strangers = [p for p in singles if p not in set(enrolled)][: args.clips]
    gallery = Gallery.from_embeddings(enrolled, np.stack([emb[by_person[p][0]] for p in enrolled]))
    genuine = [p for p in enrolled if len(by_person[p]) >= 2][: args.clips]
    print(
        f"profile {args.profile}; {len(enrolled)} people enrolled (one photo each); "
        f"{len(genuine)} genuine clips, {len(strangers)} stranger clips, {args.frames} frames each; seed {args.seed}"
    )

    results = {mode: {"right": [], "wrong": 0, "missed": 0, "strangers": 0} for mode in MODES}
    start = time.perf_counter()
    clips = [(p, by_person[p][1], True) for p in genuine] + [(p, by_person[p][0], False) for p in strangers]
    for done, (person, photo, is_genuine) in enumerate(clips, 1):
        image = cv2.cvtColor(cv2.imread(str(args.lfw / photo)), cv2.COLOR_BGR2RGB)
        frames = door_clip(image, args.frames, random.Random(f"{args.seed}/{photo}"))
        for mode in MODES:
            name, at = run_clip(engine, gallery, frames, mode, args.profile)
            r = results[mode]
            if not is_genuine:
                r["strangers"] += name is not None
            elif name == person:
                r["right"].append(at)
            elif name is None:
                r["missed"] += 1
            else:
                r["wrong"] += 1
        if done % 50 == 0:
            logging.info("%d/%d clips, %.0f s", done, len(clips), time.perf_counter() - start)

    print(
        f"{'evidence':<9} {'genuine granted':>16} {'wrong person':>13} {'not granted':>12} "
        f"{'median grant frame':>19} {'strangers granted':>18}"
    )
    for mode in MODES:
        r = results[mode]
        n = max(1, len(genuine))
        median = statistics.median(r["right"]) if r["right"] else float("nan")
        print(
            f"{mode:<9} {len(r['right']) / n:>15.1%} {r['wrong']:>13d} {r['missed'] / n:>11.1%} "
            f"{median:>19.0f} {r['strangers']:>10d} of {len(strangers)}"
        )
    mean, count = results["mean"], results["count"]
    if count["missed"]:
        print(
            f"not granted: mean {mean['missed']} / count {count['missed']} clips "
            f"({(count['missed'] - mean['missed']) / count['missed']:+.0%} of the misses removed by the mean)"
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
