"""Task: read the configured sources into turn Parquet parts, quarantining bad records with a reason."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from retune import datasets, sources
from retune.config import Config, SourceConfig
from retune.store import open_store


@task(name="ingest", cache_policy=NO_CACHE)
def ingest(cfg: Config, source_list: list[SourceConfig], run_dir: Path) -> sources.IngestReport:
    logger = get_run_logger()
    known = datasets.known_hashes(open_store(cfg), "main")
    report = sources.ingest(
        source_list,
        run_dir / "raw",
        cfg.path("quarantine"),
        known_hashes=known,
        batch_size=cfg.ingest.batch_size,
        max_text_chars=cfg.ingest.max_text_chars,
    )
    rows = [
        {
            "source": s.source,
            "records in": s.records_in,
            "kept": s.kept,
            "quarantined": s.quarantined,
            "duplicates": s.duplicates,
            "quarantine reasons": ", ".join(f"{r}: {n}" for r, n in sorted(s.reasons.items())) or "-",
        }
        for s in report.sources
    ]
    create_table_artifact(
        rows, key="ingest-counts", description="Records per source: in = kept + quarantined + duplicates"
    )
    verdict = "reconciles" if report.reconciles() else "DOES NOT reconcile"
    logger.info(
        "ingested %d records: %d kept (%d turns), %d quarantined, %d duplicates; %s",
        report.records_in, report.kept, report.turns, report.quarantined, report.duplicates, verdict,
    )
    if not report.reconciles():
        raise RuntimeError("ingest lost records: in != kept + quarantined + duplicates")  # a bug, not user error
    return report
