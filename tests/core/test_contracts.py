"""The three data contracts pass on good data, fail on bad data naming the expectation, never leak values."""

import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import great_expectations as gx
import pandas as pd
import pytest

from retune.contracts import ContractResult, RunHistory, require, validate
from retune.errors import ContractError
from retune.schema import TURN_SCHEMA

CONTRACTS = Path(__file__).resolve().parents[2] / "data_contracts"
SECRET_EMAIL = "jane.doe@example.com"
SECRET_CARD = "4111 1111-1111 1111"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIRST_RUN = RunHistory(current={"a.jsonl": 1})  # a source never seen before: nothing to compare with


def turns(texts: list[str], roles: list[str | None] | None = None) -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame(
        {
            "conversation_id": [f"c{i // 2}" for i in range(n)],
            "turn": pd.array([i % 2 for i in range(n)], dtype="int32"),
            "role": roles or ["user" if i % 2 == 0 else "assistant" for i in range(n)],
            "text": texts,
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "channel": "chat",
            "source": "a.jsonl",
            "source_offset": range(n),
            "content_hash": [f"h{i // 2}" for i in range(n)],
        }
    )


def training(splits: list[str]) -> pd.DataFrame:
    messages = json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    return pd.DataFrame(
        {
            "conversation_id": [f"c{i}" for i in range(len(splits))],
            "split": splits,
            "messages": messages,
            "num_turns": pd.array([2] * len(splits), dtype="int32"),
        }
    )


def all_keys(data: object) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in all_keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in all_keys(v)}
    return set()


def failed_names(result: ContractResult) -> set[str]:
    return {o.expectation for o in result.failed}


def assert_no_secret(result: ContractResult, *secrets: str) -> None:
    text = json.dumps([asdict(o) for o in result.outcomes]) + result.summary()
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize("name", ["raw_turns", "anonymized_turns", "training_examples"])
def test_suite_files_round_trip_through_gx(name: str) -> None:
    data = json.loads((CONTRACTS / f"{name}.json").read_text())
    assert "id" not in all_keys(data)  # no GX-generated ids in reviewed files
    suite = gx.ExpectationSuite(**data)
    assert suite.name == name and len(suite.expectations) >= 8
    assert {"owner", "version", "description"} <= set(data["meta"])


def test_a_suite_without_owner_or_version_is_refused(tmp_path: Path) -> None:
    data = json.loads((CONTRACTS / "raw_turns.json").read_text())
    del data["meta"]["owner"], data["meta"]["version"]
    (tmp_path / "raw_turns.json").write_text(json.dumps(data))
    with pytest.raises(ContractError, match="lacks meta.owner, meta.version"):
        validate(turns(["a", "b"]), "raw_turns", tmp_path)


def test_raw_turns_pass_on_good_data_with_counts() -> None:
    result = validate(turns(["Hi, my mail is " + SECRET_EMAIL, "Thanks, noted."]), "raw_turns", CONTRACTS)
    assert result.success, result.summary()
    assert result.rows == 2
    assert result.summary() == f"raw_turns: {len(result.outcomes)}/{len(result.outcomes)} expectations passed"
    require(result)  # does not raise
    columns = next(o for o in result.outcomes if o.expectation == "expect_table_columns_to_match_set")
    assert columns.observed == "all columns present"


def test_raw_turns_fail_on_null_role_and_bad_role() -> None:
    data = turns(["a", "b", "c", "d"], roles=["user", None, "robot", "assistant"])
    result = validate(data, "raw_turns", CONTRACTS)
    assert not result.success
    failed = {(o.expectation, o.column): o.observed for o in result.failed}
    assert failed[("expect_column_values_to_not_be_null", "role")] == "1 of 4 rows unexpected"
    assert ("expect_column_values_to_be_in_set", "role") in failed
    assert_no_secret(result, "robot")
    with pytest.raises(ContractError, match="expect_column_values_to_not_be_null on role"):
        require(result)


def test_raw_turns_fail_on_empty_table_missing_column_and_long_text() -> None:
    empty = validate(turns([]), "raw_turns", CONTRACTS)
    assert "expect_table_row_count_to_be_between" in failed_names(empty)

    no_hash = validate(turns(["a", "b"]).drop(columns=["content_hash"]), "raw_turns", CONTRACTS)
    observed = {(o.expectation, o.column): o.observed for o in no_hash.failed}
    assert observed[("expect_table_columns_to_match_set", None)] == "missing columns: content_hash"
    assert observed[("expect_column_values_to_not_be_null", "content_hash")] == "column missing"

    long = validate(turns(["x" * 8001, "ok"]), "raw_turns", CONTRACTS)
    assert failed_names(long) == {"expect_column_value_lengths_to_be_between"}


