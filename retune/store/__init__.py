"""Open the configured versioned store (local disk or lakeFS) behind one protocol."""

from retune.config import Config
from retune.errors import StoreError
from retune.store.base import MAIN, Commit, MergeConflict, Store
from retune.store.local import LocalStore

__all__ = ["MAIN", "Commit", "LocalStore", "MergeConflict", "Store", "open_store"]


def open_store(cfg: Config) -> Store:
    """The store named by cfg.store.backend."""
    if cfg.store.backend == "local":
        return LocalStore(cfg.path(cfg.store.path))
    raise StoreError("the lakeFS backend is not available yet in this version; use store.backend: local")
