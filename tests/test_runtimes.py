"""scripts/build/check_runtimes.py: every shipped model agrees in ai-edge-litert and tflite-runtime 2.14."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "build" / "check_runtimes.py"
TFLITE_PYTHON = REPO / ".venv-tflite214" / "bin" / "python"


def _need_tflite_venv() -> None:
    if TFLITE_PYTHON.exists():
        return
    message = f"{TFLITE_PYTHON} is absent: run `bash scripts/setup.sh` to create the tflite-runtime 2.14 venv"
    if os.environ.get("CI"):
        pytest.fail(f"under CI the tflite-runtime venv must exist: {message}")
    pytest.skip(message)


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MODELS_DIR"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_every_shipped_model_agrees_in_both_runtimes():
    _need_tflite_venv()
    proc = _run("--json", "--runs", "5", "--warmup", "1")
    report = json.loads(proc.stdout)
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    failures = [f"{m['key']}: {m['errors'] or m['outputs']}" for m in report["models"] if not m["ok"]]
    assert proc.returncode == 0 and report["ok"], report.get("error") or failures
    assert sorted(m["key"] for m in report["models"]) == sorted(manifest["models"])
    assert report["backends"]["A"]["backend"] == "ai-edge-litert"
    assert report["backends"]["B"]["backend"] == "tflite-runtime"
    assert report["backends"]["B"]["version"].startswith("2.14")
    assert report["backends"]["B"]["numpy"].startswith("1.")
    for model in report["models"]:
        assert model["ms"]["A"] > 0 and model["ms"]["B"] > 0
    # Every embedder was compared on a real face with a cosine, float graphs at the float bound
    # (SFace's compact variant has int8 layers: judged by the cosine alone, and much closer than
    # the 0.97 that integer graphs must keep).
    embedders = {m["key"]: m for m in report["models"] if m["role"] == "embedder"}
    assert {"mobilefacenet", "fr_feature", "sface"} <= set(embedders)
    for key, model in embedders.items():
        assert model["outputs"][0]["cosine"] is not None, key
    assert embedders["sface"]["quantized"] is True and embedders["sface"]["outputs"][0]["cosine"] >= 0.99


def _one_model(key: str) -> tuple[dict, dict]:
    """check_runtimes.py on one model in both runtimes: (its report, its one output's), after asserting it agreed."""
    _need_tflite_venv()
    proc = _run("--json", "--only", key, "--runs", "2", "--warmup", "1")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"], report
    (model,) = report["models"]
    (out,) = model["outputs"]
    return model, out


def test_sface_loads_and_agrees_in_both_runtimes():
    """The SFace conversion in tflite-runtime 2.14 too (every op at version 1), on a real face: its
    int8 layers run in 2.14's own kernels (hybrid convolution, UINT8-typed hybrid FULLY_CONNECTED),
    in LiteRT partly in XNNPACK's, and still agree."""
    model, out = _one_model("sface")
    assert model["quantized"] is True
    assert out["shape"] == [1, 128] and out["cosine"] >= 0.99


def test_liveness_loads_and_agrees_in_both_runtimes():
    """fr_liveness (MEAN, LOGISTIC, broadcast MUL, FULLY_CONNECTED at version 1) in tflite-runtime 2.14
    too, on a real face crop as the stage makes it: the logits agree to float precision."""
    model, out = _one_model("fr_liveness")
    assert model["role"] == "liveness" and model["quantized"] is False
    assert out["name"] == "logits" and out["shape"] == [1, 3] and out["max_abs_diff"] <= 1e-4


def test_iris_landmark_loads_and_agrees_in_both_runtimes():
    """The blink stage's model (MediaPipe's, as shipped) in tflite-runtime 2.14 too, on a real eye crop
    as the stage makes it: both outputs agree to float precision."""
    _need_tflite_venv()
    proc = _run("--json", "--only", "iris_landmark", "--runs", "2", "--warmup", "1")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"], report
    (model,) = report["models"]
    assert model["role"] == "eye_landmarks" and model["quantized"] is False
    outputs = {o["name"]: o for o in model["outputs"]}
    assert outputs["output_eyes_contours_and_brows"]["shape"] == [1, 213]
    assert all(o["max_abs_diff"] <= 1e-4 for o in outputs.values())


def test_table_output_and_an_int8_model(tmp_path):
    """The quantized path (int8 in, int8 out) through both runtimes, and the printed table."""
    _need_tflite_venv()
    builder = pytest.importorskip("tflite_builder")
    model = builder.requantize_model(tmp_path / "requant_int8.tflite")
    manifest = {"models": {"requant": {"file": model.name, "role": "embedder", "sha256": _sha256(model)}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    proc = _run("--models-dir", str(tmp_path), "--runs", "2", "--warmup", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tflite-runtime 2.14" in proc.stdout and "ai-edge-litert" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("requant"))
    assert " ok " in row and "1.000000" in row  # cosine printed for embedders


def test_a_crashing_runtime_is_a_failure_naming_the_model(tmp_path):
    """A model that kills tflite-runtime's process fails the check by name (no venv needed)."""
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nkill -ABRT $$\n")
    fake_python.chmod(0o755)
    key = sorted(json.loads((REPO / "models" / "manifest.json").read_text())["models"])[0]
    proc = _run("--tflite-python", str(fake_python), "--only", key, "--runs", "1", "--warmup", "0")
    assert proc.returncode == 1
    assert f"FAIL {key}" in proc.stdout and "crashed (SIGABRT)" in proc.stdout
    assert "tflite-runtime" in proc.stdout


def test_an_unloadable_model_fails_in_both_runtimes(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 4096)
    manifest = {"models": {"junk": {"file": junk.name, "role": "detector", "sha256": _sha256(junk)}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    proc = _run("--models-dir", str(tmp_path), "--json", "--tflite-python", sys.executable)
    assert proc.returncode == 1
    (model,) = json.loads(proc.stdout)["models"]
    assert model["key"] == "junk" and not model["ok"]
    assert any("junk.tflite" in err for err in model["errors"])


def test_missing_tflite_venv_is_an_error(tmp_path):
    proc = _run("--tflite-python", str(tmp_path / "nope" / "python"))
    assert proc.returncode == 1
    assert "setup.sh" in proc.stdout
