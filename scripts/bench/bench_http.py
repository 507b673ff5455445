#!/usr/bin/env python3
"""The HTTP API under load on loopback, next to the engine's own throughput in the same run.

    python scripts/bench/bench_http.py [--seconds 60] [--clients 4] [--overload-clients 16]

1. In-process: `Engine.verify` on the two JPEGs' bytes, one call after another, for
   `--baseline-seconds` (the most the device can do: one engine, one call at a time).
2. Load: `edge serve` in a subprocess; `--clients` closed-loop clients POST the same two photos
   to /identity/image_verification/stateless for `--seconds`. Requests/s, p50/p99 latency,
   statuses; every request must come back 200 with code 1000 (no lost request, no 500).
   HTTP throughput as a share of in-process (the issue asks ≥ 80 %).
3. Overload: a server with `--overload-queue` places, `--overload-clients` clients without
   back-off for `--overload-seconds`: 503s with Retry-After, the queue never above its capacity
   (polled on /healthz), the server's peak memory (VmHWM) and no other status.

Photos: two 640×480 JPEGs of one person (two lfw-dev photos, scaled and padded), or
scikit-image's astronaut and its mirror image when ../shared is absent.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

from edge.app import engine_from_config  # noqa: E402
from edge.config import load_config  # noqa: E402

LFW = ROOT.parent / "shared" / "data" / "lfw-dev"
PATH = "/identity/image_verification/stateless"


def to_640x480(rgb: np.ndarray) -> bytes:
    """Scaled to 480 rows, padded (edge pixels) or cropped to 640 columns, JPEG quality 90."""
    h, w = rgb.shape[:2]
    scaled = cv2.resize(rgb, (round(w * 480 / h), 480), interpolation=cv2.INTER_CUBIC)
    extra = 640 - scaled.shape[1]
    if extra > 0:
        scaled = cv2.copyMakeBorder(scaled, 0, 0, extra // 2, extra - extra // 2, cv2.BORDER_REPLICATE)
    else:
        scaled = scaled[:, -extra // 2 : -extra // 2 + 640]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(scaled, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok and scaled.shape[:2] == (480, 640)
    return jpeg.tobytes()


def photo_pair() -> tuple[bytes, bytes, str]:
    pairs = LFW / "pairs.csv"
    if pairs.exists():
        import csv

        with pairs.open() as f:
            for row in csv.DictReader(f):
                a, b = LFW / row["img_a"], LFW / row["img_b"]
                if row["same"] == "1" and a.exists() and b.exists():
                    load = lambda p: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)  # noqa: E731
                    return to_640x480(load(a)), to_640x480(load(b)), f"lfw-dev {a.parent.name}"
    from skimage import data

    astronaut = data.astronaut()
    return to_640x480(astronaut), to_640x480(astronaut[:, ::-1].copy()), "scikit-image astronaut and mirror"


def multipart(a: bytes, b: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in (("first_image_file", a), ("second_image_file", b)):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, max_queue: int) -> Path:
    config = folder / "edge.toml"
    config.write_text(f'[vault]\npath = ""\n[http]\nmax_queue = {max_queue}\nretry_after_s = 1\n')
    return config


def in_process(a: bytes, b: bytes, seconds: float) -> list[float]:
    """Seconds per `Engine.verify(a, b)` (bytes in, as the server gets them), one call after
    another for `seconds`, on the engine the server's configuration builds."""
    with tempfile.TemporaryDirectory() as folder:
        engine = engine_from_config(load_config(write_config(Path(folder), 8))).bytes_only()
    assert engine.verify(a, b)["code"] == 1000
    times = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        result = engine.verify(a, b)
        times.append(time.perf_counter() - start)
        assert result["code"] == 1000, result
    return times


