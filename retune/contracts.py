"""Data contracts: validate a DataFrame against a reviewed Great Expectations suite, report counts only."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from retune.errors import ContractError

if TYPE_CHECKING:  # pandas loads with the first check, not with every flow import (a warm run needs none)
    import pandas as pd

# Never ask GX for unexpected values: they are rows of conversation text, i.e. possibly personal data.
_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}

# Table-level checks GX has no expectation for; a suite asks for them by name in meta.retune_checks.
_REQUIRED_SPLITS = ("test", "train")
# Texts that could hold a card number: 12+ digits with at most two separators between any two. A superset
# of every card format the recognizer knows, checked by RE2 (vectorized, linear time), so the slow per-row
# Luhn recognizer only looks at the few texts that can hold a card.
_CARD_CANDIDATE = r"\d(?:[ ./-]{0,2}\d){11}"
# What every reviewed suite must say about itself in its meta.
_REQUIRED_META = ("owner", "version", "description")
# Data Docs copy GX's logos and screenshots (~4 MB) into every site; the pages do not need them.
_DOCS_SKIPPED = ("static/images", "static/fonts")


@dataclass
class ExpectationOutcome:
    expectation: str  # GX expectation type, with the suite's label if it has one: "...not_match_regex[email]"
    column: str | None
    success: bool
    observed: str  # counts only, e.g. "3 of 1200 rows unexpected": never raw values (they can be PII)


@dataclass
class RunHistory:
    """Per-source record counts for the row-count-change check: records that parsed (kept + duplicates)
    in this run, and in the latest earlier run that read the same source. Sources never seen before are
    absent from `previous`."""

    current: dict[str, int]
    previous: dict[str, int] = field(default_factory=dict)


@dataclass
class ContractResult:
    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]
    rows: int
    version: str = ""  # the suite's meta.version
    docs_dir: Path | None = None  # the Data Docs site built for this validation (index.html inside)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        """One line: how many expectations passed, or which ones failed and why."""
        total = len(self.outcomes)
        if not self.failed:
            return f"{self.suite}: {total}/{total} expectations passed"
        failures = "; ".join(_describe(o) for o in self.failed)
        return f"{self.suite}: {len(self.failed)} of {total} expectations failed: {failures}"


def available_suites(contracts_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(contracts_dir).glob("*.json"))


def load_suite(suite_name: str, contracts_dir: Path) -> dict[str, Any]:
    """The suite as its reviewed JSON dict; ContractError naming the available suites if it is unknown, or
    naming what its meta lacks (every suite says who owns it, its version and what it protects)."""
    path = Path(contracts_dir) / f"{suite_name}.json"
    if not path.is_file():
        known = ", ".join(available_suites(contracts_dir)) or "none"
        raise ContractError(f"unknown data contract '{suite_name}' in {contracts_dir} (available: {known})")
    try:
        suite = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"data contract {path} is not valid JSON: {exc}") from None
    missing = [key for key in _REQUIRED_META if not str(suite.get("meta", {}).get(key, "")).strip()]
    if missing:
        raise ContractError(f"data contract {path} lacks meta.{', meta.'.join(missing)}")
    return suite


def validate(
    df: pd.DataFrame,
    suite_name: str,
    contracts_dir: Path,
    *,
    history: RunHistory | None = None,
    docs_dir: Path | None = None,
    run_name: str = "adhoc",
    now: datetime | None = None,
) -> ContractResult:
    """Run one suite on a DataFrame; every expectation becomes one outcome, failures included.

    `history` feeds the per-source row-count check (a suite asking for it fails without it); `docs_dir`,
    if given, receives a Data Docs site of this validation named after `run_name`; `now` is the clock the
    timestamp-sanity bounds are computed from.
    """
    import great_expectations as gx  # ~3 s import: only when a contract is actually checked

    suite_dict = load_suite(suite_name, contracts_dir)
    meta = suite_dict.get("meta", {})
    try:
        suite = gx.ExpectationSuite(**suite_dict)
    except Exception as exc:  # GX raises many types for a malformed suite
        raise ContractError(f"data contract '{suite_name}' is not a valid suite: {exc}") from None

    parameters = _parameters(suite_name, meta.get("retune_parameters", {}), now or datetime.now(UTC))
    batch = _batch_definition(suite_name).get_batch(batch_parameters={"dataframe": df})
    validation = batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters=parameters)
    outcomes = [_outcome(r) for r in validation.results]
    for check in meta.get("retune_checks", []):
        outcomes.append(_table_check(check, df, history))
    built = _build_data_docs(validation, suite_name, run_name, docs_dir) if docs_dir else None
    return ContractResult(
        suite=suite_name,
        success=all(o.success for o in outcomes),
        outcomes=outcomes,
        rows=len(df),
        version=str(meta.get("version", "")),
        docs_dir=built,
    )


def require(result: ContractResult) -> None:
    """Raise ContractError naming each failed expectation and its column, if any failed."""
    if result.failed:
        raise ContractError(f"data contract failed: {result.summary()}")


def _describe(o: ExpectationOutcome) -> str:
    where = f" on {o.column}" if o.column else ""
    return f"{o.expectation}{where} ({o.observed})"


def _outcome(r: Any) -> ExpectationOutcome:
    config = r.expectation_config
    label = (config.meta or {}).get("label")
    name = f"{config.type}[{label}]" if label else config.type
    column = config.kwargs.get("column") or "+".join(config.kwargs.get("column_list") or []) or None
    return ExpectationOutcome(expectation=name, column=column, success=bool(r.success), observed=_observed(r))


def _observed(r: Any) -> str:
    """Counts and column names from a GX result, never the values themselves."""
    info = r.exception_info or {}
    # A failing metric reports a dict of {metric id: info}; a healthy one a flat dict.
    errors = [v for v in info.values() if isinstance(v, dict)] if "raised_exception" not in info else [info]
    errors = [e for e in errors if e.get("raised_exception")]
    if errors:
        message = str(errors[0].get("exception_message") or "")
        if "does not exist" in message:
            return "column missing"
        # Other exception messages can quote cell values: report the exception type only.
        last_line = str(errors[0].get("exception_traceback") or "").strip().splitlines()[-1:]
        kind = last_line[0].split(":")[0].rsplit(".", 1)[-1] if last_line else "error"
        return f"could not be evaluated ({kind})"

    result = r.result or {}
    if "unexpected_count" in result:
        return f"{result['unexpected_count']} of {result.get('element_count', '?')} rows unexpected"
    if r.expectation_config.type == "expect_table_columns_to_match_set":
        missing = (result.get("details") or {}).get("mismatched", {}).get("missing") or []
        return f"missing columns: {', '.join(missing)}" if missing else "all columns present"
    if r.expectation_config.type == "expect_table_row_count_to_be_between":
        return f"{result.get('observed_value')} rows"
    observed = result.get("observed_value")
    # Aggregates (min, mean, ...) are numbers; anything else could be a value from the data.
    if isinstance(observed, int | float) and not isinstance(observed, bool):
        return f"observed {observed}"
    return "passed" if r.success else "failed"


def _parameters(suite_name: str, declared: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Values for the suite's `$PARAMETER`s, declared in its meta.retune_parameters: a bound relative to
    the clock ("now_plus_minutes": allowed clock skew) cannot be a constant in a reviewed file."""
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if not isinstance(spec, dict) or set(spec) != {"now_plus_minutes"}:
            raise ContractError(
                f"data contract '{suite_name}': parameter '{name}' must be {{\"now_plus_minutes\": N}}"
            )
        values[name] = now + timedelta(minutes=float(spec["now_plus_minutes"]))
    return values


