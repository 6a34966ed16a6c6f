"""Two-pass 8-bit MatMuls: the speed of onnxruntime's int8 MatMulNBits kernel with close to fp32 results.

MatMulNBits with accuracy_level 4 (the fast kernel) rounds its weights to 8 bits and its activations to int8,
block by block along K. On SmolLM2-135M both roundings flip eager's greedy choice wherever its top-2 logits are
close (they often are: the fine-tune learns several equally likely phrasings), so no plain int8 recipe keeps 95%
greedy agreement. This rewrite removes both errors without leaving the fast kernel:

- Activations: each MatMul input A is split, in the graph, into its int8 part q(A) (rounded exactly as the kernel
  rounds: symmetric, scale max|a|/127 per block) and the remainder A - q(A). Both go through one 8-bit MatMulNBits
  call as two rows (decoding is memory-bound: the weight is read once for both). The kernel reproduces q(A)
  exactly and rounds the small remainder, so the sum is A's product to about 1/127^2.
- Weights: the 8-bit weight's rounding error R = W - W8 (W8 computed on onnxruntime's own grid, nbits_grid: scale
  vmax / -128 per block) gets its own 4-bit MatMulNBits, added to the result: about 11 bits of weight precision.

Cost: 1.5 bytes per weight plus scales (blocks of 128, or 64 where K = 576, so nothing is padded: SmolLM2-135M
stays at 43% of fp32), twice the int8 work in the prefill, and about a dozen small ops per distinct MatMul input.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

RESIDUAL_BITS = 4
_SUFFIX_INT8, _SUFFIX_RESIDUAL = "_int8", "_residual"


def nbits_grid(weight: np.ndarray, block: int, bits: int = 8) -> np.ndarray:
    """`weight` (K x N) rounded the way onnxruntime's MatMulNBits quantizer rounds it with is_symmetric: per block
    of `block` along K, scale = (the block's value of largest magnitude) / -2^(bits-1), K padded with zeros."""
    k, n = weight.shape
    pad = (-k) % block
    blocks = np.pad(weight, ((0, pad), (0, 0))).T.reshape(n, -1, block)
    peak = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)
    scale = peak / -(2 ** (bits - 1))
    scale[scale == 0] = 1.0
    levels = np.clip(np.round(blocks / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (levels * scale).reshape(n, -1)[:, :k].T.astype(weight.dtype)


def two_pass_matmuls(model: Any, *, residual_exclude: tuple[str, ...] = ("/lm_head/MatMul",)) -> list[str]:
    """Rewrite the MatMuls of `model` (an onnx ModelProto of a decoder, changed in place) whose second input is a
    2-D float initializer into the two-pass form, then quantize: the int8 passes to 8-bit, the residuals to 4-bit
    MatMulNBits (accuracy_level 4). MatMuls reading the same activation (q/k/v, gate/up) become one call on their
    concatenated weights, split afterwards: fewer, larger kernel calls. Blocks: 128 along K, or the largest power
    of two down to 16 that divides K (no padding); a MatMul whose K fits none stays float. The MatMuls named in
    `residual_exclude` get no 4-bit residual (the lm_head: its rounding reaches the logits once, not through every
    layer, and its residual would cost the size budget). Activations must be [batch, sequence, K], as in
    optimum's decoder exports. Returns the names of the MatMuls rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    groups: dict[str, list[Any]] = {}
    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is not None and weight.data_type == TensorProto.FLOAT and len(weight.dims) == 2:
            if _block_for(weight.dims[0]):
                groups.setdefault(node.input[0], []).append(node)
    constants = _constants(graph)
    rewritten: list[str] = []
    residuals: list[str] = []
    for activation, nodes in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        k = weights[0].shape[0]  # one activation, one K for all its readers
        block = _block_for(k)
        fused = np.concatenate(weights, axis=1) if len(weights) > 1 else weights[0]
        # siblings are named after their common scope: /model/layers.0/self_attn/two_pass for q/k/v
        common = os.path.commonprefix([n.name for n in nodes])
        base = common[: common.rfind("/") + 1] + "two_pass" if len(nodes) > 1 else nodes[0].name
        out = base + "_out"
        graph.initializer.append(numpy_helper.from_array(fused, base + "_weight"))
        new_nodes, rows = _split_activation(graph, activation, k, block, base, constants)
        new_nodes += [
            helper.make_node("MatMul", [rows, base + "_weight"], [out + "_rows"], name=base + _SUFFIX_INT8),
            helper.make_node("Split", [out + "_rows"], [out + "_part", out + "_remainder"], axis=1, num_outputs=2,
                             name=base + "_split_rows"),
        ]
        with_residual = not any(n.name in residual_exclude for n in nodes)
        summed = out + "_int8" if with_residual else (out if len(nodes) > 1 else nodes[0].output[0])
        new_nodes.append(helper.make_node("Add", [out + "_part", out + "_remainder"], [summed], name=base + "_sum"))
        if with_residual:
            residual = fused - nbits_grid(fused, block)
            graph.initializer.append(numpy_helper.from_array(residual, base + "_residual_weight"))
            final = out if len(nodes) > 1 else nodes[0].output[0]
            new_nodes += [
                helper.make_node("MatMul", [activation, base + "_residual_weight"], [out + _SUFFIX_RESIDUAL],
                                 name=base + _SUFFIX_RESIDUAL),
                helper.make_node("Add", [summed, out + _SUFFIX_RESIDUAL], [final], name=base + "_add_residual"),
            ]
            residuals.append(base + _SUFFIX_RESIDUAL)
        if len(nodes) > 1:
            sizes = numpy_helper.from_array(np.array([w.shape[1] for w in weights], np.int64), base + "_sizes")
            graph.initializer.append(sizes)
            new_nodes.append(helper.make_node("Split", [out, sizes.name], [n.output[0] for n in nodes], axis=-1,
                                              name=base + "_split_outputs"))
        at = list(graph.node).index(nodes[0])
        for node in nodes:
            graph.node.remove(node)
        for offset, new in enumerate(new_nodes):
            graph.node.insert(at + offset, new)
        rewritten += [n.name for n in nodes]
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    # The quantizer takes every MatMul with a constant weight not excluded: the residuals wait for the second pass.
    _quantize(model, exclude=residuals, bits=8)
    _quantize(model, exclude=[], bits=RESIDUAL_BITS)
    return rewritten


def _block_for(k: int) -> int | None:
    """MatMulNBits block along K: 128, or the largest smaller power of two (down to 16) that divides K."""
    return next((b for b in (128, 64, 32, 16) if k % b == 0), None)


def _constants(graph: Any) -> dict[str, str]:
    from onnx import numpy_helper

    values = {
        "last_axis": np.array([-1], np.int64),
        "int8_max": np.array(127.0, np.float32),
        "tiny": np.array(1e-30, np.float32),
    }
    names = {}
    for key, value in values.items():
        names[key] = f"two_pass_{key}"
        graph.initializer.append(numpy_helper.from_array(value, names[key]))
    return names


def _split_activation(
    graph: Any, activation: str, k: int, block: int, prefix: str, c: dict[str, str]
) -> tuple[list[Any], str]:
    """Nodes stacking q(A) and A - q(A) along the sequence axis ([batch, 2 x sequence, K]), q rounding A per
    block of `block` along K as MatMulNBits' int8 kernel does (symmetric, scale max|a| / 127)."""
    from onnx import helper, numpy_helper

    p = prefix + "_act"
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0, 0, k // block, block], np.int64), p + "_blocks_shape"),
        numpy_helper.from_array(np.array([0, 0, k], np.int64), p + "_shape"),
    ])
    nodes = [
        helper.make_node("Reshape", [activation, p + "_blocks_shape"], [p + "_blocks"]),
        helper.make_node("Abs", [p + "_blocks"], [p + "_abs"]),
        helper.make_node("ReduceMax", [p + "_abs", c["last_axis"]], [p + "_peak"], keepdims=1),
        helper.make_node("Div", [p + "_peak", c["int8_max"]], [p + "_scale0"]),
        helper.make_node("Max", [p + "_scale0", c["tiny"]], [p + "_scale"]),
        helper.make_node("Div", [p + "_blocks", p + "_scale"], [p + "_scaled"]),
        helper.make_node("Round", [p + "_scaled"], [p + "_levels"]),
        helper.make_node("Mul", [p + "_levels", p + "_scale"], [p + "_rounded_blocks"]),
        helper.make_node("Reshape", [p + "_rounded_blocks", p + "_shape"], [p + "_int8_part"]),
        helper.make_node("Sub", [activation, p + "_int8_part"], [p + "_remainder"]),
        helper.make_node("Concat", [p + "_int8_part", p + "_remainder"], [p + "_rows"], axis=1),
    ]
    return nodes, p + "_rows"


