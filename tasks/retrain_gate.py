"""Task: decide whether the dataset commit is worth a fine-tune, and say why either way."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config
from retune.policy import RetrainDecision, should_retrain
from retune.store import open_store


@task(name="check-new-data", cache_policy=NO_CACHE)
def check_new_data(cfg: Config, dataset_commit: str, force: bool) -> RetrainDecision:
    decision = should_retrain(open_store(cfg), dataset_commit, cfg.retrain.min_new_conversations, force=force)
    get_run_logger().info("%s: %s", "retraining" if decision.run else "skipping the fine-tune", decision.reason)
    if not decision.run:
        create_markdown_artifact(
            f"## No retrain\n\n{decision.reason}", key="retrain-skipped", description=decision.reason
        )
    return decision
