#!/usr/bin/env python3
"""Calibrate and evaluate `edge.vision.quality` on lfw-dev and degraded copies of it.

    python scripts/eval/eval_quality.py [--data DIR] [--limit N] [--degrade N] [--workers 2]
                                   [--split heldout|fit|all] [--embedder KEY] [--fit]
                                   [--detector cascade] [--only PREFIXES] [--save ROWS.pkl]

The figures in `edge.vision.quality`'s docstring come from
``--degrade 600 --embedder mobilefacenet`` (held-out split; ~4 min on the 2-core dev
machine) and ``--split all --degrade 0``; `OCCLUSION_STATS` from ``--fit --degrade 0``.

For every photo: BlazeFace (``--detector``, default cascade) → largest face → FaceMesh
(landmarks + presence logit) → 112×112 crop aligned on the mesh's five points →
`quality.measure` (timed) → `quality.judge` at every level.

Tables printed:

1. Clean photos: the distribution of every raw measurement (percentiles), and per level
   the pass rate of each measurement, of the whole report, and how often a clean photo
   would be answered 4004 (``occluded``).
2. Degraded photos (``--degrade`` photos of the split, each degraded every way in
   `DEGRADATIONS`, placed with the clean photo's landmarks, then run through the whole
   pipeline again): per degradation and level, how often the *intended* check fails,
   how often the report fails at all, how often the answer would be 4004, and photos
   where no face was found any more. With ``--embedder`` also the median cosine between
   the embeddings of the clean and the degraded crop of the same photo (how much the
   degradation hurts recognition).
3. ms per face of `quality.measure` (the crop and landmarks given): inside the worker
   processes, and again alone in one process on 200 photos (best of 5 runs per face).

Identities are split by CRC32 of the name: even = "fit" (where `OCCLUSION_STATS` come
from, ``--fit`` prints them), odd = "heldout" (the default for the tables, so the
occlusion figures are out of sample). Photos are read in place; nothing is copied.
"""

from __future__ import annotations

import os

# One BLAS thread per process: the 2×3 SVDs here are far slower with a thread pool.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

from edge.vision import quality  # noqa: E402
from edge.vision.align import align  # noqa: E402
from edge.vision.landmarks import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, NOSE_TIP, five_points_of  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "lfw-dev"
LEVELS = [lv for lv in quality.QualityLevel if lv is not quality.QualityLevel.NONE]
MEASUREMENTS = ("in_frame", "face_size", "sharpness", "brightness", "clipped", "yaw", "pitch", "roll")
MEASUREMENTS += ("occlusion", "presence", "mid_sharpness")


# --- degradations --------------------------------------------------------------------------
# Each takes (rgb, clean landmarks (468, 2), rng) and returns a new uint8 RGB photo.

Degrade = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[list(EYE_IMAGE_LEFT)].mean(0) - lm[list(EYE_IMAGE_RIGHT)].mean(0)))


def _eyes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lm[list(EYE_IMAGE_LEFT)].mean(0), lm[list(EYE_IMAGE_RIGHT)].mean(0)


