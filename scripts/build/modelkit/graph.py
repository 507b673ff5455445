"""A tiny graph IR for the embedders (and the liveness classifier) and a writer to the TFLite flatbuffer.

The embedders are plain CNNs (convolutions, depthwise convolutions, PReLU,
residual adds, a final reshape; fr_liveness adds squeeze-and-excitation gates --
mean, relu, logistic, mul -- and fully-connected layers), so instead of routing them through TensorFlow's
converter -- which emits op versions tflite-runtime 2.14 cannot load and turns
PReLU into elementwise ABS/SUB/MUL chains -- we describe them in this IR and
write the flatbuffer ourselves with LiteRT's generated schema. Every op is
written at version 1, which every runtime we target knows.

Layout is NHWC throughout; convolution weights are OHWI, depthwise weights
1HWC, fully-connected weights (out, in) over the input flattened in NHWC order,
PReLU slopes (1, 1, C).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

OPS = schema.BuiltinOperator
SAME, VALID = schema.Padding.SAME, schema.Padding.VALID


@dataclass
class Op:
    kind: str  # conv, dwconv, fc, prelu, add, pad, reshape, mean, relu, logistic, mul
    inputs: list[str]
    output: str
    params: dict = field(default_factory=dict)


@dataclass
class Graph:
    name: str
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    # (mean, std) the source model applied to its raw input inside its own graph
    # (SFace: (x - 127.5) * 1/128); the converted graph leaves it to the caller, as the
    # other embedders do, and the build checks it against the manifest's input spec.
    normalisation: tuple[float, float] | None = None

    def const(self, name: str, value: np.ndarray) -> str:
        self.consts[name] = np.ascontiguousarray(value)
        return name

    def add(self, kind: str, inputs: list[str], output: str, **params) -> str:
        self.ops.append(Op(kind, inputs, output, params))
        return output


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    if padding == SAME:
        return -(-size // stride)
    return (size - kernel) // stride + 1


def infer_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    shapes = {graph.input_name: tuple(graph.input_shape)}
    shapes.update({k: v.shape for k, v in graph.consts.items()})
    for op in graph.ops:
        x = shapes[op.inputs[0]]
        if op.kind in ("conv", "dwconv"):
            w = graph.consts[op.inputs[1]]
            kh, kw = w.shape[1], w.shape[2]
            out_c = w.shape[0] if op.kind == "conv" else w.shape[3]
            s = op.params["stride"]
            p = op.params["padding"]
            shapes[op.output] = (x[0], _conv_out(x[1], kh, s, p), _conv_out(x[2], kw, s, p), out_c)
        elif op.kind == "pad":
            pads = graph.consts[op.inputs[1]]
            shapes[op.output] = tuple(int(d + a + b) for d, (a, b) in zip(x, pads))
        elif op.kind == "reshape":
            shapes[op.output] = tuple(int(v) for v in graph.consts[op.inputs[1]])
        elif op.kind == "fc":
            shapes[op.output] = (x[0], graph.consts[op.inputs[1]].shape[0])
        elif op.kind == "mean":  # over H and W, dims kept
            shapes[op.output] = (x[0], 1, 1, x[3])
        elif op.kind in ("add", "mul"):  # elementwise, broadcasting
            shapes[op.output] = tuple(int(d) for d in np.broadcast_shapes(x, shapes[op.inputs[1]]))
        else:  # prelu, relu, logistic: elementwise
            shapes[op.output] = x
    return shapes


def run_numpy(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Reference evaluation in numpy (float64) -- used to prove a conversion exact."""
    values: dict[str, np.ndarray] = {graph.input_name: x.astype(np.float64)}
    values.update({k: v.astype(np.float64) for k, v in graph.consts.items()})
    for op in graph.ops:
        a = values[op.inputs[0]]
        if op.kind in ("conv", "dwconv"):
            w, b = values[op.inputs[1]], values[op.inputs[2]]
            s, p = op.params["stride"], op.params["padding"]
            kh, kw = w.shape[1], w.shape[2]
            if p == SAME:
                oh, ow = -(-a.shape[1] // s), -(-a.shape[2] // s)
                ph = max((oh - 1) * s + kh - a.shape[1], 0)
                pw = max((ow - 1) * s + kw - a.shape[2], 0)
                a = np.pad(a, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
            oh = (a.shape[1] - kh) // s + 1
            ow = (a.shape[2] - kw) // s + 1
            win = np.lib.stride_tricks.sliding_window_view(a, (kh, kw), axis=(1, 2))
            win = win[:, : (oh - 1) * s + 1 : s, : (ow - 1) * s + 1 : s]  # N,oh,ow,C,kh,kw
            if op.kind == "conv":
                out = np.einsum("nhwcij,oijc->nhwo", win, w, optimize=True)
            else:
                out = np.einsum("nhwcij,ijc->nhwc", win, w[0], optimize=True)
            values[op.output] = out + b
        elif op.kind == "prelu":
            alpha = values[op.inputs[1]]
            values[op.output] = np.where(a >= 0, a, a * alpha)
        elif op.kind == "add":
            values[op.output] = a + values[op.inputs[1]]
        elif op.kind == "pad":
            values[op.output] = np.pad(a, values[op.inputs[1]].astype(int))
        elif op.kind == "reshape":
            values[op.output] = a.reshape(values[op.inputs[1]].astype(int))
        elif op.kind == "fc":
            w, b = values[op.inputs[1]], values[op.inputs[2]]
            values[op.output] = a.reshape(a.shape[0], -1) @ w.T + b
        elif op.kind == "mean":
            values[op.output] = a.mean(axis=(1, 2), keepdims=True)
        elif op.kind == "relu":
            values[op.output] = np.maximum(a, 0.0)
        elif op.kind == "logistic":
            values[op.output] = 1.0 / (1.0 + np.exp(-a))
        elif op.kind == "mul":
            values[op.output] = a * values[op.inputs[1]]
        else:
            raise ValueError(f"unknown op {op.kind}")
    return values[graph.output_name].astype(np.float32)


_BUILTIN = {
    "conv": OPS.CONV_2D,
    "dwconv": OPS.DEPTHWISE_CONV_2D,
    "prelu": OPS.PRELU,
    "add": OPS.ADD,
    "pad": OPS.PAD,
    "reshape": OPS.RESHAPE,
    "dequantize": OPS.DEQUANTIZE,
    "fc": OPS.FULLY_CONNECTED,
    "mean": OPS.MEAN,
    "relu": OPS.RELU,
    "logistic": OPS.LOGISTIC,
    "mul": OPS.MUL,
}

_TYPES = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.float16): schema.TensorType.FLOAT16,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.uint8): schema.TensorType.UINT8,
}


