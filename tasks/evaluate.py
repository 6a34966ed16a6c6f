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
            pii_probes=cfg.evaluation.pii_probes,
        )
        m = scores[name]
        # Entity names and counts only: the matched values are exactly what must not reach a log.
        logger.info(
            "%s: perplexity %.3f, chrF %.1f, ROUGE-L %.1f, PII matches %d %s, placeholders %.1f%%",
            name, m.perplexity, m.chrf, m.rouge_l, m.pii_hits, m.pii_entities or "", 100 * m.placeholder_share,
        )
    create_markdown_artifact(
        "## Evaluation on the held-out split\n\n"
        + markdown_table(
            ["model", "perplexity ↓", "token accuracy ↑", "chrF ↑", "ROUGE-L ↑", "PII matches (must be 0)",
             "placeholder share", "conversations", "tokens", "replies scanned"],
            [
                (n, m.perplexity, m.token_accuracy, m.chrf, m.rouge_l,
                 f"{m.pii_hits} {_entities(m.pii_entities)}".strip(), f"{m.placeholder_share:.1%}",
                 m.n_examples, m.n_tokens, m.n_generations)
                for n, m in scores.items()
            ],
        )
        + "\n\nReplies scanned: greedy replies to the held-out prompts"
        + (" and to prompts that invite personal data" if cfg.evaluation.pii_probes else "")
        + f"; placeholder share limit {cfg.evaluation.max_placeholder_share:.0%}.",
        key="evaluation",
    )
    return scores


def _entities(counts: dict[str, int]) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")" if counts else ""