class Server:
    """`edge serve` in a subprocess on a free loopback port."""

    def __init__(self, max_queue: int) -> None:
        self.dir = tempfile.TemporaryDirectory()
        config = write_config(Path(self.dir.name), max_queue)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "serve", "--config", str(config), "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("edge serve did not start")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.dir.cleanup()
        return err.decode(errors="replace")


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def hammer(port: int, body: bytes, ctype: str, seconds: float, clients: int) -> list[tuple[int, float, bytes, dict]]:
    """`clients` threads, each one keep-alive connection, POSTing until `seconds` pass; every
    answer as (status, seconds, body, headers)."""
    results: list[tuple[int, float, bytes, dict]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                conn.request("POST", PATH, body=body, headers={"Content-Type": ctype})
                response = conn.getresponse()
                data = response.read()
                mine.append((response.status, time.perf_counter() - start, data, dict(response.getheaders())))
            except (OSError, http.client.HTTPException) as exc:
                mine.append((-1, time.perf_counter() - start, repr(exc).encode(), {}))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--overload-clients", type=int, default=16)
    ap.add_argument("--overload-queue", type=int, default=2)
    ap.add_argument("--overload-seconds", type=float, default=20.0)
    args = ap.parse_args()

    a, b, source = photo_pair()
    body, ctype = multipart(a, b)
    print(f"photos: two 640x480 JPEGs ({source}), {len(a)} + {len(b)} bytes; request body {len(body)} bytes")

    # 1. in-process, before and after the HTTP run (their mean is the baseline: drift cancels)
    before = in_process(a, b, args.baseline_seconds / 2)
    # 2. load
    server = Server(max_queue=8)
    try:
        hammer(server.port, body, ctype, 3.0, 1)  # warm the server's models
        start = time.monotonic()
        results = hammer(server.port, body, ctype, args.seconds, args.clients)
        wall = time.monotonic() - start
        rss = server.peak_rss_mb()
    finally:
        log = server.stop()
    after = in_process(a, b, args.baseline_seconds / 2)
    for name, times in (("before", before), ("after", after)):
        print(
            f"in-process Engine.verify ({name} the HTTP run): {len(times)} calls, "
            f"{len(times) / sum(times):.2f} calls/s, "
            f"p50 {1000 * pct(times, 50):.1f} ms, p99 {1000 * pct(times, 99):.1f} ms"
        )
    in_process_rate = (len(before) + len(after)) / (sum(before) + sum(after))
    statuses = _count(r[0] for r in results)
    ok = [r for r in results if r[0] == 200 and b'"code":1000' in r[2].replace(b" ", b"")]
    latencies = [r[1] for r in ok]
    rate = len(ok) / wall
    print(
        f"HTTP load: {args.clients} clients for {wall:.1f} s: {len(results)} requests, statuses {statuses}, "
        f"{len(ok)} answered code 1000"
    )
    print(
        f"HTTP load: {rate:.2f} requests/s, p50 {1000 * pct(latencies, 50):.1f} ms, "
        f"p99 {1000 * pct(latencies, 99):.1f} ms, server peak RSS {rss:.0f} MiB"
    )
    share = rate / in_process_rate
    lost = len(results) - len(ok)
    verdict = "PASS" if share >= 0.8 else "FAIL"
    print(f"HTTP / in-process throughput ({in_process_rate:.2f} calls/s): {share:.2f} ({verdict} ≥ 0.80)")
    print(f"lost or failed requests: {lost} ({'PASS' if lost == 0 else 'FAIL'}); 500s: {statuses.get(500, 0)}")
    if "Traceback" in log:
        print("server log has a traceback:\n" + log)

    # 3. overload
    server = Server(max_queue=args.overload_queue)
    capacity = 1 + args.overload_queue
    peak_taken, polling = 0, True

    def poll() -> None:
        nonlocal peak_taken
        import json

        while polling:
            try:
                status, data = get(server.port, "/healthz")
                if status == 200:
                    peak_taken = max(peak_taken, json.loads(data)["queue"]["taken"])
            except OSError:
                pass
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    try:
        hammer(server.port, body, ctype, 3.0, 1)
        poller.start()
        start = time.monotonic()
        results = hammer(server.port, body, ctype, args.overload_seconds, args.overload_clients)
        wall = time.monotonic() - start
        polling = False
        poller.join()
        rss = server.peak_rss_mb()
    finally:
        polling = False
        log = server.stop()
    statuses = _count(r[0] for r in results)
    busy = [r for r in results if r[0] == 503]
    with_retry = sum(1 for r in busy if "Retry-After" in r[3] or "retry-after" in r[3])
    served = [r[1] for r in results if r[0] == 200]
    refused = [r[1] for r in busy]
    print(
        f"overload: {args.overload_clients} clients, queue {args.overload_queue} (capacity {capacity}), {wall:.1f} s: "
        f"{len(results)} requests, statuses {statuses}"
    )
    print(
        f"overload: 503s {len(busy)} ({with_retry} with Retry-After), "
        f"answered in p50 {1000 * pct(refused, 50):.1f} ms; "
        f"200s {len(served)} ({len(served) / wall:.2f}/s) p99 {1000 * pct(served, 99):.1f} ms; "
        f"queue peak {peak_taken} of {capacity}; server peak RSS {rss:.0f} MiB"
    )
    other = {s: n for s, n in statuses.items() if s not in (200, 503)}
    bounded = peak_taken <= capacity and not other and len(busy) == with_retry and busy
    print(f"overload: {'PASS' if bounded else 'FAIL'} (only 200 and 503+Retry-After; the queue within its capacity)")
    if "Traceback" in log:
        print("server log has a traceback:\n" + log)
    return 0 if share >= 0.8 and lost == 0 and bounded else 1


def _count(statuses) -> dict[int, int]:
    counts: dict[int, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return dict(sorted(counts.items()))


if __name__ == "__main__":
    raise SystemExit(main())
