#!/usr/bin/env python3
"""Does the `http` extra install on Raspberry Pi OS from wheels alone? Downloads it (and its
dependencies) for 32-bit (armv7l) and 64-bit (aarch64) ARM with `pip download --only-binary`
and lists what came: every file must be a wheel, pure Python or built for that platform.

    python scripts/deploy/check_http_wheels.py [--python 3.11]

Needs the network (PyPI); not part of the test suite. Exit 1 when a platform has no wheel for
some requirement (pip cannot resolve) — then the extra would compile on the device.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
PLATFORMS = {"Raspberry Pi OS 32-bit": "linux_armv7l", "Raspberry Pi OS 64-bit": "manylinux2014_aarch64"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default="3.11", help="the device's Python (Bookworm: 3.11)")
    args = ap.parse_args()
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["http"]
    failed = False
    for name, platform in PLATFORMS.items():
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "pip", "download", "-q", "-d", folder, "--only-binary=:all:"]
            command += ["--platform", platform, "--python-version", args.python, "--implementation", "cp", *extra]
            done = subprocess.run(command, capture_output=True, text=True)
            files = sorted(p.name for p in Path(folder).iterdir())
        if done.returncode != 0:
            failed = True
            print(f"{name} ({platform}): FAIL, pip cannot find wheels: {done.stderr.strip().splitlines()[-1:]}")
            continue
        pure = [f for f in files if f.endswith("-none-any.whl")]
        print(f"{name} ({platform}): {len(files)} wheels, {len(pure)} pure Python: {', '.join(files)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
