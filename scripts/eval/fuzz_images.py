#!/usr/bin/env python3
"""Fuzz the image intake through the public API: mutated and hostile files into `Engine.verify`
and `Engine.compare_faces`.

    python scripts/eval/fuzz_images.py [--count 5200] [--seed 17] [--lfw]

Inputs (each one goes through `verify(input, photo)` and `compare_faces(photo, input)` of a
bytes-only engine, as a network caller's would; one in ten as base64 text):

* seeds: real face photos (skimage's astronaut and cameraman crops; lfw-dev photos when
  ../shared is there) in every accepted form: baseline, progressive, restart-marker and
  EXIF-rotated JPEG, PNG (8- and 16-bit), BMP, lossy and lossless WebP;
* mutations of a seed: truncation anywhere, truncation closed with an end-of-image marker,
  bit flips (in the headers and anywhere), byte runs overwritten with extremes, deleted,
  inserted or duplicated, header edits (the declared width/height, JPEG segment and PNG chunk
  lengths, scan headers), PNG mutations with their CRCs fixed (so they reach the zlib check
  and the decoder), two files spliced, junk appended;
* bombs: progressive JPEGs of thousands of empty scans (tests/image_bombs.py), also appended
  to a real photo's scans; PNGs whose zlib stream inflates to gigabytes, also after a real
  photo's rows; headers declaring 30000×30000 pixels.

Printed: how many inputs and calls, the result codes, every exception that is not the
project's own (`EdgeError` is answered as a code inside the result; anything escaping is a
bug), the slowest input (kind, and CPU and wall seconds for both calls) and the slowest bomb,
and the peak RSS. With ``--lfw``
also: every lfw-dev photo still decodes, and every one cut at 60 % and closed with an end
marker is refused (2006). Exits 1 on an escaped exception or an input taking 1 s of CPU time or more.
"""

from __future__ import annotations

import argparse
import base64
import collections
import random
import re
import resource
import struct
import sys
import time
import traceback
import zlib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the bomb makers the tests use

from image_bombs import (  # noqa: E402
    cut_with_eoi,
    fix_png_crcs,
    png_chunk,
    png_with_zlib_tail,
    scan_bomb,
    zlib_bomb,
)

from edge.engine import Engine  # noqa: E402
from edge.errors import EdgeError  # noqa: E402
from edge.images import load_image  # noqa: E402

LFW = ROOT.parent / "shared" / "data" / "lfw-dev" / "images"


def encode(bgr: np.ndarray, ext: str, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, bgr, list(params))
    assert ok, ext
    return buf.tobytes()


