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


def _sface_like_onnx(rng):
    """A tiny ONNX model with every construct of SFace's int8bq file: input normalisation by
    scalars, block-quantized weights (DequantizeLinear with block_size, opset 21) reshaped to
    Conv weights, Conv + BatchNormalization + PRelu, a stride-2 depthwise Conv, a free-standing
    BatchNormalization, Dropout, Flatten + Gemm, and a BatchNormalization on the output."""
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def quantized(name, w, block):
        flat = w.reshape(w.shape[0], -1)
        blocks = -(-flat.shape[1] // block)
        scale = np.abs(flat).max(axis=1, keepdims=True).repeat(blocks, 1).astype(np.float32) / 100
        zero = rng.integers(-20, 20, scale.shape).astype(np.int8)
        q = np.clip(
            np.round(flat / scale.repeat(block, 1)[:, : flat.shape[1]]) + zero.repeat(block, 1)[:, : flat.shape[1]],
            -128,
            127,
        )
        const(f"{name}_q", q.astype(np.int8))
        const(f"{name}_s", scale)
        const(f"{name}_z", zero)
        const(f"{name}_shape", np.array(w.shape, np.int64))
        nodes.append(
            helper.make_node(
                "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"], axis=1, block_size=block
            )
        )
        nodes.append(helper.make_node("Reshape", [f"{name}_dq", f"{name}_shape"], [name]))
        return name

    def bn(x, c, out, eps=1e-3):
        names = [
            const(f"{out}_{k}", v.astype(np.float32))
            for k, v in (
                ("g", rng.uniform(0.5, 1.5, c)),
                ("b", rng.normal(0, 0.2, c)),
                ("m", rng.normal(0, 0.2, c)),
                ("v", rng.uniform(0.5, 2, c)),
            )
        ]
        nodes.append(helper.make_node("BatchNormalization", [x, *names], [out], epsilon=eps))
        return out

    const("mean", np.array([127.5], np.float32))
    const("scale", np.array([1 / 128], np.float32))
    nodes.append(helper.make_node("Sub", ["data", "mean"], ["centred"]))
    nodes.append(helper.make_node("Mul", ["centred", "scale"], ["normed"]))
    w1 = quantized("w1", rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), 16)
    nodes.append(
        helper.make_node("Conv", ["normed", w1], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    )
    bn("c1", 8, "b1")
    nodes.append(
        helper.make_node("PRelu", ["b1", const("a1", rng.uniform(0, 0.3, (8, 1, 1)).astype(np.float32))], ["p1"])
    )
    w2 = quantized("w2", rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32), 9)
    nodes.append(
        helper.make_node("Conv", ["p1", w2], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=8)
    )
    bn("c2", 8, "b2")
    nodes.append(
        helper.make_node("PRelu", ["b2", const("a2", rng.uniform(0, 0.3, (8, 1, 1)).astype(np.float32))], ["p2"])
    )
    bn("p2", 8, "b3", eps=2e-5)
    nodes.append(helper.make_node("Dropout", ["b3", const("ratio", np.array(0.4, np.float32))], ["d"]))
    nodes.append(helper.make_node("Flatten", ["d"], ["f"]))
    fc = quantized("fc", rng.normal(0, 0.1, (6, 8 * 4 * 4)).astype(np.float32), 32)
    nodes.append(
        helper.make_node("Gemm", ["f", fc, const("fc_b", rng.normal(0, 0.1, 6).astype(np.float32))], ["g"], transB=1)
    )
    bn("g", 6, "out", eps=2e-5)
    graph = helper.make_graph(
        nodes,
        "sface_like",
        [
            helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("unused_weight", TensorProto.FLOAT, [8, 3, 3, 3]),
        ],  # as SFace's file has
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 6])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_onnx_with_batchnorm_block_quantization_and_gemm_converts_exactly(tmp_path):
    """The SFace route (scripts/build/build_models.py): the converted graph, fed (x - 127.5) / 128,
    computes what the ONNX model computes on raw pixels (needs the `onnx` package of the build)."""
    pytest.importorskip("onnx", reason="onnx is part of the model build's toolchain, not of the test extra")
    from modelkit.convert import graph_from_onnx
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(3)
    model = _sface_like_onnx(rng)
    g = graph_from_onnx(model, "t")
    assert g.normalisation == (127.5, 128.0)
    assert g.input_shape == (1, 8, 8, 3)
    assert {op.kind for op in g.ops} == {"conv", "prelu", "pad", "dwconv", "reshape"}  # BN, Dropout, Gemm folded
    raw = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    want = ReferenceEvaluator(model).run(
        None, {"data": raw.transpose(0, 3, 1, 2), "unused_weight": np.zeros((8, 3, 3, 3), np.float32)}
    )[0]
    x = (raw - 127.5) / 128.0
    np.testing.assert_allclose(run_numpy(g, x), want, rtol=1e-4, atol=1e-4)
    path = tmp_path / "t.tflite"
    path.write_bytes(to_tflite(g, float16_weights=True))
    np.testing.assert_allclose(Model(path).run(x)["embedding"], want, rtol=2e-2, atol=2e-2)


