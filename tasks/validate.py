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
from retune.report import markdown_table


@task(name="validate", cache_policy=NO_CACHE)
def validate(cfg: Config, parts: list[Path], suite: str) -> contracts.ContractResult:
    df = _frame(parts)
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
    contracts.require(result)
    return result


def _frame(parts: list[Path]) -> pd.DataFrame:
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame()
