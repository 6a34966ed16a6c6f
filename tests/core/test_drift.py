"""The drift report on synthetic turn tables: a clear shift is flagged, a resample is not."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from retune.drift import COLUMN_LABELS, DRIFT_COLUMNS, DriftResult, drift_markdown, drift_report
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

    result = drift_report(reference, current, tmp_path, threshold=0.5)

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

    result = drift_report(reference, current, tmp_path, threshold=0.5)

    assert not result.drift_detected
    assert result.drift_share < 0.5


def test_reports_are_written_from_the_reports_own_results_and_hold_no_text(tmp_path):
    reference = make_turns(300, shifted=False, seed=5)
    current = make_turns(300, shifted=True, seed=6)

    result = drift_report(reference, current, tmp_path / "reports", threshold=0.5)

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

    first = drift_report(reference, current, tmp_path / "a", threshold=0.5, sample_size=400, seed=11)
    second = drift_report(reference, current, tmp_path / "b", threshold=0.5, sample_size=400, seed=11)

    assert (first.n_reference, first.n_current) == (400, 400)
    assert (first.n_reference_total, first.n_current_total) == (900, 500)
    assert first.columns == second.columns
    assert "at most 400 rows" in drift_markdown(first)


def test_markdown_states_verdict_share_and_top_columns(tmp_path):
    reference = make_turns(300, shifted=False, seed=9)
    current = make_turns(300, shifted=True, seed=10)
    result = drift_report(reference, current, tmp_path, threshold=0.5)

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
        drift_report(*args, tmp_path, threshold=0.5)
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

    result = drift_report(reference, current, tmp_path, threshold=0.5)

    drifted = {column for column, _, is_drifted in result.columns if is_drifted}
    assert drifted == {"channel", "hour_of_day"}
    assert not result.drift_detected
