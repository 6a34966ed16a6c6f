"""Tasks: register the candidate with its lineage, metrics and the promotion gate's decision (metric by metric);
then promote it if the gate (and, when required, an approver) said yes."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config
from retune.evaluation import GATED_METRICS, Decision, EvalMetrics, GatePolicy, decide_promotion, parity_check
from retune.export import ExportResult
from retune.lineage import version_lineage
from retune.model_card import model_card
from retune.prompts import SystemPrompt, load_system_prompt
from retune.registry import ModelVersion, Registry
from retune.report import markdown_table
from retune.store import open_store
from retune.training.launch import TrainResult


@dataclass
class Candidate:
    """A registered model version and the gate's decision about it."""

    version: str
    passed_gate: bool
    reason: str
    decision: Decision


@dataclass
class Approval:
    """An approver's answer (or the timeout's rejection), as recorded in the registry."""

    approved: bool
    by: str
    at: str
    comment: str


@dataclass
class Promotion:
    version: str
    promoted: bool
    reason: str
    production: str | None  # the production version after this run
    approval: Approval | None = None


@task(name="register", cache_policy=NO_CACHE)
def register_candidate(
    cfg: Config,
    scores: dict[str, EvalMetrics],
    exported: ExportResult,
    trained: TrainResult,
    dataset_commit: str,
    base_model: str,
    run_dir: Path,
) -> Candidate:
    registry = Registry(open_store(cfg))
    production_name, production_scores = next(((n, m) for n, m in scores.items() if n.startswith("production")),
                                               (None, None))
    # PII and placeholder checks ride in on the candidate's EvalMetrics (tasks/evaluate.py measured them).
    decision = decide_promotion(
        scores["candidate"], production_scores, scores["base"], GatePolicy.from_config(cfg.evaluation),
        parity=parity_check(exported),
    )
    prompt = load_system_prompt(cfg.model.system_prompt)
    candidate = scores["candidate"]
    chosen = exported.chosen
    fp32 = _fp32(exported)
    metrics = {
        "perplexity": candidate.perplexity,
        "token_accuracy": candidate.token_accuracy,
        "chrf": candidate.chrf,
        "rouge_l": candidate.rouge_l,
        "pii_hits": candidate.pii_hits,
        "placeholder_share": candidate.placeholder_share,
        **({"judge_win_rate": candidate.judge.win_rate} if candidate.judge else {}),
        "train_loss_first": trained.loss_first,
        "train_loss_last": trained.loss_last,
        "onnx_greedy_agreement": chosen.parity.greedy_agreement,
        "onnx_top1_agreement": chosen.parity.top1_agreement,
        "onnx_logit_rel_err": chosen.parity.max_logit_rel_err,
        "onnx_size_bytes": float(chosen.size_bytes),
        "onnx_fp32_size_bytes": float(fp32.size_bytes),
        "merged_size_bytes": float(exported.merged_size_bytes),
        **{f"latency_p{n}_ms": ms for n, ms in chosen.latency.prompt_ms.items()},
        **{f"fp32_latency_p{n}_ms": ms for n, ms in fp32.latency.prompt_ms.items()},
        **{f"eager_latency_p{n}_ms": ms for n, ms in exported.eager.prompt_ms.items()},
    }
    lineage = {**version_lineage(cfg, dataset_commit, base_model), "onnx_variant": chosen.name}
    package = _package(run_dir / "package", exported, trained, metrics, prompt)
    settings = {
        "recipes tried": ", ".join(cfg.export.recipes) if cfg.export.quantize else "none (quantize: false)",
        "served variant": chosen.name + ("" if chosen is fp32 else " (fp32 ONNX kept in onnx-fp32/)"),
        "parity gate": f"greedy >= {exported.gate.min_greedy_agreement}, top-1 >= {exported.gate.min_top1_agreement}, "
        f"logit rel. error <= {exported.gate.max_logit_rel_err}",
        "parity prompts / new tokens": f"{cfg.export.parity_prompts} / {cfg.export.parity_new_tokens}",
        "human approval": f"required (timeout {cfg.promote.approval_timeout_s} s): the answer is in the registry"
        if cfg.promote.require_approval else "not required",
    }
    card = model_card(
        lineage, metrics, [decision.reason, exported.reason],
        scores=scores, decision=decision, exported=exported, export_settings=settings,
    )
    (package / "model_card.md").write_text(card)
    # The decision (either way, metric by metric) is part of the registry entry, not only of the artifact.
    version = registry.register(
        package, metrics, {**lineage, "decision": decision.reason},
        message=f"candidate from {dataset_commit[:12]}", decision=decision.as_dict(),
    )

    create_table_artifact(
        [
            {
                "metric": GATED_METRICS[v.metric][0],
                "candidate": round(v.candidate, 4),
                "base": None if v.base is None else round(v.base, 4),
                production_name or "production": None if v.production is None else round(v.production, 4),
                "change vs production (paired interval)": v.interval_text(),
                "tolerance": f"{v.tolerance:.1%}" if GATED_METRICS[v.metric][2] else v.tolerance,
                "vs base": _verdict(v.vs_base, "must beat" if v.must_beat_base else "within tolerance"),
                "vs production": _verdict(v.vs_production, "within tolerance"),
            }
            for v in decision.metrics
        ],
        key="promotion-gate",
        description=f"{version.version}: gated metrics, candidate vs base and production "
        f"({'pass' if decision.promote else 'FAIL'})",
    )
    create_markdown_artifact(
        f"## Gate {'passed' if decision.promote else 'failed'}: {version.version}\n\n{decision.reason}\n\n"
        + markdown_table(
            ["check", "result", "detail"],
            [(c.name, "pass" if c.passed else "FAIL", c.detail) for c in decision.checks],
        )
        + "\n\n"
        + markdown_table(
            ["", ""],
            [
                ("compared with", production_name or "- (no production: the base model only)"),
                ("dataset commit", f"`{dataset_commit[:12]}`"),
                ("config hash", lineage["config_hash"]),
                ("system prompt", f"{lineage['system_prompt']} (sha256 `{lineage['system_prompt_sha256'][:12]}`)"),
                ("code version", lineage["code_version"]),
            ],
        ),
        key="promotion-checks",
        description=decision.reason,
    )
    get_run_logger().info("gate %s for %s: %s", "passed" if decision.promote else "failed", version.version,
                          decision.reason)
    return Candidate(version.version, decision.promote, decision.reason, decision)


