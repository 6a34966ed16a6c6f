"""Task: run a Great Expectations contract over Parquet parts; a failed contract stops the run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from retune import contracts, lineage
from retune.config import Config
from retune.errors import ContractError
from retune.report import markdown_table
from retune.store import open_store
from tasks.version import StagedRun, contract_report_path, put_tree

if TYPE_CHECKING:
    import pandas as pd


@task(name="validate", cache_policy=NO_CACHE)
def validate(cfg: Config, data: list[Path] | StagedRun, suite: str) -> contracts.ContractResult:
    """Check local parts, or (the audit of write-audit-publish) a run's commit as the store holds it.

    The audit also builds the validation's Data Docs and commits them on the run branch, so they are merged
    with the data, or stay on the kept branch when the contract fails.
    """
    logger = get_run_logger()
    if isinstance(data, StagedRun):
        store = open_store(cfg)
        df = store.read_parquet(data.commit, data.prefix).to_pandas()
        history = lineage.run_history(store, data.commit)
        docs_dir = cfg.path("runs") / data.run_id / "contracts" / suite
        result = contracts.validate(
            df, suite, Path(cfg.contracts.dir), history=history, docs_dir=docs_dir, run_name=data.run_id
        )
        where = contract_report_path(data.run_id, suite)
        put_tree(store, data.branch, docs_dir, where)
        verdict = "passed" if result.success else "failed"
        report_commit = store.commit(
            data.branch, f"contract {suite} {verdict}: Data Docs ({data.run_id})",
            {"contract.suite": suite, "contract.version": result.version, "contract.result": result.summary()},
        )
        stored = f"`{where}index.html` on `{data.branch}` at `{report_commit.id[:12]}`"
    else:
        df = _frame(data)
        # Next to the run's parts: <run dir>/contracts/<suite>; `version` can bring them into the store.
        docs_dir = (Path(data[0]).parent.parent if data else cfg.path("reports")) / "contracts" / suite
        result = contracts.validate(df, suite, Path(cfg.contracts.dir), docs_dir=docs_dir)
        stored = "local only (files not yet in the store)"

    table = markdown_table(
        ["expectation", "column", "result", "observed"],
        [(o.expectation, o.column or "-", "pass" if o.success else "**FAIL**", o.observed) for o in result.outcomes],
    )
    key = f"contract-{suite.replace('_', '-')}"
    create_markdown_artifact(
        f"## Contract `{suite}` v{result.version}: {'passed' if result.success else 'FAILED'}\n\n"
        f"{result.rows} rows. Data Docs: {stored}.\n\n{table}",
        key=key,
        description=result.summary(),
    )
    index = (docs_dir / "index.html").resolve()
    create_link_artifact(
        index.as_uri(), link_text=f"Data Docs: {suite} ({'passed' if result.success else 'FAILED'})",
        key=f"{key}-docs", description=f"Data Docs of contract {suite}; in the store: {stored}",
    )
    logger.info("%s (Data Docs: %s)", result.summary(), index)
    if not result.success and isinstance(data, StagedRun):
        raise ContractError(
            f"data contract failed: {result.summary()}; nothing published, branch {data.branch} kept for inspection"
        )
    contracts.require(result)
    return result


def _frame(parts: list[Path]) -> pd.DataFrame:
    tables = [pq.read_table(p) for p in parts]
    import pandas as pd  # loads only when a contract runs

    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame()
