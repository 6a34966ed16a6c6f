"""Ingest fanned out over a Prefect ProcessPoolTaskRunner (ingest.processes: 2) lands what one process lands."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dag_config import REPO, tiny_config, write_config

from retune.config import SourceConfig, load_config

pytestmark = pytest.mark.slow  # worker processes each import Prefect: about a minute with the harness, 2 busy cores


def _ingest(config: str, run_dir):
    from prefect import flow

    from tasks.ingest import ingest, plan_ingest, read_partitions

    @flow(name="ingest-stage")
    def stage():
        cfg = load_config(config)
        plan = plan_ingest(cfg, [SourceConfig(path=str(REPO / f"examples/{b}/*")) for b in ("batch1", "batch2")])
        partitions = read_partitions(cfg, plan, run_dir)
        return ingest(cfg, plan, run_dir, partitions), partitions

    return stage()


def _rows(parts) -> list[dict]:
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    return table.sort_by([("source", "ascending"), ("source_offset", "ascending"), ("turn", "ascending")]).to_pylist()


def test_two_processes_land_the_same_rows_and_counts(tmp_path, prefect_harness):
    results = {}
    for processes in (1, 2):
        config = write_config(tmp_path / f"retune-{processes}.yaml",
                              tiny_config(tmp_path / f"work-{processes}", ingest={"processes": processes}))
        results[processes] = _ingest(str(config), tmp_path / f"run-{processes}")
    (one, one_parts), (two, two_parts) = results[1], results[2]
    assert one_parts is None and len(two_parts) >= 2  # the second really ran in partitions
    assert [(s.source, s.records_in, s.kept, s.quarantined, s.duplicates) for s in two.sources] == [
        (s.source, s.records_in, s.kept, s.quarantined, s.duplicates) for s in one.sources]
    assert two.reconciles() and two.duplicates > 0 and _rows(two.parts) == _rows(one.parts)
