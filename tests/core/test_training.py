"""Training core: split stability, assistant-only labels, the embedded base model, and real DeepSpeed launches."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import synthetic_conversations, turns_table

from retune.config import TrainingConfig
from retune.errors import TrainingError
from retune.training.bootstrap import resolve_base_model
from retune.training.dataset import (
    IGNORE_INDEX,
    build_training_set,
    split_counts,
    tokenize_example,
    tokenize_split,
)
from retune.training.launch import TrainResult, finetune

ZERO2 = Path(__file__).resolve().parents[2] / "infra" / "deepspeed" / "zero2.json"
ZERO3 = Path(__file__).resolve().parents[2] / "infra" / "deepspeed" / "zero3.json"
CONVERSATION = [
    {"role": "system", "content": "You are a helpful support agent."},
    {"role": "user", "content": "Where is my order 123?"},
    {"role": "assistant", "content": "Your order 123 ships tomorrow."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]


# ---- the split


def _splits(table: pa.Table) -> dict[str, str]:
    return dict(zip(table.column("conversation_id").to_pylist(), table.column("split").to_pylist(), strict=True))


def test_split_is_stable_as_data_grows():
    small = build_training_set(turns_table(synthetic_conversations(60, seed=1)), test_fraction=0.25)
    grown = build_training_set(turns_table(synthetic_conversations(300, seed=1)), test_fraction=0.25)
    before, after = _splits(small), _splits(grown)
    assert len(after) == 300
    assert all(after[cid] == split for cid, split in before.items())  # nobody moved
    counts = split_counts(grown)
    assert counts["train"] + counts["test"] == 300 and 40 < counts["test"] < 110  # ~25% test


def test_one_row_per_conversation_in_turn_order_and_unanswered_dropped():
    conversations = synthetic_conversations(20, seed=2)
    conversations.append([{"role": "user", "content": "Hello? Anyone?"}])  # never answered
    turns = turns_table(conversations)
    shuffled = turns.take(list(reversed(range(turns.num_rows))))  # input order must not matter
    examples = build_training_set(shuffled, test_fraction=0.3)
    assert examples.num_rows == 20
    assert examples.column("conversation_id").to_pylist() == sorted(set(examples.column("conversation_id").to_pylist()))
    first = json.loads(examples.column("messages")[0].as_py())
    assert first == conversations[0]
    assert examples.column("num_turns")[0].as_py() == len(conversations[0])
    assert split_counts(examples)["dropped_no_assistant"] == 1
    # Counts survive a round trip through Parquet (they live in the schema metadata).
    sink = pa.BufferOutputStream()
    pq.write_table(examples, sink)
    assert split_counts(pq.read_table(pa.BufferReader(sink.getvalue())))["dropped_no_assistant"] == 1


# ---- the embedded base model and the labels


def test_bootstrap_gives_a_loadable_model_with_a_chat_template(tiny_base_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model, local_files_only=True)
    assert model.config.vocab_size == len(tokenizer) <= 500
    prompt = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>\nWhere is my order 123?<|end|>\n<|assistant|>\n")
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False, return_token_type_ids=False)
    assert tokenizer.decode(encoded["input_ids"][0]) == prompt  # byte-level BPE: lossless
    output = model.generate(**encoded, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] > encoded["input_ids"].shape[1]
    with pytest.raises(Exception, match="unknown role"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_only_assistant_tokens_are_labelled(tiny_base_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model, local_files_only=True)
    example = tokenize_example(CONVERSATION, tokenizer, max_length=256)
    assert example is not None and len(example["input_ids"]) == len(example["labels"])
    labelled = [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, t) for t, label in zip(example["input_ids"], example["labels"], strict=True))
    text = tokenizer.decode(labelled)
    # Both answers and their end-of-turn marks are learned; nothing the user or system said is.
    assert text.replace("\n", "") == "Your order 123 ships tomorrow.<|end|>You are welcome.<|end|>"
    assert tokenize_example(CONVERSATION, tokenizer, max_length=10) is None  # too long: dropped, not cut


def test_resolve_base_model(tmp_path):
    assert resolve_base_model("models/base", tmp_path) == (str(tmp_path / "models/base"), True)
    assert resolve_base_model("./my-model", tmp_path) == (str(tmp_path / "my-model"), True)
    assert resolve_base_model("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        False,
    )
    (tmp_path / "org" / "name").mkdir(parents=True)  # an existing local folder wins over a hub id
    assert resolve_base_model("org/name", tmp_path) == (str(tmp_path / "org/name"), False)


# ---- launch: clear errors before any process starts


def test_finetune_refuses_a_missing_base_model_or_too_long_sequences(tmp_path, tiny_base_model, tiny_turns):
    examples = tmp_path / "examples.parquet"
    pq.write_table(build_training_set(tiny_turns, 0.2), examples)
    with pytest.raises(TrainingError, match="base model not found"):
        finetune(str(tmp_path / "nope"), examples, tmp_path / "run", TrainingConfig(), deepspeed_config=ZERO2)
    with pytest.raises(TrainingError, match="above the base model's limit of 256"):
        finetune(
            str(tiny_base_model), examples, tmp_path / "run", TrainingConfig(max_length=512), deepspeed_config=ZERO2
        )
    with pytest.raises(TrainingError, match="training set not found"):
        finetune(str(tiny_base_model), tmp_path / "x", tmp_path / "run", TrainingConfig(), deepspeed_config=ZERO2)


# ---- real launches: 2 processes, DeepSpeed ZeRO, LoRA


TINY_RUN = TrainingConfig(
    nproc_per_node=2,
    max_steps=10,
    checkpoint_every=5,
    learning_rate=1e-2,
    per_device_batch_size=4,
    max_length=128,
)


@pytest.fixture(scope="module")
def examples_path(tmp_path_factory, tiny_turns) -> Path:
    path = tmp_path_factory.mktemp("examples") / "examples.parquet"
    pq.write_table(build_training_set(tiny_turns, test_fraction=0.2), path)
    return path


@pytest.fixture(scope="module")
def ops_cache(tmp_path_factory) -> Path:
    # DeepSpeed compiles its shared-memory op once (~30-60 s); share it across the launches of this module.
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def zero2_run(tmp_path_factory, tiny_base_model, examples_path, ops_cache) -> tuple[TrainResult, list[dict]]:
    events: list[dict] = []
    result = finetune(
        str(tiny_base_model),
        examples_path,
        tmp_path_factory.mktemp("zero2") / "run",
        TINY_RUN,
        deepspeed_config=ZERO2,
        on_event=events.append,
        cache_dir=ops_cache,
    )
    print(f"\nZeRO-2 launch: {result.tokens_per_s} tokens/s, {result.wall_s} s wall")
    return result, events


def _base_loss(base_model: Path, examples_path: Path, split: str) -> float:
    """Token-weighted loss of the untouched base model on one split (what the adapter must beat)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retune.training.worker import collate

    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(base_model, local_files_only=True).eval()
    examples, _ = tokenize_split(pq.read_table(examples_path), split, tokenizer, 128)
    total = scored = 0.0
    with torch.no_grad():
        for example in examples:
            batch = collate([example], tokenizer.pad_token_id)
            n = float((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(model(**batch).loss) * n
            scored += n
    return total / scored


@pytest.mark.slow
def test_zero2_launch_trains_and_saves_an_adapter(zero2_run, tiny_base_model, examples_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    result, events = zero2_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [5, 10]
    assert [m["step"] for m in result.metrics] == list(range(1, 11))
    assert events[0]["world_size"] == 2 and events[0]["zero_stage"] == 2 and result.resumed_from_step is None
    assert all(math.isfinite(m["loss"]) and m["tokens_per_s"] > 0 for m in result.metrics)
    assert result.steps == 10 and result.tokens_per_s > 0

    # A real gain: training loss falls, and the held-out loss beats the base model's.
    assert result.loss_last < result.loss_first * 0.9
    assert result.eval_loss < _base_loss(tiny_base_model, examples_path, "test") * 0.9

    # The adapter is real (trained LoRA B matrices are non-zero) and loads onto the base model.
    weights = load_file(result.adapter_dir / "adapter_model.safetensors")
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in weights.items())
    base = AutoModelForCausalLM.from_pretrained(tiny_base_model, local_files_only=True)
    PeftModel.from_pretrained(base, result.adapter_dir)


@pytest.mark.slow
def test_rerun_resumes_from_the_last_checkpoint(tmp_path, zero2_run, tiny_base_model, examples_path, ops_cache):
    class Interrupted(Exception):
        pass

    def stop_at_first_checkpoint(event: dict) -> None:
        if event["event"] == "checkpoint":
            raise Interrupted

    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        finetune(
            str(tiny_base_model), examples_path, out, TINY_RUN, deepspeed_config=ZERO2,
            on_event=stop_at_first_checkpoint, cache_dir=ops_cache,
        )  # fmt: skip
    resumed = finetune(str(tiny_base_model), examples_path, out, TINY_RUN, deepspeed_config=ZERO2, cache_dir=ops_cache)
    assert resumed.resumed_from_step == 5 and resumed.steps == 10
    assert [m["step"] for m in resumed.metrics] == [6, 7, 8, 9, 10]
    # Same data order, same weights, same optimizer state: the resumed steps match an uninterrupted run.
    uninterrupted = {m["step"]: m["loss"] for m in zero2_run[0].metrics}
    for m in resumed.metrics:
        assert m["loss"] == pytest.approx(uninterrupted[m["step"]], rel=1e-3)
    assert resumed.eval_loss == pytest.approx(zero2_run[0].eval_loss, rel=1e-3)


@pytest.mark.slow
def test_zero3_launch_saves_a_non_empty_adapter(tmp_path, tiny_base_model, examples_path, ops_cache):
    from safetensors.torch import load_file

    result = finetune(
        str(tiny_base_model), examples_path, tmp_path / "run", TINY_RUN.model_copy(update={"max_steps": 4}),
        deepspeed_config=ZERO3, cache_dir=ops_cache,
    )  # fmt: skip
    weights = load_file(result.adapter_dir / "adapter_model.safetensors")
    assert weights and all(tensor.numel() > 0 for tensor in weights.values())  # ZeRO-3 gathered before saving
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in weights.items())
    assert result.loss_last < result.loss_first


@pytest.mark.slow
def test_a_worker_error_reaches_the_caller_as_one_clear_message(tmp_path, tiny_base_model, examples_path, ops_cache):
    too_short = TINY_RUN.model_copy(update={"max_length": 16, "nproc_per_node": 1, "launcher": "deepspeed"})
    with pytest.raises(TrainingError, match="no training example fits in max_length=16"):
        finetune(
            str(tiny_base_model), examples_path, tmp_path / "run", too_short, deepspeed_config=ZERO2,
            cache_dir=ops_cache,
        )  # fmt: skip
