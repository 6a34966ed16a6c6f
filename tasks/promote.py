"""Task: register the candidate with its lineage and metrics, and promote it only if it is better."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config
from retune.evaluation import EvalMetrics, decide_promotion
from retune.export import ExportResult
from retune.lineage import code_version, config_hash
from retune.model_card import model_card
from retune.registry import ModelVersion, Registry
from retune.report import markdown_table
from retune.store import open_store
from retune.training.launch import TrainResult


@dataclass
class Promotion:
    version: str
    promoted: bool
    reason: str
    production: str | None  # the production version after this run


@task(name="promote", cache_policy=NO_CACHE)
def promote(
    cfg: Config,
    scores: dict[str, EvalMetrics],
    exported: ExportResult,
    trained: TrainResult,
    dataset_commit: str,
    base_model: str,
    run_dir: Path,
) -> Promotion:
    registry = Registry(open_store(cfg))
    production_before = registry.production()
    production_scores = next((m for n, m in scores.items() if n.startswith("production")), None)
    # PII and placeholder checks ride in on the candidate's EvalMetrics (tasks/evaluate.py measured them).
    decision = decide_promotion(
        scores["candidate"], production_scores, scores["base"], cfg.evaluation.tolerance,
        max_placeholder_share=cfg.evaluation.max_placeholder_share,
    )

    candidate = scores["candidate"]
    chosen = exported.chosen
    metrics = {
        "perplexity": candidate.perplexity,
        "token_accuracy": candidate.token_accuracy,
        "chrf": candidate.chrf,
        "rouge_l": candidate.rouge_l,
        "pii_hits": candidate.pii_hits,
        "placeholder_share": candidate.placeholder_share,
        "train_loss_first": trained.loss_first,
        "train_loss_last": trained.loss_last,
        "onnx_greedy_agreement": chosen.parity.greedy_agreement,
        "onnx_top1_agreement": chosen.parity.top1_agreement,
        "onnx_logit_rel_err": chosen.parity.max_logit_rel_err,
        "onnx_size_bytes": float(chosen.size_bytes),
        "merged_size_bytes": float(exported.merged_size_bytes),
        **{f"latency_p{n}_ms": ms for n, ms in chosen.latency.prompt_ms.items()},
        **{f"eager_latency_p{n}_ms": ms for n, ms in exported.eager.prompt_ms.items()},
    }
    lineage = {
        "dataset_commit": dataset_commit,
        "base_model": base_model,
        "config_hash": config_hash(cfg),
        "code_version": code_version(),
        "onnx_variant": exported.chosen.name,
    }
    package = _package(run_dir / "package", exported, trained, metrics)
    settings = {
        "recipes tried": ", ".join(cfg.export.recipes) if cfg.export.quantize else "none (quantize: false)",
        "served variant": chosen.name,
        "parity gate": f"greedy >= {exported.gate.min_greedy_agreement}, top-1 >= {exported.gate.min_top1_agreement}, "
        f"logit rel. error <= {exported.gate.max_logit_rel_err}",
        "parity prompts / new tokens": f"{cfg.export.parity_prompts} / {cfg.export.parity_new_tokens}",
    }
    card = model_card(
        lineage, metrics, [decision.reason, exported.reason],
        scores=scores, decision=decision, exported=exported, export_settings=settings,
    )
    (package / "model_card.md").write_text(card)
    # The decision (either way, with its numbers) is part of the registry entry, not only of the artifact.
    recorded = {**lineage, "decision": decision.reason}
    version = registry.register(package, metrics, recorded, message=f"candidate from {dataset_commit[:12]}")
    if decision.promote:
        registry.promote(version.version, decision.reason)
    production = version.version if decision.promote else (production_before.version if production_before else None)

    create_markdown_artifact(
        f"## {'Promoted' if decision.promote else 'Rejected'}: {version.version}\n\n{decision.reason}\n\n"
        + markdown_table(
            ["check", "result", "detail"],
            [(c.name, "pass" if c.passed else "FAIL", c.detail) for c in decision.checks],
        )
        + "\n\n"
        + markdown_table(
            ["", ""],
            [
                ("production before", _name(production_before)),
                ("production now", production or "-"),
                ("dataset commit", f"`{dataset_commit[:12]}`"),
                ("config hash", lineage["config_hash"]),
                ("code version", lineage["code_version"]),
            ],
        ),
        key="promotion",
        description=decision.reason,
    )
    get_run_logger().info("%s %s: %s", "promoted" if decision.promote else "rejected", version.version, decision.reason)
    return Promotion(version.version, decision.promote, decision.reason, production)


def _package(out: Path, exported: ExportResult, trained: TrainResult, metrics: dict[str, float]) -> Path:
    """One directory holding everything a model version is: weights, ONNX, adapter, metrics."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(exported.merged_dir, out / "merged")
    shutil.copytree(exported.chosen.path, out / "onnx")
    shutil.copytree(trained.adapter_dir, out / "adapter")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "training_metrics.jsonl").write_text("\n".join(json.dumps(m) for m in trained.metrics) + "\n")
    return out


def _name(version: ModelVersion | None) -> str:
    return version.version if version else "- (none: compared with the base model)"
