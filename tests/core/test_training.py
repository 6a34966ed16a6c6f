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
    DEFAULT_CHAT_TEMPLATE,
    IGNORE_INDEX,
    build_training_set,
    pack,
    prepare_tokenizer,
    split_counts,
    tokenize_example,
    tokenize_examples,
    tokenize_split,
)
from retune.training.launch import CHECKPOINT_COMPLETE, TrainResult, complete_checkpoints, finetune, resume_plan

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


# ---- tokenizer fixes, truncation policies, packing


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def test_a_tokenizer_without_pad_token_or_chat_template_gets_the_documented_defaults(tiny_base_model):
    tokenizer = _tokenizer(tiny_base_model)
    tokenizer.pad_token = None
    tokenizer.chat_template = None
    notes = prepare_tokenizer(tokenizer)
    assert len(notes) == 2 and "no pad token" in notes[0] and "no chat template" in notes[1]
    assert tokenizer.pad_token_id == tokenizer.eos_token_id and tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    example = tokenize_example(CONVERSATION, tokenizer, max_length=512)
    labelled = [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX]
    # The learned text: each answer, its end-of-turn marker and eos (so generation stops); never the prompt.
    assert tokenizer.decode(labelled).replace("\n", "") == (
        "Your order 123 ships tomorrow.<|im_end|><|end|>You are welcome.<|im_end|><|end|>"
    )
    assert prepare_tokenizer(tokenizer) == []  # idempotent


def test_truncation_policies_keep_what_they_say_and_count_it(tiny_base_model):
    tokenizer = _tokenizer(tiny_base_model)
    whole = tokenize_example(CONVERSATION, tokenizer, max_length=512)
    n, limit = len(whole["input_ids"]), 24
    assert n > 2 * limit
    assert tokenize_examples(CONVERSATION, tokenizer, limit, "drop") == []
    [left] = tokenize_examples(CONVERSATION, tokenizer, limit, "truncate_left")
    assert left["input_ids"] == whole["input_ids"][-limit:] and left["labels"] == whole["labels"][-limit:]
    windows = tokenize_examples(CONVERSATION, tokenizer, limit, "split")
    assert all(len(w["input_ids"]) <= limit for w in windows)
    assert all(any(label != IGNORE_INDEX for label in w["labels"]) for w in windows)  # each teaches something
    # Split loses no labelled token: windows without labels are the only thing dropped.
    labelled = sum(label != IGNORE_INDEX for label in whole["labels"])
    assert sum(label != IGNORE_INDEX for w in windows for label in w["labels"]) == labelled

    table = build_training_set(turns_table([CONVERSATION, CONVERSATION[:3]]), test_fraction=0.01)
    short = len(tokenize_example(CONVERSATION[:3], tokenizer, 512)["input_ids"])
    for policy, expect in [("drop", {"dropped_too_long": 1, "examples": 1}),
                           ("truncate_left", {"truncated_left": 1, "examples": 2}),
                           ("split", {"split": 1, "examples": 1 + len(windows)})]:  # fmt: skip
        examples, counts = tokenize_split(table, "train", tokenizer, max(short, limit), policy)
        assert counts.conversations == 2 and counts.fit == 1
        assert {k: counts.as_dict()[k] for k in expect} == expect, policy
        assert len(examples) == counts.examples


def test_packing_fills_sequences_without_crossing_examples(tiny_base_model, tiny_turns):
    tokenizer = _tokenizer(tiny_base_model)
    table = build_training_set(tiny_turns, test_fraction=0.2)
    plain, _ = tokenize_split(table, "train", tokenizer, 128)
    packed, counts = tokenize_split(table, "train", tokenizer, 128, packing=True)
    assert counts.examples == len(packed) < len(plain) / 2
    assert all(len(p["input_ids"]) <= 128 for p in packed)
    assert sum(len(p["input_ids"]) for p in packed) == sum(len(e["input_ids"]) for e in plain)
    assert pack(plain[:2], 10_000)[0]["input_ids"] == plain[0]["input_ids"] + plain[1]["input_ids"]
    # Labels: unchanged except the first token of each appended example (never labelled by the template anyway).
    assert sum(lbl != IGNORE_INDEX for p in packed for lbl in p["labels"]) == sum(
        lbl != IGNORE_INDEX for e in plain for lbl in e["labels"]
    )


# ---- LoRA targets, out-of-memory, DeepSpeed knobs, checkpoint bookkeeping


def _tiny(config_class, **kwargs):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config_class(**kwargs))


@pytest.mark.parametrize(
    "architecture",
    ["llama", "mistral", "qwen2", "gpt2", "gpt_neox"],
)
def test_lora_target_modules_are_inferred_for_common_architectures(architecture):
    import transformers
    from peft import LoraConfig, get_peft_model

    from retune.training.worker import infer_target_modules

    small = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    model = {
        "llama": lambda: _tiny(transformers.LlamaConfig, **small),
        "mistral": lambda: _tiny(transformers.MistralConfig, **small),
        "qwen2": lambda: _tiny(transformers.Qwen2Config, **small),
        "gpt2": lambda: _tiny(transformers.GPT2Config, vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64),
        "gpt_neox": lambda: _tiny(transformers.GPTNeoXConfig, vocab_size=64, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64),
    }[architecture]()  # fmt: skip
    assert model.config.model_type == architecture
    targets = infer_target_modules(model)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, task_type="CAUSAL_LM"))
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert adapted == set(targets)
    out = peft_model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]]))
    assert torch.isfinite(out.loss)


