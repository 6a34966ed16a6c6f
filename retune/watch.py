"""Finding new files in the landing locations by content hash, so the same content is announced only once."""

# Landing locations are local directories (or globs) or fsspec URLs: an S3 prefix (s3://bucket/landing/) or a
# lakeFS branch path (lakefs://repo/branch/landing/). A file is new when the sha256 of its bytes was never
# announced. Hashing every file at every look would read the whole landing area each time, so the ledger also
# keeps each file's fingerprint (size + mtime / ETag / checksum): an unchanged fingerprint reuses the hash.

from __future__ import annotations

import fnmatch
import glob
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from retune.errors import SourceError
from retune.sources import file_sha256, filesystem, is_url, remote_fingerprint, storage_options_for


@dataclass(frozen=True)
class LandedFile:
    path: str  # a local absolute path or a URL: either is a source the ingest flow accepts
    sha256: str
    size: int


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _local_candidates(location: str, patterns: list[str]) -> Iterator[tuple[str, int, str]]:
    for root in sorted(glob.glob(location)) or [location]:
        candidates = [Path(root)] if Path(root).is_file() else [
            p for pattern in patterns for p in sorted(Path(root).rglob(pattern)) if p.is_file()
        ]
        for path in candidates:
            st = path.stat()
            yield str(path.resolve()), st.st_size, f"{st.st_size}:{st.st_mtime_ns}"


def _remote_candidates(location: str, patterns: list[str],
                       options: Mapping[str, object]) -> Iterator[tuple[str, int, str]]:
    fs, path = filesystem(location, options)
    fs.invalidate_cache()  # fsspec caches listings per instance: a second look must see new objects
    try:
        if any(ch in path for ch in "*?["):
            found = {p: i for p, i in fs.glob(path, detail=True).items() if i.get("type") != "directory"}
        elif fs.isdir(path):
            found = {p: i for p, i in fs.find(path, detail=True).items()
                     if _matches(PurePosixPath(p).name, patterns)}
        elif fs.exists(path):
            found = {path: fs.info(path)}
        else:
            found = {}  # an empty prefix: nothing landed yet
    except Exception as exc:  # credentials, endpoint, permissions: the remote's own message says which
        raise SourceError(f"cannot list landing location {location}: {type(exc).__name__}: {exc}") from None
    for p, info in sorted(found.items()):
        yield fs.unstrip_protocol(p), int(info.get("size") or 0), remote_fingerprint(info)


def find_new_files(
    landing: list[str],
    patterns: list[str],
    seen: set[str],
    *,
    storage_options: Mapping[str, Mapping[str, object]] = {},
    known_fingerprints: Mapping[str, tuple[str, str]] | None = None,
    fingerprints_out: dict[str, tuple[str, str]] | None = None,
) -> list[LandedFile]:
    """Files under the landing locations matching the patterns whose content was never announced.

    known_fingerprints: location -> (fingerprint, sha256) from earlier looks; fingerprints_out receives this
    look's, to be stored with the ledger."""
    known_fingerprints = known_fingerprints or {}
    found: dict[str, LandedFile] = {}
    for location in landing:
        if is_url(location):
            options = storage_options_for(location, None, storage_options)
            candidates = _remote_candidates(location, patterns, options)
        else:
            options = {}
            candidates = _local_candidates(location, patterns)
        for where, size, fingerprint in candidates:
            cached = known_fingerprints.get(where)
            sha = cached[1] if cached and cached[0] == fingerprint else file_sha256(where, options)
            if fingerprints_out is not None:
                fingerprints_out[where] = (fingerprint, sha)
            if sha not in seen and sha not in found:  # the same content under two names is one arrival
                found[sha] = LandedFile(where, sha, size)
    return sorted(found.values(), key=lambda f: f.path)


class SeenLedger:
    """The content hashes already announced (and the fingerprints of files already hashed), in a small JSON
    file written atomically."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> dict:
        if not self.path.exists():
            return {"seen": [], "fingerprints": {}}
        data = json.loads(self.path.read_text())
        data.setdefault("fingerprints", {})
        return data

    def load(self) -> set[str]:
        return set(self._load()["seen"])

    def fingerprints(self) -> dict[str, tuple[str, str]]:
        return {k: tuple(v) for k, v in self._load()["fingerprints"].items()}

    def add(self, hashes: set[str], fingerprints: Mapping[str, tuple[str, str]] | None = None) -> None:
        data = self._load()
        data["seen"] = sorted(set(data["seen"]) | hashes)
        data["fingerprints"] = {**data["fingerprints"], **{k: list(v) for k, v in (fingerprints or {}).items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, self.path)
