"""Export a fine-tuned model for serving: merge the LoRA adapter, export ONNX, quantize, gate on parity."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retune.errors import ExportError

LATENCY_RUNS = 5  # generate() runs per backend and prompt length; the median is reported
LATENCY_PROMPT_TOKENS = (32, 128)  # batch 1; the first length is the one variants are chosen on
LATENCY_NEW_TOKENS = 32
# A protobuf message cannot exceed 2 GB: bigger models keep their weights in a file beside the graph.
EXTERNAL_DATA_BYTES = 2**31 - 1

# Quantization recipes, each measured on SmolLM2-135M fine-tuned by retune for 72 steps (held-out loss 0.36), 48
# held-out prompts, one thread (benchmarks/results/export.json; 24-step figures in export-24steps.json). Greedy
# figures: served (gated: replies up to 32 tokens stopping at end of turn) / forced (exactly 32 tokens). None keeps
# 95% served agreement: the int8 errors flip eager's choice where its top-2 logits are up to ~0.35 apart, and most
# replies pass such a gap (the smallest per prompt: 0.004-0.89); the gate then keeps fp32 ONNX (1.65x eager).
# accuracy_level 1/2 would avoid int8 activations but ran ~10x slower than fp32 here. Simulating the rounding in
# PyTorch (teacher-forced along eager's 48 replies, the sensitive recipe's float MatMuls: 13 replies flipped) put
# the int8 activations (per-block inside MatMulNBits) ahead of the weights as the error source (11 flipped by the
# activations alone, 8 by the weights alone); leaving token 0 (the attention sink) unrounded gave 11, blocks of 16
# gave 11; smoothing every-MatMul int8 gave 14 instead of 21 (the smooth recipes below: less in ONNX).
RECIPES = (
    # Two-pass 8-bit MatMulNBits (retune.two_pass): every MatMul, the untied lm_head included, sends its
    # activations through the int8 kernel as their int8 part and the remainder (two rows of one call), and adds a
    # 4-bit residual of the 8-bit weight's rounding (not on the lm_head); sibling MatMuls (q/k/v, gate/up) are one
    # call; the embedding rows int8. Measured: 43% size, top-1 0.977, greedy 97.8% served / 94.9% forced (the
    # only recipe over the gate's 95%), 2.30x eager generation (decoding 23 ms per token against the sensitive
    # recipe's 20; the 32-token prefill pays for two activation rows and the residual: forward 128 is 0.67x eager).
    "int8_two_pass",
    # 8-bit MatMulNBits (accuracy_level 4) on every MatMul including the untied lm_head, the embedding table as
    # int8 rows with a scale per block; then the MatMuls whose rounding alone moves the next-token distribution
    # most on training text (matmul_sensitivity: KL vs fp32, one Linear at a time) stay float (fp16 on disk), most
    # sensitive first, within SENSITIVE_SIZE_BUDGET of the fp32 size and SENSITIVE_FLOAT_SHARE of the weights.
    # Measured: 39% size, top-1 0.955, greedy 88.3% served / 82.2% forced, 2.78x eager generation (60 MatMuls
    # float, mostly v_proj and down_proj); the best quantized recipe, 0.067 short of the gate's 0.95 served
    # agreement. The search costs ~5 min on one thread.
    "int8_weight_only_sensitive",
    # int8_weight_only_sensitive on the smoothed model (smooth_activations: SmoothQuant's exact rewrite, outlier
    # input channels scaled down and their weight columns up, folded into the RMSNorm, up_proj and v_proj
    # weights) with its own sensitivity search: the int8 activation blocks meet flatter rows. alpha 0.5 (0.3 and
    # 0.7 simulated worse). Measured: 39%, top-1 0.958, greedy 78.8% / 68.9%, 2.73x: worse than without smoothing
    # (the KL ranking on the smoothed model keeps other MatMuls float, and they flip more replies).
    "int8_weight_only_smooth_sensitive",
    # int8_weight_only_all on the smoothed model. Measured: 39%, top-1 0.956, greedy 81.7% / 73.5%, 3.51x
    # (int8_weight_only_all: 0.941, 77.1% / 68.3%, 3.48x): smoothing helps every-MatMul int8, not enough.
    "int8_weight_only_smooth_all",
    # 8-bit MatMulNBits on every MatMul including the untied lm_head, except those whose input activations carry
    # outliers on calibration text (max |x| > OUTLIER_RATIO x rms: a few down_proj on SmolLM2), which stay fp32.
    # int8 activations inside the kernel (accuracy_level 4) are what makes it fast, and what outliers break.
    # Measured: 43%, top-1 0.939, greedy 73.1% / 64.0%, 3.28x.
    "int8_weight_only_outlier_aware",
    # 8-bit block-wise weight-only MatMulNBits on every MatMul including the (untied) lm_head; the
    # embedding table kept as fp16: the lm_head is a third of the bytes read per generated token.
    # Measured: 39%, top-1 0.941, greedy 77.1% / 68.3%, 3.48x.
    "int8_weight_only_all",
    # The same without the lm_head, which stays fp32 (it is a Transpose of the tied embedding).
    "int8_weight_only_matmulnbits",
    # Dynamic int8 (per-channel weights, per-tensor activations) leaving out the MatMuls whose inputs carry
    # massive activations: down_proj, v_proj, and gate/up of the last two blocks.
    "int8_dynamic_selective",
    # Dynamic int8 on every MatMul: fastest, and breaks real LLMs (about 0.6 top-1 on SmolLM2).
    "int8_dynamic",
)
_WEIGHT_ONLY_BLOCK = 32
# int8 activations inside MatMulNBits: the fast kernel on avx512_vnni. Levels 1 and 2 (fp32/fp16 compute on
# int8 weights) were measured ~10x slower per token than fp32 ONNX on this onnxruntime (1.32): no 8-bit kernel.
_WEIGHT_ONLY_ACCURACY_LEVEL = 4
# The sensitivity-search recipe keeps the most sensitive MatMuls fp32 while the model stays within this share of
# the fp32 ONNX size (the export goal's size bound).
SENSITIVE_SIZE_BUDGET = 0.45
# ... and the MatMuls kept float (fp16 on disk, fp32 compute) hold at most this share of the MatMul weights: float
# MatMuls run at fp32 ONNX speed (1.6x eager on SmolLM2), MatMulNBits at ~3.5x; a 0.3 share measured 2.49x.
SENSITIVE_FLOAT_SHARE = 0.2
_SELECTIVE_LAST_BLOCKS = 2
# SmoothQuant's migration strength: how much of an input channel's range moves into the weight's column.
SMOOTH_ALPHA = 0.5
# Recipes applied to the smoothed model (smooth_activations; exported to its own fp32 ONNX first).
SMOOTHED_RECIPES = ("int8_weight_only_smooth_sensitive", "int8_weight_only_smooth_all")
SENSITIVE_RECIPES = ("int8_weight_only_sensitive", "int8_weight_only_smooth_sensitive")
OUTLIER_RATIO = 100.0  # on SmolLM2 8 of 210 projections exceed it (up to ~300); the median one is ~20
SMOOTHING_FILE = "smoothing.json"  # beside a smoothed model: alpha and calibration size


@dataclass
class ParityGate:
    """What an ONNX variant must reproduce of the PyTorch model to be kept."""

    # share of PyTorch's served reply tokens (greedy, stopping at end of turn) the variant reproduces in place:
    # served_agreement, what `retune serve` would answer; the forced-length figure is recorded, not gated
    min_greedy_agreement: float
    min_top1_agreement: float = 0.0  # share of prompt positions whose top-1 token equals PyTorch's
    max_logit_rel_err: float = math.inf  # max |onnx - torch| / max |torch| over the prompt forward

    def check(self) -> None:
        for name in ("min_greedy_agreement", "min_top1_agreement"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ExportError(f"{name} must be between 0 and 1, got {value}")
        if not self.max_logit_rel_err > 0:
            raise ExportError(f"max_logit_rel_err must be positive, got {self.max_logit_rel_err}")


@dataclass
class Parity:
    """How closely one ONNX variant reproduces the PyTorch model on the parity prompts."""

    variant: str
    greedy_agreement: float  # served_agreement averaged over prompts: the gated figure
    max_logit_rel_err: float  # max |onnx - torch| / max |torch| over the prompt forward, worst prompt
    passed: bool
    top1_agreement: float = 1.0  # share of prompt positions with the same top-1 token as PyTorch
    misses: list[str] = field(default_factory=list)  # each failed criterion, with by how much
    # greedy_agreement over exactly new_tokens tokens, end of turn suppressed in both (recorded, not gated)
    forced_agreement: float | None = None


@dataclass
class Latency:
    """Median generate() time, batch 1, LATENCY_NEW_TOKENS new tokens, for each prompt length."""

    prompt_ms: dict[int, float]  # prompt length in tokens -> median ms
    runs: int
    threads: int

    @property
    def ms(self) -> float:
        """The number variants are chosen on: the shortest prompt."""
        return self.prompt_ms[min(self.prompt_ms)]


@dataclass
class Variant:
    """One exported model file set that ORTModelForCausalLM can load."""

    name: str  # "fp32" or a recipe name
    path: Path
    size_bytes: int
    parity: Parity
    latency: Latency

    @property
    def latency_ms(self) -> float:
        return self.latency.ms


@dataclass
class ExportResult:
    merged_dir: Path
    merged_size_bytes: int
    variants: list[Variant]
    chosen: Variant
    reason: str  # which variant won, and why each other lost (by how much)
    eager: Latency  # the same timing for the PyTorch merged model, for comparison
    gate: ParityGate
    failed_recipes: dict[str, str] = field(default_factory=dict)  # recipe -> why it could not be built
    # 1-minute load average before and after the latency runs: other processes on the machine skew absolute ms
    # (eager and variants are interleaved run by run, so the ratios stay fair)
    load_average: tuple[float, float] = (0.0, 0.0)

    @property
    def eager_latency_ms(self) -> float:
        return self.eager.ms

    def speedup(self, variant: Variant) -> dict[int, float]:
        """Eager ms / variant ms for each prompt length (generation of LATENCY_NEW_TOKENS tokens)."""
        return {n: self.eager.prompt_ms[n] / ms for n, ms in variant.latency.prompt_ms.items()}


@dataclass
class _Reference:
    """What the PyTorch model produced on the parity prompts: the yardstick for every variant."""

    encodings: list[dict[str, Any]]
    logits: list[Any]  # torch tensors [seq, vocab]
    generations: list[list[int]]  # only the new tokens, exactly new_tokens of them (end of sequence suppressed)
    model: Any  # the PyTorch model itself, timed side by side with the variants
    eos_token_ids: list[int]
    replies: list[list[int]] = field(default_factory=list)  # greedy up to new_tokens, ending with a stop token
    stop_ids: list[int] = field(default_factory=list)  # end_of_turn_ids: where a served reply ends


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path) -> Path:
    """Fold a LoRA adapter into its base weights and save a plain transformers model with its tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise ExportError(f"no LoRA adapter in {adapter_dir} (adapter_config.json missing)")
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    # The training run may have saved the tokenizer beside the adapter; prefer it, it is what training saw.
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base_model
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(out_dir)
    return out_dir


