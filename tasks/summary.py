"""Task: the one-screen summary of a whole run, as an artifact and as rows the CLI prints."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.policy import RetrainDecision
from retune.report import human_bytes, markdown_table
from tasks.finetune import loss_summary


@task(name="summarize", cache_policy=NO_CACHE)
def summarize(ingested, monitored, retrained) -> list[tuple[str, str]]:
    report = ingested.report
    rows = [
        ("records in", str(report.records_in)),
        ("kept / quarantined / duplicates",
         f"{report.kept} / {report.quarantined} / {report.duplicates}"
         + ("  (reconciles)" if report.reconciles() else "  (DOES NOT reconcile)")),
        ("PII replaced", ", ".join(f"{k} {v}" for k, v in sorted(ingested.pii_found.items())) or "none"),
        ("contracts", "; ".join(c.summary() for c in ingested.checks) or "not run (nothing new)"),
    ]
    if ingested.dataset is not None:
        d = ingested.dataset
        rows.append(("dataset commit", f"{d.commit[:12]} (+{d.new_turns} turns, {d.total_turns} in total)"))
    if monitored.result is not None:
        r = monitored.result
        rows.append(("drift", f"{monitored.reason} — {r.html_path}"))
    else:
        rows.append(("drift", monitored.reason))
    if isinstance(retrained, RetrainDecision):
        rows.append(("fine-tune", f"skipped: {retrained.reason}"))
    else:
        t, e, p = retrained.trained, retrained.exported, retrained.promotion
        rows.append(("train loss", f"{loss_summary(t)} ({t.steps} steps, {t.tokens_per_s:.0f} tokens/s)"))
        rows += [
            (f"eval {name}", f"perplexity {m.perplexity:.2f}, chrF {m.chrf:.1f}, token acc. {m.token_accuracy:.3f}")
            for name, m in retrained.scores.items()
        ]
        rows.append(("promotion", f"{p.version} {'PROMOTED' if p.promoted else 'rejected'}: {p.reason}"))
        rows.append(("production model", p.production or "-"))
        rows.append((
            "ONNX model",
            f"{e.chosen.path} ({e.chosen.name}, {human_bytes(e.chosen.size_bytes)}, "
            f"greedy agreement {e.chosen.parity.greedy_agreement:.2f})",
        ))
    create_markdown_artifact("## retune run summary\n\n" + markdown_table(["", ""], rows), key="run-summary")
    return rows
