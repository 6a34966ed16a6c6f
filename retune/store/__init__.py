"""Open the configured versioned store (local disk or lakeFS) behind one protocol."""

from retune.config import Config
from retune.store.base import MAIN, Commit, MergeConflict, Store
from retune.store.local import LocalStore

__all__ = ["MAIN", "Commit", "LocalStore", "MergeConflict", "Store", "open_store"]


def open_store(cfg: Config) -> Store:
    """The store named by cfg.store.backend; lakeFS keys come from the environment variables it names."""
    if cfg.store.backend == "lakefs":
        from retune.store.lakefs import LakeFSStore  # the SDK costs ~0.5 s to import: only when used

        return LakeFSStore.from_config(cfg.store.lakefs)
    return LocalStore(cfg.path(cfg.store.path))