def _table_check(check: str | dict[str, Any], df: pd.DataFrame, history: RunHistory | None) -> ExpectationOutcome:
    # A check is a name, or {"name": ..., its parameters} when the suite sets a bound.
    name, params = (check, {}) if isinstance(check, str) else (check.get("name", ""), check)
    if name == "both_splits_present":
        present = set(df["split"].dropna().unique()) if "split" in df.columns else set()
        missing = [s for s in _REQUIRED_SPLITS if s not in present]
        observed = f"missing split: {', '.join(missing)}" if missing else "train and test present"
        return ExpectationOutcome(expectation=name, column="split", success=not missing, observed=observed)
    if name == "no_card_number_left":
        # A regex cannot tell a card from a tracking or gift-card number; the Luhn-validating recognizer can.
        from retune.pii import find_pii  # its ~0.1 s of compiled recognizers only where a suite asks for them

        texts = pa.array(df["text"] if "text" in df.columns else [], type=pa.string(), from_pandas=True)
        candidates = pc.filter(texts, pc.match_substring_regex(texts, _CARD_CANDIDATE)).to_pylist()
        hits = sum(1 for text in candidates if text is not None and find_pii(text, ["CARD"]))
        observed = f"{hits} of {len(df)} rows unexpected"
        return ExpectationOutcome(expectation=name, column="text", success=hits == 0, observed=observed)
    if name == "source_row_count_change":
        return _source_row_count_change(float(params.get("min_ratio", 0.5)), history)
    raise ContractError(f"data contract asks for an unknown retune check '{name}'")


