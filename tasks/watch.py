"""Task: announce files that landed since the last look, once per content, as `retune.data.arrived` events."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from retune.config import Config
from retune.sources import configured_storage_options
from retune.watch import LandedFile, SeenLedger, find_new_files

DATA_ARRIVED_EVENT = "retune.data.arrived"


@task(name="watch", cache_policy=NO_CACHE)
def watch(cfg: Config) -> list[LandedFile]:
    logger = get_run_logger()
    ledger = SeenLedger(cfg.path("watch/seen.json"))
    fingerprints: dict[str, tuple[str, str]] = {}
    new = find_new_files(cfg.watch.landing, cfg.watch.patterns, ledger.load(),
                         storage_options=configured_storage_options(cfg), known_fingerprints=ledger.fingerprints(),
                         fingerprints_out=fingerprints)
    if not new:
        ledger.add(set(), fingerprints)  # next look needs no re-hash of unchanged files
        logger.info("nothing new in %s", ", ".join(cfg.watch.landing) or "(no landing location configured)")
        return []
    emit_event(
        DATA_ARRIVED_EVENT,
        resource={"prefect.resource.id": f"retune.landing.{new[0].sha256[:16]}"},
        payload={"config": cfg.source, "files": [f.path for f in new], "sha256": [f.sha256 for f in new]},
    )
    # Recorded after the event: a crash in between announces the files again rather than never.
    ledger.add({f.sha256 for f in new}, fingerprints)
    create_table_artifact(
        [{"file": f.path, "bytes": f.size, "sha256": f.sha256[:16]} for f in new],
        key="landed-files", description=f"{len(new)} new file(s) announced",
    )
    logger.info("announced %d new file(s): %s", len(new), ", ".join(f.path for f in new))
    return new