@task(name="promote", cache_policy=NO_CACHE)
def promote(cfg: Config, candidate: Candidate, approval: Approval | None) -> Promotion:
    """Move the production pointer to the candidate if the gate passed and no approver said no."""
    registry = Registry(open_store(cfg))
    before = registry.production()
    if approval is None:
        promoted, reason, by = candidate.passed_gate, candidate.reason, None
    else:
        promoted, by = candidate.passed_gate and approval.approved, approval.by
        said = f"{'approved' if approval.approved else 'rejected'} by {approval.by}" + (
            f": {approval.comment}" if approval.comment else "")
        reason = (f"promoted: {said}; gate: {candidate.reason.removeprefix('promoted: ')}" if promoted
                  else f"rejected: {said}")
    if promoted:
        registry.promote(candidate.version, reason, by=by)
    production = candidate.version if promoted else (before.version if before else None)

    create_markdown_artifact(
        f"## {'Promoted' if promoted else 'Rejected'}: {candidate.version}\n\n{reason}\n\n"
        + markdown_table(
            ["", ""],
            [
                ("production before", _name(before)),
                ("production now", production or "-"),
                ("gate", "passed" if candidate.passed_gate else "failed"),
                ("approval", "not required" if approval is None else
                 f"{'approved' if approval.approved else 'rejected'} by {approval.by} at {approval.at}"),
            ],
        ),
        key="promotion",
        description=reason,
    )
    get_run_logger().info("%s %s: %s", "promoted" if promoted else "rejected", candidate.version, reason)
    return Promotion(candidate.version, promoted, reason, production, approval)


def promote_key(key: str, approval: Approval | None) -> str:
    """The promote stage's cache key: the same candidate with a different answer is a different promotion."""
    if approval is None:
        return key
    return f"{key}-{'approved' if approval.approved else 'rejected'}-{approval.by}-{approval.at}"


def _package(
    out: Path, exported: ExportResult, trained: TrainResult, metrics: dict[str, float], prompt: SystemPrompt | None
) -> Path:
    """One directory holding everything a model version is: weights, the served ONNX variant and fp32 ONNX, adapter,
    metrics, and the system prompt it was trained with (serving must use the same one)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(exported.merged_dir, out / "merged")
    shutil.copytree(exported.chosen.path, out / "onnx")
    fp32 = _fp32(exported)
    if fp32 is not exported.chosen:
        shutil.copytree(fp32.path, out / "onnx-fp32")
    shutil.copytree(trained.adapter_dir, out / "adapter")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "training_metrics.jsonl").write_text("\n".join(json.dumps(m) for m in trained.metrics) + "\n")
    if prompt is not None:
        (out / "system_prompt.md").write_text(prompt.text + "\n")
    return out


def _fp32(exported: ExportResult):
    return next(v for v in exported.variants if v.name == "fp32")


def _verdict(passed: bool | None, rule: str) -> str:
    return "-" if passed is None else f"{'pass' if passed else 'FAIL'} ({rule})"


def _name(version: ModelVersion | None) -> str:
    return version.version if version else "- (none: compared with the base model)"