def test_an_architecture_without_known_targets_asks_for_them():
    import transformers

    from retune.training.worker import WorkerError, infer_target_modules

    model = _tiny(transformers.OPTConfig, vocab_size=64, hidden_size=32, ffn_dim=64, num_hidden_layers=1,
                  num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64)  # fmt: skip
    with pytest.raises(WorkerError, match="set training.lora.target_modules"):
        infer_target_modules(model)


def test_out_of_memory_is_recognised_and_the_advice_names_the_knobs():
    from retune.training.worker import OOM_ADVICE, is_out_of_memory

    with pytest.raises(RuntimeError) as allocation:
        torch.empty(2**50, dtype=torch.float32)  # a real allocator failure: 4 PiB
    assert is_out_of_memory(allocation.value)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("x"))
    for knob in ("per_device_batch_size", "gradient_accumulation_steps", "zero3.json", "offload", "max_length"):
        assert knob in OOM_ADVICE


def test_deepspeed_config_gets_batch_sizes_offload_and_fp32_on_cpu():
    from retune.training.worker import deepspeed_config

    cfg = TrainingConfig(per_device_batch_size=3, gradient_accumulation_steps=2, offload="cpu").model_dump()
    zero2 = deepspeed_config(ZERO2, cfg, world=2)
    assert zero2["train_batch_size"] == 12 and zero2["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "offload_param" not in zero2["zero_optimization"] and "bf16" not in zero2  # CPU: fp32
    zero3 = deepspeed_config(ZERO3, cfg, world=1)
    assert zero3["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert zero3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert "offload_optimizer" not in deepspeed_config(ZERO2, TrainingConfig().model_dump(), 1)["zero_optimization"]


def test_only_complete_checkpoints_count_and_a_changed_config_says_what_changed(tmp_path):
    spec = {"config_hash": "new", "base_model": "m", "training": TrainingConfig(learning_rate=0.01).model_dump()}
    old = {"config_hash": "old", "base_model": "m", "training": TrainingConfig().model_dump()}
    (tmp_path / "run.json").write_text(json.dumps(old))
    for step, whole in [(4, True), (8, False)]:  # step 8: killed while saving
        (tmp_path / "checkpoints" / "old" / f"step-{step}").mkdir(parents=True)
        if whole:
            (tmp_path / "checkpoints" / "old" / f"step-{step}" / CHECKPOINT_COMPLETE).write_text("{}")
    assert complete_checkpoints(tmp_path / "checkpoints" / "old") == [4]
    assert resume_plan(tmp_path, {**old}) == (4, None)
    step, reason = resume_plan(tmp_path, spec)
    assert step is None and "config changed" in reason and "training.learning_rate: 0.002 -> 0.01" in reason
    assert "old at step 4" in reason and not (tmp_path / "checkpoints" / "old").exists()  # discarded
    assert resume_plan(tmp_path, spec) == (None, None)  # nothing left to say


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
def ops_cache(deepspeed_ops_cache) -> Path:
    return deepspeed_ops_cache


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
    assert kinds[:2] == ["launch", "start"] and kinds[-1] == "done"
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [5, 10]
    assert [m["step"] for m in result.metrics] == list(range(1, 11))
    start = events[1]
    assert start["world_size"] == 2 and start["zero_stage"] == 2 and result.resumed_from_step is None
    assert result.fresh_start_reason is None and result.method == "lora" and len(start["pids"]) == 2
    assert result.data["train"]["fit"] == result.data["train"]["examples"] > 0  # max_length 128: all fit
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


@pytest.mark.slow
def test_full_fine_tune_with_split_and_packing(tmp_path, tiny_base_model, examples_path, ops_cache):
    from transformers import AutoModelForCausalLM

    run = TINY_RUN.model_copy(
        update={"method": "full", "nproc_per_node": 1, "max_steps": 4, "max_length": 48, "truncation": "split",
                "packing": True, "learning_rate": 1e-3}
    )  # fmt: skip
    events: list[dict] = []
    result = finetune(str(tiny_base_model), examples_path, tmp_path / "run", run, deepspeed_config=ZERO2,
                      on_event=events.append, cache_dir=ops_cache)  # fmt: skip
    start = next(e for e in events if e["event"] == "start")
    assert start["method"] == "full" and start["trainable_params"] == start["total_params"]
    assert result.method == "full" and result.adapter_dir.name == "model" and result.steps == 4
    train = result.data["train"]
    assert result.data["truncation"] == "split" and result.data["packing"] is True
    assert train["split"] > 0 and train["dropped_too_long"] == 0 and train["examples"] > 0
    assert result.loss_last < result.loss_first
    model = AutoModelForCausalLM.from_pretrained(result.adapter_dir, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(tiny_base_model, local_files_only=True)
    changed = [n for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(p, q)]  # fmt: skip
    assert len(changed) > 5  # every layer trained, not just adapters


# ---- infra files users copy


def test_k8s_job_template_declares_every_placeholder_and_the_hostfile_example_parses():
    import re

    infra = Path(__file__).resolve().parents[2] / "infra"
    template = json.loads((infra / "k8s" / "gpu-base-job-template.json").read_text())
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps(template["job_configuration"])))
    declared = set(template["variables"]["properties"])
    assert used <= declared and {"gpus", "image", "work_pvc"} <= used
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpus }}"
    hosts = [line.split() for line in (infra / "hostfile.example").read_text().splitlines()
             if line.strip() and not line.startswith("#")]  # fmt: skip
    assert hosts and all(len(h) == 2 and re.fullmatch(r"slots=\d+", h[1]) for h in hosts)
