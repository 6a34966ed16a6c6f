"""The lakeFS store: the Store protocol on a lakeFS repository, through the maintained `lakefs` SDK."""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import lakefs
import lakefs.models
import lakefs_sdk
import pyarrow as pa
import pyarrow.parquet as pq
import urllib3
from lakefs.exceptions import LakeFSException, ServerException
from lakefs.reference import generate_listing

from retune.config import LakeFSConfig
from retune.errors import ConfigError, StoreError
from retune.store.base import MAIN, Commit, MergeConflict, check_path, check_ref_name, concat_parquet

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 8 << 20  # bytes per ranged read when downloading to a file
_uploaded = 0  # bytes this process wrote to lakeFS: what a stage cost in storage (retune.cost)
_uploaded_lock = threading.Lock()
_PAGE = 1000  # the largest page lakeFS serves
_NAME = re.compile(r"^\w[-\w]*$")
# lakeFS resolves an all-hex ref as a commit-id prefix before it tries branches and tags (ref.revResolve):
# a branch called "b" reads whichever commit is the only one starting with "b". So all-hex branch and tag
# names are refused here, and, like the local store, commit-id prefixes need 8 digits or more.
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_MIN_PREFIX = 8
_SYSTEM_METADATA = ".lakefs."  # keys lakeFS adds itself (e.g. .lakefs.merge.strategy on merges)


class _Refused(StoreError):
    """lakeFS gave a final answer other than success (a 4xx other than 401/403).

    Methods turn the refusals they expect into their own messages; any other stays this StoreError.
    """

    def __init__(self, what: str, status: int, message: str, retried: bool) -> None:
        super().__init__(f"lakeFS refused to {what}: {message} (HTTP {status})")
        self.status = status
        self.message = message
        self.retried = retried  # an earlier try may have done the work before its answer was lost


