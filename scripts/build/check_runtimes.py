#!/usr/bin/env python3
"""Prove every shipped model loads and agrees in both TFLite runtimes.

Runs each model of models/manifest.json in

  A: ai-edge-litert (the newest runtime; this script's own interpreter, normally .venv), and
  B: tflite-runtime 2.14 (the last release, used on 32-bit Raspberry Pi OS; .venv-tflite214,
     which has numpy<2),

each model in its own child process (a model that aborts the runtime is reported as a failure
naming it instead of ending the check). Both get the same deterministic inputs: seeded uniform
floats in [-1, 1] for float inputs, and for quantized (int8/uint8/int16) inputs the same floats
quantized with the tensor's scale and zero point (edge.runtime.Model does that). Outputs are
compared (dequantized), and single-thread inference is timed in each runtime.

    python scripts/build/check_runtimes.py            # table; exit 1 on any failure
    python scripts/build/check_runtimes.py --json     # the same as JSON

The child code runs under numpy 1.x and imports only edge.runtime (numpy and the stdlib).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
DEFAULT_TFLITE_PYTHON = REPO / ".venv-tflite214" / "bin" / "python"

# Tolerances, stated once and printed with every report.
FLOAT_RTOL = 1e-3  # float graph: |A-B| <= 1e-3 * max(1, max|A|)
QUANT_STEPS = 3  # quantized output tensor: |A-B| <= 3 * scale
INT8_RANGE_STEPS = 3  # float output of an integer graph: |A-B| <= 3 * (2 * max|A| / 255)
COSINE_FLOAT = 0.9999  # embedders, float graph: min cosine(A, B) per embedding
# (float16-weight files -- the detectors, FaceMesh -- are float graphs: DEQUANTIZE expands their
# weights at load and both runtimes compute in float32. SFace's compact variant has int8 layers
# with activations quantized on the fly, so it is judged as an integer graph below.)
# Embedders, integer graph: XNNPACK's int8 kernels and tflite-runtime 2.14's reference
# kernels round differently, and 60 layers amplify it: on 60 lfw-dev faces the full-int8
# MobileFaceNet gives cosine 0.977 to float in LiteRT and 0.977 in tflite-runtime, but
# 0.989 (min 0.978) between the two. Equal quality, not equal bits: the element-wise
# bound is waived for them and this cosine is the test.
COSINE_QUANT = 0.97

TOLERANCE_TEXT = (
    f"float graph: max|A-B| <= {FLOAT_RTOL:g} * max(1, max|A|); "
    f"quantized output: <= {QUANT_STEPS} steps (scale); "
    f"float output of an integer graph: <= {INT8_RANGE_STEPS} int8 steps of its range (2*max|A|/255); "
    f"embedders: cosine >= {COSINE_FLOAT} as well (float graph), "
    f"or cosine >= {COSINE_QUANT} instead (integer graph, real face input)"
)

QUANTIZED_DTYPES = ("int8", "uint8", "int16")


# --- child side: runs under either runtime, numpy 1.x or 2.x ------------------------------


def _runtime_version(backend: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(backend)
    except metadata.PackageNotFoundError:
        return "?"


def _graph_is_quantized(model) -> bool:
    """True when any tensor of the graph carries int8/uint8/int16 quantization."""
    try:
        details = model._interpreter.get_tensor_details()
    except (ValueError, RuntimeError):
        return False
    for detail in details:
        scales = detail.get("quantization_parameters", {}).get("scales", ())
        scale = detail.get("quantization", (0.0, 0))[0]
        dtype = getattr(detail["dtype"], "__name__", str(detail["dtype"]))
        if dtype in QUANTIZED_DTYPES and (scale or len(scales)):
            return True
    return False


def _make_inputs(specs, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if spec.dtype.kind == "f" or (spec.dtype.name in QUANTIZED_DTYPES and spec.scale):
            # Floats in [-1, 1]; Model quantizes them for a quantized input.
            arrays.append(rng.uniform(-1.0, 1.0, size=spec.shape).astype(np.float32))
        else:
            arrays.append(np.zeros(spec.shape, dtype=spec.dtype))
    return arrays


def worker(args: argparse.Namespace) -> int:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from edge.runtime import Model

    model = Model(args.model, threads=args.threads, sha256=args.sha256, backend=args.backend)
    if args.inputs:  # the parent's inputs (a face for embedders, or side A's for side B)
        with np.load(args.inputs, allow_pickle=False) as data:
            arrays = [data[f"in_{i}"] for i in range(len(model.inputs))]
    else:
        arrays = _make_inputs(model.inputs, args.seed)
    outputs = model.run(*arrays)
    for _ in range(args.warmup):
        model.run(*arrays)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        model.run(*arrays)
        times.append((time.perf_counter() - start) * 1000.0)
    save = {f"in_{i}": a for i, a in enumerate(arrays)}
    save.update({f"out_{i}": np.asarray(outputs[s.name]) for i, s in enumerate(model.outputs)})
    np.savez(args.out, **save)
    meta = {
        "backend": model.backend,
        "version": _runtime_version(model.backend),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "quantized": _graph_is_quantized(model),
        "inputs": [_spec_json(s) for s in model.inputs],
        "outputs": [_spec_json(s) for s in model.outputs],
        "ms": float(np.median(times)) if times else None,
    }
    print(json.dumps(meta))
    return 0


def _spec_json(spec) -> dict:
    return {
        "name": spec.name,
        "shape": list(spec.shape),
        "dtype": spec.dtype.name,
        "scale": spec.scale,
        "zero_point": spec.zero_point,
    }


# --- parent side -----------------------------------------------------------------------------


def _face_input(info: dict, out: Path) -> Path | None:
    """A real face for embedders: noise is far outside what a full-int8 model was calibrated
    on, saturates it, and would compare two runtimes on inputs no device ever sees.

    The astronaut's face from scikit-image's photo (test extra), cut and resized to the
    embedder's 112x112 input and normalised as the manifest says; the liveness model gets the
    same face as its own stage crops it (`_liveness_face_input`). None for other models or when
    scikit-image is absent (then both runtimes get seeded noise).
    """
    spec = info.get("input", {})
    if info.get("role") == "liveness" and list(spec.get("shape", [])) == [1, 128, 128, 3]:
        return _liveness_face_input(spec, out)
    if info.get("role") == "eye_landmarks" and list(spec.get("shape", [])) == [1, 64, 64, 3]:
        return _eye_input(out)
    if "embed" not in str(info.get("role")) or list(spec.get("shape", [])) != [1, 112, 112, 3]:
        return None
    try:
        import cv2
        import numpy as np
        from skimage import data
    except ImportError:
        return None
    crop = cv2.resize(data.astronaut()[60:190, 160:290], (112, 112), interpolation=cv2.INTER_AREA)
    x = (crop[None].astype(np.float32) - float(spec.get("mean", 127.5))) / float(spec.get("std", 128.0))
    np.savez(out, in_0=x)
    return out


def _liveness_face_input(spec: dict, out: Path) -> Path | None:
    """The astronaut's face as the liveness model is fed it: edge.vision.liveness.crop (a square of
    the BlazeFace box x2.7, BGR, raw 0..255). None when scikit-image is absent."""
    try:
        import numpy as np
        from skimage import data
    except ImportError:
        return None
    sys.path.insert(0, str(REPO))
    from edge.vision.liveness import crop

    face = crop(data.astronaut(), (175.4, 74.4, 100.4, 100.4), scale=float(spec.get("crop_scale", 2.7)))
    np.savez(out, in_0=face[None].astype(np.float32))
    return out


def _eye_input(out: Path) -> Path | None:
    """The astronaut's image-left eye as the eye model is fed it (edge.vision.blink.crop_transform from
    the eye corners FaceMesh gives on that photo, rounded; RGB / 255). None when scikit-image is absent."""
    try:
        import cv2
        import numpy as np
        from skimage import data
    except ImportError:
        return None
    sys.path.insert(0, str(REPO))
    from edge.vision.blink import INPUT_SIZE, crop_transform

    corners = np.zeros((468, 2))
    corners[[33, 133]] = (194.9, 100.1), (213.3, 102.7)
    m = crop_transform(corners, 0)
    eye = cv2.warpAffine(data.astronaut(), m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
    np.savez(out, in_0=eye[None].astype(np.float32) / 255.0)
    return out


def _run_child(
    python: str,
    backend: str,
    model_path: Path,
    sha256: str | None,
    out: Path,
    inputs: Path | None,
    args: argparse.Namespace,
) -> tuple[dict | None, str | None]:
    """Run one model in one runtime. Returns (meta, None) or (None, error text)."""
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        "--backend",
        backend,
        "--model",
        str(model_path),
        "--out",
        str(out),
        "--threads",
        str(args.threads),
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--seed",
        str(args.seed),
    ]
    if sha256:
        cmd += ["--sha256", sha256]
    if inputs is not None:
        cmd += ["--inputs", str(inputs)]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the child finds edge.runtime itself; keep the venvs apart
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {args.timeout:g} s"
    except OSError as exc:
        return None, f"cannot start {python}: {exc}"
    if proc.returncode != 0:
        if proc.returncode < 0:
            import signal

            try:
                what = f"crashed ({signal.Signals(-proc.returncode).name})"
            except ValueError:
                what = f"crashed (signal {-proc.returncode})"
        else:
            what = f"failed (exit {proc.returncode})"
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        return None, what + (": " + lines[-1] if lines else "")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]), None
    except (json.JSONDecodeError, IndexError):
        return None, f"printed no result: {proc.stdout[-300:]!r}"


def _is_embedder(role: str | None) -> bool:
    role = (role or "").lower()
    return "embed" in role or role in ("recognizer", "recognition", "feature")


def _compare(meta_a: dict, meta_b: dict, npz_a: Path, npz_b: Path, role: str | None) -> list[dict]:
    import numpy as np

    rows = []
    quantized_graph = meta_a["quantized"] or meta_b["quantized"]
    names_b = [o["name"] for o in meta_b["outputs"]]
    with np.load(npz_a) as data_a, np.load(npz_b) as data_b:
        for i, spec in enumerate(meta_a["outputs"]):
            row = {
                "name": spec["name"],
                "shape": spec["shape"],
                "max_abs_diff": None,
                "tol": None,
                "cosine": None,
                "ok": False,
                "error": None,
            }
            rows.append(row)
            if spec["name"] not in names_b:
                row["error"] = f"runtime B has no output {spec['name']!r} (it has {names_b})"
                continue
            a = data_a[f"out_{i}"].astype(np.float64)
            b = data_b[f"out_{names_b.index(spec['name'])}"].astype(np.float64)
            if a.shape != b.shape:
                row["error"] = f"shapes differ: {a.shape} vs {b.shape}"
                continue
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                row["error"] = "non-finite values in the output"
                continue
            peak = float(np.abs(a).max()) if a.size else 0.0
            if spec["dtype"] in QUANTIZED_DTYPES and spec["scale"]:
                tol = QUANT_STEPS * spec["scale"]
            elif quantized_graph:
                tol = INT8_RANGE_STEPS * 2.0 * max(peak, 1e-6) / 255.0
            else:
                tol = FLOAT_RTOL * max(1.0, peak)
            row["max_abs_diff"] = float(np.abs(a - b).max()) if a.size else 0.0
            row["tol"] = tol
            row["ok"] = row["max_abs_diff"] <= tol
            if _is_embedder(role) and a.size:
                rows_a = a.reshape(a.shape[0] if a.ndim > 1 else 1, -1)
                rows_b = b.reshape(rows_a.shape)
                norms = np.linalg.norm(rows_a, axis=1) * np.linalg.norm(rows_b, axis=1)
                cos = np.sum(rows_a * rows_b, axis=1) / np.maximum(norms, 1e-12)
                row["cosine"] = float(cos.min())
                if quantized_graph:
                    row["ok"] = row["cosine"] >= COSINE_QUANT
                else:
                    row["ok"] = row["ok"] and row["cosine"] >= COSINE_FLOAT
    return rows


def check(args: argparse.Namespace) -> dict:
    models_dir = Path(args.models_dir).resolve()
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entries = manifest.get("models", {})
    if args.only:
        unknown = sorted(set(args.only) - set(entries))
        if unknown:
            raise SystemExit(f"check_runtimes: not in {manifest_path}: {unknown}")
        entries = {k: v for k, v in entries.items() if k in args.only}
    tflite_python = Path(args.tflite_python)
    report = {
        "models_dir": str(models_dir),
        "threads": args.threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "seed": args.seed,
        "tolerances": TOLERANCE_TEXT,
        "backends": {"A": None, "B": None},
        "models": [],
        "ok": True,
    }
    if not tflite_python.exists():
        report["ok"] = False
        report["error"] = (
            f"{tflite_python} not found: runtime B (tflite-runtime 2.14) is not installed; run `bash scripts/setup.sh`"
        )
        return report
    if not entries:
        report["ok"] = False
        report["error"] = f"{manifest_path} lists no models"
        return report
    with tempfile.TemporaryDirectory(prefix="check_runtimes_") as tmp:
        for key, info in entries.items():
            path = models_dir / info["file"]
            result = {
                "key": key,
                "file": info["file"],
                "role": info.get("role"),
                "variant": info.get("variant"),
                "quantized": None,
                "ms": {"A": None, "B": None},
                "outputs": [],
                "errors": [],
                "ok": False,
            }
            report["models"].append(result)
            npz_a, npz_b = Path(tmp, f"{key}_A.npz"), Path(tmp, f"{key}_B.npz")
            face = _face_input(info, Path(tmp, f"{key}_in.npz"))
            meta_a, err_a = _run_child(sys.executable, "ai-edge-litert", path, info.get("sha256"), npz_a, face, args)
            meta_b, err_b = _run_child(
                str(tflite_python), "tflite-runtime", path, info.get("sha256"), npz_b, npz_a if meta_a else None, args
            )
            for side, meta, err in (("A", meta_a, err_a), ("B", meta_b, err_b)):
                if meta:
                    result["ms"][side] = meta["ms"]
                    report["backends"][side] = {k: meta[k] for k in ("backend", "version", "python", "numpy")}
                else:
                    name = "ai-edge-litert" if side == "A" else "tflite-runtime"
                    result["errors"].append(f"{name} {err}")
            if meta_a and meta_b:
                result["quantized"] = meta_a["quantized"] or meta_b["quantized"]
                result["outputs"] = _compare(meta_a, meta_b, npz_a, npz_b, info.get("role"))
                result["ok"] = bool(result["outputs"]) and all(o["ok"] for o in result["outputs"])
                result["errors"] += [f"{o['name']}: {o['error']}" for o in result["outputs"] if o["error"]]
            report["ok"] = report["ok"] and result["ok"]
    return report


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict) -> None:
    a, b = report["backends"]["A"], report["backends"]["B"]

    def describe(side: dict | None, fallback: str) -> str:
        if not side:
            return fallback
        return f"{side['backend']} {side['version']} (python {side['python']}, numpy {side['numpy']})"

    print(f"A = {describe(a, 'ai-edge-litert')}")
    print(f"B = {describe(b, 'tflite-runtime')}")
    print(
        f"models: {report['models_dir']}; {report['threads']} thread; ms = median of "
        f"{report['runs']} runs after {report['warmup']} warm-up"
    )
    print(f"tolerances: {report['tolerances']}")
    if report.get("error"):
        print(f"ERROR: {report['error']}")
        return
    header = ("model", "output", "shape", "max|A-B|", "tol", "cosine", "result", "A ms", "B ms")
    lines = [header]
    for m in report["models"]:
        ms_a, ms_b = _fmt(m["ms"]["A"], ".2f"), _fmt(m["ms"]["B"], ".2f")
        if not m["outputs"]:
            lines.append((m["key"], "-", "-", "-", "-", "-", "FAIL", ms_a, ms_b))
        for i, o in enumerate(m["outputs"]):
            lines.append(
                (
                    m["key"] if i == 0 else "",
                    o["name"],
                    "x".join(str(d) for d in o["shape"]),
                    _fmt(o["max_abs_diff"], ".2e"),
                    _fmt(o["tol"], ".1e"),
                    _fmt(o["cosine"], ".6f"),
                    "ok" if o["ok"] else "FAIL",
                    ms_a if i == 0 else "",
                    ms_b if i == 0 else "",
                )
            )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    for m in report["models"]:
        for err in m["errors"]:
            print(f"FAIL {m['key']} ({m['file']}): {err}")
    failed = [m["key"] for m in report["models"] if not m["ok"]]
    if failed:
        print(f"check_runtimes: FAILED for {len(failed)} of {len(report['models'])} models: {', '.join(failed)}")
    else:
        print(f"check_runtimes: all {len(report['models'])} models load and agree in both runtimes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models-dir",
        default=os.environ.get("EDGE_MODELS_DIR") or str(REPO / "models"),
        help="folder with manifest.json (default: $EDGE_MODELS_DIR or the repo's models/)",
    )
    parser.add_argument(
        "--tflite-python",
        default=str(DEFAULT_TFLITE_PYTHON),
        help="python of the tflite-runtime 2.14 venv (default: %(default)s)",
    )
    parser.add_argument("--only", nargs="+", metavar="KEY", help="check only these manifest keys")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model and runtime")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model and runtime")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    # child mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    report = check(args)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
