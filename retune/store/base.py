"""The store protocol: versioned objects with branches, commits, merges and tags (lakeFS semantics)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa

from retune.errors import StoreError

MAIN = "main"

# lakeFS's own rule for branch and tag names; the local backend enforces it too so a name valid here is
# valid there.
_REF_NAME = re.compile(r"^\w[-\w]*$")
_ALL_HEX = re.compile(r"^[0-9a-fA-F]+$")


class MergeConflict(StoreError):
    """A merge found the same path changed differently on both sides; nothing was merged."""


@dataclass(frozen=True)
class Commit:
    id: str
    message: str
    metadata: dict[str, str] = field(hash=False)
    parents: tuple[str, ...]
    created_at: str  # ISO 8601, UTC


@runtime_checkable
class Store(Protocol):
    """What retune needs from a versioned object store.

    Refs: a branch name, a tag name, or a commit id. Reads on a branch see its uncommitted (staged)
    changes, as lakeFS does; `resolve`, `log`, `diff`, `create_branch` and `merge` use committed state.
    Every refusal is a StoreError (MergeConflict for a conflicting merge).
    """

    def branches(self) -> list[str]: ...

    def create_branch(self, name: str, source_ref: str = MAIN) -> str:
        """Create a branch at the commit of source_ref; return that commit id."""
        ...

    def delete_branch(self, name: str) -> None: ...

    def put_file(self, branch: str, path: str, local_path: Path) -> None:
        """Stage a local file at path on branch (streamed, not read into memory)."""
        ...

    def put_bytes(self, branch: str, path: str, data: bytes) -> None: ...

    def delete_object(self, branch: str, path: str) -> None: ...

    def list_objects(self, ref: str, prefix: str = "") -> list[str]:
        """Sorted object paths starting with prefix (a plain string prefix, like S3)."""
        ...

    def get_bytes(self, ref: str, path: str) -> bytes: ...

    def get_file(self, ref: str, path: str, dest: Path) -> Path:
        """Write the object to dest (parents created); return dest."""
        ...

    def read_parquet(self, ref: str, prefix: str) -> pa.Table:
        """Concatenate every .parquet object under prefix; StoreError if there is none."""
        ...

    def commit(self, branch: str, message: str, metadata: dict[str, str] | None = None) -> Commit:
        """Commit the staged changes of branch; StoreError if nothing changed."""
        ...

    def merge(
        self,
        source: str,
        into: str = MAIN,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Commit:
        """Merge the committed state of source into branch `into`.

        Already merged: returns the head of `into` unchanged. The local backend fast-forwards when `into`
        has not moved and neither message nor metadata is given; lakeFS always makes a merge commit with
        two parents (same content). Callers must not depend on either. MergeConflict
        when a path changed differently on both sides since their common ancestor: never an overwrite.
        """
        ...

    def resolve(self, ref: str) -> str: ...

    def get_commit(self, ref: str) -> Commit: ...

    def log(self, ref: str, limit: int = 50) -> list[Commit]:
        """Commits reachable from ref, newest first."""
        ...

    def tag(self, name: str, ref: str) -> str:
        """Create an immutable tag at ref's commit; return the commit id."""
        ...

    def tags(self) -> dict[str, str]: ...

    def diff(self, left: str, right: str) -> dict[str, list[str]]:
        """Paths added, changed and removed going from left's commit to right's commit."""
        ...


def check_ref_name(kind: str, name: str) -> None:
    if not _REF_NAME.match(name):
        raise StoreError(f"invalid {kind} name '{name}': use letters, digits, '_' and '-' only")
    if _ALL_HEX.match(name):
        # lakeFS reads an all-hex ref as a commit-id prefix first; refuse it on every backend alike.
        raise StoreError(f"invalid {kind} name '{name}': an all-hex name reads as a commit id")


def check_path(path: str) -> str:
    """An object path: relative, '/'-separated, no '.' or '..' parts."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid object path '{path}'")
    return path


def diff_trees(left: dict[str, str], right: dict[str, str]) -> dict[str, list[str]]:
    """What changed from one {path: content hash} tree to another."""
    return {
        "added": sorted(p for p in right if p not in left),
        "changed": sorted(p for p in right if p in left and left[p] != right[p]),
        "removed": sorted(p for p in left if p not in right),
    }


def concat_parquet(tables: list[pa.Table], prefix: str, ref: str) -> pa.Table:
    """The Parquet parts under a prefix as one table; parts whose schemas cannot be unified are an error."""
    if not tables:
        raise StoreError(f"no Parquet files under '{prefix}' at '{ref}'")
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as exc:
        raise StoreError(f"Parquet files under '{prefix}' at '{ref}' have different schemas: {exc}") from None

