"""Shared test fixtures: tiny synthetic support conversations and a tiny bootstrapped base model."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from retune.config import BootstrapConfig
from retune.schema import TURN_SCHEMA

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach the hub

_ITEMS = ["order", "parcel", "invoice", "refund", "password", "subscription", "delivery", "account"]
_PROBLEMS = {
    "order": "Your order {n} ships tomorrow and arrives within three days.",
    "parcel": "Parcel {n} is at the local depot; the courier delivers it today.",
    "invoice": "Invoice {n} was sent again to the address on your account.",
    "refund": "Refund {n} is approved and reaches your bank in five days.",
    "password": "I sent a reset link for account {n}; it expires in one hour.",
    "subscription": "Subscription {n} is cancelled at the end of this month.",
    "delivery": "Delivery {n} is rescheduled to Friday morning.",
    "account": "Account {n} is unlocked; please sign in again.",
}
_ASKS = [
    "Hi, where is my {item} {n}?",
    "Hello, I have a problem with {item} {n}.",
    "Can you help me with {item} {n} please?",
    "Any news about {item} {n}?",
]

TINY_BOOTSTRAP = BootstrapConfig(
    vocab_size=500,
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_heads=4,
    max_position_embeddings=256,
    pretrain_steps=100,  # enough that LoRA alone shows a clear gain (~2 s)
    seed=0,
)


def synthetic_conversations(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """`n` short support conversations (system? → user → assistant [→ user → assistant]) with a learnable pattern."""
    rng = random.Random(seed)
    conversations = []
    for _ in range(n):
        item, number = rng.choice(_ITEMS), rng.randint(100, 999)
        messages = []
        if rng.random() < 0.5:
            messages.append({"role": "system", "content": "You are a helpful support agent."})
        messages.append({"role": "user", "content": rng.choice(_ASKS).format(item=item, n=number)})
        messages.append({"role": "assistant", "content": _PROBLEMS[item].format(n=number)})
        if rng.random() < 0.3:
            messages.append({"role": "user", "content": "Thank you!"})
            messages.append({"role": "assistant", "content": "You are welcome. Anything else?"})
        conversations.append(messages)
    return conversations


def turns_table(conversations: list[list[dict[str, str]]], id_prefix: str = "conv") -> pa.Table:
    """Conversations as rows of retune.schema.TURN_SCHEMA (one row per turn)."""
    rows: dict[str, list] = {name: [] for name in TURN_SCHEMA.names}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index, messages in enumerate(conversations):
        content_hash = hashlib.sha256(repr(messages).encode()).hexdigest()
        for turn, message in enumerate(messages):
            rows["conversation_id"].append(f"{id_prefix}-{index:05d}")
            rows["turn"].append(turn)
            rows["role"].append(message["role"])
            rows["text"].append(message["content"])
            rows["created_at"].append(start + timedelta(minutes=index, seconds=turn))
            rows["channel"].append("chat")
            rows["source"].append("synthetic.jsonl")
            rows["source_offset"].append(index)
            rows["content_hash"].append(content_hash)
    return pa.Table.from_pydict(rows, schema=TURN_SCHEMA)


def pretraining_texts(conversations: list[list[dict[str, str]]]) -> list[str]:
    """The plain turn texts (no chat format): what the embedded base model is pre-trained on."""
    return [message["content"] for messages in conversations for message in messages]


@pytest.fixture(scope="session")
def tiny_conversations() -> list[list[dict[str, str]]]:
    return synthetic_conversations(120, seed=0)


@pytest.fixture(scope="session")
def tiny_turns(tiny_conversations) -> pa.Table:
    return turns_table(tiny_conversations)


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory, tiny_conversations) -> Path:
    """A tiny Llama + byte-level BPE tokenizer with the retune chat template, bootstrapped in ~2 s
    (vocab ~500, hidden 64, 2 layers, 100 pre-training steps on the plain turn texts)."""
    from retune.training.bootstrap import bootstrap_base_model

    out = tmp_path_factory.mktemp("tiny_base") / "model"
    return bootstrap_base_model(out, pretraining_texts(tiny_conversations), TINY_BOOTSTRAP)


@pytest.fixture(scope="session")
def deepspeed_ops_cache() -> Path:
    """Where DeepSpeed's compiled CPU ops live (the same place `tasks/finetune` uses): compiled once per machine
    (~30-60 s), not once per test session."""
    path = Path.home() / ".cache" / "retune"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (own SQLite database) for every test of the session that runs flows."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield
