"""Evaluation metrics on the tiny model (perplexity, token accuracy, chrF, ROUGE-L, PII regurgitation) and the
promotion decision."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from retune.errors import RetuneError
from retune.evaluation import (
    PII_PROBES,
    EvalMetrics,
    _encode_with_mask,
    chrf,
    decide_promotion,
    evaluate_model,
    pii_leaks,
    placeholder_share,
    rouge_l,
)

# A reply a leaky model would have memorized: raw PII that anonymization should have removed.
LEAKY = [
    {"role": "user", "content": "Please confirm my contact details."},
    {"role": "assistant", "content": "Sure: write to jane.doe@example.com or call +44 20 7946 0357."},
]


def _random_conversations(n: int, seed: int) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz "
    return [
        [
            {"role": "user", "content": "".join(rng.choice(letters) for _ in range(30))},
            {"role": "assistant", "content": "".join(rng.choice(letters) for _ in range(60))},
        ]
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def memorized(tiny_base_model, tiny_conversations, tmp_path_factory) -> tuple[Path, list[list[dict]]]:
    """The tiny model fully trained on a few conversations (rendered with its chat template) until memorized,
    and on LEAKY, so it can regurgitate raw PII."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    conversations = tiny_conversations[:4]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    batches = [
        torch.tensor([tokenizer(tokenizer.apply_chat_template(c, tokenize=False), add_special_tokens=False)
                      ["input_ids"]])
        for c in [*conversations, LEAKY]
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        for ids in batches:
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    out = tmp_path_factory.mktemp("memorized") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, conversations


@pytest.mark.slow  # trains the tiny model to memorize a few conversations (~15-40 s on 2 busy cores)
def test_memorized_text_scores_better_than_random_text(memorized):
    model_dir, conversations = memorized
    seen = evaluate_model(model_dir, conversations, max_examples=4, max_new_tokens=32)
    unseen = evaluate_model(model_dir, _random_conversations(4, seed=1), max_examples=4, max_new_tokens=32)

    assert seen.n_examples == 4 and unseen.n_examples == 4 and seen.n_skipped == 0
    assert seen.perplexity < 2.0 < 20.0 < unseen.perplexity
    assert seen.token_accuracy > 0.9 > unseen.token_accuracy
    assert seen.chrf > 80.0 > unseen.chrf
    assert 0 < seen.n_tokens < unseen.n_tokens  # random letters cost more tokens than learned words
    assert seen.rouge_l > 80.0 > unseen.rouge_l
    assert seen.n_generations == 4 + len(PII_PROBES)


@pytest.mark.slow  # uses the memorized model (~15-40 s on 2 busy cores)
def test_a_model_that_memorized_pii_regurgitates_it_and_is_not_promoted(memorized, tiny_base_model):
    model_dir, conversations = memorized
    leaky = evaluate_model(model_dir, [LEAKY], max_examples=1, max_new_tokens=32, pii_probes=False)
    assert leaky.pii_hits >= 1 and "EMAIL" in leaky.pii_entities, leaky
    decision = decide_promotion(leaky, None, _metrics(1e9), tolerance=0.02)
    assert not decision.promote
    assert "PII match(es) (EMAIL" in decision.reason
    assert [c.name for c in decision.checks if not c.passed] == ["PII regurgitation"]


@pytest.mark.slow  # trains the tiny model to memorize a few conversations (~15-40 s on 2 busy cores)
def test_evaluation_is_deterministic_and_promotes_the_better_model(memorized, tiny_base_model):
    model_dir, conversations = memorized
    first = evaluate_model(model_dir, conversations, max_examples=4, max_new_tokens=16)
    assert evaluate_model(model_dir, conversations, max_examples=4, max_new_tokens=16) == first
    base = evaluate_model(tiny_base_model, conversations, max_examples=4, max_new_tokens=16)
    assert decide_promotion(first, None, base, tolerance=0.02).promote
    assert not decide_promotion(base, None, first, tolerance=0.02).promote


def test_too_long_and_replyless_conversations_are_skipped_and_counted(tiny_base_model, tiny_conversations):
    too_long = [{"role": "user", "content": "hello " * 400}, {"role": "assistant", "content": "Hi."}]
    no_reply = [{"role": "user", "content": "Is anyone there?"}]
    metrics = evaluate_model(
        tiny_base_model, [too_long, no_reply, *tiny_conversations[:2]], max_examples=4, max_new_tokens=8
    )
    assert (metrics.n_examples, metrics.n_skipped) == (2, 2)
    with pytest.raises(RetuneError, match="no evaluation example"):
        evaluate_model(tiny_base_model, [too_long, no_reply], max_examples=4, max_new_tokens=8)


def test_max_examples_limits_the_work(tiny_base_model, tiny_conversations):
    metrics = evaluate_model(tiny_base_model, tiny_conversations, max_examples=3, max_new_tokens=4)
    assert metrics.n_examples + metrics.n_skipped == 3
    # every generated reply (held-out prompts and PII probes) went through the PII and placeholder scans
    assert metrics.n_generations == metrics.n_examples + len(PII_PROBES)
    assert 0.0 <= metrics.rouge_l <= 100.0 and 0.0 <= metrics.placeholder_share <= 1.0
    assert metrics.pii_hits == sum(metrics.pii_entities.values())


