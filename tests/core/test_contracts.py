"""The three data contracts pass on good data, fail on bad data naming the expectation, never leak values."""

import json
from dataclasses import asdict
from pathlib import Path

import great_expectations as gx
import pandas as pd
import pytest

from retune.contracts import ContractResult, require, validate
from retune.errors import ContractError
from retune.schema import TURN_SCHEMA

CONTRACTS = Path(__file__).resolve().parents[2] / "data_contracts"
SECRET_EMAIL = "jane.doe@example.com"
SECRET_CARD = "4111 1111-1111 1111"


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
    result = validate(turns(texts), "anonymized_turns", CONTRACTS)
    assert result.success, result.summary()
    assert result.summary() == "anonymized_turns: 12/12 expectations passed"


def test_anonymized_turns_fail_on_email_and_card_left_without_leaking_them() -> None:
    texts = [f"mail me at {SECRET_EMAIL}", "ok", f"card:{SECRET_CARD}", "fine", "also 5500000000000004!"]
    result = validate(turns(texts + ["bye"]), "anonymized_turns", CONTRACTS)
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
    result = validate(turns(texts), "anonymized_turns", CONTRACTS)
    assert result.success, result.summary()
