#!/usr/bin/env python3
"""The image intake's cost per photo: `edge.images.load_image` on encoded bytes in memory.

    python scripts/bench/bench_decode.py [--checkout DIR] [--photos 1000] [--rounds 3]

Photos: the first `--photos` lfw-dev JPEGs (250×250, ~12 KB; skipped without ../shared),
skimage's astronaut as a 512×512 PNG, and the astronaut upscaled to a 12 MP (4000×3000)
JPEG. Printed per kind: ms per photo, best of `--rounds` passes. `--checkout` imports `edge`
from another checkout, so one copy of this script measures the code before and after a change:

    python scripts/bench/ab.py --rounds 5 \\
        --before ".venv/bin/python scripts/bench/bench_decode.py --checkout ../before" \\
        --after ".venv/bin/python scripts/bench/bench_decode.py" \\
        --metric 'lfw ms=lfw jpeg\\s+([\\d.]+) ms' --metric 'png ms=png 512\\S*\\s+([\\d.]+) ms' \\
        --metric '12MP ms=jpeg 12 MP\\s+([\\d.]+) ms'
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
LFW = ROOT.parent / "shared" / "data" / "lfw-dev" / "images"


def best_ms_per_photo(load, photos: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for data in photos:
            load(data)
        best = min(best, (time.perf_counter() - start) / len(photos))
    return best * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose edge is measured")
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    from edge.images import load_image

    print(f"edge from {sys.modules['edge'].__file__}")
    from skimage import data

    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    big = cv2.imencode(".jpg", cv2.resize(bgr, (4000, 3000)), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert load_image(png).rgb.shape == (512, 512, 3) and load_image(big).rgb.shape == (3000, 4000, 3)
    if LFW.is_dir():
        lfw = [p.read_bytes() for p in sorted(LFW.rglob("*.jpg"))[: args.photos]]
        print(f"lfw jpeg      {best_ms_per_photo(load_image, lfw, args.rounds):.3f} ms per photo ({len(lfw)} photos)")
    print(f"png 512²      {best_ms_per_photo(load_image, [png] * 50, args.rounds):.3f} ms per photo")
    print(f"jpeg 12 MP    {best_ms_per_photo(load_image, [big] * 3, args.rounds):.3f} ms per photo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
