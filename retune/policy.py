"""Whether a dataset commit is worth a fine-tune: no work without enough new data, unless forced."""

from __future__ import annotations

from dataclasses import dataclass

from retune import datasets
from retune.registry import Registry
from retune.store.base import Store


@dataclass
class RetrainDecision:
    run: bool
    reason: str
    new_conversations: int | None


def should_retrain(store: Store, commit: str, min_new_conversations: int, *, force: bool = False) -> RetrainDecision:
    production = Registry(store).production()
    if force:
        return RetrainDecision(True, "forced (a drift event or a manual run)", None)
    if production is None:
        return RetrainDecision(True, "no model in production yet", None)
    trained_on = production.lineage["dataset_commit"]
    new = datasets.conversations(datasets.turns_added(store, trained_on, commit))
    if new >= min_new_conversations:
        return RetrainDecision(
            True, f"{new} new conversations since {production.version} (threshold {min_new_conversations})", new
        )
    return RetrainDecision(
        False,
        f"only {new} new conversations since {production.version} was trained "
        f"(threshold {min_new_conversations}): nothing to do",
        new,
    )
