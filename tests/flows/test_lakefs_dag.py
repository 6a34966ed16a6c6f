"""The DAG on the lakeFS backend: the real lakeFS SDK against the stateful fake lakeFS on 127.0.0.1."""

from __future__ import annotations

import sys

import pytest
from dag_config import REPO, tiny_config, write_config

sys.path.insert(0, str(REPO / "tests" / "contract"))
sys.path.insert(0, str(REPO / "tests" / "reliability"))
from fake_lakefs import FakeLakeFS  # noqa: E402
from lakefs_policy import admin_actions, not_granted  # noqa: E402
from visible import leaks, prefect_records, store_records, workdir_records  # noqa: E402

from retune.config import load_config  # noqa: E402
from retune.cost import CostLedger, ledger_path  # noqa: E402
from retune.datasets import read_turns  # noqa: E402
from retune.errors import ContractError  # noqa: E402
from retune.registry import Registry  # noqa: E402
from retune.store import open_store  # noqa: E402

pytestmark = pytest.mark.slow
KEY, SECRET = "AKIAFAKEDAGTEST", "fake-dag-secret-never-logged"


@pytest.fixture
def lakefs_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET)
    with FakeLakeFS(KEY, SECRET) as fake:
        store = {"backend": "lakefs",
                 "lakefs": {"endpoint": fake.url, "repository": "retune", "storage_namespace": "local://retune"}}
        yield lambda **overrides: write_config(
            tmp_path / "retune.yaml", tiny_config(tmp_path / "work", store=store, **overrides)
        )
        assert fake.unhandled == [], f"retune asked the fake lakeFS for what it does not implement: {fake.unhandled}"
        # least privilege: every call the flows made is allowed by infra/lakefs/policy.json, which grants no more
        assert not_granted(fake.requests) == [] and admin_actions() == []


def test_whole_run_publishes_and_registers_on_lakefs(lakefs_config, prefect_harness, caplog):
    from flows.run import run_flow

    config = lakefs_config()
    rows = dict(run_flow(str(config), [str(REPO / "examples/batch1/*")]))
    assert "PROMOTED" in rows["promotion"], rows

    store = open_store(load_config(config))
    main = store.get_commit("main")
    assert read_turns(store, main.id).num_rows > 0
    run_commit = store.get_commit(main.metadata["run_commit"])
    assert int(run_commit.metadata["kept"]) > 0 and run_commit.metadata["flow_run_id"]
    assert "anonymized_turns" in main.metadata["contracts"]
    production = Registry(store).production()
    assert production is not None and production.lineage["dataset_commit"] == main.id
    assert [b for b in store.branches() if b.startswith("ingest-")] == []  # merged run branches are deleted
    # what each stage stored is the bytes it uploaded to lakeFS: the dataset at ingest, the model at register
    (run,) = CostLedger(ledger_path(load_config(config).path("."))).read()
    stored = {s.stage: s.store_bytes for s in run.stages}
    assert stored["ingest"] > 0 and stored["register"] > stored["ingest"] and stored["finetune"] == 0, stored
    assert SECRET not in caplog.text and KEY not in caplog.text
    # the lakeFS keys never show: no log line, artifact, flow-run parameter, stored object, commit or local file
    seen = prefect_records() + store_records(store) + workdir_records(config.parent / "work")
    assert sum(1 for where, _ in seen if where == "log") > 20 and len(seen) > 100  # the scan really read the run
    assert leaks(seen, {KEY, SECRET}) == []


def test_failed_contract_keeps_the_run_branch_on_lakefs(lakefs_config, prefect_harness):
    from flows.ingest import ingest_flow

    config = lakefs_config(pii={"entities": ["PHONE", "CARD"]})
    with pytest.raises(ContractError, match="kept for inspection"):
        ingest_flow(str(config), [str(REPO / "examples/batch1/*")])
    store = open_store(load_config(config))
    (branch,) = [b for b in store.branches() if b.startswith("ingest-")]
    assert read_turns(store, branch).num_rows > 0
    assert read_turns(store, "main").num_rows == 0
