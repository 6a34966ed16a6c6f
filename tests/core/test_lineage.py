"""Lineage: an ingest run's commit records its sources (counts, sha256); a model leads back to them and back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from retune.errors import StoreError
from retune.lineage import (
    file_sha256,
    ingest_metadata,
    model_lineage,
    models_trained_on,
    run_history,
)
from retune.registry import Registry
from retune.sources import IngestReport, SourceCounts
from retune.store.local import LocalStore


def ingest(store: LocalStore, run_id: str, sources: dict[Path, tuple[int, int, int]]) -> tuple[str, str]:
    """One write-audit-publish run as tasks/version.py does it; returns (run commit, main after merge)."""
    report = IngestReport(
        sources=[
            SourceCounts(str(path), records_in=k + q + d, kept=k, quarantined=q, duplicates=d)
            for path, (k, q, d) in sources.items()
        ],
        turns=0, parts=[], quarantine_path=None,
    )
    hashes = {str(path): file_sha256(path) for path in sources}
    url = f"http://127.0.0.1:4200/runs/flow-run/{run_id}"
    metadata = ingest_metadata(report, run_id, f"flow-{run_id}", url, hashes)
    branch = f"ingest-{run_id}"
    store.create_branch(branch, "main")
    store.put_bytes(branch, f"data/turns/{run_id}/part-00000.parquet", run_id.encode())
    run_commit = store.commit(branch, f"ingest ({run_id})", metadata).id
    store.put_bytes(branch, f"reports/contracts/{run_id}/anonymized_turns/index.html", b"<html/>")
    store.commit(branch, "contract report")
    merged = store.merge(branch, "main", message=f"publish {branch}", metadata={"run_commit": run_commit})
    store.delete_branch(branch)
    return run_commit, merged.id


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, size in (("a.jsonl", 10), ("b.csv", 2_500_000)):  # b spans several 1 MiB chunks
        out[name] = tmp_path / name
        out[name].write_bytes(bytes(i % 251 for i in range(size)))
    return out


def test_file_sha256_streams_the_file_and_tolerates_a_missing_one(files: dict[str, Path], tmp_path: Path) -> None:
    for path in files.values():
        assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(tmp_path / "gone.jsonl") == ""


def test_model_leads_to_dataset_runs_and_source_hashes_and_back(files: dict[str, Path], tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    a, b = files["a.jsonl"], files["b.csv"]
    run1, main1 = ingest(store, "run1", {a: (8, 1, 1), b: (100, 0, 0)})
    run2, main2 = ingest(store, "run2", {a: (5, 0, 5)})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"w")
    registry = Registry(store)
    v1 = registry.register(model_dir, {"perplexity": 3.0}, {"dataset_commit": main1})
    v2 = registry.register(model_dir, {"perplexity": 2.0}, {"dataset_commit": main2})
    registry.promote(v2.version, "better")

    lineage = model_lineage(store, "v2")
    assert lineage.production and lineage.dataset.id == main2
    assert [r.commit for r in lineage.ingest_runs] == [run2, run1]  # newest first, both runs' data are in main2
    newest = lineage.ingest_runs[0]
    assert newest.run_id == "run2" and newest.flow_run_url.endswith("/flow-run/run2")
    assert [(s.path, s.sha256, s.kept, s.duplicates) for s in newest.sources] == [
        (str(a), hashlib.sha256(a.read_bytes()).hexdigest(), 5, 5)
    ]
    first = lineage.ingest_runs[1]
    assert {s.path: s.sha256 for s in first.sources} == {str(p): file_sha256(p) for p in (a, b)}

    old = model_lineage(store, "v1")
    assert not old.production and [r.run_id for r in old.ingest_runs] == ["run1"]

    assert [v.version for v in models_trained_on(store, main1)] == [v1.version]
    assert [v.version for v in models_trained_on(store, main2[:12])] == [v2.version]
    assert models_trained_on(store, run1) == []  # a run commit is not a dataset anything was trained on
    with pytest.raises(StoreError, match="unknown dataset commit"):
        models_trained_on(store, "0123456789ab")
    with pytest.raises(StoreError, match="unknown model version 'v9'"):
        model_lineage(store, "v9")


def test_run_history_compares_each_source_with_its_latest_earlier_run(files: dict[str, Path], tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    a, b = files["a.jsonl"], files["b.csv"]
    ingest(store, "run1", {a: (50, 0, 0), b: (100, 0, 0)})
    ingest(store, "run2", {a: (30, 5, 10)})
    run3, _ = ingest(store, "run3", {a: (4, 10, 0), b: (10, 0, 0), files["a.jsonl"].with_name("new.jsonl"): (7, 0, 0)})
    history = run_history(store, run3)
    # parsed records = kept + duplicates: a source re-read with old records is not a broken one
    assert history.current == {str(a): 4, str(b): 10, str(tmp_path / "new.jsonl"): 7}
    assert history.previous == {str(a): 40, str(b): 100}  # a from run2, b from run1; new.jsonl never seen
    with pytest.raises(StoreError, match="not an ingest run's commit"):
        run_history(store, store.resolve("main"))
