"""Where the dataset lives in the store, and the reads every stage needs: all turns at a commit, turns added since."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retune.schema import TURN_SCHEMA
from retune.store.base import Store

TURNS_PREFIX = "data/turns/"


def turns_path(run_id: str, part_name: str) -> str:
    """The store path of one Parquet part written by one ingest run."""
    return f"{TURNS_PREFIX}{run_id}/{part_name}"


def read_turns(store: Store, ref: str) -> pa.Table:
    """Every turn in the dataset at a ref (branch, tag or commit id); an empty table when there is none yet."""
    if not store.list_objects(ref, TURNS_PREFIX):
        return _no_turns()
    return store.read_parquet(ref, TURNS_PREFIX).select(TURN_SCHEMA.names).cast(TURN_SCHEMA)


def turns_added(store: Store, since: str, ref: str) -> pa.Table:
    """Turns present at `ref` but not at `since`: the data that arrived after a model was trained."""
    added = [p for p in store.diff(since, ref)["added"] if p.startswith(TURNS_PREFIX) and p.endswith(".parquet")]
    if not added:
        return _no_turns()
    tables = [_read_part(store, ref, path) for path in added]
    return pa.concat_tables(tables)


def count_turns(store: Store, ref: str) -> int:
    """How many turns the dataset at a ref holds, from the Parquet footers (no column is decoded)."""
    commit = store.resolve(ref)
    return sum(pq.read_metadata(pa.BufferReader(store.get_bytes(commit, path))).num_rows
               for path in store.list_objects(commit, TURNS_PREFIX) if path.endswith(".parquet"))


def known_hashes(store: Store, ref: str = "main") -> set[str]:
    """Content hashes of the records already in the dataset, so re-ingesting them adds nothing. Only the
    content_hash column of each part is decoded (the text columns are most of the bytes)."""
    hashes: set[str] = set()
    commit = store.resolve(ref)  # one snapshot, even if the branch moves meanwhile
    for path in store.list_objects(commit, TURNS_PREFIX):
        if path.endswith(".parquet"):
            column = pq.read_table(pa.BufferReader(store.get_bytes(commit, path)), columns=["content_hash"])
            hashes.update(pc.unique(column["content_hash"]).to_pylist())
    return hashes


def _read_part(store: Store, ref: str, path: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get_bytes(ref, path))).select(TURN_SCHEMA.names).cast(TURN_SCHEMA)


def _no_turns() -> pa.Table:
    # Not TURN_SCHEMA.empty_table(): that loads pandas (about a second), most of a run that finds nothing new.
    return pa.Table.from_batches([], schema=TURN_SCHEMA)


def conversations(turns: pa.Table) -> int:
    """How many distinct conversations a turn table holds."""
    return len(pc.unique(turns["conversation_id"])) if turns.num_rows else 0
