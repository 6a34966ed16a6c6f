"""The model card stored with every model version: what it is, what it was trained on, how it scored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retune.report import human_bytes, markdown_table

if TYPE_CHECKING:
    from retune.evaluation import Decision, EvalMetrics
    from retune.export import ExportResult


def model_card(
    lineage: dict[str, str],
    metrics: dict[str, float],
    notes: list[str],
    *,
    scores: dict[str, EvalMetrics] | None = None,
    decision: Decision | None = None,
    exported: ExportResult | None = None,
    export_settings: dict[str, Any] | None = None,
) -> str:
    """Markdown; written before registration, so the version number lives in the registry, not here."""
    sections = [
        f"# retune model trained on dataset commit {lineage.get('dataset_commit', '?')[:12]}",
        "## Lineage\n\n" + markdown_table(["", ""], sorted(lineage.items())),
    ]
    if scores:
        sections.append("## Evaluation: candidate vs base and production (held-out split)\n\n" + _scores(scores))
    if decision is not None:
        sections.append(
            f"## Promotion gate: {'passed' if decision.promote else 'failed'}\n\n{decision.reason}\n\n"
            + _gated(decision)
            + "\n\n"
            + markdown_table(["check", "result", "detail"],
                             [(c.name, "pass" if c.passed else "FAIL", c.detail) for c in decision.checks])
        )
    if exported is not None:
        sections += [
            "## Sizes and parity (ONNX vs PyTorch)\n\n" + _variants(exported),
            "## Latency (batch 1)\n\n" + _latency(exported),
        ]
    if export_settings:
        settings = markdown_table(["setting", "value"], sorted(export_settings.items()))
        sections.append("## Export settings\n\n" + settings)
    sections += [
        "## Metrics\n\n" + markdown_table(["metric", "value"], sorted(metrics.items())),
        "## Notes\n\n" + "\n".join(f"- {n}" for n in notes),
    ]
    return "\n\n".join(sections) + "\n"


def _scores(scores: dict[str, EvalMetrics]) -> str:
    return markdown_table(
        ["model", "perplexity ↓", "token accuracy ↑", "chrF ↑", "ROUGE-L ↑", "judge win rate ↑", "PII matches",
         "placeholder share"],
        [
            (name, m.perplexity, m.token_accuracy, m.chrf, m.rouge_l,
             f"{m.judge.win_rate:.1%} vs {m.judge.opponent}" if m.judge else "-", m.pii_hits,
             f"{m.placeholder_share:.1%}")
            for name, m in scores.items()
        ],
    )


def _gated(decision: Decision) -> str:
    from retune.evaluation import GATED_METRICS

    def verdict(passed: bool | None) -> str:
        return "-" if passed is None else "pass" if passed else "FAIL"

    return markdown_table(
        ["gated metric", "candidate", "base", "production", "change vs production (paired interval)", "tolerance",
         "vs base", "vs production"],
        [
            (GATED_METRICS[v.metric][0], v.candidate, "-" if v.base is None else v.base,
             "-" if v.production is None else v.production, v.interval_text(),
             f"{v.tolerance:.1%}" if GATED_METRICS[v.metric][2] else v.tolerance,
             verdict(v.vs_base) + (" (must beat)" if v.must_beat_base and v.vs_base is not None else ""),
             verdict(v.vs_production))
            for v in decision.metrics
        ],
    )


def _variants(exported: ExportResult) -> str:
    fp32 = next(v for v in exported.variants if v.name == "fp32").size_bytes
    rows = [("PyTorch (merged, safetensors)", human_bytes(exported.merged_size_bytes), "-", "-", "-", "-", "-", "-")]
    for v in exported.variants:
        rows.append((
            v.name + (" (served)" if v is exported.chosen else ""),
            human_bytes(v.size_bytes),
            f"{v.size_bytes / fp32:.0%}",
            f"{v.parity.greedy_agreement:.3f}",
            "-" if v.parity.forced_agreement is None else f"{v.parity.forced_agreement:.3f}",
            f"{v.parity.top1_agreement:.3f}",
            f"{v.parity.max_logit_rel_err:.2e}",
            "pass" if v.parity.passed else "fail: " + "; ".join(v.parity.misses),
        ))
    table = markdown_table(
        ["model", "size", "vs fp32 ONNX", "served greedy agreement (gated)", "forced greedy agreement",
         "top-1 agreement", "max logit rel. err", "parity"], rows,
    )
    return table + f"\n\n{exported.reason}"


def _latency(exported: ExportResult) -> str:
    from retune.export import LATENCY_NEW_TOKENS

    eager = exported.eager
    lengths = sorted(eager.prompt_ms)
    rows = [("PyTorch eager", *(f"{eager.prompt_ms[n]:.1f}" for n in lengths))]
    rows += [
        (v.name + (" (served)" if v is exported.chosen else ""),
         *(f"{v.latency.prompt_ms[n]:.1f} ({eager.prompt_ms[n] / v.latency.prompt_ms[n]:.2f}x)" for n in lengths))
        for v in exported.variants
    ]
    return markdown_table(["model", *(f"prompt {n} tokens, ms (× eager)" for n in lengths)], rows) + (
        f"\n\n{LATENCY_NEW_TOKENS} new tokens (greedy, KV cache), median of {eager.runs} runs, "
        f"{eager.threads} thread(s)."
    )