def with_exif(jpeg: bytes, orientation: int) -> bytes:
    tiff = b"II" + struct.pack("<HIH", 42, 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def seed_photos() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    photos = [("astronaut", astronaut[0:300, 100:350]), ("cameraman", camera[30:280, 150:400])]
    if LFW.is_dir():
        for path in sorted(LFW.rglob("*.jpg"))[::1700][:4]:
            photos.append((path.stem, cv2.imread(str(path))))
    return photos


def seeds(photos: list[tuple[str, np.ndarray]]) -> list[tuple[str, bytes]]:
    out = []
    for name, bgr in photos:
        out += [
            (f"{name}.jpg", encode(bgr, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90))),
            (f"{name}-progressive.jpg", encode(bgr, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))),
            (f"{name}-restart.jpg", encode(bgr, ".jpg", (cv2.IMWRITE_JPEG_RST_INTERVAL, 2))),
            (f"{name}-exif6.jpg", with_exif(encode(bgr, ".jpg"), 6)),
            (f"{name}.png", encode(bgr, ".png")),
            (f"{name}-16bit.png", encode(bgr.astype(np.uint16) * 257, ".png")),
            (f"{name}.bmp", encode(bgr, ".bmp")),
            (f"{name}.webp", encode(bgr, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 80))),
            (f"{name}-lossless.webp", encode(bgr, ".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))),
        ]
    return out


# --------------------------------------------------------------------------- mutations


def header_edit(rng: random.Random, data: bytes) -> bytes:
    """Rewrite a size or length field the parsers and the decoder trust."""
    buf = bytearray(data)
    extreme = rng.choice([0, 1, 63, 64, 4096, 4097, 30000, 65535, rng.randrange(65536)])
    if data[:2] == b"\xff\xd8":
        markers = [m.start() for m in re.finditer(rb"\xff[\xc0-\xfe]", data)]
        if markers:
            pos = rng.choice(markers)
            field = rng.choice([2, 5, 7, 9, 4])  # length, height, width, component count / scan fields
            if pos + field + 2 <= len(buf):
                struct.pack_into(">H", buf, pos + field, extreme)
        return bytes(buf)
    if data[:4] == b"\x89PNG":
        field = rng.choice([16, 20, 24, 25, 28, 33])  # width, height, depth, colour, interlace, IDAT length
        if field in (16, 20, 33):
            struct.pack_into(">I", buf, field, rng.choice([extreme, 2**31 - 1, 0]))
        else:
            buf[field] = rng.randrange(256)
        return fix_png_crcs(bytes(buf)) if rng.random() < 0.7 else bytes(buf)
    if data[:4] == b"RIFF":
        field = rng.choice([4, 16, 26, 28, 21])
        struct.pack_into("<H", buf, field, extreme)
        return bytes(buf)
    if data[:2] == b"BM":
        field = rng.choice([2, 10, 18, 22, 28, 30])
        struct.pack_into("<i", buf, field, rng.choice([extreme, -extreme, 2**31 - 1]))
        return bytes(buf)
    return bytes(buf)


def mutate(rng: random.Random, name: str, data: bytes, other: bytes) -> tuple[str, bytes]:
    buf = bytearray(data)
    kind = rng.choice(
        [
            "truncate",
            "truncate+eoi",
            "flip-header",
            "flip-anywhere",
            "extremes",
            "delete",
            "insert",
            "duplicate",
            "header-edit",
            "png-crc-fixed",
            "splice",
            "append",
        ]
    )
    if kind == "truncate":
        out = bytes(buf[: rng.randrange(1, len(buf))])
    elif kind == "truncate+eoi":
        out = cut_with_eoi(data, rng.uniform(0.05, 0.99)) if data[:2] == b"\xff\xd8" else bytes(buf[: len(buf) // 2])
    elif kind == "flip-header":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(min(1024, len(buf)))
            buf[i] ^= 1 << rng.randrange(8)
        out = bytes(buf)
    elif kind == "flip-anywhere":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        out = bytes(buf)
    elif kind == "extremes":
        i = rng.randrange(max(1, min(512, len(buf) - 4)))
        buf[i : i + 4] = rng.choice(
            [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\xff\xd9\xff\xd8"]
        )
        out = bytes(buf)
    elif kind == "delete":
        i = rng.randrange(len(buf))
        del buf[i : i + rng.randint(1, 256)]
        out = bytes(buf)
    elif kind == "insert":
        i = rng.randrange(len(buf))
        buf[i:i] = rng.randbytes(rng.randint(1, 256))
        out = bytes(buf)
    elif kind == "duplicate":
        i = rng.randrange(len(buf))
        piece = buf[i : i + rng.randint(1, 2048)]
        at = rng.randrange(len(buf))
        buf[at:at] = piece
        out = bytes(buf)
    elif kind == "header-edit":
        out = header_edit(rng, data)
    elif kind == "png-crc-fixed":
        if data[:4] != b"\x89PNG":
            return mutate(rng, name, data, other)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(33, len(buf))
            buf[i] = rng.randrange(256)
        out = fix_png_crcs(bytes(buf))
    elif kind == "splice":
        out = data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
    else:
        out = data + rng.randbytes(rng.randint(1, 4096))
    return f"{kind}({name})", out


def bombs(rng: random.Random, photos: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Decoding bombs: scan bombs, zlib bombs (also inside real photos), oversized headers."""
    out: list[tuple[str, bytes]] = []
    for side, scans in ((4096, 4000), (4096, 40), (2048, 1000), (1024, 33), (64, 4000), (4096, 100)):
        out.append((f"scan-bomb {side}² × {scans} scans", scan_bomb(side, side, scans)))
    progressive = [data for name, data in photos if "progressive" in name]
    for data in progressive[:3]:
        # the real photo's smallest scan, repeated a thousand times before its end marker
        starts = [m.start() for m in re.finditer(rb"\xff\xda", data)] + [len(data) - 2]
        scans = [data[a:b] for a, b in zip(starts, starts[1:])]
        out.append(("scan-bomb in a real photo", data[:-2] + min(scans, key=len) * 1000 + b"\xff\xd9"))
    for inflated in (2**28, 2**30, 2**32):
        out.append((f"zlib-bomb 64² → {inflated >> 20} MiB", zlib_bomb(inflated)))
    pngs = [data for name, data in photos if name.endswith(".png") and "16bit" not in name]
    for data in pngs[:3]:
        out.append(("zlib-bomb after a real photo's rows", png_with_zlib_tail(data, 2**30)))
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    out.append(
        (
            "pixel-bomb png 30000²",
            b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 90001 * 4))
            + png_chunk(b"IEND", b""),
        )
    )
    jpeg = next(data for name, data in photos if name.endswith(".jpg"))
    sof = jpeg.index(b"\xff\xc0")
    big = bytearray(jpeg)
    struct.pack_into(">HH", big, sof + 5, 30000, 30000)
    out.append(("pixel-bomb jpeg 30000²", bytes(big)))
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    engine = Engine().bytes_only()
    photos = seed_photos()
    seed_files = seeds(photos)
    probe = cv2.cvtColor(photos[0][1], cv2.COLOR_BGR2RGB)  # the other side of every call
    hostile = bombs(rng, seed_files)

    def inputs():
        """The bombs, then mutations made one at a time (not held: the peak RSS is the engine's), then the seeds."""
        yield from hostile
        for _ in range(args.count - len(hostile)):
            name, data = rng.choice(seed_files)
            _, other = rng.choice(seed_files)
            kind, mutated = mutate(rng, name, data, other)
            if rng.random() < 0.15:  # some mutations of mutations
                kind, mutated = mutate(rng, kind, mutated, other)
            yield kind, mutated
        yield from seed_files  # the seeds themselves must still answer 1000

    total = max(args.count, len(hostile)) + len(seed_files)
    engine.verify(seed_files[0][1], probe)  # every model loaded and warm before the baseline is taken
    engine.compare_faces(probe, seed_files[0][1])
    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    codes: collections.Counter = collections.Counter()
    escaped: list[str] = []
    timed: list[tuple[float, float, str, int]] = []  # (CPU s, wall s, kind, bytes) per input
    start_all = time.perf_counter()
    calls = 0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "(the engine, loaded and warm)", 0)
    for i, (kind, data) in enumerate(inputs()):
        source: bytes | str = base64.b64encode(data).decode("ascii") if rng.random() < 0.1 else data
        start, start_cpu = time.perf_counter(), time.process_time()
        for call in (lambda s: engine.verify(s, probe), lambda s: engine.compare_faces(probe, s)):
            calls += 1
            try:
                result = call(source)
                codes[result["code"]] += 1
            except Exception as exc:  # noqa: BLE001 - the point of the run
                escaped.append(f"{kind}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        timed.append((time.process_time() - start_cpu, time.perf_counter() - start, kind, len(data)))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if rss > peak[0]:
            peak = (rss, kind, len(data))
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{total} inputs, {time.perf_counter() - start_all:.0f} s", file=sys.stderr)
    seed_codes = [engine.verify(data, probe)["code"] for _, data in seed_files]
    print(f"inputs: {total} ({total - len(seed_files)} mutated or hostile, {len(seed_files)} seeds)")
    print(f"calls: {calls} (verify and compare_faces), {time.perf_counter() - start_all:.0f} s")
    print("result codes: " + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items())))
    print(f"exceptions other than EdgeError: {len(escaped)}")
    for text in escaped[:10]:
        print("  " + text)
    by_cpu = sorted(timed, reverse=True)
    by_wall = sorted(timed, key=lambda t: t[1], reverse=True)
    bomb_kinds = ("bomb",)
    slowest_bomb = max((t for t in timed if any(b in t[2] for b in bomb_kinds)), key=lambda t: t[1])
    for label, (cpu, wall, kind, size) in (
        ("slowest input (CPU time)", by_cpu[0]),
        ("slowest input (wall time)", by_wall[0]),
        ("slowest bomb (wall time)", slowest_bomb),
    ):
        print(f"{label}: {kind} ({size:,} bytes): {cpu:.3f} s CPU, {wall:.3f} s wall, for both calls")
    print(
        "per input, both calls: median "
        f"{np.median([t[1] for t in timed]) * 1000:.1f} ms wall, 99th percentile "
        f"{np.percentile([t[1] for t in timed], 99) * 1000:.1f} ms"
    )
    print(f"seeds answered 1000: {seed_codes.count(1000)} of {len(seed_codes)}")
    print(
        f"peak RSS: {peak[0] / 1024:.0f} MiB (the engine loaded and warm: {baseline_mib:.0f} MiB), "
        f"first reached at {peak[1]} ({peak[2]:,} bytes)"
    )
    # CPU time decides: it is the work an input costs; the wall time also counts whatever else the
    # machine was doing (both are printed).
    failed = bool(escaped) or by_cpu[0][0] >= 1.0
    if args.lfw:
        failed |= run_lfw()
    return 1 if failed else 0


def run_lfw() -> bool:
    """Every lfw-dev photo decodes; every one cut at 60 % and closed with EOI is 2006."""
    if not LFW.is_dir():
        print(f"lfw: {LFW} not present; skipped")
        return False
    photos = sorted(LFW.rglob("*.jpg"))
    refused, accepted_cut = [], []
    start = time.perf_counter()
    for path in photos:
        data = path.read_bytes()
        try:
            load_image(data)
        except EdgeError as exc:
            refused.append(f"{path.name}: {exc.code} {exc.message}")
        try:
            load_image(cut_with_eoi(data, 0.6))
            accepted_cut.append(path.name)
        except EdgeError as exc:
            if exc.code != 2006:
                accepted_cut.append(f"{path.name}: {exc.code}")
    print(
        f"lfw-dev: {len(photos) - len(refused)} of {len(photos)} photos decode; "
        f"{len(photos) - len(accepted_cut)} of {len(photos)} cut at 60 % + EOI refused with 2006 "
        f"({time.perf_counter() - start:.0f} s)"
    )
    for line in (refused + accepted_cut)[:10]:
        print("  " + line)
    return bool(refused or accepted_cut)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5200, help="mutated and hostile inputs (default %(default)s)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--lfw", action="store_true", help="also decode every lfw-dev photo, whole and cut short")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
