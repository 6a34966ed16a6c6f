"""Ingest fanned out over a Prefect ProcessPoolTaskRunner or a Dask cluster (ingest.processes: 2, files cut into
pieces) lands what one process lands."""

from __future__ import annotations

import importlib.util
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dag_config import REPO, tiny_config, write_config

from retune import sources
from retune.config import SourceConfig, load_config
from retune.errors import ConfigError

pytestmark = pytest.mark.slow  # worker processes each import Prefect: about a minute with the harness, 2 busy cores


def _ingest(config: str, run_dir):
    from prefect import flow

    from tasks.ingest import ingest, plan_ingest, read_partitions

    @flow(name="ingest-stage")
    def stage():
        cfg = load_config(config)
        plan = plan_ingest(cfg, [SourceConfig(path=str(REPO / f"examples/{b}/*")) for b in ("batch1", "batch2")])
        partitions = read_partitions(cfg, plan, run_dir)
        return ingest(cfg, plan, run_dir, partitions), partitions, plan

    return stage()


def _rows(parts) -> list[dict]:
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pylist()  # in order: the same order too


def _counts(report) -> list[tuple]:
    return [(s.source, s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons, s.sha256) for s in report.sources]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, prefect_harness):
    tmp = tmp_path_factory.mktemp("one")
    config = write_config(tmp / "retune.yaml", tiny_config(tmp / "work", ingest={"processes": 1}))
    report, partitions, _ = _ingest(str(config), tmp / "run")
    assert partitions is None
    return report


def _in_processes(tmp_path, monkeypatch, runner: str):
    monkeypatch.setattr(sources, "MIN_PIECE_BYTES", 1)  # the examples are small: cut their JSONL files anyway
    config = write_config(tmp_path / "retune.yaml",
                          tiny_config(tmp_path / "work", ingest={"processes": 2, "runner": runner}))
    report, partitions, plan = _ingest(str(config), tmp_path / "run")
    assert len(partitions) >= 2 and any(u.span for g in plan.partitions for u in g)  # really cut, really parallel
    return report


def test_two_processes_land_the_same_rows_and_counts(one_process, tmp_path, monkeypatch):
    two = _in_processes(tmp_path, monkeypatch, "prefect")
    assert _counts(two) == _counts(one_process)
    assert two.reconciles() and two.duplicates > 0 and _rows(two.parts) == _rows(one_process.parts)


@pytest.mark.skipif(importlib.util.find_spec("prefect_dask") is None,
                    reason="the dask extra is not installed (pip install 'retune[dask]')")
def test_a_dask_cluster_lands_the_same_rows_and_counts(one_process, tmp_path, monkeypatch):
    two = _in_processes(tmp_path, monkeypatch, "dask")
    assert _counts(two) == _counts(one_process) and _rows(two.parts) == _rows(one_process.parts)


def test_dask_runner_without_the_extra_is_a_config_error(tmp_path, monkeypatch):
    from tasks.ingest import task_runner

    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # as if not installed
    cfg = load_config(write_config(tmp_path / "retune.yaml",
                                   tiny_config(tmp_path / "work", ingest={"processes": 2, "runner": "dask"})))
    with pytest.raises(ConfigError, match=r"pip install 'retune\[dask\]'"):
        task_runner(cfg)
