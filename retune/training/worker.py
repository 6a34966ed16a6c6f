"""The training worker: a LoRA fine-tune under DeepSpeed ZeRO, one process per rank, JSON events on stdout.

Run by the launcher (`retune.training.launch`), never imported by the pipeline:

    torchrun --standalone --nproc_per_node 2 -m retune.training.worker --config RUN.json

RUN.json (written by the launcher): base_model, examples_path (parquet or jsonl of
`retune.training.dataset.EXAMPLE_SCHEMA`), output_dir, deepspeed_config, config_hash, local_files_only and
`training` (the TrainingConfig values). Rank 0 prints one JSON object per line: start, step, checkpoint,
done (or error); everything else on stdout is log text.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from retune.training.dataset import IGNORE_INDEX, tokenize_split

# LoRA targets per architecture when the config names none: the attention projections.
TARGET_MODULES = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value"],
}


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


def infer_target_modules(model_type: str) -> list[str]:
    if model_type not in TARGET_MODULES:
        raise WorkerError(f"no default LoRA target modules for '{model_type}': set training.lora.target_modules")
    return TARGET_MODULES[model_type]


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


def save_adapter(engine, tokenizer, adapter_dir: Path, zero_stage: int, rank: int) -> None:
    """peft adapter + tokenizer, written aside then renamed. Under ZeRO-3 every rank must join the gather of
    the LoRA weights, else rank 0 would save empty tensors."""
    import deepspeed

    staging = adapter_dir.with_name(adapter_dir.name + ".partial")

    def write() -> None:
        if rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            engine.module.save_pretrained(staging)
            tokenizer.save_pretrained(staging)

    if zero_stage == 3:
        trainable = [p for p in engine.module.parameters() if p.requires_grad]
        with deepspeed.zero.GatheredParameters(trainable, modifier_rank=None):
            write()
    else:
        write()
    if rank == 0:
        shutil.rmtree(adapter_dir, ignore_errors=True)
        staging.rename(adapter_dir)


def train(spec: dict, rank: int, world: int) -> None:
    import deepspeed
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = spec["training"]
    out_dir = Path(spec["output_dir"])
    ckpt_dir = out_dir / "checkpoints" / spec["config_hash"]
    max_steps, accumulation = cfg["max_steps"], cfg["gradient_accumulation_steps"]
    micro_batch = cfg["per_device_batch_size"]

    # ---- model, tokenizer, LoRA
    tokenizer = AutoTokenizer.from_pretrained(spec["base_model"], local_files_only=spec["local_files_only"])
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        spec["base_model"], dtype=torch.float32, local_files_only=spec["local_files_only"]
    )
    model.config.use_cache = False
    lora = cfg["lora"]
    torch.manual_seed(cfg["seed"])  # same LoRA init on every rank
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora["r"],
            lora_alpha=lora["alpha"],
            lora_dropout=lora["dropout"],
            target_modules=lora["target_modules"] or infer_target_modules(model.config.model_type),
            task_type="CAUSAL_LM",
        ),
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    # ---- data: loss on assistant tokens only; too-long conversations dropped, not cut
    examples = read_examples(Path(spec["examples_path"]))
    train_set, dropped_train = tokenize_split(examples, "train", tokenizer, cfg["max_length"])
    test_set, dropped_test = tokenize_split(examples, "test", tokenizer, cfg["max_length"])
    if not train_set:
        raise WorkerError(
            f"no training example fits in max_length={cfg['max_length']} tokens "
            f"({dropped_train} too long): raise training.max_length or add data"
        )

    # ---- DeepSpeed engine: ZeRO config from infra/, batch sizes from TrainingConfig, a plain torch AdamW
    ds_config = json.loads(Path(spec["deepspeed_config"]).read_text())
    ds_config["train_micro_batch_size_per_gpu"] = micro_batch
    ds_config["gradient_accumulation_steps"] = accumulation
    ds_config["train_batch_size"] = micro_batch * accumulation * world
    zero_stage = ds_config.get("zero_optimization", {}).get("stage", 0)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg["learning_rate"], weight_decay=0.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(max_steps))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)

    # ---- resume: the same config hash means the same run; DeepSpeed restores weights, optimizer, scheduler
    start_step = 0
    if (ckpt_dir / "latest").exists():
        _, client_state = engine.load_checkpoint(str(ckpt_dir), load_module_strict=False)
        start_step = int(client_state["step"])
    batches = micro_batches(train_set, micro_batch, rank, world, cfg["seed"])
    for _ in range(start_step * accumulation):  # replay the data order up to the checkpoint
        next(batches)

    emit(
        {
            "event": "start",
            "max_steps": max_steps,
            "world_size": world,
            "zero_stage": zero_stage,
            "train_examples": len(train_set),
            "test_examples": len(test_set),
            "dropped_too_long": dropped_train + dropped_test,
            "trainable_params": trainable,
            "total_params": total,
            "config_hash": spec["config_hash"],
            "resumed_from_step": start_step or None,
        },
        rank,
    )

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
                "eta_s": round(elapsed / done * (max_steps - step), 1),
            },
            rank,
        )
        if step % cfg["checkpoint_every"] == 0 or step == max_steps:
            # Only the LoRA weights and optimizer state: the frozen base is the base model on disk.
            engine.save_checkpoint(
                str(ckpt_dir), tag=f"step-{step}", client_state={"step": step}, exclude_frozen_parameters=True
            )
            dist.barrier()  # every rank's shard is on disk before anyone says so
            if rank == 0:
                for old in ckpt_dir.glob("step-*"):
                    if old.name != f"step-{step}":
                        shutil.rmtree(old, ignore_errors=True)
            emit({"event": "checkpoint", "step": step}, rank)

    # ---- held-out loss, adapter
    eval_loss = held_out_loss(engine, test_set, micro_batch, rank, world, tokenizer.pad_token_id)
    adapter_dir = out_dir / "adapter"
    save_adapter(engine, tokenizer, adapter_dir, zero_stage, rank)
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
            "adapter_dir": str(adapter_dir),
        },
        rank,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the run spec JSON written by the launcher")
    args = parser.parse_args(argv)
    spec = json.loads(args.config.read_text())

    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")  # CPU: gloo; no NCCL, no oneCCL needed
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        train(spec, rank, world)
    except WorkerError as exc:
        print(json.dumps({"event": "error", "rank": rank, "message": str(exc)}), flush=True)
        return 1
    dist.barrier()  # without it a rank may tear the group down under another and exit non-zero
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