def _paint(
    rgb: np.ndarray,
    mask: np.ndarray,
    colour: Sequence[float],
    rng: np.random.Generator,
    *,
    noise: float = 6.0,
    shade: float = 0.25,
    feather: float = 1.5,
) -> np.ndarray:
    """Cover `mask` with `colour`, given a linear shading ramp (±shade/2) and grain, edges feathered."""
    h, w = rgb.shape[:2]
    alpha = mask.astype(np.float32)
    if feather:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = math.cos(angle) * gx / w + math.sin(angle) * gy / h
    ramp = (ramp - ramp.mean()) * shade
    texture = np.asarray(colour, np.float32)[None, None] * (1 + ramp[..., None])
    texture += cv2.GaussianBlur(rng.normal(0, noise, (h, w)).astype(np.float32), (0, 0), 1.0)[..., None]
    out = rgb.astype(np.float32) * (1 - alpha[..., None]) + texture * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def skin_colour(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Median RGB of the cheeks under the eyes: the hardest colour for an occluder."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    for poly in (quality.REGIONS["cheek_l"], quality.REGIONS["cheek_r"]):
        cv2.fillPoly(mask, [np.round(lm[list(poly)]).astype(np.int32)], 1)
    px = rgb[mask > 0]
    return np.median(px, axis=0).astype(np.float32) if len(px) else np.array([180, 140, 120], np.float32)


_MASK_OUTLINE = [454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234]


def face_mask(colour: Callable[[np.ndarray, np.ndarray, np.random.Generator], Sequence[float]]) -> Degrade:
    """A surgical mask: from the middle of the nose bridge to the chin, ear to ear."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        bridge = lm[[6, 197, 195]].mean(0)
        top = np.array([lm[234], lm[116], bridge, lm[345], lm[454]], np.float64)
        top[[0, -1], 1] = bridge[1] + 0.1 * _iod(lm)
        top[[1, 3], 1] = bridge[1]
        poly = np.vstack([top, lm[_MASK_OUTLINE]])
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        return _paint(rgb, mask, colour(rgb, lm, rng), rng)

    return degrade


def sunglasses(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two dark lenses (ellipses 0.84 × 0.6 IOD) and a bridge."""
    iod = _iod(lm)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    left, right = _eyes(lm)
    for c in (left, right):
        centre = (round(float(c[0])), round(float(c[1] + 0.05 * iod)))
        cv2.ellipse(mask, centre, (int(0.42 * iod), int(0.3 * iod)), 0, 0, 360, 1, -1)
    cv2.line(mask, tuple(np.round(left).astype(int)), tuple(np.round(right).astype(int)), 1, max(1, int(0.06 * iod)))
    colour = [[20, 20, 22], [45, 35, 30], [30, 40, 35]][int(rng.integers(3))]
    return _paint(rgb, mask, colour, rng, noise=3, shade=0.4)


def eye_bar(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black censor bar over both eyes (2 × 0.55 IOD)."""
    iod = _iod(lm)
    left, right = _eyes(lm)
    c = (left + right) / 2
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    box = cv2.boxPoints(((float(c[0]), float(c[1])), (2.0 * iod, 0.55 * iod), angle))
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    return _paint(rgb, mask, [0, 0, 0], rng, noise=2, shade=0.0, feather=0)


def hand(where: str) -> Degrade:
    """A hand in the face's own skin colour: a shaded ellipse with four darker finger gaps.

    ``half``: upright, covering one side of the face (eye to jaw); ``mouth``: lying
    across the mouth and the tip of the nose.
    """

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        iod = _iod(lm)
        colour = skin_colour(rgb, lm) * rng.uniform(0.9, 1.1, 3)
        nose = lm[NOSE_TIP]
        if where == "half":
            side = 1 if rng.random() < 0.5 else -1
            centre, axes = (nose[0] + side * 0.55 * iod, nose[1]), (0.75 * iod, 1.5 * iod)
        else:
            centre = ((lm[13][0] + nose[0]) / 2, lm[13][1] * 0.7 + nose[1] * 0.3)
            axes = (1.2 * iod, 0.6 * iod)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.ellipse(
            mask, (int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), rng.uniform(-15, 15), 0, 360, 1, -1
        )
        out = _paint(rgb, mask, colour, rng, noise=5, shade=0.3)
        gaps = np.zeros(rgb.shape[:2], np.uint8)
        for k in (-1.5, -0.5, 0.5, 1.5):
            if where == "half":
                x = int(centre[0] + k * axes[0] * 0.45)
                cv2.line(gaps, (x, int(centre[1] - axes[1] * 0.8)), (x, int(centre[1] + axes[1] * 0.8)), 1, 1)
            else:
                y = int(centre[1] + k * axes[1] * 0.45)
                cv2.line(gaps, (int(centre[0] - axes[0] * 0.8), y), (int(centre[0] + axes[0] * 0.8), y), 1, 1)
        shadow = cv2.GaussianBlur(gaps.astype(np.float32), (0, 0), 0.8) * (mask > 0)
        return np.clip(out.astype(np.float32) * (1 - 0.35 * shadow[..., None]), 0, 255).astype(np.uint8)

    return degrade


def gaussian_blur(sigma: float) -> Degrade:
    return lambda rgb, lm, rng: cv2.GaussianBlur(rgb, (0, 0), sigma)


def motion_blur(length: int) -> Degrade:
    """Linear motion blur `length` px long, random direction."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        centre = ((length - 1) / 2, (length - 1) / 2)
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, rng.uniform(0, 180), 1.0), (length, length))
        return cv2.filter2D(rgb, -1, kernel / kernel.sum())

    return degrade


