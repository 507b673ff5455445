"""edge.runtime against the real shipped models (whatever models/manifest.json lists)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import cli, runtime
from edge.runtime import Model, ModelError


@pytest.fixture(autouse=True)
def _no_models_override(monkeypatch):
    monkeypatch.delenv("EDGE_MODELS_DIR", raising=False)


def _manifest() -> dict:
    # Read at collection time, so tests are generated for every model the manifest lists.
    return json.loads((Path(__file__).resolve().parent.parent / "models" / "manifest.json").read_text())


MODELS = _manifest()["models"]
KEYS = sorted(MODELS)


def _keys_with_role(role: str) -> list[str]:
    return [k for k in KEYS if MODELS[k].get("role") == role]


def _random_inputs(model: Model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in model.inputs:
        if spec.dtype.kind == "f" or spec.scale:
            arrays.append(rng.uniform(-1, 1, spec.shape).astype(np.float32))
        else:
            arrays.append(np.zeros(spec.shape, spec.dtype))
    return arrays


def _copy_model(key: str, directory: Path) -> Path:
    """Copy one manifest entry (file + a one-entry manifest) into `directory`."""
    info = MODELS[key]
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(runtime.models_dir() / info["file"], directory / info["file"])
    (directory / "manifest.json").write_text(json.dumps({"models": {key: info}}))
    return directory / info["file"]


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --- the shipped set ----------------------------------------------------------------------


def test_manifest_lists_models_that_exist():
    assert KEYS, "models/manifest.json lists no models"
    manifest = runtime.load_manifest()
    assert sorted(manifest["models"]) == KEYS
    for key in KEYS:
        info = runtime.model_info(key)
        assert (runtime.models_dir() / info["file"]).is_file(), info["file"]
        assert len(info["sha256"]) == 64


def test_models_dir_is_the_checkouts_models_folder():
    # In a source checkout (editable or PYTHONPATH) the models are the repo's models/ folder.
    assert runtime.models_dir().resolve() == (Path(__file__).resolve().parent.parent / "models")


def test_a_backend_is_available():
    assert runtime.available_backend() in runtime.BACKENDS


@pytest.mark.parametrize("key", KEYS)
def test_every_model_loads_and_runs(key):
    model = runtime.open_model(key, threads=1)
    assert model.backend in runtime.BACKENDS
    assert model.inputs and model.outputs
    assert key in repr(model) or MODELS[key]["file"] in repr(model)
    out = model.run(*_random_inputs(model))
    assert list(out) == [spec.name for spec in model.outputs]
    for spec in model.outputs:
        value = out[spec.name]
        assert value.shape == spec.shape
        assert value.dtype.kind == "f"
        assert np.isfinite(value).all(), f"{key} output {spec.name} is not finite"


@pytest.mark.parametrize("key", KEYS)
def test_named_inputs_match_positional(key):
    model = runtime.open_model(key)
    arrays = _random_inputs(model, seed=1)
    by_position = model.run(*arrays)
    by_name = model.run(**{spec.name: a for spec, a in zip(model.inputs, arrays)})
    for name in by_position:
        np.testing.assert_array_equal(by_position[name], by_name[name])
    with pytest.raises(TypeError):
        model.run(arrays[0], **{model.inputs[0].name: arrays[0]})
    with pytest.raises(KeyError, match="no input"):
        model.run(no_such_input=arrays[0])


@pytest.mark.parametrize("key", _keys_with_role("detector") or ["<no detector>"])
def test_detector_finds_the_astronauts_face(key, astronaut_rgb):
    """The real detectors answer sensibly on a real photo: a face, and none on flat grey."""
    if key not in MODELS:
        pytest.skip("the manifest lists no model with role 'detector'")
    cv2 = pytest.importorskip("cv2")
    model = runtime.open_model(key)
    (spec,) = model.inputs
    height, width = spec.shape[1:3]
    scores = [s.name for s in model.outputs if s.shape[-1] == 1 and len(s.shape) == 3]
    if not scores:
        pytest.skip(f"{key} is not a BlazeFace-style detector (no [1, N, 1] score output)")

    def best_score(rgb: np.ndarray) -> float:
        x = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
        logits = model.run(x[None])[scores[0]]
        return float(1 / (1 + np.exp(-logits.max())))

    assert best_score(astronaut_rgb) > 0.8
    assert best_score(np.full_like(astronaut_rgb, 128)) < 0.3


def test_threads_are_passed_and_checked():
    key = KEYS[0]
    assert runtime.open_model(key, threads=2).threads == 2
    with pytest.raises(ModelError, match="threads"):
        runtime.open_model(key, threads=0)


# --- failures explain themselves ------------------------------------------------------------


def test_wrong_input_shape_is_a_value_error():
    model = runtime.open_model(KEYS[0])
    spec = model.inputs[0]
    wrong = np.zeros(tuple(d + 1 for d in spec.shape), np.float32)
    with pytest.raises(ValueError, match=r"wants shape"):
        model.run(wrong)
    with pytest.raises(TypeError):
        model.run(*([wrong] * (len(model.inputs) + 1)))


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    key = KEYS[0]
    path = _copy_model(key, tmp_path)
    path.unlink()
    with pytest.raises(ModelError) as info:
        runtime.open_model(key, directory=tmp_path)
    message = str(info.value)
    assert path.name in message and "missing" in message
    assert "build_models.py" in message and "reinstall" in message.lower()


def test_sha256_mismatch_names_the_file(tmp_path):
    key = KEYS[0]
    path = _copy_model(key, tmp_path)
    runtime.open_model(key, directory=tmp_path)  # the intact copy loads
    _flip_byte(path)
    with pytest.raises(ModelError) as info:
        runtime.open_model(key, directory=tmp_path)
    message = str(info.value)
    assert path.name in message and "sha256" in message
    assert MODELS[key]["sha256"] in message
    with pytest.raises(ModelError, match=path.name):
        Model(path, sha256="0" * 64)


def test_unloadable_file_is_a_model_error(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(ModelError, match="junk.tflite"):
        Model(junk)


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(ModelError, match=KEYS[0]):
        runtime.open_model("no-such-model")


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match="manifest.json"):
        runtime.load_manifest(tmp_path)


def test_no_runtime_gives_install_advice(monkeypatch):
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(ModelError) as info:
        runtime.available_backend()
    message = str(info.value)
    assert "pip install ai-edge-litert" in message and "tflite-runtime" in message
    with pytest.raises(ModelError, match="no TFLite runtime"):
        runtime.open_model(KEYS[0])


def test_unknown_backend_is_refused():
    with pytest.raises(ModelError, match="unknown TFLite backend"):
        runtime.open_model(KEYS[0], backend="tensorflow")


@pytest.mark.parametrize("backend", runtime.BACKENDS)
def test_explicit_backend(backend):
    try:
        runtime._import_interpreter(backend)
    except ModelError:
        with pytest.raises(ModelError, match="no TFLite runtime"):
            runtime.open_model(KEYS[0], backend=backend)
        return
    model = runtime.open_model(KEYS[0], backend=backend)
    assert model.backend == backend


def test_import_edge_is_light():
    code = (
        "import sys, edge, edge.errors, edge.cli; "
        "heavy = [m for m in ('numpy', 'cv2', 'ai_edge_litert', 'tflite_runtime') if m in sys.modules]; "
        "print(edge.__version__); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent
    )
    assert proc.returncode == 0, f"importing edge loaded heavy modules: {proc.stdout} {proc.stderr}"


# --- int8 models ------------------------------------------------------------------------------


def test_int8_inputs_are_quantized_and_outputs_dequantized(tmp_path):
    """A hand-written int8 model (one QUANTIZE op: input scale 0.1 zp 2 -> output scale 0.05 zp -3)."""
    builder = pytest.importorskip("tflite_builder", reason="needs ai-edge-litert's flatbuffer schema")
    try:
        path = builder.requantize_model(tmp_path / "requant.tflite")
    except ImportError as exc:
        pytest.skip(f"cannot write a .tflite here: {exc}")
    model = Model(path)
    (x_spec,), (y_spec,) = model.inputs, model.outputs
    assert x_spec.dtype == np.int8 and y_spec.dtype == np.int8
    assert x_spec.scale == pytest.approx(0.1) and x_spec.zero_point == 2
    assert y_spec.scale == pytest.approx(0.05) and y_spec.zero_point == -3

    x = np.array([[-1.5, -0.73, -0.2, 0.0, 0.04, 0.61, 1.26, 3.0]], np.float32)
    y = model.run(x)["y"]
    assert y.dtype == np.float32
    # Quantized on the way in (0.1 steps), requantized (0.05 steps), dequantized on the way out.
    np.testing.assert_allclose(y, np.round(x / 0.1) * 0.1, atol=0.05 / 2 + 1e-6)
    # Out-of-range floats saturate: the input holds at most (127 - 2) * 0.1 = 12.5.
    big = model.run(np.full((1, 8), 100.0, np.float32))["y"]
    np.testing.assert_allclose(big, (127 + 3) * 0.05, atol=1e-6)  # output saturates at 127: 6.5
    # Integer arrays go in untouched: q=7 means (7 - 2) * 0.1 = 0.5.
    raw = model.run(np.full((1, 8), 7, np.int8))["y"]
    np.testing.assert_allclose(raw, 0.5, atol=1e-6)


# --- EDGE_MODELS_DIR and the `edge models` command ----------------------------------------------


def test_edge_models_dir_override(tmp_path, monkeypatch):
    key = KEYS[-1]
    _copy_model(key, tmp_path)
    monkeypatch.setenv("EDGE_MODELS_DIR", str(tmp_path))
    assert runtime.models_dir() == tmp_path
    assert list(runtime.load_manifest()["models"]) == [key]
    model = runtime.open_model(key)
    assert model.path.parent == tmp_path
    with pytest.raises(ModelError):
        runtime.open_model(KEYS[0] if KEYS[0] != key else "not-there")


def test_cli_models_lists_every_key(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for key in KEYS:
        assert key in out and MODELS[key]["file"] in out
    assert "MISMATCH" not in out and "MISSING" not in out


def test_cli_models_json(capsys):
    assert cli.main(["models", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(row["key"] for row in report["models"]) == KEYS
    assert all(row["sha256_ok"] for row in report["models"])


def test_cli_models_fails_on_a_tampered_file(tmp_path, monkeypatch, capsys):
    key = KEYS[0]
    path = _copy_model(key, tmp_path)
    _flip_byte(path, 100)
    monkeypatch.setenv("EDGE_MODELS_DIR", str(tmp_path))
    assert cli.main(["models"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and path.name in captured.err
    path.unlink()
    assert cli.main(["models", "--dir", str(tmp_path)]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_cli_version_and_help(capsys):
    from edge import __version__

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert cli.main([]) == 2


def test_cli_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "models"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(key in proc.stdout for key in KEYS)
