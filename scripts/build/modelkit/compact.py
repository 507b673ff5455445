"""A compact variant of a large-headed embedder (SFace) for the appliance's memory budget.

SFace has 9.6 M weights, 6.4 M of them in its head: the flatten + fully-connected layer over the
last 7x7x1024 feature map (a 7x7 convolution here). XNNPACK expands float16 (and DEQUANTIZE-fed
int8) weights to float32 when it loads a model, and the memory-mapped file stays resident too, so
in LiteRT the float16 file costs ~62 MB of resident memory (measured beside MobileFaceNet); the
compact variant ~18 MB, from three changes:

1. The head is factorised to rank r with the data: W (out*h*w x C) ~ A B, where B (r x C) is a
   1x1 convolution C -> r and A a fully-connected layer over the reduced h x w x r map. The
   factors minimise the error of W x over the features x the head actually sees (whitened SVD:
   SVD of W C^1/2, with C the channel covariance of the head's input on calibration crops), not
   the error of W itself (plain SVD at rank 384: min cosine 0.98 on 420 lfw crops; this: 0.995).
   On the 3,811 lfw-dev evaluation crops, float factors of rank 384 / 512 / 576 / 640 lose
   0.23 / 0.18 / 0.11 / 0.09 points of TAR at FAR 1e-4 (2,000 calibration crops instead of 400
   did not do better).
2. Convolutions with many weights (the 1x1 ones of the last stages and B) get int8 weights per
   output channel, read by the convolution itself with its input quantized on the fly (dynamic
   range). XNNPACK runs these in int8 and keeps int8 packed weights. The depthwise and small
   convolutions stay float16: int8 weights there are what broke the all-int8-weights variant
   (min cosine 0.88).
3. A is written in TFLite's original hybrid format (int8 values in a UINT8 tensor, one scale),
   which the built-in FULLY_CONNECTED of both runtimes reads in place from the mapped file and
   XNNPACK does not take, so it is resident once (file pages) rather than also packed.
   (Per-channel int8 here would be run by XNNPACK in LiteRT, but tflite-runtime 2.14's hybrid
   FULLY_CONNECTED ignores per-channel scales.)

Without 1 (2 and 3 alone) `edge run --profile sface` peaked at 200.3 MB, with TAR unchanged.
"""

from __future__ import annotations

import copy

import numpy as np

from .graph import VALID, Graph, Op, infer_shapes, to_tflite


def _head(graph: Graph) -> tuple[Op, Op]:
    """The final convolution over the whole feature map and the reshape of its 1x1 output."""
    conv, reshape = graph.ops[-2], graph.ops[-1]
    if conv.kind != "conv" or reshape.kind != "reshape" or reshape.inputs[0] != conv.output:
        raise ValueError(f"{graph.name}: does not end in a whole-map convolution + reshape")
    x = infer_shapes(graph)[conv.inputs[0]]
    w = graph.consts[conv.inputs[1]]
    if (x[1], x[2]) != (w.shape[1], w.shape[2]) or conv.params["padding"] != VALID:
        raise ValueError(f"{graph.name}: the last convolution does not cover its whole input map")
    return conv, reshape


def head_inputs(graph: Graph, crops: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The feature maps (n, h, w, C) the head of `graph` reads, for uint8 RGB crops (n, H, W, 3)."""
    from ai_edge_litert.interpreter import Interpreter

    conv, _ = _head(graph)
    body = copy.copy(graph)
    body.ops = graph.ops[:-2]
    body.output_name = conv.inputs[0]
    used = {i for op in body.ops for i in op.inputs}
    body.consts = {k: v for k, v in graph.consts.items() if k in used}
    it = Interpreter(model_content=to_tflite(body), num_threads=1)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    feats = []
    for crop in crops:
        it.set_tensor(inp["index"], ((crop[None].astype(np.float32) - mean) / std).astype(np.float32))
        it.invoke()
        feats.append(it.get_tensor(out["index"])[0].copy())
    return np.stack(feats)


def factor_head(graph: Graph, features: np.ndarray, rank: int) -> tuple[Graph, dict]:
    """`graph` with its head W replaced by B (1x1 convolution C -> rank) and A (fully connected).

    `features`: the head's input on calibration crops (`head_inputs`). Returns the new graph and
    figures of the fit (the share of W x's energy kept on the calibration features).
    """
    conv, reshape = _head(graph)
    w = graph.consts[conv.inputs[1]].astype(np.float64)  # out, h, w, C
    out, kh, kw, c = w.shape
    x = features.astype(np.float64).reshape(-1, c)
    cov = x.T @ x / len(x)
    eig, vec = np.linalg.eigh(cov)
    eig = np.maximum(eig, eig.max() * 1e-6)
    half, inv_half = (vec * np.sqrt(eig)) @ vec.T, (vec / np.sqrt(eig)) @ vec.T
    u, s, vt = np.linalg.svd(w.reshape(-1, c) @ half, full_matrices=False)
    root = np.sqrt(s[:rank])
    a = u[:, :rank] * root  # (out*h*w) x rank; the split keeps both factors' scales alike for int8
    b = root[:, None] * vt[:rank] @ inv_half  # rank x C

    small = copy.deepcopy(graph)
    name = reshape.output
    for key in (conv.inputs[1], reshape.inputs[1]):
        small.consts.pop(key)
    reduce_w = small.const(f"{name}/reduce/weights", b.reshape(rank, 1, 1, c).astype(np.float32))
    reduce_b = small.const(f"{name}/reduce/bias", np.zeros(rank, np.float32))
    fc_w = small.const(f"{name}/weights", a.reshape(out, kh * kw * rank).astype(np.float32))
    small.ops = small.ops[:-2]
    reduced = small.add("conv", [conv.inputs[0], reduce_w, reduce_b], f"{name}/reduced", stride=1, padding=VALID)
    small.add("fc", [reduced, fc_w, conv.inputs[2]], name)
    fit = {
        "rank": rank,
        "head_weights_before": int(w.size),
        "head_weights_after": int(a.size + b.size),
        "energy_kept_on_calibration": round(float(np.sum(s[:rank] ** 2) / np.sum(s**2)), 5),
        "calibration_feature_maps": len(features),
    }
    return small, fit


def compact_int8_weights(graph: Graph, min_weights: int) -> dict[str, str]:
    """`to_tflite`'s int8_weights for the compact variant: fully-connected layers as "hybrid_uint8",
    convolutions with at least `min_weights` weights as "hybrid"; the rest stays float."""
    modes = {}
    for op in graph.ops:
        if op.kind == "fc":
            modes[op.inputs[1]] = "hybrid_uint8"
        elif op.kind == "conv" and graph.consts[op.inputs[1]].size >= min_weights:
            modes[op.inputs[1]] = "hybrid"
    return modes