def test_anonymized_turns_accept_placeholders() -> None:
    texts = ["Write to <EMAIL_3f9a1c2b> please", "Card <CARD_12345678>, <PHONE_00112233> noted, order 12345."]
    result = validate(turns(texts), "anonymized_turns", CONTRACTS, history=FIRST_RUN)
    assert result.success, result.summary()
    assert result.summary() == "anonymized_turns: 16/16 expectations passed"
    assert result.version == "2"


def test_anonymized_turns_fail_on_email_and_card_left_without_leaking_them() -> None:
    texts = [f"mail me at {SECRET_EMAIL}", "ok", f"card:{SECRET_CARD}", "fine", "also 5500000000000004!"]
    result = validate(turns(texts + ["bye"]), "anonymized_turns", CONTRACTS, history=FIRST_RUN)
    assert not result.success
    failed = {o.expectation: o.observed for o in result.failed}
    assert failed == {
        "expect_column_values_to_not_match_regex[email]": "1 of 6 rows unexpected",
        "no_card_number_left": "2 of 6 rows unexpected",
    }

    assert_no_secret(result, SECRET_EMAIL, "jane", SECRET_CARD, "5500000000000004")
    with pytest.raises(ContractError, match=r"not_match_regex\[email\] on text") as err:
        require(result)
    assert SECRET_EMAIL not in str(err.value)


def test_training_examples_pass_and_fail_on_missing_split_and_duplicates() -> None:
    good = validate(training(["train", "train", "test"]), "training_examples", CONTRACTS)
    assert good.success, good.summary()
    assert any(o.expectation == "both_splits_present" and o.success for o in good.outcomes)

    only_train = validate(training(["train", "train"]), "training_examples", CONTRACTS)
    assert failed_names(only_train) == {"both_splits_present"}
    assert "missing split: test" in only_train.summary()

    bad = training(["train", "valid", "test"])
    bad.loc[1, "conversation_id"] = "c0"
    bad.loc[2, "num_turns"] = 1
    result = validate(bad, "training_examples", CONTRACTS)
    assert failed_names(result) == {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_between",
    }
    assert_no_secret(result, "valid")


def test_unknown_suite_lists_available_ones() -> None:
    with pytest.raises(ContractError, match="available: anonymized_turns, raw_turns, training_examples"):
        validate(training(["train", "test"]), "nope", CONTRACTS)


def test_turn_schema_columns_are_the_contract_columns() -> None:
    data = json.loads((CONTRACTS / "raw_turns.json").read_text())
    assert data["expectations"][0]["kwargs"]["column_set"] == TURN_SCHEMA.names


def test_anonymized_turns_accept_numbers_that_are_not_cards() -> None:
    """Tracking numbers and non-Luhn gift-card numbers are not payment cards: the contract must not trip."""
    texts = ["tracking number JD534797060335519001", "gift card (8784 5934 1099 4185)"]
    result = validate(turns(texts), "anonymized_turns", CONTRACTS, history=FIRST_RUN)
    assert result.success, result.summary()


def test_timestamps_before_2000_or_in_the_future_fail_with_a_small_skew_allowed() -> None:
    data = turns(["a", "b", "c", "d"])
    data["created_at"] = pd.to_datetime(
        ["2026-06-01T12:09:00Z", "1999-12-31T23:59:00Z", "2026-06-01T12:11:00Z", None], utc=True
    )
    result = validate(data, "raw_turns", CONTRACTS, now=NOW)
    failed = {o.expectation: o.observed for o in result.failed}
    # 9 minutes ahead is clock skew; 11 minutes ahead and 1999 are not; a missing time is allowed
    assert failed == {"expect_column_values_to_be_between[timestamp]": "2 of 4 rows unexpected"}
    later = validate(data, "raw_turns", CONTRACTS, now=datetime(2026, 6, 2, tzinfo=UTC))
    assert {o.observed for o in later.failed} == {"1 of 4 rows unexpected"}