def _source_row_count_change(min_ratio: float, history: RunHistory | None) -> ExpectationOutcome:
    """Fail when a source yields far fewer records than the last run that read it: a truncated or broken
    export looks like a normal run otherwise."""
    name = "source_row_count_change"
    if history is None:
        # Fail closed: this check only means something against the store's history.
        return ExpectationOutcome(name, "source", False, "not evaluated: no run history given")
    compared = {s: (n, history.previous[s]) for s, n in history.current.items() if history.previous.get(s)}
    low = sorted(
        (n / before, source, n, before) for source, (n, before) in compared.items() if n < min_ratio * before
    )
    if low:
        ratio, source, n, before = low[0]
        more = f" (and {len(low) - 1} more)" if len(low) > 1 else ""
        observed = (
            f"{len(low)} of {len(compared)} sources below {min_ratio:.0%} of their previous run: {source} "
            f"{n} vs {before} records ({ratio:.0%}){more}"
        )
        return ExpectationOutcome(name, "source", False, observed)
    if not compared:
        return ExpectationOutcome(name, "source", True, f"{len(history.current)} sources, none seen before")
    lowest = min(n / before for n, before in compared.values())
    observed = f"{len(compared)} of {len(history.current)} sources compared, lowest at {lowest:.0%} of previous"
    return ExpectationOutcome(name, "source", True, observed)


def _build_data_docs(validation: Any, suite_name: str, run_name: str, out_dir: Path) -> Path:
    """A Data Docs site of one validation result under out_dir (index.html at its top); returns out_dir.

    The results hold counts only (see _RESULT_FORMAT), so the pages carry no row values.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    out_dir = Path(out_dir).resolve()  # GX refuses a relative site directory (the workdir is often relative)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        batch_identifier=f"retune-{suite_name}",
    )
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    with _context_lock:
        context = _context
        # One site whose directory moves to each run's: update_data_docs_site replaces its config.
        if _DOCS_SITE in (context.config.data_docs_sites or {}):
            context.update_data_docs_site(_DOCS_SITE, site)
        else:
            context.add_data_docs_site(_DOCS_SITE, site)
        context.validation_results_store.set(key, validation)
        try:
            context.build_data_docs(site_names=[_DOCS_SITE], resource_identifiers=[key])
        finally:
            context.validation_results_store.remove_key(key)  # the in-memory store must not grow per run
    for skipped in _DOCS_SKIPPED:
        shutil.rmtree(out_dir / skipped, ignore_errors=True)
    return out_dir


# One GX context per process: creating it and its pandas data source is the slow part after the import.
_context_lock = threading.Lock()
_context: Any = None
_batch_definitions: dict[str, Any] = {}
_DOCS_SITE = "retune_run"


def _batch_definition(asset_name: str) -> Any:
    global _context
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    with _context_lock:
        if _context is None:
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,  # no network here, and no telemetry wanted anyway
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            _context = gx.get_context(mode="ephemeral", project_config=config)
            _context.data_sources.add_pandas("retune")
        if asset_name not in _batch_definitions:
            asset = _context.data_sources.get("retune").add_dataframe_asset(asset_name)
            _batch_definitions[asset_name] = asset.add_batch_definition_whole_dataframe("whole")
        return _batch_definitions[asset_name]
