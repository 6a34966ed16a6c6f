"""The training worker: a LoRA (or full) fine-tune under DeepSpeed ZeRO, one process per rank, JSON events on stdout.

Run by the launcher (`retune.training.launch`), never imported by the pipeline:

    torchrun --standalone --nproc_per_node 2 -m retune.training.worker --config RUN.json

RUN.json (written by the launcher): base_model, examples_path (parquet or jsonl of
`retune.training.dataset.EXAMPLE_SCHEMA`), output_dir, deepspeed_config, config_hash, local_files_only and
`training` (the TrainingConfig values). Rank 0 prints one JSON object per line: start, step, checkpoint,
done (or error); everything else on stdout is log text.

Checkpoints live in output_dir/checkpoints/<config_hash>/step-N; a step-N directory counts only once it holds
COMPLETE (written after every rank's shard is on disk), so a kill during a save resumes from the one before.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from retune.errors import DISK_FULL_ERRNOS, TrainingError
from retune.training.dataset import IGNORE_INDEX, prepare_tokenizer, tokenize_split
from retune.training.launch import CHECKPOINT_COMPLETE, complete_checkpoints, die_with_parent

# LoRA targets per architecture when the config names none: the attention projections.
TARGET_MODULES = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
}
# Unknown architecture: the first of these groups whose every name is a Linear-like leaf of the model.
FALLBACK_TARGETS = [["q_proj", "k_proj", "v_proj", "o_proj"], ["qkv_proj"], ["c_attn"], ["query_key_value"], ["Wqkv"]]
OOM_ADVICE = (
    "out of memory: lower training.per_device_batch_size (raise gradient_accumulation_steps to keep the batch), "
    "lower training.max_length, use infra/deepspeed/zero3.json (shards parameters too), set training.offload: cpu, "
    "or use method: lora"
)


class WorkerError(Exception):
    """A problem with the run's inputs: reported as an `error` event, exit code 1."""


def emit(event: dict, rank: int) -> None:
    if rank == 0:
        print(json.dumps(event), flush=True)


