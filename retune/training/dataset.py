"""Conversations to training examples: a stable train/test split by conversation, assistant-only labels, a
truncation policy for long conversations and optional packing.

Chat format: the tokenizer's own chat template. A tokenizer without one gets DEFAULT_CHAT_TEMPLATE (ChatML
markers as plain text, and the tokenizer's eos after each assistant turn so that generation stops there)::

    <|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n{content}<|im_end|>{eos}\n
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from retune.errors import TrainingError
from retune.prompts import with_system_prompt

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


def build_training_set(turns: pa.Table, test_fraction: float, system_prompt: str | None = None) -> pa.Table:
    """One row per conversation (EXAMPLE_SCHEMA), split by conversation; conversations with no assistant turn
    are dropped and counted in the schema metadata (see `split_counts`). With `system_prompt` (the reviewed
    prompts/system.md), every conversation starts with it instead of its own system turns: training, export
    parity and evaluation all read these rows, so they all see the prompt serving uses."""
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
        messages = with_system_prompt([{"role": role, "content": text} for _, role, text in ordered], system_prompt)
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


DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TRUNCATION_POLICIES = ("drop", "truncate_left", "split")


def prepare_tokenizer(tokenizer) -> list[str]:
    """Make a base model's tokenizer usable for chat fine-tuning, in place; returns what was changed (for the
    start event). No pad token: the eos token pads (padding is masked out of attention and loss anyway).
    No chat template: DEFAULT_CHAT_TEMPLATE."""
    notes = []
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise TrainingError("the base model's tokenizer has neither a pad nor an eos token: cannot pad batches")
        tokenizer.pad_token = tokenizer.eos_token
        notes.append(f"tokenizer had no pad token: padding with eos {tokenizer.eos_token!r}")
    if not getattr(tokenizer, "chat_template", None):
        if tokenizer.eos_token is None:
            raise TrainingError("the base model's tokenizer has no chat template and no eos token")
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        notes.append("tokenizer had no chat template: using retune's default (ChatML markers + eos)")
    return notes


def _render(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)


def assistant_spans(messages: list[dict], tokenizer) -> tuple[str, list[tuple[int, int]]]:
    """The conversation rendered with the tokenizer's chat template, and the character spans the model must
    learn: each assistant turn's content plus the template's end-of-turn text (so it learns to stop)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingError("the base model's tokenizer has no chat template: call prepare_tokenizer first")
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


def _labelled(input_ids: list[int], labels: list[int]) -> dict[str, list[int]] | None:
    if all(label == IGNORE_INDEX for label in labels):
        return None  # nothing to learn (no assistant token left)
    return {"input_ids": input_ids, "labels": labels}


def _tokenize(messages: list[dict], tokenizer) -> tuple[list[int], list[int]]:
    """The whole rendered conversation's token ids, and labels: -100 everywhere but assistant turns."""
    text, spans = assistant_spans(messages, tokenizer)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, return_token_type_ids=False)
    input_ids = encoded["input_ids"]
    labels = [IGNORE_INDEX] * len(input_ids)
    for index, (start, end) in enumerate(encoded["offset_mapping"]):
        if any(start < span_end and end > span_start for span_start, span_end in spans):
            labels[index] = input_ids[index]
    return input_ids, labels


def _windows(length: int, max_length: int, truncation: str) -> list[tuple[int, int]]:
    if length <= max_length:
        return [(0, length)]
    if truncation == "drop":
        return []
    if truncation == "truncate_left":
        return [(length - max_length, length)]
    return [(i, min(i + max_length, length)) for i in range(0, length, max_length)]


def tokenize_examples(
    messages: list[dict], tokenizer, max_length: int, truncation: str = "drop"
) -> list[dict[str, list[int]]]:
    """`input_ids` and `labels` (-100 everywhere but assistant turns) of one conversation, as 0, 1 or more
    examples of at most `max_length` tokens. A longer conversation is, by `truncation`:
    drop: dropped (a cut answer can teach badly); truncate_left: its last `max_length` tokens (the latest answer
    and as much context as fits); split: cut into consecutive `max_length` windows. An example left with no
    assistant token is dropped."""
    if truncation not in TRUNCATION_POLICIES:
        raise TrainingError(f"unknown truncation policy {truncation!r}: one of {', '.join(TRUNCATION_POLICIES)}")
    input_ids, labels = _tokenize(messages, tokenizer)
    kept = [_labelled(input_ids[a:b], labels[a:b]) for a, b in _windows(len(input_ids), max_length, truncation)]
    return [k for k in kept if k is not None]


def tokenize_example(messages: list[dict], tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """One example, or None when the conversation is longer than `max_length` tokens (the `drop` policy)."""
    examples = tokenize_examples(messages, tokenizer, max_length, "drop")
    return examples[0] if examples else None


@dataclass
class DataCounts:
    """What the truncation policy and packing did to one split; reported in the start event and TrainResult."""

    conversations: int = 0
    fit: int = 0  # conversations that fit in max_length as they are
    dropped_too_long: int = 0  # policy `drop`
    truncated_left: int = 0  # policy `truncate_left`
    split: int = 0  # conversations cut into windows (policy `split`)
    dropped_no_label: int = 0  # examples with no assistant token (after cutting)
    examples: int = 0  # examples fed to the model (after packing: sequences)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def tokenize_split(
    examples: pa.Table, split: str, tokenizer, max_length: int, truncation: str = "drop", packing: bool = False
) -> tuple[list[dict[str, list[int]]], DataCounts]:
    """Tokenized examples of one split (packed if asked), and what happened to them."""
    if truncation not in TRUNCATION_POLICIES:
        raise TrainingError(f"unknown truncation policy {truncation!r}: one of {', '.join(TRUNCATION_POLICIES)}")
    rows = examples.filter(pc.equal(examples.column("split"), split)).column("messages").to_pylist()
    kept: list[dict[str, list[int]]] = []
    counts = DataCounts(conversations=len(rows))
    for raw in rows:
        input_ids, labels = _tokenize(json.loads(raw), tokenizer)
        windows = _windows(len(input_ids), max_length, truncation)
        if len(input_ids) <= max_length:
            counts.fit += 1
        elif truncation == "drop":
            counts.dropped_too_long += 1
        elif truncation == "truncate_left":
            counts.truncated_left += 1
        else:
            counts.split += 1
        for a, b in windows:
            example = _labelled(input_ids[a:b], labels[a:b])
            if example is None:
                counts.dropped_no_label += 1
            else:
                kept.append(example)
    if packing:
        kept = pack(kept, max_length)
    counts.examples = len(kept)
    return kept, counts


def pack(examples: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Concatenate examples, in order, into sequences of at most `max_length` tokens (an example never spans two
    sequences). Examples in one sequence attend to each other (no block-diagonal mask on CPU attention): the
    usual trade of packing for fewer pad tokens. The first token of each appended example is not labelled, so
    no token is learned from the example before it."""
    packed: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": []}
    for example in examples:
        if current["input_ids"] and len(current["input_ids"]) + len(example["input_ids"]) > max_length:
            packed.append(current)
            current = {"input_ids": [], "labels": []}
        current["input_ids"] = current["input_ids"] + example["input_ids"]
        labels = example["labels"] if not current["labels"] else [IGNORE_INDEX, *example["labels"][1:]]
        current["labels"] = current["labels"] + labels
    if current["input_ids"]:
        packed.append(current)
    return packed
