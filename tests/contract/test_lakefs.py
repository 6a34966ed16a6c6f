"""lakeFS-specific behaviour of the store: retries, refusals, secrets kept out of logs, pagination, the registry."""

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_lakefs import FakeLakeFS

import retune.store.lakefs as lakefs_store
from retune.config import Config
from retune.errors import ConfigError, StoreError
from retune.registry import Registry
from retune.store import MAIN, MergeConflict, open_store
from retune.store.lakefs import LakeFSStore

KEY, SECRET = "AKIAJUSTFORTESTS7Q", "s3cr3t-value-that-must-never-be-logged"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLakeFS]:
    with FakeLakeFS(KEY, SECRET) as server:
        yield server
    assert server.unhandled == [], server.unhandled


@pytest.fixture(autouse=True)
def _no_leftover_faults(fake: FakeLakeFS) -> Iterator[None]:
    yield
    fake.clear_faults()


def open_lakefs(fake: FakeLakeFS, tmp_path: Path, **kwargs) -> LakeFSStore:
    options = {"storage_namespace": f"local://{tmp_path}", "backoff_seconds": 0.01, **kwargs}
    name = f"repo-{abs(hash(str(tmp_path))) % 10**12}"
    return LakeFSStore(fake.url, name, KEY, SECRET, **options)


@pytest.fixture
def store(fake: FakeLakeFS, tmp_path: Path) -> LakeFSStore:
    return open_lakefs(fake, tmp_path)


def calls_since(fake: FakeLakeFS, start: int) -> list[tuple[str, str, int]]:
    return fake.requests[start:]


def test_transient_503s_are_retried_then_succeed(store: LakeFSStore, fake: FakeLakeFS, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="retune.store.lakefs")
    store.create_branch("br")
    start = len(fake.requests)
    fake.fail_next(2)
    store.put_bytes("br", "x.txt", b"hello")
    statuses = [status for _, _, status in calls_since(fake, start)]
    assert statuses == [503, 503, 201]
    assert store.get_bytes("br", "x.txt") == b"hello"
    assert caplog.text.count("failed (HTTP 503)") == 2


def test_dropped_connections_are_retried(store: LakeFSStore, fake: FakeLakeFS, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="retune.store.lakefs")
    store.put_bytes(MAIN, "x.txt", b"data")
    start = len(fake.requests)
    fake.drop_next(2)
    assert store.get_bytes(MAIN, "x.txt") == b"data"
    assert [s for _, _, s in calls_since(fake, start)] == [0, 0, 200]  # 0: dropped without an answer
    assert "try 3 of 5" in caplog.text  # our backoff did it, not urllib3's silent retries


def test_persistent_503_gives_a_clear_error_in_bounded_time(fake: FakeLakeFS, tmp_path: Path) -> None:
    store = open_lakefs(fake, tmp_path, max_attempts=4, backoff_seconds=0.05)
    fake.fail_next(100)
    start, began = len(fake.requests), time.monotonic()
    with pytest.raises(StoreError, match=r"failed to list branches after 4 attempts \(HTTP 503\)"):
        store.branches()
    elapsed = time.monotonic() - began
    assert len(calls_since(fake, start)) == 4
    assert 0.05 + 0.1 + 0.2 <= elapsed / 0.8 and elapsed < 2.0  # 3 backoff waits (±20% jitter), no more


def test_a_retry_after_a_lost_answer_does_not_fail_work_that_landed(store: LakeFSStore, fake: FakeLakeFS) -> None:
    """A connection dropped after lakeFS did the work: the retry sees 409/400/404 and must not report failure."""
    fake.drop_after_next(1)
    head = store.create_branch("br")
    assert store.resolve("br") == head
    store.put_bytes("br", "x", b"1")
    fake.drop_after_next(1)
    commit = store.commit("br", "one", {"k": "v"})
    assert commit.message == "one" and store.resolve("br") == commit.id and len(store.log("br")) == 2
    fake.drop_after_next(1)
    merged = store.merge("br", MAIN, message="publish")
    assert store.get_commit(MAIN) == merged and merged.parents[1] == commit.id
    fake.drop_after_next(1)
    assert store.tag("v1", MAIN) == merged.id
    fake.drop_after_next(1)
    store.delete_branch("br")
    assert store.branches() == [MAIN]
    with pytest.raises(StoreError, match="nothing to commit"):  # a plain empty commit is still refused
        store.commit(MAIN, "empty")


def test_client_errors_are_not_retried(store: LakeFSStore, fake: FakeLakeFS) -> None:
    start = len(fake.requests)
    with pytest.raises(StoreError, match="unknown branch 'nope'"):
        store.put_bytes("nope", "x", b"1")
    assert [s for _, _, s in calls_since(fake, start)] == [404]
    fake.fail_next(1, status=400)
    start = len(fake.requests)
    with pytest.raises(StoreError, match="HTTP 400"):
        store.branches()
    assert len(calls_since(fake, start)) == 1
    assert store.branches() == [MAIN]


def test_refused_credentials_are_a_clear_error(fake: FakeLakeFS, tmp_path: Path) -> None:
    open_lakefs(fake, tmp_path)  # the repository exists
    start = len(fake.requests)
    with pytest.raises(StoreError, match="refused the credentials") as caught:
        LakeFSStore(fake.url, f"repo-{abs(hash(str(tmp_path))) % 10**12}", KEY, "wrong-secret", backoff_seconds=0)
    assert [s for _, _, s in calls_since(fake, start)] == [401]  # a 401 is final
    assert "wrong-secret" not in str(caught.value)


def test_credentials_never_reach_logs_or_error_text(fake: FakeLakeFS, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and the SDK included
    secrets = [KEY, SECRET, base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()]
    texts: list[str] = []

    def keep(exc: BaseException) -> None:
        texts.extend([str(exc), repr(exc), str(exc.__cause__), str(exc.__context__)])

    store = open_lakefs(fake, tmp_path, max_attempts=2)
    for name in ("urllib3", "lakefs_sdk"):  # the SDK turns these down to WARNING when a client is made
        caplog.set_level(logging.DEBUG, logger=name)
    texts.append(repr(store))
    store.put_bytes(MAIN, "f", b"base")
    store.commit(MAIN, "base")
    store.create_branch("br")
    store.put_bytes("br", "f", b"theirs")
    store.commit("br", "theirs")
    store.put_bytes(MAIN, "f", b"ours")
    store.commit(MAIN, "ours")
    failing = [
        lambda: store.merge("br", MAIN),
        lambda: store.get_bytes(MAIN, "missing"),
        lambda: store.commit("br", "nothing"),
        lambda: store.resolve("no-such-ref"),
        lambda: (fake.fail_next(2), store.branches()),
        lambda: LakeFSStore(fake.url, store.repository, KEY, SECRET + "x"),
        lambda: LakeFSStore(fake.url, store.repository, KEY + "x", SECRET),
    ]
    for action in failing:
        with pytest.raises(StoreError) as caught:
            action()
        keep(caught.value)
    cfg = Config.model_validate({"store": {"backend": "lakefs", "lakefs": {"endpoint": fake.url}}})
    with pytest.raises(ConfigError, match="LAKEFS_SECRET_ACCESS_KEY") as caught:
        LakeFSStore.from_config(cfg.store.lakefs, {"LAKEFS_ACCESS_KEY_ID": KEY})
    keep(caught.value)
    loggers = {r.name for r in caplog.records}
    assert {"urllib3.connectionpool", "lakefs_sdk.rest"} <= loggers  # their debug lines really were captured
    assert "refused the credentials" in " ".join(texts) and "after 2 attempts" in " ".join(texts)
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret not in text for text in texts), secret


def test_open_store_reads_keys_from_the_environment(fake: FakeLakeFS, tmp_path: Path, monkeypatch) -> None:
    settings = {"endpoint": fake.url, "repository": "from-config", "storage_namespace": f"local://{tmp_path}"}
    cfg = Config.model_validate({"workdir": str(tmp_path), "store": {"backend": "lakefs", "lakefs": settings}})
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", KEY)
    monkeypatch.delenv("LAKEFS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ConfigError, match="LAKEFS_SECRET_ACCESS_KEY is not set") as caught:
        open_store(cfg)
    assert KEY not in str(caught.value)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET)
    store = open_store(cfg)
    assert isinstance(store, LakeFSStore) and store.repository == "from-config"
    assert store.branches() == [MAIN]  # created with its initial commit at the storage namespace


def test_a_missing_repository_is_not_created_without_a_storage_namespace(fake: FakeLakeFS) -> None:
    with pytest.raises(StoreError, match="repository 'not-there' does not exist"):
        LakeFSStore(fake.url, "not-there", KEY, SECRET)


def test_merge_always_makes_a_merge_commit(store: LakeFSStore) -> None:
    """lakeFS's answer to the contract's fast-forward case: a merge commit, same content."""
    store.create_branch("br")
    store.put_bytes("br", "x", b"1")
    c = store.commit("br", "x")
    main_before = store.resolve(MAIN)
    merged = store.merge("br", MAIN)
    assert merged.parents == (main_before, c.id) and merged.message == "Merge 'br' into 'main'"
    assert merged.metadata == {}  # lakeFS's own .lakefs.merge.strategy key is not user metadata
    assert store.list_objects(MAIN) == ["x"] and store.diff(c.id, MAIN) == {"added": [], "changed": [], "removed": []}
    assert store.merge("br", MAIN) == merged  # already merged: the head of main, unchanged
    with pytest.raises(StoreError, match="reserved"):
        store.commit("br", "bad", {".lakefs.merge.strategy": "x"})


