"""Simulated sweep of the sensitive int8 recipe: greedy flips per (ranking, float share), without building ONNX.

Each setting keeps the top-ranked Linears float (as int8_weight_only_sensitive keeps them fp16/fp32 in ONNX) and
rounds every other Linear the way MatMulNBits with accuracy_level 4 computes (int8 blocks of 32 of the weights and
of the input activations; retune.export.fake_int8_blocks), the embedding rows too. It then counts, teacher-forced
along eager's 48 served replies to the held-out prompts (the export gate's prompts), the replies whose greedy
choice flips somewhere, and the share of each reply before its first flip (a proxy for served agreement; the
simulation measured 13 flips where ONNX served 88.3 %).

Rankings: "kl" is retune.export.matmul_sensitivity (the recipe's, cached by benchmarks/export.py); "margin" ranks
each Linear by how far rounding it alone pushes eager's greedy choice towards a flip on TRAINING conversations
(mean drop of the top-1 minus runner-up logit at near-tie positions), never on the parity prompts.

Speed is predicted, not measured: per-token ONNX time linear in the float share of the MatMul weights, fitted to
the measured points (share 0: 3.48x eager, 0.2: 2.78x, 0.3: 2.49x). Writes benchmarks/results/export-sweep.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import export as bench  # noqa: E402  (benchmarks/export.py: prompts, calibration, cached sensitivity)

from retune import export as core  # noqa: E402
from retune.pii import DEV_KEY, Pseudonymizer, anonymize_text  # noqa: E402

# Measured generate 32+32 speed-ups over eager (benchmarks/results/export.json and round 1's 0.3 build) by float
# share of the MatMul weights: the speed prediction interpolates per-token time between these.
MEASURED_SPEEDUPS = {0.0: 3.48, 0.2: 2.78, 0.3: 2.49}
RANKINGS = ("kl", "kl_no_lm_head", "margin", "margin_no_lm_head")
NEAR_TIE = 1.0  # logit gap under which a position counts for the margin ranking


def onnx_name(linear: str) -> str:
    """The ONNX MatMul node optimum gives a Linear (the key of the sensitivity scores)."""
    return "/" + linear.replace(".", "/").replace("/layers/", "/layers.") + "/MatMul"


def without_lm_head(scores: dict[str, float]) -> dict[str, float]:
    """The ranking with the untied lm_head left out: it is 21 % of the MatMul weights, and kept float (it ranks
    near the top) it crowds out most other Linears once the share allows it (0.25 and up)."""
    return {n: v for n, v in scores.items() if n != "/lm_head/MatMul"}


def predicted_speedup(share: float) -> float:
    """Generate speed-up over eager predicted for a float share: least-squares line through the measured
    per-token times (1 / speed-up)."""
    xs, ys = list(MEASURED_SPEEDUPS), [1 / v for v in MEASURED_SPEEDUPS.values()]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return 1 / (my + slope * (share - mx))


def kept_by_share(scores: dict[str, float], params: dict[str, int], share: float) -> list[str]:
    """Most sensitive first while the float ones hold at most `share` of the MatMul weights (what
    retune.export.float_within_budget does when the size budget does not bind, as on SmolLM2 below ~0.5)."""
    budget, kept, used = share * sum(params.values()), [], 0
    for name in sorted((n for n in scores if n in params), key=lambda n: -scores[n]):
        if used + params[name] <= budget:
            kept.append(name)
            used += params[name]
    return kept


def predicted_size(params: dict[str, int], kept: list[str], embedding_params: int, fp32_bytes: int) -> float:
    """Share of the fp32 ONNX size: 8-bit MatMulNBits (1 byte + an fp32 scale per 32 weights) for the rounded
    MatMuls and the int8 embedding rows, fp16 for the float MatMuls (norms are negligible)."""
    per_weight = 1 + 4 / 32
    total = sum(params.values()) * per_weight + embedding_params * per_weight
    total += sum(params[n] for n in kept) * (2 - per_weight)
    return total / fp32_bytes


class Simulator:
    """The merged PyTorch model with forward hooks that round the chosen Linears as MatMulNBits does."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.linears = {onnx_name(n): m for n, m in self.model.named_modules() if isinstance(m, torch.nn.Linear)}
        self.params = {n: m.weight.numel() for n, m in self.linears.items()}
        self.embedding_params = self.model.model.embed_tokens.weight.numel()

    def logits(self, input_ids: Any, rounded: set[str], embedding: bool = True) -> Any:
        torch = self.torch

        def hook(module: Any, inputs: tuple[Any, ...], _output: Any) -> Any:
            weight = core.fake_int8_blocks(module.weight, 32)
            return torch.nn.functional.linear(core.fake_int8_blocks(inputs[0], 32), weight, module.bias)

        handles = [self.linears[n].register_forward_hook(hook) for n in rounded]
        if embedding:
            embed = self.model.model.embed_tokens
            handles.append(embed.register_forward_hook(lambda _m, _i, out: core.fake_int8_blocks(out, 32)))
        try:
            with torch.no_grad():
                return self.model(input_ids=input_ids).logits.float()
        finally:
            for handle in handles:
                handle.remove()

    def flips(self, sequences: list[Any], starts: list[int], replies: list[list[int]], rounded: set[str]) -> dict:
        """Replies whose teacher-forced greedy choice flips somewhere, and the mean share before the first flip."""
        flipped, share = 0, 0.0
        for seq, start, reply in zip(sequences, starts, replies, strict=True):
            pred = self.logits(seq, rounded)[0, start - 1 : start - 1 + len(reply)].argmax(-1).tolist()
            at = next((i for i, (a, b) in enumerate(zip(pred, reply, strict=True)) if a != b), None)
            flipped += at is not None
            share += (len(reply) if at is None else at) / len(reply)
        return {"flipped": flipped, "before_first_flip": round(share / len(replies), 4)}

    def margin_scores(self, windows: Any) -> dict[str, float]:
        """Per Linear rounded alone: mean drop of eager's top-1 minus runner-up logit at near-tie positions
        (positive = pushed towards a greedy flip), on a batch of training windows."""
        torch = self.torch
        reference = self.logits(windows, set(), embedding=False)
        top2 = reference.topk(2, -1)
        choice = top2.indices[..., 0]
        near = (top2.values[..., 0] - top2.values[..., 1]) < NEAR_TIE
        near[:, :16] = False  # too little context to matter for a reply

        def margin(logits: Any) -> Any:
            chosen = logits.gather(-1, choice[..., None])[..., 0]
            others = logits.scatter(-1, choice[..., None], -torch.inf).amax(-1)
            return chosen - others

        base = margin(reference)
        scores = {}
        for name in self.linears:
            drop = (base - margin(self.logits(windows, {name}, embedding=False))).clamp_min(0)
            scores[name] = float(drop[near].mean())
        return scores


