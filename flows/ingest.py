"""Flow: sources → ingest → validate → anonymize → version (run branch) → validate the commit → publish to main."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prefect import flow

from flows.heartbeats import leave_heartbeat_threads_unjoined
from retune.config import Config, SourceConfig, load_config
from retune.contracts import ContractResult
from retune.runs import new_run_id
from retune.sources import IngestReport
from tasks.anonymize import anonymize
from tasks.ingest import ingest, plan_ingest, read_partitions, remember_ingested
from tasks.stages import stages
from tasks.validate import validate
from tasks.version import DatasetCommit, publish, version

leave_heartbeat_threads_unjoined()  # no second of waiting at the end of each flow run


@dataclass
class Ingested:
    report: IngestReport
    pii_found: Counter[str] = field(default_factory=Counter)
    checks: list[ContractResult] = field(default_factory=list)
    dataset: DatasetCommit | None = None  # None: nothing new to publish


@flow(name="ingest")
def ingest_flow(config: str = "retune.yaml", sources: list[str] | None = None) -> Ingested:
    """Ingest new conversations: anonymize them, check them against the contracts, publish them to main.

    `sources` (paths, globs or URLs such as s3://bucket/landing/*.jsonl) replaces the configured sources. Run on
    its own (the `ingest` deployment), the run leaves its cost table and ledger line; inside `retune run`, its
    cost joins that run's.
    """
    cfg = load_config(config)
    source_list = source_configs(cfg, sources)
    with stages(cfg, "ingest") as stage:
        return stage.run("ingest", ingest_new_data, cfg, source_list)


def source_configs(cfg: Config, sources: list[str] | None) -> list[SourceConfig]:
    """The sources given on the command line (paths, globs, URLs), else the configured ones."""
    return [SourceConfig(path=s) for s in sources] if sources else cfg.sources


def ingest_new_data(cfg: Config, source_list: list[SourceConfig]) -> Ingested:
    run_id = new_run_id()
    run_dir = cfg.path("runs") / run_id

    plan = plan_ingest(cfg, source_list)
    partitions = read_partitions(cfg, plan, run_dir)  # in ingest.processes processes, when more than one
    report = ingest(cfg, plan, run_dir, partitions)
    if report.kept == 0:
        remember_ingested(cfg, report)
        return Ingested(report)
    raw_check = validate(cfg, report.parts, "raw_turns")
    anonymized, pii_found = anonymize(cfg, report.parts, run_dir / "anonymized")
    staged = version(cfg, run_id, anonymized, report, [raw_check])
    anonymized_check = validate(cfg, staged, "anonymized_turns")
    dataset = publish(cfg, staged, report, [raw_check, anonymized_check])
    remember_ingested(cfg, report)
    return Ingested(report, pii_found, [raw_check, anonymized_check], dataset)
