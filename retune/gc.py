"""Garbage collection of stale run branches: lakeFS has no branch TTL, and failed runs keep theirs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from retune.errors import RetuneError
from retune.store.base import Store

RUN_BRANCH_PREFIXES = ("ingest-",)
_DURATION = re.compile(r"^(\d+)([dhm])$")


@dataclass
class StaleBranch:
    name: str
    head: str
    age: timedelta


def parse_age(text: str) -> timedelta:
    """'14d', '12h' or '30m'."""
    match = _DURATION.match(text.strip())
    if not match:
        raise RetuneError(f"not a duration: {text!r} (use e.g. 14d, 12h or 30m)")
    n, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def stale_run_branches(store: Store, older_than: timedelta, now: datetime | None = None) -> list[StaleBranch]:
    """Run branches whose head commit is older than `older_than`; main and model branches never are."""
    now = now or datetime.now(UTC)
    stale = []
    for name in store.branches():
        if not name.startswith(RUN_BRANCH_PREFIXES):
            continue
        head = store.get_commit(name)
        age = now - datetime.fromisoformat(head.created_at)
        if age > older_than:
            stale.append(StaleBranch(name, head.id, age))
    return stale


def collect(store: Store, older_than: timedelta, *, dry_run: bool = False) -> list[StaleBranch]:
    stale = stale_run_branches(store, older_than)
    if not dry_run:
        for branch in stale:
            store.delete_branch(branch.name)
    return stale
