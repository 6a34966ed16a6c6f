"""Behaviour every store backend must share, written against the Store protocol only."""

import hashlib
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import lakefs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_lakefs import FakeLakeFS

from retune import datasets
from retune.config import Config
from retune.errors import ConfigError, StoreError
from retune.store import MAIN, LocalStore, MergeConflict, Store, open_store
from retune.store.lakefs import LakeFSStore

FAKE_KEY, FAKE_SECRET = "AKIAFAKECONTRACT", "fake-contract-secret-do-not-log"
REAL_ENV = ("RETUNE_TEST_LAKEFS_ENDPOINT", "RETUNE_TEST_LAKEFS_ACCESS_KEY_ID", "RETUNE_TEST_LAKEFS_SECRET_ACCESS_KEY")
_SESSION = uuid.uuid4().hex[:6]  # real lakeFS keeps repositories between runs: names must not repeat
_servers: dict[str, FakeLakeFS] = {}  # the running fake, set by the fixture (forked workers inherit it)
_created: list[tuple[str, str]] = []  # (backend, repository) made on a real lakeFS, deleted after the test


def _repository_for(root: Path) -> str:
    return f"retune-{_SESSION}-{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"


def _fake_lakefs(root: Path) -> LakeFSStore:
    return LakeFSStore(
        _servers["fake"].url,
        _repository_for(root),
        FAKE_KEY,
        FAKE_SECRET,
        storage_namespace=f"local://{root}/lakefs",
        backoff_seconds=0.01,
    )


def _real_lakefs(root: Path) -> LakeFSStore:
    endpoint, key, secret = (os.environ[name] for name in REAL_ENV)
    name = _repository_for(root)
    namespace = os.environ.get("RETUNE_TEST_LAKEFS_STORAGE_NAMESPACE", "local://retune-tests").rstrip("/")
    if ("lakefs-real", name) not in _created:
        _created.append(("lakefs-real", name))
    return LakeFSStore(endpoint, name, key, secret, storage_namespace=f"{namespace}/{name}", backoff_seconds=0.2)


# One line per backend: a factory taking an empty directory it may use, returning a fresh store there.
# Calling it twice on the same directory must open the same store (the multi-process test relies on it).
# Branch names in these tests have a letter outside a-f: lakeFS resolves an all-hex ref as a commit-id
# prefix before it looks for a branch, so a branch called "b" can read another commit (LakeFSStore refuses
# such names).
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "local": lambda root: LocalStore(root / "store"),
    "lakefs": _fake_lakefs,  # the real SDK against tests/contract/fake_lakefs.py on 127.0.0.1
    "lakefs-real": _real_lakefs,  # a real lakeFS server, only when RETUNE_TEST_LAKEFS_* are set
}


@pytest.fixture(scope="module")
def fake_lakefs_server() -> Iterator[FakeLakeFS]:
    with FakeLakeFS(FAKE_KEY, FAKE_SECRET) as fake:
        _servers["fake"] = fake
        yield fake
        _servers.pop("fake", None)
    assert fake.unhandled == [], f"the fake lakeFS was asked for what it does not implement: {fake.unhandled}"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "lakefs":
        request.getfixturevalue("fake_lakefs_server")
    if request.param == "lakefs-real":
        missing = [name for name in REAL_ENV if not os.environ.get(name)]
        if missing:
            pytest.skip(f"real lakeFS not configured: set {', '.join(missing)}")
    yield request.param
    while _created:  # drop the repositories this test made on a real server
        _, name = _created.pop()
        endpoint, key, secret = (os.environ[n] for n in REAL_ENV)
        lakefs.Repository(name, client=lakefs.Client(host=endpoint, username=key, password=secret)).delete()


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
    store.create_branch("br")
    store.put_bytes("br", "x", b"1")
    first = store.commit("br", "one", {"k": "v"})
    assert len(first.id) == 64 and all(c in "0123456789abcdef" for c in first.id)
    store.put_bytes("br", "x", b"2")
    second = store.commit("br", "two")
    assert second.parents == (first.id,)
    assert store.get_bytes(first.id, "x") == b"1"  # reading an old commit gives the old content
    assert store.get_commit(first.id) == first
    assert store.resolve(first.id[:12]) == first.id  # an id prefix is enough
    if isinstance(store, LocalStore):  # the backend's own guarantee: id = sha256 of the commit record
        record = next((store.root / "commits").glob(f"{first.id[:2]}/{first.id[2:]}.json"))
        assert hashlib.sha256(record.read_bytes()).hexdigest() == first.id


