"""Export a fine-tuned model for serving: merge the LoRA adapter, export ONNX, quantize, gate on parity."""

from __future__ import annotations

import contextlib
import logging
import shutil
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retune.errors import ExportError

LATENCY_RUNS = 5  # generate() runs per backend; the median is reported


@dataclass
class Parity:
    """How closely one ONNX variant reproduces the PyTorch model on the parity prompts."""

    variant: str
    greedy_agreement: float  # share of generated positions equal to PyTorch's, averaged over prompts
    max_logit_rel_err: float  # max |onnx - torch| / max |torch| over the prompt forward, worst prompt
    passed: bool


@dataclass
class Variant:
    """One exported model file set that ORTModelForCausalLM can load."""

    name: str  # "fp32" | "int8"
    path: Path
    size_bytes: int
    parity: Parity
    latency_ms: float  # median generate() time, batch 1, the first parity prompt


@dataclass
class ExportResult:
    merged_dir: Path
    merged_size_bytes: int
    variants: list[Variant]
    chosen: Variant
    reason: str
    eager_latency_ms: float  # the same generate() timing for the PyTorch merged model, for comparison


@dataclass
class _Reference:
    """What the PyTorch model produced on the parity prompts: the yardstick for every variant."""

    encodings: list[dict[str, Any]]
    logits: list[Any]  # torch tensors [seq, vocab]
    generations: list[list[int]]  # only the new tokens
    latency_ms: float


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
    quantize: bool,
    new_tokens: int,
    min_agreement: float,
) -> ExportResult:
    """Export fp32 (and int8) ONNX, measure each against PyTorch, choose the fastest variant that passes."""
    if not 0.0 <= min_agreement <= 1.0:
        raise ExportError(f"min_agreement must be between 0 and 1, got {min_agreement}")
    if not prompts:
        raise ExportError("the parity gate needs at least one prompt")
    if new_tokens < 1:
        raise ExportError(f"new_tokens must be at least 1, got {new_tokens}")
    merged_dir, out_dir = Path(merged_dir), Path(out_dir)

    paths = {"fp32": export_onnx(merged_dir, out_dir / "fp32")}
    if quantize:
        paths["int8"] = quantize_int8(paths["fp32"], out_dir / "int8")

    variants, eager_latency_ms = measure_variants(merged_dir, paths, prompts, new_tokens, min_agreement)
    chosen, reason = choose_variant(variants, min_agreement)
    return ExportResult(
        merged_dir=merged_dir,
        merged_size_bytes=_weights_size(merged_dir),
        variants=variants,
        chosen=chosen,
        reason=reason,
        eager_latency_ms=eager_latency_ms,
    )


def measure_variants(
    torch_dir: Path, onnx_dirs: dict[str, Path], prompts: list[str], new_tokens: int, min_agreement: float
) -> tuple[list[Variant], float]:
    """Parity and latency of each ONNX directory against the PyTorch model in `torch_dir`.

    Returns the variants and the PyTorch model's own median generate() latency in ms.
    """
    # Each backend runs in its own phase: onnxruntime's threads keep spinning and would skew others' timing.
    reference = _run_reference(Path(torch_dir), prompts, new_tokens)
    variants = []
    for name, path in onnx_dirs.items():
        parity, latency_ms = _measure_variant(name, Path(path), reference, new_tokens, min_agreement)
        variants.append(Variant(name, Path(path), _onnx_size(Path(path)), parity, latency_ms))
    return variants, reference.latency_ms


@contextlib.contextmanager
def _quiet():
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
    AutoTokenizer.from_pretrained(merged_dir).save_pretrained(out_dir)
    return out_dir


