"""Task: run a Great Expectations contract over Parquet parts; a failed contract stops the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune import contracts
from retune.config import Config
from retune.errors import ContractError
from retune.report import markdown_table
from retune.store import open_store
from tasks.version import StagedRun


@task(name="validate", cache_policy=NO_CACHE)
def validate(cfg: Config, data: list[Path] | StagedRun, suite: str) -> contracts.ContractResult:
    """Check local parts, or (the audit of write-audit-publish) a run's commit as the store holds it."""
    df = _frame(data) if isinstance(data, list) else _staged_frame(cfg, data)
    result = contracts.validate(df, suite, Path(cfg.contracts.dir))
    table = markdown_table(
        ["expectation", "column", "result", "observed"],
        [(o.expectation, o.column or "-", "pass" if o.success else "**FAIL**", o.observed) for o in result.outcomes],
    )
    create_markdown_artifact(
        f"## Contract `{suite}`: {'passed' if result.success else 'FAILED'}\n\n{result.rows} rows\n\n{table}",
        key=f"contract-{suite.replace('_', '-')}",
        description=result.summary(),
    )
    get_run_logger().info(result.summary())
    if not result.success and isinstance(data, StagedRun):
        raise ContractError(
            f"data contract failed: {result.summary()}; nothing published, branch {data.branch} kept for inspection"
        )
    contracts.require(result)
    return result


def _staged_frame(cfg: Config, staged: StagedRun) -> pd.DataFrame:
    return open_store(cfg).read_parquet(staged.commit, staged.prefix).to_pandas()


def _frame(parts: list[Path]) -> pd.DataFrame:
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame()
