"""Data contracts: validate a DataFrame against a reviewed Great Expectations suite, report counts only."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retune.errors import ContractError
from retune.pii import find_pii

# Never ask GX for unexpected values: they are rows of conversation text, i.e. possibly personal data.
_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}

# Table-level checks GX has no expectation for; a suite asks for them by name in meta.retune_checks.
_REQUIRED_SPLITS = ("test", "train")


@dataclass
class ExpectationOutcome:
    expectation: str  # GX expectation type, with the suite's label if it has one: "...not_match_regex[email]"
    column: str | None
    success: bool
    observed: str  # counts only, e.g. "3 of 1200 rows unexpected": never raw values (they can be PII)


@dataclass
class ContractResult:
    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]
    rows: int

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
    """The suite as its reviewed JSON dict; ContractError naming the available suites if it is unknown."""
    path = Path(contracts_dir) / f"{suite_name}.json"
    if not path.is_file():
        known = ", ".join(available_suites(contracts_dir)) or "none"
        raise ContractError(f"unknown data contract '{suite_name}' in {contracts_dir} (available: {known})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"data contract {path} is not valid JSON: {exc}") from None


def validate(df: pd.DataFrame, suite_name: str, contracts_dir: Path) -> ContractResult:
    """Run one suite on a DataFrame; every expectation becomes one outcome, failures included."""
    import great_expectations as gx  # ~3 s import: only when a contract is actually checked

    suite_dict = load_suite(suite_name, contracts_dir)
    try:
        suite = gx.ExpectationSuite(**suite_dict)
    except Exception as exc:  # GX raises many types for a malformed suite
        raise ContractError(f"data contract '{suite_name}' is not a valid suite: {exc}") from None

    batch = _batch_definition(suite_name).get_batch(batch_parameters={"dataframe": df})
    validation = batch.validate(suite, result_format=_RESULT_FORMAT)
    outcomes = [_outcome(r) for r in validation.results]
    for check in suite_dict.get("meta", {}).get("retune_checks", []):
        outcomes.append(_table_check(check, df))
    return ContractResult(
        suite=suite_name, success=all(o.success for o in outcomes), outcomes=outcomes, rows=len(df)
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
    column = config.kwargs.get("column")
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


def _table_check(name: str, df: pd.DataFrame) -> ExpectationOutcome:
    if name == "both_splits_present":
        present = set(df["split"].dropna().unique()) if "split" in df.columns else set()
        missing = [s for s in _REQUIRED_SPLITS if s not in present]
        observed = f"missing split: {', '.join(missing)}" if missing else "train and test present"
        return ExpectationOutcome(expectation=name, column="split", success=not missing, observed=observed)
    if name == "no_card_number_left":
        # A regex cannot tell a card from a tracking or gift-card number; the Luhn-validating recognizer can.
        texts = df["text"].dropna() if "text" in df.columns else []
        hits = sum(1 for text in texts if find_pii(text, ["CARD"]))
        observed = f"{hits} of {len(df)} rows unexpected"
        return ExpectationOutcome(expectation=name, column="text", success=hits == 0, observed=observed)
    raise ContractError(f"data contract asks for an unknown retune check '{name}'")


# One GX context per process: creating it and its pandas data source is the slow part after the import.
_context_lock = threading.Lock()
_context: Any = None
_batch_definitions: dict[str, Any] = {}


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