def training_windows(model_dir: Path, examples: Path, n: int, tokens: int) -> list[list[int]]:
    """The last `tokens` tokens of `n` training conversations rendered up to and including an agent reply
    (pseudonymized like retune's training data): never the held-out parity prompts."""
    from transformers import AutoTokenizer

    from retune.prompts import split_conversations

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pseudonymizer = Pseudonymizer(DEV_KEY)
    windows = []
    for conv in split_conversations(examples, "train"):
        conv = [{**m, "content": anonymize_text(m["content"], pseudonymizer)[0]} for m in conv]
        last = max((i for i, m in enumerate(conv) if m["role"] == "assistant" and i > 0), default=None)
        if last is None:
            continue
        ids = tokenizer(tokenizer.apply_chat_template(conv[: last + 1], tokenize=False))["input_ids"]
        if len(ids) >= tokens:
            windows.append(ids[-tokens:])
        if len(windows) == n:
            break
    return windows


def cached(path: Path, compute: Any) -> Any:
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=72, help="which fine-tune (as benchmarks/export.py --steps)")
    parser.add_argument("--prompts", type=int, default=48, help="held-out prompts (the export gate's)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--shares", type=float, nargs="*", default=[0.2, 0.25, 0.3, 0.35])
    parser.add_argument("--rankings", nargs="*", default=["kl", "margin"], choices=RANKINGS)
    parser.add_argument("--train-windows", type=int, default=8, help="training conversations for the margin ranking")
    parser.add_argument("--window-tokens", type=int, default=96)
    parser.add_argument("--no-sanity", action="store_true", help="skip the unrounded run (0 flips by design)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/export-sweep.json")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    finetuned = ROOT / f".cache/models/smollm2-retuned-{args.steps}"
    model_dir, workdir = finetuned / "merged", ROOT / f".cache/bench/export-{args.steps}"
    if not (model_dir / "config.json").exists():
        raise SystemExit(f"{model_dir} is missing: run benchmarks/export.py --steps {args.steps} first")
    digest = bench.weights_digest(model_dir)[:16]
    sim = Simulator(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stop = sorted({tokenizer.eos_token_id, *core._eos_token_ids(sim.model)})
    rankings: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    if {"kl", "kl_no_lm_head"} & set(args.rankings):
        calibration = bench.calibration_ids(model_dir, 8, 16)
        kl, seconds["kl"] = bench.cached_sensitivity(model_dir, calibration, workdir / "cache")
        if "kl" in args.rankings:
            rankings["kl"] = kl
        if "kl_no_lm_head" in args.rankings:
            rankings["kl_no_lm_head"] = without_lm_head(kl)
    if {"margin", "margin_no_lm_head"} & set(args.rankings):
        windows = training_windows(model_dir, finetuned / "examples.parquet", args.train_windows, args.window_tokens)
        start = time.perf_counter()
        margin = cached(
            workdir / "cache" / f"margin-{digest}-{len(windows)}x{args.window_tokens}.json",
            lambda: sim.margin_scores(torch.tensor(windows)),
        )
        seconds["margin"] = time.perf_counter() - start
        if "margin" in args.rankings:
            rankings["margin"] = margin
        if "margin_no_lm_head" in args.rankings:
            rankings["margin_no_lm_head"] = without_lm_head(margin)
        print(f"margin ranking on {len(windows)} training windows: {seconds['margin']:.0f} s", flush=True)

    prompts = bench.held_out_prompts(model_dir, finetuned / "examples.parquet", args.prompts)
    replies = cached(workdir / "cache" / f"served-{digest}-{args.prompts}-{args.new_tokens}.json",
                     lambda: bench.eager_replies(sim.model, prompts, args.new_tokens, stop))  # fmt: skip
    sequences = [torch.cat([p["input_ids"][0], torch.tensor(r)])[None] for p, r in zip(prompts, replies, strict=True)]
    starts = [p["input_ids"].shape[1] for p in prompts]

    fp32_bytes = core.onnx_size(workdir / "fp32")
    everything = set(sim.linears)
    rows: list[dict] = []

    def write() -> None:  # after every row: a sweep cut short keeps what it measured
        result = {
            "what": "simulated MatMulNBits (8-bit, blocks of 32, accuracy_level 4) rounding; replies flipped "
                    "teacher-forced along eager's served replies to the held-out prompts",  # fmt: skip
            "model": f".cache/models/smollm2-retuned-{args.steps}/merged",
            "prompts": args.prompts,
            "new_tokens": args.new_tokens,
            "calibration_of_simulator": "int8_weight_only_sensitive (kl, 0.2): 13 flips in simulation, 88.3 % served "
                                        "greedy agreement in ONNX (benchmarks/results/export.json)",  # fmt: skip
            "speed_model": {"measured_speedups_by_share": MEASURED_SPEEDUPS, "fit": "per-token time linear in share"},
            "ranking_seconds": {k: round(v) for k, v in seconds.items()},
            "margin_ranking": {"train_windows": args.train_windows, "window_tokens": args.window_tokens,
                               "near_tie": NEAR_TIE},  # fmt: skip
            "rows": rows,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    if not args.no_sanity:
        rows.append({"ranking": "-", "float_share": 1.0, "float_matmuls": len(everything),
                     **sim.flips(sequences, starts, replies, set()), "note": "no rounding (must be 0)"})  # fmt: skip
        print(rows[0], flush=True)
    for ranking, scores in rankings.items():
        for share in args.shares:
            kept = kept_by_share(scores, sim.params, share)
            start = time.perf_counter()
            row = {
                "ranking": ranking,
                "float_share": share,
                "float_matmuls": len(kept),
                "float_by_kind": {k: sum(f"/{k}/" in n for n in kept)
                                  for k in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj", "lm_head")},  # fmt: skip
                **sim.flips(sequences, starts, replies, everything - set(kept)),
                "predicted_size_vs_fp32": round(predicted_size(sim.params, kept, sim.embedding_params, fp32_bytes), 3),
                "predicted_speedup_vs_eager": round(predicted_speedup(share), 2),
                "seconds": round(time.perf_counter() - start),
            }
            rows.append(row)
            print(row, flush=True)
            write()
    print(f"wrote {args.out}")



if __name__ == "__main__":
    main()
