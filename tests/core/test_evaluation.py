"""Evaluation metrics on the tiny model (perplexity, token accuracy, chrF, ROUGE-L, PII regurgitation) and the
promotion decision."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from retune.errors import RetuneError
from retune.evaluation import (
    PII_PROBES,
    Check,
    EvalMetrics,
    GatePolicy,
    PerExample,
    _encode_with_mask,
    chrf,
    chrf_from_statistics,
    chrf_statistics,
    decide_promotion,
    evaluate_model,
    paired_interval,
    parity_check,
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
    decision = decide_promotion(leaky, None, _metrics(1e9), POLICY)
    assert not decision.promote
    assert "PII match(es) (EMAIL" in decision.reason
    assert [c.name for c in decision.checks if not c.passed] == ["PII regurgitation"]


@pytest.mark.slow  # trains the tiny model to memorize a few conversations (~15-40 s on 2 busy cores)
def test_evaluation_is_deterministic_and_promotes_the_better_model(memorized, tiny_base_model):
    model_dir, conversations = memorized
    first = evaluate_model(model_dir, conversations, max_examples=4, max_new_tokens=16)
    assert evaluate_model(model_dir, conversations, max_examples=4, max_new_tokens=16) == first
    base = evaluate_model(tiny_base_model, conversations, max_examples=4, max_new_tokens=16)
    assert decide_promotion(first, None, base, POLICY).promote
    assert not decide_promotion(base, None, first, POLICY).promote


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


def test_per_example_statistics_add_up_to_the_reported_metrics(tiny_base_model, tiny_conversations):
    metrics = evaluate_model(tiny_base_model, tiny_conversations, max_examples=3, max_new_tokens=4, pii_probes=False)
    per = metrics.per_example
    assert len(per.index) == len(per.nll) == len(per.chrf_stats) == len(per.rouge_l) == metrics.n_examples
    assert sum(per.tokens) == metrics.n_tokens
    assert math.exp(sum(per.nll) / sum(per.tokens)) == pytest.approx(metrics.perplexity)
    assert sum(per.correct) / sum(per.tokens) == pytest.approx(metrics.token_accuracy)
    assert chrf_from_statistics([sum(col) for col in zip(*per.chrf_stats, strict=True)]) == pytest.approx(metrics.chrf)
    assert 100 * sum(per.rouge_l) / len(per.rouge_l) == pytest.approx(metrics.rouge_l)
    assert "per_example" not in repr(metrics)  # numbers for the gate, not for logs


def test_chrf_statistics_sum_to_corpus_chrf_on_any_resample():
    hyps = ["the cat sat on the mat", "hello there friend", "your order ships today"]
    refs = ["a cat sat on a mat", "hi there my friend", "the order ships tomorrow"]
    stats = chrf_statistics(hyps, refs)
    for rows in ([0, 1, 2], [0, 0, 2], [1, 1, 1]):
        summed = [sum(stats[r][k] for r in rows) for k in range(len(stats[0]))]
        assert chrf_from_statistics(summed) == pytest.approx(chrf([hyps[r] for r in rows], [refs[r] for r in rows]))


def _per_example(rouge: list[float], nll: list[float] | None = None) -> PerExample:
    n = len(rouge)
    nll = nll or [10.0] * n
    return PerExample(list(range(n)), nll, [10] * n, [5] * n, [[1.0] * 18] * n, rouge)


def test_paired_interval_is_zero_for_the_same_model_and_one_sided_for_a_consistent_change():
    rng = random.Random(0)
    hard_and_easy = [rng.uniform(0.05, 0.95) for _ in range(40)]  # conversations differ a lot in difficulty
    same = _per_example(hard_and_easy)
    assert paired_interval("rouge_l", same, same) == (0.0, 0.0)
    # 2 points better on every conversation: paired, the spread of difficulty cancels out
    better = _per_example([r + 0.02 for r in hard_and_easy])
    low, high = paired_interval("rouge_l", better, same)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)
    # better on some, worse on others: the interval straddles 0
    mixed = _per_example([r + (0.1 if i % 2 else -0.1) for i, r in enumerate(hard_and_easy)])
    low, high = paired_interval("rouge_l", mixed, same)
    assert low < 0 < high
    wider = paired_interval("rouge_l", mixed, same, confidence=0.99)
    assert wider[0] <= low and wider[1] >= high
    # perplexity's change is relative; only the conversations both scored are paired
    assert paired_interval("perplexity", _per_example([0.5] * 3, [20.0] * 3), _per_example([0.5] * 3)) == (
        pytest.approx(math.e - 1), pytest.approx(math.e - 1))
    assert paired_interval("rouge_l", PerExample([3], [1.0], [1], [1], [[1.0] * 18], [0.5]), same) is None


def test_a_gate_with_confidence_rejects_a_change_whose_interval_reaches_past_the_tolerance():
    rng = random.Random(1)
    production_scores = [rng.uniform(0.2, 0.8) for _ in range(30)]
    # 0.5 point worse on average (within the 1-point tolerance), but up to 25 points either way per conversation
    noisy = [r - 0.005 + (0.25 if i % 2 else -0.25) for i, r in enumerate(production_scores)]
    candidate = _metrics(4.0, rouge_l=100 * sum(noisy) / 30, per_example=_per_example(noisy))
    production = _metrics(5.0, rouge_l=100 * sum(production_scores) / 30,
                          per_example=_per_example(production_scores))
    shown = decide_promotion(candidate, production, _metrics(9.0, rouge_l=0.0), POLICY)
    assert shown.promote  # the point estimate gates by default; the interval is only shown
    rouge = next(v for v in shown.metrics if v.metric == "rouge_l")
    assert rouge.confidence == 0.95 and rouge.interval[0] < -1.0 < rouge.interval[1]
    assert rouge.interval_text().startswith("-0.50 (95%: -")
    assert "95% interval" in next(c.detail for c in shown.checks if c.name == "ROUGE-L vs production")

    strict = GatePolicy(POLICY.tolerances, confidence=0.9)
    decision = decide_promotion(candidate, production, _metrics(9.0, rouge_l=0.0), strict)
    assert not decision.promote and _failed(decision) == ["ROUGE-L vs production"]
    assert "90% interval" in decision.reason and "reaches past the tolerance" in decision.reason
    # a consistent small loss has a narrow interval: within tolerance at any confidence
    steady = [r - 0.005 for r in production_scores]
    steady_candidate = _metrics(4.0, rouge_l=100 * sum(steady) / 30, per_example=_per_example(steady))
    assert decide_promotion(steady_candidate, production, _metrics(9.0, rouge_l=0.0), strict).promote


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
    values = {"token_accuracy": 0.5, "chrf": 50.0, "rouge_l": 40.0, **extra}
    return EvalMetrics(perplexity=perplexity, n_examples=10, n_tokens=100, **values)


POLICY = GatePolicy(tolerances={"perplexity": 0.02, "token_accuracy": 0.01, "chrf": 1.0, "rouge_l": 1.0})


def _failed(decision) -> list[str]:
    return [c.name for c in decision.checks if not c.passed]


def test_rejects_a_candidate_that_regurgitates_pii_even_when_better():
    leaky = _metrics(4.0, pii_hits=2, pii_entities={"EMAIL": 1, "PHONE": 1}, n_generations=18)
    decision = decide_promotion(leaky, _metrics(5.0), _metrics(9.0), POLICY)
    assert not decision.promote
    assert "2 PII match(es) (EMAIL 1, PHONE 1) in 18 generated replies" in decision.reason
    assert _failed(decision) == ["PII regurgitation"]
    assert {c.name for c in decision.checks} == {
        "PII regurgitation", "placeholder flood",
        *(f"{label} vs {other}" for label in ("perplexity", "token accuracy", "chrF", "ROUGE-L")
          for other in ("base", "production")),
    }


def test_rejects_a_candidate_whose_replies_are_flooded_with_placeholders():
    flooded = _metrics(4.0, placeholder_share=0.6)
    strict = GatePolicy(POLICY.tolerances, max_placeholder_share=0.2)
    decision = decide_promotion(flooded, None, _metrics(9.0), strict)
    assert not decision.promote
    assert "placeholders are 60.0% of generated text (limit 20.0%)" in decision.reason
    lenient = GatePolicy(POLICY.tolerances, max_placeholder_share=0.7)
    assert decide_promotion(flooded, None, _metrics(9.0), lenient).promote


def test_a_rejection_lists_every_failed_check():
    bad = _metrics(9.5, pii_hits=1, pii_entities={"CARD": 1}, n_generations=4)
    decision = decide_promotion(bad, None, _metrics(9.0), POLICY)
    assert "CARD 1" in decision.reason and "not better than base 9.000" in decision.reason


def test_promotes_a_candidate_better_than_base_and_production():
    decision = decide_promotion(_metrics(4.0), _metrics(5.0), _metrics(9.0), POLICY)
    assert decision.promote
    assert "4.000" in decision.reason and "5.000" in decision.reason and "-20.0%" in decision.reason
    assert [v.metric for v in decision.metrics] == ["perplexity", "token_accuracy", "chrf", "rouge_l"]
    assert all(v.vs_base and v.vs_production for v in decision.metrics)


def test_promotes_a_candidate_slightly_worse_than_production_within_tolerance():
    decision = decide_promotion(_metrics(5.05), _metrics(5.0), _metrics(9.0), POLICY)
    assert decision.promote
    assert "+1.0%" in decision.reason


def test_rejects_a_candidate_worse_than_production_beyond_tolerance():
    decision = decide_promotion(_metrics(5.5), _metrics(5.0), _metrics(9.0), POLICY)
    assert not decision.promote
    assert "+10.0%" in decision.reason and "2.0% tolerance" in decision.reason


@pytest.mark.parametrize(
    ("metric", "label", "worse", "within"),
    [("token_accuracy", "token accuracy", 0.48, 0.495), ("chrf", "chrF", 48.5, 49.2),
     ("rouge_l", "ROUGE-L", 38.0, 39.5)],
)
def test_every_gated_metric_can_reject_a_candidate_with_better_perplexity(metric, label, worse, within):
    production, base = _metrics(5.0), _metrics(9.0, token_accuracy=0.3, chrf=10.0, rouge_l=10.0)
    decision = decide_promotion(_metrics(4.0, **{metric: worse}), production, base, POLICY)
    assert not decision.promote
    assert _failed(decision) == [f"{label} vs production"]
    assert "worse than the" in decision.reason and label in decision.reason
    row = next(v for v in decision.metrics if v.metric == metric)
    assert (row.candidate, row.production, row.vs_base, row.vs_production) == (worse, getattr(production, metric),
                                                                               True, False)
    assert decide_promotion(_metrics(4.0, **{metric: within}), production, base, POLICY).promote


def test_the_base_must_be_beaten_strictly_on_the_listed_metrics_and_matched_on_the_others():
    candidate, base = _metrics(8.0, chrf=50.0), _metrics(9.0, chrf=50.0)  # a tie on chrF
    assert decide_promotion(candidate, None, base, POLICY).promote  # chrF: within tolerance of the base is enough
    strict = GatePolicy(POLICY.tolerances, beat_base=("perplexity", "chrf"))
    decision = decide_promotion(candidate, None, base, strict)
    assert not decision.promote and _failed(decision) == ["chrF vs base"]
    assert "candidate chrF 50.00 is not better than base 50.00" in decision.reason
    # worse than the base beyond tolerance on a metric it need not beat: rejected too
    assert _failed(decide_promotion(_metrics(8.0, rouge_l=30.0), None, base, POLICY)) == ["ROUGE-L vs base"]


def test_a_metric_without_tolerance_is_not_gated():
    policy = GatePolicy({"perplexity": 0.02})
    decision = decide_promotion(_metrics(4.0, chrf=0.0), _metrics(5.0), _metrics(9.0), policy)
    assert decision.promote and [v.metric for v in decision.metrics] == ["perplexity"]
    with pytest.raises(RetuneError, match="unknown gated metric"):
        decide_promotion(_metrics(4.0), None, None, GatePolicy({"bleu": 1.0}))


def test_policy_from_config_reads_tolerances_beat_base_and_the_judge_threshold():
    from retune.config import EvaluationConfig

    evaluation = EvaluationConfig.model_validate({
        "tolerances": {"chrf": None, "rouge_l": 2.5}, "beat_base": ["perplexity", "token_accuracy"],
        "judge": {"endpoint": "http://127.0.0.1:9/v1", "model": "judge", "min_win_rate": 0.4},
    })
    policy = GatePolicy.from_config(evaluation)
    assert policy.tolerances == {"perplexity": 0.02, "token_accuracy": 0.01, "rouge_l": 2.5}
    assert policy.beat_base == ("perplexity", "token_accuracy") and policy.min_judge_win_rate == 0.4
    assert GatePolicy.from_config(EvaluationConfig()).min_judge_win_rate is None
    assert policy.confidence is None
    assert GatePolicy.from_config(EvaluationConfig(confidence=0.9)).confidence == 0.9
    with pytest.raises(ValueError, match="confidence"):
        EvaluationConfig(confidence=1.5)


def test_a_failed_parity_check_rejects_and_the_decision_is_json_for_the_registry():
    parity = Check("ONNX parity", False, "int8 ONNX: greedy agreement 0.400 (min 0.9) failed parity: greedy -0.5")
    decision = decide_promotion(_metrics(4.0), _metrics(5.0), _metrics(9.0), POLICY, parity=parity)
    assert not decision.promote and _failed(decision) == ["ONNX parity"]
    stored = json.loads(json.dumps(decision.as_dict()))
    assert stored["promote"] is False and stored["metrics"][0]["metric"] == "perplexity"
    assert stored["metrics"][0]["candidate"] == 4.0 and stored["metrics"][0]["vs_production"] is True


def test_parity_check_reads_the_served_variant_of_the_export():
    from retune.export import ExportResult, Latency, Parity, ParityGate, Variant

    def variant(name: str, passed: bool) -> Variant:
        parity = Parity(name, 1.0 if passed else 0.4, 0.01, passed, 0.99, [] if passed else ["greedy 0.400 < 0.9"])
        return Variant(name, Path(name), 100, parity, Latency({32: 1.0, 128: 2.0}, 3, 1))

    fp32, int8 = variant("fp32", True), variant("int8_weight_only_all", True)
    exported = ExportResult(Path("m"), 400, [fp32, int8], int8, "int8 won", Latency({32: 2.0}, 3, 1),
                            ParityGate(0.9, 0.95))
    assert parity_check(exported).passed and "int8_weight_only_all ONNX" in parity_check(exported).detail
    broken = variant("fp32", False)
    exported = ExportResult(Path("m"), 400, [broken], broken, "", Latency({32: 2.0}, 3, 1), ParityGate(0.9))
    check = parity_check(exported)
    assert not check.passed and "greedy 0.400 < 0.9" in check.detail


def test_a_judge_win_rate_below_the_threshold_rejects():
    from retune.judge import JudgeResult

    judged = _metrics(4.0, judge=JudgeResult(0.3, 3, 7, 0, 0, 10, 5, 0.5, "production (v1)", "judge"))
    policy = GatePolicy(POLICY.tolerances, min_judge_win_rate=0.45)
    decision = decide_promotion(judged, _metrics(5.0), _metrics(9.0), policy)
    assert not decision.promote and _failed(decision) == ["LLM judge"]
    assert "win rate 30.0% vs production (v1) over 10 judgements (below 45.0%)" in decision.reason
    assert decide_promotion(judged, _metrics(5.0), _metrics(9.0), POLICY).promote  # shown, not gated


def test_rejects_a_candidate_not_better_than_base_even_without_production():
    decision = decide_promotion(_metrics(9.5), None, _metrics(9.0), POLICY)
    assert not decision.promote
    assert "not better than base 9.000" in decision.reason


def test_with_no_production_compares_with_base_only():
    decision = decide_promotion(_metrics(6.0), None, _metrics(9.0), GatePolicy({"perplexity": 0.0}))
    assert decision.promote
    assert "no production" in decision.reason


def test_rejects_a_non_finite_perplexity():
    assert not decide_promotion(_metrics(float("nan")), None, None, POLICY).promote


def test_the_model_card_shows_lineage_with_the_prompt_hash_scores_and_the_gate_metric_by_metric():
    from retune.model_card import model_card

    scores = {"base": _metrics(9.0, chrf=10.0), "production (v1)": _metrics(5.0), "candidate": _metrics(4.0, chrf=48.5)}
    decision = decide_promotion(scores["candidate"], scores["production (v1)"], scores["base"], POLICY)
    lineage = {"dataset_commit": "ab" * 32, "base_model": "models/base", "config_hash": "0123456789abcdef",
               "system_prompt": "prompts/system.md", "system_prompt_sha256": "cd" * 32}
    card = model_card(lineage, {"perplexity": 4.0}, [decision.reason], scores=scores, decision=decision)
    assert "| system_prompt_sha256 | " + "cd" * 32 in card and "| config_hash | 0123456789abcdef |" in card
    assert "| production (v1) | 5 |" in card  # metrics vs production, in one table
    assert "## Promotion gate: failed" in card
    assert "| chrF | 48.5 | 10 | 50 | -1.50 | 1 | pass | FAIL |" in card
    assert "| perplexity | 4 | 9 | 5 | -20.0% | 2.0% | pass (must beat) | pass |" in card