class LakeFSStore:
    """A Store on one lakeFS repository. Branch, tag and commit semantics are lakeFS's own.

    Differences from the local store, all lakeFS behaviour: a merge always makes a merge commit (lakeFS
    never fast-forwards); all-hex branch and tag names are refused (lakeFS resolves them as commit ids);
    a branch may share its name with a tag.
    """

    def __init__(
        self,
        endpoint: str,
        repository: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        storage_namespace: str | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 60.0,
        credentials_from: str = "the configured credentials",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.repository = repository
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_seconds
        self._credentials_from = credentials_from
        self._client = lakefs.Client(host=self.endpoint, username=access_key_id, password=secret_access_key)
        # Retries are ours (backoff, bounded, logged); urllib3's silent default of 3 would multiply them.
        pool = self._client.sdk_client.objects_api.api_client.rest_client.pool_manager
        pool.connection_pool_kw["retries"] = False
        pool.connection_pool_kw["timeout"] = urllib3.Timeout(connect=min(10.0, timeout_seconds), read=timeout_seconds)
        self._repo = lakefs.Repository(repository, client=self._client)
        self._open(storage_namespace)

    @classmethod
    def from_config(cls, cfg: LakeFSConfig, environ: Mapping[str, str] | None = None) -> LakeFSStore:
        """The store named by the config, with keys from the environment variables it names."""
        environ = os.environ if environ is None else environ
        keys = []
        for variable, what in ((cfg.access_key_env, "access key id"), (cfg.secret_key_env, "secret access key")):
            value = environ.get(variable, "")
            if not value:
                raise ConfigError(f"environment variable {variable} is not set: it must hold the lakeFS {what}")
            keys.append(value)
        return cls(
            cfg.endpoint,
            cfg.repository,
            keys[0],
            keys[1],
            storage_namespace=cfg.storage_namespace,
            max_attempts=cfg.max_attempts,
            backoff_seconds=cfg.backoff_seconds,
            timeout_seconds=cfg.timeout_seconds,
            credentials_from=f"{cfg.access_key_env}/{cfg.secret_key_env}",
        )

    def __repr__(self) -> str:
        return f"LakeFSStore(endpoint={self.endpoint!r}, repository={self.repository!r})"

    # ---- branches -------------------------------------------------------------------------------------

    def branches(self) -> list[str]:
        return sorted(self._call("list branches", lambda: [b.id for b in self._repo.branches(amount=_PAGE)]))

    def create_branch(self, name: str, source_ref: str = MAIN) -> str:
        _check_name("branch", name)
        head = self.resolve(source_ref)  # branch from the commit id, so the id returned is the one used
        try:
            self._call(f"create branch '{name}'", lambda: self._repo.branch(name).create(head))
        except _Refused as refused:
            if refused.status == 409:
                if refused.retried and self._branch_head(name) == head:
                    return head  # our earlier try created it; only its answer was lost
                raise StoreError(f"branch '{name}' already exists") from None
            raise self._error(refused, f"create branch '{name}'") from None
        return head

    def delete_branch(self, name: str) -> None:
        if name == MAIN:
            raise StoreError(f"branch '{MAIN}' cannot be deleted")
        if not _NAME.match(name):
            raise StoreError(f"unknown branch '{name}'")
        try:
            self._call(f"delete branch '{name}'", lambda: self._repo.branch(name).delete())
        except _Refused as refused:
            if refused.status == 404:
                if refused.retried:
                    return
                raise StoreError(f"unknown branch '{name}'") from None
            raise self._error(refused, f"delete branch '{name}'") from None

    # ---- objects --------------------------------------------------------------------------------------

    def put_file(self, branch: str, path: str, local_path: Path) -> None:
        local_path = Path(local_path)
        if not local_path.is_file():
            raise StoreError(f"cannot upload {local_path}: not a file")
        check_path(path)

        def upload() -> None:
            # The SDK's writer spools to a temporary file past 32 MiB and streams that body to lakeFS.
            with open(local_path, "rb") as src, self._object(branch, path).writer(mode="wb", pre_sign=False) as out:
                shutil.copyfileobj(src, out, _CHUNK)

        self._write(branch, path, upload)
        _count_upload(local_path.stat().st_size)

    def put_bytes(self, branch: str, path: str, data: bytes) -> None:
        check_path(path)
        self._write(branch, path, lambda: self._object(branch, path).upload(data, mode="wb", pre_sign=False))
        _count_upload(len(data))

    def delete_object(self, branch: str, path: str) -> None:
        self._check_branch_name(branch)
        try:
            self._call(f"delete '{path}' on '{branch}'", lambda: self._object(branch, path).delete())
        except _Refused as refused:
            if refused.status == 404:
                if refused.retried:
                    return
                self._branch_head(branch)  # raises for an unknown branch
                raise StoreError(f"no object '{path}' on branch '{branch}'") from None
            raise self._error(refused, f"delete '{path}' on branch '{branch}'") from None

    def list_objects(self, ref: str, prefix: str = "") -> list[str]:
        ref = self._checked_ref(ref)
        try:
            paths = self._call(
                f"list objects at '{ref}'",
                lambda: [o.path for o in self._repo.ref(ref).objects(prefix=prefix or None, amount=_PAGE)],
            )
        except _Refused as refused:
            raise self._ref_error(refused, ref, f"list objects at '{ref}'") from None
        return sorted(paths)

    def get_bytes(self, ref: str, path: str) -> bytes:
        ref = self._checked_ref(ref)

        def read() -> bytes:
            with self._repo.ref(ref).object(path).reader(mode="rb", pre_sign=False) as src:
                return bytes(src.read())

        try:
            return self._call(f"read '{path}' at '{ref}'", read)
        except _Refused as refused:
            raise self._object_error(refused, ref, path) from None

    def get_file(self, ref: str, path: str, dest: Path) -> Path:
        ref = self._checked_ref(ref)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")

        def download() -> None:
            # Ranged reads of _CHUNK bytes: memory stays flat whatever the object's size.
            with self._repo.ref(ref).object(path).reader(mode="rb", pre_sign=False) as src, open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)

        try:
            self._call(f"download '{path}' at '{ref}'", download)
        except _Refused as refused:
            tmp.unlink(missing_ok=True)
            raise self._object_error(refused, ref, path) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest)
        return dest

    def read_parquet(self, ref: str, prefix: str) -> pa.Table:
        paths = [p for p in self.list_objects(ref, prefix) if p.endswith(".parquet")]
        tables = [pq.ParquetFile(pa.BufferReader(self.get_bytes(ref, p))).read() for p in paths]
        return concat_parquet(tables, prefix, ref)

    # ---- commits --------------------------------------------------------------------------------------

    def commit(self, branch: str, message: str, metadata: dict[str, str] | None = None) -> Commit:
        metadata = _check_metadata(metadata)
        self._check_branch_name(branch)
        try:
            reference = self._call(
                f"commit on '{branch}'", lambda: self._repo.branch(branch).commit(message, metadata=metadata)
            )
        except _Refused as refused:
            if refused.status == 404:
                raise StoreError(f"unknown branch '{branch}'") from None
            if refused.status == 400 and "no changes" in refused.message:
                head = self.get_commit(branch)
                if refused.retried and head.message == message and head.metadata == metadata:
                    return head  # our earlier try committed; only its answer was lost
                raise StoreError(f"nothing to commit on branch '{branch}'") from None
            raise self._error(refused, f"commit on branch '{branch}'") from None
        return self.get_commit(reference.id)

    def merge(
        self,
        source: str,
        into: str = MAIN,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Commit:
        checked = _check_metadata(metadata) if metadata is not None else None
        source = self._checked_ref(source)
        self._check_branch_name(into)
        try:
            merged = self._call(
                f"merge '{source}' into '{into}'",
                lambda: self._repo.ref(source).merge_into(into, message=message, metadata=checked),
            )
        except _Refused as refused:
            text = refused.message.lower()
            if refused.status == 409:
                raise MergeConflict(
                    f"cannot merge '{source}' into '{into}': a path changed differently on both sides "
                    f"(lakeFS: {refused.message})"
                ) from None
            if refused.status == 400 and ("dirty" in text or "uncommitted" in text):
                raise StoreError(
                    f"branch '{into}' has uncommitted changes: commit them before merging into it"
                ) from None
            if refused.status == 400 and "no changes" in text:
                return self.get_commit(into)  # already merged (or a retry of a merge that landed)
            if refused.status == 404:
                self.resolve(source)  # raises for an unknown source
                raise StoreError(f"unknown branch '{into}'") from None
            raise self._error(refused, f"merge '{source}' into '{into}'") from None
        return self.get_commit(merged)

    def resolve(self, ref: str) -> str:
        return self.get_commit(ref).id

    def get_commit(self, ref: str) -> Commit:
        ref = self._checked_ref(ref)
        try:
            found = self._call(f"look up '{ref}'", lambda: self._repo.ref(ref).get_commit())
        except _Refused as refused:
            raise self._ref_error(refused, ref, f"look up '{ref}'") from None
        return _to_commit(found)

    def log(self, ref: str, limit: int = 50) -> list[Commit]:
        ref = self._checked_ref(ref)
        if limit <= 0:
            return []
        try:
            found = self._call(
                f"read the log of '{ref}'",
                lambda: list(self._repo.ref(ref).log(max_amount=limit, amount=min(limit, _PAGE))),
            )
        except _Refused as refused:
            raise self._ref_error(refused, ref, f"read the log of '{ref}'") from None
        return [_to_commit(c) for c in found]

    def tag(self, name: str, ref: str) -> str:
        _check_name("tag", name)
        commit_id = self.resolve(ref)
        try:
            self._call(f"create tag '{name}'", lambda: self._repo.tag(name).create(commit_id))
        except _Refused as refused:
            if refused.status == 409:
                if refused.retried and self.tags().get(name) == commit_id:
                    return commit_id
                raise StoreError(f"tag '{name}' already exists") from None
            raise self._error(refused, f"create tag '{name}'") from None
        return commit_id

    def tags(self) -> dict[str, str]:
        api = self._client.sdk_client.tags_api
        found = self._call(
            "list tags",
            lambda: {t.id: t.commit_id for t in generate_listing(api.list_tags, self.repository, amount=_PAGE)},
        )
        return dict(sorted(found.items()))

    def diff(self, left: str, right: str) -> dict[str, list[str]]:
        left_id, right_id = self.resolve(left), self.resolve(right)
        changes = self._call(
            f"diff '{left}'..'{right}'",
            lambda: list(self._repo.ref(left_id).diff(right_id, type="two_dot", amount=_PAGE)),
        )
        out: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        for change in changes:
            if change.path_type == "object" and change.type in out:
                out[change.type].append(change.path)
        return {kind: sorted(paths) for kind, paths in out.items()}

    # ---- internals ------------------------------------------------------------------------------------

    def _open(self, storage_namespace: str | None) -> None:
        try:
            self._call(f"open repository '{self.repository}'", lambda: self._repo.properties)
            return
        except _Refused as refused:
            if refused.status != 404:
                raise self._error(refused, f"open repository '{self.repository}'") from None
        if not storage_namespace:
            raise StoreError(
                f"lakeFS repository '{self.repository}' does not exist at {self.endpoint}: create it "
                "(see infra/lakefs/README.md) or set store.lakefs.storage_namespace so retune creates it"
            )
        try:
            self._call(
                f"create repository '{self.repository}'",
                lambda: self._repo.create(storage_namespace=storage_namespace, default_branch=MAIN, exist_ok=True),
            )
        except _Refused as refused:
            raise self._error(refused, f"create repository '{self.repository}' at {storage_namespace}") from None
        log.info("created lakeFS repository %s at %s", self.repository, storage_namespace)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call; retry transient failures (5xx, 429, dropped connections) with backoff."""
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                return fn()
            except (ServerException, lakefs_sdk.ApiException) as exc:
                status, message = _status_and_message(exc)
                if status == 401:
                    raise StoreError(
                        f"lakeFS at {self.endpoint} refused the credentials from {self._credentials_from} "
                        f"(HTTP 401) while trying to {what}"
                    ) from None
                if status == 403:
                    raise StoreError(
                        f"lakeFS denied permission to {what}: the credentials lack a policy "
                        "(see infra/lakefs/policy.json)"
                    ) from None
                if not (status >= 500 or status == 429):
                    raise _Refused(what, status, message, retried=attempt > 1) from None
                problem = f"HTTP {status}"
            except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
                problem = type(exc).__name__
            except LakeFSException as exc:  # raised by the SDK itself, not the server
                raise StoreError(f"lakeFS client error while trying to {what}: {type(exc).__name__}") from None
            if attempt < self._max_attempts:
                log.warning(
                    "lakeFS: %s failed (%s); try %d of %d in %.2f s",
                    what,
                    problem,
                    attempt + 1,
                    self._max_attempts,
                    delay,
                )
                time.sleep(delay * random.uniform(0.8, 1.2))  # jitter: parallel workers don't retry in lockstep
                delay *= 2
        raise StoreError(
            f"lakeFS at {self.endpoint} failed to {what} after {self._max_attempts} attempts ({problem}); "
            "is the server up?"
        )

    def _write(self, branch: str, path: str, upload: Callable[[], object]) -> None:
        self._check_branch_name(branch)
        try:
            self._call(f"upload '{path}' to '{branch}'", upload)
        except _Refused as refused:
            if refused.status == 404:
                raise StoreError(f"unknown branch '{branch}'") from None
            raise self._error(refused, f"upload '{path}' to branch '{branch}'") from None

    def _object(self, branch: str, path: str) -> lakefs.WriteableObject:
        return self._repo.branch(branch).object(path)

    def _branch_head(self, branch: str) -> str:
        self._check_branch_name(branch)
        try:
            return self._call(f"look up branch '{branch}'", lambda: self._repo.branch(branch).head.id)
        except _Refused as refused:
            if refused.status == 404:
                raise StoreError(f"unknown branch '{branch}'") from None
            raise self._error(refused, f"look up branch '{branch}'") from None

    def _check_branch_name(self, branch: str) -> None:
        if not _NAME.match(branch):
            raise StoreError(f"unknown branch '{branch}'")

    def _checked_ref(self, ref: str) -> str:
        unknown = StoreError(f"unknown ref '{ref}': not a branch, tag or commit id")
        if not _NAME.match(ref):
            raise unknown  # also keeps '..' and '/' out of request paths
        if _HEX.match(ref) and len(ref) < _MIN_PREFIX:
            raise unknown  # lakeFS would take it as a commit-id prefix, however short
        return ref

    def _ref_error(self, refused: _Refused, ref: str, what: str) -> StoreError:
        if refused.status in (400, 404):
            return StoreError(f"unknown ref '{ref}': not a branch, tag or commit id")
        return self._error(refused, what)

    def _object_error(self, refused: _Refused, ref: str, path: str) -> StoreError:
        if refused.status == 404:
            self.resolve(ref)  # raises for an unknown ref
            return StoreError(f"no object '{path}' at '{ref}'")
        return self._error(refused, f"read '{path}' at '{ref}'")

    def _error(self, refused: _Refused, what: str) -> StoreError:
        return StoreError(f"lakeFS refused to {what}: {refused.message} (HTTP {refused.status})")


def _check_name(kind: str, name: str) -> None:
    check_ref_name(kind, name)
    if _HEX.match(name):
        raise StoreError(
            f"invalid {kind} name '{name}' for lakeFS: it reads an all-hex name as a commit id; "
            "use a letter outside a-f"
        )


def _status_and_message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ServerException):
        body = exc.body if isinstance(exc.body, dict) else {}
        return exc.status_code or 0, str(body.get("message") or exc.reason or "")
    status = getattr(exc, "status", 0) or 0
    return status, str(getattr(exc, "reason", "") or "")


def _to_commit(found: lakefs.models.Commit) -> Commit:
    metadata = {k: v for k, v in (found.metadata or {}).items() if not k.startswith(_SYSTEM_METADATA)}
    return Commit(
        id=found.id,
        message=found.message,
        metadata=metadata,
        parents=tuple(found.parents),
        created_at=datetime.fromtimestamp(found.creation_date, UTC).isoformat(),
    )


def _check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    metadata = dict(metadata or {})
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise StoreError(f"commit metadata must map strings to strings (lakeFS does too); fix: {bad}")
    if any(k.startswith(_SYSTEM_METADATA) for k in metadata):
        raise StoreError(f"commit metadata keys starting with '{_SYSTEM_METADATA}' are reserved by lakeFS")
    return metadata


def _count_upload(size: int) -> None:
    global _uploaded
    with _uploaded_lock:
        _uploaded += size


def uploaded_bytes() -> int:
    """Bytes this process has written to lakeFS so far (objects staged; a retried upload counts once)."""
    with _uploaded_lock:
        return _uploaded
