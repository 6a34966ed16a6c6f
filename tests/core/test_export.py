"""Export: LoRA merge, ONNX fp32 + quantization recipes, and the parity gate, on the tiny bootstrapped model.

Quantization *quality* is never judged here (tiny random-ish models look fine after int8): that is
benchmarks/export.py on SmolLM2-135M. These tests check the mechanics and that the gate really gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import retune.export as core_export
from retune.errors import ExportError
from retune.export import (
    LATENCY_PROMPT_TOKENS,
    RECIPES,
    ExportResult,
    Latency,
    OnnxGenerator,
    ParityGate,
    Variant,
    choose_variant,
    export_model,
    export_onnx,
    greedy_agreement,
    judge,
    measure_variants,
    merge_adapter,
    quantize,
    served_agreement,
)

PROMPTS = ["Hi, where is my order 123?", "Any news about refund 456?", "Can you help me with invoice 789"]
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def adapter_dir(tiny_base_model, tmp_path_factory) -> Path:
    """A LoRA adapter whose B matrices are perturbed, so merging changes the model visibly."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def merged_dir(tiny_base_model, adapter_dir, tmp_path_factory) -> Path:
    return merge_adapter(str(tiny_base_model), adapter_dir, tmp_path_factory.mktemp("merged") / "merged")


@pytest.fixture(scope="module")
def fp32_dir(merged_dir, tmp_path_factory) -> Path:
    return export_onnx(merged_dir, tmp_path_factory.mktemp("fp32") / "fp32")


@pytest.fixture(scope="module")
def exported(merged_dir, tmp_path_factory) -> ExportResult:
    out = tmp_path_factory.mktemp("onnx")
    gate = ParityGate(min_greedy_agreement=0.5, min_top1_agreement=0.5, max_logit_rel_err=0.5)
    return export_model(merged_dir, out, PROMPTS, recipes=list(RECIPES), new_tokens=NEW_TOKENS, gate=gate)