def test_nothing_staged_cannot_be_committed(store: Store) -> None:
    store.create_branch("br")
    with pytest.raises(StoreError, match="nothing to commit"):
        store.commit("br", "empty")
    store.put_bytes("br", "x", b"1")
    store.commit("br", "one")
    store.put_bytes("br", "x", b"1")  # same content again: no change
    with pytest.raises(StoreError, match="nothing to commit"):
        store.commit("br", "same")


def test_metadata_round_trip_and_log_order(store: Store) -> None:
    store.create_branch("br")
    meta = {"flow_run_id": "abc-123", "rows": "1200", "contract": "anonymized_turns: 12/12 expectations passed"}
    store.put_bytes("br", "x", b"1")
    c1 = store.commit("br", "first", meta)
    store.put_bytes("br", "y", b"2")
    c2 = store.commit("br", "second")
    assert store.get_commit("br").metadata == {}
    assert store.get_commit(c1.id).metadata == meta
    assert store.get_commit(c1.id).message == "first"
    assert c1.created_at.endswith("+00:00")
    assert [c.id for c in store.log("br")][:2] == [c2.id, c1.id]
    assert len(store.log("br", limit=1)) == 1
    with pytest.raises(StoreError, match="strings"):
        store.commit("br", "bad", {"rows": 3})  # type: ignore[dict-item]


def test_read_at_commit_tag_and_branch(store: Store, tmp_path: Path) -> None:
    store.create_branch("br")
    table = pa.table({"conversation_id": ["c1", "c2"], "turn": pa.array([0, 1], pa.int32())})
    local = tmp_path / "part-0.parquet"
    pq.write_table(table, local)
    store.put_file("br", "turns/part-0.parquet", local)
    store.put_bytes("br", "turns/README", b"not parquet")
    c1 = store.commit("br", "part 0")
    assert store.tag("dataset-v1", "br") == c1.id
    assert store.tags() == {"dataset-v1": c1.id}
    with pytest.raises(StoreError, match="exists"):
        store.tag("dataset-v1", MAIN)

    pq.write_table(table.slice(0, 1), local)
    store.put_file("br", "turns/part-1.parquet", local)
    store.commit("br", "part 1")
    assert store.read_parquet("dataset-v1", "turns/").num_rows == 2
    assert store.read_parquet(c1.id, "turns/").equals(table)
    assert store.read_parquet("br", "turns/").num_rows == 3
    with pytest.raises(StoreError, match="no Parquet"):
        store.read_parquet("br", "missing/")

    out = store.get_file("dataset-v1", "turns/part-0.parquet", tmp_path / "down" / "p.parquet")
    assert pq.read_table(out).equals(table)


def test_turns_are_counted_from_parquet_footers(store: Store, tmp_path: Path) -> None:
    assert datasets.count_turns(store, MAIN) == 0
    table = pa.table({"conversation_id": ["c1", "c2", "c3"], "turn": pa.array([0, 1, 0], pa.int32())})
    for n in (3, 1):
        pq.write_table(table.slice(0, n), tmp_path / f"p{n}.parquet")
        store.put_file(MAIN, datasets.turns_path(f"run{n}", f"p{n}.parquet"), tmp_path / f"p{n}.parquet")
    store.put_bytes(MAIN, datasets.TURNS_PREFIX + "README", b"not parquet")
    commit = store.commit(MAIN, "two parts")
    assert datasets.count_turns(store, commit.id) == datasets.count_turns(store, MAIN) == 4


