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
- ``jpeg15``: JPEG quality 15.

The labelled face is the one nearest where the photo's centre face went (LFW's labelled face
is the centre one). Printed per condition, with the camera side degraded and the enrolled
side clean: **detected** (the labelled face found), **TAR at FAR 1e-3 and 1e-4** over every
cross pair of the held-out photos (a missed face is a miss), the **gate pass rate**
(`check_quality`, NORMAL) and TAR at FAR 1e-4 among passed faces; then the calibrated
**FAR at 0.6 / 0.7 / 0.8** with one side degraded and with both sides degraded (every
impostor pair of two degraded photos), and the same among pairs where both faces passed the
gate. Embeddings (and every quality measurement, `q_<name>`, for gate-rule ablations) are
cached per model version and condition in `--cache`. Exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "scripts" / "build"))

import lfw as lfw_data  # noqa: E402
from identification import DEFAULT_LFW, parse_eval_args  # noqa: E402

from edge.engine import Engine, EngineConfig  # noqa: E402
from edge.evaluation import tar_at_far  # noqa: E402
from edge.matching import far_of_threshold  # noqa: E402

CONDITIONS = ("clean", "80px", "48px", "32px", "blur9", "roll35", "backlight", "mask", "lowlight", "jpeg15")
FRAME_W, FRAME_H = 640, 480
FARS = (1e-3, 1e-4)
THRESHOLDS = (0.6, 0.7, 0.8)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def degrade(rgb: np.ndarray, face, condition: str, seed: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The photo under `condition`, and where the labelled face's centre is in the result."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    x, y, fw, fh = face.rect
    centre = (x + fw / 2, y + fh / 2)
    if condition == "clean":
        return rgb, centre
    if condition.endswith("px"):
        scale = float(condition[:-2]) / max(fw, 1)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        frame = _noise(np.full((FRAME_H, FRAME_W, 3), 110, np.uint8), 6, rng)
        ox = int(rng.integers(0, max(1, FRAME_W - sw)))
        oy = int(rng.integers(0, max(1, FRAME_H - sh)))
        frame[oy : oy + sh, ox : ox + sw] = small[: FRAME_H - oy, : FRAME_W - ox]
        frame = _jpeg(_noise(frame, 4, rng), 90)
        return frame, (ox + centre[0] * scale, oy + centre[1] * scale)
    if condition == "blur9":
        kernel = np.zeros((9, 9), np.float32)
        kernel[4, :] = 1 / 9
        turn = cv2.getRotationMatrix2D((4, 4), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, turn, (9, 9))
        return cv2.filter2D(rgb, -1, kernel / kernel.sum()), centre
    if condition == "roll35":
        angle = 35.0 if seed % 2 else -35.0
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT), centre
    if condition == "backlight":
        yy, xx = np.mgrid[0:h, 0:w]
        inside = (((xx - centre[0]) / (fw * 0.6)) ** 2 + ((yy - centre[1]) / (fh * 0.75)) ** 2) <= 1.0
        soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), fw * 0.08)[..., None]
        dark = rgb.astype(np.float32) * 0.35
        bright = np.clip(rgb.astype(np.float32) * 0.6 + 170, 0, 255)
        return np.clip(dark * soft + bright * (1 - soft), 0, 255).astype(np.uint8), centre
    if condition == "mask":
        pts = np.asarray(face.landmarks, np.float64)  # eyes, nose tip, mouth corners
        eyes = (pts[0] + pts[1]) / 2
        nose, mouth = pts[2], (pts[3] + pts[4]) / 2
        down = (mouth - eyes) / max(np.linalg.norm(mouth - eyes), 1e-6)
        across = np.array([-down[1], down[0]])
        half = fw * 0.5
        top = nose + down * (np.linalg.norm(mouth - nose) * 0.15)
        chin = mouth + down * (np.linalg.norm(mouth - eyes) * 0.85)
        poly = np.array([top - across * half * 0.95, top + across * half * 0.95, chin + across * half * 0.55,
                         chin - across * half * 0.55])  # fmt: skip
        out = rgb.copy()
        cv2.fillPoly(out, [np.round(poly).astype(np.int32)], (168, 196, 214))
        return out, centre
    if condition == "lowlight":
        dim = np.clip(rgb.astype(np.float32) * 0.2, 0, 255).astype(np.uint8)
        return _jpeg(_noise(dim, 5, rng), 80), centre
    if condition == "jpeg15":
        return _jpeg(rgb, 15), centre
    raise ValueError(f"unknown condition {condition!r}")


