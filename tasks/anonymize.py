"""Task: replace personal data in every turn with consistent keyed pseudonyms."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from retune.config import Config


@task(name="anonymize", cache_policy=NO_CACHE)
def anonymize(cfg: Config, parts: list[Path], out_dir: Path) -> tuple[list[Path], Counter[str]]:
    from retune import pii  # compiled recognizers: loaded by the runs that have something to anonymize

    logger = get_run_logger()
    key, is_dev_key = pii.load_key(cfg.pii.key_env)
    if is_dev_key:
        logger.warning(
            "%s is not set: using the built-in development key; pseudonyms are not secret. "
            "Set it in production.", cfg.pii.key_env,
        )
    pseudonymizer = pii.Pseudonymizer(key)
    options = pii.PiiOptions.from_config(cfg.pii)
    out_dir.mkdir(parents=True, exist_ok=True)
    found: Counter[str] = Counter()
    written = []
    for part in parts:
        table, counts = pii.anonymize_table(pq.read_table(part), pseudonymizer, cfg.pii.entities, options=options)
        found.update(counts)
        out = out_dir / part.name
        pq.write_table(table, out)
        written.append(out)
    rows = [{"entity": e, "replaced": found.get(e, 0)} for e in cfg.pii.entities]
    create_table_artifact(rows, key="pii-found", description="Personal data replaced by pseudonyms, per type")
    logger.info("anonymized %d parts; replaced %s", len(written), dict(found) or "nothing")
    return written, found
