"""Where data and models came from: what an ingest run records on its commit, and the walk from a model
version back to its dataset commit, the ingest runs in it and their source files (and the reverse)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import retune
from retune.config import Config
from retune.contracts import RunHistory
from retune.errors import StoreError
from retune.prompts import load_system_prompt
from retune.registry import ModelVersion, Registry
from retune.sources import IngestReport
from retune.store.base import Commit, Store

# The config sections that decide what a fine-tune produces; a change to any of them is a different model.
TRAINING_SECTIONS = ("model", "training", "split")

# Commit metadata of an ingest run (lakeFS metadata values are strings: the per-source parts are JSON).
RUN_ID_KEY = "run_id"
SOURCE_COUNTS_KEY = "source_counts"  # {source: {"records_in", "kept", "quarantined", "duplicates"}}
SOURCE_SHA256_KEY = "source_sha256"  # {source: sha256 hex of the file's bytes, "" if it could not be read}
_RUN_MARKER = "records_in"  # every ingest run commit has it; merges and registry commits do not
_WHOLE_HISTORY = 100_000  # log depth: every commit, for any dataset this project will see
_CHUNK = 1 << 20


@dataclass
class SourceFile:
    path: str
    sha256: str  # "" when unknown (a run recorded before hashes were kept, or the file was gone)
    records_in: int | None
    kept: int | None
    quarantined: int | None
    duplicates: int | None

    @property
    def parsed(self) -> int | None:
        """Records that parsed (kept or duplicate): what a healthy export of this source yields."""
        if self.kept is None or self.duplicates is None:
            return None
        return self.kept + self.duplicates


@dataclass
class IngestRun:
    commit: str  # the run's own commit (on its run branch, reachable from main once merged)
    created_at: str
    run_id: str
    flow_run_id: str
    flow_run_url: str
    sources: list[SourceFile]


@dataclass
class ModelLineage:
    model: ModelVersion
    production: bool
    dataset: Commit
    ingest_runs: list[IngestRun]  # every run whose data the dataset commit holds, newest first


def code_version() -> str:
    """The git commit of the code when run from a checkout, else the package version."""
    repo = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"retune-{retune.__version__}"


def config_hash(cfg: Config) -> str:
    """What decides the fine-tune: the training config sections and the system prompt's text (by its sha256), so a
    changed prompt file is a new model version even when the config file did not change."""
    prompt = load_system_prompt(cfg.model.system_prompt)
    sections = cfg.section_hash(*TRAINING_SECTIONS)
    return hashlib.sha256(f"{sections}:{prompt.sha256 if prompt else ''}".encode()).hexdigest()[:16]


def version_lineage(cfg: Config, dataset_commit: str, base_model: str) -> dict[str, str]:
    """What a model version records of where it came from (the registry entry's lineage)."""
    prompt = load_system_prompt(cfg.model.system_prompt)
    return {
        "dataset_commit": dataset_commit,
        "base_model": base_model,
        "config_hash": config_hash(cfg),
        "system_prompt": prompt.path if prompt else "none",
        "system_prompt_sha256": prompt.sha256 if prompt else "",
        "code_version": code_version(),
    }


# ---- what an ingest run records ---------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (memory stays flat for any size); "" if unreadable."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return ""  # moved or deleted since ingest: lineage says "unknown" rather than failing the run
    return digest.hexdigest()


def ingest_metadata(
    report: IngestReport, run_id: str, flow_run_id: str, flow_run_url: str, source_hashes: dict[str, str]
) -> dict[str, str]:
    """The metadata of an ingest run's commit: run ids, counts in total and per source, source hashes."""
    counts = {
        s.source: {"records_in": s.records_in, "kept": s.kept, "quarantined": s.quarantined,
                   "duplicates": s.duplicates}
        for s in report.sources
    }
    return {
        RUN_ID_KEY: run_id,
        "flow_run_id": flow_run_id,
        "flow_run_url": flow_run_url,
        "sources": ",".join(s.source for s in report.sources),
        "records_in": str(report.records_in),
        "kept": str(report.kept),
        "quarantined": str(report.quarantined),
        "duplicates": str(report.duplicates),
        SOURCE_COUNTS_KEY: json.dumps(counts, sort_keys=True),
        SOURCE_SHA256_KEY: json.dumps(source_hashes, sort_keys=True),
        "code_version": code_version(),
    }


def ingest_run(commit: Commit) -> IngestRun | None:
    """The ingest run a commit records, or None if it is not an ingest run's commit."""
    meta = commit.metadata
    if _RUN_MARKER not in meta:
        return None
    counts = _json(meta.get(SOURCE_COUNTS_KEY))
    hashes = _json(meta.get(SOURCE_SHA256_KEY))
    # Runs recorded before per-source counts existed still name their sources.
    names = list(counts) or [s for s in meta.get("sources", "").split(",") if s]
    sources = [
        SourceFile(
            path=name,
            sha256=str(hashes.get(name, "")),
            records_in=_int(counts.get(name, {}).get("records_in")),
            kept=_int(counts.get(name, {}).get("kept")),
            quarantined=_int(counts.get(name, {}).get("quarantined")),
            duplicates=_int(counts.get(name, {}).get("duplicates")),
        )
        for name in names
    ]
    return IngestRun(
        commit=commit.id,
        created_at=commit.created_at,
        run_id=meta.get(RUN_ID_KEY, ""),
        flow_run_id=meta.get("flow_run_id", ""),
        flow_run_url=meta.get("flow_run_url", ""),
        sources=sources,
    )


def ingest_runs(store: Store, ref: str) -> list[IngestRun]:
    """Every ingest run whose data the dataset at ref holds, newest first."""
    runs = (ingest_run(c) for c in store.log(ref, limit=_WHOLE_HISTORY))
    return [r for r in runs if r is not None]


def run_history(store: Store, run_commit: str) -> RunHistory:
    """Per-source parsed-record counts of a run, and of the latest earlier run (reachable from the run
    commit's parents, i.e. main when the run branched) that read each of its sources."""
    commit = store.get_commit(run_commit)
    run = ingest_run(commit)
    if run is None:
        raise StoreError(f"commit {run_commit[:12]} is not an ingest run's commit (no run metadata)")
    current = {s.path: s.parsed for s in run.sources if s.parsed is not None}
    previous: dict[str, int] = {}
    earlier = [r for parent in commit.parents[:1] for r in ingest_runs(store, parent)]
    for past in earlier:  # newest first: the first run seen with a source is its previous run
        for s in past.sources:
            if s.path in current and s.path not in previous and s.parsed is not None:
                previous[s.path] = s.parsed
    return RunHistory(current=current, previous=previous)


# ---- from a model to its data, and back ---------------------------------------------------------------


def model_lineage(store: Store, version: str) -> ModelLineage:
    """A model version, the dataset commit it was trained on and the ingest runs in that commit."""
    registry = Registry(store)
    model = registry.get(version)
    dataset_commit = model.lineage.get("dataset_commit", "")
    if not dataset_commit:
        raise StoreError(f"model {version} records no dataset commit")
    production = registry.production()
    return ModelLineage(
        model=model,
        production=production is not None and production.version == model.version,
        dataset=store.get_commit(dataset_commit),
        ingest_runs=ingest_runs(store, dataset_commit),
    )


def models_trained_on(store: Store, dataset_ref: str) -> list[ModelVersion]:
    """The model versions trained on a dataset commit (a full id, a ref, or an id prefix of 6+ characters)."""
    try:
        commit = store.resolve(dataset_ref)
    except StoreError:
        commit = ""  # maybe a short id of a commit no ref points at any more: match registered ids by prefix
    if not commit and len(dataset_ref) < 6:
        raise StoreError(f"unknown dataset commit '{dataset_ref}' (give at least 6 characters of its id)")
    trained = [
        v for v in Registry(store).versions()
        if (d := v.lineage.get("dataset_commit", "")) and (d == commit or (not commit and d.startswith(dataset_ref)))
    ]
    if not commit and not trained:
        raise StoreError(f"unknown dataset commit '{dataset_ref}'")
    return trained


def _json(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else None
