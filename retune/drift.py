"""Drift report: compare recent conversation turns with the data the production model was trained on."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retune.errors import RetuneError

if TYPE_CHECKING:  # evidently costs seconds to import: only drift_report pays for it
    import pandas as pd
    from evidently import Dataset
    from evidently.core.datasets import DatasetColumn

# Evidently carries usage telemetry that is on unless DO_NOT_TRACK is set, checked when it would send. retune
# works on private support data, often offline: nothing should be sent (offline, trying only adds network
# errors to the logs). Set at import of this module, so before evidently is (lazily, in drift_report);
# setdefault lets a user's own value win.
os.environ.setdefault("DO_NOT_TRACK", "1")

# The pseudonyms written by anonymize, e.g. <EMAIL_3f9a1c2b>: a change in how often they occur is a change in
# how much personal data customers write.
PLACEHOLDER_PATTERN = r"<[A-Z]+_[0-9a-f]{8}>"

# Columns compared, in report order. The raw text is never compared itself: text drift on a small vocabulary
# fails ("After pruning, no terms remain") and would copy customer texts into the report.
DESCRIPTOR_COLUMNS = (
    "text_length",
    "word_count",
    "sentence_count",
    "non_letter_pct",
    "contains_link",
    "pii_placeholders",
)
CATEGORICAL_COLUMNS = ("role", "channel", "hour_of_day")
DRIFT_COLUMNS = DESCRIPTOR_COLUMNS + CATEGORICAL_COLUMNS

COLUMN_LABELS = {
    "text_length": "text length (characters)",
    "word_count": "words per turn",
    "sentence_count": "sentences per turn",
    "non_letter_pct": "% non-letter characters",
    "contains_link": "contains a link",
    "pii_placeholders": "pseudonymized PII per turn",
    "role": "role",
    "channel": "channel",
    "hour_of_day": "hour of day (UTC)",
}

_INPUT_COLUMNS = ("text", "role", "channel", "created_at")
_MISSING = "(none)"  # a category of its own: a rise in turns without channel or time is drift too

# One drift rule at every sample size: an effect size, as Evidently's default above 1000 rows. Its default
# below that (chi-square taking the reference proportions as exact) flagged ~40% of same-distribution
# categorical columns here. Both scores grow with drift; a column drifts at >= its threshold (0.1 by default).
NUM_METHOD = "wasserstein"  # Wasserstein distance in units of the reference's standard deviation
CAT_METHOD = "jensenshannon"
METHOD_LABELS = {NUM_METHOD: "Wasserstein distance / reference std", CAT_METHOD: "Jensen-Shannon distance"}


@dataclass
class DriftResult:
    drift_share: float  # share of drifted columns, as the report computed it
    drift_detected: bool  # drift_share >= threshold, as the report's own test says
    columns: list[tuple[str, float, bool]]  # (column, drift score, drifted), most drifted first
    n_reference: int  # rows compared (after sampling)
    n_current: int
    html_path: Path
    json_path: Path
    threshold: float = 0.5
    sample_size: int = 0  # each side was sampled down to at most this many rows
    n_reference_total: int = 0  # rows before sampling
    n_current_total: int = 0
    # column -> its drift rule, e.g. "Jensen-Shannon distance ≥ 0.1"
    methods: dict[str, str] = field(default_factory=dict)


def drift_report(
    reference: pa.Table,
    current: pa.Table,
    out_dir: Path,
    *,
    threshold: float,
    sample_size: int = 20000,
    seed: int = 0,
) -> DriftResult:
    """Run Evidently's data drift preset on turn tables; write drift.html and drift.json into out_dir."""
    for side, table in (("reference", reference), ("current", current)):
        if table.num_rows == 0:
            raise RetuneError(f"drift report: the {side} data is empty, nothing to compare")
        missing = [c for c in _INPUT_COLUMNS if c not in table.column_names]
        if missing:
            raise RetuneError(f"drift report: the {side} data lacks column(s) {', '.join(missing)}")
    if sample_size <= 0:
        raise RetuneError(f"drift report: sample_size must be positive, got {sample_size}")

    # Independent streams per side: the same table passed twice is not compared with an identical sample.
    ref_sample = _sample(reference, sample_size, np.random.default_rng([seed, 0]))
    cur_sample = _sample(current, sample_size, np.random.default_rng([seed, 1]))

    from evidently import Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(
        columns=list(DRIFT_COLUMNS),
        drift_share=threshold,
        num_method=NUM_METHOD,
        cat_method=CAT_METHOD,
    )
    report = Report([preset], include_tests=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "drift.html", out_dir / "drift.json"
    # Evidently's widgets correlate constant columns (0/0): harmless numpy warnings that would flood the logs.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(current_data=_dataset(cur_sample), reference_data=_dataset(ref_sample))
        snapshot.save_html(str(html_path))
        snapshot.save_json(str(json_path))
        results = snapshot.dict()

    share, detected, columns, methods = _read_results(results)
    return DriftResult(
        drift_share=share,
        drift_detected=detected,
        columns=columns,
        n_reference=ref_sample.num_rows,
        n_current=cur_sample.num_rows,
        html_path=html_path,
        json_path=json_path,
        threshold=threshold,
        sample_size=sample_size,
        n_reference_total=reference.num_rows,
        n_current_total=current.num_rows,
        methods=methods,
    )


def drift_markdown(result: DriftResult) -> str:
    """A short summary for a person: verdict, drift share, and the columns ranked by drift."""
    n_drifted = sum(1 for _, _, drifted in result.columns if drifted)
    verdict = "**Drift detected**" if result.drift_detected else "**No drift**"
    sampled = (
        f"each side sampled to at most {result.sample_size:,} rows"
        if max(result.n_reference_total, result.n_current_total) > result.sample_size
        else "no sampling needed"
    )
    lines = [
        f"### Drift report: {verdict}",
        "",
        f"Drift share **{result.drift_share:.2f}**: {n_drifted} of {len(result.columns)} columns drifted "
        f"(drift when the share is at least {result.threshold:.2f}).",
        "",
        f"Compared {result.n_current:,} current turns (of {result.n_current_total:,}) with "
        f"{result.n_reference:,} reference turns (of {result.n_reference_total:,}); {sampled}.",
        "",
        "| column | drifted | score | drift rule |",
        "|---|---|---|---|",
    ]
    for column, score, drifted in result.columns:
        label = COLUMN_LABELS.get(column, column)
        rule = result.methods.get(column, "")
        lines.append(f"| {label} | {'yes' if drifted else 'no'} | {score:.3g} | {rule} |")
    lines += ["", f"Full report: `{result.html_path}` (results: `{result.json_path}`)."]
    return "\n".join(lines) + "\n"


def _sample(table: pa.Table, n: int, rng: np.random.Generator) -> pa.Table:
    """At most n rows of the table, drawn without replacement."""
    if table.num_rows <= n:
        return table
    # Sorted indices keep the rows in their original order (and take() reads sequentially).
    return table.take(np.sort(rng.choice(table.num_rows, size=n, replace=False)))


def _frame(table: pa.Table) -> pd.DataFrame:
    """Only what is compared: text (for descriptors), role, channel and hour of day; no ids or sources."""
    hour = pc.utf8_lpad(pc.cast(pc.hour(table["created_at"]), pa.string()), width=2, padding="0")
    compact = pa.table(
        {
            "text": table["text"],
            "role": table["role"],
            "channel": pc.fill_null(table["channel"], _MISSING),
            "hour_of_day": pc.fill_null(hour, _MISSING),
        }
    )
    return compact.to_pandas()


def _count_placeholders(column: DatasetColumn) -> DatasetColumn:
    """Evidently descriptor: pseudonymization placeholders per turn."""
    from evidently.core.datasets import DatasetColumn
    from evidently.legacy.core import ColumnType

    counts = column.data.astype(str).str.count(PLACEHOLDER_PATTERN)
    return DatasetColumn(type=ColumnType.Numerical, data=counts)


def _dataset(table: pa.Table) -> Dataset:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import (
        ContainsLink,
        CustomColumnDescriptor,
        NonLetterCharacterPercentage,
        SentenceCount,
        TextLength,
        WordCount,
    )

    # Only descriptors computed locally: sentiment, OOV and word-list ones need NLTK corpora (a download).
    descriptors = [
        TextLength("text", alias="text_length"),
        WordCount("text", alias="word_count"),
        SentenceCount("text", alias="sentence_count"),
        NonLetterCharacterPercentage("text", alias="non_letter_pct"),
        ContainsLink("text", alias="contains_link"),
        CustomColumnDescriptor("text", _count_placeholders, alias="pii_placeholders"),
    ]
    definition = DataDefinition(text_columns=["text"], categorical_columns=list(CATEGORICAL_COLUMNS))
    return Dataset.from_pandas(_frame(table), data_definition=definition, descriptors=descriptors)


def _read_results(
    results: dict,
) -> tuple[float, bool, list[tuple[str, float, bool]], dict[str, str]]:
    """The verdict and per-column drift as the report states them (metric values and test statuses)."""
    status = {t["metric_config"]["metric_id"]: t["status"] for t in results["tests"]}

    def failed(metric_id: str) -> bool:
        if status.get(metric_id) not in ("FAIL", "SUCCESS"):
            raise RuntimeError(f"evidently gave no pass/fail for metric {metric_id}: {status.get(metric_id)}")
        return status[metric_id] == "FAIL"

    share, detected = math.nan, False
    ranked: list[tuple[float, str, float, bool]] = []
    methods: dict[str, str] = {}
    for metric in results["metrics"]:
        config = metric["config"]
        if config["type"] == "evidently:metric_v2:DriftedColumnsCount":
            share, detected = float(metric["value"]["share"]), failed(metric["id"])
        elif config["type"] == "evidently:metric_v2:ValueDrift":
            column, score, drifted = config["column"], float(metric["value"]), failed(metric["id"])
            method, limit = config["method"], float(config["threshold"])
            methods[column] = f"{METHOD_LABELS.get(method, method)} ≥ {limit:g}"
            # How far past its own threshold a column is, so columns with different methods rank together.
            ranked.append((score / limit, column, score, drifted))
    if math.isnan(share):
        raise RuntimeError("evidently report has no DriftedColumnsCount metric")
    ranked.sort(key=lambda r: (not r[3], -r[0]))
    return share, detected, [(column, score, drifted) for _, column, score, drifted in ranked], methods