_WEIGHTED = ("conv", "dwconv", "fc")

# How `to_tflite` writes an int8 weight tensor (symmetric, -127..127):
#
# "dequantize"    int8 per output channel + a DEQUANTIZE op to float32: a smaller file only;
#                 XNNPACK expands the weights to float32 at load like float16 ones.
# "hybrid"        int8 per output channel read by the convolution itself, which quantizes its
#                 float input on the fly ("dynamic range"); XNNPACK runs it in int8 and keeps
#                 int8 packed weights. conv/dwconv only: tflite-runtime 2.14's FULLY_CONNECTED
#                 ignores per-channel scales (every output gets the first channel's) and loads
#                 such a file without complaint.
# "hybrid_uint8"  fc only: one scale for the tensor, the int8 values stored in a UINT8 tensor --
#                 TFLite's original hybrid format, which both runtimes' built-in FULLY_CONNECTED
#                 read as int8 in place from the memory-mapped file and which XNNPACK leaves to
#                 them, so the weights are not copied into XNNPACK's packed buffers (for a large
#                 layer, resident memory equal to the file's bytes instead of twice that).
INT8_MODES = ("dequantize", "hybrid", "hybrid_uint8")


def _options(op: Op):
    if op.kind == "conv":
        o = schema.Conv2DOptionsT()
        o.padding, o.strideW, o.strideH = op.params["padding"], op.params["stride"], op.params["stride"]
        o.dilationWFactor = o.dilationHFactor = 1
        return schema.BuiltinOptions.Conv2DOptions, o
    if op.kind == "dwconv":
        o = schema.DepthwiseConv2DOptionsT()
        o.padding, o.strideW, o.strideH = op.params["padding"], op.params["stride"], op.params["stride"]
        o.depthMultiplier = 1
        o.dilationWFactor = o.dilationHFactor = 1
        return schema.BuiltinOptions.DepthwiseConv2DOptions, o
    if op.kind == "fc":
        return schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT()
    if op.kind == "add":
        return schema.BuiltinOptions.AddOptions, schema.AddOptionsT()
    if op.kind == "mul":
        return schema.BuiltinOptions.MulOptions, schema.MulOptionsT()
    if op.kind == "mean":
        o = schema.ReducerOptionsT()
        o.keepDims = True
        return schema.BuiltinOptions.ReducerOptions, o
    if op.kind == "pad":
        return schema.BuiltinOptions.PadOptions, schema.PadOptionsT()
    if op.kind == "reshape":
        o = schema.ReshapeOptionsT()
        o.newShape = None  # the shape comes from the second input
        return schema.BuiltinOptions.ReshapeOptions, o
    return schema.BuiltinOptions.NONE, None