def quantize_int8(fp32_dir: Path, out_dir: Path) -> Path:
    """Dynamic int8 (per-channel weights) of an exported model, loadable like the fp32 one."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    source = fp32_dir / "model.onnx"
    with _quiet():
        quantize_dynamic(
            source,
            out_dir / "model.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Models over 2 GB keep their weights beside the graph; the quantized one must too.
            use_external_data_format=(fp32_dir / "model.onnx_data").exists(),
        )
    for item in fp32_dir.iterdir():
        if item.is_file() and not item.name.startswith("model.onnx"):
            shutil.copy2(item, out_dir / item.name)
    return out_dir


def _measure_variant(
    name: str, path: Path, reference: _Reference, new_tokens: int, min_agreement: float
) -> tuple[Parity, float]:
    """Compare one ONNX variant with the PyTorch reference and time its generate()."""
    import torch
    from optimum.onnxruntime import ORTModelForCausalLM

    model = ORTModelForCausalLM.from_pretrained(path)
    agreements, rel_errs = [], []
    for enc, ref_logits, ref_tokens in zip(
        reference.encodings, reference.logits, reference.generations, strict=True
    ):
        with torch.no_grad():
            logits = model(**enc).logits[0].float()
        rel_errs.append(float((logits - ref_logits).abs().max() / ref_logits.abs().max().clamp_min(1e-12)))
        agreements.append(greedy_agreement(ref_tokens, _generate(model, enc, new_tokens), new_tokens))
    agreement = sum(agreements) / len(agreements)
    parity = Parity(name, agreement, max(rel_errs), agreement >= min_agreement)
    latency_ms = _median_latency_ms(model, reference.encodings[0], new_tokens)
    del model
    return parity, latency_ms


def greedy_agreement(reference: list[int], candidate: list[int], new_tokens: int) -> float:
    """Share of the `new_tokens` positions where both continuations hold the same token.

    A sequence that stopped early (end of sequence) is padded: two that stopped at the same place agree.
    """
    pad = -1
    ref = (reference + [pad] * new_tokens)[:new_tokens]
    cand = (candidate + [pad] * new_tokens)[:new_tokens]
    return sum(a == b for a, b in zip(ref, cand, strict=True)) / new_tokens


def choose_variant(variants: list[Variant], min_agreement: float) -> tuple[Variant, str]:
    """The fastest variant that passes the parity gate, with one sentence saying why; ExportError if none."""
    passing = [v for v in variants if v.parity.greedy_agreement >= min_agreement]
    if not passing:
        misses = ", ".join(
            f"{v.name} {v.parity.greedy_agreement:.3f} "
            f"(short by {min_agreement - v.parity.greedy_agreement:.3f})"
            for v in variants
        )
        raise ExportError(
            f"no ONNX variant passed the parity gate (greedy agreement >= {min_agreement}): {misses}"
        )
    chosen = min(passing, key=lambda v: v.latency_ms)
    losers = []
    for v in variants:
        if v is chosen:
            continue
        if v in passing:
            losers.append(f"{v.name} passed but was slower ({v.latency_ms:.1f} ms)")
        else:
            losers.append(f"{v.name} failed parity ({v.parity.greedy_agreement:.3f} < {min_agreement})")
    why = f"{chosen.name} chosen: greedy agreement {chosen.parity.greedy_agreement:.3f} >= {min_agreement}"
    why += f", {chosen.latency_ms:.1f} ms per generate"
    return chosen, why + (f"; {'; '.join(losers)}." if losers else ".")


def _run_reference(merged_dir: Path, prompts: list[str], new_tokens: int) -> _Reference:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    # Fast tokenizers may return token_type_ids, which generate() rejects.
    encodings = [dict(tokenizer(p, return_tensors="pt", return_token_type_ids=False)) for p in prompts]
    logits, generations = [], []
    for enc in encodings:
        with torch.no_grad():
            logits.append(model(**enc).logits[0].float())
        generations.append(_generate(model, enc, new_tokens))
    latency_ms = _median_latency_ms(model, encodings[0], new_tokens)
    del model
    return _Reference(encodings, logits, generations, latency_ms)


def _generate(model: Any, enc: dict[str, Any], new_tokens: int) -> list[int]:
    import torch

    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    # Always `new_tokens` tokens (end of sequence suppressed alike in every backend): a model that stops at once
    # would otherwise pass parity on nothing and be timed on nothing.
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad
        )
    return out[0, enc["input_ids"].shape[1] :].tolist()


def _median_latency_ms(model: Any, enc: dict[str, Any], new_tokens: int) -> float:
    _generate(model, enc, new_tokens)  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        _generate(model, enc, new_tokens)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _onnx_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.name.startswith("model.onnx"))


def _weights_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in {".safetensors", ".bin"})
