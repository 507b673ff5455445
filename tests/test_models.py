"""The shipped model set: manifest complete and true, defaults faithful to their float source."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edge.runtime import load_manifest, model_info, models_dir, open_model, sha256_of
from edge.vision.align import align, points_from_detection
from edge.vision.detector import FaceDetector
from edge.vision.embedder import Embedder

FAMILIES = {"detector_short", "detector_full", "face_mesh", "mobilefacenet", "fr_feature"}
EMBEDDERS = ("mobilefacenet", "fr_feature")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()["models"]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.open("both")


def _crop(detector, rgb) -> np.ndarray:
    faces = detector.detect(rgb)
    assert faces, "no face found"
    return align(rgb, points_from_detection(max(faces, key=lambda f: f.area)))


def test_every_family_has_exactly_one_default_under_its_own_key(manifest):
    defaults = {info["family"] for info in manifest.values() if info["default"]}
    assert defaults == FAMILIES
    for family in FAMILIES:
        assert manifest[family]["default"] and manifest[family]["family"] == family


def test_manifest_records_provenance_checksum_and_input_spec(manifest):
    for key, info in manifest.items():
        src = info["source"]
        assert src["registry"] in ("PyPI", "npm") and src["package"] and src["version"], key
        assert info["license"], key
        assert info["sha256"] == sha256_of(models_dir() / info["file"]), f"{key}: sha256 does not match its file"
        spec = info["input"]
        for field in ("shape", "layout", "colour", "normalisation", "mean", "std"):
            assert field in spec, f"{key}: input spec lacks {field}"
        assert info["outputs"], key
        assert info["quantization"], key


def test_each_embedder_ships_float_reference_default_and_full_int8(manifest):
    for family in EMBEDDERS:
        variants = {info["variant"] for info in manifest.values() if info["family"] == family}
        assert {"float32", "int8"} <= variants
        assert manifest[family]["variant"] in ("int8_weights", "float16"), "the default must have quantized weights"


def test_recorded_parity_of_defaults_meets_the_acceptance(manifest):
    for family in EMBEDDERS:
        q = manifest[family]["parity"]
        ref = manifest[f"{family}_float32"]["parity"]
        assert q["crops"] >= 500
        assert q["cosine_to_float_mean"] >= 0.99 and q["cosine_to_float_min"] >= 0.97
        assert ref["pair_accuracy_10fold"] - q["pair_accuracy_10fold"] <= 0.003
        speed = manifest[family]["ms_per_inference_single_thread"]["ai-edge-litert"]
        ref_speed = manifest[f"{family}_float32"]["ms_per_inference_single_thread"]["ai-edge-litert"]
        assert speed <= ref_speed * 1.05


@pytest.mark.parametrize("family", EMBEDDERS)
def test_default_embedder_follows_float_on_real_faces(family, detector, astronaut_rgb, camera_rgb):
    quantized = Embedder.open(family)
    reference = Embedder.open(f"{family}_float32")
    crops = np.stack([_crop(detector, astronaut_rgb), _crop(detector, np.ascontiguousarray(astronaut_rgb[:, ::-1]))])
    q, f = quantized.infer(crops), reference.infer(crops)
    assert q.shape == (2, model_info(family)["outputs"][0]["shape"][-1])
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    assert np.all(Embedder.match(q, f) >= 0.98)
    # The same face mirrored is far closer than another person.
    other = quantized.infer(_crop(detector, camera_rgb))[0] if detector.detect(camera_rgb) else None
    same = float(Embedder.match(q[0], q[1]))
    assert same > 0.5
    if other is not None:
        assert float(Embedder.match(q[0], other)) < same - 0.3


def test_default_embedders_on_lfw_sample(shared_dir, detector):
    """100 lfw-dev photos: every default embedder within the acceptance of its float source."""
    lfw = shared_dir / "lfw-dev"
    import cv2

    with open(lfw / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    rng = np.random.default_rng(7)
    crops = []
    for i in rng.permutation(len(rows))[:100]:
        rgb = cv2.cvtColor(cv2.imread(str(lfw / rows[i]["image"])), cv2.COLOR_BGR2RGB)
        if detector.detect(rgb):
            crops.append(_crop(detector, rgb))
    crops = np.stack(crops)
    assert len(crops) >= 95
    for family in EMBEDDERS:
        cos = Embedder.match(Embedder.open(family).infer(crops), Embedder.open(f"{family}_float32").infer(crops))
        assert cos.mean() >= 0.99 and cos.min() >= 0.97, (family, cos.mean(), cos.min())


def test_full_int8_variants_load_and_stay_close(detector, astronaut_rgb):
    crop = _crop(detector, astronaut_rgb)
    for family in EMBEDDERS:
        model = open_model(f"{family}_int8")
        assert model.outputs, family
        int8 = Embedder.open(f"{family}_int8").infer(crop)[0]
        cos = float(Embedder.match(int8, Embedder.open(f"{family}_float32").infer(crop)[0]))
        assert cos > 0.9, (family, cos)