def quantize_int8(value: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 (-127..127): one scale per slice along `axis` (None: one for the tensor)."""
    v = value.astype(np.float64)
    if axis is None:
        amax = np.full(1, np.abs(v).max())
        scale = np.where(amax > 0, amax / 127.0, 1.0)
        q = np.round(v / scale[0])
    else:
        amax = np.abs(np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1)).max(axis=1)
        scale = np.where(amax > 0, amax / 127.0, 1.0)
        shape = [1] * v.ndim
        shape[axis] = -1
        q = np.round(v / scale.reshape(shape))
    return np.clip(q, -127, 127).astype(np.int8), scale.astype(np.float32)


def to_tflite(
    graph: Graph,
    *,
    float16_weights: bool = False,
    int8_weights: dict[str, str] | None = None,
    description: str = "",
) -> bytes:
    """Serialise `graph` to a .tflite flatbuffer.

    With `float16_weights`, convolution weights are stored as float16 and
    expanded by DEQUANTIZE ops -- the same layout TensorFlow's float16
    quantization writes, which XNNPACK folds into float32 weights at load time.
    `int8_weights` maps weight tensors to one of `INT8_MODES` (see there); they
    take precedence over `float16_weights`.
    """
    shapes = infer_shapes(graph)
    model = schema.ModelT()
    model.version = 3
    model.description = description.encode()
    model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
    tensors: list = []
    index: dict[str, int] = {}
    opcodes: dict[int, int] = {}
    operators: list = []

    def tensor(name: str, shape, dtype, data: np.ndarray | None = None, quantization=None) -> int:
        t = schema.TensorT()
        t.name = name.encode()
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = _TYPES[np.dtype(dtype)]
        t.quantization = quantization
        if data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        else:
            t.buffer = 0
        tensors.append(t)
        index[name] = len(tensors) - 1
        return index[name]

    def operator(kind: str, inputs: list[int], outputs: list[int], options=(schema.BuiltinOptions.NONE, None)):
        code = _BUILTIN[kind]
        if code not in opcodes:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            model.operatorCodes = (model.operatorCodes or []) + [oc]
            opcodes[code] = len(model.operatorCodes) - 1
        o = schema.OperatorT()
        o.opcodeIndex = opcodes[code]
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType, o.builtinOptions = options
        operators.append(o)

    model.operatorCodes = []
    tensor(graph.input_name, graph.input_shape, np.float32)
    # Weight tensor -> its output-channel axis (OHWI and (out, in): 0; depthwise 1HWC: 3).
    channel_axis = {op.inputs[1]: 3 if op.kind == "dwconv" else 0 for op in graph.ops if op.kind in _WEIGHTED}
    weight_inputs = set(channel_axis)
    kind_of = {op.inputs[1]: op.kind for op in graph.ops if op.kind in _WEIGHTED}
    int8_weights = dict(int8_weights or {})
    for name, mode in int8_weights.items():
        if name not in weight_inputs or mode not in INT8_MODES:
            raise ValueError(f"int8 weights: {name!r} is not a weight tensor, or {mode!r} is not one of {INT8_MODES}")
        if (mode == "hybrid_uint8") != (kind_of[name] == "fc"):
            raise ValueError(f"int8 weights: {name!r} ({kind_of[name]}) cannot be written as {mode!r}")
    for name, value in graph.consts.items():
        if value.dtype == np.int32 or value.dtype == np.int64:
            tensor(name, value.shape, np.int32, value.astype(np.int32))
        elif name in int8_weights:
            mode = int8_weights[name]
            axis = None if mode == "hybrid_uint8" else channel_axis[name]
            q, scale = quantize_int8(value, axis)
            params = schema.QuantizationParametersT()
            params.scale = [float(v) for v in scale]
            params.zeroPoint = [0] * len(scale)
            params.quantizedDimension = 0 if axis is None else axis
            if mode == "dequantize":
                packed = tensor(name + "/int8", value.shape, np.int8, q, params)
                operator("dequantize", [packed], [tensor(name, value.shape, np.float32)])
            elif mode == "hybrid":
                tensor(name, value.shape, np.int8, q, params)
            else:  # the same bytes, typed UINT8
                tensor(name, value.shape, np.uint8, q.view(np.uint8), params)
        elif float16_weights and name in weight_inputs:
            half = tensor(name + "/fp16", value.shape, np.float16, value.astype(np.float16))
            full = tensor(name, value.shape, np.float32)
            operator("dequantize", [half], [full])
        else:
            tensor(name, value.shape, np.float32, value.astype(np.float32))
    for op in graph.ops:
        out = tensor(op.output, shapes[op.output], np.float32)
        operator(op.kind, [index[i] for i in op.inputs], [out], _options(op))

    sub = schema.SubGraphT()
    sub.name = b"main"
    sub.tensors = tensors
    sub.inputs = np.asarray([index[graph.input_name]], dtype=np.int32)
    sub.outputs = np.asarray([index[graph.output_name]], dtype=np.int32)
    sub.operators = operators
    model.subgraphs = [sub]

    # A serving_default signature: ai-edge-quantizer's calibrator needs one.
    sig = schema.SignatureDefT()
    sig.signatureKey = b"serving_default"
    sig.subgraphIndex = 0
    tin, tout = schema.TensorMapT(), schema.TensorMapT()
    tin.name, tin.tensorIndex = graph.input_name.encode(), index[graph.input_name]
    tout.name, tout.tensorIndex = graph.output_name.encode(), index[graph.output_name]
    sig.inputs, sig.outputs = [tin], [tout]
    model.signatureDefs = [sig]

    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_model(data: bytes):
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    # Old flatbuffers keep the op in deprecated_builtin_code only; fill the new
    # field so tools that read it (ai-edge-quantizer, us) see the real op.
    for oc in model.operatorCodes:
        if oc.builtinCode < oc.deprecatedBuiltinCode:
            oc.builtinCode = oc.deprecatedBuiltinCode
    return model


def write_model(model) -> bytes:
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def buffer_array(model, tensor) -> np.ndarray:
    dtype = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT32: np.int32,
        schema.TensorType.INT8: np.int8,
    }[tensor.type]
    data = model.buffers[tensor.buffer].data
    return np.frombuffer(bytes(np.asarray(data, dtype=np.uint8)), dtype=dtype).reshape(tensor.shape)