def test_delete_object_and_diff(store: Store) -> None:
    store.create_branch("br")
    for name in ("keep", "change", "drop"):
        store.put_bytes("br", name, name.encode())
    before = store.commit("br", "three")
    store.delete_object("br", "drop")
    store.put_bytes("br", "change", b"changed")
    store.put_bytes("br", "new", b"new")
    assert store.list_objects("br") == ["change", "keep", "new"]
    after = store.commit("br", "edit")
    assert store.diff(before.id, after.id) == {"added": ["new"], "changed": ["change"], "removed": ["drop"]}
    assert store.diff(MAIN, before.id)["added"] == ["change", "drop", "keep"]
    with pytest.raises(StoreError):
        store.delete_object("br", "drop")  # already gone


def test_merge_fast_forward(store: Store, backend: str, request: pytest.FixtureRequest) -> None:
    if backend.startswith("lakefs"):
        # Not weakened silently: lakeFS has no fast-forward merge, it always writes a merge commit
        # (graveler.Merge); tests/contract/test_lakefs.py pins what it does instead. Lead informed.
        request.applymarker(pytest.mark.xfail(strict=True, reason="lakeFS never fast-forwards a merge"))
    store.create_branch("br")
    store.put_bytes("br", "x", b"1")
    c = store.commit("br", "x")
    merged = store.merge("br", MAIN)
    assert merged.id == c.id and store.resolve(MAIN) == c.id
    assert store.merge("br", MAIN).id == c.id  # merging again changes nothing


def test_merge_with_metadata_makes_a_merge_commit(store: Store) -> None:
    store.create_branch("br")
    store.put_bytes("br", "x", b"1")
    c = store.commit("br", "x")
    main_before = store.resolve(MAIN)
    merged = store.merge("br", MAIN, message="publish", metadata={"contract": "passed"})
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
    store.create_branch("br")
    store.put_bytes("br", "f", b"theirs")
    store.commit("br", "theirs")
    store.put_bytes(MAIN, "f", b"ours")
    ours = store.commit(MAIN, "ours")
    with pytest.raises(MergeConflict, match="'f'|f"):
        store.merge("br", MAIN)
    assert store.resolve(MAIN) == ours.id
    assert store.get_bytes(MAIN, "f") == b"ours"
    assert issubclass(MergeConflict, StoreError)


def test_merge_into_a_branch_with_uncommitted_changes_is_refused(store: Store) -> None:
    store.create_branch("br")
    store.put_bytes("br", "x", b"1")
    store.commit("br", "x")
    store.put_bytes(MAIN, "dirty", b"d")
    with pytest.raises(StoreError, match="uncommitted"):
        store.merge("br", MAIN)


def test_branch_management_and_unknown_refs(store: Store) -> None:
    store.create_branch("br")
    with pytest.raises(StoreError, match="exists"):
        store.create_branch("br")
    with pytest.raises(StoreError):
        store.create_branch("cx", "no-such-ref")
    with pytest.raises(StoreError):
        store.create_branch("bad/name")
    store.put_bytes("br", "x", b"1")
    store.delete_branch("br")
    assert store.branches() == [MAIN]
    with pytest.raises(StoreError):
        store.delete_branch(MAIN)
    with pytest.raises(StoreError):
        store.delete_branch("br")
    for ref in ("br", "no-such-branch", "0" * 64, "../../etc"):
        with pytest.raises(StoreError, match="unknown"):
            store.resolve(ref)
        with pytest.raises(StoreError):
            store.list_objects(ref)
    with pytest.raises(StoreError):
        store.put_bytes("no-such-branch", "x", b"1")
    with pytest.raises(StoreError):
        store.put_bytes(MAIN, "../escape", b"1")
    store.create_branch("br")  # a deleted branch's name can be reused, without its old staged changes
    assert store.list_objects("br") == []


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


def test_open_store_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config(workdir=str(tmp_path))
    store = open_store(cfg)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "store"
    monkeypatch.delenv("LAKEFS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(ConfigError, match="LAKEFS_ACCESS_KEY_ID"):  # lakeFS keys come from the environment
        open_store(Config.model_validate({"workdir": str(tmp_path), "store": {"backend": "lakefs"}}))
