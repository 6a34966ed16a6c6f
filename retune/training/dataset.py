"""Conversations to training examples: a stable train/test split by conversation, and assistant-only labels."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from retune.errors import TrainingError

EXAMPLE_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # "train" | "test"
        pa.field("messages", pa.string(), nullable=False),  # JSON list of {"role", "content"} in turn order
        pa.field("num_turns", pa.int32(), nullable=False),
    ]
)
DROPPED_KEY = b"retune.dropped_no_assistant"  # schema metadata: conversations dropped for lack of an answer
IGNORE_INDEX = -100  # label value the loss skips


def split_of(conversation_id: str, test_fraction: float) -> str:
    """'test' or 'train', from a hash of the id alone: a conversation keeps its split however the data grows."""
    digest = hashlib.sha256(conversation_id.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return "test" if position < test_fraction else "train"


def build_training_set(turns: pa.Table, test_fraction: float) -> pa.Table:
    """One row per conversation (EXAMPLE_SCHEMA), split by conversation; conversations with no assistant turn
    are dropped and counted in the schema metadata (see `split_counts`)."""
    by_conversation: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    columns = turns.select(["conversation_id", "turn", "role", "text"]).to_pydict()
    for cid, turn, role, text in zip(
        columns["conversation_id"], columns["turn"], columns["role"], columns["text"], strict=True
    ):
        by_conversation[cid].append((turn, role, text))

    rows: dict[str, list] = {name: [] for name in EXAMPLE_SCHEMA.names}
    dropped = 0
    for cid in sorted(by_conversation):
        ordered = sorted(by_conversation[cid])
        if not any(role == "assistant" for _, role, _ in ordered):
            dropped += 1
            continue
        messages = [{"role": role, "content": text} for _, role, text in ordered]
        rows["conversation_id"].append(cid)
        rows["split"].append(split_of(cid, test_fraction))
        rows["messages"].append(json.dumps(messages, ensure_ascii=False))
        rows["num_turns"].append(len(messages))
    schema = EXAMPLE_SCHEMA.with_metadata({DROPPED_KEY: str(dropped).encode()})
    return pa.Table.from_pydict(rows, schema=schema)


def split_counts(examples: pa.Table) -> dict[str, int]:
    """{"train": n, "test": n, "dropped_no_assistant": n} for a table made by `build_training_set`."""
    splits = examples.column("split").to_pylist()
    metadata = examples.schema.metadata or {}
    return {
        "train": splits.count("train"),
        "test": splits.count("test"),
        "dropped_no_assistant": int(metadata.get(DROPPED_KEY, b"0")),
    }


def _render(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)


def assistant_spans(messages: list[dict], tokenizer) -> tuple[str, list[tuple[int, int]]]:
    """The conversation rendered with the tokenizer's chat template, and the character spans the model must
    learn: each assistant turn's content plus the template's end-of-turn text (so it learns to stop)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingError("the base model's tokenizer has no chat template: cannot build chat examples")
    text = _render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i]) if i else ""
        through = _render(tokenizer, messages[: i + 1])
        if not text.startswith(through) or not through.startswith(before):
            raise TrainingError("the chat template renders a conversation differently from its prefixes")
        # Where the content starts: render the same turn with a sentinel and measure the header before it.
        sentinel = "\x00retune-sentinel\x00"
        probe = _render(tokenizer, [*messages[:i], {"role": "assistant", "content": sentinel}])
        header = probe.find(sentinel, len(before)) - len(before)
        spans.append((len(before) + max(header, 0), len(through)))
    return text, spans


def tokenize_example(messages: list[dict], tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """`input_ids` and `labels` (-100 everywhere but assistant turns), or None when the rendered conversation
    is longer than `max_length` tokens: such examples are dropped, not truncated (a cut answer teaches badly)."""
    text, spans = assistant_spans(messages, tokenizer)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, return_token_type_ids=False)
    input_ids = encoded["input_ids"]
    if len(input_ids) > max_length:
        return None
    labels = [IGNORE_INDEX] * len(input_ids)
    for index, (start, end) in enumerate(encoded["offset_mapping"]):
        if any(start < span_end and end > span_start for span_start, span_end in spans):
            labels[index] = input_ids[index]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def tokenize_split(
    examples: pa.Table, split: str, tokenizer, max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """Tokenized examples of one split, and how many were dropped as too long."""
    rows = examples.filter(pc.equal(examples.column("split"), split)).column("messages").to_pylist()
    kept, dropped = [], 0
    for raw in rows:
        example = tokenize_example(json.loads(raw), tokenizer, max_length)
        if example is None:
            dropped += 1
        else:
            kept.append(example)
    return kept, dropped
