"""Held-out conversations of a training set, and the generation prompts made from them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq


def split_conversations(examples_path: Path, split: str = "test", limit: int | None = None) -> list[list[dict]]:
    """Conversations (lists of {"role","content"}) of one split, in a stable order."""
    table = pq.read_table(examples_path)
    table = table.filter(pc.equal(table["split"], split)).sort_by("conversation_id")
    messages = table["messages"].to_pylist()
    return [json.loads(m) for m in messages[:limit]]


def generation_prompts(conversations: list[list[dict]], tokenizer_dir: str | Path, limit: int) -> list[str]:
    """Each conversation up to its last assistant reply, rendered with the tokenizer's chat template."""
    from transformers import AutoTokenizer  # heavy: imported only by the stage that needs it

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    prompts = []
    for conv in conversations:
        last = max((i for i, m in enumerate(conv) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        prompts.append(tokenizer.apply_chat_template(conv[:last], tokenize=False, add_generation_prompt=True))
        if len(prompts) == limit:
            break
    return prompts
