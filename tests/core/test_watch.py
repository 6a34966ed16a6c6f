"""Watch finds new files in local and S3 landing locations by content hash: each content announced once."""

import sys
from pathlib import Path

import pytest

from retune.watch import SeenLedger, find_new_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s3_server import s3_client, s3_server  # noqa: E402

PATTERNS = ["*.jsonl", "*.csv"]


def _look(landing: list[str], ledger: SeenLedger, options: dict | None = None) -> list[str]:
    """One watch look as the task does it: find, then record what was announced and the fingerprints."""
    fingerprints: dict = {}
    new = find_new_files(landing, PATTERNS, ledger.load(), storage_options=options or {},
                         known_fingerprints=ledger.fingerprints(), fingerprints_out=fingerprints)
    ledger.add({f.sha256 for f in new}, fingerprints)
    return [f.path for f in new]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as endpoint:
        s3_client(endpoint).create_bucket(Bucket="landing")
        yield endpoint


def test_s3_prefix_announces_each_content_once(s3, tmp_path):
    client, options = s3_client(s3), {"s3": {"endpoint_url": s3}}
    ledger = SeenLedger(tmp_path / "seen.json")
    landing = ["s3://landing/exports/"]
    assert _look(landing, ledger, options) == []  # an empty prefix is not an error

    client.put_object(Bucket="landing", Key="exports/day1.jsonl", Body=b'{"a": 1}\n')
    client.put_object(Bucket="landing", Key="exports/readme.txt", Body=b"not matched by the patterns")
    assert _look(landing, ledger, options) == ["s3://landing/exports/day1.jsonl"]
    assert _look(landing, ledger, options) == []
    # the same content under another name is not new; other content is, and its URL is an ingest source
    client.put_object(Bucket="landing", Key="exports/day1-copy.jsonl", Body=b'{"a": 1}\n')
    client.put_object(Bucket="landing", Key="exports/sub/day2.csv", Body=b"customer,agent\nhi,hello\n")
    assert _look(landing, ledger, options) == ["s3://landing/exports/sub/day2.csv"]
    # a glob works as a landing location too
    assert _look(["s3://landing/exports/*.jsonl"], ledger, options) == []


def test_unchanged_files_are_not_hashed_again(tmp_path, monkeypatch):
    import retune.watch as watch

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text('{"a": 1}\n')
    ledger = SeenLedger(tmp_path / "seen.json")
    assert _look([str(landing)], ledger) == [str((landing / "a.jsonl").resolve())]

    hashed: list[str] = []
    real = watch.file_sha256
    monkeypatch.setattr(watch, "file_sha256", lambda where, options: hashed.append(where) or real(where, options))
    (landing / "b.csv").write_text("customer,agent\nhi,hello\n")
    assert _look([str(landing)], ledger) == [str((landing / "b.csv").resolve())]
    assert hashed == [str((landing / "b.csv").resolve())]  # a.jsonl's fingerprint was unchanged
    (landing / "a.jsonl").write_text('{"a": 2}\n')  # new content under an old name: announced
    assert _look([str(landing)], ledger) == [str((landing / "a.jsonl").resolve())]


def test_lakefs_branch_announces_each_content_once(tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
    from fake_lakefs import FakeLakeFS

    from retune.store.lakefs import LakeFSStore

    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", "fake-secret")
    with FakeLakeFS("AKIAFAKE", "fake-secret") as fake:
        store = LakeFSStore(fake.url, "landing", "AKIAFAKE", "fake-secret", storage_namespace="local://landing")
        options, ledger = {"lakefs": {"host": fake.url}}, SeenLedger(tmp_path / "seen.json")
        landing = ["lakefs://landing/main/exports/"]
        store.put_bytes("main", "exports/day1.jsonl", b'{"a": 1}\n')
        store.commit("main", "day 1")
        assert _look(landing, ledger, options) == ["lakefs://landing/main/exports/day1.jsonl"]
        store.put_bytes("main", "exports/day1-again.jsonl", b'{"a": 1}\n')  # same bytes, another name
        store.commit("main", "day 1 again")
        assert _look(landing, ledger, options) == []
        assert fake.unhandled == []
