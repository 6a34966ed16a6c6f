"""Everything a run shows a person or a machine, as (where, text) pairs, for the leak scans: Prefect log lines,
artifacts and flow-run parameters; the store's reports, cards and commit messages/metadata; text files in the
workdir."""

from __future__ import annotations

import json
from pathlib import Path

from retune.store.base import Store

TEXT_SUFFIXES = (".md", ".json", ".html", ".jsonl", ".yaml", ".yml", ".txt", ".log", ".csv")


def prefect_records() -> list[tuple[str, str]]:
    """Every log line, artifact and flow-run parameter set the current Prefect API holds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    seen: list[tuple[str, str]] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while page := client.read_logs(log_filter=LogFilter(), limit=200, offset=offset):
            seen += [("log", log.message) for log in page]
            offset += len(page)
        seen += [("artifact", f"{a.key} {a.description} {a.data}") for a in client.read_artifacts()]
        seen += [("parameters", json.dumps(r.parameters)) for r in client.read_flow_runs(limit=200)]
    return seen


def store_records(store: Store, refs: tuple[str, ...] = ("main", "models", "reports")) -> list[tuple[str, str]]:
    """Text objects and every commit's message and metadata on the given branches (those that exist)."""
    seen: list[tuple[str, str]] = []
    branches = set(store.branches())
    for ref in (r for r in refs if r in branches):
        for path in store.list_objects(ref):
            if path.endswith(TEXT_SUFFIXES):
                seen.append((f"{ref}:{path}", store.get_bytes(ref, path).decode("utf-8", "replace")))
        seen += [(f"commit {c.id[:12]}", f"{c.message} {json.dumps(c.metadata)}") for c in store.log(ref, limit=200)]
    return seen


def workdir_records(workdir: Path) -> list[tuple[str, str]]:
    """Text files the run wrote locally (reports, cards, run specs, logs), the quarantine excepted (raw by design)."""
    return [
        (str(p), p.read_text(errors="replace"))
        for p in sorted(Path(workdir).rglob("*"))
        if p.is_file() and p.suffix in TEXT_SUFFIXES and "quarantine" not in p.parts
    ]


def leaks(seen: list[tuple[str, str]], secrets: set[str]) -> list[tuple[str, str]]:
    return [(where, s) for where, text in seen for s in secrets if s in text]
