"""A small stateful fake of the lakeFS REST API (the endpoints retune's store calls), served on 127.0.0.1 for tests.

Shaped after lakeFS's OpenAPI description (api/swagger.yml, paths under /api/v1) and its server's behaviour
(pkg/api/controller.go, pkg/graveler): JSON bodies, basic auth, the same status codes for the refusals the
store relies on (404 unknown ref, 409 existing branch/tag, 409 merge conflict, 400 commit with no changes,
400 merge into a dirty branch, 400 merge with nothing to merge), lakeFS's hash-first ref resolution, entry
identity (size, checksum, content type, metadata), merge commits that are never fast-forwards, and
`after`/`amount` pagination. Faults can be injected, from the test or at run time over HTTP
(`POST /_fake/faults`, for a server in another process's way): the next N requests (to any path, or to paths
matching a regular expression) answer a status or drop the connection, or every request fails for a while (an
outage). Anything the fake does not implement answers 501 and is recorded in `unhandled`.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_BRANCH_OR_TAG = re.compile(r"^\w[-\w]*$")
_REPO_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_HASH = re.compile(r"^[a-fA-F0-9]{1,64}$")
_DEFAULT_AMOUNT = 100


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Entry:
    checksum: str
    size: int
    content_type: str
    mtime: int
    metadata: tuple[tuple[str, str], ...] = ()

    def identity(self) -> tuple[Any, ...]:
        # lakeFS's catalog.EntryToValue: size, ETag, user metadata and content type (not the address).
        return (self.size, self.checksum, self.metadata, self.content_type)


@dataclass
class _Commit:
    id: str
    parents: list[str]
    committer: str
    message: str
    creation_date: int
    meta_range_id: str
    metadata: dict[str, str]
    generation: int
    tree: dict[str, _Entry]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "committer": self.committer,
            "message": self.message,
            "creation_date": self.creation_date,
            "meta_range_id": self.meta_range_id,
            "metadata": dict(self.metadata),
            "generation": self.generation,
            "version": 1,
        }


@dataclass
class _Branch:
    commit_id: str
    staging: dict[str, _Entry | None] = field(default_factory=dict)  # None: a deletion


@dataclass
class _Repo:
    name: str
    storage_namespace: str
    default_branch: str
    creation_date: int
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, _Branch] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class FakeLakeFS:
    """The fake server. `with FakeLakeFS(key, secret) as fake:` serves on fake.url until the block ends."""

    def __init__(self, access_key_id: str, secret_access_key: str, max_page: int = 1000) -> None:
        self._auth = "Basic " + base64.b64encode(f"{access_key_id}:{secret_access_key}".encode()).decode()
        self.max_page = max_page
        self.repos: dict[str, _Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of every request answered
        self.unhandled: list[str] = []
        self._faults: deque[int | str] = deque()  # a status to answer, "drop" or "drop-after" the work
        self._targeted: list[list[Any]] = []  # [method or None, compiled path regex, remaining, fault]
        self._outage: tuple[float, int | str, re.Pattern | None] | None = None  # (until, fault, path regex)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle and fault injection ---------------------------------------------------------------

    def start(self) -> FakeLakeFS:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-lakefs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLakeFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` requests answer `status` without doing anything."""
        with self._lock:
            self._faults.extend([status] * count)

    def drop_next(self, count: int) -> None:
        """The next `count` requests get their connection closed without an answer (like a reset)."""
        with self._lock:
            self._faults.extend(["drop"] * count)

    def drop_after_next(self, count: int) -> None:
        """The next `count` requests are carried out, then their connection closes before the answer."""
        with self._lock:
            self._faults.extend(["drop-after"] * count)

    def fail_matching(self, path: str, count: int, fault: int | str = 503, method: str | None = None) -> None:
        """The next `count` requests whose path matches the regex `path` (and `method`, if given) get `fault`:
        a status, "drop" or "drop-after"."""
        with self._lock:
            self._targeted.append([method, re.compile(path), count, fault])

    def outage(self, seconds: float, fault: int | str = 503, path: str | None = None) -> None:
        """Every request (or those whose path matches `path`) gets `fault` for the next `seconds`."""
        with self._lock:
            self._outage = (time.monotonic() + seconds, fault, re.compile(path) if path else None)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._targeted.clear()
            self._outage = None

    def take_fault(self, method: str = "", path: str = "") -> int | str | None:
        with self._lock:
            if self._outage is not None:
                until, fault, pattern = self._outage
                if time.monotonic() >= until:
                    self._outage = None
                elif pattern is None or pattern.search(path):
                    return fault
            for target in self._targeted:
                want, pattern, remaining, fault = target
                if remaining > 0 and (want is None or want == method) and pattern.search(path):
                    target[2] -= 1
                    return fault
            return self._faults.popleft() if self._faults else None

    def control(self, spec: dict[str, Any]) -> None:
        """A fault asked for over HTTP: {"outage": seconds, "fault": 503, "path": regex} or
        {"count": n, "fault": "drop", "path": regex, "method": "POST"}; {"clear": true} clears all."""
        fault = spec.get("fault", 503)
        if spec.get("clear"):
            self.clear_faults()
        elif "outage" in spec:
            self.outage(float(spec["outage"]), fault, spec.get("path"))
        else:
            self.fail_matching(spec.get("path") or ".", int(spec.get("count", 1)), fault, spec.get("method"))

    def authorized(self, header: str | None) -> bool:
        return header == self._auth

    # ---- the API --------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one authenticated request: (status, JSON-able value or bytes, extra headers)."""
        parts = [unquote(p) for p in path.removeprefix("/api/v1/").split("/")]
        with self._lock:
            for route_method, pattern, handler in _ROUTES:
                if route_method == method and len(pattern) == len(parts):
                    args = [p for want, p in zip(pattern, parts, strict=True) if want == "*"]
                    if all(want in ("*", p) for want, p in zip(pattern, parts, strict=True)):
                        return handler(self, *args, query=query, headers=headers, body=body)
        self.unhandled.append(f"{method} {path}")
        raise _HTTPError(501, f"fake lakeFS does not implement {method} {path}")

    # repositories

    def _get_config(self, *, query, headers, body) -> tuple[int, Any, dict[str, str]]:
        # a local blockstore, as lakeFS's quickstart: no pre-signed URLs, so clients read through the API
        storage = {"blockstore_type": "local", "blockstore_namespace_example": "local://example-bucket/",
                   "blockstore_namespace_ValidityRegex": "^local://", "pre_sign_support": False,
                   "pre_sign_support_ui": False, "import_support": False, "import_validity_regex": "^local://"}
        return 200, {"storage_config": storage, "version_config": {"version": "fake"}}, {}

    def _create_repository(self, *, query, headers, body) -> tuple[int, Any, dict[str, str]]:
        spec = json.loads(body)
        name, namespace = spec.get("name", ""), spec.get("storage_namespace", "")
        if not _REPO_NAME.match(name) or not namespace:
            raise _HTTPError(400, "validation error: name or storage_namespace")
        if name in self.repos:
            raise _HTTPError(409, "repository already exists")
        now = int(time.time())
        repo = _Repo(name, namespace, spec.get("default_branch") or "main", now)
        first = _new_commit(repo, [], "Repository created", {}, {}, now)
        repo.branches[repo.default_branch] = _Branch(first.id)
        self.repos[name] = repo
        return 201, _repo_json(repo), {}

    def _get_repository(self, name, *, query, headers, body):
        return 200, _repo_json(self._repo(name)), {}

    def _delete_repository(self, name, *, query, headers, body):
        self._repo(name)
        del self.repos[name]
        return 204, None, {}

    # branches

    def _list_branches(self, name, *, query, headers, body):
        repo = self._repo(name)
        items = [(b, {"id": b, "commit_id": br.commit_id}) for b, br in repo.branches.items()]
        return 200, self._page(items, query), {}

    def _create_branch(self, name, *, query, headers, body):
        repo = self._repo(name)
        spec = json.loads(body)
        branch, source = spec.get("name", ""), spec.get("source", "")
        if not _BRANCH_OR_TAG.match(branch):
            raise _HTTPError(400, "validation error: name")
        commit = self._resolve(repo, source)  # lakeFS resolves the source first (404), then checks existence
        if branch in repo.branches:
            raise _HTTPError(409, "branch already exists")
        repo.branches[branch] = _Branch(commit.id)
        return 201, commit.id, {"Content-Type": "text/html"}

    def _get_branch(self, name, branch, *, query, headers, body):
        return 200, {"id": branch, "commit_id": self._branch(self._repo(name), branch).commit_id}, {}

    def _delete_branch(self, name, branch, *, query, headers, body):
        repo = self._repo(name)
        self._branch(repo, branch)
        if branch == repo.default_branch:
            raise _HTTPError(400, "cannot delete repository default branch")
        del repo.branches[branch]
        return 204, None, {}

    # objects

    def _upload_object(self, name, branch, *, query, headers, body):
        repo = self._repo(name)
        br = self._branch(repo, branch)
        path = query.get("path", "")
        if not path:
            raise _HTTPError(400, "path is required")
        content_type = headers.get("Content-Type") or "application/octet-stream"
        if content_type.startswith("multipart/form-data"):
            raise _HTTPError(501, "fake lakeFS accepts raw upload bodies only (what the SDK sends)")
        checksum = hashlib.md5(body).hexdigest()  # the ETag lakeFS stores for local/S3 block adapters
        self.blobs[checksum] = bytes(body)
        metadata = tuple(
            sorted(
                (k.lower().removeprefix("x-lakefs-meta-"), v)
                for k, v in headers.items()
                if k.lower().startswith("x-lakefs-meta-")
            )
        )
        entry = _Entry(checksum, len(body), content_type, int(time.time()), metadata)
        br.staging[path] = entry
        return 201, _stats_json(repo, path, entry), {}

    def _delete_object(self, name, branch, *, query, headers, body):
        repo = self._repo(name)
        br = self._branch(repo, branch)
        path = query.get("path", "")
        if path not in self._branch_tree(repo, br):
            raise _HTTPError(404, "not found")
        br.staging[path] = None
        return 204, None, {}

    def _get_object(self, name, ref, *, query, headers, body):
        repo = self._repo(name)
        entry = self._tree(repo, ref).get(query.get("path", ""))
        if entry is None:
            raise _HTTPError(404, "object not found")
        data = self.blobs[entry.checksum]
        extra = {"Content-Type": entry.content_type, "ETag": f'"{entry.checksum}"'}
        spec = headers.get("Range")
        if not spec:
            return 200, data, extra
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", spec.strip())
        if not match:
            raise _HTTPError(400, "invalid range")
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            return 416, {"message": "Requested Range Not Satisfiable"}, {"Content-Range": f"bytes */{len(data)}"}
        extra["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, data[start : end + 1], extra

    def _head_object(self, name, ref, *, query, headers, body):
        self._stat_object(name, ref, query=query, headers=headers, body=body)  # 404 when missing
        return 200, None, {}  # a HEAD answer has no body

    def _stat_object(self, name, ref, *, query, headers, body):
        repo = self._repo(name)
        path = query.get("path", "")
        entry = self._tree(repo, ref).get(path)
        if entry is None:
            raise _HTTPError(404, "object not found")
        return 200, _stats_json(repo, path, entry), {}

    def _list_objects(self, name, ref, *, query, headers, body):
        repo = self._repo(name)
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        tree = self._tree(repo, ref)
        items = [(p, _stats_json(repo, p, e)) for p, e in tree.items() if p.startswith(prefix)]
        if delimiter:  # as lakeFS: paths below the next delimiter collapse into one common_prefix entry
            folded: dict[str, Any] = {}
            for p, stats in items:
                head, sep, _ = p[len(prefix):].partition(delimiter)
                key = prefix + head + sep
                folded[key] = stats if not sep else {"path": key, "path_type": "common_prefix", "checksum": "",
                                                     "mtime": 0, "size_bytes": 0}
            items = list(folded.items())
        return 200, self._page(items, query), {}

    # commits and refs

    def _commit(self, name, branch, *, query, headers, body):
        repo = self._repo(name)
        br = self._branch(repo, branch)
        spec = json.loads(body)
        head = repo.commits[br.commit_id]
        tree = self._branch_tree(repo, br)
        if _identities(tree) == _identities(head.tree) and not spec.get("allow_empty"):
            raise _HTTPError(400, "commit: no changes")
        metadata = spec.get("metadata") or {}
        commit = _new_commit(repo, [head.id], spec.get("message", ""), metadata, tree, spec.get("date"))
        br.commit_id, br.staging = commit.id, {}
        return 201, commit.to_json(), {}

    def _get_commit(self, name, ref, *, query, headers, body):
        repo = self._repo(name)
        return 200, self._resolve(repo, ref).to_json(), {}

    def _log(self, name, ref, *, query, headers, body):
        repo = self._repo(name)
        start = self._resolve(repo, ref)
        if query.get("objects") or query.get("prefixes") or query.get("first_parent") in ("true", "True"):
            raise _HTTPError(501, "fake lakeFS log has no objects/prefixes/first_parent filters")
        ordered = _topo_order(repo, start.id)
        after = query.get("after", "")
        if after:
            ordered = ordered[ordered.index(after) + 1 :] if after in ordered else []
        amount = self._amount(query)
        page = ordered[:amount]
        more = len(ordered) > amount
        return (
            200,
            {
                "pagination": _pagination(more, page[-1] if more else "", len(page), self.max_page),
                "results": [repo.commits[c].to_json() for c in page],
            },
            {},
        )

    def _diff(self, name, left, right, *, query, headers, body):
        repo = self._repo(name)
        lc, rc = self._resolve(repo, left), self._resolve(repo, right)
        if query.get("type", "three_dot") == "three_dot":
            lc = repo.commits[_merge_base(repo, lc.id, rc.id)]
        if query.get("delimiter"):
            raise _HTTPError(501, "fake lakeFS diffs recursively only (no delimiter)")
        prefix = query.get("prefix", "")
        items = []
        for path in sorted(set(lc.tree) | set(rc.tree)):
            a, b = lc.tree.get(path), rc.tree.get(path)
            kind = (
                "added"
                if a is None
                else "removed"
                if b is None
                else "changed"
                if a.identity() != b.identity()
                else None
            )
            if kind and path.startswith(prefix):
                size = (b or a).size
                items.append((path, {"type": kind, "path": path, "path_type": "object", "size_bytes": size}))
        return 200, self._page(items, query), {}

    def _merge(self, name, source, dest, *, query, headers, body):
        repo = self._repo(name)
        spec = json.loads(body) if body else {}
        theirs = self._resolve(repo, source)
        br = self._branch(repo, dest)
        if any(True for _ in br.staging):
            raise _HTTPError(400, f"update branch {dest}: {dest}: uncommitted changes (dirty branch)")
        ours = repo.commits[br.commit_id]
        base = repo.commits[_merge_base(repo, ours.id, theirs.id)]
        strategy = spec.get("strategy") or ""
        if strategy not in ("", "dest-wins", "source-wins"):
            raise _HTTPError(400, "invalid merge strategy")
        if spec.get("squash_merge"):
            raise _HTTPError(501, "fake lakeFS does not squash merges")
        if theirs.meta_range_id == base.meta_range_id and not (spec.get("allow_empty") or spec.get("force")):
            raise _HTTPError(400, f"update branch {dest}: no changes")
        if ours.meta_range_id == base.meta_range_id:
            tree = dict(theirs.tree)  # changes only on the source side
        else:
            tree = _three_way(base.tree, ours.tree, theirs.tree, strategy)
        metadata = dict(spec.get("metadata") or {})
        metadata[".lakefs.merge.strategy"] = strategy or "default"
        message = spec.get("message") or f"Merge '{source}' into '{dest}'"
        commit = _new_commit(repo, [ours.id, theirs.id], message, metadata, tree, None)
        br.commit_id = commit.id
        return 200, {"reference": commit.id}, {}

    # tags

    def _list_tags(self, name, *, query, headers, body):
        repo = self._repo(name)
        items = [(t, {"id": t, "commit_id": c}) for t, c in repo.tags.items()]
        return 200, self._page(items, query), {}

    def _create_tag(self, name, *, query, headers, body):
        repo = self._repo(name)
        spec = json.loads(body)
        tag = spec.get("id", "")
        if not _BRANCH_OR_TAG.match(tag):
            raise _HTTPError(400, "validation error: id")
        commit = self._resolve(repo, spec.get("ref", ""))
        if tag in repo.tags:
            raise _HTTPError(409, "tag already exists")
        repo.tags[tag] = commit.id
        return 201, {"id": tag, "commit_id": commit.id}, {}

    def _get_tag(self, name, tag, *, query, headers, body):
        repo = self._repo(name)
        if tag not in repo.tags:
            raise _HTTPError(404, "tag not found")
        return 200, {"id": tag, "commit_id": repo.tags[tag]}, {}

    # ---- state helpers --------------------------------------------------------------------------------

    def _repo(self, name: str) -> _Repo:
        if name not in self.repos:
            raise _HTTPError(404, "repository not found")
        return self.repos[name]

    def _branch(self, repo: _Repo, branch: str) -> _Branch:
        if branch not in repo.branches:
            raise _HTTPError(404, "branch not found")
        return repo.branches[branch]

    def _resolve(self, repo: _Repo, ref: str) -> _Commit:
        """lakeFS's revResolve order: a commit-id prefix (unique), then a branch, then a tag."""
        if re.search(r"[~^@$]", ref):
            raise _HTTPError(501, "fake lakeFS does not support ref modifiers")
        if _HASH.match(ref):
            found = [c for c in repo.commits if c.startswith(ref.lower())]
            if len(found) == 1:
                return repo.commits[found[0]]
        if ref in repo.branches:
            return repo.commits[repo.branches[ref].commit_id]
        if ref in repo.tags:
            return repo.commits[repo.tags[ref]]
        raise _HTTPError(404, f"not found: reference '{ref}'")

    def _tree(self, repo: _Repo, ref: str) -> dict[str, _Entry]:
        """What reading at ref sees: a branch includes its staged changes (unless a commit prefix won)."""
        commit = self._resolve(repo, ref)
        if ref in repo.branches and repo.branches[ref].commit_id == commit.id:
            return self._branch_tree(repo, repo.branches[ref])
        return commit.tree

    def _branch_tree(self, repo: _Repo, br: _Branch) -> dict[str, _Entry]:
        tree = dict(repo.commits[br.commit_id].tree)
        for path, entry in br.staging.items():
            if entry is None:
                tree.pop(path, None)
            else:
                tree[path] = entry
        return tree

    def _amount(self, query: dict[str, str]) -> int:
        amount = int(query.get("amount") or _DEFAULT_AMOUNT)
        if amount < 0:
            raise _HTTPError(400, "amount must be positive")
        return min(amount or _DEFAULT_AMOUNT, self.max_page)

    def _page(self, items: list[tuple[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        """lakeFS listing pagination: sorted by key, `after` exclusive, next_offset = last key returned."""
        after, prefix = query.get("after", ""), query.get("prefix", "")
        rest = sorted((k, v) for k, v in items if k > after and k.startswith(prefix))
        amount = self._amount(query)
        page = rest[:amount]
        more = len(rest) > amount
        return {
            "pagination": _pagination(more, page[-1][0] if more else "", len(page), self.max_page),
            "results": [v for _, v in page],
        }


def _pagination(has_more: bool, next_offset: str, results: int, max_per_page: int) -> dict[str, Any]:
    return {"has_more": has_more, "next_offset": next_offset, "results": results, "max_per_page": max_per_page}


def _identities(tree: dict[str, _Entry]) -> dict[str, tuple[Any, ...]]:
    return {p: e.identity() for p, e in tree.items()}


def _new_commit(
    repo: _Repo, parents: list[str], message: str, metadata: dict[str, str], tree: dict[str, _Entry], date: int | None
) -> _Commit:
    meta_range = hashlib.sha256(json.dumps(sorted(_identities(tree).items())).encode()).hexdigest()
    created = int(date) if date is not None else int(time.time())
    record = json.dumps(["commit:v1", "", message, meta_range, created, sorted(metadata.items()), parents])
    commit_id = hashlib.sha256(record.encode()).hexdigest()
    generation = 1 + max((repo.commits[p].generation for p in parents), default=0)
    commit = _Commit(commit_id, parents, "", message, created, meta_range, dict(metadata), generation, dict(tree))
    repo.commits.setdefault(commit_id, commit)
    return repo.commits[commit_id]


def _ancestors(repo: _Repo, cid: str) -> set[str]:
    seen, todo = {cid}, [cid]
    while todo:
        for parent in repo.commits[todo.pop()].parents:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _merge_base(repo: _Repo, a: str, b: str) -> str:
    common = _ancestors(repo, a) & _ancestors(repo, b)
    if not common:
        raise _HTTPError(400, "no merge base")
    return max(common, key=lambda c: (repo.commits[c].generation, c))


def _topo_order(repo: _Repo, start: str) -> list[str]:
    heap = [(-repo.commits[start].generation, start)]
    seen, out = {start}, []
    while heap:
        _, cid = heapq.heappop(heap)
        out.append(cid)
        for parent in repo.commits[cid].parents:
            if parent not in seen:
                seen.add(parent)
                heapq.heappush(heap, (-repo.commits[parent].generation, parent))
    return out


def _three_way(base: dict, ours: dict, theirs: dict, strategy: str) -> dict[str, _Entry]:
    """lakeFS's merge table (docs/understand/how/merge.md), compared by entry identity."""
    merged: dict[str, _Entry] = {}
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = (x.get(path) for x in (base, ours, theirs))
        bi, oi, ti = (x.identity() if x else None for x in (b, o, t))
        if oi == ti or ti == bi:
            result = o
        elif oi == bi:
            result = t
        elif strategy == "dest-wins":
            result = o
        elif strategy == "source-wins":
            result = t
        else:
            raise _HTTPError(409, "conflict found")
        if result is not None:
            merged[path] = result
    return merged


def _repo_json(repo: _Repo) -> dict[str, Any]:
    return {
        "id": repo.name,
        "creation_date": repo.creation_date,
        "default_branch": repo.default_branch,
        "storage_namespace": repo.storage_namespace,
        "storage_id": "",
        "read_only": False,
    }


def _stats_json(repo: _Repo, path: str, entry: _Entry) -> dict[str, Any]:
    return {
        "path": path,
        "path_type": "object",
        "physical_address": f"{repo.storage_namespace.rstrip('/')}/data/{entry.checksum}",
        "checksum": entry.checksum,
        "size_bytes": entry.size,
        "mtime": entry.mtime,
        "metadata": dict(entry.metadata),
        "content_type": entry.content_type,
    }


_R = FakeLakeFS
# (method, path pattern under /api/v1 with * for a parameter, handler); mirrors api/swagger.yml operations.
_ROUTES: list[tuple[str, tuple[str, ...], Any]] = [
    ("GET", ("config",), _R._get_config),  # getConfig
    ("POST", ("repositories",), _R._create_repository),  # createRepository
    ("GET", ("repositories", "*"), _R._get_repository),  # getRepository
    ("DELETE", ("repositories", "*"), _R._delete_repository),  # deleteRepository
    ("GET", ("repositories", "*", "branches"), _R._list_branches),  # listBranches
    ("POST", ("repositories", "*", "branches"), _R._create_branch),  # createBranch
    ("GET", ("repositories", "*", "branches", "*"), _R._get_branch),  # getBranch
    ("DELETE", ("repositories", "*", "branches", "*"), _R._delete_branch),  # deleteBranch
    ("POST", ("repositories", "*", "branches", "*", "objects"), _R._upload_object),  # uploadObject
    ("DELETE", ("repositories", "*", "branches", "*", "objects"), _R._delete_object),  # deleteObject
    ("POST", ("repositories", "*", "branches", "*", "commits"), _R._commit),  # commit
    ("GET", ("repositories", "*", "commits", "*"), _R._get_commit),  # getCommit
    ("GET", ("repositories", "*", "refs", "*", "objects"), _R._get_object),  # getObject
    ("GET", ("repositories", "*", "refs", "*", "objects", "ls"), _R._list_objects),  # listObjects
    ("GET", ("repositories", "*", "refs", "*", "objects", "stat"), _R._stat_object),  # statObject
    ("HEAD", ("repositories", "*", "refs", "*", "objects"), _R._head_object),  # headObject
    ("GET", ("repositories", "*", "refs", "*", "commits"), _R._log),  # logCommits
    ("GET", ("repositories", "*", "refs", "*", "diff", "*"), _R._diff),  # diffRefs
    ("POST", ("repositories", "*", "refs", "*", "merge", "*"), _R._merge),  # mergeIntoBranch
    ("GET", ("repositories", "*", "tags"), _R._list_tags),  # listTags
    ("POST", ("repositories", "*", "tags"), _R._create_tag),  # createTag
    ("GET", ("repositories", "*", "tags", "*"), _R._get_tag),  # getTag
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like lakeFS; every answer has a Content-Length
    server_fake: FakeLakeFS
    timeout = 30  # an idle keep-alive connection's thread ends by itself
    # One buffered write per answer and no Nagle: else headers and body leave as two small segments and
    # the client's delayed ACK adds ~40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # quiet: tests read fake.requests instead

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server_fake
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/_fake/faults" and self.command == "POST":  # test control, never faulted itself
            try:
                fake.control(json.loads(body or b"{}"))
            except (ValueError, re.error) as exc:
                self._answer(400, {"message": f"bad fault spec: {exc}"}, {})
                return
            self._answer(204, None, {})
            return
        fault = fake.take_fault(self.command, url.path)
        if fault == "drop":
            self.close_connection = True  # the client sees the connection closed with no answer
            fake.requests.append((self.command, url.path, 0))
            return
        if isinstance(fault, int):
            self._answer(fault, {"message": "injected fault"}, {})
            return
        if not fake.authorized(self.headers.get("Authorization")):
            self._answer(401, {"message": "error authenticating request"}, {})
            return
        if not url.path.startswith("/api/v1/"):
            fake.unhandled.append(f"{self.command} {url.path}")
            self._answer(404, {"message": "path not found"}, {})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            status, value, extra = fake.handle(self.command, url.path, query, self.headers, body)
        except _HTTPError as exc:
            status, value, extra = exc.status, {"message": exc.message}, {}
        except Exception as exc:  # a bug in the fake: answer like lakeFS would, and keep it visible
            fake.unhandled.append(f"{self.command} {url.path}: {type(exc).__name__}: {exc}")
            status, value, extra = 500, {"message": f"fake lakeFS error: {exc}"}, {}
        if fault == "drop-after":  # the work is done, but its answer is lost on the way
            self.close_connection = True
            fake.requests.append((self.command, url.path, 0))
            return
        self._answer(status, value, extra)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, value: Any, extra: dict[str, str]) -> None:
        fake = self.server_fake
        fake.requests.append((self.command, urlsplit(self.path).path, status))
        if value is None:
            data, content_type = b"", None
        elif isinstance(value, bytes):
            data, content_type = value, "application/octet-stream"
        elif isinstance(value, str):
            data, content_type = value.encode(), "text/html"
        else:
            data, content_type = json.dumps(value).encode(), "application/json"
        self.send_response(status)
        headers = {"Content-Type": content_type, **extra} if content_type else dict(extra)
        for name, val in headers.items():
            self.send_header(name, val)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()