def read_examples(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pa.Table.from_pylist(rows)


def infer_target_modules(model) -> list[str]:
    """LoRA target module names for `model`: the table above by `config.model_type`, else the first fallback
    group the model has. Names are module-name suffixes, as peft takes them."""
    leaves = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if not list(module.children())}
    model_type = getattr(model.config, "model_type", "")
    candidates = [TARGET_MODULES[model_type]] if model_type in TARGET_MODULES else FALLBACK_TARGETS
    for group in candidates:
        if all(name in leaves for name in group):
            return group
    raise WorkerError(
        f"cannot infer LoRA target modules for model type '{model_type}': set training.lora.target_modules "
        f"(module names such as {sorted(leaves)[:8]})"
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """GPU OOM (torch.OutOfMemoryError) or a CPU allocation failure (a RuntimeError from the allocator)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError | MemoryError) and (
        "out of memory" in text.lower() or "can't allocate memory" in text or isinstance(exc, MemoryError)
    )


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch; padding is masked out of attention and loss."""
    width = max(len(e["input_ids"]) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        input_ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def micro_batches(examples: list, batch_size: int, rank: int, world: int, seed: int):
    """An endless stream of this rank's micro-batches, reshuffled every epoch (same order on every rerun)."""
    sampler = torch.utils.data.DistributedSampler(
        range(len(examples)), num_replicas=world, rank=rank, shuffle=True, seed=seed
    )
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        indices = list(sampler)
        for i in range(0, len(indices), batch_size):
            yield [examples[j] for j in indices[i : i + batch_size]]
        epoch += 1


def lr_lambda(max_steps: int):
    """Linear warmup over 10% of the steps, then cosine decay to 10% of the peak."""
    warmup = max(1, max_steps // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, max_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@torch.no_grad()
def held_out_loss(engine, examples: list, batch_size: int, rank: int, world: int, pad_id: int) -> float | None:
    """Token-weighted mean loss on the test examples. Every rank runs the same number of forwards (ZeRO-3
    gathers parameters collectively): a rank with nothing left repeats a batch with weight 0."""
    if not examples:
        return None
    batches = [examples[i : i + batch_size] for i in range(0, len(examples), batch_size)]
    totals = torch.zeros(2, dtype=torch.float64)
    engine.eval()
    for round_start in range(0, len(batches), world):
        index = round_start + rank
        weight = 1.0 if index < len(batches) else 0.0
        batch = collate(batches[index if weight else 0], pad_id)
        loss = engine(**batch).loss
        scored = float((batch["labels"][:, 1:] != IGNORE_INDEX).sum())  # the model shifts labels by one
        totals += torch.tensor([float(loss) * scored * weight, scored * weight], dtype=torch.float64)
    dist.all_reduce(totals)
    engine.train()
    return float(totals[0] / totals[1]) if totals[1] > 0 else None


def save_model(engine, tokenizer, out: Path, zero_stage: int, rank: int) -> None:
    """The peft adapter (LoRA) or the whole model (full), with the tokenizer, written aside then renamed. Under
    ZeRO-3 every rank must join the gather of the saved weights, else rank 0 would save empty tensors."""
    import deepspeed

    staging = out.with_name(out.name + ".partial")

    def write() -> None:
        if rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            engine.module.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)

    if zero_stage == 3:
        saved = [p for p in engine.module.parameters() if p.requires_grad] or list(engine.module.parameters())
        with deepspeed.zero.GatheredParameters(saved, modifier_rank=None):
            write()
    else:
        write()
    if rank == 0:
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)


def deepspeed_config(path: Path, cfg: dict, world: int) -> dict:
    """The ZeRO config from infra/ with the batch sizes, offload and precision of this run."""
    ds_config = json.loads(path.read_text())
    micro_batch, accumulation = cfg["per_device_batch_size"], cfg["gradient_accumulation_steps"]
    ds_config["train_micro_batch_size_per_gpu"] = micro_batch
    ds_config["gradient_accumulation_steps"] = accumulation
    ds_config["train_batch_size"] = micro_batch * accumulation * world
    zero = ds_config.setdefault("zero_optimization", {"stage": 0})
    if cfg.get("offload", "none") == "cpu":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
        if zero.get("stage") == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
        # Our torch AdamW (not DeepSpeedCPUAdam, a compiled op) steps on CPU: slower on GPU, no build needed.
        ds_config["zero_force_ds_cpu_optimizer"] = False
    if use_bf16(cfg.get("precision", "auto")):
        ds_config["bf16"] = {"enabled": True}
    return ds_config


def use_bf16(precision: str) -> bool:
    if precision == "fp32":
        return False
    supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "bf16" and not supported:
        raise WorkerError("training.precision=bf16 needs a GPU with bf16 support: use auto or fp32")
    return supported


def train(spec: dict, rank: int, world: int) -> None:
    import deepspeed
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = spec["training"]
    out_dir = Path(spec["output_dir"])
    ckpt_dir = out_dir / "checkpoints" / spec["config_hash"]
    max_steps, accumulation = cfg["max_steps"], cfg["gradient_accumulation_steps"]
    micro_batch, method = cfg["per_device_batch_size"], cfg.get("method", "lora")

    # ---- tokenizer (pad token and chat template made usable), model, LoRA or full
    tokenizer = AutoTokenizer.from_pretrained(spec["base_model"], local_files_only=spec["local_files_only"])
    try:
        tokenizer_notes = prepare_tokenizer(tokenizer)
    except TrainingError as exc:
        raise WorkerError(str(exc)) from None
    model = AutoModelForCausalLM.from_pretrained(
        spec["base_model"], dtype=torch.float32, local_files_only=spec["local_files_only"]
    )
    model.config.use_cache = False
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(cfg["seed"])  # same LoRA init on every rank
    if method == "lora":
        lora = cfg["lora"]
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora["r"],
                lora_alpha=lora["alpha"],
                lora_dropout=lora["dropout"],
                target_modules=lora["target_modules"] or infer_target_modules(model),
                task_type="CAUSAL_LM",
            ),
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    # ---- data: loss on assistant tokens only; long conversations by the truncation policy; optional packing
    examples = read_examples(Path(spec["examples_path"]))
    truncation, packing = cfg.get("truncation", "drop"), cfg.get("packing", False)
    train_set, train_counts = tokenize_split(examples, "train", tokenizer, cfg["max_length"], truncation, packing)
    test_set, test_counts = tokenize_split(examples, "test", tokenizer, cfg["max_length"], truncation, False)
    if not train_set:
        raise WorkerError(
            f"no training example fits in max_length={cfg['max_length']} tokens "
            f"({train_counts.dropped_too_long} too long, truncation={truncation}): raise training.max_length, "
            "set training.truncation to truncate_left or split, or add data"
        )

    # ---- DeepSpeed engine: ZeRO config from infra/, batch sizes from TrainingConfig, a plain torch AdamW
    ds_config = deepspeed_config(Path(spec["deepspeed_config"]), cfg, world)
    zero_stage = ds_config["zero_optimization"].get("stage", 0)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg["learning_rate"], weight_decay=0.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(max_steps))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)

    # ---- resume: the same config hash means the same run; DeepSpeed restores weights, optimizer, scheduler
    start_step = 0
    complete = complete_checkpoints(ckpt_dir)
    if complete:
        tag = f"step-{complete[-1]}"
        _, client_state = engine.load_checkpoint(str(ckpt_dir), tag=tag, load_module_strict=method == "full")
        start_step = int(client_state["step"])
    batches = micro_batches(train_set, micro_batch, rank, world, cfg["seed"])
    for _ in range(start_step * accumulation):  # replay the data order up to the checkpoint
        next(batches)
    pids = [None] * world
    dist.all_gather_object(pids, os.getpid())  # so an operator (or a test) can signal one rank

    emit(
        {
            "event": "start",
            "max_steps": max_steps,
            "world_size": world,
            "zero_stage": zero_stage,
            "method": method,
            "offload": cfg.get("offload", "none"),
            "bf16": "bf16" in ds_config,
            "train_examples": len(train_set),
            "test_examples": len(test_set),
            "dropped_too_long": train_counts.dropped_too_long + test_counts.dropped_too_long,
            "data": {"truncation": truncation, "packing": packing, "train": train_counts.as_dict(),
                     "test": test_counts.as_dict()},
            "tokenizer_notes": tokenizer_notes,
            "trainable_params": trainable,
            "total_params": total,
            "config_hash": spec["config_hash"],
            "resumed_from_step": start_step or None,
            "fresh_start_reason": None if start_step else spec.get("fresh_start_reason"),
            "pids": pids,
        },
        rank,
    )  # fmt: skip

    # ---- the loop
    engine.train()
    loss_first = loss_last = None
    tokens_total, started = 0.0, time.perf_counter()
    for step in range(start_step + 1, max_steps + 1):
        torch.manual_seed(cfg["seed"] + 1_000_003 * rank + step)  # dropout masks: same with or without resume
        lr = scheduler.get_last_lr()[0]
        stats = torch.zeros(2, dtype=torch.float64)  # summed loss, tokens seen
        for _ in range(accumulation):
            batch = collate(next(batches), tokenizer.pad_token_id)
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()  # DeepSpeed only updates weights (and the lr) at the accumulation boundary
            stats += torch.tensor([loss.item() / accumulation, float(batch["attention_mask"].sum())])
        dist.all_reduce(stats)
        step_loss = float(stats[0]) / world
        tokens_total += float(stats[1])
        elapsed = time.perf_counter() - started
        loss_first = step_loss if loss_first is None else loss_first
        loss_last = step_loss
        done = step - start_step
        emit(
            {
                "event": "step",
                "step": step,
                "max_steps": max_steps,
                "loss": round(step_loss, 5),
                "lr": lr,
                "tokens_per_s": round(tokens_total / elapsed, 1),
                "tokens": int(tokens_total),
                "eta_s": round(elapsed / done * (max_steps - step), 1),
            },
            rank,
        )
        if step % cfg["checkpoint_every"] == 0 or step == max_steps:
            save_checkpoint(engine, ckpt_dir, step, method, rank)
            emit({"event": "checkpoint", "step": step}, rank)

    # ---- held-out loss, adapter (or full model)
    eval_loss = held_out_loss(engine, test_set, micro_batch, rank, world, tokenizer.pad_token_id)
    model_dir = out_dir / ("adapter" if method == "lora" else "model")
    save_model(engine, tokenizer, model_dir, zero_stage, rank)
    wall = time.perf_counter() - started
    emit(
        {
            "event": "done",
            "steps": max_steps,
            "trained_steps": max_steps - start_step,
            "loss_first": loss_first,
            "loss_last": loss_last,
            "eval_loss": eval_loss,
            "tokens_per_s": round(tokens_total / wall, 1) if tokens_total else 0.0,
            "tokens": int(tokens_total),
            "adapter_dir": str(model_dir),
            "method": method,
        },
        rank,
    )


