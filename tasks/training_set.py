"""Tasks: build the chat-formatted training set from a dataset commit, and prepare the base model."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune import contracts, datasets
from retune.config import Config
from retune.prompts import load_system_prompt, split_conversations
from retune.report import markdown_table
from retune.store import open_store
from retune.training import bootstrap, dataset


@task(name="build-training-set", cache_policy=NO_CACHE)
def build_training_set(cfg: Config, dataset_commit: str, run_dir: Path) -> Path:
    turns = datasets.read_turns(open_store(cfg), dataset_commit)
    prompt = load_system_prompt(cfg.model.system_prompt)
    examples = dataset.build_training_set(turns, cfg.split.test_fraction, prompt.text if prompt else None)
    result = contracts.validate(examples.to_pandas(), "training_examples", Path(cfg.contracts.dir))
    counts = dataset.split_counts(examples)
    create_markdown_artifact(
        f"## Training set from `{dataset_commit[:12]}`\n\n"
        + markdown_table(["split", "conversations"], sorted(counts.items()))
        + f"\n\nContract: {result.summary()}"
        + (f"\n\nSystem prompt: `{prompt.path}` (sha256 `{prompt.sha256[:12]}`)" if prompt else "\n\nNo system prompt"),
        key="training-set",
        description=f"{examples.num_rows} conversations",
    )
    get_run_logger().info("training set: %s; %s", counts, result.summary())
    contracts.require(result)
    out = run_dir / "examples.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(examples, out)
    return out


@task(name="prepare-base-model", cache_policy=NO_CACHE)
def prepare_base_model(cfg: Config, examples: Path) -> str:
    """The configured base model; the embedded default is bootstrapped locally the first time."""
    logger = get_run_logger()
    name, needs_bootstrap = bootstrap.resolve_base_model(cfg.model.base_model, Path(cfg.workdir))
    if not needs_bootstrap:
        logger.info("base model: %s", name)
        return name
    # Plain turn texts of the train split only: the model learns the language, not the chat format, and
    # never sees the held-out conversations it is later evaluated on.
    texts = [m["content"] for conv in split_conversations(examples, "train") for m in conv]
    logger.info("bootstrapping the embedded base model at %s from %d anonymized turns", name, len(texts))
    path = bootstrap.bootstrap_base_model(Path(name), texts, cfg.model.bootstrap)
    create_markdown_artifact(
        f"## Embedded base model bootstrapped\n\nA small causal LM pre-trained on the train split "
        f"({len(texts)} turns), saved at `{path}`.\n\n"
        + markdown_table(["setting", "value"], cfg.model.bootstrap.model_dump().items()),
        key="base-model",
    )
    return str(path)
