"""Remote sources against a real S3 API (moto's server): globs, compression, streaming hashes, errors."""

import gzip
import hashlib
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retune.config import SourceConfig
from retune.errors import SourceError
from retune.sources import READ_BLOCK, ingest, resolve_sources

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s3_server import s3_client, s3_server  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def s3():
    """One S3 server for the module: batch1 uploaded as s3://landing/exports/ (chat gzip-compressed)."""
    with s3_server() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="landing")
        chat = gzip.compress((EXAMPLES / "batch1/chat.jsonl").read_bytes())
        client.put_object(Bucket="landing", Key="exports/chat.jsonl.gz", Body=chat)
        client.put_object(Bucket="landing", Key="exports/pairs.csv", Body=(EXAMPLES / "batch1/pairs.csv").read_bytes())
        client.put_object(Bucket="landing", Key="other/notes.txt", Body=b"not a source")
        yield endpoint, {"exports/chat.jsonl.gz": chat}


def _options(endpoint: str) -> dict:
    return {"s3": {"endpoint_url": endpoint}}


def _rows(parts: list[Path]) -> pa.Table:
    table = pa.concat_tables([pq.read_table(p) for p in parts]).drop_columns(["source"])
    return table.sort_by([("content_hash", "ascending"), ("turn", "ascending")])


def test_s3_glob_ingests_like_the_local_files(s3, tmp_path):
    endpoint, uploaded = s3
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    (local_dir / "chat.jsonl.gz").write_bytes(uploaded["exports/chat.jsonl.gz"])
    (local_dir / "pairs.csv").write_bytes((EXAMPLES / "batch1/pairs.csv").read_bytes())

    remote = ingest([SourceConfig(path="s3://landing/exports/*")], tmp_path / "r", tmp_path / "q",
                    storage_options=_options(endpoint))
    local = ingest([SourceConfig(path=str(local_dir / "*"))], tmp_path / "l", tmp_path / "q")

    assert [s.source for s in remote.sources] == ["s3://landing/exports/chat.jsonl.gz", "s3://landing/exports/pairs.csv"]
    assert remote.reconciles() and remote.kept > 0
    assert [(s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons) for s in remote.sources] == [
        (s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons) for s in local.sources]
    assert _rows(remote.parts).equals(_rows(local.parts))
    # the file's sha256 (lineage, ledger) is computed from the bytes streamed, compressed as stored
    assert remote.sources[0].sha256 == hashlib.sha256(uploaded["exports/chat.jsonl.gz"]).hexdigest()
    assert [s.sha256 for s in remote.sources] == [s.sha256 for s in local.sources]
    assert {r["source"] for r in pq.read_table(remote.quarantine_path).to_pylist()} == {
        "s3://landing/exports/chat.jsonl.gz", "s3://landing/exports/pairs.csv"}


def test_a_prefix_lists_only_source_files_and_options_per_source_win(s3, tmp_path):
    endpoint, _ = s3
    files = resolve_sources([SourceConfig(path="s3://landing/", storage_options={"endpoint_url": endpoint})],
                            {"s3": {"endpoint_url": "http://127.0.0.1:9"}})  # the source's own options win
    assert [f.location for f in files] == ["s3://landing/exports/chat.jsonl.gz", "s3://landing/exports/pairs.csv"]
    assert all(f.size > 0 and f.fingerprint.startswith(f"{f.size}:") for f in files)


def test_a_big_remote_file_is_read_in_ranged_blocks(s3, tmp_path):
    endpoint, _ = s3
    line = b'{"messages": [{"role": "user", "content": "hi %d"}, {"role": "assistant", "content": "hello"}]}\n'
    body = b"".join(line.replace(b"%d", str(i).encode()) for i in range(4 * READ_BLOCK // len(line)))
    s3_client(endpoint).put_object(Bucket="landing", Key="big/chat.jsonl", Body=body)
    from s3fs.core import S3File

    reads: list[int] = []
    original = S3File._fetch_range

    def counting(self, start, end):
        reads.append(end - start)
        return original(self, start, end)

    S3File._fetch_range = counting
    try:
        report = ingest([SourceConfig(path="s3://landing/big/chat.jsonl")], tmp_path / "o", tmp_path / "q",
                        storage_options=_options(endpoint))
    finally:
        S3File._fetch_range = original
    assert report.kept == report.records_in > 0
    assert report.sources[0].sha256 == hashlib.sha256(body).hexdigest()
    # ranged reads of a block (plus read-ahead), never the whole object at once
    assert len(reads) >= 2 and max(reads) <= 2 * READ_BLOCK < len(body) and sum(reads) == len(body), reads


def test_remote_mistakes_are_one_line_source_errors(s3, tmp_path):
    endpoint, _ = s3
    opts = _options(endpoint)
    with pytest.raises(SourceError, match="matched no files"):
        resolve_sources([SourceConfig(path="s3://landing/exports/*.parquet")], opts)
    with pytest.raises(SourceError, match="not found"):
        resolve_sources([SourceConfig(path="s3://landing/exports/missing.jsonl")], opts)
    with pytest.raises(SourceError, match="not found: s3://no-such-bucket"):
        resolve_sources([SourceConfig(path="s3://no-such-bucket/chat.jsonl")], opts)


@pytest.fixture(scope="module")
def lakefs_landing():
    """A stateful fake lakeFS (tests/contract/fake_lakefs.py) whose branch main holds batch1 under exports/."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
    from fake_lakefs import FakeLakeFS

    from retune.store.lakefs import LakeFSStore

    with FakeLakeFS("AKIAFAKE", "fake-secret") as fake:
        store = LakeFSStore(fake.url, "landing", "AKIAFAKE", "fake-secret", storage_namespace="local://landing")
        for name in ("chat.jsonl", "pairs.csv"):
            store.put_file("main", f"exports/{name}", EXAMPLES / "batch1" / name)
        store.commit("main", "a day of exports")
        yield fake


def test_lakefs_branch_glob_ingests_like_the_local_files(lakefs_landing, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", "AKIAFAKE")  # credentials from the environment only
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", "fake-secret")
    options = {"lakefs": {"host": lakefs_landing.url}}
    remote = ingest([SourceConfig(path="lakefs://landing/main/exports/*")], tmp_path / "r", tmp_path / "q",
                    storage_options=options)
    local = ingest([SourceConfig(path=str(EXAMPLES / "batch1/*"))], tmp_path / "l", tmp_path / "q")
    assert [s.source for s in remote.sources] == ["lakefs://landing/main/exports/chat.jsonl",
                                                   "lakefs://landing/main/exports/pairs.csv"]
    assert [(s.records_in, s.kept, s.quarantined, s.duplicates, s.sha256) for s in remote.sources] == [
        (s.records_in, s.kept, s.quarantined, s.duplicates, s.sha256) for s in local.sources]
    assert _rows(remote.parts).equals(_rows(local.parts))
    assert lakefs_landing.unhandled == []

    monkeypatch.delenv("LAKEFS_SECRET_ACCESS_KEY")
    with pytest.raises(SourceError, match="cannot list lakefs://landing/main/exports/"):
        resolve_sources([SourceConfig(path="lakefs://landing/main/exports/*")], options)
