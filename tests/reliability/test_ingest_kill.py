"""kill -9 of `retune ingest` before the run commit, between the run commit and the merge, and right after the merge
into main, on the local store and on lakeFS (the fake): `main` never shows part of a run, and the reruns land every
record exactly once. Also: SIGKILL of processes committing and merging into one local store, at random moments,
never leaves it unreadable."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
from faults import (
    BATCH1,
    REPO,
    assert_main_holds_exactly,
    clean_ingest,
    kill_when,
    publishes_on_main,
    retune,
    retune_env,
)

sys.path.insert(0, str(REPO / "tests" / "contract"))
from dag_config import tiny_config, write_config  # noqa: E402
from fake_lakefs import FakeLakeFS  # noqa: E402

from retune.config import load_config  # noqa: E402
from retune.datasets import read_turns  # noqa: E402
from retune.store import LocalStore, open_store  # noqa: E402

KEY, SECRET = "AKIAFAKEKILLTEST", "fake-kill-secret"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "lakefs"])
def test_ingest_killed_at_each_store_step_lands_everything_once(backend, tmp_path, prefect_api, monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET)
    expected = clean_ingest(BATCH1, tmp_path / "clean")
    env = retune_env(tmp_path, PREFECT_API_URL=prefect_api, LAKEFS_ACCESS_KEY_ID=KEY,
                     LAKEFS_SECRET_ACCESS_KEY=SECRET)  # fmt: skip
    with FakeLakeFS(KEY, SECRET) as fake:
        store_cfg = {"backend": "local"}
        if backend == "lakefs":
            store_cfg = {"backend": "lakefs", "lakefs": {"endpoint": fake.url, "repository": "retune",
                                                         "storage_namespace": "local://retune"}}  # fmt: skip
        config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work", store=store_cfg))
        args = ["ingest", "--config", str(config), "--source", BATCH1]
        store = open_store(load_config(config))
        empty_main = store.resolve("main")

        def run_branches() -> dict[str, str]:
            return {b: store.resolve(b) for b in store.branches() if b.startswith("ingest-")}

        # 1. killed once its run branch exists, before the run commit: main is untouched
        kill_when(args, env, lambda: bool(run_branches()))
        assert store.resolve("main") == empty_main

        # 2. killed between the run commit and the merge (the audit runs in between): main is untouched
        stale = set(run_branches())
        kill_when(args, env, lambda: any(h != empty_main for b, h in run_branches().items() if b not in stale))
        assert store.resolve("main") == empty_main
        assert read_turns(store, "main").num_rows == 0

        # 3. killed the moment main moves (the merge): main shows the whole run, never part of it
        kill_when(args, env, lambda: store.resolve("main") != empty_main)
        assert_main_holds_exactly(store, expected)

        # 4. the rerun finds everything already there: nothing is published twice
        rerun = retune(args, env)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "nothing new to publish" in rerun.stdout
        assert_main_holds_exactly(store, expected)
        assert publishes_on_main(store) == 1
        # the killed runs' branches stay behind for `retune gc` (lakeFS has no branch TTL); none reached main
        assert len(run_branches()) >= 2
        assert fake.unhandled == []


_COMMITTER = """
import sys, pathlib
from retune.store import LocalStore
store = LocalStore(pathlib.Path(sys.argv[1]))
me = sys.argv[2]
print("ready", flush=True)
n = 0
while True:
    n += 1
    branch = f"w-{me}-{n}"
    store.create_branch(branch)
    store.put_bytes(branch, f"data/{me}/{n}.txt", (f"{me} {n} " * 2000).encode())
    store.commit(branch, f"{me} {n}", {"n": str(n)})
    store.merge(branch, "main", message=f"merge {branch}", metadata={"n": str(n)})
    store.delete_branch(branch)
"""


def _check_readable(store: LocalStore) -> int:
    """Every branch's history and every object it reaches can be read; return the objects on main."""
    for branch in store.branches():
        for commit in store.log(branch, limit=10_000):
            for path in store.list_objects(commit.id):
                store.get_bytes(commit.id, path)
    return len(store.list_objects("main"))


def test_sigkill_while_committing_and_merging_never_corrupts_the_local_store(tmp_path):
    root = tmp_path / "store"
    LocalStore(root)
    rng = random.Random(8)
    objects_on_main = 0
    for round_ in range(5):
        workers = [
            subprocess.Popen([sys.executable, "-c", _COMMITTER, str(root), f"p{round_}{i}"], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
            for i in range(2)
        ]
        for w in workers:
            assert w.stdout.readline() == "ready\n"  # imports done, however loaded the machine is
        time.sleep(0.05 + rng.random() * 0.5)  # then a kill somewhere in the loop
        for w in workers:
            w.send_signal(signal.SIGKILL)
            w.wait(timeout=10)
        store = LocalStore(root)  # a fresh process's view: nothing cached
        now = _check_readable(store)
        assert now >= objects_on_main, "main lost merged objects"
        objects_on_main = now
        for path in store.list_objects("main"):  # each merged object is exactly what was written
            me, n = path.split("/")[1], path.split("/")[2].removesuffix(".txt")
            assert store.get_bytes("main", path) == (f"{me} {n} " * 2000).encode()
    assert objects_on_main > 0, "the writers never merged anything"
    # a branch left between create_branch and delete_branch: kills landed in the middle of the work
    assert any(b.startswith("w-") for b in LocalStore(root).branches())