def jpeg(quality: int, then: Degrade | None = None) -> Degrade:
    """`then` (if given), then a JPEG round trip at `quality` (cv2.imencode, 4:2:0)."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = rgb if then is None else then(rgb, lm, rng)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    return degrade


def low_resolution(factor: int) -> Degrade:
    """Shrink by `factor`, enlarge back: a soft, low-resolution face at the original size."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    return degrade


def small_face(iod: float) -> Degrade:
    """Shrink the whole photo so the face's inter-ocular distance is `iod` px."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = iod / _iod(lm)
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)

    return degrade


def gain(g: float) -> Degrade:
    """Multiply every pixel by `g` (under- or over-exposure, clipped at 255)."""
    return lambda rgb, lm, rng: np.clip(rgb.astype(np.float32) * g, 0, 255).astype(np.uint8)


def rotate(degrees: float) -> Degrade:
    """In-plane rotation about the face, ±`degrees` at random."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = lm[[33, 263, 152, 10]].mean(0)
        angle = degrees if rng.random() < 0.5 else -degrees
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, 1.0)
        return cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REFLECT101)

    return degrade


def cut(fraction: float) -> Degrade:
    """Cut the photo through the face so about `fraction` of the face's width is lost."""

    def degrade(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x0, x1 = float(lm[:, 0].min()), float(lm[:, 0].max())
        edge = int(round(x1 - fraction * (x1 - x0)))
        return np.ascontiguousarray(rgb[:, : max(edge, 8)])

    return degrade


def mirror(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Left-right flip: nothing should fail; yaw and roll should change sign."""
    return np.ascontiguousarray(rgb[:, ::-1])


def _skin(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> Sequence[float]:
    return skin_colour(rgb, lm) * rng.uniform(0.92, 1.08, 3)


# name → (degradation, the check it should fail or None)
DEGRADATIONS: dict[str, tuple[Degrade, str | None]] = {
    "mirror": (mirror, None),
    "blur σ1.5": (gaussian_blur(1.5), "blur"),
    "blur σ2.5": (gaussian_blur(2.5), "blur"),
    "blur σ4": (gaussian_blur(4.0), "blur"),
    **{f"jpeg q{q}": (jpeg(q), None) for q in (60, 30)},
    # JPEG's 8×8 blocks must not make a blurred face read sharp (docs/quality.md)
    **{f"blur σ{s:g} q{q}": (jpeg(q, gaussian_blur(s)), "blur") for s in (3.0, 4.0) for q in range(60, 100, 5)},
    "motion 9px": (motion_blur(9), "blur"),
    "motion 15px": (motion_blur(15), "blur"),
    "lowres ÷4": (low_resolution(4), "blur"),
    "small iod24": (small_face(24), "face_size"),
    "small iod16": (small_face(16), "face_size"),
    "small iod10": (small_face(10), "face_size"),
    "cut 40%": (cut(0.4), "framing"),
    "dark ×0.35": (gain(0.35), "exposure"),
    "dark ×0.2": (gain(0.2), "exposure"),
    "dark ×0.1": (gain(0.1), "exposure"),
    "bright ×2": (gain(2.0), "exposure"),
    "bright ×3": (gain(3.0), "exposure"),
    "roll 20°": (rotate(20), "pose"),
    "roll 35°": (rotate(35), "pose"),
    "mask blue": (face_mask(lambda rgb, lm, rng: [120, 170, 210]), "occlusion"),
    "mask white": (face_mask(lambda rgb, lm, rng: [235, 235, 232]), "occlusion"),
    "mask black": (face_mask(lambda rgb, lm, rng: [30, 30, 34]), "occlusion"),
    "mask skin": (face_mask(_skin), "occlusion"),
    "sunglasses": (sunglasses, "occlusion"),
    "eye bar": (eye_bar, "occlusion"),
    "hand half": (hand("half"), "occlusion"),
    "hand mouth": (hand("mouth"), "occlusion"),
}


# --- the pipeline, in worker processes -----------------------------------------------------

_STATE: dict[str, object] = {}


def _select(only: str) -> None:
    """Keep only the degradations whose names start with one of `only`'s comma-separated prefixes."""
    keep = tuple(p.strip() for p in only.split(",") if p.strip())
    for name in [n for n in DEGRADATIONS if keep and not n.startswith(keep)]:
        del DEGRADATIONS[name]


def _init(detector_mode: str, embedder: str | None, only: str = "") -> None:
    cv2.setNumThreads(1)
    _select(only)  # the workers' own copy (not inherited under the spawn start method)
    from edge.runtime import open_model
    from edge.vision.detector import FaceDetector
    from edge.vision.landmarks import FaceMesh

    _STATE["detector"] = FaceDetector.open(detector_mode)  # type: ignore[arg-type]
    _STATE["mesh"] = FaceMesh(open_model("face_mesh"))
    if embedder:
        from edge.vision.embedder import Embedder

        _STATE["embedder"] = Embedder.open(embedder)


def _pipeline(rgb: np.ndarray) -> tuple[object, object, np.ndarray] | None:
    faces = _STATE["detector"].detect(rgb)  # type: ignore[attr-defined]
    if not faces:
        return None
    face = max(faces, key=lambda d: d.area)
    mesh = _STATE["mesh"].run(rgb, face)  # type: ignore[attr-defined]
    return face, mesh, align(rgb, five_points_of(mesh.landmarks))


def _measure(rgb: np.ndarray, found: tuple) -> tuple[dict, float]:
    face, mesh, crop = found
    t0 = time.perf_counter()
    m = quality.measure(rgb, face, mesh.landmarks, crop, presence=mesh.presence_logit)
    return m.to_dict(), (time.perf_counter() - t0) * 1e3


def _embed(crop: np.ndarray) -> np.ndarray | None:
    embedder = _STATE.get("embedder")
    return None if embedder is None else embedder.infer(crop)[0]  # type: ignore[attr-defined]


def _work(job: tuple[int, str, bool, bool]) -> list[dict]:
    """One photo: clean measures (+ features if `fit`), then every degradation if `degrade`."""
    index, path, fit, degrade = job
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        return [{"index": index, "variant": "clean", "measures": None}]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    found = _pipeline(rgb)
    if found is None:
        return [{"index": index, "variant": "clean", "measures": None}]
    measures, ms = _measure(rgb, found)
    row: dict = {"index": index, "variant": "clean", "measures": measures, "ms": ms}
    if fit:
        row["features"] = quality.occlusion_features(rgb, found[1].landmarks, found[2])
    rows = [row]
    if degrade:
        clean_emb = _embed(found[2])
        landmarks = found[1].landmarks
        rng = np.random.default_rng(zlib.crc32(path.encode()))
        for name, (fn, _) in DEGRADATIONS.items():
            img = fn(rgb, landmarks, rng)
            got = _pipeline(img)
            if got is None:
                rows.append({"index": index, "variant": name, "measures": None})
                continue
            measures, ms = _measure(img, got)
            out = {"index": index, "variant": name, "measures": measures, "ms": ms}
            emb = _embed(got[2])
            if emb is not None and clean_emb is not None:
                out["cosine"] = float(emb @ clean_emb)
            rows.append(out)
    return rows


# --- tables --------------------------------------------------------------------------------


def _measures_obj(d: dict) -> quality.FaceMeasures:
    fields = quality.FaceMeasures.__dataclass_fields__
    kwargs = {
        k: (math.nan if d[k] is None and k not in ("presence", "mid_sharpness") else d[k]) for k in fields if k in d
    }
    return quality.FaceMeasures(**kwargs)


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def clean_tables(rows: list[dict]) -> None:
    got = [r for r in rows if r["measures"] is not None]
    print(f"\n== clean photos: {len(got)} with a face (of {len(rows)}) ==\n")
    qs = (0.1, 0.5, 1, 5, 50, 95, 99, 99.5, 99.9)
    print(f"{'measurement':12s} " + " ".join(f"{'p' + format(q, 'g'):>7s}" for q in qs))
    for name in MEASUREMENTS:
        if name not in got[0]["measures"]:  # a measurement this checkout does not make
            continue
        v = np.array([r["measures"][name] for r in got if r["measures"][name] is not None], np.float64)
        if name in ("yaw", "pitch", "roll"):
            v = np.abs(v)
            name = f"|{name}|"
        print(f"{name:12s} " + " ".join(f"{x:7.3g}" for x in np.percentile(v, qs)))
    reports = {lv: [quality.judge(_measures_obj(r["measures"]), lv) for r in got] for lv in LEVELS}
    names = list(reports[LEVELS[0]][0].measurements)
    print("\npass rate % per level (clean photos with a face)\n")
    print(f"{'level':8s} " + " ".join(f"{n[:9]:>9s}" for n in names) + f" {'ALL':>7s} {'4004':>6s}")
    for lv in LEVELS:
        reps = reports[lv]
        cols = [np.mean([rep.measurements[n].ok for rep in reps]) for n in names]
        ok = np.mean([rep.ok for rep in reps])
        occ = np.mean([rep.occluded for rep in reps])
        print(f"{lv.name:8s} " + " ".join(f"{_pct(c):>9s}" for c in cols) + f" {_pct(ok):>7s} {_pct(occ):>6s}")
    counts = ", ".join(f"{lv.name} {sum(rep.ok for rep in reports[lv])}" for lv in LEVELS)
    print(f"passing every check, of {len(reports[LEVELS[0]])}: {counts}")
    worst = defaultdict(int)
    for rep in reports[quality.QualityLevel.NORMAL]:
        if not rep.measurements["occlusion"].ok:
            worst[rep.measurements["occlusion"].detail] += 1
    if worst:
        top = sorted(worst.items(), key=lambda kv: -kv[1])[:6]
        print("\nNORMAL occlusion failures on clean photos by cause: " + ", ".join(f"{k} {v}" for k, v in top))


def degradation_tables(rows: list[dict], with_cosine: bool) -> None:
    by = defaultdict(list)
    for r in rows:
        by[r["variant"]].append(r)
    n = len(by["clean"])
    print(f"\n== degradations: {n} photos each; % of photos with a face ==")
    print("   target = the intended check fails; any = the report fails; 4004 = answered 'occluded'\n")
    head = f"{'degradation':13s} {'target':9s} {'noface':>6s}"
    for lv in LEVELS:
        head += f" | {lv.name[:6]:>6s} tgt  any 4004"
    if with_cosine:
        head += " | cos"
    print(head)
    for name in ["clean", *DEGRADATIONS]:
        target = DEGRADATIONS[name][1] if name in DEGRADATIONS else None
        rs = by[name]
        got = [r for r in rs if r["measures"] is not None]
        line = f"{name:13s} {target or '-':9s} {len(rs) - len(got):6d}"
        for lv in LEVELS:
            reps = [quality.judge(_measures_obj(r["measures"]), lv) for r in got]
            tgt = np.mean([target in rep.failed_checks for rep in reps]) if target else math.nan
            anyf = np.mean([not rep.ok for rep in reps])
            occ = np.mean([rep.occluded for rep in reps])
            tgt_s = f"{100 * tgt:4.0f}" if target else "   -"
            line += f" | {'':6s}{tgt_s} {100 * anyf:4.0f} {100 * occ:4.0f}"
        if with_cosine:
            cos = [r["cosine"] for r in got if "cosine" in r]
            line += f" | {np.median(cos):.2f}" if cos else " |    -"
        print(line)
    mirrored = {r["index"]: r for r in by["mirror"] if r["measures"] is not None}
    pairs = [(r["measures"], mirrored[r["index"]]["measures"]) for r in by["clean"] if r["index"] in mirrored]
    pairs = [(a, b) for a, b in pairs if a is not None]
    if pairs:
        yaw = np.array([(a["yaw"], b["yaw"]) for a, b in pairs])
        roll = np.array([(a["roll"], b["roll"]) for a, b in pairs])
        pitch = np.array([(a["pitch"], b["pitch"]) for a, b in pairs])
        print(
            f"\nmirror consistency over {len(pairs)} photos (ideal 0): median |yaw + yaw_mirrored| "
            f"{np.median(np.abs(yaw.sum(1))):.2f}°, |roll + roll_mirrored| {np.median(np.abs(roll.sum(1))):.2f}°, "
            f"|pitch − pitch_mirrored| {np.median(np.abs(pitch[:, 0] - pitch[:, 1])):.2f}°; "
            f"corr(yaw, −yaw_mirrored) {np.corrcoef(yaw[:, 0], -yaw[:, 1])[0, 1]:.3f}"
        )


def fit_stats(rows: list[dict]) -> None:
    feats = [r["features"] for r in rows if r.get("features") is not None]
    print(f"\n== OCCLUSION_STATS fitted on {len(feats)} clean photos ==\n")
    print("OCCLUSION_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {")
    for key in quality.OCCLUSION_SCORED:
        x = np.array([f[key] for f in feats], np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        mean, std = x.mean(axis=0), x.std(axis=0)
        m = ", ".join(f"{v:.4f}" for v in mean)
        s = ", ".join(f"{v:.4f}" for v in std)
        print(f'    "{key}": (({m}), ({s})),')
    print("}")


def photo_list(data: Path) -> list[tuple[str, str]]:
    with (data / "labels.csv").open(newline="") as fh:
        return [(str(data / row["image"]), row["identity"]) for row in csv.DictReader(fh)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split", choices=("heldout", "fit", "all"), default="heldout")
    ap.add_argument("--limit", type=int, default=0, help="clean photos (0 = all of the split)")
    ap.add_argument("--degrade", type=int, default=600, help="photos to degrade (spread over the split)")
    ap.add_argument("--detector", default="cascade", choices=("both", "cascade", "short", "full"))
    ap.add_argument("--embedder", default=None, help="manifest key, e.g. mobilefacenet: adds a cosine column")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--fit", action="store_true", help="print OCCLUSION_STATS fitted on the fit split")
    ap.add_argument("--only", default="", help="comma-separated name prefixes: only these degradations")
    ap.add_argument("--save", type=Path, default=None, help="pickle the per-photo rows here (for analysis)")
    args = ap.parse_args(argv)
    if not (args.data / "labels.csv").is_file():
        print(f"no labels.csv in {args.data}", file=sys.stderr)
        return 2
    _select(args.only)
    photos = photo_list(args.data)
    if args.fit:
        args.split = "fit"
    if args.split != "all":
        want = 0 if args.split == "fit" else 1
        photos = [p for p in photos if zlib.crc32(p[1].encode()) % 2 == want]
    if args.limit:
        photos = photos[:: max(1, len(photos) // args.limit)][: args.limit]
    step = max(1, len(photos) // args.degrade) if args.degrade else 0
    degrade = set(range(0, len(photos), step)[: args.degrade]) if step else set()
    jobs = [(i, path, args.fit, i in degrade) for i, (path, _) in enumerate(photos)]
    print(
        f"{len(photos)} photos ({args.split} split) from {args.data}; {len(degrade)} degraded "
        f"{len(DEGRADATIONS)} ways; detector {args.detector}; {args.workers} workers"
    )
    t0 = time.time()
    rows: list[dict] = []
    with ProcessPoolExecutor(
        args.workers, initializer=_init, initargs=(args.detector, args.embedder, args.only)
    ) as pool:
        for out in pool.map(_work, jobs, chunksize=8):
            rows.extend(out)
    print(f"pipeline ran in {time.time() - t0:.0f} s")
    if args.save:
        import pickle

        args.save.write_bytes(pickle.dumps(rows))
    if args.fit:
        fit_stats(rows)
    clean_tables([r for r in rows if r["variant"] == "clean"])
    if degrade:
        degradation_tables(
            [r for r in rows if r["variant"] == "clean" and r["index"] in degrade]
            + [r for r in rows if r["variant"] != "clean"],
            args.embedder is not None,
        )
    ms = np.array([r["ms"] for r in rows if "ms" in r])
    print(
        f"\nquality.measure inside the workers: {len(ms)} faces, median {np.median(ms):.2f} ms, "
        f"p99 {np.percentile(ms, 99):.2f} ms ({args.workers} processes side by side)"
    )
    timing([p for p, _ in photos[:: max(1, len(photos) // 200)][:200]], args.detector)
    return 0


def timing(paths: Sequence[str], detector: str, repeats: int = 5) -> None:
    """ms per face of `quality.measure` alone, one process, one OpenCV thread, best of `repeats`."""
    _init(detector, None)
    faces = []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        found = _pipeline(rgb)
        if found is not None:
            faces.append((rgb, found[0], found[1], found[2]))
    per_face = []
    for rgb, face, mesh, crop in faces:
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            quality.measure(rgb, face, mesh.landmarks, crop, presence=mesh.presence_logit)
            best = min(best, time.perf_counter() - t0)
        per_face.append(best * 1e3)
    t = np.array(per_face)
    t0 = time.perf_counter()
    for rgb, face, mesh, _ in faces:
        quality.measure(rgb, face, mesh.landmarks, None)
    with_align = (time.perf_counter() - t0) / len(faces) * 1e3
    print(
        f"quality.measure alone: {len(t)} faces, median {np.median(t):.2f} ms, p90 {np.percentile(t, 90):.2f} ms "
        f"(best of {repeats}, one process); without a crop (aligned inside) {with_align:.2f} ms mean"
    )


if __name__ == "__main__":
    raise SystemExit(main())
