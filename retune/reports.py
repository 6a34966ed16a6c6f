"""Reports (drift, contracts) kept in the store on their own `reports` branch, addressed by the data commit."""

from __future__ import annotations

from pathlib import Path

from retune.store.base import MAIN, Commit, Store

REPORTS_BRANCH = "reports"


def store_report(store: Store, files: list[Path], prefix: str, message: str, metadata: dict[str, str]) -> Commit:
    """Commit report files under `prefix` on the reports branch (created from main the first time)."""
    if REPORTS_BRANCH not in store.branches():
        store.create_branch(REPORTS_BRANCH, MAIN)
    for path in files:
        store.put_file(REPORTS_BRANCH, f"{prefix.rstrip('/')}/{path.name}", path)
    return store.commit(REPORTS_BRANCH, message, metadata)
