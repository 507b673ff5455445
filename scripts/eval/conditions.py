#!/usr/bin/env python3
"""Faces as a door camera sees them: held-out lfw-dev photos degraded, detection, TAR, gate and FAR.

    python scripts/eval/conditions.py [--lfw ../shared/data/lfw-dev] [--photos 0] [--conditions ...]

Every photo of pairs.csv (LFW folds 0–4, which the calibration never saw; `--photos N`: the
first N of a seeded shuffle) is degraded deterministically, once per condition:

- ``clean``: the photo as it is;
- ``80px`` / ``48px`` / ``32px``: the photo scaled so that its labelled face is that many
  pixels wide and pasted into a noisy grey 640×480 frame (sensor noise σ 4, JPEG 90) — a
  face at a distance;
- ``blur9``: 9-px linear motion blur at a random angle;
- ``roll35``: turned 35° (left or right);
- ``backlight``: the face darkened (×0.35) under a bright background (a window behind);
- ``mask``: a surgical-mask-coloured occluder from just under the nose to the chin;
- ``lowlight``: ×0.2 exposure, noise σ 5, JPEG 80;
- ``jpeg15``: JPEG quality 15;
- ``edge25`` / ``edge40``: the photo cut so that 25 / 40 % of the face's width is outside
  the frame;
- ``overlap40``: 40 % of the face's width hidden behind another head (the photo's own face,
  mirrored).

The labelled face is the one nearest where the photo's centre face went (LFW's labelled face
is the centre one). Printed per condition, with the camera side degraded and the enrolled
side clean: **detected** (the labelled face found), **TAR at FAR 1e-3 and 1e-4** over every
cross pair of the held-out photos (a missed face is a miss), the **gate pass rate**
(`check_quality`, NORMAL) and TAR at FAR 1e-4 among passed faces; then the calibrated
**FAR at 0.6 / 0.7 / 0.8** with one side degraded and with both sides degraded (every
impostor pair of two degraded photos), and FAR at 0.7 among pairs where both faces passed the
gate — with the degradation penalty `Engine.verify` applies (`Calibration.penalty`) and,
last column, without it. Embeddings, degradation vectors (and every quality measurement,
`q_<name>`, for gate-rule ablations) are cached per model version and condition in
`--cache`. Exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import lfw as lfw_data  # noqa: E402
from degrade import degrade, nearest  # noqa: E402
from identification import DEFAULT_LFW, parse_eval_args  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.evaluation import tar_at_far  # noqa: E402
from edge.matching import DEFAULT_THRESHOLD, far_of_threshold  # noqa: E402
from edge.vision import quality  # noqa: E402

CONDITIONS = ("clean", "80px", "48px", "32px", "blur9", "roll35", "backlight", "mask", "lowlight", "jpeg15")
CONDITIONS += ("edge25", "edge40", "overlap40")
FARS = (1e-3, 1e-4)
THRESHOLDS = (0.6, 0.7, 0.8)


MEASURED = ("face_size", "in_frame", "sharpness", "brightness", "clipped", "yaw", "pitch", "roll", "occlusion")


def failed_checks(data, level: quality.QualityLevel = quality.QualityLevel.NORMAL) -> list[tuple[str, ...]]:
    """The checks each cached face fails at `level` (() for a face not found)."""
    out = []
    for i in range(len(data["found"])):
        if not data["found"][i]:
            out.append(())
            continue
        values = {k: float(data[f"q_{k}"][i]) for k in MEASURED}
        presence = float(data["q_presence"][i]) if "q_presence" in data.files else float("nan")
        m = quality.FaceMeasures(**values, occlusion_detail="", presence=None if np.isnan(presence) else presence)
        out.append(quality.judge(m, level).failed_checks)
    return out


def embed_condition(engine: Engine, lfw: Path, photos: list[str], clean_faces: dict, condition: str, cache: Path):
    """(embeddings, degradation vectors, found, gate ok) of every photo under `condition` (cached;
    the gate is judged again from the cached measurements, so a change of its thresholds needs
    no new run)."""
    path = cache / f"{condition}-{engine.model_version}-{len(photos)}.npz"
    if path.exists():
        data = np.load(path)
        if list(data["photos"]) == photos and "deg" in data.files:
            ok = np.array([bool(f) and not failed for f, failed in zip(data["found"], failed_checks(data))])
            return data["emb"], data["deg"], data["found"], ok
    emb = np.zeros((len(photos), engine.dim), np.float32)
    deg = np.zeros((len(photos), len(quality.degradation(np.zeros((112, 112, 3), np.uint8)))), np.float32)
    found = np.zeros(len(photos), bool)
    ok = np.zeros(len(photos), bool)
    measured: dict[str, np.ndarray] = {}  # every quality measurement, kept for gate-rule ablations
    start = time.perf_counter()
    for i, photo in enumerate(photos):
        face0 = clean_faces.get(photo)
        if face0 is None:
            continue
        rgb = engine.load(str(lfw / photo)).rgb
        frame, centre = degrade(rgb, face0, condition, seed=i)
        face = nearest(engine.faces(frame, quality=True), centre)
        if face is not None:
            emb[i], deg[i], found[i] = face.embedding, face.degradation, True
            ok[i] = bool(face.quality and face.quality.get("ok"))
            report = face.quality_report
            for name, m in ({} if report is None else report.measurements).items():
                measured.setdefault(name, np.full(len(photos), np.nan, np.float32))[i] = m.value
        if (i + 1) % 500 == 0:
            logging.info("%s: %d/%d photos, %.0f s", condition, i + 1, len(photos), time.perf_counter() - start)
    cache.mkdir(parents=True, exist_ok=True)
    measured = {f"q_{k}": v for k, v in measured.items()}
    np.savez(path, photos=np.array(photos), emb=emb, deg=deg, found=found, ok=ok, **measured)
    return emb, deg, found, ok


def scores(engine: Engine, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], penalty: bool = True):
    """Calibrated scores of every (embedding, degradation) of `a` against every one of `b`, with
    the degradation penalty that `Engine.verify` applies (or without it)."""
    out = np.asarray(engine.calibration(a[0] @ b[0].T), np.float64)
    return np.maximum(0.0, out - engine.calibration.penalty(a[1], b[1])) if penalty else out


def cross(sims: np.ndarray, who: np.ndarray, found_a: np.ndarray, found_b: np.ndarray, both: bool):
    """Genuine and impostor scores out of `sims` between photo sets a and b (the same photos, two
    versions).

    Genuine: the same person, two different photos (a missing face on a's side is a miss: -inf).
    Impostor: different people, both faces found. With `both`, each unordered pair once."""
    same = who[:, None] == who[None, :]
    n = len(who)
    pair = ~np.eye(n, dtype=bool)
    if both:
        pair &= np.triu(np.ones((n, n), dtype=bool), 1)
    seen = found_a[:, None] & found_b[None, :]
    genuine = np.where(seen, sims, -np.inf)[same & pair]
    impostor = sims[~same & pair & seen]
    return genuine, impostor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--photos", type=int, default=0, help="use the first N of a seeded shuffle (0: all)")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument("--profile", default="accurate")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "conditions")
    args = parse_eval_args(ap, "pairs.csv")
    if args is None:
        return 2
    engine = Engine(EngineConfig.profile(args.profile))
    identity = lfw_data.identities(args.lfw)
    photos = sorted(lfw_data.pairs_photos(args.lfw))
    if args.photos:
        photos = sorted(np.random.default_rng(0).permutation(photos)[: args.photos].tolist())
    who = np.array([identity[p] for p in photos])
    clean_faces = {}
    for p in photos:  # the labelled face of each clean photo: where to look, how big it is, its landmarks
        face = lfw_data.labelled_face(engine, args.lfw / p)
        if face is not None:
            clean_faces[p] = face
    clean_emb, clean_deg, clean_found, _ = embed_condition(engine, args.lfw, photos, clean_faces, "clean", args.cache)
    clean = (clean_emb, clean_deg)
    print(
        f"profile {args.profile} (model version {engine.model_version}); {len(photos)} held-out photos "
        f"({len(clean_faces)} with a labelled face when clean); camera side degraded, enrolled side clean"
    )
    head = f"{'condition':<10} {'detected':>8} {'TAR@1e-3':>9} {'TAR@1e-4':>9} {'gate pass':>9} {'TAR@1e-4 passed':>15}"
    head += "".join(f" {'FAR@' + str(t) + ' 1 side':>13}" for t in THRESHOLDS)
    head += "".join(f" {'FAR@' + str(t) + ' both':>12}" for t in THRESHOLDS)
    head += f" {f'FAR@{DEFAULT_THRESHOLD:g} both passed':>19} {'(unconditioned)':>15}"
    print(head)
    for condition in args.conditions:
        emb, deg, found, ok = embed_condition(engine, args.lfw, photos, clean_faces, condition, args.cache)
        one_side = scores(engine, (emb, deg), clean)
        genuine, impostor = cross(one_side, who, found, clean_found, both=False)
        tars = [tar_at_far(genuine, impostor, far)[0] for far in FARS]
        passed = found & ok
        g_pass, i_pass = cross(one_side, who, passed, clean_found, both=False)
        g_pass = g_pass[np.isfinite(g_pass)]
        tar_passed = tar_at_far(g_pass, i_pass, 1e-4)[0] if len(g_pass) else float("nan")
        del one_side
        two_sides = scores(engine, (emb, deg), (emb, deg))
        _, both = cross(two_sides, who, found, found, both=True)
        _, both_passed = cross(two_sides, who, passed, passed, both=True)
        _, unconditioned = cross(scores(engine, (emb, deg), (emb, deg), penalty=False), who, passed, passed, True)
        del two_sides
        n_clean = len(clean_faces)
        row = f"{condition:<10} {found.sum() / n_clean:8.1%} {tars[0]:9.2%} {tars[1]:9.2%}"
        row += f" {passed.sum() / n_clean:9.1%} {tar_passed:15.2%}"
        row += "".join(f" {np.mean(impostor >= t):13.1e}" for t in THRESHOLDS)
        row += "".join(f" {np.mean(both >= t):12.1e}" for t in THRESHOLDS)
        for pairs, width in ((both_passed, 19), (unconditioned, 15)):
            row += f" {np.mean(pairs >= DEFAULT_THRESHOLD) if len(pairs) else float('nan'):{width}.1e}"
        print(row, flush=True)
    print("table FAR: " + ", ".join(f"{t} → {far_of_threshold(t):.0e}" for t in THRESHOLDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
