"""The embedded store: lakeFS-like branches, immutable content-addressed commits, merges and tags on local disk."""

from __future__ import annotations

import fcntl
import hashlib
import heapq
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from retune.errors import DISK_FULL_ERRNOS, DiskFullError, StoreError
from retune.store.base import MAIN, Commit, MergeConflict, check_path, check_ref_name, concat_parquet, diff_trees

_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]{8,64}$")  # a commit id, or a prefix of at least 8 of its digits
_NAME = re.compile(r"^\w[-\w]*$")


class LocalStore:
    """A Store on a directory: nothing to start, safe for several processes at once.

    Layout under root:
      objects/ab/cdef...        object content, named by its sha256, written once
      commits/ab/cdef....json   {tree, parents, message, metadata, created_at}; the id is the sha256 of it
      refs/branches/NAME        a branch's head commit id
      refs/tags/NAME            a tag's commit id
      staging/NAME.json         a branch's uncommitted changes: {path: object hash, or null when deleted}
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._held = threading.local()  # lock depth per thread: public methods call each other
        self._commits: dict[str, tuple[Commit, dict[str, str]]] = {}  # immutable, so safe to cache
        self._generations: dict[str, int] = {}
        for sub in ("objects", "commits", "refs/branches", "refs/tags", "staging", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self._ref_file("branches", MAIN).exists():
                initial = self._write_commit({}, (), "Repository created", {})
                self._write_atomic(self._ref_file("branches", MAIN), initial.encode())

    # ---- branches -------------------------------------------------------------------------------------

    def branches(self) -> list[str]:
        return sorted(p.name for p in (self.root / "refs/branches").iterdir())

    def create_branch(self, name: str, source_ref: str = MAIN) -> str:
        check_ref_name("branch", name)
        with self._locked():
            if self._ref_file("branches", name).exists():
                raise StoreError(f"branch '{name}' already exists")
            if self._ref_file("tags", name).exists():
                raise StoreError(f"'{name}' is already a tag")
            head = self.resolve(source_ref)
            self._write_atomic(self._ref_file("branches", name), head.encode())
            return head

    def delete_branch(self, name: str) -> None:
        if name == MAIN:
            raise StoreError(f"branch '{MAIN}' cannot be deleted")
        with self._locked():
            self._branch_head(name)  # raises for an unknown branch
            self._staging_file(name).unlink(missing_ok=True)
            self._ref_file("branches", name).unlink()

    # ---- objects --------------------------------------------------------------------------------------

    def put_file(self, branch: str, path: str, local_path: Path) -> None:
        try:
            with open(local_path, "rb") as src:
                digest = self._store_object(src)
        except (FileNotFoundError, IsADirectoryError):
            raise StoreError(f"cannot upload {local_path}: not a file") from None
        self._stage(branch, check_path(path), digest)

    def put_bytes(self, branch: str, path: str, data: bytes) -> None:
        check_path(path)
        digest = hashlib.sha256(data).hexdigest()
        if not self._object_file(digest).exists():
            self._write_atomic(self._object_file(digest), data)
        self._stage(branch, path, digest)

    def delete_object(self, branch: str, path: str) -> None:
        with self._locked():
            if path not in self._tree_of(branch):
                raise StoreError(f"no object '{path}' on branch '{branch}'")
            self._stage(branch, path, None)

    def list_objects(self, ref: str, prefix: str = "") -> list[str]:
        with self._locked(shared=True):
            return sorted(p for p in self._tree_of(ref) if p.startswith(prefix))

    def get_bytes(self, ref: str, path: str) -> bytes:
        return self._object_path(ref, path).read_bytes()

    def get_file(self, ref: str, path: str, dest: Path) -> Path:
        source = self._object_path(ref, path)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Copy, never hard-link: a user editing the downloaded file must not change the stored object.
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
        return dest

    def read_parquet(self, ref: str, prefix: str) -> pa.Table:
        with self._locked(shared=True):
            tree = self._tree_of(ref)
        paths = sorted(p for p in tree if p.startswith(prefix) and p.endswith(".parquet"))
        return concat_parquet([pq.ParquetFile(self._object_file(tree[p])).read() for p in paths], prefix, ref)

    # ---- commits --------------------------------------------------------------------------------------

    def commit(self, branch: str, message: str, metadata: dict[str, str] | None = None) -> Commit:
        metadata = _check_metadata(metadata)
        with self._locked():
            head = self._branch_head(branch)
            tree = self._tree_of(branch)
            if tree == self._load(head)[1]:
                raise StoreError(f"nothing to commit on branch '{branch}'")
            new = self._write_commit(tree, (head,), message, metadata)
            self._write_atomic(self._ref_file("branches", branch), new.encode())
            self._staging_file(branch).unlink(missing_ok=True)
            return self._load(new)[0]

    def merge(
        self,
        source: str,
        into: str = MAIN,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Commit:
        metadata_in = _check_metadata(metadata)
        with self._locked():
            ours = self._branch_head(into)
            if self._staged(into):
                raise StoreError(f"branch '{into}' has uncommitted changes: commit them before merging into it")
            theirs = self.resolve(source)
            if theirs in self._ancestors(ours):
                return self._load(ours)[0]  # already merged
            if ours in self._ancestors(theirs) and message is None and metadata is None:
                self._write_atomic(self._ref_file("branches", into), theirs.encode())
                return self._load(theirs)[0]  # fast-forward
            base = self._merge_base(ours, theirs)
            tree = _three_way(self._load(base)[1], self._load(ours)[1], self._load(theirs)[1], source, into)
            text = message or f"Merge '{source}' into '{into}'"
            new = self._write_commit(tree, (ours, theirs), text, metadata_in)
            self._write_atomic(self._ref_file("branches", into), new.encode())
            return self._load(new)[0]

    def resolve(self, ref: str) -> str:
        # The name check also keeps a ref like '../x' from ever reaching the file system.
        if _NAME.match(ref):
            for kind in ("branches", "tags"):
                try:
                    return self._ref_file(kind, ref).read_text().strip()
                except FileNotFoundError:
                    pass
            if _HEX.match(ref):
                found = sorted((self.root / "commits" / ref[:2]).glob(f"{ref[2:]}*.json"))
                if len(found) == 1:
                    return ref[:2] + found[0].name.removesuffix(".json")
                if len(found) > 1:
                    raise StoreError(f"commit id prefix '{ref}' is ambiguous")
        raise StoreError(f"unknown ref '{ref}': not a branch, tag or commit id")

    def get_commit(self, ref: str) -> Commit:
        return self._load(self.resolve(ref))[0]

    def log(self, ref: str, limit: int = 50) -> list[Commit]:
        # Highest generation first: every commit comes before its parents, like `git log --topo-order`.
        start = self.resolve(ref)
        heap = [(-self._generation(start), start)]
        seen = {start}
        out: list[Commit] = []
        while heap and len(out) < limit:
            _, cid = heapq.heappop(heap)
            commit = self._load(cid)[0]
            out.append(commit)
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, (-self._generation(parent), parent))
        return out

    def tag(self, name: str, ref: str) -> str:
        check_ref_name("tag", name)
        with self._locked():
            if self._ref_file("tags", name).exists():
                raise StoreError(f"tag '{name}' already exists")
            if self._ref_file("branches", name).exists():
                raise StoreError(f"'{name}' is already a branch")
            cid = self.resolve(ref)
            self._write_atomic(self._ref_file("tags", name), cid.encode())
            return cid

    def tags(self) -> dict[str, str]:
        return {p.name: p.read_text().strip() for p in sorted((self.root / "refs/tags").iterdir())}

    def diff(self, left: str, right: str) -> dict[str, list[str]]:
        return diff_trees(self._load(self.resolve(left))[1], self._load(self.resolve(right))[1])

    # ---- internals ------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """An fcntl lock on the store, so processes (and threads) take turns; re-entrant per thread."""
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ref_file(self, kind: str, name: str) -> Path:
        return self.root / "refs" / kind / name

    def _staging_file(self, branch: str) -> Path:
        return self.root / "staging" / f"{branch}.json"

    def _object_file(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / digest[2:]

    def _branch_head(self, branch: str) -> str:
        if not _NAME.match(branch):
            raise StoreError(f"unknown branch '{branch}'")
        try:
            return self._ref_file("branches", branch).read_text().strip()
        except FileNotFoundError:
            raise StoreError(f"unknown branch '{branch}'") from None

    def _staged(self, branch: str) -> dict[str, str | None]:
        try:
            return json.loads(self._staging_file(branch).read_text())
        except FileNotFoundError:
            return {}

    def _stage(self, branch: str, path: str, digest: str | None) -> None:
        with self._locked():
            self._branch_head(branch)
            staged = self._staged(branch)
            staged[path] = digest
            self._write_atomic(self._staging_file(branch), json.dumps(staged, sort_keys=True).encode())

    def _tree_of(self, ref: str) -> dict[str, str]:
        """The {path: object hash} view of a ref; a branch includes its staged changes."""
        if _NAME.match(ref) and self._ref_file("branches", ref).exists():
            tree = dict(self._load(self._branch_head(ref))[1])
            for path, digest in self._staged(ref).items():
                if digest is None:
                    tree.pop(path, None)
                else:
                    tree[path] = digest
            return tree
        return self._load(self.resolve(ref))[1]

    def _object_path(self, ref: str, path: str) -> Path:
        with self._locked(shared=True):
            tree = self._tree_of(ref)
        if path not in tree:
            raise StoreError(f"no object '{path}' at '{ref}'")
        return self._object_file(tree[path])

    def _store_object(self, src: BinaryIO) -> str:
        """Stream src into the object store in one pass (hash while copying); return its sha256."""
        digest = hashlib.sha256()
        with self._no_space_is_an_error(), tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
            try:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                os.unlink(tmp.name)
                raise
        final = self._object_file(digest.hexdigest())
        if final.exists():
            os.unlink(tmp.name)  # same content already stored: objects are written once
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp.name, final)
        return digest.hexdigest()

    def _write_atomic(self, path: Path, data: bytes) -> None:
        """Write a new file whole or not at all: a full disk or a kill leaves the old one (or none)."""
        with self._no_space_is_an_error():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
                try:
                    tmp.write(data)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                except BaseException:
                    os.unlink(tmp.name)
                    raise
            os.replace(tmp.name, path)

    @contextmanager
    def _no_space_is_an_error(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise DiskFullError(
                    f"disk full: no space left on device writing the store at {self.root} ({os.strerror(exc.errno)}); "
                    "nothing was committed or merged"
                ) from None
            raise

    def _write_commit(
        self, tree: dict[str, str], parents: tuple[str, ...], message: str, metadata: dict[str, str]
    ) -> str:
        body = {
            "tree": dict(sorted(tree.items())),
            "parents": list(parents),
            "message": message,
            "metadata": dict(sorted(metadata.items())),
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        cid = hashlib.sha256(data).hexdigest()
        path = self.root / "commits" / cid[:2] / f"{cid[2:]}.json"
        if not path.exists():
            self._write_atomic(path, data)
        return cid

    def _load(self, cid: str) -> tuple[Commit, dict[str, str]]:
        if cid not in self._commits:
            path = self.root / "commits" / cid[:2] / f"{cid[2:]}.json"
            try:
                body = json.loads(path.read_bytes())
            except FileNotFoundError:
                raise StoreError(f"unknown commit '{cid}'") from None
            commit = Commit(
                id=cid,
                message=body["message"],
                metadata=body["metadata"],
                parents=tuple(body["parents"]),
                created_at=body["created_at"],
            )
            self._commits[cid] = (commit, body["tree"])
        return self._commits[cid]

    def _generation(self, cid: str) -> int:
        """1 + the longest path to the root commit: a parent always has a smaller generation."""
        stack = [cid]
        while stack:
            top = stack[-1]
            if top in self._generations:
                stack.pop()
                continue
            parents = self._load(top)[0].parents
            missing = [p for p in parents if p not in self._generations]
            if missing:
                stack.extend(missing)
            else:
                self._generations[top] = 1 + max((self._generations[p] for p in parents), default=0)
                stack.pop()
        return self._generations[cid]

    def _ancestors(self, cid: str) -> set[str]:
        seen = {cid}
        todo = [cid]
        while todo:
            for parent in self._load(todo.pop())[0].parents:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def _merge_base(self, a: str, b: str) -> str:
        # The common ancestor of highest generation cannot be an ancestor of another common one.
        common = self._ancestors(a) & self._ancestors(b)
        if not common:
            raise StoreError(f"commits {a[:12]} and {b[:12]} share no history")
        return max(common, key=lambda c: (self._generation(c), c))


def _three_way(
    base: dict[str, str], ours: dict[str, str], theirs: dict[str, str], source: str, into: str
) -> dict[str, str]:
    merged: dict[str, str] = {}
    conflicts: list[str] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t or t == b:
            result = o
        elif o == b:
            result = t
        else:
            conflicts.append(path)
            continue
        if result is not None:
            merged[path] = result
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise MergeConflict(f"cannot merge '{source}' into '{into}': both changed {shown}")
    return merged


def _check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    metadata = dict(metadata or {})
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise StoreError(f"commit metadata must map strings to strings (lakeFS does too); fix: {bad}")
    return metadata