def _logits(model, tokenizer):
    import torch

    enc = tokenizer(PROMPTS[0], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        return model(**enc).logits


def _op_types(path: Path) -> dict[str, str]:
    """Node name -> op type of an ONNX graph."""
    import onnx

    return {n.name: n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}


def test_merged_model_equals_base_plus_adapter(tiny_base_model, adapter_dir, merged_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
    base_logits = _logits(base, tokenizer)
    with_adapter = _logits(PeftModel.from_pretrained(base, adapter_dir).eval(), tokenizer)
    merged = _logits(AutoModelForCausalLM.from_pretrained(merged_dir).eval(), tokenizer)

    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)
    assert (merged - base_logits).abs().max() > 0.1  # the adapter really changed the model
    assert (merged_dir / "tokenizer_config.json").exists()


def test_merge_rejects_a_directory_without_adapter(tiny_base_model, tmp_path):
    with pytest.raises(ExportError, match="no LoRA adapter"):
        merge_adapter(str(tiny_base_model), tmp_path, tmp_path / "out")


@pytest.mark.slow  # shares the export of 5 variants with parity and latency (~40-150 s on 2 busy cores)
def test_every_recipe_is_built_and_loads_and_generates(exported):
    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoTokenizer

    assert [v.name for v in exported.variants] == ["fp32", *RECIPES]
    assert exported.failed_recipes == {}
    fp32 = exported.variants[0]
    for variant in exported.variants:
        assert (variant.path / "model.onnx").exists()
        tokenizer = AutoTokenizer.from_pretrained(variant.path)
        model = ORTModelForCausalLM.from_pretrained(variant.path)
        enc = tokenizer(PROMPTS[0], return_tensors="pt", return_token_type_ids=False)
        out = model.generate(**enc, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        assert out.shape[1] == enc["input_ids"].shape[1] + 4
        if variant is not fp32:
            assert variant.size_bytes < fp32.size_bytes, variant.name
    assert exported.merged_size_bytes > 0


@pytest.mark.slow  # shares the export of 5 variants with parity and latency (~40-150 s on 2 busy cores)
def test_recipes_quantize_what_they_say(exported):
    ops = {v.name: _op_types(v.path) for v in exported.variants}
    # Weight-only: every projection is a MatMulNBits; only "all" also quantizes the tied lm_head (folded out
    # of its Transpose) and keeps the embedding table as fp16 behind a Cast.
    assert ops["int8_weight_only_all"]["/lm_head/MatMul_Q8"] == "MatMulNBits"
    assert ops["int8_weight_only_all"]["/model/embed_tokens/Gather_cast"] == "Cast"
    assert "Transpose" not in {ops["int8_weight_only_all"].get(n) for n in ops["fp32"] if "lm_head" in n}
    assert ops["int8_weight_only_matmulnbits"]["/lm_head/MatMul"] == "MatMul"
    assert ops["int8_weight_only_matmulnbits"]["/model/layers.0/mlp/down_proj/MatMul_Q8"] == "MatMulNBits"
    # Outlier-aware: weight-only everywhere but the MatMuls it found outliers at (listed beside the model).
    paths = {v.name: v.path for v in exported.variants}
    outliers = json.loads((paths["int8_weight_only_outlier_aware"] / "fp32_matmuls.json").read_text())
    aware = ops["int8_weight_only_outlier_aware"]
    assert aware["/lm_head/MatMul_Q8"] == "MatMulNBits"
    for name, op in ops["fp32"].items():
        if op == "MatMul" and "_proj/" in name:  # the projections (attention score MatMuls have no weight)
            assert (aware.get(name) == "MatMul") == (name in outliers), name
    # Sensitive: the embedding rows as int8 with their scales, weight-only everywhere but the MatMuls the
    # sensitivity search kept fp32 within the size budget (listed beside the model, with every score).
    sensitive, kept = ops["int8_weight_only_sensitive"], json.loads((paths["int8_weight_only_sensitive"] /
                                                                     "fp32_matmuls.json").read_text())  # fmt: skip
    scores = json.loads((paths["int8_weight_only_sensitive"] / "sensitivity.json").read_text())
    assert sensitive["/model/embed_tokens/Gather_q"] == "Gather" and "/model/embed_tokens/Gather" not in sensitive
    assert set(kept) <= set(scores) and "/lm_head/MatMul" in scores
    assert kept, "the tiny model leaves room within the size budget for some float MatMuls"
    for name, op in ops["fp32"].items():
        if op == "MatMul" and "_proj/" in name:
            assert (sensitive.get(name) == "MatMul") == (name in kept), name
            assert (sensitive.get(name + "_Q8") == "MatMulNBits") == (name not in kept), name
            assert (sensitive.get(name + "_weight_cast") == "Cast") == (name in kept), name  # fp16 on disk
    # Smoothed: the same graphs as their plain twins, built from the smoothed model (its record beside them).
    assert ops["int8_weight_only_smooth_all"]["/lm_head/MatMul_Q8"] == "MatMulNBits"
    assert ops["int8_weight_only_smooth_sensitive"]["/model/embed_tokens/Gather_q"] == "Gather"
    for name in ("int8_weight_only_smooth_all", "int8_weight_only_smooth_sensitive"):
        assert json.loads((paths[name] / "smoothing.json").read_text())["matmuls_smoothed"] > 0
    assert not (paths["int8_weight_only_all"] / "smoothing.json").exists()
    # Two-pass: q/k/v and gate/up as one 8-bit call on two activation rows plus one 4-bit residual call each;
    # the lm_head without a residual; no float projection left.
    two = ops["int8_two_pass"]
    for scope in ("self_attn", "mlp"):
        assert two[f"/model/layers.0/{scope}/two_pass_int8_Q8"] == "MatMulNBits"
        assert two[f"/model/layers.0/{scope}/two_pass_residual_Q4"] == "MatMulNBits"
    assert two["/model/layers.0/mlp/down_proj/MatMul_residual_Q4"] == "MatMulNBits"
    assert two["/lm_head/MatMul_int8_Q8"] == "MatMulNBits" and "/lm_head/MatMul_residual_Q4" not in two
    assert not [n for n, op in two.items() if op == "MatMul" and "_proj/" in n]
    # Dynamic: the selective recipe leaves down_proj, v_proj and the last blocks' gate/up in float.
    dynamic, selective = ops["int8_dynamic"], ops["int8_dynamic_selective"]
    assert dynamic["/model/layers.0/mlp/down_proj/MatMul_quant"] == "MatMulInteger"
    assert selective["/model/layers.0/mlp/down_proj/MatMul"] == "MatMul"
    assert selective["/model/layers.0/self_attn/v_proj/MatMul"] == "MatMul"
    assert selective["/model/layers.1/mlp/up_proj/MatMul"] == "MatMul"  # the tiny model has 2 blocks
    assert selective["/model/layers.0/self_attn/q_proj/MatMul_quant"] == "MatMulInteger"


@pytest.mark.slow  # shares the export of 5 variants with parity and latency (~40-150 s on 2 busy cores)
def test_parity_and_latency_numbers_on_the_tiny_model(exported):
    fp32 = exported.variants[0]
    for variant in exported.variants:
        assert 0.0 <= variant.parity.greedy_agreement <= 1.0
        assert 0.0 <= variant.parity.top1_agreement <= 1.0
        assert variant.parity.max_logit_rel_err >= 0.0
        assert set(variant.latency.prompt_ms) == set(LATENCY_PROMPT_TOKENS)
        assert all(ms > 0 for ms in variant.latency.prompt_ms.values())
    assert set(exported.eager.prompt_ms) == set(LATENCY_PROMPT_TOKENS)
    assert (fp32.parity.greedy_agreement, fp32.parity.top1_agreement) == (1.0, 1.0)
    assert fp32.parity.max_logit_rel_err < 1e-4 and fp32.parity.passed
    for variant in exported.variants[1:]:  # quantization does cost precision
        assert variant.parity.max_logit_rel_err > fp32.parity.max_logit_rel_err, variant.name
    assert exported.chosen.parity.passed
    assert exported.chosen.latency_ms == min(v.latency_ms for v in exported.variants if v.parity.passed)
    assert exported.reason.startswith(f"{exported.chosen.name} chosen")
    for variant in exported.variants:  # the reason says why every other variant lost
        assert variant is exported.chosen or f"{variant.name} " in exported.reason


@pytest.mark.slow  # shares the export of 5 variants with parity and latency (~40-150 s on 2 busy cores)
def test_gate_rejects_an_onnx_model_that_does_not_match_pytorch(tiny_base_model, exported):
    """The ONNX export of the merged model, checked against the base model: an honest mismatch."""
    fp32 = exported.variants[0]
    gate = ParityGate(min_greedy_agreement=0.9, min_top1_agreement=0.9, max_logit_rel_err=0.01)
    variants, eager = measure_variants(tiny_base_model, {"fp32": fp32.path}, PROMPTS, NEW_TOKENS, gate)
    parity = variants[0].parity
    assert parity.greedy_agreement < 0.9 and parity.max_logit_rel_err > 0.01
    assert not parity.passed and any("greedy agreement" in m for m in parity.misses)
    assert any("logit rel. error" in m and "over by" in m for m in parity.misses)
    assert eager.ms > 0
    with pytest.raises(ExportError, match="nothing registered.*short by"):
        choose_variant(variants, gate)


def _pytorch_greedy(model_dir: Path, prompt: str, new_tokens: int) -> tuple[list[int], list[int]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    enc = dict(tokenizer(prompt, return_tensors="pt", return_token_type_ids=False))
    return enc["input_ids"][0].tolist(), core_export._generate(model, enc, new_tokens)


def test_onnx_generator_reproduces_pytorch_greedy_generation(merged_dir, fp32_dir):
    """The IO-binding loop (KV cache kept in onnxruntime) yields PyTorch's generate() tokens, end of sequence
    suppressed alike, and PyTorch's logits."""
    import torch
    from transformers import AutoModelForCausalLM

    generator = OnnxGenerator(fp32_dir)
    eos = AutoModelForCausalLM.from_pretrained(merged_dir).generation_config.eos_token_id
    for prompt in PROMPTS:
        ids, expected = _pytorch_greedy(merged_dir, prompt, 12)
        assert generator.generate(ids, 12, suppress=[eos]) == expected
    # Served replies stop at end of turn, the stop token included: any token id can play it on the tiny model.
    model = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    stop = [expected[3]]
    reply = core_export._generate(model, {"input_ids": torch.tensor([ids])}, 12, stop=stop)
    assert reply == expected[: expected.index(expected[3]) + 1]
    assert generator.generate(ids, 12, stop=stop) == reply
    # both from one pass, the same as from two, whichever way the served reply ends
    for suppress, ends in (([eos], stop), ([eos], [eos]), ([eos, expected[0]], [eos]), ([eos, expected[0]], [])):
        both = generator.forced_and_served(ids, 12, suppress, ends)
        assert both == (generator.generate(ids, 12, suppress=suppress), generator.generate(ids, 12, stop=ends))
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    assert abs(generator.logits(ids) - reference).max() < 1e-4


def test_models_over_the_external_data_threshold_keep_weights_beside_the_graph(
    merged_dir, fp32_dir, tmp_path, monkeypatch
):
    """The 2 GB protobuf limit, forced down to 0 bytes: fp32 and quantized variants store their weights in a
    data file beside the graph, load, and generate what the single-file export generates."""
    monkeypatch.setattr(core_export, "EXTERNAL_DATA_BYTES", 0)
    external = export_onnx(merged_dir, tmp_path / "fp32")
    assert (external / "model.onnx_data").stat().st_size > (external / "model.onnx").stat().st_size
    ids, _ = _pytorch_greedy(merged_dir, PROMPTS[0], 1)
    expected = OnnxGenerator(fp32_dir).generate(ids, 8)
    assert OnnxGenerator(external).generate(ids, 8) == expected
    # The outlier-aware recipe also runs the external-data graph for calibration (a probe graph beside it).
    assert core_export.outlier_matmuls(external, [ids], ratio=1.0) == core_export.outlier_matmuls(
        fp32_dir, [ids], ratio=1.0
    )
    quantized = quantize(external, tmp_path / "q", "int8_weight_only_outlier_aware", calibration=[ids])
    assert (quantized / "model.onnx.data").exists()
    assert len(OnnxGenerator(quantized).generate(ids, 8)) == 8
    assert core_export.onnx_size(quantized) < core_export.onnx_size(external)


def test_outlier_matmuls_flag_inputs_whose_peak_exceeds_the_ratio(merged_dir, fp32_dir, tmp_path):
    import onnx
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    calibration = [tokenizer(p)["input_ids"] for p in PROMPTS]
    weighted = {n.name for n in onnx.load(str(fp32_dir / "model.onnx")).graph.node if n.op_type == "MatMul"}
    everything = core_export.outlier_matmuls(fp32_dir, calibration, ratio=1.0)  # peak > rms: every input
    assert set(everything) <= weighted and "/model/layers.0/mlp/down_proj/MatMul" in everything
    assert all(ratio > 1.0 for ratio in everything.values())
    assert core_export.outlier_matmuls(fp32_dir, calibration, ratio=1e9) == {}
    assert sorted(p.name for p in fp32_dir.iterdir() if p.suffix == ".onnx") == ["model.onnx"]  # probe removed
    with pytest.raises(ExportError, match="needs calibration"):
        quantize(fp32_dir, tmp_path / "q", "int8_weight_only_outlier_aware")


def test_export_rejects_impossible_settings(merged_dir, tmp_path):
    with pytest.raises(ExportError, match="between 0 and 1"):
        export_model(merged_dir, tmp_path, PROMPTS, recipes=[], new_tokens=4, gate=ParityGate(1.01))
    with pytest.raises(ExportError, match="unknown quantization recipe"):
        export_model(merged_dir, tmp_path, PROMPTS, recipes=["int3_magic"], new_tokens=4, gate=ParityGate(0.9))


def test_config_recipes_are_the_known_ones():
    from typing import get_args

    from retune.config import ExportConfig, QuantRecipe

    assert get_args(QuantRecipe) == RECIPES
    assert all(r in RECIPES for r in ExportConfig().recipes)


def test_judge_names_every_missed_criterion_and_by_how_much():
    gate = ParityGate(min_greedy_agreement=0.95, min_top1_agreement=0.95, max_logit_rel_err=0.2)
    assert judge("ok", 1.0, 0.96, 0.1, gate).passed
    parity = judge("bad", 0.51, 0.614, 0.35, gate)
    assert not parity.passed
    assert parity.misses == [
        "served greedy agreement 0.510 < 0.95 (short by 0.440)",
        "top-1 agreement 0.614 < 0.95 (short by 0.336)",
        "logit rel. error 0.35 > 0.2 (over by 0.15)",
    ]


def _variant(name: str, agreement: float, latency_ms: float) -> Variant:
    parity = judge(name, agreement, 1.0, 0.0, ParityGate(0.9))
    return Variant(name, Path(name), 1, parity, Latency({32: latency_ms}, 1, 1))


def test_choose_variant_prefers_the_fastest_passing():
    variants = [_variant("fp32", 1.0, 30.0), _variant("int8_weight_only_all", 0.95, 10.0),
                _variant("int8_dynamic", 0.55, 8.0)]
    chosen, reason = choose_variant(variants, ParityGate(0.9))
    assert chosen.name == "int8_weight_only_all"
    assert "fp32 passed but was slower (30.0 ms, 3.00x)" in reason
    assert "int8_dynamic failed parity (served greedy agreement 0.550 < 0.9 (short by 0.350))" in reason


def test_choose_variant_falls_back_to_fp32_when_every_recipe_fails():
    chosen, reason = choose_variant([_variant("fp32", 1.0, 30.0), _variant("int8_dynamic", 0.55, 10.0)],
                                    ParityGate(0.9))
    assert chosen.name == "fp32"
    assert "int8_dynamic failed parity (served greedy agreement 0.550 < 0.9" in reason


def test_greedy_agreement_counts_positions_and_early_stops():
    assert greedy_agreement([1, 2, 3, 4], [1, 2, 9, 4], 4) == 0.75
    assert greedy_agreement([1, 2], [1, 2], 4) == 1.0  # both stopped at the same place
    assert greedy_agreement([1, 2], [1, 2, 5, 6], 4) == 0.5


def test_smoothing_computes_the_same_function_and_feeds_only_the_smooth_recipes(merged_dir, fp32_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    calibration = core_export._token_ids(merged_dir, PROMPTS)
    smoothed = core_export.smooth_model(merged_dir, tmp_path / "smoothed", calibration)
    plain = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    rewritten = AutoModelForCausalLM.from_pretrained(smoothed).eval()
    ids = torch.tensor([calibration[0]])
    with torch.no_grad():
        torch.testing.assert_close(rewritten(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
    norm = "model.layers.0.input_layernorm.weight"
    assert not torch.allclose(rewritten.state_dict()[norm], plain.state_dict()[norm])  # really rescaled
    assert json.loads((smoothed / "smoothing.json").read_text())["alpha"] == core_export.SMOOTH_ALPHA
    with pytest.raises(ExportError, match="needs a smoothed_onnx export"):
        quantize(fp32_dir, tmp_path / "q", "int8_weight_only_smooth_all")
    smoothed_fp32 = core_export.smoothed_onnx(smoothed, tmp_path / "smoothed_fp32")
    with pytest.raises(ExportError, match="needs an unsmoothed"):
        quantize(smoothed_fp32, tmp_path / "q", "int8_weight_only_all")


def test_served_agreement_scores_eager_reply_tokens_in_place():
    end = 2  # end of turn
    assert served_agreement([5, 6, 7, end], [5, 6, 7, end]) == 1.0  # agree, end included
    assert served_agreement([5, 6, 7, end], [5, 9, 7, end]) == 0.75  # diverge once, then back on track
    assert served_agreement([5, 6, 7, end], [5, 6, end]) == 0.5  # stopped early: its end and the missing token
    assert served_agreement([5, 6, end], [5, 6, 7, 8, end]) == 2 / 3  # ran past eager's end: disagrees there
    assert served_agreement([5, 6, 7, 8], [5, 6, 7, 8]) == 1.0  # neither ended within the token budget
    assert served_agreement([end], [5, 6]) == 0.0
    with pytest.raises(ExportError, match="at least one token"):
        served_agreement([], [5])


def test_fake_int8_blocks_rounds_each_block_on_its_own_scale():
    import torch

    row = torch.tensor([[0.5, -1.0, 0.25, 0.0, 100.0, 3.0, -7.0, 1.0]])
    rounded = core_export.fake_int8_blocks(row, 4)
    # First block: max 1.0, so steps of 1/127 and an error under half a step; the 100 in the second block
    # does not coarsen the first one (which a per-row scale would: 100/127 > 0.5).
    assert (rounded[0, :4] - row[0, :4]).abs().max() <= 0.5 / 127 + 1e-7
    assert rounded[0, 4] == pytest.approx(100.0) and rounded[0, 1] == pytest.approx(-1.0)
    assert (rounded[0, 4:] - row[0, 4:]).abs().max() <= 0.5 * 100 / 127 + 1e-6
    assert core_export.fake_int8_blocks(torch.ones(2, 5), 4).shape == (2, 5)  # a last partial block


def test_matmul_sensitivity_ranks_first_the_linear_that_rounding_breaks(merged_dir, tmp_path):
    """One Linear of a copy of the tiny model gets a huge weight in every block: int8 blocks then round its
    other weights to zero, and the search must rank it above every other MatMul."""
    import onnx
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    calibration = [tokenizer(p)["input_ids"] for p in PROMPTS]
    model = AutoModelForCausalLM.from_pretrained(merged_dir)
    with torch.no_grad():
        weight = model.model.layers[1].self_attn.q_proj.weight
        weight[:, ::32] = 50 * weight.abs().max()
    model.save_pretrained(tmp_path / "broken")
    tokenizer.save_pretrained(tmp_path / "broken")
    scores = core_export.matmul_sensitivity(tmp_path / "broken", calibration)
    assert max(scores, key=scores.get) == "/model/layers.1/self_attn/q_proj/MatMul"
    assert min(scores.values()) >= 0
    # Keyed by the names the ONNX export gives those MatMuls (what the quantizer's exclude list matches).
    fp32 = export_onnx(tmp_path / "broken", tmp_path / "fp32")
    weighted = {n.name for n in onnx.load(str(fp32 / "model.onnx")).graph.node if n.op_type == "MatMul"} - {
        "/model/rotary_emb/MatMul"
    }
    assert set(scores) == {n for n in weighted if n.endswith("_proj/MatMul")} | {"/lm_head/MatMul"}
    with pytest.raises(ExportError, match="needs calibration texts"):
        core_export.matmul_sensitivity(merged_dir, [])


def test_float_within_budget_keeps_the_most_sensitive_that_fit():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def matmul(name: str, rows: int) -> tuple:
        weight = numpy_helper.from_array(np.zeros((rows, 32), np.float32), name + "_w")
        return helper.make_node("MatMul", ["x", name + "_w"], [name + "_y"], name=name), weight

    sizes = [("big", 64), ("small", 8), ("mid", 16), ("tiny", 4)]
    nodes, weights = zip(*(matmul(n, rows) for n, rows in sizes), strict=True)
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])], [],
                              initializer=list(weights))  # fmt: skip
    model = helper.make_model(graph)
    per_weight = 1 + 4 / 32  # 8-bit MatMulNBits: a byte per weight and an fp32 scale per block of 32
    quantized = (64 + 8 + 16 + 4) * 32 * per_weight
    extra = {n: rows * 32 * (4 - per_weight) for n, rows in sizes}
    scores = {"big": 3.0, "small": 2.0, "mid": 1.0, "tiny": 0.5, "not_a_matmul": 9.0}
    # "big" does not fit: skipped; "small" then "mid" do; "tiny" would overflow by a byte.
    budget = quantized + extra["small"] + extra["mid"] + extra["tiny"] - 1
    assert core_export.float_within_budget(model, scores, budget, 32) == ["small", "mid"]
    assert core_export.float_within_budget(model, scores, quantized + sum(extra.values()), 32) == [
        "big", "small", "mid", "tiny"
    ]
    assert core_export.float_within_budget(model, scores, quantized - 1, 32) == []
    # fp16 storage costs 2 bytes a weight instead of 4: "big" then fits where it did not in fp32.
    assert core_export.float_within_budget(model, scores, budget, 32, float_bytes=2)[0] == "big"
    # At most a share of the MatMul weights in float (the slow ones): 20 of 92 rows allow "small" and "tiny".
    assert core_export.float_within_budget(model, scores, 1e9, 32, max_float_share=20 / 92) == ["small", "tiny"]
