"""Open a shipped ``.tflite`` model in whichever TFLite interpreter this device has.

LiteRT (``ai-edge-litert``) is preferred; ``tflite-runtime`` is the fallback for
32-bit Pi OS, where LiteRT has no wheels. Every shipped model must load in both
(``scripts/build/check_runtimes.py`` proves it), so callers never care which one ran.

A model is identified by its key in ``models/manifest.json``. Before a model is
handed out its sha256 is compared with the manifest, so a truncated copy or a
file swapped on the device is refused instead of silently producing wrong
embeddings.

Both runtimes print from C++ on stderr when a model loads (``INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.``, once per process); no environment variable turns that off
(TF_CPP_MIN_LOG_LEVEL does not reach TFLite's minimal logger). So while an interpreter is
created, file descriptor 2 is pointed at a memory file and what was written there becomes
log records of this module: ``INFO:`` lines at DEBUG, everything else at WARNING or ERROR.
With DEBUG enabled nothing is captured (the native output goes to stderr as it is).
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("ai-edge-litert", "tflite-runtime")

# Tensor types that carry (scale, zero_point) quantization: int16 is the activation type of
# "int16x8" models.
_QUANTIZED = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


class ModelError(RuntimeError):
    """A model cannot be used: missing runtime, missing file or wrong checksum."""


class ModelShapeError(ModelError, ValueError):
    """A model whose tensors are not what its stage needs: a wrong or swapped file (a ModelError,
    and a ValueError as the stages raised before)."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float  # 0.0 when the tensor is not quantized
    zero_point: int


def _import_interpreter(backend: str | None = None) -> tuple[str, Any]:
    """Return (backend name, Interpreter class) for the first importable backend."""
    wanted = [backend] if backend else list(BACKENDS)
    errors = []
    for name in wanted:
        try:
            if name == "ai-edge-litert":
                from ai_edge_litert.interpreter import Interpreter
            elif name == "tflite-runtime":
                from tflite_runtime.interpreter import Interpreter
            else:
                raise ModelError(f"unknown TFLite backend {name!r}; choose one of {BACKENDS}")
            return name, Interpreter
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ModelError(
        "no TFLite runtime is installed ("
        + "; ".join(errors)
        + "). Install one: `pip install ai-edge-litert` (x86_64, aarch64) or "
        "`pip install tflite-runtime 'numpy<2'` (32-bit Raspberry Pi OS)."
    )


