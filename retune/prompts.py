"""The reviewed system prompt (prompts/system.md), held-out conversations of a training set, and the generation
prompts made from them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from retune.errors import ConfigError


@dataclass(frozen=True)
class SystemPrompt:
    """The system prompt a model is trained, evaluated and served with; its sha256 is part of the model's lineage."""

    path: str
    text: str  # the file's text without leading/trailing whitespace: exactly what the model sees
    sha256: str  # of `text` (UTF-8)


def load_system_prompt(path: str | None) -> SystemPrompt | None:
    """Read the configured prompt file (None: the model has no system prompt)."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"model.system_prompt: no such file: {path} (run retune from the repo root)")
    text = file.read_text(encoding="utf-8").strip()
    if not text:
        raise ConfigError(f"model.system_prompt: {path} is empty (set model.system_prompt: null for no prompt)")
    return SystemPrompt(str(path), text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def with_system_prompt(messages: list[dict], prompt: str | None) -> list[dict]:
    """The conversation under the reviewed prompt: the model learns with the exact prompt it is served with, so the
    conversation's own system turns (whatever the support tool used then) are replaced by it."""
    if prompt is None:
        return messages
    return [{"role": "system", "content": prompt}, *(m for m in messages if m["role"] != "system")]


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