def export_model(
    merged_dir: Path,
    out_dir: Path,
    prompts: list[str],
    *,
    recipes: list[str],
    new_tokens: int,
    gate: ParityGate,
    threads: int = 1,
    calibration: list[str] | None = None,
    runs: int = LATENCY_RUNS,
) -> ExportResult:
    """Export fp32 ONNX and one quantized variant per recipe, measure each against PyTorch, keep the fastest
    that passes the parity gate (fp32 when none does). ExportError when not even fp32 passes.

    `calibration`: texts the outlier-aware and sensitive recipes look at (training data, not the parity prompts;
    default: the prompts)."""
    gate.check()
    if not prompts:
        raise ExportError("the parity gate needs at least one prompt")
    if new_tokens < 1:
        raise ExportError(f"new_tokens must be at least 1, got {new_tokens}")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise ExportError(f"unknown quantization recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    merged_dir, out_dir = Path(merged_dir), Path(out_dir)

    paths = {"fp32": export_onnx(merged_dir, out_dir / "fp32")}
    calibration_ids = _token_ids(merged_dir, calibration or prompts)
    failed: dict[str, str] = {}
    sensitivities: dict[Path, dict[str, float]] = {}  # per source model: the plain and the smoothed one
    smoothed: tuple[Path, Path] | None = None  # the smoothed model: merged (PyTorch) and its fp32 ONNX
    for recipe in recipes:
        try:
            source_merged, source = merged_dir, paths["fp32"]
            if recipe in SMOOTHED_RECIPES:
                if smoothed is None:
                    smoothed_merged = smooth_model(merged_dir, out_dir / "smoothed" / "merged", calibration_ids)
                    smoothed = smoothed_merged, smoothed_onnx(smoothed_merged, out_dir / "smoothed" / "fp32")
                source_merged, source = smoothed
            scores = None
            if recipe in SENSITIVE_RECIPES:
                if source_merged not in sensitivities:
                    sensitivities[source_merged] = matmul_sensitivity(source_merged, calibration_ids, threads=threads)
                scores = sensitivities[source_merged]
            paths[recipe] = quantize(source, out_dir / recipe, recipe, calibration_ids, scores)
        except Exception as exc:  # one broken recipe must not cost the run: fp32 and the others remain
            failed[recipe] = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(out_dir / "smoothed", ignore_errors=True)  # each variant is self-contained: a model's worth of disk

    load_before = os.getloadavg()
    variants, eager = measure_variants(merged_dir, paths, prompts, new_tokens, gate, threads=threads, runs=runs)
    chosen, reason = choose_variant(variants, gate, eager)
    if failed:
        reason += " " + " ".join(f"{r} could not be built ({why.splitlines()[0][:200]})." for r, why in failed.items())
    return ExportResult(
        merged_dir=merged_dir,
        merged_size_bytes=_weights_size(merged_dir),
        variants=variants,
        chosen=chosen,
        reason=reason,
        eager=eager,
        gate=gate,
        failed_recipes=failed,
        load_average=(load_before[0], os.getloadavg()[0]),
    )


def _token_ids(tokenizer_dir: Path, texts: list[str], max_tokens: int = 256) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [tokenizer(t)["input_ids"][:max_tokens] for t in texts if t]


def measure_variants(
    torch_dir: Path,
    onnx_dirs: dict[str, Path],
    prompts: list[str],
    new_tokens: int,
    gate: ParityGate,
    *,
    threads: int = 1,
    runs: int = LATENCY_RUNS,
) -> tuple[list[Variant], Latency]:
    """Parity and latency of each ONNX directory against the PyTorch model in `torch_dir`.

    Returns the variants and the PyTorch model's own latency. Latency runs are interleaved (eager, then each
    variant, `runs` rounds) so that load from other processes on a shared machine hits every backend alike.
    """
    reference = _run_reference(Path(torch_dir), prompts, new_tokens, threads)
    generators = {name: OnnxGenerator(Path(path), threads) for name, path in onnx_dirs.items()}
    parities = {name: _parity(name, gen, reference, new_tokens, gate) for name, gen in generators.items()}
    latencies = measure_latencies(reference.model, generators, reference.encodings, threads, runs)
    variants = [
        Variant(name, Path(path), onnx_size(Path(path)), parities[name], latencies[name])
        for name, path in onnx_dirs.items()
    ]
    return variants, latencies[EAGER]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's tracer warnings and the quantizer's pre-processing advice say nothing a user can act on."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def export_onnx(merged_dir: Path, out_dir: Path) -> Path:
    """Export a decoder with KV cache to ONNX with optimum; the directory also holds config and tokenizer."""
    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoTokenizer

    try:
        with _quiet():
            model = ORTModelForCausalLM.from_pretrained(merged_dir, export=True, use_cache=True)
    except Exception as exc:  # optimum raises many types; the user needs to know which model and why
        raise ExportError(f"ONNX export of {merged_dir} failed: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    if not _external_data(out_dir) and onnx_size(out_dir) > EXTERNAL_DATA_BYTES:
        _move_weights_to_external_data(out_dir / "model.onnx")
    AutoTokenizer.from_pretrained(merged_dir).save_pretrained(out_dir)
    return out_dir


def _move_weights_to_external_data(model_path: Path) -> None:
    """Rewrite a graph with its initializers in `model.onnx_data` beside it (optimum's own name for it)."""
    import onnx

    model = onnx.load(str(model_path))
    onnx.save_model(model, str(model_path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)  # fmt: skip


def quantize(
    fp32_dir: Path, out_dir: Path, recipe: str, calibration: list[list[int]] | None = None,
    sensitivity: dict[str, float] | None = None,
) -> Path:
    """One quantized variant of an exported model, loadable like the fp32 one. `calibration` (token ids of a few
    texts) is what the outlier-aware recipe looks at, `sensitivity` (`matmul_sensitivity`) what the sensitive
    recipes rank MatMuls by; ExportError without them. The smooth recipes quantize `smoothed_onnx`'s export (the
    same steps as their plain twins); ExportError on another one."""
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    smoothed = (fp32_dir / SMOOTHING_FILE).exists()
    if (recipe in SMOOTHED_RECIPES) != smoothed:
        wanted = "a smoothed_onnx export" if recipe in SMOOTHED_RECIPES else "an unsmoothed export"
        raise ExportError(f"the {recipe} recipe needs {wanted}, and {fp32_dir} is {'' if smoothed else 'not '}smoothed")
    recipe = {"int8_weight_only_smooth_sensitive": "int8_weight_only_sensitive",
              "int8_weight_only_smooth_all": "int8_weight_only_all"}.get(recipe, recipe)  # fmt: skip
    if recipe == "int8_weight_only_outlier_aware" and not calibration:
        raise ExportError(f"the {recipe} recipe needs calibration texts")
    if recipe == "int8_weight_only_sensitive" and not sensitivity:
        raise ExportError(f"the {recipe} recipe needs the MatMuls' sensitivity scores")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet():
        if recipe == "int8_weight_only_sensitive":
            kept = _quantize_weight_only(fp32_dir, out_dir, untie_lm_head=True, embedding="int8",
                                         sensitivity=sensitivity)  # fmt: skip
            ranked = sorted(sensitivity or {}, key=lambda n: -(sensitivity or {})[n])
            (out_dir / "fp32_matmuls.json").write_text(json.dumps({n: (sensitivity or {})[n] for n in kept}, indent=1))
            (out_dir / "sensitivity.json").write_text(json.dumps({n: (sensitivity or {})[n] for n in ranked}, indent=1))
        elif recipe == "int8_weight_only_outlier_aware":
            outliers = outlier_matmuls(fp32_dir, calibration or [])
            _quantize_weight_only(fp32_dir, out_dir, untie_lm_head=True, exclude=sorted(outliers))
            (out_dir / "fp32_matmuls.json").write_text(json.dumps(outliers, indent=1))
        elif recipe == "int8_two_pass":
            _quantize_two_pass(fp32_dir, out_dir)
        elif recipe == "int8_dynamic":
            _quantize_dynamic(fp32_dir, out_dir, exclude=[])
        elif recipe == "int8_dynamic_selective":
            _quantize_dynamic(fp32_dir, out_dir, exclude=_sensitive_matmuls(fp32_dir / "model.onnx"))
        elif recipe == "int8_weight_only_matmulnbits":
            _quantize_weight_only(fp32_dir, out_dir, untie_lm_head=False)
        elif recipe == "int8_weight_only_all":
            _quantize_weight_only(fp32_dir, out_dir, untie_lm_head=True)
        else:
            raise ExportError(f"unknown quantization recipe '{recipe}'; known: {', '.join(RECIPES)}")
    for item in fp32_dir.iterdir():
        if item.is_file() and not item.name.startswith("model.onnx"):
            shutil.copy2(item, out_dir / item.name)
    return out_dir


def smooth_model(merged_dir: Path, out_dir: Path, calibration: list[list[int]], alpha: float = SMOOTH_ALPHA) -> Path:
    """A copy of the merged model rewritten by smooth_activations (the same function in fp32), with its tokenizer
    and the smoothing's parameters in SMOOTHING_FILE."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    count = smooth_activations(model, calibration, alpha)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(merged_dir).save_pretrained(out_dir)
    texts_digest = hashlib.sha256(json.dumps(calibration).encode()).hexdigest()
    record = {"alpha": alpha, "matmuls_smoothed": count, "calibration_texts": len(calibration),
              "calibration_sha256": texts_digest}  # fmt: skip
    (out_dir / SMOOTHING_FILE).write_text(json.dumps(record, indent=1))
    return out_dir


def smoothed_onnx(smoothed_merged: Path, out_dir: Path) -> Path:
    """export_onnx of a smooth_model directory, marked (SMOOTHING_FILE) so only the smooth recipes quantize it."""
    out_dir = export_onnx(smoothed_merged, out_dir)
    shutil.copy2(Path(smoothed_merged) / SMOOTHING_FILE, out_dir / SMOOTHING_FILE)
    return out_dir


def activation_maxima(model: Any, calibration: list[list[int]], names: list[str]) -> dict[str, Any]:
    """Per input channel max |x| of each named Linear over the calibration token ids (one text at a time)."""
    import torch

    modules = dict(model.named_modules())
    maxima: dict[str, Any] = {}

    def recorder(name: str) -> Any:
        def record(_module: Any, inputs: tuple[Any, ...]) -> None:
            peak = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[name] = peak if name not in maxima else torch.maximum(maxima[name], peak)

        return record

    handles = [modules[n].register_forward_pre_hook(recorder(n)) for n in names]
    try:
        with torch.no_grad():
            for ids in calibration:
                model(input_ids=torch.tensor([ids]))
    finally:
        for handle in handles:
            handle.remove()
    return maxima


def smooth_activations(model: Any, calibration: list[list[int]], alpha: float = SMOOTH_ALPHA) -> int:
    """SmoothQuant's equivalent rewrite of a Llama-style decoder, in place: divide each int8-quantized MatMul input
    channel j by s_j = max|x_j|^alpha / max|W_j|^(1-alpha) and multiply the weight's column j by s_j, the division
    folded into what produces x (the RMSNorm weight before q/k/v and gate/up, the rows of up_proj before down_proj,
    the rows of v_proj before o_proj). The fp32 model computes the same function; the per-block int8 rounding of
    activations inside MatMulNBits (accuracy_level 4) then meets flatter rows, the weights take a share of the
    range. Returns the number of MatMuls smoothed; ExportError on another architecture."""
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    config = model.config
    if layers is None or not all(hasattr(layer, "self_attn") and hasattr(layer, "mlp") for layer in layers):
        raise ExportError(f"activation smoothing needs a Llama-style decoder, not {config.model_type}")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    group = config.num_attention_heads // config.num_key_value_heads
    names = []
    for i in range(len(layers)):
        prefix = f"model.layers.{i}"
        names += [f"{prefix}.self_attn.q_proj", f"{prefix}.self_attn.o_proj", f"{prefix}.mlp.gate_proj",
                  f"{prefix}.mlp.down_proj"]  # fmt: skip
    maxima = activation_maxima(model, calibration, names)

    def scales(x_max: Any, w_max: Any) -> Any:
        # Bounded: a channel never seen active (or a zero column) must not blow up its weight or its input.
        return (x_max.clamp_min(1e-5).pow(alpha) / w_max.clamp_min(1e-5).pow(1 - alpha)).clamp(1e-2, 1e2)

    def column_max(*weights: Any) -> Any:
        return torch.stack([w.abs().amax(0) for w in weights]).amax(0)

    with torch.no_grad():
        for i, layer in enumerate(layers):
            prefix = f"model.layers.{i}"
            attn, mlp = layer.self_attn, layer.mlp
            # q/k/v share the RMSNorm before them: one scale per hidden channel for the three.
            s = scales(maxima[f"{prefix}.self_attn.q_proj"],
                       column_max(attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight))
            layer.input_layernorm.weight.div_(s)
            for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
                proj.weight.mul_(s)
            s = scales(maxima[f"{prefix}.mlp.gate_proj"], column_max(mlp.gate_proj.weight, mlp.up_proj.weight))
            layer.post_attention_layernorm.weight.div_(s)
            for proj in (mlp.gate_proj, mlp.up_proj):
                proj.weight.mul_(s)
            # down_proj's input is silu(gate) * up: scaling up's output row j scales input channel j alone.
            s = scales(maxima[f"{prefix}.mlp.down_proj"], column_max(mlp.down_proj.weight))
            mlp.up_proj.weight.div_(s[:, None])
            mlp.down_proj.weight.mul_(s)
            # o_proj's input channel (head h, dim d) is a mix of v rows (kv head h // group, dim d): the query heads
            # that share a kv head must share its scale.
            x_max = maxima[f"{prefix}.self_attn.o_proj"].reshape(-1, group, head_dim)
            w_max = attn.o_proj.weight.abs().amax(0).reshape(-1, group, head_dim)
            s = scales(x_max.amax(1), w_max.amax(1))
            attn.v_proj.weight.div_(s.reshape(-1)[:, None])
            if attn.v_proj.bias is not None:
                attn.v_proj.bias.div_(s.reshape(-1))
            attn.o_proj.weight.mul_(s[:, None, :].expand(-1, group, -1).reshape(-1))
    return 7 * len(layers)


def quantize_int8(fp32_dir: Path, out_dir: Path) -> Path:
    """Plain dynamic int8 on every MatMul (the `int8_dynamic` recipe)."""
    return quantize(fp32_dir, out_dir, "int8_dynamic")


def _external_data(onnx_dir: Path) -> bool:
    """Whether the weights live beside the graph (models over 2 GB); a variant of such a model keeps them there
    too. optimum writes `model.onnx_data`, onnxruntime's quantizers `model.onnx.data`."""
    return (onnx_dir / "model.onnx_data").exists() or (onnx_dir / "model.onnx.data").exists()


def _quantize_dynamic(fp32_dir: Path, out_dir: Path, exclude: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_dir / "model.onnx",
        out_dir / "model.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
        use_external_data_format=_external_data(fp32_dir),
    )


def outlier_matmuls(fp32_dir: Path, calibration: list[list[int]], ratio: float | None = None) -> dict[str, float]:
    """MatMuls (with a weight initializer) whose input activations on the calibration token ids reach more than
    `ratio` (default OUTLIER_RATIO) times their rms, with that max/rms: per-block int8 activation scales lose
    the small values next to such an outlier."""
    import numpy as np
    import onnx
    import onnxruntime

    ratio = OUTLIER_RATIO if ratio is None else ratio
    model_path = Path(fp32_dir) / "model.onnx"
    model = onnx.load(str(model_path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    probes = {n.input[0]: n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights}
    outputs = {o.name for o in model.graph.output}
    for tensor in probes:
        if tensor not in outputs:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    # Saved beside the original: external weights (models over 2 GB) are found by their relative location.
    probe_path = model_path.with_name("calibration_probe.onnx")
    try:
        onnx.save_model(model, str(probe_path))
        session = onnxruntime.InferenceSession(str(probe_path), providers=["CPUExecutionProvider"])
    finally:
        probe_path.unlink(missing_ok=True)
    inputs = {i.name: i for i in session.get_inputs()}
    peak: dict[str, float] = {}
    squares: dict[str, list[float]] = {}
    for ids in calibration:
        feed = {"input_ids": np.asarray([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
        if "position_ids" in inputs:
            feed["position_ids"] = np.arange(len(ids), dtype=np.int64)[None]
        for name, arg in inputs.items():
            if name.startswith("past_key_values"):
                feed[name] = np.zeros((1, arg.shape[1], 0, arg.shape[3]), np.float32)
        values = session.run(list(probes), feed)
        for tensor, value in zip(probes, values, strict=True):
            peak[tensor] = max(peak.get(tensor, 0.0), float(np.abs(value).max()))
            squares.setdefault(tensor, []).append(float(np.square(value, dtype=np.float64).mean()))
    found = {}
    for tensor, node in probes.items():
        rms = math.sqrt(sum(squares[tensor]) / len(squares[tensor]))
        if rms > 0 and peak[tensor] / rms > ratio:
            found[node] = round(peak[tensor] / rms, 1)
    return found


def fake_int8_blocks(t: Any, block: int) -> Any:
    """`t` rounded to symmetric int8 in blocks of `block` along its last axis and back to float: what
    MatMulNBits (8 bits, accuracy_level 4) does to a weight row and to an activation row before the int8 dot."""
    import torch

    k = t.shape[-1]
    pad = (-k) % block
    blocks = torch.nn.functional.pad(t, (0, pad)).reshape(*t.shape[:-1], -1, block)
    scale = blocks.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 127
    return ((blocks / scale).round().clamp(-127, 127) * scale).reshape(*t.shape[:-1], k + pad)[..., :k]


def matmul_sensitivity(
    merged_dir: Path, calibration: list[list[int]], *, block_size: int = _WEIGHT_ONLY_BLOCK,
    max_texts: int = 4, max_tokens: int = 96, threads: int = 1,
) -> dict[str, float]:
    """How much quantizing each Linear alone (int8 blocks of weights and activations, as MatMulNBits with
    accuracy_level 4 computes) moves the model's next-token distribution on the calibration token ids: mean
    KL(fp32 || quantized) over every position, keyed by the ONNX MatMul node name optimum gives that Linear.

    Measured on the PyTorch model one Linear at a time (a forward hook recomputes its output from the rounded
    input and weight; tied weights are left untouched); the calibration texts are truncated to one common length
    and run as one batch."""
    import torch
    from transformers import AutoModelForCausalLM

    texts = [ids for ids in calibration if len(ids) >= 2][:max_texts]
    if not texts:
        raise ExportError("the sensitivity search needs calibration texts of at least 2 tokens")
    length = min(max_tokens, *(len(ids) for ids in texts))
    batch = torch.tensor([ids[:length] for ids in texts])
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    linears = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}

    def rounded(module: torch.nn.Linear, inputs: tuple[Any, ...], _output: Any) -> Any:
        weight = fake_int8_blocks(module.weight, block_size)
        return torch.nn.functional.linear(fake_int8_blocks(inputs[0], block_size), weight, module.bias)

    scores = {}
    with torch_threads(threads), torch.no_grad():
        reference = torch.log_softmax(model(input_ids=batch).logits.float(), -1)
        for name, module in linears.items():
            handle = module.register_forward_hook(rounded)
            try:
                quantized = torch.log_softmax(model(input_ids=batch).logits.float(), -1)
            finally:
                handle.remove()
            kl = (reference.exp() * (reference - quantized)).sum(-1).mean()
            scores["/" + name.replace(".", "/").replace("/layers/", "/layers.") + "/MatMul"] = float(kl)
    return scores


def _sensitive_matmuls(model_path: Path) -> list[str]:
    """Names of the MatMuls whose inputs carry outlier activations (per-tensor int8 scales fail there)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = [n.name for n in graph.node if n.op_type == "MatMul"]
    blocks = sorted({int(n.split("/layers.")[1].split("/")[0]) for n in names if "/layers." in n})
    last = set(blocks[-_SELECTIVE_LAST_BLOCKS:])

    def sensitive(name: str) -> bool:
        if "/down_proj/" in name or "/v_proj/" in name:
            return True
        if "/layers." in name and ("/gate_proj/" in name or "/up_proj/" in name):
            return int(name.split("/layers.")[1].split("/")[0]) in last
        return False

    return [n for n in names if sensitive(n)]


def _quantize_weight_only(
    fp32_dir: Path,
    out_dir: Path,
    *,
    untie_lm_head: bool,
    block_size: int = _WEIGHT_ONLY_BLOCK,
    accuracy_level: int = _WEIGHT_ONLY_ACCURACY_LEVEL,
    symmetric: bool = True,
    exclude: list[str] | None = None,
    embedding: str = "fp16",
    sensitivity: dict[str, float] | None = None,
    size_budget: float = SENSITIVE_SIZE_BUDGET,
    float_share: float = SENSITIVE_FLOAT_SHARE,
    fp16_storage: bool = True,
) -> list[str]:
    """8-bit block-wise weight-only quantization (MatMulNBits); activations stay float outside the kernel.
    With `untie_lm_head` the embedding table is stored as `embedding` ("fp16" or "int8"). With `sensitivity`
    (MatMul name -> score) the highest-scoring MatMuls stay float (fp16 on disk with `fp16_storage`, fp32
    compute) as long as the model fits `size_budget` x the fp32 size and they hold at most `float_share` of the
    MatMul weights. Returns the MatMuls left float."""
    import onnx

    from retune.two_pass import matmul_nbits

    model = onnx.load(str(fp32_dir / "model.onnx"))
    graph_bytes = onnx_size(fp32_dir) - _initializer_bytes(model)  # the graph itself, beside its weights
    if untie_lm_head:
        _fold_transposed_weights(model)
        (_embeddings_to_int8 if embedding == "int8" else _embeddings_to_fp16)(model)
    exclude = list(exclude or [])
    if sensitivity:
        kept = float_within_budget(model, sensitivity, size_budget * onnx_size(fp32_dir) - graph_bytes, block_size,
                                   float_bytes=2 if fp16_storage else 4, max_float_share=float_share)  # fmt: skip
        if fp16_storage:
            _matmul_weights_to_fp16(model, kept)
        exclude += [n for n in kept if n not in exclude]
    quantizer = matmul_nbits(model, exclude=exclude, bits=8, block=block_size, accuracy_level=accuracy_level,
                             symmetric=symmetric)  # fmt: skip
    quantizer.model.save_model_to_file(str(out_dir / "model.onnx"), use_external_data_format=_external_data(fp32_dir))
    return exclude


def _quantize_two_pass(fp32_dir: Path, out_dir: Path) -> list[str]:
    """retune.two_pass on the exported decoder, its lm_head untied and the embedding rows int8. Returns the MatMuls
    rewritten."""
    import onnx

    from retune.two_pass import two_pass_matmuls

    model = onnx.load(str(fp32_dir / "model.onnx"))
    _fold_transposed_weights(model)
    _embeddings_to_int8(model)
    rewritten = two_pass_matmuls(model)
    if _external_data(fp32_dir):  # a big model: its weights beside the graph, as the fp32 export keeps them
        onnx.save_model(model, str(out_dir / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", size_threshold=1024)  # fmt: skip
    else:
        onnx.save(model, str(out_dir / "model.onnx"))
    return rewritten


def float_within_budget(
    model: Any, sensitivity: dict[str, float], budget_bytes: float, block_size: int, *, float_bytes: int = 4,
    max_float_share: float = 1.0,
) -> list[str]:
    """MatMuls (with a weight initializer) to leave in float (stored with `float_bytes` per weight), most sensitive
    first, while the whole model, with every other MatMul as 8-bit MatMulNBits (1 byte per weight + an fp32 scale
    per block), stays within `budget_bytes`, and the float ones hold at most `max_float_share` of the MatMul
    weights (float MatMuls are the slow ones). One that does not fit is skipped and the next tried: a small
    sensitive projection may still fit after a large one did not."""
    import numpy as np
    from onnx import helper

    inits = {i.name: i for i in model.graph.initializer}
    params = {n.name: int(np.prod(inits[n.input[1]].dims)) for n in model.graph.node
              if n.op_type == "MatMul" and n.input[1] in inits}  # fmt: skip
    weights = {n.input[1] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits}
    quantized_bytes_per_weight = 1 + 4 / block_size

    def nbytes(init: Any) -> float:
        count = int(np.prod(init.dims))
        if init.name in weights:
            return count * quantized_bytes_per_weight
        return count * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize

    size = sum(nbytes(i) for i in inits.values())
    float_budget = max_float_share * sum(params.values())
    kept, kept_params = [], 0
    for name in sorted((n for n in sensitivity if n in params), key=lambda n: -sensitivity[n]):
        extra = params[name] * (float_bytes - quantized_bytes_per_weight)
        if size + extra <= budget_bytes and kept_params + params[name] <= float_budget:
            size += extra
            kept_params += params[name]
            kept.append(name)
    return kept


def _initializer_bytes(model: Any) -> int:
    import numpy as np
    from onnx import helper

    return sum(int(np.prod(i.dims)) * helper.tensor_dtype_to_np_dtype(i.data_type).itemsize
               for i in model.graph.initializer)  # fmt: skip


def _matmul_weights_to_fp16(model: Any, names: list[str]) -> None:
    """Store the weights of these MatMuls as fp16 behind a Cast to fp32: half the bytes on disk, fp32 compute
    (onnxruntime folds the Cast of a constant when the session loads)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    wanted = set(names)
    for node in list(graph.node):
        if node.name not in wanted or node.input[1] not in inits:
            continue
        weight = inits[node.input[1]]
        if weight.data_type != TensorProto.FLOAT or sum(node.input[1] in n.input for n in graph.node) > 1:
            continue  # already converted, or shared with another consumer
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float16), weight.name))
        cast = helper.make_node("Cast", [weight.name], [weight.name + "_fp32"], to=TensorProto.FLOAT,
                                name=node.name + "_weight_cast")  # fmt: skip
        node.input[1] = weight.name + "_fp32"
        graph.node.insert(list(graph.node).index(node), cast)


def _fold_transposed_weights(model: Any) -> None:
    """Replace Transpose(initializer) with a transposed initializer, so a tied lm_head becomes a plain MatMul
    weight the quantizer can see (the embedding keeps its own copy)."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    for node in list(graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        weight = numpy_helper.to_array(inits[node.input[0]])
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        folded = weight.transpose(perm) if perm else weight.T
        graph.initializer.append(numpy_helper.from_array(folded.copy(), node.output[0]))
        graph.node.remove(node)


def _embedding_lookups(graph: Any, row_multiple: int = 1) -> list[tuple[Any, Any]]:
    """(Gather node, its float 2-D table) for each table only that Gather reads (the token embedding), whose rows
    split into whole blocks of `row_multiple`; integer shape constants and tables still shared are left out."""
    from onnx import TensorProto

    inits = {i.name: i for i in graph.initializer}
    found = []
    for node in list(graph.node):
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or table.data_type != TensorProto.FLOAT or len(table.dims) != 2:
            continue
        if table.dims[1] % row_multiple or sum(node.input[0] in n.input for n in graph.node) > 1:
            continue
        found.append((node, table))
    return found


def _embeddings_to_fp16(model: Any) -> None:
    """Store Gather tables (the token embedding) in fp16 with a Cast back to fp32 after the lookup: half the
    bytes of the largest tensor, and 16 bits of mantissa are plenty for a lookup."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    for node, table in _embedding_lookups(graph):
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name)
        table.CopyFrom(half)
        original = node.output[0]
        node.output[0] = original + "_fp16"
        cast = helper.make_node("Cast", [node.output[0]], [original], to=TensorProto.FLOAT, name=node.name + "_cast")
        graph.node.insert(list(graph.node).index(node) + 1, cast)


def _embeddings_to_int8(model: Any, block: int = _WEIGHT_ONLY_BLOCK) -> None:
    """Store Gather tables (the token embedding) as symmetric int8 in blocks of `block` along each row, with the
    fp32 scales looked up beside the rows: a quarter of the bytes, the same rounding MatMulNBits gives weights.
    Plain ONNX ops (Gather, Cast, Reshape, Mul): this onnxruntime's quantizer makes GatherBlockQuantized 4-bit only."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    for node, table in _embedding_lookups(graph, row_multiple=block):
        rows, dim = table.dims
        values = numpy_helper.to_array(table).reshape(rows, dim // block, block)
        scales = np.maximum(np.abs(values).max(-1, keepdims=True), 1e-12) / 127
        quantized = np.clip(np.round(values / scales), -127, 127).astype(np.int8).reshape(rows, dim)
        name, original = node.name or node.output[0], node.output[0]
        graph.initializer.remove(table)
        graph.initializer.extend([
            numpy_helper.from_array(quantized, table.name + "_int8"),
            numpy_helper.from_array(scales.astype(np.float32), table.name + "_scales"),
            numpy_helper.from_array(np.array([0, 0, -1, block], np.int64), name + "_blocks_shape"),
            numpy_helper.from_array(np.array([0, 0, dim], np.int64), name + "_rows_shape"),
        ])  # fmt: skip
        position = list(graph.node).index(node)
        graph.node.remove(node)
        new = [
            helper.make_node("Gather", [table.name + "_int8", node.input[1]], [name + "_q"], name=name + "_q"),
            helper.make_node("Gather", [table.name + "_scales", node.input[1]], [name + "_s"], name=name + "_s"),
            helper.make_node("Cast", [name + "_q"], [name + "_f"], to=TensorProto.FLOAT, name=name + "_cast"),
            helper.make_node("Reshape", [name + "_f", name + "_blocks_shape"], [name + "_b"], name=name + "_split"),
            helper.make_node("Mul", [name + "_b", name + "_s"], [name + "_d"], name=name + "_scale"),
            helper.make_node("Reshape", [name + "_d", name + "_rows_shape"], [original], name=name + "_join"),
        ]
        for offset, new_node in enumerate(new):
            graph.node.insert(position + offset, new_node)


def _session_options(threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch on `threads` threads for the block, so eager and ONNX are timed alike."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_onnx(path: Path, threads: int = 1) -> Any:
    """An ORTModelForCausalLM on `threads` intra-op threads."""
    from optimum.onnxruntime import ORTModelForCausalLM

    with _quiet():
        return ORTModelForCausalLM.from_pretrained(Path(path), session_options=_session_options(threads))


class OnnxGenerator:
    """Greedy generation straight on an onnxruntime session, the KV cache kept as onnxruntime values between
    steps (IO binding): optimum's generate() copies every past key/value out to torch and back in at each step.

    Loads any directory `export_onnx` or `quantize` wrote (decoder with past_key_values inputs)."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime

        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(
            str(self.path / "model.onnx"), _session_options(threads), providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        self._input_names = {i.name for i in inputs}
        self._past = [(i.name, i.shape[1], i.shape[3]) for i in inputs if i.name.startswith("past_key_values")]
        self._present = [o.name for o in self.session.get_outputs() if o.name.startswith("present")]
        if len(self._past) != len(self._present):
            raise ExportError(f"{self.path} is not a decoder with KV cache (past/present inputs do not match)")

    def _run(self, binding: Any, ids: Any, past_len: int, past: list[Any]) -> list[Any]:
        import numpy as np

        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", np.ones((1, past_len + ids.shape[1]), np.int64))
        if "position_ids" in self._input_names:
            positions = np.arange(past_len, past_len + ids.shape[1], dtype=np.int64)[None]
            binding.bind_cpu_input("position_ids", positions)
        for (name, _, _), value in zip(self._past, past, strict=True):
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits")
        for name in self._present:
            binding.bind_output(name)  # onnxruntime allocates; the values are fed back as they are
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        return outputs

    def _empty_past(self) -> list[Any]:
        import numpy as np
        import onnxruntime

        return [onnxruntime.OrtValue.ortvalue_from_numpy(np.zeros((1, heads, 0, dim), np.float32))
                for _, heads, dim in self._past]  # fmt: skip

    def logits(self, input_ids: list[int]) -> Any:
        """Logits [len(input_ids), vocab] of one forward pass over the prompt (numpy)."""
        import numpy as np

        ids = np.asarray(input_ids, dtype=np.int64)[None]
        return self._run(self.session.io_binding(), ids, 0, self._empty_past())[0].numpy()[0]

    def generate(
        self, input_ids: list[int], new_tokens: int, suppress: list[int] = (), stop: list[int] = ()
    ) -> list[int]:
        """Up to `new_tokens` greedy tokens after the prompt: all of them when `suppress` (end of sequence) is never
        chosen, as with generate(min_new_tokens=new_tokens); ending with the first token in `stop` (included)."""
        import numpy as np

        binding = self.session.io_binding()
        ids = np.asarray(input_ids, dtype=np.int64)[None]
        past, past_len, out = self._empty_past(), 0, []
        for _ in range(new_tokens):
            outputs = self._run(binding, ids, past_len, past)
            last = outputs[0].numpy()[0, -1]
            last[list(suppress)] = -np.inf
            token = int(last.argmax())
            out.append(token)
            if token in stop:
                break
            past, past_len, ids = outputs[1:], past_len + ids.shape[1], np.array([[token]], np.int64)
        return out

    def forced_and_served(
        self, input_ids: list[int], new_tokens: int, suppress: list[int], stop: list[int]
    ) -> tuple[list[int], list[int]]:
        """`generate(suppress=suppress)` and `generate(stop=stop)` from one pass where they agree, which is up to
        the served reply's end: the served reply is the forced continuation until a stop token is chosen anyway,
        or until a suppressed token would have been, which ends it when that token is a stop token. Only when the
        would-be token is suppressed but no stop token do the two part ways; the served reply is then generated
        on its own."""
        import numpy as np

        binding = self.session.io_binding()
        ids = np.asarray(input_ids, dtype=np.int64)[None]
        past, past_len, forced = self._empty_past(), 0, []
        served: list[int] | None = None
        parted = False
        for _ in range(new_tokens):
            outputs = self._run(binding, ids, past_len, past)
            last = outputs[0].numpy()[0, -1]
            unsuppressed = int(last.argmax())
            last[list(suppress)] = -np.inf
            token = int(last.argmax())
            if served is None and not parted:
                if unsuppressed != token:
                    if unsuppressed in stop:
                        served = [*forced, unsuppressed]
                    else:
                        parted = True
                elif token in stop:
                    served = [*forced, token]
            forced.append(token)
            past, past_len, ids = outputs[1:], past_len + ids.shape[1], np.array([[token]], np.int64)
        if parted:
            served = self.generate(input_ids, new_tokens, stop=stop)
        return forced, forced if served is None else served


def _parity(name: str, generator: OnnxGenerator, reference: _Reference, new_tokens: int, gate: ParityGate) -> Parity:
    """Compare one ONNX variant with the PyTorch reference on the parity prompts."""
    import torch

    forced, served, rel_errs, top1_hits, positions = [], [], [], 0, 0
    for enc, ref_logits, ref_tokens, ref_reply in zip(
        reference.encodings, reference.logits, reference.generations, reference.replies, strict=True
    ):
        ids = enc["input_ids"][0].tolist()
        logits = torch.from_numpy(generator.logits(ids)).float()
        rel_errs.append(float((logits - ref_logits).abs().max() / ref_logits.abs().max().clamp_min(1e-12)))
        top1_hits += int((logits.argmax(-1) == ref_logits.argmax(-1)).sum())
        positions += logits.shape[0]
        candidate, reply = generator.forced_and_served(ids, new_tokens, reference.eos_token_ids, reference.stop_ids)
        forced.append(greedy_agreement(ref_tokens, candidate, new_tokens))
        served.append(served_agreement(ref_reply, reply))
    # The gate uses the served figure: after its end of turn a short reply's forced continuation is text no user
    # sees, where eager's top-2 logits are often within 0.01 and any rounding flips them (measured on SmolLM2,
    # benchmarks/results/export.json: 31 of 48 eager replies end within 32 tokens; 6 of the 19 forced divergences
    # of int8_weight_only_sensitive fall after that end).
    return judge(name, sum(served) / len(served), top1_hits / positions, max(rel_errs), gate,
                 forced=sum(forced) / len(forced))  # fmt: skip


def judge(
    name: str, greedy: float, top1: float, rel_err: float, gate: ParityGate, forced: float | None = None
) -> Parity:
    """A Parity with every criterion the variant missed, and by how much. `greedy`: served agreement (gated);
    `forced`: the forced-length agreement, recorded beside it."""
    misses = []
    if greedy < gate.min_greedy_agreement:
        misses.append(
            f"served greedy agreement {greedy:.3f} < {gate.min_greedy_agreement} (short by "
            f"{gate.min_greedy_agreement - greedy:.3f})"
        )
    if top1 < gate.min_top1_agreement:
        misses.append(
            f"top-1 agreement {top1:.3f} < {gate.min_top1_agreement} (short by {gate.min_top1_agreement - top1:.3f})"
        )
    if not rel_err <= gate.max_logit_rel_err:
        misses.append(
            f"logit rel. error {rel_err:.3g} > {gate.max_logit_rel_err} "
            f"(over by {rel_err - gate.max_logit_rel_err:.3g})"
        )
    return Parity(name, greedy, rel_err, not misses, top1, misses, forced)


def served_agreement(reference: list[int], candidate: list[int]) -> float:
    """Share of the reference reply's tokens (its end-of-turn token included) the candidate holds at the same
    position, both generated greedily up to the same length and stopping at end of turn (as `retune serve`
    answers). A candidate that stops early, or runs past the reference's end, disagrees there; positions one
    reply does not reach count against it, never as agreement (no padding)."""
    if not reference:
        raise ExportError("served agreement needs a reference reply of at least one token")
    return sum(i < len(candidate) and candidate[i] == token for i, token in enumerate(reference)) / len(reference)


def greedy_agreement(reference: list[int], candidate: list[int], new_tokens: int) -> float:
    """Share of the `new_tokens` positions where both continuations hold the same token.

    A sequence that stopped early (end of sequence) is padded: two that stopped at the same place agree.
    """
    pad = -1
    ref = (reference + [pad] * new_tokens)[:new_tokens]
    cand = (candidate + [pad] * new_tokens)[:new_tokens]
    return sum(a == b for a, b in zip(ref, cand, strict=True)) / new_tokens


def choose_variant(
    variants: list[Variant], gate: ParityGate, eager: Latency | None = None
) -> tuple[Variant, str]:
    """The fastest variant that passes the parity gate, with why each other lost (every missed criterion and by
    how much, or how much slower it was); ExportError if none passes."""
    passing = [v for v in variants if v.parity.passed]
    if not passing:
        misses = "; ".join(f"{v.name}: {', '.join(v.parity.misses)}" for v in variants)
        raise ExportError(f"no ONNX variant passed the parity gate, nothing registered: {misses}")
    chosen = min(passing, key=lambda v: v.latency_ms)
    losers = []
    for v in variants:
        if v is chosen:
            continue
        if v.parity.passed:
            losers.append(
                f"{v.name} passed but was slower ({v.latency_ms:.1f} ms, {v.latency_ms / chosen.latency_ms:.2f}x)"
            )
        else:
            losers.append(f"{v.name} failed parity ({', '.join(v.parity.misses)})")
    versus_eager = f", {eager.ms / chosen.latency_ms:.2f}x eager" if eager is not None else ""
    forced_figure = chosen.parity.forced_agreement
    forced = "" if forced_figure is None else f" (forced-length {forced_figure:.3f})"
    why = (
        f"{chosen.name} chosen: served greedy agreement {chosen.parity.greedy_agreement:.3f}{forced}, top-1 "
        f"{chosen.parity.top1_agreement:.3f}, logit rel. error {chosen.parity.max_logit_rel_err:.3g}, "
        f"{chosen.latency_ms:.1f} ms per generate{versus_eager}"
    )
    return chosen, why + (f"; {'; '.join(losers)}." if losers else ".")


def _run_reference(merged_dir: Path, prompts: list[str], new_tokens: int, threads: int) -> _Reference:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    # Fast tokenizers may return token_type_ids, which generate() rejects.
    encodings = [dict(tokenizer(p, return_tensors="pt", return_token_type_ids=False)) for p in prompts]
    logits, generations, replies = [], [], []
    stop_ids = end_of_turn_ids(tokenizer, model.config)
    with torch_threads(threads):
        for enc in encodings:
            with torch.no_grad():
                logits.append(model(**enc).logits[0].float())
            generations.append(_generate(model, enc, new_tokens))
            replies.append(_generate(model, enc, new_tokens, stop=stop_ids))
    return _Reference(encodings, logits, generations, model, _eos_token_ids(model), replies, stop_ids)


def end_of_turn_ids(tokenizer: Any, config: Any) -> list[int]:
    """The tokens a served reply ends at (`retune serve` stops there): the tokenizer's eos and the model config's."""
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    return sorted({t for t in [tokenizer.eos_token_id, *eos] if t is not None})


def _eos_token_ids(model: Any) -> list[int]:
    """The tokens generate(min_new_tokens=...) suppresses: the same must be suppressed in ONNX generation."""
    eos = model.generation_config.eos_token_id
    return [] if eos is None else list(eos) if isinstance(eos, list) else [eos]


def latency_prompt(encodings: list[dict[str, Any]], length: int) -> dict[str, Any]:
    """A real-text prompt of exactly `length` tokens: the parity prompts' tokens, concatenated and repeated."""
    import torch

    ids = torch.cat([e["input_ids"][0] for e in encodings])
    ids = ids.repeat(length // ids.shape[0] + 1)[:length].unsqueeze(0)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


EAGER = "eager"  # the PyTorch model's key among the timed backends


def measure_latencies(
    model: Any, generators: dict[str, OnnxGenerator], encodings: list[dict[str, Any]], threads: int,
    runs: int = LATENCY_RUNS,
) -> dict[str, Latency]:
    """Median ms for LATENCY_NEW_TOKENS greedy tokens after each of LATENCY_PROMPT_TOKENS prompts: the PyTorch
    `model` with generate() (KV cache) and every ONNX generator, interleaved run by run."""
    suppress = _eos_token_ids(model)
    backends: dict[str, Any] = {EAGER: None, **generators}
    times: dict[str, dict[int, list[float]]] = {name: {n: [] for n in LATENCY_PROMPT_TOKENS} for name in backends}
    with torch_threads(threads):
        for length in LATENCY_PROMPT_TOKENS:
            enc = latency_prompt(encodings, length)
            ids = enc["input_ids"][0].tolist()

            def one(name: str, enc: dict[str, Any] = enc, ids: list[int] = ids) -> float:
                start = time.perf_counter()
                if name == EAGER:
                    _generate(model, enc, LATENCY_NEW_TOKENS)
                else:
                    generators[name].generate(ids, LATENCY_NEW_TOKENS, suppress=suppress)
                return (time.perf_counter() - start) * 1000

            for name in backends:
                one(name)  # warm-up: first calls allocate and pick kernels
            for _ in range(runs):
                for name in backends:
                    times[name][length].append(one(name))
    return {
        name: Latency({n: statistics.median(ms) for n, ms in by_length.items()}, runs, threads)
        for name, by_length in times.items()
    }


def _generate(model: Any, enc: dict[str, Any], new_tokens: int, stop: list[int] | None = None) -> list[int]:
    """Greedy new tokens: exactly `new_tokens` (end of sequence suppressed) or, with `stop`, up to `new_tokens`
    ending with the first stop token (included), as served."""
    import torch

    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    # Timing always runs `new_tokens` tokens (end of sequence suppressed alike in every backend): a model that stops
    # at once would otherwise be timed on nothing.
    limits = {"min_new_tokens": new_tokens} if stop is None else {"eos_token_id": list(stop)}
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad, **limits)
    tokens = out[0, enc["input_ids"].shape[1] :].tolist()
    if stop is not None:  # generate() pads after the end; the reply ends at its first stop token
        end = next((i for i, t in enumerate(tokens) if t in stop), None)
        tokens = tokens if end is None else tokens[: end + 1]
    return tokens


def onnx_size(path: Path) -> int:
    """Bytes of the ONNX graph and its external data."""
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.name.startswith("model.onnx"))


def _weights_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in {".safetensors", ".bin"})