def out_of_space(exc: BaseException, directory: Path) -> bool:
    """Did a write fail for lack of space? torch's writer turns ENOSPC into a RuntimeError without an errno,
    so when the error does not say, a small probe write into the same directory answers."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    probe = directory / f".space-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * (64 << 10))
            f.flush()
            os.fsync(f.fileno())
    except OSError as probe_error:
        return probe_error.errno in DISK_FULL_ERRNOS
    finally:
        probe.unlink(missing_ok=True)
    return False


def save_checkpoint(engine, ckpt_dir: Path, step: int, method: str, rank: int) -> None:
    """Save step-N, mark it complete once every rank's shard is on disk, then drop the older ones."""
    tag = f"step-{step}"
    try:
        # LoRA: only the adapter and its optimizer state; the frozen base is the base model on disk.
        engine.save_checkpoint(
            str(ckpt_dir), tag=tag, client_state={"step": step}, exclude_frozen_parameters=method == "lora"
        )
        dist.barrier()  # save_checkpoint's own `latest` file may be written before other ranks finish
        if rank == 0:
            marker = ckpt_dir / tag / CHECKPOINT_COMPLETE
            partial = marker.with_suffix(".partial")
            partial.write_text(json.dumps({"step": step}))
            os.replace(partial, marker)  # atomic: COMPLETE exists whole or not at all
    except Exception as exc:
        if not out_of_space(exc, ckpt_dir):
            raise
        raise WorkerError(
            f"disk full: no space left on device writing checkpoint {tag} in {ckpt_dir}; the last complete "
            "checkpoint is kept: free space and rerun to resume from it"
        ) from None
        for old in ckpt_dir.glob("step-*"):
            if old.name != tag:
                shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the run spec JSON written by the launcher")
    args = parser.parse_args(argv)
    spec = json.loads(args.config.read_text())
    die_with_parent()

    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")  # CPU: gloo; no NCCL, no oneCCL needed
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        train(spec, rank, world)
    except WorkerError as exc:
        print(json.dumps({"event": "error", "rank": rank, "message": str(exc)}), flush=True)
        return 1
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        # Every rank may say it; the launcher reports the first. Exit without the barrier: peers may be stuck.
        message = f"{OOM_ADVICE} (rank {rank}: {str(exc).splitlines()[0][:200]})"
        print(json.dumps({"event": "error", "rank": rank, "kind": "out_of_memory", "message": message}), flush=True)
        sys.stdout.flush()
        os._exit(1)
    dist.barrier()  # without it a rank may tear the group down under another and exit non-zero
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
