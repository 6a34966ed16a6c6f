"""Export: LoRA merge, ONNX fp32 + int8 variants, and the parity gate, on the tiny bootstrapped model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from retune.errors import ExportError
from retune.export import (
    ExportResult,
    Parity,
    Variant,
    choose_variant,
    export_model,
    greedy_agreement,
    measure_variants,
    merge_adapter,
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
def exported(merged_dir, tmp_path_factory) -> tuple[ExportResult, float]:
    out = tmp_path_factory.mktemp("onnx")
    start = time.perf_counter()
    result = export_model(merged_dir, out, PROMPTS, quantize=True, new_tokens=NEW_TOKENS, min_agreement=0.5)
    return result, time.perf_counter() - start


def _logits(model, tokenizer):
    import torch

    enc = tokenizer(PROMPTS[0], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        return model(**enc).logits


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


def test_export_writes_fp32_and_int8_that_load_and_generate(exported):
    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoTokenizer

    result, _ = exported
    assert [v.name for v in result.variants] == ["fp32", "int8"]
    for variant in result.variants:
        assert (variant.path / "model.onnx").exists()
        tokenizer = AutoTokenizer.from_pretrained(variant.path)
        model = ORTModelForCausalLM.from_pretrained(variant.path)
        enc = tokenizer(PROMPTS[0], return_tensors="pt", return_token_type_ids=False)
        out = model.generate(**enc, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        assert out.shape[1] == enc["input_ids"].shape[1] + 4
    fp32, int8 = result.variants
    assert int8.size_bytes < fp32.size_bytes
    assert result.merged_size_bytes > 0


def test_parity_numbers_on_the_tiny_model(exported):
    result, _ = exported
    fp32, int8 = result.variants
    for variant in result.variants:
        assert 0.0 <= variant.parity.greedy_agreement <= 1.0
        assert variant.parity.max_logit_rel_err >= 0.0
        assert variant.latency_ms > 0
    assert fp32.parity.greedy_agreement == 1.0
    assert fp32.parity.max_logit_rel_err < 1e-4
    assert int8.parity.max_logit_rel_err > fp32.parity.max_logit_rel_err  # quantization does cost precision
    assert result.chosen.parity.passed
    assert result.chosen.latency_ms == min(v.latency_ms for v in result.variants if v.parity.passed)
    assert result.reason.startswith(f"{result.chosen.name} chosen")


def test_gate_rejects_an_onnx_model_that_does_not_match_pytorch(tiny_base_model, exported):
    """The ONNX export of the merged model, checked against the base model: an honest mismatch."""
    result, _ = exported
    fp32 = result.variants[0]
    variants, _ = measure_variants(tiny_base_model, {"fp32": fp32.path}, PROMPTS, NEW_TOKENS, 0.9)
    assert variants[0].parity.greedy_agreement < 0.9
    assert variants[0].parity.max_logit_rel_err > 0.01
    with pytest.raises(ExportError, match="short by"):
        choose_variant(variants, 0.9)


def test_export_rejects_an_impossible_threshold(merged_dir, tmp_path):
    with pytest.raises(ExportError, match="between 0 and 1"):
        export_model(merged_dir, tmp_path, PROMPTS, quantize=False, new_tokens=4, min_agreement=1.01)


def _variant(name: str, agreement: float, latency_ms: float) -> Variant:
    return Variant(name, Path(name), 1, Parity(name, agreement, 0.0, agreement >= 0.9), latency_ms)


def test_choose_variant_prefers_the_fastest_passing():
    chosen, reason = choose_variant([_variant("fp32", 1.0, 30.0), _variant("int8", 0.95, 10.0)], 0.9)
    assert chosen.name == "int8"
    assert "fp32 passed but was slower" in reason


def test_choose_variant_falls_back_to_fp32_when_int8_fails():
    chosen, reason = choose_variant([_variant("fp32", 1.0, 30.0), _variant("int8", 0.55, 10.0)], 0.9)
    assert chosen.name == "fp32"
    assert "int8 failed parity (0.550 < 0.9)" in reason


def test_greedy_agreement_counts_positions_and_early_stops():
    assert greedy_agreement([1, 2, 3, 4], [1, 2, 9, 4], 4) == 0.75
    assert greedy_agreement([1, 2], [1, 2], 4) == 1.0  # both stopped at the same place
    assert greedy_agreement([1, 2], [1, 2, 5, 6], 4) == 0.5
