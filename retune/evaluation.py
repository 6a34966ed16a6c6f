"""Evaluate a model on held-out conversations (perplexity, token accuracy, chrF) and decide its promotion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retune.errors import RetuneError

SEED = 0


@dataclass
class EvalMetrics:
    perplexity: float  # exp(mean negative log-likelihood) over assistant tokens, teacher forcing
    token_accuracy: float  # share of assistant tokens that are the model's top-1 prediction
    chrf: float  # sacrebleu chrF (0-100) of greedy replies vs the reference last assistant reply
    n_examples: int  # conversations scored
    n_tokens: int  # assistant tokens scored
    n_skipped: int = 0  # conversations left out: longer than the model's positions, or no assistant reply


@dataclass
class Decision:
    promote: bool
    reason: str  # one sentence, with the numbers


@dataclass
class _Encoded:
    input_ids: list[int]
    assistant_mask: list[bool]  # True where the token belongs to an assistant turn


def evaluate_model(
    model_dir: str | Path, examples: list[list[dict]], *, max_examples: int, max_new_tokens: int
) -> EvalMetrics:
    """Score a transformers model directory (base or merged) on conversations of {"role", "content"}, on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.chat_template:
        raise RetuneError(f"the tokenizer in {model_dir} has no chat template: cannot evaluate conversations")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    max_positions = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length

    total_nll, n_tokens, n_correct, n_examples, n_skipped = 0.0, 0, 0, 0, 0
    hypotheses: list[str] = []
    references: list[str] = []
    for messages in examples[:max_examples]:
        last = _last_assistant_index(messages)
        encoded = _encode_with_mask(tokenizer, messages) if last is not None else None
        if encoded is None or len(encoded.input_ids) > max_positions or not any(encoded.assistant_mask[1:]):
            n_skipped += 1
            continue
        nll, correct, count = _score(model, encoded)
        total_nll += nll
        n_correct += correct
        n_tokens += count
        n_examples += 1

        prompt_ids = _render_ids(tokenizer, messages[:last], add_generation_prompt=True)
        budget = min(max_new_tokens, max_positions - len(prompt_ids))
        hypotheses.append(_generate(model, tokenizer, prompt_ids, budget) if budget > 0 else "")
        references.append(messages[last]["content"])

    if n_examples == 0:
        raise RetuneError(
            f"no evaluation example could be scored ({n_skipped} skipped: too long for {max_positions} "
            "positions or without an assistant reply)"
        )
    return EvalMetrics(
        perplexity=math.exp(total_nll / n_tokens),
        token_accuracy=n_correct / n_tokens,
        chrf=chrf(hypotheses, references),
        n_examples=n_examples,
        n_tokens=n_tokens,
        n_skipped=n_skipped,
    )


def chrf(hypotheses: list[str], references: list[str]) -> float:
    """Corpus chrF (0-100) of hypotheses against one reference each."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def decide_promotion(
    candidate: EvalMetrics, production: EvalMetrics | None, base: EvalMetrics | None, tolerance: float
) -> Decision:
    """Promote only if the candidate beats the base and loses at most `tolerance` (relative) vs production."""
    ppl = candidate.perplexity
    if not math.isfinite(ppl):
        return Decision(False, f"rejected: candidate perplexity is {ppl}")
    if base is not None and not ppl < base.perplexity:
        return Decision(
            False, f"rejected: candidate perplexity {ppl:.3f} is not better than base {base.perplexity:.3f}"
        )
    if production is not None:
        prod = production.perplexity
        change = ppl / prod - 1
        if ppl > prod * (1 + tolerance):
            return Decision(
                False,
                f"rejected: candidate perplexity {ppl:.3f} is {change:+.1%} vs production {prod:.3f}"
                f", worse than the {tolerance:.1%} tolerance",
            )
        versus_base = f", base {base.perplexity:.3f}" if base is not None else ""
        return Decision(
            True,
            f"promoted: candidate perplexity {ppl:.3f} is {change:+.1%} vs production {prod:.3f}"
            f" (tolerance {tolerance:.1%}){versus_base}",
        )
    if base is not None:
        return Decision(
            True,
            f"promoted: no production model yet; candidate perplexity {ppl:.3f} beats base"
            f" {base.perplexity:.3f}",
        )
    return Decision(
        True, f"promoted: nothing to compare with (no base, no production); candidate perplexity {ppl:.3f}"
    )


def _last_assistant_index(messages: list[dict]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            return i
    return None


def _render_ids(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    # The template already writes the special tokens (bos, role markers): adding them again shifts tokens.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _encode_with_mask(tokenizer: Any, messages: list[dict]) -> _Encoded | None:
    """Token ids of the rendered conversation and which of them are assistant tokens (content and end marker).

    Spans are found in characters (an assistant turn is what rendering it adds after the generation prompt),
    then mapped to tokens by their offsets: tokenizing pieces apart could split differently than the whole.
    Returns None when the template does not render prefixes as prefixes of the whole (turns not locatable).
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (through.startswith(before) and full.startswith(through)):
            return None
        # The newline after the end marker is never generated (generation stops at the end marker).
        spans.append((len(before), len(through.rstrip())))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = [any(start <= s < end for start, end in spans) for s, _ in enc["offset_mapping"]]
    return _Encoded(list(enc["input_ids"]), mask)


def _score(model: Any, encoded: _Encoded) -> tuple[float, int, int]:
    """Summed negative log-likelihood, top-1 hits and count of assistant tokens (token 0 has no context)."""
    import torch

    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    targets = ids[0, 1:]
    mask = torch.tensor(encoded.assistant_mask[1:])
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs[mask].gather(1, targets[mask].unsqueeze(1)).sum()
    correct = (logits[mask].argmax(dim=-1) == targets[mask]).sum()
    return float(nll), int(correct), int(mask.sum())


def _generate(model: Any, tokenizer: Any, prompt_ids: list[int], max_new_tokens: int) -> str:
    import torch

    ids = torch.tensor([prompt_ids])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
    return tokenizer.decode(out[0, len(prompt_ids) :], skip_special_tokens=True).strip()
