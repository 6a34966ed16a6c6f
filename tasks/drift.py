"""Task: compare the production model's training data with the data merged since, and raise the drift event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from retune import datasets
from retune.config import Config
from retune.drift import DriftResult, drift_markdown, drift_report
from retune.registry import Registry
from retune.reports import REPORTS_BRANCH, store_report
from retune.store import open_store

DRIFT_EVENT = "retune.drift.detected"


@dataclass
class Monitoring:
    result: DriftResult | None
    reason: str  # why there is no report, or the verdict


@task(name="drift-report", cache_policy=NO_CACHE)
def drift(cfg: Config, run_dir: Path) -> Monitoring:
    logger = get_run_logger()
    store = open_store(cfg)
    production = Registry(store).production()
    if production is None:
        reason = "no model in production yet: nothing to compare against"
        logger.info(reason)
        return Monitoring(None, reason)
    trained_on = production.lineage["dataset_commit"]
    main = store.resolve("main")
    current = datasets.turns_added(store, trained_on, main)
    if current.num_rows == 0:
        reason = f"no data merged since {production.version} was trained (`{trained_on[:12]}`)"
        logger.info(reason)
        return Monitoring(None, reason)
    reference = datasets.read_turns(store, trained_on)
    result = drift_report(
        reference, current, run_dir / "drift",
        threshold=cfg.drift.threshold, sample_size=cfg.drift.sample_size, seed=cfg.drift.seed,
        embeddings=cfg.drift.embeddings, embedding_sample_size=cfg.drift.embedding_sample_size,
        null_permutations=cfg.drift.null_permutations, chance_quantile=cfg.drift.chance_quantile,
        # the reference side is what the production model was trained on: computed once, reused until it changes
        cache_dir=cfg.path("cache/drift"), reference_key=trained_on,
    )
    create_markdown_artifact(
        f"## Data drift since {production.version}\n\nreference: `{trained_on[:12]}` (what {production.version} "
        f"was trained on), current: turns merged since, up to `{main[:12]}`\n\n" + drift_markdown(result),
        key="drift",
        description=f"drift share {result.drift_share:.2f}",
    )
    prefix = f"drift/{main}"
    stored = store_report(
        store, [result.html_path, result.json_path], prefix, f"drift report since {production.version}",
        {"reference": trained_on, "current": main, "drift_share": f"{result.drift_share:.4f}",
         "production_version": production.version},
    )
    create_link_artifact(
        result.html_path.resolve().as_uri(),
        link_text=f"Evidently drift report (also in the store: {REPORTS_BRANCH}@{stored.id[:12]}:{prefix}/)",
        key="drift-report",
    )
    verdict = "DRIFT" if result.drift_detected else "no drift"
    logger.info("%s: drift share %.2f (threshold %.2f)", verdict, result.drift_share, cfg.drift.threshold)
    if result.drift_detected:
        emit_event(
            DRIFT_EVENT,
            resource={"prefect.resource.id": f"retune.dataset.{main}", "retune.dataset.commit": main},
            payload={"config": cfg.source, "drift_share": result.drift_share, "reference": trained_on, "current": main,
                     "production_version": production.version},
        )
    return Monitoring(result, f"{verdict}: drift share {result.drift_share:.2f}")
