"""Partitioned ingest equals one process, near-duplicates, the source ledger, quarantine retention."""

import os
import shutil
import stat
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retune.config import SourceConfig
from retune.dedup import SourceLedger, near_duplicates
from retune.sources import (
    ingest,
    ingest_files,
    ingest_partition,
    merge_partitions,
    partitions,
    purge_quarantine,
    resolve_sources,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _rows(parts: list[Path]) -> list[dict]:
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    return table.sort_by([("source", "ascending"), ("source_offset", "ascending"), ("turn", "ascending")]).to_pylist()


def _counts(report) -> list[tuple]:
    return [(s.source, s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons) for s in report.sources]


@pytest.fixture(scope="module")
def four_files(tmp_path_factory) -> Path:
    """batch1 and batch2 side by side (batch2 repeats some of batch1: cross-file duplicates)."""
    root = tmp_path_factory.mktemp("sources")
    for batch in ("batch1", "batch2"):
        for f in (EXAMPLES / batch).iterdir():
            shutil.copy(f, root / f"{batch}-{f.name}")
    return root


def test_two_processes_give_the_same_rows_and_counts_as_one(four_files, tmp_path):
    files = resolve_sources([SourceConfig(path=str(four_files / "*"))])
    first = ingest_files(files[:1], tmp_path / "first", tmp_path / "q", batch_size=1)
    known = {pq.read_table(first.parts[0])["content_hash"][0].as_py()}  # one record already in the store
    one = ingest_files(files, tmp_path / "one", tmp_path / "q", known_hashes=known, batch_size=40)

    groups = partitions(files, 2)
    assert len(groups) >= 2 and [f for g in groups for f in g] == files  # source order kept
    with ProcessPoolExecutor(2) as pool:
        futures = [pool.submit(ingest_partition, group, tmp_path / "work", tmp_path / "q", i, batch_size=40)
                   for i, group in enumerate(groups)]
        results = [f.result() for f in futures]
    two = merge_partitions(results, tmp_path / "two", tmp_path / "q", known_hashes=known)

    assert _counts(two) == _counts(one) and two.reconciles()
    assert two.duplicates >= 9  # store duplicate, in-file and cross-file duplicates all counted
    assert two.turns == one.turns and _rows(two.parts) == _rows(one.parts)
    assert pq.read_table(two.quarantine_path).num_rows == two.quarantined
    assert not list((tmp_path / "q").glob("*-p0000*.parquet"))  # partition quarantine files merged away


def _near_copy_source(tmp_path: Path) -> Path:
    """30 distinct conversations, then 10 of them again with one word added: near, not exact, duplicates."""
    import json
    import random

    rng = random.Random(0)
    words = [f"w{n}" for n in range(5000)]

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(40))

    lines = [{"conversation_id": f"c{i}", "messages": [{"role": "user", "content": text()},
                                                         {"role": "assistant", "content": text()}]} for i in range(30)]
    copies = [{"conversation_id": f"c{i}-again", "messages": [
        {"role": "user", "content": lines[i]["messages"][0]["content"] + " today"}, lines[i]["messages"][1]]}
        for i in range(10)]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines + copies) + "\n")
    return path


@pytest.mark.parametrize("drop", [False, True])
def test_near_duplicates_are_reported_or_dropped_and_counts_reconcile(tmp_path, drop):
    path = _near_copy_source(tmp_path)
    report = ingest([SourceConfig(path=str(path))], tmp_path / "o", tmp_path / "q")
    assert report.kept == 40 and report.duplicates == 0
    found = near_duplicates(report, 0.8, drop=drop)
    assert found.total == report.near_duplicates == report.sources[0].near_duplicates == 10
    assert sorted(found.examples) == sorted((f"c{i}-again", f"c{i}") for i in range(10))
    assert report.reconciles()
    kept_rows = sum(pq.read_metadata(p).num_rows for p in report.parts)
    if drop:
        assert report.kept == 30 and report.duplicates == 10
        assert kept_rows == report.turns == 60
        remaining = {r["conversation_id"] for p in report.parts for r in pq.read_table(p).to_pylist()}
        assert remaining == {f"c{i}" for i in range(30)}  # the first occurrence wins
    else:
        assert report.kept == 40 and kept_rows == 80


