"""A short schemathesis run (scripts/eval/http_schemathesis.py) against a real `edge serve`:
every operation in /openapi.json, every check but positive_data_acceptance, no failure and no
traceback in the server's log. The long run for the closing note uses the same script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None, reason="needs schemathesis (test extra)"),
    pytest.mark.skipif(importlib.util.find_spec("starlette") is None, reason="needs the http extra"),
]


def test_a_bounded_schemathesis_run_finds_no_failure():
    script = REPO / "scripts" / "eval" / "http_schemathesis.py"
    done = subprocess.run(
        [sys.executable, str(script), "--max-time", "45", "--max-examples", "15", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary + done.stderr[-2000:]
    assert "server log: 0 tracebacks or internal errors" in done.stdout
    assert "generated" in done.stdout and "passed" in done.stdout, summary
