"""The whole DAG on the bundled samples, twice: batch 1 trains and promotes v1; batch 2 shows drift and yields v2."""

from __future__ import annotations

import json
import stat

import pytest
from dag_config import REPO, tiny_config, write_config

from retune.config import load_config
from retune.datasets import read_turns
from retune.errors import ContractError
from retune.registry import Registry
from retune.store import open_store

pytestmark = pytest.mark.slow


def test_two_batches_train_promote_drift_and_compare(tmp_path, prefect_harness):
    from flows.run import run_flow

    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    cfg = load_config(config)

    rows1 = dict(run_flow(str(config), [str(REPO / "examples/batch1/*")]))
    store = open_store(cfg)
    registry = Registry(store)
    v1 = registry.production()
    assert v1 is not None and v1.version == "v1", rows1
    assert "PROMOTED" in rows1["promotion"]
    assert "reconciles" in rows1["kept / quarantined / duplicates"]
    turns1 = read_turns(store, "main")
    assert turns1.num_rows > 0
    assert v1.lineage["dataset_commit"] == store.resolve("main")
    # no raw e-mail address reached the store
    assert not any("@" in t and ".com" in t and "<EMAIL_" not in t for t in turns1["text"].to_pylist())
    # quarantine holds the malformed records, readable by the owner only
    quarantined = list((tmp_path / "work" / "quarantine").glob("*.parquet"))
    assert quarantined and all(stat.S_IMODE(q.stat().st_mode) == 0o600 for q in quarantined)
    # the exported ONNX model is in the registered version
    assert any(f.endswith(".onnx") for f in v1.files)
    assert rows1["drift"].startswith("no model in production")

    rows2 = dict(run_flow(str(config), [str(REPO / "examples/batch2/*")]))
    assert "drift share" in rows2["drift"], rows2
    assert any(k.startswith("eval production (v1)") for k in rows2), rows2
    versions = [v.version for v in registry.versions()]
    assert versions == ["v1", "v2"]
    # v2 was judged against v1 on the same held-out conversations: each change has its paired interval
    gated = registry.versions()[1].decision["metrics"]
    assert gated and all(m["confidence"] == 0.95 and m["interval"][0] <= m["interval"][1] for m in gated), gated
    turns2 = read_turns(store, "main")
    assert turns2.num_rows > turns1.num_rows
    drift_json = next((tmp_path / "work" / "runs").glob("*/drift/drift.json"))
    assert json.loads(drift_json.read_text())
    # the report is kept in the store too, addressed by the data commit it describes
    in_store = store.list_objects("reports", "drift/")
    assert any(p.endswith("drift.html") for p in in_store) and any(p.endswith("drift.json") for p in in_store)

    # the registry as a person sees it, then a one-command rollback
    import subprocess
    import sys

    retune = [f"{sys.prefix}/bin/retune"]
    shown = subprocess.run(retune + ["models", "--config", str(config)], capture_output=True, text=True,
                           env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "v1" in shown.stdout and "v2" in shown.stdout and "production" in shown.stdout
    if registry.production().version == "v2":
        back = subprocess.run(retune + ["rollback", "--reason", "v2 regressed", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)
        assert back.returncode == 0 and "production is now v1" in back.stdout, back.stderr
        assert registry.production().version == "v1"

    # ingesting batch 1 again adds nothing: the source ledger skips its unchanged files without reading them
    from flows.ingest import ingest_flow

    again = ingest_flow(str(config), [str(REPO / "examples/batch1/*")])
    assert again.dataset is None and again.report.kept == 0
    assert [s.rsplit("/", 1)[-1] for s in again.report.skipped_files] == ["chat.jsonl", "pairs.csv"]
    assert again.report.records_in == 0 and again.report.reconciles()
    assert read_turns(store, "main").num_rows == turns2.num_rows


def counts(rows: dict[str, str]) -> tuple[int, int, int]:
    kept, quarantined, duplicates = rows["kept / quarantined / duplicates"].split("(")[0].split("/")
    return int(kept), int(quarantined), int(duplicates)


def test_failed_contract_stops_the_run_and_main_is_untouched(tmp_path, prefect_harness):
    """With e-mail detection switched off, the anonymized-data contract catches the leak before publish."""
    from flows.ingest import ingest_flow

    config = write_config(
        tmp_path / "retune.yaml", tiny_config(tmp_path / "work", pii={"entities": ["PHONE", "CARD"]})
    )
    with pytest.raises(ContractError, match=r"anonymized_turns.*branch ingest-\S+ kept for inspection"):
        ingest_flow(str(config), [str(REPO / "examples/batch1/*")])
    store = open_store(load_config(config))
    assert read_turns(store, "main").num_rows == 0
    # write-audit-publish: the failed run's commit stays on its own branch, for a person to inspect
    (branch,) = [b for b in store.branches() if b.startswith("ingest-")]
    assert read_turns(store, branch).num_rows > 0
    # and `retune gc` removes it once it is old enough
    from retune.gc import collect, parse_age

    assert collect(store, parse_age("1d")) == []
    assert [b.name for b in collect(store, parse_age("0m"))] == [branch]
    assert store.branches() == ["main"]
