#!/usr/bin/env python3
"""Soak the MQTT path: N verdicts at R per second through a real mosquitto restarted K times.

    .venv/bin/python scripts/bench/soak_mqtt.py                 # 10,000 at 100/s, 3 restarts (~110 s)
    .venv/bin/python scripts/bench/soak_mqtt.py --count 2000 --rate 200 --restarts 2 --down 2

The appliance side is the real `MqttSink` with its on-disk outbox (every verdict fsynced
before it is published, removed on PUBACK). The watcher is a paho client with a persistent
session (QoS 1), so the broker keeps its messages while it is away; the broker runs with
persistence, so a graceful restart keeps that session. Each restart is SIGTERM, `--down`
seconds with no broker, then start on the same port, while verdicts keep being produced.

Prints produced / delivered / lost / duplicates / order, the outbox's peak depth, publish
(fsync) latency and the time to drain; exits 1 when a verdict is lost or the order broken.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))  # this checkout's edge, installed or not
sys.path.insert(0, str(ROOT / "tests"))  # the test broker and recorder (real mosquitto, real paho)

from mqtt_broker import Broker, available  # noqa: E402
from mqtt_helpers import Recorder, make_verdict  # noqa: E402

from edge.config import MqttConfig  # noqa: E402
from edge.mqtt.client import MqttSettings  # noqa: E402
from edge.mqtt.outbox import Outbox  # noqa: E402
from edge.mqtt.sink import MqttSink  # noqa: E402
from edge.mqtt.topics import Topics  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=100.0, help="verdicts per second")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--down", type=float, default=3.0, help="seconds the broker stays down per restart")
    ap.add_argument("--drain-timeout", type=float, default=180.0)
    args = ap.parse_args()
    if not available():
        print("soak_mqtt: mosquitto is not installed (bash scripts/setup.sh)", file=sys.stderr)
        return 2
    device = "soak-1"
    topics = Topics.for_device(device)
    work = Path(tempfile.mkdtemp(prefix="edge-soak-"))
    broker = Broker(work / "broker").start()
    recorder = Recorder(broker.port, [topics.verdict], client_id="soak-watcher", persistent=True).start()
    settings = MqttSettings.from_config(
        MqttConfig(url=broker.url, reconnect_min=0.5, reconnect_max=2.0), client_id=f"edge-{device}"
    )
    events: list[tuple[float, str, dict]] = []
    sink = MqttSink(settings, device_id=device, outbox=Outbox(work / "outbox"), discovery=False)
    t0 = time.monotonic()
    sink.set_event_hook(lambda kind, fields: events.append((time.monotonic() - t0, kind, fields)))
    sink.start()
    if not sink.link.wait_connected(10):
        print("soak_mqtt: the sink did not connect", file=sys.stderr)
        return 2

    duration = args.count / args.rate
    restart_at = [duration * (i + 1) / (args.restarts + 1) for i in range(args.restarts)]
    outages: list[tuple[float, float]] = []

    def restarter() -> None:
        for at in restart_at:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            down = time.monotonic() - t0
            broker.stop()
            time.sleep(args.down)
            broker.start()
            outages.append((down, time.monotonic() - t0))

    chaos = threading.Thread(target=restarter, daemon=True)
    chaos.start()
    publish_ms: list[float] = []
    peak_depth = 0
    t0 = time.monotonic()
    for seq in range(1, args.count + 1):
        due = t0 + (seq - 1) / args.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        a = time.perf_counter()
        sink.publish(make_verdict(seq, device_id=device))
        publish_ms.append((time.perf_counter() - a) * 1e3)
        if seq % 50 == 0:
            peak_depth = max(peak_depth, len(sink.outbox))
    produced_s = time.monotonic() - t0
    chaos.join()
    drained = sink.drain(args.drain_timeout)
    drain_s = time.monotonic() - t0 - produced_s
    recorder.wait_for(lambda: len(set(recorder.seqs(topics.verdict))) >= args.count, timeout=60)
    sink.close()
    recorder.stop()
    broker.kill()

    seqs = recorder.seqs(topics.verdict)
    unique = set(seqs)
    lost = sorted(set(range(1, args.count + 1)) - unique)
    firsts = list(dict.fromkeys(seqs))
    in_order = firsts == sorted(firsts)
    dups = len(seqs) - len(unique)
    reconnects = sum(1 for _t, k, _f in events if k == "mqtt_connected")
    print(f"soak_mqtt: {args.count:,} verdicts at {args.rate:g}/s, broker restarted {len(outages)} times")
    for i, (down, up) in enumerate(outages, 1):
        print(f"  restart {i}: broker down at {down:6.1f} s, up at {up:6.1f} s ({up - down:.1f} s without a broker)")
    print(f"  produced   {args.count:,} in {produced_s:.1f} s ({args.count / produced_s:.1f}/s)")
    print(f"  delivered  {len(unique):,} distinct seqs ({len(seqs):,} messages, {dups} duplicates as QoS 1 allows)")
    print(f"  lost       {len(lost)}" + (f"  first lost seqs: {lost[:10]}" if lost else ""))
    print(f"  order      {'kept' if in_order else 'BROKEN'} (first delivery of every seq in increasing order)")
    print(f"  outbox     peak {peak_depth} queued, drained {'yes' if drained else 'NO'} {drain_s:.1f} s after the last")
    print(f"  publish()  p50 {percentile(publish_ms, 50):.2f} ms  p99 {percentile(publish_ms, 99):.2f} ms (fsync)")
    print(f"  reconnects {reconnects - 1}; dropped by a full outbox {sink.outbox.dropped}")
    ok = not lost and in_order and drained and len(outages) == args.restarts
    print(f"{'PASS' if ok else 'FAIL'}: {len(lost)} lost, order {'kept' if in_order else 'broken'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
