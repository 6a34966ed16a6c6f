"""Behaviour every store backend must share, written against the Store protocol only."""

import hashlib
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retune.config import Config
from retune.errors import StoreError
from retune.store import MAIN, LocalStore, MergeConflict, Store, open_store

# One line per backend: a factory taking an empty directory it may use, returning a fresh store there.
# Calling it twice on the same directory must open the same store (the multi-process test relies on it).
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "local": lambda root: LocalStore(root / "store"),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Store:
    return BACKENDS[backend](tmp_path)


def test_fresh_store_has_main_with_an_empty_initial_commit(store: Store) -> None:
    assert store.branches() == [MAIN]
    assert store.list_objects(MAIN) == []
    [initial] = store.log(MAIN)
    assert initial.parents == () and initial.id == store.resolve(MAIN)
    assert isinstance(store, Store)


def test_branch_isolation_until_merged(store: Store) -> None:
    head = store.create_branch("run-1")
    assert head == store.resolve(MAIN)
    store.put_bytes("run-1", "turns/a.txt", b"hello")
    assert store.list_objects("run-1") == ["turns/a.txt"]  # staged writes are visible on their branch
    assert store.list_objects(MAIN) == []
    store.commit("run-1", "add a")
    assert store.list_objects(MAIN) == []
    with pytest.raises(StoreError):
        store.get_bytes(MAIN, "turns/a.txt")
    store.merge("run-1", MAIN)
    assert store.get_bytes(MAIN, "turns/a.txt") == b"hello"


def test_commits_are_immutable_and_content_addressed(store: Store, tmp_path: Path) -> None:
    store.create_branch("b")
    store.put_bytes("b", "x", b"1")
    first = store.commit("b", "one", {"k": "v"})
    assert len(first.id) == 64 and all(c in "0123456789abcdef" for c in first.id)
    store.put_bytes("b", "x", b"2")
    second = store.commit("b", "two")
    assert second.parents == (first.id,)
    assert store.get_bytes(first.id, "x") == b"1"  # reading an old commit gives the old content
    assert store.get_commit(first.id) == first
    assert store.resolve(first.id[:12]) == first.id  # an id prefix is enough
    if isinstance(store, LocalStore):  # the backend's own guarantee: id = sha256 of the commit record
        record = next((store.root / "commits").glob(f"{first.id[:2]}/{first.id[2:]}.json"))
        assert hashlib.sha256(record.read_bytes()).hexdigest() == first.id


def test_nothing_staged_cannot_be_committed(store: Store) -> None:
    store.create_branch("b")
    with pytest.raises(StoreError, match="nothing to commit"):
        store.commit("b", "empty")
    store.put_bytes("b", "x", b"1")
    store.commit("b", "one")
    store.put_bytes("b", "x", b"1")  # same content again: no change
    with pytest.raises(StoreError, match="nothing to commit"):
        store.commit("b", "same")


def test_metadata_round_trip_and_log_order(store: Store) -> None:
    store.create_branch("b")
    meta = {"flow_run_id": "abc-123", "rows": "1200", "contract": "anonymized_turns: 12/12 expectations passed"}
    store.put_bytes("b", "x", b"1")
    c1 = store.commit("b", "first", meta)
    store.put_bytes("b", "y", b"2")
    c2 = store.commit("b", "second")
    assert store.get_commit("b").metadata == {}
    assert store.get_commit(c1.id).metadata == meta
    assert store.get_commit(c1.id).message == "first"
    assert c1.created_at.endswith("+00:00")
    assert [c.id for c in store.log("b")][:2] == [c2.id, c1.id]
    assert len(store.log("b", limit=1)) == 1
    with pytest.raises(StoreError, match="strings"):
        store.commit("b", "bad", {"rows": 3})  # type: ignore[dict-item]


def test_read_at_commit_tag_and_branch(store: Store, tmp_path: Path) -> None:
    store.create_branch("b")
    table = pa.table({"conversation_id": ["c1", "c2"], "turn": pa.array([0, 1], pa.int32())})
    local = tmp_path / "part-0.parquet"
    pq.write_table(table, local)
    store.put_file("b", "turns/part-0.parquet", local)
    store.put_bytes("b", "turns/README", b"not parquet")
    c1 = store.commit("b", "part 0")
    assert store.tag("dataset-v1", "b") == c1.id
    assert store.tags() == {"dataset-v1": c1.id}
    with pytest.raises(StoreError, match="exists"):
        store.tag("dataset-v1", MAIN)

    pq.write_table(table.slice(0, 1), local)
    store.put_file("b", "turns/part-1.parquet", local)
    store.commit("b", "part 1")
    assert store.read_parquet("dataset-v1", "turns/").num_rows == 2
    assert store.read_parquet(c1.id, "turns/").equals(table)
    assert store.read_parquet("b", "turns/").num_rows == 3
    with pytest.raises(StoreError, match="no Parquet"):
        store.read_parquet("b", "missing/")

    out = store.get_file("dataset-v1", "turns/part-0.parquet", tmp_path / "down" / "p.parquet")
    assert pq.read_table(out).equals(table)


def test_delete_object_and_diff(store: Store) -> None:
    store.create_branch("b")
    for name in ("keep", "change", "drop"):
        store.put_bytes("b", name, name.encode())
    before = store.commit("b", "three")
    store.delete_object("b", "drop")
    store.put_bytes("b", "change", b"changed")
    store.put_bytes("b", "new", b"new")
    assert store.list_objects("b") == ["change", "keep", "new"]
    after = store.commit("b", "edit")
    assert store.diff(before.id, after.id) == {"added": ["new"], "changed": ["change"], "removed": ["drop"]}
    assert store.diff(MAIN, before.id)["added"] == ["change", "drop", "keep"]
    with pytest.raises(StoreError):
        store.delete_object("b", "drop")  # already gone


