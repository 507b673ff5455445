#!/usr/bin/env python3
"""Per-face cost of the passive liveness stage, against the embedders' in the same run.

    python scripts/bench/bench_liveness.py [--rounds 21] [--backend tflite-runtime]

One thread. On one real frame (scikit-image's astronaut, 512x512, else a noise frame of
the same size) and its BlazeFace box, times, interleaved round after round so a busy
neighbour slows all alike:

  liveness crop     edge.vision.liveness.crop (x2.7 square, BGR, 128x128)
  liveness model    Liveness.infer on that crop (the TFLite model + softmax)
  liveness stage    Liveness.get(frame, detection): crop + model, what a caller pays
  <embedder>        Embedder.infer on one aligned 112x112 crop (the baseline: the default
                    embedders, which run on every face anyway)

Prints the median ms per face of each, and the stage as a multiple of each embedder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge.runtime import model_info, open_model  # noqa: E402
from edge.vision.align import align, points_from_detection  # noqa: E402
from edge.vision.detector import FaceDetector  # noqa: E402
from edge.vision.embedder import Embedder  # noqa: E402
from edge.vision.liveness import MODEL_KEY, Liveness, crop  # noqa: E402

BASELINES = ("mobilefacenet", "fr_feature")


def frame() -> tuple[np.ndarray, str]:
    try:
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[..., :3]), "skimage astronaut 512x512"
    except ImportError:
        return np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8), "noise 512x512"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--backend", choices=["ai-edge-litert", "tflite-runtime"], default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    rgb, what = frame()
    faces = FaceDetector.open("both").detect(rgb)
    face = max(faces, key=lambda d: d.area) if faces else None
    box = face if face is not None else (200.0, 100.0, 100.0, 100.0)
    info = model_info(MODEL_KEY)
    liveness = Liveness(
        open_model(MODEL_KEY, threads=1, backend=args.backend),
        scale=info["input"]["crop_scale"],
        live_class=info["live_class"],
    )
    live_crop = liveness.crop(rgb, box)
    aligned = align(rgb, points_from_detection(face)) if face is not None else rgb[:112, :112]
    embedders = {}
    for key in BASELINES:
        spec = model_info(key)["input"]
        embedders[key] = Embedder(open_model(key, threads=1, backend=args.backend), mean=spec["mean"], std=spec["std"])

    tasks = {
        "liveness crop": lambda: crop(rgb, box),
        "liveness model": lambda: liveness.infer(live_crop),
        "liveness stage": lambda: liveness.get(rgb, box),
        **{key: (lambda e=e: e.infer(aligned)) for key, e in embedders.items()},
    }
    for task in tasks.values():  # warm up
        for _ in range(5):
            task()
    samples: dict[str, list[float]] = {label: [] for label in tasks}
    for _ in range(args.rounds):
        for label, task in tasks.items():
            start = time.perf_counter()
            for _ in range(args.per_round):
                task()
            samples[label].append((time.perf_counter() - start) / args.per_round * 1000)
    ms = {label: statistics.median(v) for label, v in samples.items()}
    backend = liveness.model.backend
    if args.json:
        print(json.dumps({"backend": backend, "frame": what, "ms": ms}))
        return 0
    print(f"{backend}, one thread, {what}; median of {args.rounds} interleaved rounds of {args.per_round}")
    stage = ms["liveness stage"]
    for label, v in ms.items():
        extra = f"   (stage = {stage / v:.2f}x this)" if label in embedders else ""
        print(f"  {label:<16} {v:7.3f} ms per face{extra}")
    if face is not None:
        print(f"  p(live) of this face: {liveness.get(rgb, face):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
