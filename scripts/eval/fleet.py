"""Fleet enrolment at a chosen size: two mosquitto brokers bridged on loopback, N `edge node`
processes split across them, one signed group command to enrol a person and one to revoke.
Prints the start-up time, each operation's first/last reply and fleet state, losses, and the
nodes' memory.

    .venv/bin/python scripts/eval/fleet.py --size 20
    .venv/bin/python scripts/eval/fleet.py --size 50 --photo face.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's edge, installed or not
sys.path.insert(0, str(ROOT / "tests"))  # the test broker and the fleet harness (real mosquitto, real nodes)

from fleet_harness import Fleet  # noqa: E402
from mqtt_broker import available  # noqa: E402


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _photo(path: str | None) -> bytes:
    if path:
        return Path(path).read_bytes()
    import cv2
    import skimage.data

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20, help="doors (edge node processes), half on each broker")
    parser.add_argument("--photo", default=None, help="the photo to enrol (default: scikit-image's astronaut)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for every door")
    args = parser.parse_args()
    if not available():
        print("mosquitto is not installed", file=sys.stderr)
        return 2
    photo = _photo(args.photo)
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp), size=args.size, timeout=args.timeout) as fleet:
        print(f"fleet: {args.size} doors (edge node) on 2 bridged mosquitto brokers, photo {len(photo):,} bytes")
        print(f"  started      {fleet.started_s:.1f} s until every door reported its fleet state")
        rss = [_rss_mb(p.pid) for d, p in fleet.procs.items() if d in fleet.doors]
        ops = [fleet.enrol("Fleet Person", [photo])]
        commands = len(fleet.last_outcome["nonces"])
        rss_after = [_rss_mb(p.pid) for d, p in fleet.procs.items() if d in fleet.doors]
        ops.append(fleet.revoke("Fleet Person"))
        lost = 0
        for op in ops:
            s = op.summary(args.size)
            r, f = s["replies"], s["fleet_state"]
            lost += len(s["lost"]) + len(s["failed"])
            print(
                f"  {op.command:<7} replies {r['n']}/{args.size} first {r.get('first_s', 0):.3f} s last "
                f"{r.get('last_s', 0):.3f} s; fleet state {f['n']}/{args.size} first {f.get('first_s', 0):.3f} s "
                f"last {f.get('last_s', 0):.3f} s; lost {len(s['lost'])}, failed {len(s['failed'])}"
                + (f" ({commands} command(s))" if op.command == "import" else "")
            )
            if s["lost"] or s["failed"]:
                print("    " + json.dumps({"lost": s["lost"], "failed": s["failed"]}))
        print(
            f"  memory       per node RSS {sum(rss) / len(rss):.0f} MB idle, {sum(rss_after) / len(rss_after):.0f} MB "
            f"after an import (the engine loaded); {sum(rss_after) / 1024:.1f} GB for all"
        )
        print("PASS" if lost == 0 else f"FAIL: {lost} door(s) lost or failed")
        return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
