"""`retune gc`: only run branches older than the limit go; main and the model registry's branch never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from retune.errors import RetuneError
from retune.gc import collect, parse_age, stale_run_branches
from retune.store.local import LocalStore


def test_parse_age():
    assert parse_age("14d") == timedelta(days=14)
    assert parse_age("12h") == timedelta(hours=12)
    with pytest.raises(RetuneError, match="not a duration"):
        parse_age("two weeks")


def test_only_old_run_branches_are_collected(tmp_path):
    store = LocalStore(tmp_path / "store")
    for name in ("ingest-old", "ingest-new", "models", "experiment"):
        store.create_branch(name, "main")
        store.put_bytes(name, f"{name}.txt", b"x")
        store.commit(name, name)
    later = datetime.now(UTC) + timedelta(days=20)
    assert {b.name for b in stale_run_branches(store, timedelta(days=14), now=later)} == {"ingest-old", "ingest-new"}
    assert stale_run_branches(store, timedelta(days=14)) == []
    assert [b.name for b in collect(store, timedelta(0), dry_run=True)] == ["ingest-new", "ingest-old"]
    assert "ingest-old" in store.branches()  # a dry run deletes nothing
    collect(store, timedelta(0))
    assert sorted(store.branches()) == ["experiment", "main", "models"]
