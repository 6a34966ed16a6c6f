"""Task: score base, production and candidate on the held-out split of the dataset commit, in one table (with the
LLM judge's win rate of the candidate when one is configured)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config
from retune.evaluation import EvalMetrics, evaluate_model
from retune.judge import JudgeError, judge_api_key, judge_pairwise, reply_pairs
from retune.prompts import load_system_prompt, split_conversations
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
    prompt = load_system_prompt(cfg.model.system_prompt)
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
            pii_probes=cfg.evaluation.pii_probes, system_prompt=prompt.text if prompt else None,
        )
        m = scores[name]
        # Entity names and counts only: the matched values are exactly what must not reach a log.
        logger.info(
            "%s: perplexity %.3f, chrF %.1f, ROUGE-L %.1f, PII matches %d %s, placeholders %.1f%%",
            name, m.perplexity, m.chrf, m.rouge_l, m.pii_hits, m.pii_entities or "", 100 * m.placeholder_share,
        )

    judge_note = ""
    if cfg.evaluation.judge is not None:
        judge_note = _judge(cfg, conversations, scores)
        logger.info("LLM judge: %s", judge_note)
    create_markdown_artifact(
        "## Evaluation on the held-out split\n\n"
        + markdown_table(
            ["model", "perplexity ↓", "token accuracy ↑", "chrF ↑", "ROUGE-L ↑", "judge win rate ↑",
             "PII matches (must be 0)", "placeholder share", "conversations", "tokens", "replies scanned"],
            [
                (n, m.perplexity, m.token_accuracy, m.chrf, m.rouge_l,
                 f"{m.judge.win_rate:.1%} vs {m.judge.opponent}" if m.judge else "-",
                 f"{m.pii_hits} {_entities(m.pii_entities)}".strip(), f"{m.placeholder_share:.1%}",
                 m.n_examples, m.n_tokens, m.n_generations)
                for n, m in scores.items()
            ],
        )
        + "\n\nReplies scanned: greedy replies to the held-out prompts"
        + (" and to prompts that invite personal data" if cfg.evaluation.pii_probes else "")
        + f"; placeholder share limit {cfg.evaluation.max_placeholder_share:.0%}."
        + (f" System prompt: `{prompt.path}` (sha256 `{prompt.sha256[:12]}`)." if prompt else " No system prompt.")
        + (f"\n\nLLM judge: {judge_note}" if judge_note else ""),
        key="evaluation",
    )
    return scores


def _judge(cfg: Config, conversations: list[list[dict]], scores: dict[str, EvalMetrics]) -> str:
    """The candidate's win rate vs production (base when there is none), set on the candidate's metrics."""
    judge = cfg.evaluation.judge
    opponent = next((n for n in scores if n.startswith("production")), "base")
    candidate, other = scores["candidate"], scores[opponent]
    pairs = reply_pairs(conversations, candidate.replies, other.replies, judge.max_pairs)
    try:
        result = judge_pairwise(
            pairs, endpoint=judge.endpoint, model=judge.model, api_key=judge_api_key(judge.api_key_env),
            opponent=opponent, timeout_s=judge.timeout_s,
        )
    except JudgeError as exc:
        if judge.min_win_rate is not None:  # gated: no verdict, no promotion decision
            raise
        return f"unavailable ({exc}); the win rate is not gated, so the run goes on"
    candidate.judge = result
    return (
        f"{judge.model}: candidate wins {result.win_rate:.1%} vs {opponent} over {result.pairs} prompts, each judged "
        f"twice with positions swapped ({result.wins} wins, {result.losses} losses, {result.ties} ties, "
        f"{result.invalid} unusable answers; the judge picked the first position in "
        f"{result.first_position_share:.0%} of decisive verdicts)"
    )


def _entities(counts: dict[str, int]) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")" if counts else ""