def _headed_graph(rng) -> Graph:
    """A small CNN ending like SFace: a convolution over the whole last feature map + reshape."""
    g = Graph(name="h", input_name="input", input_shape=(1, 8, 8, 3), output_name="embedding")
    w = lambda *s: rng.normal(0, 0.3, s).astype(np.float32)  # noqa: E731
    x = g.add("conv", ["input", g.const("c1/w", w(16, 3, 3, 3)), g.const("c1/b", w(16))], "c1", stride=2, padding=SAME)
    x = g.add("prelu", [x, g.const("p1/a", w(1, 1, 16))], "p1")
    x = g.add("conv", [x, g.const("c2/w", w(24, 1, 1, 16)), g.const("c2/b", w(24))], "c2", stride=1, padding=VALID)
    x = g.add("prelu", [x, g.const("p2/a", w(1, 1, 24))], "p2")
    x = g.add("conv", [x, g.const("head/w", w(6, 4, 4, 24)), g.const("head/b", w(6))], "head", stride=1, padding=VALID)
    g.add("reshape", [x, g.const("shape", np.array([1, 6], np.int32))], "embedding")
    return g


def _as_fc(g: Graph) -> Graph:
    """The same function with its head written as a FULLY_CONNECTED layer."""
    head = g.ops[-2]
    w = g.consts.pop("head/w")
    g.consts.pop("shape")
    g.consts["head/w"] = w.reshape(w.shape[0], -1)
    g.ops = g.ops[:-2]
    g.add("fc", [head.inputs[0], "head/w", "head/b"], "embedding")
    return g


