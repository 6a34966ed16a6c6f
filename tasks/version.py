"""Task: write-audit-publish the anonymized parts into the store: a branch per run, a commit, merge on pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run

from retune import datasets
from retune.config import Config
from retune.contracts import ContractResult
from retune.lineage import code_version
from retune.report import markdown_table
from retune.sources import IngestReport
from retune.store import open_store

DATASET_UPDATED_EVENT = "retune.dataset.updated"


@dataclass
class DatasetCommit:
    commit: str  # immutable id on main that training reads
    branch: str  # the run branch it was written on
    new_records: int
    new_turns: int
    total_turns: int


@task(name="version", cache_policy=NO_CACHE)
def version(
    cfg: Config, run_id: str, parts: list[Path], report: IngestReport, checks: list[ContractResult]
) -> DatasetCommit:
    logger = get_run_logger()
    store = open_store(cfg)
    branch = f"ingest-{run_id}"
    store.create_branch(branch, "main")
    for part in parts:
        store.put_file(branch, datasets.turns_path(run_id, part.name), part)
    metadata = {
        "flow_run_id": str(flow_run.id or ""),
        "flow_run_url": str(flow_run.ui_url or ""),
        "sources": ",".join(s.source for s in report.sources),
        "records_in": str(report.records_in),
        "kept": str(report.kept),
        "quarantined": str(report.quarantined),
        "duplicates": str(report.duplicates),
        "contracts": "; ".join(c.summary() for c in checks),
        "code_version": code_version(),
    }
    staged = store.commit(branch, f"ingest {report.kept} records ({run_id})", metadata)
    passed = all(c.success for c in checks)
    if not passed:  # the validate task raises first; this guards the gate should a caller skip it
        raise RuntimeError(f"contracts failed; branch {branch} kept for inspection")
    merged = store.merge(branch, "main", message=f"publish {branch}", metadata={"run_branch": branch})
    store.delete_branch(branch)
    total = datasets.read_turns(store, merged.id).num_rows
    result = DatasetCommit(merged.id, branch, report.kept, report.turns, total)
    create_markdown_artifact(
        "## Dataset version\n\n"
        + markdown_table(
            ["", ""],
            [
                ("commit on main", f"`{merged.id}`"),
                ("run commit", f"`{staged.id}` on `{branch}` (merged, branch deleted)"),
                ("new records / turns", f"{report.kept} / {report.turns}"),
                ("turns on main", total),
                ("contracts", "; ".join(c.summary() for c in checks)),
            ],
        ),
        key="dataset-version",
        description=f"main at {merged.id[:12]}",
    )
    emit_event(
        DATASET_UPDATED_EVENT,
        resource={"prefect.resource.id": f"retune.dataset.{merged.id}", "retune.dataset.commit": merged.id},
        payload={"commit": merged.id, "new_records": report.kept, "new_turns": report.turns},
    )
    logger.info("published %d turns to main at %s (%d turns in total)", report.turns, merged.id[:12], total)
    return result
