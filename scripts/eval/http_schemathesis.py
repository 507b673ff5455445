#!/usr/bin/env python3
"""A bounded schemathesis run against `GET /openapi.json` of a real `edge serve`.

    python scripts/eval/http_schemathesis.py [--max-time 300] [--max-examples 50]

The server runs with every dialect's keys configured and a fresh vault with a device key (so
sealed images and /v1/ are live). schemathesis gets each operation's own credentials through a
generated schemathesis.toml, and Tencent's requests are signed by http_schemathesis_hooks.py.
Every check runs except `positive_data_acceptance`: a request can match the schema and still be
refused by content the schema cannot describe (bytes that are not a decodable photo, a photo
without a face), and those refusals are the API working. `negative_data_rejection` accepts 413,
the status of code 2004 (content length). On Tencent's `POST /` every refusal is HTTP 200 with
Response.Error (its SDK needs that), so the checks that want a 4xx for a refusal are off there.
Exit status: schemathesis's (0 when no check failed).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout

API_KEY = "compare-key-0123456789"
ADMIN_KEY = "admin-key-0123456789ab"
AIGEN_KEY = "aigen-key-0123456789ab"
TENCENT_ID, TENCENT_KEY = "AKIDedgeschemathesis0001", "edge-schemathesis-secret-key-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edge(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def server_config(folder: Path) -> Path:
    vault = folder / "vault"
    edge("keys", "init", "--vault", str(vault))
    config = folder / "edge.toml"
    config.write_text(
        f'[vault]\npath = "{vault}"\n[http]\nmax_body_bytes = 4000000\n'
        f'api_keys = ["{API_KEY}"]\nadmin_keys = ["{ADMIN_KEY}"]\naigen_keys = ["{AIGEN_KEY}"]\n'
        f'tencent_secrets = ["{TENCENT_ID}:{TENCENT_KEY}"]\n'
    )
    return config


def schemathesis_config(folder: Path, max_examples: int) -> Path:
    """Per-operation credentials: each dialect its own header."""
    config = folder / "schemathesis.toml"
    config.write_text(
        f"generation.max-examples = {max_examples}\n"
        "request-timeout = 30.0\n"
        # Every check is on by default; per-operation settings below (the CLI's --checks would override them).
        "[checks.positive_data_acceptance]\n"
        "enabled = false\n"
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "411", "413", "415", "422"]\n'
        "[[operations]]\n"
        'include-path-regex = "^/identity/"\n'
        f'headers = {{ "X-API-Key" = "{API_KEY}" }}\n'
        "[[operations]]\n"
        'include-path-regex = "^/v1/"\n'
        f'headers = {{ "X-API-Key" = "{ADMIN_KEY}" }}\n'
        "[[operations]]\n"
        'include-path-regex = "^/aiface/"\n'
        f'headers = {{ "x-aigen-key" = "{AIGEN_KEY}" }}\n'
        # Tencent answers every refusal with HTTP 200 and Response.Error (its SDK needs that):
        # the checks that expect a 4xx status for a refused request do not apply there.
        "[[operations]]\n"
        'include-path = "/"\n'
        "checks.negative_data_rejection.enabled = false\n"
        "checks.ignored_auth.enabled = false\n"
        "checks.missing_required_header.enabled = false\n"
    )
    return config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-time", type=int, default=300, help="seconds for the whole run")
    ap.add_argument("--max-examples", type=int, default=50, help="examples per operation and phase")
    ap.add_argument("--seed", type=int, default=1, help="hypothesis seed, so a run can be repeated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = server_config(folder)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "serve", "--config", str(config), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "serve.log", "wb"),  # noqa: SIM115 - closed with the folder
        )
        try:
            url = f"http://127.0.0.1:{port}/openapi.json"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(url, timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.3)
            hooks = ROOT / "scripts" / "eval" / "http_schemathesis_hooks.py"
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            if hooks.exists():
                env["SCHEMATHESIS_HOOKS"] = "http_schemathesis_hooks"
                env["PYTHONPATH"] += os.pathsep + str(hooks.parent)
                env["EDGE_TENCENT_SECRET"] = f"{TENCENT_ID}:{TENCENT_KEY}"
            st = [
                str(Path(sys.executable).with_name("schemathesis")),
                "--config-file",
                str(schemathesis_config(folder, args.max_examples)),
                "run",
                url,
                "--max-time",
                str(args.max_time),
                "--seed",
                str(args.seed),
                "--workers=1",
            ]
            status = subprocess.run(st, cwd=folder, env=env).returncode
        finally:
            server.terminate()
            server.wait(timeout=30)
        log = (folder / "serve.log").read_text(errors="replace")
    faults = [line for line in log.splitlines() if "Traceback" in line or "internal error" in line]
    print(f"server log: {len(faults)} tracebacks or internal errors")
    if faults:  # the first fault's whole traceback, to fix it
        start = log.find(faults[0])
        print("\n".join("  " + line for line in log[start:].splitlines()[:60]))
    return status or (1 if faults else 0)


if __name__ == "__main__":
    raise SystemExit(main())
