#!/usr/bin/env python3
"""Measure the face detector on a folder of photos (default: ../shared/data/lfw-dev).

Two jobs:

1. Detection rate and speed per `FaceDetector` mode (default: all four)::

       python scripts/eval/eval_detector.py [--data DIR] [--limit N] [--modes both,short,...]

   For each mode: photos with ≥ 1 face, faces in total, and ms per photo (detector
   only, one TFLite thread, JPEG decoding excluded), with the ratio to the first mode
   measured in the same run. Modes run interleaved photo by photo so that warm-up and
   machine load hit them alike.

2. A re-built detector against its reference (e.g. int8 against float16)::

       python scripts/eval/eval_detector.py --reference A.tflite --candidate B.tflite --kind short

   Per photo the reference's top face is matched with the candidate face that overlaps
   it most (`match_iou` of scripts/build/modelkit/compare.py); reports mean /
   5th-percentile IoU over the photos where either found a face (a photo where only one
   did counts 0) and over those where both did, how often they disagree on whether there is a face, the
   mean keypoint displacement (pixels and fraction of box width), and ms per photo of
   each model.

The photos are read in place; nothing is copied. `--data` takes a folder holding
``labels.csv`` (column ``image``, paths relative to the folder) or, failing that, any
folder of .jpg/.png files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts" / "build"))  # modelkit.compare

from modelkit.compare import match_iou, match_keypoints  # noqa: E402

from edge.runtime import Model, open_model  # noqa: E402
from edge.vision.detector import MODEL_KEYS, MODES, BlazeFace, FaceDetector  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "lfw-dev"


def default_models_dir() -> Path:
    return Path(os.environ.get("EDGE_MODELS_DIR", REPO / "models"))


def photo_paths(data: Path, limit: int | None = None) -> list[Path]:
    """Photos listed in `data`/labels.csv (column ``image``), else every jpg/png below `data`."""
    labels = data / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as fh:
            paths = [data / row["image"] for row in csv.DictReader(fh)]
    else:
        paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise SystemExit(f"no photos found in {data}")
    return paths[:limit] if limit else paths


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def images(paths: Iterable[Path]) -> Iterator[tuple[Path, np.ndarray]]:
    for path in paths:
        yield path, read_rgb(path)


# --- 1. detection rate and speed per mode ------------------------------------------------


def evaluate_modes(
    paths: Sequence[Path],
    modes: Sequence[str] = MODES,
    *,
    models: Path | None = None,
    threads: int = 1,
    min_face: float = 0.0,
    warmup: int = 5,
) -> dict[str, dict]:
    """Photos with ≥ 1 face, faces found and ms/photo for each mode over `paths`."""
    directory = models or default_models_dir()
    short = BlazeFace(open_model(MODEL_KEYS["short"], threads=threads, directory=directory), "short")
    full = BlazeFace(open_model(MODEL_KEYS["full"], threads=threads, directory=directory), "full")
    detectors = {mode: FaceDetector(full, short, mode=mode, min_face=min_face) for mode in modes}
    stats = {mode: {"photos": 0, "with_face": 0, "faces": 0, "ms": [], "misses": []} for mode in modes}
    for path, rgb in images(paths):
        if warmup > 0:
            for detector in detectors.values():
                detector.detect(rgb)
            warmup -= 1
        for mode, detector in detectors.items():
            start = time.perf_counter()
            found = detector.detect(rgb)
            elapsed = time.perf_counter() - start
            s = stats[mode]
            s["photos"] += 1
            s["faces"] += len(found)
            s["ms"].append(elapsed * 1000)
            if found:
                s["with_face"] += 1
            else:
                s["misses"].append(str(path))
    for s in stats.values():
        ms = np.asarray(s.pop("ms"))
        s["ms_mean"] = float(ms.mean())
        s["ms_median"] = float(np.median(ms))
        s["ms_p95"] = float(np.percentile(ms, 95))
        s["rate"] = s["with_face"] / s["photos"]
    return stats


def print_modes(stats: dict[str, dict], list_misses: bool) -> None:
    base = next(iter(stats.values()))["ms_mean"]
    header = ("mode", "photos", "≥1 face", "rate", "faces", "ms mean", "median", "p95", "× first")
    print(f"{header[0]:8} " + " ".join(f"{h:>8}" for h in header[1:]))
    for mode, s in stats.items():
        print(
            f"{mode:8} {s['photos']:8d} {s['with_face']:8d} {s['rate']:8.2%} {s['faces']:8d} "
            f"{s['ms_mean']:8.2f} {s['ms_median']:8.2f} {s['ms_p95']:8.2f} {s['ms_mean'] / base:8.2f}"
        )
    if list_misses:
        for mode, s in stats.items():
            for miss in s["misses"]:
                print(f"miss {mode}: {miss}")


# --- 2. candidate model against reference -------------------------------------------------


def compare_models(
    reference: BlazeFace,
    candidate: BlazeFace,
    paths: Sequence[Path],
) -> dict:
    """Agreement of `candidate` with `reference` over `paths` (see module docstring)."""
    ious, ious_both, shifts_px, shifts_rel = [], [], [], []
    only_ref = only_cand = neither = 0
    ms_ref, ms_cand = [], []
    for _, rgb in images(paths):
        start = time.perf_counter()
        ref = reference.detect(rgb)
        middle = time.perf_counter()
        cand = candidate.detect(rgb)
        end = time.perf_counter()
        ms_ref.append((middle - start) * 1000)
        ms_cand.append((end - middle) * 1000)
        if not ref and not cand:
            neither += 1
            continue
        if not cand:
            only_ref += 1
        elif not ref:
            only_cand += 1
        ious.append(match_iou(ref, cand))
        if ref and cand:
            ious_both.append(ious[-1])
            shifts_px.append(match_keypoints(ref, cand, relative=False))
            shifts_rel.append(match_keypoints(ref, cand, relative=True))
    iou = np.asarray(ious) if ious else np.asarray([math.nan])
    both = np.asarray(ious_both) if ious_both else np.asarray([math.nan])
    return {
        "photos": len(paths),
        "compared": len(ious),
        "neither_found": neither,
        "only_reference_found": only_ref,
        "only_candidate_found": only_cand,
        "iou_mean": float(iou.mean()),
        "iou_p5": float(np.percentile(iou, 5)),
        "iou_min": float(iou.min()),
        "iou_below_0.5": int((iou < 0.5).sum()),
        "iou_mean_both_found": float(both.mean()),
        "iou_p5_both_found": float(np.percentile(both, 5)),
        "keypoint_px_mean": float(np.mean(shifts_px)) if shifts_px else math.nan,
        "keypoint_rel_mean": float(np.mean(shifts_rel)) if shifts_rel else math.nan,
        "ms_reference": float(np.mean(ms_ref[5:] or ms_ref)),
        "ms_candidate": float(np.mean(ms_cand[5:] or ms_cand)),
    }


def print_comparison(result: dict) -> None:
    for key, value in result.items():
        print(f"{key:22} {value:.4f}" if isinstance(value, float) else f"{key:22} {value}")
    print(f"{'speed ratio cand/ref':22} {result['ms_candidate'] / result['ms_reference']:.2f}")


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="photo folder (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="first N photos only (default: all)")
    parser.add_argument("--models", type=Path, default=None, help="default: $EDGE_MODELS_DIR or repo/models")
    parser.add_argument("--threads", type=int, default=1, help="TFLite threads (default: 1)")
    parser.add_argument("--modes", default=",".join(MODES), help="FaceDetector modes (default: %(default)s)")
    parser.add_argument("--min-face", type=float, default=0.0, help="FaceDetector min_face in pixels")
    parser.add_argument("--list-misses", action="store_true", help="print the photos where a mode found no face")
    parser.add_argument("--reference", type=Path, help="reference .tflite (comparison mode)")
    parser.add_argument("--candidate", type=Path, help="candidate .tflite (comparison mode)")
    parser.add_argument("--kind", choices=("short", "full"), help="BlazeFace variant of --reference/--candidate")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    cv2.setNumThreads(args.threads)  # "one thread" means OpenCV too
    paths = photo_paths(args.data, args.limit)
    if args.reference or args.candidate:
        if not (args.reference and args.candidate and args.kind):
            parser.error("--reference, --candidate and --kind go together")
        reference = BlazeFace(Model(args.reference, threads=args.threads), args.kind)
        candidate = BlazeFace(Model(args.candidate, threads=args.threads), args.kind)
        result = compare_models(reference, candidate, paths)
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print_comparison(result)
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {MODES}")
    stats = evaluate_modes(paths, modes, models=args.models, threads=args.threads, min_face=args.min_face)
    if args.json:
        print(json.dumps(stats, indent=1))
    else:
        print(f"{len(paths)} photos from {args.data}; {args.threads} thread(s); ms = detector only")
        print_modes(stats, args.list_misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
