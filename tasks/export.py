"""Task: merge the LoRA adapter, export ONNX (fp32 + each quantization recipe), keep the fastest that passes parity."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune import export as core_export
from retune.config import Config
from retune.prompts import generation_prompts, split_conversations
from retune.report import human_bytes, markdown_table
from retune.training.launch import TrainResult


@task(name="export", cache_policy=NO_CACHE)
def export(
    cfg: Config, base_model: str, trained: TrainResult, examples: Path, run_dir: Path
) -> core_export.ExportResult:
    # A full fine-tune saves a whole model: nothing to merge.
    if trained.method == "full":
        merged = trained.adapter_dir
    else:
        merged = core_export.merge_adapter(base_model, trained.adapter_dir, run_dir / "merged")
    conversations = split_conversations(examples, "test", limit=cfg.export.parity_prompts * 2)
    prompts = generation_prompts(conversations, merged, cfg.export.parity_prompts)
    # The outlier-aware recipe looks at activations on training conversations, never at the parity prompts.
    calibration = generation_prompts(split_conversations(examples, "train", limit=16), merged, 16)
    gate = core_export.ParityGate(
        min_greedy_agreement=cfg.export.min_greedy_agreement,
        min_top1_agreement=cfg.export.min_top1_agreement,
        max_logit_rel_err=cfg.export.max_logit_rel_err,
    )
    result = core_export.export_model(
        merged, run_dir / "onnx", prompts,
        recipes=list(cfg.export.recipes) if cfg.export.quantize else [],
        new_tokens=cfg.export.parity_new_tokens, gate=gate, threads=cfg.export.latency_threads,
        calibration=calibration,
    )
    eager = result.eager
    rows = [
        (
            v.name + (" (chosen)" if v is result.chosen else ""),
            human_bytes(v.size_bytes),
            f"{v.size_bytes / result.variants[0].size_bytes:.0%}",
            f"{v.parity.greedy_agreement:.3f}",
            "-" if v.parity.forced_agreement is None else f"{v.parity.forced_agreement:.3f}",
            f"{v.parity.top1_agreement:.3f}",
            f"{v.parity.max_logit_rel_err:.2e}",
            "pass" if v.parity.passed else "fail: " + "; ".join(v.parity.misses),
            *(f"{ms:.1f} ({eager.prompt_ms[n] / ms:.2f}x)" for n, ms in sorted(v.latency.prompt_ms.items())),
        )
        for v in result.variants
    ]
    latency_headers = [f"generate ms, prompt {n} (x eager)" for n in sorted(eager.prompt_ms)]
    # The outlier-aware and sensitive recipes list the MatMuls they left in float beside the model.
    kept_float = ""
    for v in result.variants:
        listed = v.path / "fp32_matmuls.json"
        names = list(json.loads(listed.read_text())) if listed.exists() else []
        if names:
            more = " ..." if len(names) > 8 else ""
            kept_float += f"{v.name} left {len(names)} MatMul(s) in float: {', '.join(names[:8])}{more}. "
    create_markdown_artifact(
        "## Export (ONNX)\n\n"
        + markdown_table(
            ["variant", "size", "vs fp32", "served greedy agreement", "forced greedy agreement", "top-1 agreement",
             "max logit rel. err", "parity", *latency_headers],
            rows,
        )
        + f"\n\nPyTorch merged model: {human_bytes(result.merged_size_bytes)}, eager generate "
        + ", ".join(f"{ms:.1f} ms (prompt {n})" for n, ms in sorted(eager.prompt_ms.items()))
        + f". {result.reason}\n\n"
        f"Parity: {len(prompts)} held-out prompts; served: greedy up to {cfg.export.parity_new_tokens} tokens "
        "stopping at end of turn as `retune serve` does, the share of PyTorch's reply tokens reproduced in place "
        f"(gated); forced: exactly {cfg.export.parity_new_tokens} tokens, end of turn suppressed (recorded). Gate: "
        f"served greedy >= {gate.min_greedy_agreement}, top-1 >= {gate.min_top1_agreement}, logit rel. error <= "
        f"{gate.max_logit_rel_err}. {kept_float}Latency: batch 1, {core_export.LATENCY_NEW_TOKENS} new tokens, "
        f"median of {eager.runs} runs, {eager.threads} thread(s), eager (PyTorch generate, KV cache) and ONNX "
        f"(onnxruntime, KV cache in IO binding) interleaved run by run; machine load average "
        f"{result.load_average[0]:.1f} before, {result.load_average[1]:.1f} after.",
        key="export",
        description=f"chosen: {result.chosen.name}",
    )
    get_run_logger().info("export: chose %s (%s)", result.chosen.name, result.reason)
    return result