def test_conflicts_and_dirty_targets_are_refused(store: LakeFSStore) -> None:
    store.put_bytes(MAIN, "f", b"base")
    store.commit(MAIN, "base")
    store.create_branch("br")
    store.put_bytes("br", "f", b"theirs")
    store.commit("br", "theirs")
    store.put_bytes(MAIN, "f", b"ours")
    with pytest.raises(StoreError, match="uncommitted changes"):
        store.merge("br", MAIN)
    ours = store.commit(MAIN, "ours")
    with pytest.raises(MergeConflict, match="changed differently"):
        store.merge("br", MAIN)
    assert store.resolve(MAIN) == ours.id


def test_hex_names_are_refused_because_lakefs_reads_them_as_commit_ids(store: LakeFSStore) -> None:
    store.put_bytes(MAIN, "x", b"1")
    cid = store.commit(MAIN, "one").id
    with pytest.raises(StoreError, match="unknown ref"):
        store.resolve(cid[:1])  # lakeFS itself would take it as a commit-id prefix
    assert store.resolve(cid[:8]) == cid
    for bad in (cid[:1], "cafe", "b"):
        with pytest.raises(StoreError, match="all-hex"):
            store.create_branch(bad)
        with pytest.raises(StoreError, match="all-hex"):
            store.tag(bad, MAIN)


def test_listings_follow_pagination(tmp_path: Path) -> None:
    with FakeLakeFS(KEY, SECRET, max_page=3) as small:
        store = open_lakefs(small, tmp_path)
        for i in range(8):
            store.put_bytes(MAIN, f"p/{i}.txt", str(i).encode())
            store.commit(MAIN, f"c{i}")
            store.tag(f"t{i}", MAIN)
            store.create_branch(f"run-{i}")
        first = store.log(MAIN, limit=100)[-1].id
        start = len(small.requests)
        assert store.list_objects(MAIN, "p/") == [f"p/{i}.txt" for i in range(8)]
        assert sum(1 for _, path, _ in small.requests[start:] if path.endswith("/objects/ls")) == 3
        assert len(store.log(MAIN, limit=100)) == 9 and len(store.log(MAIN, limit=5)) == 5
        assert len(store.tags()) == 8 and len(store.branches()) == 9
        assert store.diff(first, MAIN)["added"] == [f"p/{i}.txt" for i in range(8)]
        assert small.unhandled == []


def test_get_file_reads_in_ranges(store: LakeFSStore, fake: FakeLakeFS, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lakefs_store, "_CHUNK", 1000)
    data = bytes(range(256)) * 10  # 2560 bytes: three ranged reads
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store.put_file(MAIN, "m/big.bin", source)
    store.put_bytes(MAIN, "m/empty", b"")
    start = len(fake.requests)
    out = store.get_file(MAIN, "m/big.bin", tmp_path / "down" / "big.bin")
    assert out.read_bytes() == data
    assert [s for _, _, s in calls_since(fake, start)] == [206, 206, 206]
    assert store.get_file(MAIN, "m/empty", tmp_path / "down" / "empty").read_bytes() == b""
    with pytest.raises(StoreError, match="no object 'm/none'"):
        store.get_file(MAIN, "m/none", tmp_path / "down" / "none")
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["big.bin", "empty"]  # no temp files left


def test_registry_on_lakefs(store: LakeFSStore, tmp_path: Path) -> None:
    def model(root: Path, weights: bytes) -> Path:
        (root / "onnx").mkdir(parents=True)
        (root / "adapter_model.safetensors").write_bytes(weights)
        (root / "onnx" / "model.onnx").write_bytes(weights[::-1])
        return root

    registry = Registry(store)
    v1 = registry.register(model(tmp_path / "m1", b"w1"), {"perplexity": 12.5}, {"dataset_commit": "a" * 64})
    v2 = registry.register(model(tmp_path / "m2", b"w2"), {"perplexity": 11.0}, {"dataset_commit": "br" * 64})
    assert [v.version for v in registry.versions()] == ["v1", "v2"]
    assert store.get_commit(v2.commit).metadata["lineage.dataset_commit"] == "br" * 64
    registry.promote("v1", "first", by="alice")
    registry.promote("v2", "better", by="bob")
    assert registry.production().version == "v2"
    assert registry.rollback(reason="bad answers", by="carol").version == "v1"
    assert [h["action"] for h in registry.history()] == ["promote", "promote", "rollback"]
    assert sorted(store.branches()) == [MAIN, "models"]  # scratch branches are gone
    out = registry.download("v1", tmp_path / "out")
    assert (out / "adapter_model.safetensors").read_bytes() == b"w1"
    stored = json.loads(store.get_bytes("models", "models/registry.json"))
    assert stored["production"] == "v1" and v1.commit == registry.get("v1").commit
