"""The build-time graph writer (scripts/build/modelkit): every op it writes must compute
what the numpy reference computes, in the real LiteRT interpreter. And modelkit.compare,
which the build and scripts/eval/eval_detector.py use to compare two detectors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts" / "build"))  # modelkit

from modelkit.compare import match_iou, match_keypoints  # noqa: E402
from modelkit.graph import SAME, VALID, Graph, read_model, run_numpy, to_tflite  # noqa: E402

from edge.runtime import Model  # noqa: E402
from edge.vision.detector import Detection  # noqa: E402


def _graph(rng) -> Graph:
    """A small residual CNN using every op kind the converters emit."""
    g = Graph(name="t", input_name="input", input_shape=(1, 16, 16, 3), output_name="embedding")
    w = lambda *s: rng.normal(0, 0.3, s).astype(np.float32)  # noqa: E731
    x = g.add("conv", ["input", g.const("c1/w", w(8, 3, 3, 3)), g.const("c1/b", w(8))], "c1", stride=2, padding=SAME)
    x = g.add("prelu", [x, g.const("p1/a", w(1, 1, 8))], "p1")
    y = g.add("pad", [x, g.const("pad", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))], "padded")
    y = g.add("dwconv", [y, g.const("d1/w", w(1, 3, 3, 8)), g.const("d1/b", w(8))], "d1", stride=1, padding=VALID)
    x = g.add("add", [x, y], "res")
    x = g.add("dwconv", [x, g.const("d2/w", w(1, 8, 8, 8)), g.const("d2/b", w(8))], "d2", stride=1, padding=VALID)
    x = g.add("conv", [x, g.const("c2/w", w(5, 1, 1, 8)), g.const("c2/b", w(5))], "c2", stride=1, padding=VALID)
    g.add("reshape", [x, g.const("shape", np.array([1, 5], np.int32))], "embedding")
    return g


@pytest.mark.parametrize("float16", [False, True])
def test_written_model_matches_numpy_reference(tmp_path, float16):
    rng = np.random.default_rng(0)
    g = _graph(rng)
    path = tmp_path / "t.tflite"
    path.write_bytes(to_tflite(g, float16_weights=float16))
    model = Model(path)
    assert model.inputs[0].shape == (1, 16, 16, 3)
    assert model.outputs[0].shape == (1, 5)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
        got = model.run(x)["embedding"]
        want = run_numpy(g, x)
        tol = 2e-2 if float16 else 1e-4
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_written_ops_are_version_1_for_old_runtimes():
    """tflite-runtime 2.14 must load what we write: every op code at version 1."""
    data = to_tflite(_graph(np.random.default_rng(1)), float16_weights=True)
    model = read_model(data)
    assert model.operatorCodes, "no ops written"
    assert {oc.version for oc in model.operatorCodes} == {1}
    assert model.signatureDefs[0].signatureKey == b"serving_default"


def test_match_iou_and_keypoints():
    kps = np.array([[0, 0], [10, 0], [5, 5], [5, 8], [-2, 0], [12, 0]], np.float32)
    ref = [Detection((0, 0, 10, 10), 0.9, kps), Detection((100, 100, 50, 50), 0.5, kps)]
    assert match_iou(ref, ref) == pytest.approx(1.0)
    assert match_iou([], []) == 1.0
    assert match_iou(ref, []) == 0.0 and match_iou([], ref) == 0.0
    # the candidate's best match for the top reference face is used, whatever its rank
    moved = [Detection((100, 100, 50, 50), 0.99, kps), Detection((1, 0, 10, 10), 0.4, kps + [1, 0])]
    assert match_iou(ref, moved) == pytest.approx(90 / 110)
    assert match_keypoints(ref, moved, relative=False) == pytest.approx(1.0)
    assert match_keypoints(ref, moved) == pytest.approx(0.1)
    assert np.isnan(match_keypoints(ref, []))
