"""Task: score base, production and candidate on the held-out split of the dataset commit, in one table."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config
from retune.evaluation import EvalMetrics, evaluate_model
from retune.prompts import split_conversations
from retune.registry import Registry
from retune.report import markdown_table
from retune.store import open_store


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(
    cfg: Config, candidate_dir: Path, base_model: str, examples: Path, run_dir: Path
) -> dict[str, EvalMetrics]:
    logger = get_run_logger()
    registry = Registry(open_store(cfg))
    production = registry.production()
    conversations = split_conversations(examples, "test", limit=cfg.evaluation.max_examples)
    models: dict[str, str | Path] = {"base": base_model}
    if production is not None:
        downloaded = registry.download(production.version, run_dir / "production")
        models[f"production ({production.version})"] = downloaded / "merged"
    models["candidate"] = candidate_dir
    scores = {}
    for name, path in models.items():
        scores[name] = evaluate_model(
            path, conversations,
            max_examples=cfg.evaluation.max_examples, max_new_tokens=cfg.evaluation.max_new_tokens,
        )
        logger.info("%s: perplexity %.3f, chrF %.1f", name, scores[name].perplexity, scores[name].chrf)
    create_markdown_artifact(
        "## Evaluation on the held-out split\n\n"
        + markdown_table(
            ["model", "perplexity ↓", "token accuracy ↑", "chrF ↑", "conversations", "tokens"],
            [(n, m.perplexity, m.token_accuracy, m.chrf, m.n_examples, m.n_tokens) for n, m in scores.items()],
        ),
        key="evaluation",
    )
    return scores
