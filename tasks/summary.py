"""Task: the one-screen summary of a whole run, as an artifact and as rows the CLI prints."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.cost import RunCost
from retune.policy import RetrainDecision
from retune.report import human_bytes, markdown_table
from tasks.finetune import loss_summary


@task(name="summarize", cache_policy=NO_CACHE)
def summarize(ingested, monitored, retrained, account: RunCost | None = None) -> list[tuple[str, str]]:
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
    if account is not None:
        rows += stage_rows(account)
    create_markdown_artifact("## retune run summary\n\n" + markdown_table(["", ""], rows), key="run-summary")
    return rows


def stage_rows(account: RunCost) -> list[tuple[str, str]]:
    """One row per stage: what it cost, or that it was skipped and why ("skipped: cached (key …)"); then the run."""
    rows = []
    for s in account.stages:
        if s.status == "ran" or s.status == "failed":
            what = (f"{s.status} {s.wall_s:.1f} s, {s.cpu_s:.1f} CPU-s"
                    + (f", {s.gpu_s:.0f} GPU-s" if s.gpu_s else "") + (f", {s.tokens} tokens" if s.tokens else "")
                    + (f", {human_bytes(s.store_bytes)} stored" if s.store_bytes else "")
                    + (f" — {s.detail}" if s.detail else ""))
        else:
            what = f"skipped: {s.detail}"
        rows.append((f"stage {s.stage}", what))
    t = account.totals()
    rows.append((
        "run cost",
        f"{t.currency:.4f} {account.currency_unit} (est.): {t.wall_s:.1f} s wall, {t.cpu_s:.1f} CPU-s, "
        f"{t.gpu_s:.0f} GPU-s, {t.tokens} tokens, {human_bytes(t.store_bytes)} stored, peak memory "
        f"{human_bytes(t.peak_rss_bytes)}",
    ))
    return rows