def test_ledger_skips_files_already_ingested_and_rereads_changed_ones(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in (EXAMPLES / "batch1").iterdir():
        shutil.copy(f, src / f.name)
    ledger = SourceLedger(tmp_path / "ledger.json", "local:store")
    files = resolve_sources([SourceConfig(path=str(src / "*"))])
    to_read, skipped = ledger.split(files)
    assert to_read == files and skipped == []
    first = ingest_files(to_read, tmp_path / "o1", tmp_path / "q")
    assert ledger.record(first, "c1") == 2

    # unchanged: skipped without a read; reported with their hash, counts still reconcile
    to_read, skipped = ledger.split(resolve_sources([SourceConfig(path=str(src / "*"))]))
    again = ingest_files(to_read, tmp_path / "o2", tmp_path / "q", skipped=skipped)
    assert again.skipped_files == [str(src / "chat.jsonl"), str(src / "pairs.csv")]
    assert again.records_in == 0 and again.reconciles() and again.parts == []
    assert [s.sha256 for s in again.sources] == [s.sha256 for s in first.sources]

    # touched (new mtime) or copied under another name, same bytes: still skipped, by hash
    os.utime(src / "chat.jsonl", (time.time() + 60, time.time() + 60))
    shutil.copy(src / "pairs.csv", src / "pairs-copy.csv")
    # changed content: read again
    with (src / "pairs.csv").open("a") as f:
        f.write("c-new,,How do I reset my password?,Use the link on the login page.,email\n")
    to_read, skipped = ledger.split(resolve_sources([SourceConfig(path=str(src / "*"))]))
    assert [f.name for f in to_read] == ["pairs.csv"]
    assert sorted(Path(s.source).name for s in skipped) == ["chat.jsonl", "pairs-copy.csv"]
    # another store, or this one recreated (the commit of the entries is gone): nothing is known there
    assert SourceLedger(tmp_path / "ledger.json", "local:other").split(files)[1] == []
    assert ledger.split(files, commit_exists=lambda commit: commit != "c1")[1] == []


def test_quarantine_retention_deletes_only_old_files(tmp_path):
    report = ingest([SourceConfig(path=str(EXAMPLES / "batch1/*"))], tmp_path / "o", tmp_path / "q")
    kept = report.quarantine_path
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    old = kept.parent / "quarantine-20200101T000000000000Z.parquet"
    shutil.copy(kept, old)
    os.utime(old, (time.time() - 31 * 86400,) * 2)
    assert purge_quarantine(kept.parent, 30) == [old]
    assert kept.exists() and not old.exists()
    assert purge_quarantine(tmp_path / "nothing-here", 30) == []


def test_retune_gc_enforces_quarantine_retention(tmp_path):
    from typer.testing import CliRunner

    from retune.cli import app

    quarantine = tmp_path / "work" / "quarantine"
    quarantine.mkdir(parents=True)
    old = quarantine / "quarantine-20200101T000000000000Z.parquet"
    old.write_bytes(b"raw records")
    os.utime(old, (time.time() - 8 * 86400,) * 2)
    config = tmp_path / "retune.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\ningest: {{quarantine_retention_days: 7}}\n")
    dry = CliRunner().invoke(app, ["gc", "--config", str(config), "--dry-run"])
    assert dry.exit_code == 0 and "1 quarantine file(s) older than 7 days would delete" in dry.output and old.exists()
    done = CliRunner().invoke(app, ["gc", "--config", str(config)])
    assert done.exit_code == 0 and "1 quarantine file(s) older than 7 days deleted" in done.output
    assert not old.exists()


def test_a_bare_yaml_off_means_off():
    import yaml

    from retune.config import IngestConfig

    assert IngestConfig.model_validate(yaml.safe_load("near_duplicates: off")).near_duplicates == "off"