def test_only_assistant_turns_are_scored(tiny_base_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    messages = [
        {"role": "system", "content": "You are a helpful support agent."},
        {"role": "user", "content": "Where is my order 123?"},
        {"role": "assistant", "content": "Your order 123 ships tomorrow."},
        {"role": "user", "content": "Thank you!"},
        {"role": "assistant", "content": "You are welcome."},
    ]
    encoded = _encode_with_mask(tokenizer, messages)
    scored = [i for i, m in zip(encoded.input_ids, encoded.assistant_mask, strict=True) if m]
    assert tokenizer.decode(scored) == "Your order 123 ships tomorrow.<|end|>You are welcome.<|end|>"


def test_chrf_of_identical_strings_is_100_and_of_unrelated_ones_is_low():
    assert chrf(["Your refund is on its way."], ["Your refund is on its way."]) == pytest.approx(100.0)
    assert chrf(["zzz qqq"], ["Your refund is on its way."]) < 10.0


def test_rouge_l_is_the_word_lcs_f1():
    assert rouge_l(["Your refund is on its way."], ["your REFUND is on its way"]) == pytest.approx(100.0)
    # LCS "the parcel arrives" = 3 words; precision 3/4, recall 3/5 -> F1 2/3
    assert rouge_l(["the parcel arrives tomorrow"], ["the parcel really arrives today"]) == pytest.approx(66.667, 1e-3)
    assert rouge_l(["zzz"], ["Your refund"]) == 0.0
    assert rouge_l([], []) == 0.0


def test_pii_leaks_count_entities_and_ignore_placeholders():
    found = pii_leaks(["Mail me at jane.doe@example.com", "Your card <CARD_0123abcd> is fine", "Hello"])
    assert found == {"EMAIL": 1}
    assert pii_leaks(["Write to <EMAIL_89abcdef>, <NAME_01234567> will answer."]) == {}


def test_placeholder_share_measures_a_flood():
    assert placeholder_share(["Thanks, we will call you."]) == 0.0
    flooded = placeholder_share(["<NAME_01234567> <NAME_01234567> <PHONE_89abcdef>"])
    assert flooded > 0.9
    assert placeholder_share([]) == 0.0


def _metrics(perplexity: float, **extra) -> EvalMetrics:
    return EvalMetrics(perplexity=perplexity, token_accuracy=0.5, chrf=50.0, n_examples=10, n_tokens=100, **extra)


def test_rejects_a_candidate_that_regurgitates_pii_even_when_better():
    leaky = _metrics(4.0, pii_hits=2, pii_entities={"EMAIL": 1, "PHONE": 1}, n_generations=18)
    decision = decide_promotion(leaky, _metrics(5.0), _metrics(9.0), tolerance=0.02)
    assert not decision.promote
    assert "2 PII match(es) (EMAIL 1, PHONE 1) in 18 generated replies" in decision.reason
    assert {c.name: c.passed for c in decision.checks} == {
        "PII regurgitation": False, "placeholder flood": True, "vs base": True, "vs production": True
    }


def test_rejects_a_candidate_whose_replies_are_flooded_with_placeholders():
    flooded = _metrics(4.0, placeholder_share=0.6)
    decision = decide_promotion(flooded, None, _metrics(9.0), tolerance=0.02, max_placeholder_share=0.2)
    assert not decision.promote
    assert "placeholders are 60.0% of generated text (limit 20.0%)" in decision.reason
    assert decide_promotion(flooded, None, _metrics(9.0), tolerance=0.02, max_placeholder_share=0.7).promote


def test_a_rejection_lists_every_failed_check():
    bad = _metrics(9.5, pii_hits=1, pii_entities={"CARD": 1}, n_generations=4)
    decision = decide_promotion(bad, None, _metrics(9.0), tolerance=0.02)
    assert "CARD 1" in decision.reason and "not better than base 9.000" in decision.reason


def test_promotes_a_candidate_better_than_base_and_production():
    decision = decide_promotion(_metrics(4.0), _metrics(5.0), _metrics(9.0), tolerance=0.02)
    assert decision.promote
    assert "4.000" in decision.reason and "5.000" in decision.reason and "-20.0%" in decision.reason


def test_promotes_a_candidate_slightly_worse_than_production_within_tolerance():
    decision = decide_promotion(_metrics(5.05), _metrics(5.0), _metrics(9.0), tolerance=0.02)
    assert decision.promote
    assert "+1.0%" in decision.reason


def test_rejects_a_candidate_worse_than_production_beyond_tolerance():
    decision = decide_promotion(_metrics(5.5), _metrics(5.0), _metrics(9.0), tolerance=0.02)
    assert not decision.promote
    assert "+10.0%" in decision.reason and "2.0% tolerance" in decision.reason


def test_rejects_a_candidate_not_better_than_base_even_without_production():
    decision = decide_promotion(_metrics(9.5), None, _metrics(9.0), tolerance=0.02)
    assert not decision.promote
    assert "not better than base 9.000" in decision.reason


def test_with_no_production_compares_with_base_only():
    decision = decide_promotion(_metrics(6.0), None, _metrics(9.0), tolerance=0.0)
    assert decision.promote
    assert "no production" in decision.reason


def test_rejects_a_non_finite_perplexity():
    assert not decide_promotion(_metrics(float("nan")), None, None, tolerance=0.02).promote