def nearest(faces, centre: tuple[float, float]):
    """The face whose box centre is nearest `centre`, if that centre lies within its box."""
    best = None
    for f in faces:
        x, y, w, h = f.rect
        d = ((x + w / 2 - centre[0]) ** 2 + (y + h / 2 - centre[1]) ** 2) ** 0.5
        if d <= max(w, h) * 0.5 and (best is None or d < best[0]):
            best = (d, f)
    return None if best is None else best[1]


def embed_condition(engine: Engine, lfw: Path, photos: list[str], clean_faces: dict, condition: str, cache: Path):
    """(embeddings, found, gate ok) of every photo under `condition` (cached)."""
    path = cache / f"{condition}-{engine.model_version}-{len(photos)}.npz"
    if path.exists():
        data = np.load(path)
        if list(data["photos"]) == photos:
            return data["emb"], data["found"], data["ok"]
    emb = np.zeros((len(photos), engine.dim), np.float32)
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
            emb[i], found[i] = face.embedding, True
            ok[i] = bool(face.quality and face.quality.get("ok"))
            report = face.quality_report
            for name, m in ({} if report is None else report.measurements).items():
                measured.setdefault(name, np.full(len(photos), np.nan, np.float32))[i] = m.value
        if (i + 1) % 500 == 0:
            logging.info("%s: %d/%d photos, %.0f s", condition, i + 1, len(photos), time.perf_counter() - start)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, photos=np.array(photos), emb=emb, found=found, ok=ok, **{f"q_{k}": v for k, v in measured.items()})
    return emb, found, ok


def cross(a: np.ndarray, b: np.ndarray, who: np.ndarray, found_a: np.ndarray, found_b: np.ndarray, both: bool):
    """Genuine and impostor raw similarities between photo sets a and b (the same photos, two versions).

    Genuine: the same person, two different photos (a missing face on a's side is a miss: -inf).
    Impostor: different people, both faces found. With `both`, each unordered pair once."""
    sims = a @ b.T
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
    clean, clean_found, _ = embed_condition(engine, args.lfw, photos, clean_faces, "clean", args.cache)
    raw = {t: engine.calibration.raw_threshold(t) for t in THRESHOLDS}
    print(
        f"profile {args.profile} (model version {engine.model_version}); {len(photos)} held-out photos "
        f"({len(clean_faces)} with a labelled face when clean); camera side degraded, enrolled side clean"
    )
    head = f"{'condition':<10} {'detected':>8} {'TAR@1e-3':>9} {'TAR@1e-4':>9} {'gate pass':>9} {'TAR@1e-4 passed':>15}"
    head += "".join(f" {'FAR@' + str(t) + ' 1 side':>13}" for t in THRESHOLDS)
    head += "".join(f" {'FAR@' + str(t) + ' both':>12}" for t in THRESHOLDS)
    head += f" {'FAR@0.7 both passed':>19}"
    print(head)
    for condition in args.conditions:
        emb, found, ok = embed_condition(engine, args.lfw, photos, clean_faces, condition, args.cache)
        genuine, impostor = cross(emb, clean, who, found, clean_found, both=False)
        tars = [tar_at_far(genuine, impostor, far)[0] for far in FARS]
        passed = found & ok
        g_pass, i_pass = cross(emb, clean, who, passed, clean_found, both=False)
        g_pass = g_pass[np.isfinite(g_pass)]
        tar_passed = tar_at_far(g_pass, i_pass, 1e-4)[0] if len(g_pass) else float("nan")
        _, both = cross(emb, emb, who, found, found, both=True)
        _, both_passed = cross(emb, emb, who, passed, passed, both=True)
        n_clean = len(clean_faces)
        row = f"{condition:<10} {found.sum() / n_clean:8.1%} {tars[0]:9.2%} {tars[1]:9.2%}"
        row += f" {passed.sum() / n_clean:9.1%} {tar_passed:15.2%}"
        row += "".join(f" {np.mean(impostor > raw[t]):13.1e}" for t in THRESHOLDS)
        row += "".join(f" {np.mean(both > raw[t]):12.1e}" for t in THRESHOLDS)
        row += f" {np.mean(both_passed > raw[0.7]) if len(both_passed) else float('nan'):19.1e}"
        print(row, flush=True)
    print("table FAR: " + ", ".join(f"{t} → {far_of_threshold(t):.0e}" for t in THRESHOLDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
