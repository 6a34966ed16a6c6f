"""Run the whole DAG on both sample batches, then read back everything a person or a machine can see — every log
line, artifact, flow-run parameter, stored report, model card, registry entry and commit's metadata — and look for
the pseudonymization key and the raw personal data planted in the input: there must be none."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "flows"))
sys.path.insert(0, str(REPO / "tests" / "reliability"))
from dag_config import tiny_config, write_config  # noqa: E402
from visible import leaks, prefect_records, store_records, workdir_records  # noqa: E402

from retune.config import load_config  # noqa: E402
from retune.store import open_store  # noqa: E402

pytestmark = pytest.mark.slow
SECRET_KEY = "pseudonymization-key-that-must-never-show-7f3a9c"
# Set in the environment though this run uses the local store: nothing may dump the environment anywhere.
LAKEFS_KEYS = {"LAKEFS_ACCESS_KEY_ID": "AKIALEAKTESTNEVERSHOWN", "LAKEFS_SECRET_ACCESS_KEY": "lakefs-secret-not-shown"}


def planted_values() -> set[str]:
    """Every planted e-mail, phone, card, IBAN, IP, address and full name (single first names are too common
    as ordinary words to search for as substrings)."""
    values = set()
    for line in (REPO / "examples/pii_truth.jsonl").read_text().splitlines():
        for entity, value in json.loads(line)["pii"]:
            if entity != "NAME" or " " in value:
                values.add(value)
    return {v for v in values if len(v) >= 6}


def test_no_secret_and_no_raw_pii_in_anything_the_run_shows(tmp_path, monkeypatch, prefect_harness):
    from flows.run import run_flow

    monkeypatch.setenv("RETUNE_PII_KEY", SECRET_KEY)
    for name, value in LAKEFS_KEYS.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    for batch in ("batch1", "batch2"):
        run_flow(str(config), [str(REPO / f"examples/{batch}/*")])

    seen = prefect_records()
    assert sum(1 for where, _ in seen if where == "log") > 50  # the scan really read the run's logs
    seen += store_records(open_store(load_config(config)))
    seen += workdir_records(tmp_path / "work")  # reports, cards, ledgers, drift reports (not the quarantine)
    assert any(where.endswith("drift.html") for where, _ in seen)

    values = planted_values()
    assert len(values) > 100
    found = leaks(seen, values | {SECRET_KEY, *LAKEFS_KEYS.values()})
    assert found == [], f"{len(found)} leaks, e.g. {found[:5]}"