def _cosines(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fully_connected_and_int8_weight_modes_match_numpy_reference(tmp_path):
    """Each int8 mode computes what the float graph computes (int8 rounding aside), in LiteRT,
    and is written as the mode says: DEQUANTIZE-fed int8, int8 read by the op, UINT8-typed."""
    from ai_edge_litert import schema_py_generated as schema

    rng = np.random.default_rng(4)
    g = _as_fc(_headed_graph(rng))
    xs = rng.uniform(-1, 1, (8, 1, 8, 8, 3)).astype(np.float32)
    want = np.concatenate([run_numpy(g, x) for x in xs])
    conv_head = _headed_graph(np.random.default_rng(4))
    np.testing.assert_allclose(want, np.concatenate([run_numpy(conv_head, x) for x in xs]), rtol=1e-5, atol=1e-5)
    for modes in (
        {},
        {"c2/w": "dequantize", "head/w": "hybrid_uint8"},
        {"c1/w": "hybrid", "c2/w": "hybrid", "head/w": "hybrid_uint8"},
    ):
        data = to_tflite(g, float16_weights=True, int8_weights=modes)
        path = tmp_path / "m.tflite"
        path.write_bytes(data)
        model = Model(path)
        got = np.concatenate([model.run(x)["embedding"] for x in xs])
        assert _cosines(got, want).min() >= 0.995, modes
        written = read_model(data)
        sub = written.subgraphs[0]
        types = {t.name.decode(): t.type for t in sub.tensors}
        assert {oc.version for oc in written.operatorCodes} == {1}
        for name, mode in modes.items():
            if mode == "dequantize":
                assert types[name] == schema.TensorType.FLOAT32 and types[name + "/int8"] == schema.TensorType.INT8
            elif mode == "hybrid":
                t = next(t for t in sub.tensors if t.name.decode() == name)
                assert t.type == schema.TensorType.INT8 and len(t.quantization.scale) == t.shape[0]
            else:
                t = next(t for t in sub.tensors if t.name.decode() == name)
                assert t.type == schema.TensorType.UINT8 and len(t.quantization.scale) == 1


def test_int8_modes_a_runtime_would_compute_wrongly_are_refused():
    g = _as_fc(_headed_graph(np.random.default_rng(5)))
    with pytest.raises(ValueError, match="cannot be written"):
        to_tflite(g, int8_weights={"head/w": "hybrid"})  # tflite-runtime 2.14 drops per-channel scales
    with pytest.raises(ValueError, match="cannot be written"):
        to_tflite(g, int8_weights={"c2/w": "hybrid_uint8"})
    with pytest.raises(ValueError, match="not a weight tensor"):
        to_tflite(g, int8_weights={"p1/a": "hybrid"})


def test_int8_modes_agree_in_tflite_runtime_2_14(tmp_path):
    """tflite-runtime 2.14 runs the compact formats (hybrid per-channel convolution, UINT8-typed
    hybrid fully-connected) to the same function: the old runtime's own kernels, not XNNPACK's."""
    python = Path(__file__).resolve().parent.parent / ".venv-tflite214" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{python} is absent (scripts/setup.sh makes it)")
    import subprocess

    rng = np.random.default_rng(6)
    g = _as_fc(_headed_graph(rng))
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(g, int8_weights={"c1/w": "hybrid", "c2/w": "hybrid", "head/w": "hybrid_uint8"}))
    xs = rng.uniform(-1, 1, (8, 1, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", xs)
    code = (
        "import sys, numpy as np; from tflite_runtime.interpreter import Interpreter\n"
        "it = Interpreter(model_path=sys.argv[1], num_threads=1); it.allocate_tensors()\n"
        "i, o = it.get_input_details()[0]['index'], it.get_output_details()[0]['index']\n"
        "out = []\n"
        "for x in np.load(sys.argv[2]):\n"
        "    it.set_tensor(i, x); it.invoke(); out.append(it.get_tensor(o)[0].copy())\n"
        "np.save(sys.argv[3], np.stack(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    want = np.concatenate([run_numpy(g, x) for x in xs])
    old = np.load(tmp_path / "y.npy")
    new = np.concatenate([Model(path).run(x)["embedding"] for x in xs])
    assert _cosines(old, want).min() >= 0.995 and _cosines(new, want).min() >= 0.995
    assert _cosines(old, new).min() >= 0.995


def test_factored_head_is_exact_at_full_rank_and_fits_the_data_below_it(tmp_path):
    """modelkit.compact: head_inputs are what the head reads; factor_head at full rank is the same
    function, and at lower rank keeps the outputs on the features it was fitted to."""
    from modelkit.compact import compact_int8_weights, factor_head, head_inputs

    rng = np.random.default_rng(7)
    g = _headed_graph(rng)
    crops = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    feats = head_inputs(g, crops, 127.5, 128.0)
    assert feats.shape == (40, 4, 4, 24)
    body = Graph(g.name, g.input_name, g.input_shape, "p2", g.consts, g.ops[:-2])
    np.testing.assert_allclose(feats[0], run_numpy(body, (crops[:1] - 127.5) / 128.0)[0], rtol=1e-4, atol=1e-4)

    x = (crops.astype(np.float32) - 127.5) / 128.0
    want = np.concatenate([run_numpy(g, c[None]) for c in x])
    full, fit = factor_head(g, feats, 24)
    assert fit["rank"] == 24 and fit["energy_kept_on_calibration"] == pytest.approx(1.0)
    assert [op.kind for op in full.ops[-2:]] == ["conv", "fc"]
    np.testing.assert_allclose(np.concatenate([run_numpy(full, c[None]) for c in x]), want, rtol=1e-4, atol=1e-4)
    small, fit = factor_head(g, feats, 12)
    assert fit["head_weights_after"] == 12 * 24 + 6 * 16 * 12 < fit["head_weights_before"]
    got = np.concatenate([run_numpy(small, c[None]) for c in x])
    # Fitted to the data: on those features it beats the plain truncated SVD of the same rank.
    w = g.consts["head/w"].astype(np.float64).reshape(6, -1)
    u, s, vt = np.linalg.svd(w.reshape(-1, 24), full_matrices=False)
    plain = ((u[:, :12] * s[:12]) @ vt[:12]).reshape(6, -1)
    flat = feats.reshape(len(feats), -1).astype(np.float64)
    assert np.sum((got - want) ** 2) < np.sum((flat @ (plain - w).T) ** 2)
    assert compact_int8_weights(small, 300) == {"c1/w": "hybrid", "c2/w": "hybrid", "embedding/weights": "hybrid_uint8"}
    modes = compact_int8_weights(small, 280)  # 432, 384 and 288 weights
    assert modes == {
        "c1/w": "hybrid",
        "c2/w": "hybrid",
        "embedding/reduce/weights": "hybrid",
        "embedding/weights": "hybrid_uint8",
    }
    path = tmp_path / "c.tflite"
    path.write_bytes(to_tflite(small, float16_weights=True, int8_weights=modes))
    lite = np.concatenate([Model(path).run(c[None])["embedding"] for c in x])
    assert _cosines(lite, got).min() >= 0.99


def _minifasnet_like_onnx(rng, opset: int):
    """fr_liveness's structure in miniature: conv, a squeeze-and-excitation gate (GlobalAveragePool,
    Relu, Sigmoid, Mul), a residual add, a whole-map depthwise conv, PyTorch's x.view(x.size(0), -1)
    (Shape/Gather/Unsqueeze/Concat/Reshape) and MatMul -> BatchNormalization -> MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    w = lambda *s: rng.normal(0, 0.3, s).astype(np.float32)  # noqa: E731
    n = helper.make_node
    nodes = [
        n(
            "Conv",
            ["data", const("w1", w(8, 3, 3, 3)), const("b1", w(8))],
            ["c1"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[2, 2],
        ),
        n("PRelu", ["c1", const("a1", rng.uniform(0, 0.3, (8, 1, 1)).astype(np.float32))], ["p1"]),
        n("GlobalAveragePool", ["p1"], ["gap"]),
        n("Conv", ["gap", const("se1", w(4, 8, 1, 1)), const("se1b", w(4))], ["s1"], kernel_shape=[1, 1]),
        n("Relu", ["s1"], ["r1"]),
        n("Conv", ["r1", const("se2", w(8, 4, 1, 1)), const("se2b", w(8))], ["s2"], kernel_shape=[1, 1]),
        n("Sigmoid", ["s2"], ["gate"]),
        n("Mul", ["p1", "gate"], ["gated"]),
        n("Add", ["p1", "gated"], ["res"]),
        n("Conv", ["res", const("dw", w(8, 1, 4, 4)), const("dwb", w(8))], ["d"], kernel_shape=[4, 4], group=8),
        n("Shape", ["d"], ["shape"]),
        n("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        n("Gather", ["shape", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch"], ["batch1"], axes=[0]),
        n("Concat", ["batch1", const("minus1", np.array([-1], np.int64))], ["target"], axis=0),
        n("Reshape", ["d", "target"], ["flat"]),
        n("MatMul", ["flat", const("fc1", w(8, 6))], ["m1"]),
        n(
            "BatchNormalization",
            [
                "m1",
                const("g", rng.uniform(0.5, 1.5, 6).astype(np.float32)),
                const("be", w(6)),
                const("mu", w(6)),
                const("var", rng.uniform(0.5, 1.5, 6).astype(np.float32)),
            ],
            ["bn"],
            epsilon=1e-5,
        ),
        n("MatMul", ["bn", const("fc2", w(6, 3))], ["out"]),
    ]
    if opset >= 13:  # Unsqueeze takes its axes as an input from opset 13
        nodes[13] = n("Unsqueeze", ["batch", const("axes", np.array([0], np.int64))], ["batch1"])
    graph = helper.make_graph(
        nodes,
        "minifasnet_like",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_onnx_classifier_with_se_blocks_and_matmul_converts_exactly(tmp_path):
    """The fr_liveness route: SE gates, a computed flatten and MatMul + BatchNormalization convert to
    MEAN/RELU/LOGISTIC/MUL/FULLY_CONNECTED and compute what the ONNX model computes on raw pixels.
    (Checked against onnx's reference evaluator at opset 15: at opset 9, fr_liveness's own, its
    BatchNormalization on a (1, n) input disagrees with onnxruntime -- the build checks with onnxruntime.)"""
    pytest.importorskip("onnx", reason="onnx is part of the model build's toolchain, not of the test extra")
    from modelkit.convert import graph_from_onnx
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(16)
    model = _minifasnet_like_onnx(rng, opset=15)
    g = graph_from_onnx(model, "t", output_name="logits")
    assert g.normalisation is None and g.output_name == "logits"
    assert {op.kind for op in g.ops} == {
        "conv",
        "prelu",
        "pad",
        "mean",
        "relu",
        "logistic",
        "mul",
        "add",
        "dwconv",
        "reshape",
        "fc",
    }
    raw = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"data": raw.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(run_numpy(g, raw), want, rtol=1e-4, atol=1e-4)
    path = tmp_path / "t.tflite"
    path.write_bytes(to_tflite(g))
    assert {oc.version for oc in read_model(path.read_bytes()).operatorCodes} == {1}
    np.testing.assert_allclose(Model(path).run(raw)["logits"], want, rtol=1e-4, atol=1e-4)
    # The opset-9 spelling (Unsqueeze with an `axes` attribute) gives the same graph.
    g9 = graph_from_onnx(_minifasnet_like_onnx(np.random.default_rng(16), opset=9), "t", output_name="logits")
    np.testing.assert_allclose(run_numpy(g9, raw), run_numpy(g, raw), rtol=1e-6, atol=1e-6)
