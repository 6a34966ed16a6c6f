"""Tasks: plan the source files, read them (in several processes when configured), merge, dedup, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from retune import datasets, sources
from retune.config import Config, SourceConfig
from retune.dedup import NearDuplicates, SourceLedger, near_duplicates
from retune.errors import ConfigError, StoreError
from retune.report import markdown_table
from retune.store import open_store
from retune.store.base import Store


@dataclass
class IngestPlan:
    files: list[sources.SourceFile]  # to read, in source order
    skipped: list[sources.SourceCounts]  # already ingested: reported, not read
    # one per unit of parallel work (a single one: read sequentially); big files are cut into pieces
    partitions: list[list[sources.SourceFile]]


def ledger(cfg: Config) -> SourceLedger:
    store = cfg.store
    scope = (f"lakefs:{store.lakefs.endpoint}/{store.lakefs.repository}" if store.backend == "lakefs"
             else f"local:{cfg.path(store.path).resolve()}")
    return SourceLedger(cfg.path("ingest/ledger.json"), scope)


@task(name="plan-ingest", cache_policy=NO_CACHE)
def plan_ingest(cfg: Config, source_list: list[SourceConfig]) -> IngestPlan:
    """Enforce quarantine retention, list the source files, leave out those already ingested, partition."""
    logger = get_run_logger()
    purged = sources.purge_quarantine(cfg.path("quarantine"), cfg.ingest.quarantine_retention_days)
    if purged:
        logger.info("deleted %d quarantine file(s) older than %g days", len(purged),
                    cfg.ingest.quarantine_retention_days)
    files, skipped = unread_files(cfg, source_list)
    for s in skipped:
        logger.info("skipped (already ingested): %s", s.source)
    task_runner(cfg)  # a runner that cannot start is a configuration error before any file is read
    parts = sources.partitions(files, cfg.ingest.processes)
    cut = {u.location for group in parts for u in group if u.span is not None}
    logger.info("%d source file(s) to read in %d partition(s) (%d cut into pieces), %d skipped (already ingested)",
                len(files), len(parts), len(cut), len(skipped))
    return IngestPlan(files, skipped, parts)


def unread_files(cfg: Config, source_list: list[SourceConfig]) -> tuple[list[sources.SourceFile],
                                                                         list[sources.SourceCounts]]:
    """The source files to read, in source order, and those the ledger says were ingested already."""
    files = sources.resolve_sources(source_list, sources.configured_storage_options(cfg))
    if not cfg.ingest.skip_ingested_files:
        return files, []
    return ledger(cfg).split(files, commit_exists(open_store(cfg)))


def commit_exists(store: Store) -> Callable[[str], bool]:
    def exists(commit: str) -> bool:
        if not commit:
            return False
        try:
            store.get_commit(commit)
        except StoreError:
            return False
        return True

    return exists


@task(name="ingest-partition", cache_policy=NO_CACHE)
def ingest_partition(files: list[sources.SourceFile], work_dir: Path, quarantine_dir: Path, index: int,
                     batch_size: int, max_text_chars: int) -> sources.IngestReport:
    return sources.ingest_partition(files, work_dir, quarantine_dir, index, batch_size=batch_size,
                                    max_text_chars=max_text_chars)


def task_runner(cfg: Config) -> TaskRunner:
    """The runner of the partitions: Prefect's process pool, or (ingest.runner: dask) a local Dask cluster of
    ingest.processes single-threaded worker processes."""
    if cfg.ingest.runner == "prefect":
        return ProcessPoolTaskRunner(max_workers=cfg.ingest.processes)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError("ingest.runner: dask needs the dask extra: pip install 'retune[dask]'") from None
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.ingest.processes, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


def read_partitions(cfg: Config, plan: IngestPlan, run_dir: Path) -> list[sources.IngestReport] | None:
    """Read each partition in a process pool (ingest.processes > 1 and several partitions); None: read the files
    sequentially in `ingest` instead."""
    if cfg.ingest.processes <= 1 or len(plan.partitions) <= 1:
        return None
    with task_runner(cfg) as runner:
        futures = [
            runner.submit(ingest_partition, {
                "files": files, "work_dir": run_dir / "partitions", "quarantine_dir": cfg.path("quarantine"),
                "index": i, "batch_size": cfg.ingest.batch_size, "max_text_chars": cfg.ingest.max_text_chars,
            })
            for i, files in enumerate(plan.partitions)
        ]
        return [f.result() for f in futures]


@task(name="ingest", cache_policy=NO_CACHE)
def ingest(cfg: Config, plan: IngestPlan, run_dir: Path,
           partitions: list[sources.IngestReport] | None = None) -> sources.IngestReport:
    """Dedup against main and across files (merging parallel partitions in source order), near-duplicates."""
    logger = get_run_logger()
    # main's hashes are read only when there is something to dedup against them (a warm run reads no file)
    known = datasets.known_hashes(open_store(cfg), "main") if plan.files else frozenset()
    if partitions is None:
        report = sources.ingest_files(
            plan.files, run_dir / "raw", cfg.path("quarantine"), known_hashes=known,
            batch_size=cfg.ingest.batch_size, max_text_chars=cfg.ingest.max_text_chars, skipped=plan.skipped,
        )
    else:
        report = sources.merge_partitions(partitions, run_dir / "raw", cfg.path("quarantine"), known_hashes=known,
                                          batch_size=cfg.ingest.batch_size, skipped=plan.skipped)
    near = None
    if cfg.ingest.near_duplicates != "off":
        near = near_duplicates(report, cfg.ingest.near_duplicate_threshold, drop=cfg.ingest.near_duplicates == "drop")
    _report(report, near)
    verdict = "reconciles" if report.reconciles() else "DOES NOT reconcile"
    logger.info(
        "ingested %d records: %d kept (%d turns), %d quarantined, %d duplicates (%d near); %d file(s) skipped as "
        "already ingested; %s", report.records_in, report.kept, report.turns, report.quarantined,
        report.duplicates, report.near_duplicates, len(report.skipped_files), verdict,
    )
    if not report.reconciles():
        raise RuntimeError("ingest lost records: in != kept + quarantined + duplicates")  # a bug, not user error
    return report


def _report(report: sources.IngestReport, near: NearDuplicates | None) -> None:
    rows = [
        {
            "source": s.source,
            "records in": s.records_in,
            "kept": s.kept,
            "quarantined": s.quarantined,
            "duplicates": s.duplicates,
            "of which near": s.near_duplicates if near and near.dropped else 0,
            "near found": s.near_duplicates,
            "skipped": "already ingested" if s.skipped else "-",
            "quarantine reasons": ", ".join(f"{r}: {n}" for r, n in sorted(s.reasons.items())) or "-",
        }
        for s in report.sources
    ]
    create_table_artifact(
        rows, key="ingest-counts",
        description="Records per source: in = kept + quarantined + duplicates (exact + near when dropped)",
    )
    if near and near.total:
        action = "dropped (counted as duplicates)" if near.dropped else "reported, kept"
        create_markdown_artifact(
            f"## Near-duplicates: {near.total} record(s), {action}\n\nWithin this run, MinHash over word 3-grams."
            "\n\n" + markdown_table(["source", "near-duplicates"], sorted(near.per_source.items()))
            + "\n\nExamples (conversation → earlier similar conversation):\n\n"
            + markdown_table(["conversation", "similar to"], near.examples),
            key="ingest-near-duplicates", description=f"{near.total} near-duplicate record(s)",
        )


@task(name="remember-ingested-files", cache_policy=NO_CACHE)
def remember_ingested(cfg: Config, report: sources.IngestReport) -> int:
    """After the run's data is on main (or it had nothing to add): a rerun will skip these files."""
    if not cfg.ingest.skip_ingested_files:
        return 0
    n = ledger(cfg).record(report, open_store(cfg).resolve("main"))
    get_run_logger().info("%d source file(s) recorded as ingested", n)
    return n
