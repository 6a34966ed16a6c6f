"""lakeFS (the fake, real HTTP) failing in the middle of `retune ingest`: short bursts of 503s and dropped
connections on every write step are retried with backoff and the run publishes once; an outage of the merge
longer than the retries gives one clear line, main unchanged, and the run branch kept with its commit; the rerun
then lands every record exactly once."""

from __future__ import annotations

import sys

import pytest
from faults import BATCH1, REPO, assert_main_holds_exactly, clean_ingest, publishes_on_main, retune, retune_env

sys.path.insert(0, str(REPO / "tests" / "contract"))
from dag_config import tiny_config, write_config  # noqa: E402
from fake_lakefs import FakeLakeFS  # noqa: E402

from retune.config import load_config  # noqa: E402
from retune.datasets import read_turns  # noqa: E402
from retune.store import open_store  # noqa: E402

pytestmark = pytest.mark.slow
KEY, SECRET = "AKIAFAKEFAULTTEST", "fake-fault-secret"
ATTEMPTS = 4


@pytest.fixture
def lakefs_run(tmp_path, prefect_api, monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET)
    env = retune_env(tmp_path, PREFECT_API_URL=prefect_api, LAKEFS_ACCESS_KEY_ID=KEY,
                     LAKEFS_SECRET_ACCESS_KEY=SECRET)  # fmt: skip
    with FakeLakeFS(KEY, SECRET) as fake:
        lakefs = {"endpoint": fake.url, "repository": "retune", "storage_namespace": "local://retune",
                  "max_attempts": ATTEMPTS, "backoff_seconds": 0.05}  # fmt: skip
        config = write_config(tmp_path / "retune.yaml",
                              tiny_config(tmp_path / "work", store={"backend": "lakefs", "lakefs": lakefs}))
        store = open_store(load_config(config))
        yield fake, store, ["ingest", "--config", str(config), "--source", BATCH1], env
        assert fake.unhandled == []


def _faults_served(fake: FakeLakeFS) -> int:
    return sum(1 for _, _, status in fake.requests if status in (0, 503))


def test_short_outages_on_every_write_step_are_retried_and_the_run_publishes_once(lakefs_run, tmp_path):
    fake, store, args, env = lakefs_run
    branch, objects = r"/branches/ingest-[^/]+$", r"/branches/ingest-[^/]+/objects$"
    fake.fail_matching(r"/branches$", 2, 503, method="POST")  # create the run branch
    fake.fail_matching(objects, 2, "drop", method="POST")  # upload parts: connection reset, nothing stored
    fake.fail_matching(r"/branches/ingest-[^/]+/commits$", 1, "drop-after")  # committed, the answer lost
    fake.fail_matching(r"/merge/main$", ATTEMPTS - 1, 503)  # publish: fails all but the last try
    fake.fail_matching(branch, 1, "drop-after", method="DELETE")  # branch deleted, the answer lost
    before = _faults_served(fake)

    run = retune(args, env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _faults_served(fake) - before == 2 + 2 + 1 + (ATTEMPTS - 1) + 1, "every injected fault was met"
    assert "failed (HTTP 503); try 2 of" in run.stderr and "(ProtocolError); try 2 of" in run.stderr
    assert_main_holds_exactly(store, clean_ingest(BATCH1, tmp_path / "clean"))
    assert publishes_on_main(store) == 1
    assert [b for b in store.branches() if b.startswith("ingest-")] == []


@pytest.mark.parametrize("fault", ["drop"])  # a server gone: connections fail (503s: the short test)
def test_a_long_merge_outage_fails_in_one_line_and_leaves_main_unchanged(fault, lakefs_run, tmp_path):
    fake, store, args, env = lakefs_run
    main_before = store.resolve("main")
    fake.outage(3600, fault, path=r"/merge/main$")

    failed = retune(args, env)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: lakeFS at http://127.0.0.1:") and f"after {ATTEMPTS} attempts" in last, last
    assert "merge 'ingest-" in last and "is the server up?" in last
    assert store.resolve("main") == main_before  # no half-merged state: main did not move
    # the run branch is kept, committed, holding the whole run, for inspection or `retune gc`
    (branch,) = [b for b in store.branches() if b.startswith("ingest-")]
    expected = clean_ingest(BATCH1, tmp_path / "clean")
    assert read_turns(store, branch).num_rows == expected.turns
    run_commit = next(c for c in store.log(branch) if c.message.startswith("ingest "))
    assert run_commit.metadata["kept"] == str(expected.kept)

    fake.clear_faults()  # the server is back: the rerun publishes everything, once
    rerun = retune(args, env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_main_holds_exactly(store, expected)
    assert publishes_on_main(store) == 1
