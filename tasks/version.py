"""Tasks: write-audit-publish into the store — `version` writes and commits the run on its own branch,
`publish` merges that commit into main only when every contract passed, else keeps the branch for inspection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run

from retune import datasets, lineage
from retune.config import Config
from retune.contracts import ContractResult
from retune.errors import ContractError
from retune.report import markdown_table
from retune.sources import IngestReport
from retune.store import open_store
from retune.store.base import Store

DATASET_UPDATED_EVENT = "retune.dataset.updated"


CONTRACT_REPORTS_PREFIX = "reports/contracts/"


@dataclass
class StagedRun:
    branch: str  # the run's own branch, from main
    commit: str  # the commit on it holding this run's parts
    prefix: str  # where the parts are in the store
    run_id: str = ""


def contract_report_path(run_id: str, suite: str) -> str:
    """Where a run's Data Docs for one suite live in the store; they travel with the run's data."""
    return f"{CONTRACT_REPORTS_PREFIX}{run_id}/{suite}/"


def put_tree(store: Store, branch: str, local_dir: Path, prefix: str) -> int:
    """Stage every file under local_dir at prefix on branch; return how many."""
    files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
    for local in files:
        store.put_file(branch, prefix + local.relative_to(local_dir).as_posix(), local)
    return len(files)


@dataclass
class DatasetCommit:
    commit: str  # immutable id on main that training reads
    branch: str  # the run branch it was written on
    new_records: int
    new_turns: int
    total_turns: int


@task(name="version", cache_policy=NO_CACHE)
def version(
    cfg: Config, run_id: str, parts: list[Path], report: IngestReport, checks: list[ContractResult] | None = None
) -> StagedRun:
    """Commit the run's parts on its own branch, with lineage metadata; `checks` already run on local files
    (raw_turns) bring their Data Docs along."""
    store = open_store(cfg)
    branch = f"ingest-{run_id}"
    store.create_branch(branch, "main")
    for part in parts:
        store.put_file(branch, datasets.turns_path(run_id, part.name), part)
    for check in checks or []:
        if check.docs_dir is not None:
            put_tree(store, branch, check.docs_dir, contract_report_path(run_id, check.suite))
    hashes = {s.source: s.sha256 for s in report.sources}  # hashed while ingest streamed them (also URLs)
    # Without a configured UI (the temporary server) Prefect still builds a URL, starting "None/": no link then.
    ui_url = str(flow_run.ui_url or "")
    metadata = lineage.ingest_metadata(
        report, run_id, str(flow_run.id or ""), ui_url if ui_url.startswith("http") else "", hashes
    )
    commit = store.commit(branch, f"ingest {report.kept} records ({run_id})", metadata)
    get_run_logger().info("wrote %d parts to branch %s at %s", len(parts), branch, commit.id[:12])
    return StagedRun(branch, commit.id, datasets.turns_path(run_id, ""), run_id)


@task(name="publish", cache_policy=NO_CACHE)
def publish(cfg: Config, staged: StagedRun, report: IngestReport, checks: list[ContractResult]) -> DatasetCommit:
    logger = get_run_logger()
    store = open_store(cfg)
    contracts = "; ".join(c.summary() for c in checks)
    if not all(c.success for c in checks):
        # The gate: nothing reaches main; the branch stays so a person can look at exactly what failed.
        raise ContractError(f"not published, branch {staged.branch} kept for inspection: {contracts}")
    merged = store.merge(
        staged.branch, "main", message=f"publish {staged.branch}",
        metadata={"run_branch": staged.branch, "run_commit": staged.commit, "contracts": contracts},
    )
    store.delete_branch(staged.branch)
    total = datasets.count_turns(store, merged.id)
    result = DatasetCommit(merged.id, staged.branch, report.kept, report.turns, total)
    create_markdown_artifact(
        "## Dataset version\n\n"
        + markdown_table(
            ["", ""],
            [
                ("commit on main", f"`{merged.id}`"),
                ("run commit", f"`{staged.commit}` on `{staged.branch}` (merged, branch deleted)"),
                ("new records / turns", f"{report.kept} / {report.turns}"),
                ("turns on main", total),
                ("contracts", contracts),
            ],
        ),
        key="dataset-version",
        description=f"main at {merged.id[:12]}",
    )
    emit_event(
        DATASET_UPDATED_EVENT,
        resource={"prefect.resource.id": f"retune.dataset.{merged.id}", "retune.dataset.commit": merged.id},
        payload={"config": cfg.source, "commit": merged.id, "new_records": report.kept, "new_turns": report.turns},
    )
    logger.info("published %d turns to main at %s (%d turns in total)", report.turns, merged.id[:12], total)
    return result
