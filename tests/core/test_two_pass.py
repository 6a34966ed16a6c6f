"""Two-pass 8-bit MatMuls (retune.two_pass): onnxruntime's rounding grid, the rewrite's precision, its graph."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from retune.two_pass import _block_for, nbits_grid, two_pass_matmuls


def _session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _decoder_like(k: int, widths: dict[str, int], seed: int = 0):
    """A graph shaped like a decoder's projections: activations [batch, seq, K]; the first two MatMuls read the
    same input (siblings, like q/k/v), the last of several reads the first's output (like o_proj)."""
    rng = np.random.default_rng(seed)
    weights = {}
    nodes = []
    names = list(widths)
    for i, name in enumerate(names):
        reads_first = len(names) > 1 and i == len(names) - 1
        rows = widths[names[0]] if reads_first else k
        weights[name] = (rng.standard_normal((rows, widths[name])) * 0.05).astype(np.float32)
        weights[name][:, :2] *= 15  # a few large weights, as real models have
        source = f"/{names[0]}/MatMul_output_0" if reads_first else "A"
        nodes.append(helper.make_node("MatMul", [source, name + ".weight"], [f"/{name}/MatMul_output_0"],
                                      name=f"/{name}/MatMul"))
    outputs = [helper.make_tensor_value_info(f"/{n}/MatMul_output_0", TensorProto.FLOAT, None) for n in names]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["batch", "seq", k])], outputs,
        [numpy_helper.from_array(w, n + ".weight") for n, w in weights.items()],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets), weights


@pytest.mark.parametrize(("bits", "block", "k"), [(8, 128, 256), (8, 64, 576), (4, 128, 256), (8, 32, 96)])
def test_nbits_grid_is_onnxruntimes_own_rounding(bits, block, k):
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model, weights = _decoder_like(k, {"p": 48})
    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4, bits=bits,
                                          op_types_to_quantize=("MatMul",))  # fmt: skip
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    # one-hot rows pass the int8 activation rounding exactly: the outputs are the dequantized weight's rows
    probe = _session(quantizer.model.model).run(None, {"A": np.eye(k, dtype=np.float32)[None]})[0][0]
    np.testing.assert_allclose(probe, nbits_grid(weights["p"], block, bits), rtol=0, atol=1e-6)
    assert np.abs(probe - weights["p"]).max() > 1e-4  # it is rounded


def test_two_pass_is_close_to_fp32_where_plain_int8_is_not():
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    k = 576
    model, weights = _decoder_like(k, {"q": 64, "v": 32, "o": 80})
    a = np.random.default_rng(1).standard_normal((1, 5, k)).astype(np.float32)
    a[..., 7] = 40.0  # an outlier channel, as at real models' attention sinks
    exact = {"q": a @ weights["q"], "v": a @ weights["v"]}
    exact["o"] = exact["q"] @ weights["o"]

    plain = _decoder_like(k, {"q": 64, "v": 32, "o": 80})[0]
    quantizer = MatMulNBitsQuantizer(plain, algo_config=DefaultWeightOnlyQuantConfig(
        block_size=64, is_symmetric=True, accuracy_level=4, bits=8, op_types_to_quantize=("MatMul",)))
    quantizer.process()
    plain_out = _session(quantizer.model.model).run(None, {"A": a})

    rewritten = two_pass_matmuls(model, residual_exclude=("/o/MatMul",))
    assert sorted(rewritten) == ["/o/MatMul", "/q/MatMul", "/v/MatMul"]
    two_pass_out = _session(model).run(None, {"A": a})

    def error(out, name):
        return float(np.abs(out - exact[name]).max() / np.abs(exact[name]).max())

    for i, name in enumerate(("q", "v")):  # with the weight residual: ~11 bits of weight, ~14 of activation
        assert error(two_pass_out[i], name) < 1e-3 < error(plain_out[i], name) / 4, name
    # without the residual only the activations are exact: the 8-bit weight rounding stays
    assert error(two_pass_out[2], "o") < error(plain_out[2], "o")

    ops = {n.name: n for n in model.graph.node}
    # the siblings q and v are one 8-bit call on two stacked rows, one 4-bit residual call, then a split
    assert ops["/two_pass_int8_Q8"].op_type == "MatMulNBits" and ops["/two_pass_residual_Q4"].op_type == "MatMulNBits"
    assert {a.name: a.i for a in ops["/two_pass_residual_Q4"].attribute}["bits"] == 4
    assert ops["/two_pass_split_outputs"].op_type == "Split"
    assert "/o/MatMul_residual_Q4" not in ops and ops["/o/MatMul_int8_Q8"].op_type == "MatMulNBits"
    assert not [n for n in model.graph.node if n.op_type == "MatMul"]  # no float weight is left


def test_a_matmul_whose_k_fits_no_block_stays_float():
    assert [_block_for(k) for k in (1536, 576, 96, 48, 50)] == [128, 64, 32, 16, None]
    model, _ = _decoder_like(50, {"p": 16})
    assert two_pass_matmuls(model) == []
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