def test_duplicate_shares_are_bounded() -> None:
    data = turns([f"t{i}" for i in range(40)])
    assert validate(data, "raw_turns", CONTRACTS).success
    # one repeated (conversation_id, turn) pair in 40 rows is within the 5% share; three are not
    renamed = data.copy()
    renamed.loc[2, "conversation_id"] = "c0"
    renamed.loc[2:3, "content_hash"] = "h-new"
    assert validate(renamed, "raw_turns", CONTRACTS).success
    for i in (4, 6):
        renamed.loc[i, "conversation_id"] = "c0"
    failed = {o.expectation: o for o in validate(renamed, "raw_turns", CONTRACTS).failed}
    assert list(failed) == ["expect_compound_columns_to_be_unique[turn_duplicates]"]
    assert failed["expect_compound_columns_to_be_unique[turn_duplicates]"].column == "conversation_id+turn"
    # a record ingested twice (same content hash, same turn) is never allowed
    twice = pd.concat([data, data.iloc[:2]], ignore_index=True)
    twice_failed = {o.expectation for o in validate(twice, "raw_turns", CONTRACTS).failed}
    assert "expect_compound_columns_to_be_unique[record_duplicates]" in twice_failed


def test_a_source_yielding_far_fewer_records_than_its_previous_run_fails() -> None:
    data = turns(["hello", "hi"])

    def outcome(history: RunHistory | None):
        result = validate(data, "anonymized_turns", CONTRACTS, history=history)
        return next(o for o in result.outcomes if o.expectation == "source_row_count_change")

    broken = outcome(RunHistory(current={"a.jsonl": 40, "b.jsonl": 100}, previous={"a.jsonl": 100, "b.jsonl": 90}))
    assert not broken.success
    assert broken.observed == "1 of 2 sources below 50% of their previous run: a.jsonl 40 vs 100 records (40%)"
    healthy = outcome(RunHistory(current={"a.jsonl": 60, "b.jsonl": 5}, previous={"a.jsonl": 100}))
    assert healthy.success and healthy.observed == "1 of 2 sources compared, lowest at 60% of previous"
    assert outcome(FIRST_RUN).success
    # without the store's history the check cannot say anything: it fails closed
    assert not outcome(None).success


def test_training_examples_bound_the_length_of_messages() -> None:
    long = training(["train", "test"])
    long.loc[0, "messages"] = json.dumps([{"role": "user", "content": "x" * 70_000}])
    failed = {o.expectation for o in validate(long, "training_examples", CONTRACTS).failed}
    assert failed == {"expect_column_value_lengths_to_be_between[token_length_proxy]"}


def test_data_docs_are_built_without_row_values(tmp_path: Path) -> None:
    texts = [f"mail me at {SECRET_EMAIL}", "ok", f"card:{SECRET_CARD}", "fine"]
    data = turns(texts)
    data.loc[1, "role"] = "robot"
    result = validate(
        data, "anonymized_turns", CONTRACTS, history=FIRST_RUN, docs_dir=tmp_path / "docs", run_name="run-1"
    )
    assert result.docs_dir == tmp_path / "docs"
    pages = sorted(p.relative_to(result.docs_dir).as_posix() for p in result.docs_dir.rglob("*.html"))
    assert pages[0] == "index.html" and pages[1].startswith("validations/anonymized_turns/run-1/")
    assert not (result.docs_dir / "static" / "images").exists()
    html = "".join(p.read_text() for p in result.docs_dir.rglob("*.html"))
    assert "expect_column_values_to_not_match_regex" in html or "not match" in html.lower()
    for secret in (SECRET_EMAIL, "jane", SECRET_CARD, "robot"):
        assert secret not in html
    # a second run writes its own site: the shared GX context moves the site, it does not pile up results
    again = validate(turns(["a", "b"]), "raw_turns", CONTRACTS, docs_dir=tmp_path / "docs2", run_name="run-2")
    listed = sorted(p.parent.parent.name for p in again.docs_dir.rglob("validations/*/*/*/*.html"))
    assert listed == ["run-2"]
    shutil.rmtree(tmp_path / "docs")


def test_data_docs_accept_a_relative_directory(tmp_path: Path, monkeypatch) -> None:
    # The default workdir (.retune) is relative, so run directories are too; GX refuses relative site paths.
    monkeypatch.chdir(tmp_path)
    contracts = CONTRACTS.resolve()
    result = validate(turns(["a", "b"]), "raw_turns", contracts, docs_dir=Path("runs/r1/docs"), run_name="r1")
    assert result.docs_dir == (tmp_path / "runs/r1/docs").resolve()
    assert (result.docs_dir / "index.html").is_file()