def test_merge_fast_forward(store: Store) -> None:
    store.create_branch("b")
    store.put_bytes("b", "x", b"1")
    c = store.commit("b", "x")
    merged = store.merge("b", MAIN)
    assert merged.id == c.id and store.resolve(MAIN) == c.id
    assert store.merge("b", MAIN).id == c.id  # merging again changes nothing


def test_merge_with_metadata_makes_a_merge_commit(store: Store) -> None:
    store.create_branch("b")
    store.put_bytes("b", "x", b"1")
    c = store.commit("b", "x")
    main_before = store.resolve(MAIN)
    merged = store.merge("b", MAIN, message="publish", metadata={"contract": "passed"})
    assert merged.parents == (main_before, c.id)
    assert store.get_commit(MAIN) == merged and merged.metadata == {"contract": "passed"}


def test_merge_three_way(store: Store) -> None:
    store.put_bytes(MAIN, "shared", b"base")
    store.put_bytes(MAIN, "ours-edits", b"base")
    store.put_bytes(MAIN, "theirs-deletes", b"base")
    store.commit(MAIN, "base")
    store.create_branch("feature")
    store.put_bytes("feature", "theirs-new", b"t")
    store.delete_object("feature", "theirs-deletes")
    store.commit("feature", "feature work")
    store.put_bytes(MAIN, "ours-edits", b"ours")
    store.put_bytes(MAIN, "ours-new", b"o")
    ours = store.commit(MAIN, "main work")

    merged = store.merge("feature", MAIN)
    assert merged.parents == (ours.id, store.resolve("feature"))
    assert store.list_objects(MAIN) == ["ours-edits", "ours-new", "shared", "theirs-new"]
    assert store.get_bytes(MAIN, "ours-edits") == b"ours"


def test_merge_conflict_is_refused_without_changes(store: Store) -> None:
    store.put_bytes(MAIN, "f", b"base")
    store.commit(MAIN, "base")
    store.create_branch("b")
    store.put_bytes("b", "f", b"theirs")
    store.commit("b", "theirs")
    store.put_bytes(MAIN, "f", b"ours")
    ours = store.commit(MAIN, "ours")
    with pytest.raises(MergeConflict, match="'f'|f"):
        store.merge("b", MAIN)
    assert store.resolve(MAIN) == ours.id
    assert store.get_bytes(MAIN, "f") == b"ours"
    assert issubclass(MergeConflict, StoreError)


def test_merge_into_a_branch_with_uncommitted_changes_is_refused(store: Store) -> None:
    store.create_branch("b")
    store.put_bytes("b", "x", b"1")
    store.commit("b", "x")
    store.put_bytes(MAIN, "dirty", b"d")
    with pytest.raises(StoreError, match="uncommitted"):
        store.merge("b", MAIN)


def test_branch_management_and_unknown_refs(store: Store) -> None:
    store.create_branch("b")
    with pytest.raises(StoreError, match="exists"):
        store.create_branch("b")
    with pytest.raises(StoreError):
        store.create_branch("c", "no-such-ref")
    with pytest.raises(StoreError):
        store.create_branch("bad/name")
    store.put_bytes("b", "x", b"1")
    store.delete_branch("b")
    assert store.branches() == [MAIN]
    with pytest.raises(StoreError):
        store.delete_branch(MAIN)
    with pytest.raises(StoreError):
        store.delete_branch("b")
    for ref in ("b", "no-such-branch", "0" * 64, "../../etc"):
        with pytest.raises(StoreError, match="unknown"):
            store.resolve(ref)
        with pytest.raises(StoreError):
            store.list_objects(ref)
    with pytest.raises(StoreError):
        store.put_bytes("no-such-branch", "x", b"1")
    with pytest.raises(StoreError):
        store.put_bytes(MAIN, "../escape", b"1")
    store.create_branch("b")  # a deleted branch's name can be reused, without its old staged changes
    assert store.list_objects("b") == []


def _publish_rounds(backend: str, root: str, worker: int, rounds: int) -> None:
    store = BACKENDS[backend](Path(root))
    for i in range(rounds):
        branch = f"w{worker}-r{i}"
        store.create_branch(branch)
        store.put_bytes(branch, f"data/{worker}/{i}.txt", f"{worker}:{i}".encode())
        store.commit(branch, f"worker {worker} round {i}", {"worker": str(worker)})
        store.merge(branch, MAIN)
        store.delete_branch(branch)


def test_two_processes_committing_and_merging_at_once_both_land(backend: str, tmp_path: Path) -> None:
    BACKENDS[backend](tmp_path)  # create it once, before the race
    ctx = multiprocessing.get_context("fork")
    rounds = 10
    procs = [ctx.Process(target=_publish_rounds, args=(backend, str(tmp_path), w, rounds)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = BACKENDS[backend](tmp_path)
    expected = sorted(f"data/{w}/{i}.txt" for w in (0, 1) for i in range(rounds))
    assert store.list_objects(MAIN, "data/") == expected
    assert store.get_bytes(MAIN, "data/1/9.txt") == b"1:9"
    workers = [c.metadata.get("worker") for c in store.log(MAIN, limit=100)]
    assert workers.count("0") == rounds and workers.count("1") == rounds
    assert store.branches() == [MAIN]


def test_open_store_from_config(tmp_path: Path) -> None:
    cfg = Config(workdir=str(tmp_path))
    store = open_store(cfg)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "store"
    with pytest.raises(StoreError, match="lakeFS backend is not available"):
        open_store(Config.model_validate({"workdir": str(tmp_path), "store": {"backend": "lakefs"}}))
