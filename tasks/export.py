"""Task: merge the LoRA adapter, export ONNX (fp32 + int8) and keep the fastest variant that passes parity."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune import export as core_export
from retune.config import Config
from retune.prompts import generation_prompts, split_conversations
from retune.report import human_bytes, markdown_table


@task(name="export", cache_policy=NO_CACHE)
def export(cfg: Config, base_model: str, adapter_dir: Path, examples: Path, run_dir: Path) -> core_export.ExportResult:
    merged = core_export.merge_adapter(base_model, adapter_dir, run_dir / "merged")
    conversations = split_conversations(examples, "test", limit=cfg.export.parity_prompts * 2)
    prompts = generation_prompts(conversations, merged, cfg.export.parity_prompts)
    result = core_export.export_model(
        merged, run_dir / "onnx", prompts,
        quantize=cfg.export.quantize, new_tokens=cfg.export.parity_new_tokens,
        min_agreement=cfg.export.min_greedy_agreement,
    )
    rows = [
        (
            v.name + (" (chosen)" if v is result.chosen else ""),
            human_bytes(v.size_bytes),
            f"{v.parity.greedy_agreement:.3f}",
            f"{v.parity.max_logit_rel_err:.2e}",
            "pass" if v.parity.passed else "fail",
            f"{v.latency_ms:.1f}",
        )
        for v in result.variants
    ]
    create_markdown_artifact(
        "## Export (ONNX)\n\n"
        + markdown_table(["variant", "size", "greedy agreement", "max logit rel. err", "parity", "latency ms"], rows)
        + f"\n\nPyTorch merged model: {human_bytes(result.merged_size_bytes)}. {result.reason}\n\n"
        f"Parity: {len(prompts)} held-out prompts, {cfg.export.parity_new_tokens} greedy tokens, "
        f"gate {cfg.export.min_greedy_agreement:.2f}.",
        key="export",
        description=f"chosen: {result.chosen.name}",
    )
    get_run_logger().info("export: chose %s (%s)", result.chosen.name, result.reason)
    return result
