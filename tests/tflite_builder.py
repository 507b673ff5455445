"""Write tiny .tflite files by hand, for tests that need a model with particular tensors.

Uses the flatbuffer schema module that ai-edge-litert ships (with `flatbuffers`, one of its
dependencies), so it needs no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path


def _schema():
    import flatbuffers  # noqa: F401  (fails early with a clear ImportError)
    from ai_edge_litert import schema_py_generated as schema

    return schema


def requantize_model(
    path: str | Path,
    *,
    size: int = 8,
    in_scale: float = 0.1,
    in_zero_point: int = 2,
    out_scale: float = 0.05,
    out_zero_point: int = -3,
) -> Path:
    """One QUANTIZE op: int8 [1, size] input "x" (in_scale, in_zero_point) requantized to an
    int8 [1, size] output "y" (out_scale, out_zero_point)."""
    import flatbuffers

    schema = _schema()

    def tensor(name: str, buffer: int, scale: float, zero_point: int):
        t = schema.TensorT()
        t.name = name
        t.shape = [1, size]
        t.type = schema.TensorType.INT8
        t.buffer = buffer
        q = schema.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zero_point]
        t.quantization = q
        return t

    opcode = schema.OperatorCodeT()
    opcode.builtinCode = schema.BuiltinOperator.QUANTIZE
    opcode.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    opcode.version = 2

    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]

    graph = schema.SubGraphT()
    graph.tensors = [tensor("x", 1, in_scale, in_zero_point), tensor("y", 2, out_scale, out_zero_point)]
    graph.inputs = [0]
    graph.outputs = [1]
    graph.operators = [op]
    graph.name = "main"

    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [opcode]
    model.subgraphs = [graph]
    model.buffers = [schema.BufferT() for _ in range(3)]
    model.description = "edge test: int8 requantize"

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(builder.Output()))
    return path