def available_backend() -> str:
    """Name of the backend `Model` will use on this machine."""
    return _import_interpreter()[0]


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Model:
    """One loaded ``.tflite`` model with named inputs and outputs.

    Float arrays given for an int8/uint8/int16 input are quantized with the tensor's
    own scale and zero point, and such quantized outputs are dequantized, so a
    full-integer variant is a drop-in replacement for its float source.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        threads: int = 1,
        sha256: str | None = None,
        backend: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(
                f"model file {self.path} is missing; reinstall the package or rebuild the "
                "models with `python scripts/build/build_models.py`"
            )
        if sha256 is not None:
            actual = sha256_of(self.path)
            if actual != sha256:
                raise ModelError(
                    f"model file {self.path} has sha256 {actual}, but models/manifest.json "
                    f"expects {sha256}; the file is damaged or was replaced. Reinstall the "
                    "package or rebuild with `python scripts/build/build_models.py`"
                )
        if threads < 1:
            raise ModelError(f"threads must be >= 1, got {threads}")
        self.backend, interpreter_cls = _import_interpreter(backend)
        self.threads = threads
        try:
            with native_stderr_logged(self.backend):
                self._interpreter = interpreter_cls(model_path=str(self.path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{self.backend} cannot load {self.path}: {exc}. Rebuild the models with "
                "`python scripts/build/build_models.py`"
            ) from exc
        self.inputs = [self._spec(d) for d in self._interpreter.get_input_details()]
        self.outputs = [self._spec(d) for d in self._interpreter.get_output_details()]
        logger.debug("loaded %s with %s (%d thread(s))", self.path, self.backend, threads)

    @staticmethod
    def _spec(detail: dict) -> TensorSpec:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return TensorSpec(
            name=detail["name"],
            index=detail["index"],
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=np.dtype(detail["dtype"]),
            scale=float(scale),
            zero_point=int(zero_point),
        )

    def __repr__(self) -> str:
        return f"Model({self.path.name!r}, backend={self.backend!r}, threads={self.threads})"

    def input(self, name: str | None = None) -> TensorSpec:
        if name is None:
            return self.inputs[0]
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.path.name} has no input {name!r}; inputs: {[s.name for s in self.inputs]}")

    def _set(self, spec: TensorSpec, array: np.ndarray) -> None:
        array = np.asarray(array)
        if tuple(array.shape) != spec.shape:
            raise ValueError(f"{self.path.name} input {spec.name!r} wants shape {spec.shape}, got {array.shape}")
        if spec.dtype in _QUANTIZED and array.dtype.kind == "f":
            if not spec.scale:
                raise ValueError(
                    f"{self.path.name} input {spec.name!r} is {spec.dtype} without quantization "
                    "parameters; pass an integer array"
                )
            info = np.iinfo(spec.dtype)
            array = np.clip(np.round(array / spec.scale) + spec.zero_point, info.min, info.max)
        self._interpreter.set_tensor(spec.index, np.ascontiguousarray(array, dtype=spec.dtype))

    def run(self, *arrays: np.ndarray, **named: np.ndarray) -> dict[str, np.ndarray]:
        """Run once; inputs by position or by name. Returns outputs by name (float)."""
        if arrays and named:
            raise TypeError("give inputs either by position or by name, not both")
        if len(arrays) > len(self.inputs):
            raise TypeError(f"{self.path.name} has {len(self.inputs)} inputs, got {len(arrays)}")
        for spec, array in zip(self.inputs, arrays):
            self._set(spec, array)
        for name, array in named.items():
            self._set(self.input(name), array)
        self._interpreter.invoke()
        result = {}
        for spec in self.outputs:
            value = self._interpreter.get_tensor(spec.index)
            if spec.dtype in _QUANTIZED and spec.scale:
                value = (value.astype(np.float32) - spec.zero_point) * spec.scale
            result[spec.name] = value
        return result


# --- the runtimes' own stderr output ----------------------------------------------

# TFLite's minimal logger writes "<SEVERITY>: <message>" lines.
_NATIVE_LINE = re.compile(r"(VERBOSE|INFO|WARNING|ERROR): (.*)")
_NATIVE_LEVELS = {"VERBOSE": logging.DEBUG, "INFO": logging.DEBUG, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_fd2_lock = threading.Lock()  # fd 2 is one per process: one capture at a time


def _memory_file():
    if hasattr(os, "memfd_create"):
        try:
            return os.fdopen(os.memfd_create("edge-native-stderr", os.MFD_CLOEXEC), "w+b")
        except OSError:
            pass
    return tempfile.TemporaryFile()


def _point_faulthandler(fd: int) -> None:
    """A crash while fd 2 is captured must still print its traceback (PYTHONFAULTHANDLER=1 in the unit)."""
    if faulthandler.is_enabled():
        faulthandler.enable(file=fd, all_threads=True)


def log_native_output(text: str, source: str) -> None:
    """Log what native code printed: ``INFO:`` lines at DEBUG, ``WARNING:`` and ``ERROR:`` at
    their level, any other line (e.g. cpuinfo's "Error in cpuinfo: ...") at WARNING."""
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        match = _NATIVE_LINE.match(line)
        level = _NATIVE_LEVELS[match.group(1)] if match else logging.WARNING
        logger.log(level, "%s: %s", source, line)


@contextlib.contextmanager
def native_stderr_logged(source: str) -> Iterator[None]:
    """While the block runs, what is written on file descriptor 2 is captured, then logged
    (`log_native_output`) under `source`'s name. With DEBUG enabled, or when fd 2 cannot be
    duplicated, nothing is captured and the output goes to stderr unchanged."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    with _fd2_lock:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()  # Python's own pending text goes out first, not into the capture
        except (OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            saved = None
        if saved is None:
            yield
            return
        try:
            capture = _memory_file()
        except OSError:
            os.close(saved)
            yield
            return
        with capture:
            try:
                os.dup2(capture.fileno(), 2)
                _point_faulthandler(saved)
                yield
            finally:
                os.dup2(saved, 2)
                _point_faulthandler(2)
                os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
                log_native_output(text, source)


# --- the shipped model set -------------------------------------------------------


def models_dir() -> Path:
    """Where the shipped models are: $EDGE_MODELS_DIR, else the installed package data."""
    override = os.environ.get("EDGE_MODELS_DIR")
    if override:
        return Path(override)
    # `edge.models` is the top-level `models/` folder, mapped into the package by
    # setup.py/pyproject.toml so that a regular (non-editable) install carries it.
    try:
        import edge.models as package
    except ModuleNotFoundError:
        # A source checkout (PYTHONPATH=<repo>, or an editable install, whose import hook
        # cannot map a folder without __init__.py): use the checkout's models/ folder.
        checkout = Path(__file__).resolve().parent.parent
        if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
            return checkout / "models"
        raise ModelError(
            "the installed package has no edge.models (the model files); reinstall it with "
            "`pip install .` from the repository, or set EDGE_MODELS_DIR"
        ) from None
    return Path(next(iter(package.__path__)))


@lru_cache(maxsize=4)
def _manifest_cached(directory: str, mtime: float) -> dict:
    path = Path(directory) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{path} is missing; reinstall the package or run `python scripts/build/build_models.py`"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); reinstall the package") from None


def load_manifest(directory: str | os.PathLike | None = None) -> dict:
    directory = Path(directory) if directory is not None else models_dir()
    manifest = directory / "manifest.json"
    mtime = manifest.stat().st_mtime if manifest.exists() else 0.0
    return _manifest_cached(str(directory), mtime)


def model_info(key: str, directory: str | os.PathLike | None = None) -> dict:
    models = load_manifest(directory).get("models", {})
    if key not in models:
        raise ModelError(f"models/manifest.json has no model {key!r}; known: {sorted(models)}")
    return models[key]


def manifest_status(directory: str | os.PathLike | None = None) -> list[dict]:
    """One row per manifest entry: key, file, path, role, variant, default, size, sha256_ok.

    `size` is None and `sha256_ok` False when the file is missing. `default` is the entry's
    own ``"default"`` flag, or true when a top-level ``"defaults"`` mapping names the key.
    """
    directory = Path(directory) if directory is not None else models_dir()
    manifest = load_manifest(directory)
    defaults = manifest.get("defaults", {})
    default_keys = set(defaults.values()) if isinstance(defaults, dict) else set()
    rows = []
    for key, info in manifest.get("models", {}).items():
        path = directory / info["file"]
        exists = path.is_file()
        rows.append(
            {
                "key": key,
                "file": info["file"],
                "path": str(path),
                "role": info.get("role"),
                "variant": info.get("variant"),
                "default": bool(info.get("default")) or key in default_keys,
                "size": path.stat().st_size if exists else None,
                "sha256_ok": exists and sha256_of(path) == info.get("sha256"),
            }
        )
    return rows


def open_model(
    key: str,
    *,
    threads: int = 1,
    directory: str | os.PathLike | None = None,
    backend: str | None = None,
) -> Model:
    """Load the manifest entry `key`, verifying its sha256 first."""
    directory = Path(directory) if directory is not None else models_dir()
    info = model_info(key, directory)
    return Model(directory / info["file"], threads=threads, sha256=info["sha256"], backend=backend)