def _quantize(model: Any, *, exclude: list[str], bits: int) -> None:
    """MatMulNBits (accuracy_level 4) for every MatMul with a constant weight but `exclude`, each with its own
    block size (_block_for its K): the quantizer takes one block size per call."""
    inits = {i.name: i for i in model.graph.initializer}
    by_block: dict[int, list[str]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and node.name not in exclude:
            by_block.setdefault(_block_for(inits[node.input[1]].dims[0]) or 0, []).append(node.name)
    for block in [b for b in by_block if b]:
        others = [n for b, names in by_block.items() if b != block for n in names]
        _quantize_block(model, exclude=list(exclude) + others, bits=bits, block=block)


def _quantize_block(model: Any, *, exclude: list[str], bits: int, block: int) -> None:
    model.CopyFrom(matmul_nbits(model, exclude=exclude, bits=bits, block=block).model.model)


def matmul_nbits(
    model: Any, *, exclude: list[str], bits: int, block: int, accuracy_level: int = 4, symmetric: bool = True
) -> Any:
    """onnxruntime's MatMulNBitsQuantizer run over every MatMul with a constant weight but `exclude`; returns the
    quantizer (its .model holds the result)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(
        block_size=block, is_symmetric=symmetric, accuracy_level=accuracy_level, bits=bits,
        op_types_to_quantize=("MatMul",),
    )
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=exclude, algo_config=config)
    # The quantizer logs a line per graph node at INFO on its own handler: thousands of lines per model.
    chatty = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        quantizer.process()
    finally:
        chatty.setLevel(level)
    return quantizer
