"""Ingest: stream source files into normalized turn rows (Parquet parts), quarantine what is malformed."""

# Rules, in one place:
# - A record is one non-blank JSONL line, or one CSV data row. Each record ends in exactly one place:
#   kept (its turns written), quarantined (with a reason), or dropped as a duplicate. Per source:
#   records_in == kept + quarantined + duplicates.
# - A CSV row is one exchange (customer turn, agent turn) of the conversation named in its
#   conversation_id column. Rows of a conversation are its exchanges in file order: the k-th row of a
#   conversation (counting every row, also quarantined ones, so numbering is stable) gets turns 2k and
#   2k+1. Dedup and quarantine act per row.
# - content_hash = sha256 of the record's normalized content (conversation_id, roles, texts). A record whose
#   hash is already known (the store holds it) or was seen earlier in the run is a duplicate.
# - Memory stays flat: files are iterated line by line / row by row (gzip and zstd are decompressed as
#   streams, Parquet is read in record batches), a part is flushed every `batch_size` kept records,
#   quarantine rows are flushed in batches too. Remote files (any fsspec URL: s3://, lakefs://) are read in
#   ranged blocks of READ_BLOCK bytes, never whole; the file's sha256 is computed from the same bytes.
# - Work splits over processes: `partitions` cuts the source files into contiguous units of about equal work,
#   splitting a big file into pieces: an uncompressed JSONL file into byte ranges that start and end right after
#   a newline, a Parquet file into runs of row groups. gzip/zstd streams cannot be entered in the middle, and a
#   CSV boundary cannot be proven from the bytes (a quoted field may hold a newline): those are read whole.
#   `ingest_partition` reads a unit with no knowledge of the others or the store; `merge_partitions` then applies
#   dedup across partitions and against the store in source order, so the first occurrence wins exactly as in
#   one sequential `ingest_files`.
# - A piece numbers its records from the file's start (it counts the newlines before its range, or the rows of
#   the row groups before its own). Turn numbers that continue a conversation (rows without `messages`, one
#   turn per row) depend on the rows before the piece: a piece that starts mid-file keeps them as max(s + a, b),
#   s being what the conversation reached before the piece, and the merge resolves them (and, for one turn per
#   row, whose hash holds the turn number, rehashes and dedups them) in order. Counts of a file's pieces merge
#   into one per-file entry; its sha256 (read by the last piece) is set only when every piece was merged.
# - Shapes: a JSON object (a JSONL line or a Parquet row) is an OpenAI chat (`messages`), a prompt/completion
#   pair, or a customer/agent exchange; with format `turns` it is one turn (conversation_id, role, content).
#   SourceConfig.fields renames the source's fields to ours first, SourceConfig.roles its role names.

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retune.config import Config, SourceConfig
from retune.errors import RetuneError, SourceError, disk_full_as_error, raise_if_disk_full
from retune.schema import QUARANTINE_SCHEMA, ROLES, TURN_SCHEMA

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

FORMAT_BY_EXTENSION = {
    ".jsonl": "openai_chat", ".json": "openai_chat", ".csv": "pairs_csv", ".parquet": "parquet",
}
COMPRESSION_EXTENSIONS = (".gz", ".zst")
CSV_REQUIRED_COLUMNS = ("customer", "agent")
_MAX_CSV_FIELD = 2**31 - 1
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape made of a byte that is not UTF-8
READ_BLOCK = 4 << 20  # bytes per ranged read of a remote file
# lakeFS credentials for lakefs:// URLs: the same environment variables the lakeFS store reads
LAKEFS_KEY_ENV = ("LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY")


@dataclass
class SourceCounts:
    """What happened to the records of one source file."""

    source: str
    records_in: int = 0
    kept: int = 0
    quarantined: int = 0
    duplicates: int = 0  # exact and near duplicates (near_duplicates of them)
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reason -> count
    near_duplicates: int = 0
    sha256: str = ""  # of the file's bytes as read (compressed files: the compressed bytes)
    skipped: bool = False  # already ingested (the source ledger knows its content): not read again
    fingerprint: str = ""  # SourceFile.fingerprint when it was resolved
    piece: tuple[int, int] = (0, 1)  # (index, count) of the piece of the file these counts are of
    # conversation_id -> (a, b) turn numbering at the piece's end (see the rules on top); merged away
    numbering: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def reconciles(self) -> bool:
        return self.records_in == self.kept + self.quarantined + self.duplicates


@dataclass
class IngestReport:
    """The outcome of one ingest run: counts per source, the parts written, the quarantine file."""

    sources: list[SourceCounts]
    turns: int
    parts: list[Path]
    quarantine_path: Path | None

    @property
    def new_hashes(self) -> set[str]:
        """Content hashes of the records kept in this run (read back from the parts: not held in memory)."""
        return {h for p in self.parts for h in pq.read_table(p, columns=["content_hash"])["content_hash"].to_pylist()}

    @property
    def skipped_files(self) -> list[str]:
        """Sources not read at all because the ledger says their content was already ingested."""
        return [s.source for s in self.sources if s.skipped]

    @property
    def read_files(self) -> list[SourceCounts]:
        return [s for s in self.sources if not s.skipped]

    @property
    def near_duplicates(self) -> int:
        return sum(s.near_duplicates for s in self.sources)

    @property
    def records_in(self) -> int:
        return sum(s.records_in for s in self.sources)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.sources)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.sources)

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.sources)

    @property
    def reasons(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for s in self.sources:
            for reason, n in s.reasons.items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items()))

    def reconciles(self) -> bool:
        return all(s.reconciles() for s in self.sources) and (
            self.records_in == self.kept + self.quarantined + self.duplicates
        )


@dataclass
class _Turn:
    role: str
    text: str


@dataclass(frozen=True)
class _Relative:
    """A turn number in a piece that starts mid-file: max(s + a, b), s being the conversation's number before the
    piece. At a file's start s = 0, so max(a, b) is the number itself."""

    a: int
    b: int


class _Numbering:
    """Turn numbers per conversation as a file is read, kept as (a, b) pairs so that a piece read without the
    rows before it gives the same numbers once the merge knows s."""

    def __init__(self, relative: bool = False):
        self.relative = relative  # a piece that starts mid-file: numbers are _Relative
        self.state: dict[str, tuple[int, int]] = {}

    def take(self, cid: str, n: int) -> int | _Relative:
        """The conversation's next number, advancing it by n."""
        a, b = self.state.get(cid, (0, 0))
        self.state[cid] = (a + n, b + n)
        return _Relative(a, b) if self.relative else max(a, b)

    def at_least(self, cid: str, n: int) -> None:
        """An explicit turn number was seen: the next one is at least n."""
        a, b = self.state.get(cid, (0, 0))
        self.state[cid] = (a, max(b, n))


@dataclass
class _Record:
    """One parsed, valid record before dedup."""

    conversation_id: str
    first_turn: int | _Relative
    turns: list[_Turn]
    created_at: datetime | None
    channel: str | None
    content_hash: str
    provisional: bool = False  # its hash holds a _Relative turn number: the merge rehashes and dedups it


class _Quarantined(Exception):
    """A record is malformed; `reason` is short and stable (it becomes a metric label)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def format_for(path: Path | str) -> str | None:
    """The format an extension stands for, looking through a .gz/.zst suffix; None when unknown."""
    suffixes = [x.lower() for x in PurePosixPath(str(path)).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_EXTENSIONS:
        suffixes = suffixes[:-1]
    return FORMAT_BY_EXTENSION.get(suffixes[-1]) if suffixes else None


def is_url(location: str) -> bool:
    """True for an fsspec URL other than a local file (s3://..., lakefs://...)."""
    protocol = location.split("://", 1)[0] if "://" in location else ""
    return protocol not in ("", "file")


def filesystem(url: str, options: Mapping[str, object] = {}) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a URL and the path inside it. `options` are the configured, non-secret storage
    options; credentials come from the environment only (AWS_* through botocore; for lakefs:// the variables
    named by access_key_env / secret_key_env, LAKEFS_ACCESS_KEY_ID / LAKEFS_SECRET_ACCESS_KEY by default)."""
    import fsspec

    opts = dict(options)
    key_env = (opts.pop("access_key_env", LAKEFS_KEY_ENV[0]), opts.pop("secret_key_env", LAKEFS_KEY_ENV[1]))
    if url.startswith("lakefs://") and "username" not in opts:
        key, secret = (os.environ.get(str(name)) for name in key_env)
        if key and secret:
            opts.update(username=key, password=secret)
    try:
        return fsspec.core.url_to_fs(url, **opts)
    except (ImportError, ValueError, TypeError) as exc:
        raise SourceError(f"{url}: cannot open this location ({exc})") from None


@dataclass(frozen=True)
class SourceFile:
    """One file to ingest: where it is, how to read it, and what identifies its current content cheaply."""

    location: str  # a local path as configured / globbed, or a full URL
    format: str
    config: SourceConfig
    options: dict = field(default_factory=dict)  # non-secret fsspec storage options (URLs only)
    size: int = 0
    fingerprint: str = ""  # size + mtime / ETag / checksum: changes when the content may have changed
    # a piece of the file (see `partitions`): JSONL bytes [start, end) (the last piece reads to the end), or
    # Parquet row groups [first, end); None: the whole file
    span: tuple[int, int] | None = None
    piece: tuple[int, int] = (0, 1)  # (index, count) among the file's pieces

    @property
    def name(self) -> str:
        return PurePosixPath(self.location).name


def remote_fingerprint(info: dict) -> str:
    marker = next((str(info[k]) for k in ("ETag", "checksum", "mtime", "LastModified") if info.get(k)), "")
    return f"{info.get('size', 0)}:{marker.strip(chr(34))}"


def _check_listable(fs: AbstractFileSystem, pattern: str) -> None:
    """Raise what listing the folder above a glob raises (credentials, endpoint); a missing folder is fine."""
    static = pattern[: min(pattern.index(ch) for ch in "*?[" if ch in pattern)]
    try:
        fs.ls(static.rsplit("/", 1)[0] if "/" in static else static, detail=False)
    except FileNotFoundError:
        pass


def _remote_matches(src: SourceConfig, options: Mapping[str, object]) -> list[tuple[str, dict]]:
    fs, path = filesystem(src.path, options)
    fs.invalidate_cache()  # fsspec caches listings per instance: a second look must see new objects
    try:
        if any(ch in path for ch in "*?["):
            found = fs.glob(path, detail=True)
            if not found:
                _check_listable(fs, path)  # some filesystems' glob hides a refused listing as "no match"
                raise SourceError(f"source pattern matched no files: {src.path}")
        elif fs.isdir(path):
            found = {p: i for p, i in fs.find(path, detail=True).items() if format_for(p)}
            if not found:
                raise SourceError(f"source location holds no .jsonl/.csv/.parquet files: {src.path}")
        else:
            found = {path: fs.info(path)}
    except FileNotFoundError:
        raise SourceError(f"source not found: {src.path}") from None
    except SourceError:
        raise
    except Exception as exc:  # credentials, endpoint, permissions: the remote's own message says which
        raise SourceError(f"cannot list {src.path}: {type(exc).__name__}: {exc}") from None
    return [(fs.unstrip_protocol(p), info) for p, info in sorted(found.items()) if info.get("type") != "directory"]


def _local_matches(src: SourceConfig) -> list[Path]:
    if any(ch in src.path for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(src.path, recursive=True) if Path(p).is_file())
        if not matches:
            raise SourceError(f"source pattern matched no files: {src.path}")
        return matches
    path = Path(src.path)
    if path.is_dir():
        matches = sorted(p for p in path.iterdir() if p.is_file() and format_for(p))
        if not matches:
            raise SourceError(f"source directory holds no .jsonl/.csv/.parquet files: {src.path}")
        return matches
    if path.is_file():
        return [path]
    raise SourceError(f"source not found: {src.path}")


def storage_options_for(location: str, src: SourceConfig | None,
                        storage_options: Mapping[str, Mapping[str, object]]) -> dict:
    """Options of a URL: the configured ones of its protocol (ingest.storage_options), then the source's own."""
    protocol = location.split("://", 1)[0]
    return {**storage_options.get(protocol, {}), **(src.storage_options if src else {})}


def configured_storage_options(cfg: Config) -> dict[str, dict]:
    """fsspec options per protocol from the config: lakefs:// defaults to the store's lakeFS endpoint and key
    variables, ingest.storage_options adds to / overrides them."""
    lakefs = cfg.store.lakefs
    options: dict[str, dict] = {"lakefs": {"host": lakefs.endpoint, "access_key_env": lakefs.access_key_env,
                                           "secret_key_env": lakefs.secret_key_env}}
    for protocol, opts in cfg.ingest.storage_options.items():
        options[protocol] = {**options.get(protocol, {}), **opts}
    return options


def resolve_sources(sources: list[SourceConfig],
                    storage_options: Mapping[str, Mapping[str, object]] = {}) -> list[SourceFile]:
    """Expand paths, globs and URLs (local ones relative to the current directory) into the files to read."""
    resolved: list[SourceFile] = []
    for src in sources:
        if is_url(src.path):
            options = storage_options_for(src.path, src, storage_options)
            matches = [(loc, int(info.get("size") or 0), remote_fingerprint(info))
                       for loc, info in _remote_matches(src, options)]
        else:
            options = {}
            matches = []
            for path in _local_matches(src):
                if not os.access(path, os.R_OK):
                    raise SourceError(f"source is not readable: {path}")
                st = path.stat()
                matches.append((str(path), st.st_size, f"{st.st_size}:{st.st_mtime_ns}"))
        for location, size, fingerprint in matches:
            fmt = src.format
            if fmt == "auto":
                fmt = format_for(location) or ""
                if not fmt:
                    raise SourceError(f"cannot tell the format of {location} from its extension; set format")
            resolved.append(SourceFile(location, fmt, src, options, size, fingerprint))
    return resolved


class _HashingReader(io.RawIOBase):
    """Passes a file's bytes through, hashing them: the sha256 of a source costs no second read."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)

    def hexdigest(self) -> str:
        while self.readinto(bytearray(READ_BLOCK)):  # whatever the decoder left unread still counts
            pass
        return self.digest.hexdigest()

    def close(self) -> None:
        self.raw.close()
        super().close()


def _open_raw(location: str, options: Mapping[str, object]) -> BinaryIO:
    if not is_url(location):
        return open(location, "rb")
    fs, path = filesystem(location, options)
    return fs.open(path, "rb", block_size=READ_BLOCK)


def _decompressed(raw: BinaryIO, location: str) -> BinaryIO:
    suffix = PurePosixPath(location).suffix.lower()
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise SourceError(f"{location}: reading .zst files needs the zstandard package") from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return raw


def open_binary(path: Path | str, options: Mapping[str, object] = {}) -> BinaryIO:
    """A local file or URL opened for reading bytes, decompressed on the fly when it ends in .gz or .zst."""
    return _decompressed(_open_raw(str(path), options), str(path))


@contextlib.contextmanager
def _open_hashed(file: SourceFile) -> Iterator[tuple[BinaryIO, _HashingReader]]:
    """The file's decompressed bytes, and the reader hashing its raw bytes on the way."""
    hashing = _HashingReader(_open_raw(file.location, file.options))
    stream = _decompressed(io.BufferedReader(hashing, READ_BLOCK), file.location)
    try:
        yield stream, hashing
    finally:
        stream.close()


def file_sha256(location: str, options: Mapping[str, object] = {}) -> str:
    """sha256 of a local file's or URL's bytes, read in blocks."""
    with _open_raw(location, options) as f:
        return _HashingReader(f).hexdigest()


def _normalize_text(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def _content_hash(conversation_id: str | None, turns: list[_Turn]) -> str:
    payload = {"conversation_id": conversation_id, "turns": [[t.role, t.text] for t in turns]}
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _parse_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # a Parquet timestamp column
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if not isinstance(value, str):
        raise _Quarantined("bad_field:created_at")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Quarantined("bad_field:created_at") from None
    if parsed.tzinfo is None:  # naive timestamps are taken as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _check_turns(turns: list[_Turn], max_text_chars: int, require_assistant: bool = True) -> None:
    for t in turns:
        if t.role not in ROLES:
            raise _Quarantined(f"unknown_role:{t.role[:20]}")
        if not t.text:
            raise _Quarantined("empty_text")
        if len(t.text) > max_text_chars:
            raise _Quarantined("text_too_long")
    if require_assistant and not any(t.role == "assistant" for t in turns):
        raise _Quarantined("no_assistant_turn")


def _finish(cid: str | None, first_turn: int | _Relative, turns: list[_Turn], created_at: datetime | None,
            channel: str | None) -> _Record:
    if not cid:  # no id in the record: derive a stable one from the content
        cid = "h-" + _content_hash(None, turns)[:16]
    return _Record(cid, first_turn, turns, created_at, channel, _content_hash(cid, turns))


def _message_text(content: object) -> str:
    # OpenAI content is a string, or a list of parts of which we keep the text ones
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text") for p in content if p.get("type") == "text"]
        if texts and all(isinstance(t, str) for t in texts):
            return "\n".join(texts)
    raise _Quarantined("bad_field:content")


def _mapped(obj: dict, src: SourceConfig) -> dict:
    """The object with the source's field names renamed to ours (SourceConfig.fields)."""
    if not src.fields:
        return obj
    theirs = {v: k for k, v in src.fields.items()}
    return {theirs.get(k, k): v for k, v in obj.items()}


def _role(value: object, src: SourceConfig) -> str:
    if not isinstance(value, str):
        raise _Quarantined("bad_field:role")
    return src.roles.get(value, value)


def _text_field(obj: dict, name: str) -> str:
    if name not in obj or obj[name] is None:
        raise _Quarantined(f"missing_field:{name}")
    return _normalize_text(_message_text(obj[name]))


def _decode_object(raw: bytes) -> dict:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Quarantined("invalid_utf8") from None
    try:
        obj = json.loads(line)
    except RecursionError:  # nesting deeper than the interpreter's recursion limit
        raise _Quarantined("json_too_deep") from None
    except ValueError:  # JSONDecodeError, or an integer longer than Python's 4300-digit conversion limit
        raise _Quarantined("invalid_json") from None
    if not isinstance(obj, dict):
        raise _Quarantined("not_an_object")
    return obj


def _parse_object(obj: dict, src: SourceConfig, max_text_chars: int, exchanges: _Numbering) -> _Record:
    # exchanges: turns numbered so far per conversation_id (rows without `messages` continue a conversation)
    """One conversation record from an object: chat `messages`, prompt/completion, or customer/agent."""
    obj = _mapped(obj, src)
    first_turn: int | _Relative = 0
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            raise _Quarantined("bad_field:messages")
        turns = []
        for msg in messages:
            if not isinstance(msg, dict):
                raise _Quarantined("bad_field:messages")
            msg = _mapped(msg, src)
            for key in ("role", "content"):
                if key not in msg:
                    raise _Quarantined(f"missing_field:{key}")
            turns.append(_Turn(_role(msg["role"], src), _normalize_text(_message_text(msg["content"]))))
    elif "prompt" in obj or "completion" in obj:
        turns = [_Turn("user", _text_field(obj, "prompt")),
                 _Turn("assistant", _text_field(obj, "completion"))]
        if isinstance(obj.get("system"), str) and obj["system"].strip():
            turns.insert(0, _Turn("system", _normalize_text(obj["system"])))
    elif "customer" in obj and "agent" in obj:
        turns = [_Turn("user", _text_field(obj, "customer")), _Turn("assistant", _text_field(obj, "agent"))]
    else:
        expected = "prompt" if src.format == "prompt_completion" else "messages"
        raise _Quarantined(f"missing_field:{expected}")
    _check_turns(turns, max_text_chars)
    cid = obj.get("conversation_id", obj.get("id"))
    if cid is not None and not isinstance(cid, str | int):
        raise _Quarantined("bad_field:conversation_id")
    cid = str(cid) if cid is not None else None
    if cid and "messages" not in obj:  # rows of one conversation are its exchanges in order, as in CSV
        first_turn = exchanges.take(cid, len(turns))
    channel = obj.get("channel", src.channel)
    if channel is not None and not isinstance(channel, str):
        raise _Quarantined("bad_field:channel")
    return _finish(cid, first_turn, turns, _parse_time(obj.get("created_at")), channel)


def _parse_turn_object(obj: dict, src: SourceConfig, max_text_chars: int, turns_seen: _Numbering) -> _Record:
    """One turn per row: conversation_id, role, content (or text), optional turn index."""
    obj = _mapped(obj, src)
    cid = obj.get("conversation_id")
    if cid is None or cid == "":
        raise _Quarantined("missing_field:conversation_id")
    if not isinstance(cid, str | int):
        raise _Quarantined("bad_field:conversation_id")
    cid = str(cid)
    if "role" not in obj:
        raise _Quarantined("missing_field:role")
    turn = _Turn(_role(obj["role"], src), _text_field(obj, "content" if "content" in obj else "text"))
    index = obj.get("turn")
    if index is None:
        index = turns_seen.take(cid, 1)
    elif not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _Quarantined("bad_field:turn")
    else:
        turns_seen.at_least(cid, index + 1)
    _check_turns([turn], max_text_chars, require_assistant=False)
    channel = obj.get("channel", src.channel)
    if channel is not None and not isinstance(channel, str):
        raise _Quarantined("bad_field:channel")
    # the position is part of the content: "Thanks!" twice in one conversation is not a duplicate
    provisional = isinstance(index, _Relative)
    content_hash = turn_hash(cid, max(index.a, index.b) if provisional else index, turn.role, turn.text)
    return _Record(cid, index, [turn], _parse_time(obj.get("created_at")), channel, content_hash, provisional)


def turn_hash(cid: str, index: int, role: str, text: str) -> str:
    """content_hash of a one-turn-per-row record."""
    return _content_hash(f"{cid}#{index}", [_Turn(role, text)])


def _iter_jsonl(f: BinaryIO, path: str, src: SourceConfig, max_text_chars: int, state: _Numbering,
                first_line: int = 0) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per non-blank line; offset = 0-based line number in the
    file (`first_line`: the number of the stream's first line, for a piece that starts mid-file)."""
    parse = _parse_turn_object if src.format == "turns" else _parse_object
    for offset, raw in enumerate(f, start=first_line):
        raw = raw.rstrip(b"\r\n")
        if offset == 0:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM, as Windows tools write it
        if not raw.strip():
            continue
        try:
            result: object = parse(_decode_object(raw), src, max_text_chars, state)
        except _Quarantined as q:
            result = q
        yield offset, raw.decode("utf-8", errors="replace"), result


def _iter_parquet(handle: BinaryIO, path: str, src: SourceConfig, max_text_chars: int, state: _Numbering,
                  row_groups: tuple[int, int] | None = None) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per row, reading one record batch at a time; offset =
    0-based row number in the file. `row_groups`: only the row groups [first, end) (a piece of the file)."""
    parse = _parse_turn_object if src.format == "turns" else _parse_object
    try:
        file = pq.ParquetFile(handle)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
    offset = 0
    groups = None
    if row_groups is not None:
        groups = list(range(*row_groups))
        offset = sum(file.metadata.row_group(i).num_rows for i in range(row_groups[0]))
        if not groups:
            return
    for batch in file.iter_batches(batch_size=1024, row_groups=groups):
        for row in batch.to_pylist():
            try:
                result: object = parse(row, src, max_text_chars, state)
            except _Quarantined as q:
                result = q
            yield offset, json.dumps(row, ensure_ascii=False, default=str), result
            offset += 1


def _iter_pairs_csv(binary: BinaryIO, path: str, src: SourceConfig,
                    max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per data row; offset = 0-based data-row index."""
    # surrogateescape keeps reading past bad bytes; a row holding one is quarantined as invalid_utf8
    # utf-8-sig: a BOM (Excel writes one) must not become part of the first column's name
    f = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    # A field may be as long as a JSONL line may be: max_text_chars quarantines it, not a whole-file error.
    csv.field_size_limit(_MAX_CSV_FIELD)
    try:
        yield from _csv_rows(csv.DictReader(f), path, src, max_text_chars)
    finally:
        f.detach()  # the caller owns the binary stream (and still hashes what is left of it)


def _csv_rows(reader: csv.DictReader, path: str, src: SourceConfig,
              max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    exchanges_seen: dict[str, int] = {}  # conversation_id -> rows so far (numbers the turns)
    missing = [c for c in CSV_REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(f"{path}: CSV header lacks column(s) {', '.join(missing)}")
    offset = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"{path}: malformed CSV at data row {offset}: {exc}") from None
        raw = json.dumps(row, ensure_ascii=False)
        raw = raw.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        cid = (row.get("conversation_id") or "").strip()
        exchange = exchanges_seen.get(cid, 0) if cid else 0
        if cid:
            exchanges_seen[cid] = exchange + 1
        try:
            result: object = _parse_csv_row(row, cid, exchange, src.channel, max_text_chars)
        except _Quarantined as q:
            result = q
        yield offset, raw, result
        offset += 1


def _parse_csv_row(row: dict, cid: str, exchange: int, default_channel: str | None,
                   max_text_chars: int) -> _Record:
    if None in row or any(v is None for v in row.values()):  # more or fewer fields than the header
        raise _Quarantined("bad_row:field_count")
    if any(_ESCAPED_BYTE.search(v) for v in row.values()):
        raise _Quarantined("invalid_utf8")
    turns = [_Turn("user", _normalize_text(row["customer"])), _Turn("assistant", _normalize_text(row["agent"]))]
    _check_turns(turns, max_text_chars)
    channel = (row.get("channel") or "").strip() or default_channel
    return _finish(cid or None, 2 * exchange, turns, _parse_time(row.get("created_at")), channel)


# The turn numbers a piece that starts mid-file could not know, beside each part that has some (a sidecar, so
# that the part itself has the turn schema and moves into the output untouched when nothing changes): the merge
# resolves turn = max(s + turn_a, turn_b) and rehashes the provisional rows. `row` is the row in the part.
RELATIVE_SCHEMA = pa.schema([("row", pa.int64()), ("conversation_id", pa.string()), ("source", pa.string()),
                             ("turn_a", pa.int64()), ("turn_b", pa.int64()), ("provisional", pa.bool_())])


def relative_path(part: Path) -> Path:
    """The sidecar of a partition's part holding its relative turn numbers (part-00003 -> relative-00003)."""
    return part.with_name(part.name.replace("part-", "relative-", 1))


class _PartWriter:
    """Buffers turn rows and writes out_dir/part-NNNNN.parquet every `batch_size` records."""

    def __init__(self, out_dir: Path, batch_size: int):
        self.out_dir = out_dir
        self.batch_size = batch_size
        self.columns: dict[str, list] = {f.name: [] for f in TURN_SCHEMA}
        self.relative: dict[str, list] = {f.name: [] for f in RELATIVE_SCHEMA}
        self.rows = 0  # in the part being buffered
        self.records = 0
        self.turns = 0
        self.parts: list[Path] = []

    def add(self, rec: _Record, source: str, offset: int) -> None:
        relative = rec.first_turn if isinstance(rec.first_turn, _Relative) else None
        first = max(relative.a, relative.b) if relative else rec.first_turn  # resolved for s = 0
        for i, t in enumerate(rec.turns):
            row = (rec.conversation_id, first + i, t.role, t.text, rec.created_at, rec.channel,
                   source, offset, rec.content_hash)
            for name, value in zip(self.columns, row, strict=True):
                self.columns[name].append(value)
            if relative:
                row = (self.rows, rec.conversation_id, source, relative.a + i, relative.b + i, rec.provisional)
                for name, value in zip(self.relative, row, strict=True):
                    self.relative[name].append(value)
            self.rows += 1
        self.records += 1
        self.turns += len(rec.turns)
        if self.records >= self.batch_size:  # only between records: a record's turns never span two parts
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        path = self.out_dir / f"part-{len(self.parts):05d}.parquet"
        try:
            pq.write_table(pa.Table.from_pydict(self.columns, schema=TURN_SCHEMA), path)
            if self.relative["row"]:
                pq.write_table(pa.Table.from_pydict(self.relative, schema=RELATIVE_SCHEMA), relative_path(path))
        except OSError as exc:
            path.unlink(missing_ok=True)  # never leave a truncated part behind
            relative_path(path).unlink(missing_ok=True)
            raise_if_disk_full(exc, path)
            raise
        self.parts.append(path)
        self.columns = {name: [] for name in self.columns}
        self.relative = {name: [] for name in self.relative}
        self.rows = 0
        self.records = 0


class _QuarantineWriter:
    """Appends quarantined records to one private Parquet file, created on the first record."""

    def __init__(self, quarantine_dir: Path, batch_size: int, tag: str = ""):
        self.dir = quarantine_dir
        self.batch_size = batch_size
        self.tag = tag  # keeps the files of parallel partitions apart
        self.path: Path | None = None
        self.writer: pq.ParquetWriter | None = None
        self.rows: list[dict] = []

    def add(self, source: str, offset: int, reason: str, raw: str) -> None:
        self.rows.append({"source": source, "source_offset": offset, "reason": reason, "raw": raw})
        if len(self.rows) >= self.batch_size:
            self.flush()

    def add_file(self, path: Path) -> None:
        """Append another quarantine file's rows (a partition's), then delete it."""
        self.flush()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self.batch_size):
            self._write(pa.Table.from_batches([batch]).cast(QUARANTINE_SCHEMA))
        path.unlink()

    def flush(self) -> None:
        if self.rows:
            self._write(pa.Table.from_pylist(self.rows, schema=QUARANTINE_SCHEMA))
            self.rows = []

    def _write(self, table: pa.Table) -> None:
        with disk_full_as_error(self.dir):
            self._write_table(table)

    def _write_table(self, table: pa.Table) -> None:
        if self.writer is None:
            # raw records hold personal data: owner-only directory and file
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self.path = self.dir / f"quarantine-{stamp}{self.tag}.parquet"
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            self.writer = pq.ParquetWriter(self.path, QUARANTINE_SCHEMA)
        self.writer.write_table(table)

    def close(self) -> Path | None:
        self.flush()
        if self.writer is not None:
            with disk_full_as_error(self.dir):
                self.writer.close()
            os.chmod(self.path, 0o600)
        return self.path


def purge_quarantine(quarantine_dir: Path, retention_days: float, now: float | None = None, *,
                     dry_run: bool = False) -> list[Path]:
    """Delete quarantine files older than the retention (by modification time); returns them."""
    quarantine_dir = Path(quarantine_dir)
    if not quarantine_dir.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    old = sorted(p for p in quarantine_dir.glob("quarantine-*.parquet") if p.stat().st_mtime < cutoff)
    for path in [] if dry_run else old:
        path.unlink()
    return old


def _hash_key(content_hash: str) -> int:
    # 128 bits of the sha256 as an int: a third of the memory of the hex string, collisions still negligible
    return int(content_hash[:32], 16)


def _is_parquet(file: SourceFile) -> bool:
    return format_for(file.location) == "parquet" or file.format == "parquet"  # the shape inside comes from format


def _records(handle: BinaryIO, file: SourceFile, max_text_chars: int, numbering: _Numbering,
             first_line: int = 0) -> Iterator[tuple[int, str, object]]:
    if _is_parquet(file):
        return _iter_parquet(handle, file.location, file.config, max_text_chars, numbering, file.span)
    if file.format == "pairs_csv":
        return _iter_pairs_csv(handle, file.location, file.config, max_text_chars)
    return _iter_jsonl(handle, file.location, file.config, max_text_chars, numbering, first_line)


def _read_records(records: Iterator[tuple[int, str, object]], file: SourceFile, counts: SourceCounts,
                  known_hashes: Set[str], seen: set[int], parts: _PartWriter, quarantine: _QuarantineWriter) -> None:
    """Every record of one file to exactly one place: a part, the quarantine, or the duplicate count."""
    for offset, raw, result in records:
        counts.records_in += 1
        if isinstance(result, _Quarantined):
            counts.quarantined += 1
            counts.reasons[result.reason] = counts.reasons.get(result.reason, 0) + 1
            quarantine.add(file.location, offset, result.reason, raw)
        elif result.provisional:  # its hash is not final yet: the merge dedups it
            counts.kept += 1
            parts.add(result, file.location, offset)
        elif result.content_hash in known_hashes or _hash_key(result.content_hash) in seen:
            counts.duplicates += 1
        else:
            seen.add(_hash_key(result.content_hash))
            counts.kept += 1
            parts.add(result, file.location, offset)


class _Limited(io.RawIOBase):
    """At most `limit` bytes of a stream (None: all of it): one piece's byte range."""

    def __init__(self, raw: BinaryIO, limit: int | None):
        self.raw = raw
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = len(buffer) if self.left is None else min(len(buffer), self.left)
        data = self.raw.read(want) if want else b""
        buffer[: len(data)] = data
        if self.left is not None:
            self.left -= len(data)
        return len(data)


def _count_newlines(stream: BinaryIO, size: int, location: str) -> int:
    """Newlines in the next `size` bytes of the stream (read, and so hashed when it is a _HashingReader)."""
    lines = 0
    while size > 0:
        block = stream.read(min(READ_BLOCK, size))
        if not block:
            raise SourceError(f"{location}: shorter than when the ingest was planned (it changed while read)")
        lines += block.count(b"\n")
        size -= len(block)
    return lines


def _is_last_piece(file: SourceFile) -> bool:
    return file.piece[0] == file.piece[1] - 1


def _read_file(file: SourceFile, counts: SourceCounts, max_text_chars: int, known_hashes: Set[str], seen: set[int],
               parts: _PartWriter, quarantine: _QuarantineWriter) -> None:
    """One file, or one piece of a file (its last piece also hashes the whole file's bytes)."""
    numbering = _Numbering(relative=file.piece[0] > 0)
    if _is_parquet(file):
        # Parquet is read by seeking (footer first): its hash takes a read of its own
        with open_binary(file.location, file.options) as stream:
            _read_records(_records(stream, file, max_text_chars, numbering), file, counts, known_hashes, seen,
                          parts, quarantine)
        if _is_last_piece(file):
            counts.sha256 = file_sha256(file.location, file.options)
    elif file.span is None:
        with _open_hashed(file) as (stream, hashing):
            _read_records(_records(stream, file, max_text_chars, numbering), file, counts, known_hashes, seen,
                          parts, quarantine)
            counts.sha256 = hashing.hexdigest()
    else:  # a byte range of an uncompressed JSONL file: line numbers count the newlines before it
        start, end = file.span
        last = _is_last_piece(file)
        with _open_raw(file.location, file.options) as raw:
            hashing = _HashingReader(raw) if last else None  # the last piece reads every byte: it hashes them
            prefix = hashing or raw
            first_line = _count_newlines(prefix, start, file.location)
            stream = io.BufferedReader(_Limited(prefix, None if last else end - start), READ_BLOCK)
            _read_records(_records(stream, file, max_text_chars, numbering, first_line), file, counts,
                          known_hashes, seen, parts, quarantine)
            if hashing is not None:
                counts.sha256 = hashing.hexdigest()
    if file.span is not None:  # the merge carries it into the file's next piece, and finds straddling conversations
        counts.numbering = numbering.state


def ingest_files(
    files: list[SourceFile],
    out_dir: Path,
    quarantine_dir: Path,
    *,
    known_hashes: Set[str] = frozenset(),
    batch_size: int = 1000,
    max_text_chars: int = 8000,
    skipped: list[SourceCounts] = (),
    quarantine_tag: str = "",
) -> IngestReport:
    """Read files in order, in bounded batches, into TURN_SCHEMA parts under out_dir; see the rules on top.
    `skipped` (files the ledger knows) are only reported. Pieces of files (SourceFile.span) are for
    `ingest_partition`: their results are final only after `merge_partitions`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.glob("part-*.parquet")):
        raise RetuneError(f"ingest output directory already holds parts: {out_dir}")
    parts = _PartWriter(out_dir, batch_size)
    quarantine = _QuarantineWriter(Path(quarantine_dir), batch_size, quarantine_tag)
    seen: set[int] = set()
    all_counts = []
    try:
        for file in files:
            counts = SourceCounts(source=file.location, fingerprint=file.fingerprint, piece=file.piece)
            all_counts.append(counts)
            try:
                _read_file(file, counts, max_text_chars, known_hashes, seen, parts, quarantine)
            except OSError as exc:
                raise SourceError(f"cannot read {file.location}: {exc.strerror or exc}") from None
        parts.flush()
    finally:
        quarantine_path = quarantine.close()
    return IngestReport(sources=all_counts + list(skipped), turns=parts.turns, parts=parts.parts,
                        quarantine_path=quarantine_path)


def ingest(
    sources: list[SourceConfig],
    out_dir: Path,
    quarantine_dir: Path,
    *,
    known_hashes: Set[str] = frozenset(),
    batch_size: int = 1000,
    max_text_chars: int = 8000,
    storage_options: Mapping[str, Mapping[str, object]] = {},
) -> IngestReport:
    """Resolve the sources and read every file of them in one process (`ingest_files`)."""
    return ingest_files(resolve_sources(sources, storage_options), out_dir, quarantine_dir,
                        known_hashes=known_hashes, batch_size=batch_size, max_text_chars=max_text_chars)


COMPRESSED_WEIGHT = 4  # a .gz/.zst byte holds about this many bytes of JSON text: it weighs as much work
MIN_PIECE_BYTES = 4 << 20  # a file is cut into pieces of at least this size: below it, a piece costs more than it saves
_ALIGN_BLOCK = 64 << 10


def _work(file: SourceFile) -> int:
    compressed = PurePosixPath(file.location).suffix.lower() in COMPRESSION_EXTENSIONS
    return max(file.size, 1) * (COMPRESSED_WEIGHT if compressed else 1)


def splittable(file: SourceFile) -> bool:
    """Whether a file can be read in pieces: uncompressed JSONL (byte ranges) and Parquet (row groups). A gzip or
    zstd stream can only be read from its start, and a CSV byte range cannot be proven to start at a row (a quoted
    field may hold a newline): those are read whole."""
    compressed = PurePosixPath(file.location).suffix.lower() in COMPRESSION_EXTENSIONS
    return not compressed and file.format != "pairs_csv"


def _next_line_start(handle: BinaryIO, position: int, size: int) -> int:
    """The offset just after the first newline at or after position - 1: where the line holding `position`
    ends (`position` itself when a line starts there); `size` when no newline follows."""
    handle.seek(position - 1)
    at = position - 1
    while at < size:
        block = handle.read(_ALIGN_BLOCK)
        if not block:
            break
        found = block.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(block)
    return size


def _cuts(sizes: list[int], count: int) -> list[int]:
    """Indexes that cut a run of item sizes into `count` runs of about equal total (each the nearest boundary)."""
    total = sum(sizes)
    ends = []
    running = 0
    for i, n in enumerate(sizes):
        ends.append((running, i))  # (bytes before item i, i)
        running += n
    cuts = []
    for k in range(1, count):
        goal = total * k / count
        cuts.append(min(ends, key=lambda e: abs(e[0] - goal))[1])
    return sorted(set(c for c in cuts if c > 0))


def _pieces(file: SourceFile, count: int) -> list[SourceFile]:
    """The file cut into up to `count` pieces of about equal bytes (fewer when lines or row groups are few)."""
    with _open_raw(file.location, file.options) as handle:
        if _is_parquet(file):
            meta = pq.ParquetFile(handle).metadata
            sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
            bounds = [0, *_cuts(sizes, count), len(sizes)]
        else:
            size = file.size
            bounds = [0]
            for k in range(1, count):
                at = _next_line_start(handle, size * k // count, size)
                if bounds[-1] < at < size:
                    bounds.append(at)
            bounds.append(size)
    spans = list(zip(bounds, bounds[1:], strict=False))
    if len(spans) <= 1:
        return [file]
    return [replace(file, span=span, piece=(i, len(spans))) for i, span in enumerate(spans)]


def partitions(files: list[SourceFile], processes: int,
               min_piece_bytes: int | None = None) -> list[list[SourceFile]]:
    """Units of parallel work in source order: files split into contiguous runs of about equal work (bytes,
    compressed ones weighted), up to `processes` * 4 of them, so a worker that finishes early takes the next one.
    A file bigger than one unit's share is cut into pieces (`splittable` says which can be)."""
    if processes <= 1 or not files:
        return [files] if files else []
    target = processes * 4
    budget = sum(_work(f) for f in files) / target
    min_piece_bytes = max(MIN_PIECE_BYTES if min_piece_bytes is None else min_piece_bytes, 1)
    units: list[SourceFile] = []
    for f in files:
        count = min(round(_work(f) / budget), f.size // min_piece_bytes)
        try:
            units.extend(_pieces(f, count) if count >= 2 and splittable(f) else [f])
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceError(f"cannot read {f.location}: {exc}") from None
    if len(units) <= 1:
        return [units]
    target = min(len(units), target)
    budget = sum(_unit_work(u) for u in units) / target
    groups: list[list[SourceFile]] = [[]]
    filled = 0.0
    for u in units:
        # closer to the budget with u in the next group; a file's pieces go to different groups (the merge carries
        # turn numbers from one partition's piece to the next)
        if groups[-1] and (filled + _unit_work(u) / 2 > budget or u.piece[0] > 0):
            groups.append([])
            filled = 0.0
        groups[-1].append(u)
        filled += _unit_work(u)
    return groups


def _unit_work(unit: SourceFile) -> float:
    if unit.span is None:
        return _work(unit)
    if _is_parquet(unit):
        return _work(unit) / unit.piece[1]  # row groups were cut to about equal bytes
    return max(unit.span[1] - unit.span[0], 1)


def ingest_partition(files: list[SourceFile], work_dir: Path, quarantine_dir: Path, index: int, *,
                     batch_size: int = 1000, max_text_chars: int = 8000) -> IngestReport:
    """One partition read on its own (no store hashes, no other partitions): `merge_partitions` dedups later."""
    return ingest_files(files, Path(work_dir) / f"partition-{index:05d}", quarantine_dir, batch_size=batch_size,
                        max_text_chars=max_text_chars, quarantine_tag=f"-p{index:05d}")


def merge_partitions(
    results: list[IngestReport],
    out_dir: Path,
    quarantine_dir: Path,
    *,
    known_hashes: Set[str] = frozenset(),
    batch_size: int = 1000,
    skipped: list[SourceCounts] = (),
) -> IngestReport:
    """Partition results, in source order, as one ingest: turn numbers of pieces that start mid-file are resolved
    (and their provisional hashes rehashed), a record already in the store or kept earlier becomes a duplicate (its
    rows are dropped), and the counts of a file's pieces become one entry, so the outcome equals one sequential
    `ingest_files`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.glob("part-*.parquet")):
        raise RetuneError(f"ingest output directory already holds parts: {out_dir}")
    seen: set[int] = set()
    parts: list[Path] = []
    turns = 0
    numbering: dict[str, dict[str, int]] = {}  # source -> conversation -> turns numbered before the next piece
    quarantine = _QuarantineWriter(Path(quarantine_dir), batch_size)
    try:
        for result in results:
            by_source = {c.source: c for c in result.sources}
            # conversations of this partition's pieces that went on from earlier pieces: only their numbers change
            straddling = {c.source: {cid: numbering[c.source][cid]
                                     for cid in c.numbering.keys() & numbering.get(c.source, {}).keys()}
                          for c in result.sources if c.piece[0] > 0}
            for part in result.parts:
                table = None  # the whole part, read only when it changes
                # source as a dictionary: decoding one path string per row would cost more than the rest
                keys = pq.read_table(part, columns=["content_hash", "source", "source_offset"],
                                     read_dictionary=["source"])
                hashes = keys["content_hash"]
                if relative_path(part).exists():
                    table = _resolve_relative(part, straddling)
                    relative_path(part).unlink()
                    hashes = table["content_hash"] if table is not None else hashes
                keep = _first_occurrences(hashes, keys["source"], keys["source_offset"], known_hashes, seen,
                                          by_source)
                if not keep.all():
                    table = (table if table is not None else pq.read_table(part)).filter(pa.array(keep))
                if table is None or table.num_rows:
                    target = out_dir / f"part-{len(parts):05d}.parquet"
                    if table is None:
                        shutil.move(part, target)
                    else:
                        pq.write_table(table, target)
                    parts.append(target)
                    turns += keys.num_rows if table is None else table.num_rows
            if len({c.source for c in result.sources if c.piece[1] > 1}) < sum(c.piece[1] > 1 for c in result.sources):
                raise RuntimeError("two pieces of one file in one partition")  # `partitions` never does that
            for counts in result.sources:  # after this piece's rows: its numbering goes on in the next piece
                if counts.numbering and counts.piece[0] < counts.piece[1] - 1:
                    _carry(numbering.setdefault(counts.source, {}), counts.numbering)
                    counts.numbering = {}
            if result.quarantine_path is not None:
                quarantine.add_file(result.quarantine_path)
    finally:
        quarantine_path = quarantine.close()
    return IngestReport(sources=_whole_files([c for r in results for c in r.sources]) + list(skipped), turns=turns,
                        parts=parts, quarantine_path=quarantine_path)


def _carry(before: dict[str, int], piece: Mapping[str, tuple[int, int]]) -> None:
    for cid, (a, b) in piece.items():
        before[cid] = max(before.get(cid, 0) + a, b)


def _resolve_relative(part: Path, straddling: Mapping[str, Mapping[str, int]]) -> pa.Table | None:
    """The part with the turn numbers of its relative rows resolved, now that the pieces before it are known, and
    the rows whose hash holds the number (one turn per row) rehashed; None when no number changes. `straddling`:
    per source, the conversations numbered in earlier pieces, with the number they reached (s > 0); the others
    have s = 0, so the part already holds their numbers."""
    rel = pq.read_table(relative_path(part))
    cids = {cid for names in straddling.values() for cid in names}
    if not cids:
        return None
    rel = rel.filter(pc.is_in(rel["conversation_id"], value_set=pa.array(list(cids), pa.string()))).to_pydict()
    changes: dict[int, int] = {}  # row -> its turn number
    rehash: list[int] = []
    for row, cid, source, a, b, provisional in zip(*rel.values(), strict=True):
        resolved = max(straddling.get(source, {}).get(cid, 0) + a, b)
        if resolved != max(a, b):  # what the part holds: the number for s = 0
            changes[row] = resolved
            if provisional:
                rehash.append(row)
    if not changes:
        return None
    table = pq.read_table(part)
    turns = table["turn"].to_numpy().copy()
    turns[list(changes)] = list(changes.values())
    table = _replaced(table, "turn", pa.array(turns, pa.int32()))
    if rehash:
        hashes = table["content_hash"].to_pylist()
        changed = table.take(rehash)
        for row, cid, role, text in zip(rehash, changed["conversation_id"].to_pylist(), changed["role"].to_pylist(),
                                        changed["text"].to_pylist(), strict=True):
            hashes[row] = turn_hash(cid, changes[row], role, text)
        table = _replaced(table, "content_hash", pa.array(hashes, pa.string()))
    return table


def _replaced(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), values)  # the field keeps its not-null flag


def _first_occurrences(hashes: pa.ChunkedArray, sources: pa.ChunkedArray, offsets: pa.ChunkedArray,
                       known_hashes: Set[str], seen: set[int], by_source: Mapping[str, SourceCounts]) -> np.ndarray:
    """Per row: whether its record is kept (its hash neither in the store nor kept before). A record's rows are
    consecutive and share (source, source_offset); a dropped record moves from kept to duplicates. `sources` is
    dictionary-encoded (read with read_dictionary)."""
    n = len(hashes)
    if n == 0:
        return np.ones(0, dtype=bool)
    sources = sources.unify_dictionaries().combine_chunks()  # one dictionary: its codes compare like the paths
    codes, names = sources.indices.to_numpy(zero_copy_only=False), sources.dictionary.to_pylist()
    offsets_np = offsets.to_numpy()
    starts = np.ones(n, dtype=bool)  # the first row of each record
    starts[1:] = (offsets_np[1:] != offsets_np[:-1]) | (codes[1:] != codes[:-1])
    first_rows = np.flatnonzero(starts)
    kept = np.ones(len(first_rows), dtype=bool)
    for i, (h, code) in enumerate(zip(hashes.take(pa.array(first_rows)).to_pylist(), codes[first_rows].tolist(),
                                      strict=True)):
        source = names[code]
        key = _hash_key(h)
        if key in seen or (known_hashes and h in known_hashes):
            kept[i] = False
            by_source[source].kept -= 1
            by_source[source].duplicates += 1
        else:
            seen.add(key)
    return np.repeat(kept, np.diff(np.append(first_rows, n)))


def _whole_files(counts: list[SourceCounts]) -> list[SourceCounts]:
    """The counts of a file's pieces summed into one entry; its sha256 (read by the last piece) stays only when
    every piece is there, so the ledger records a file as ingested only when all of it was."""
    merged: list[SourceCounts] = []
    pieces = 0
    for c in counts:
        if c.piece[0] == 0:
            merged.append(replace(c, reasons=dict(c.reasons), piece=(0, 1), numbering={}))
            pieces = 1
            continue
        whole = merged[-1] if merged else None
        if whole is None or whole.source != c.source or pieces != c.piece[0]:
            raise RuntimeError(f"pieces of {c.source} out of order")  # a bug in partitioning, not user error
        pieces += 1
        whole.records_in += c.records_in
        whole.kept += c.kept
        whole.quarantined += c.quarantined
        whole.duplicates += c.duplicates
        whole.near_duplicates += c.near_duplicates
        for reason, n in c.reasons.items():
            whole.reasons[reason] = whole.reasons.get(reason, 0) + n
        if c.piece[0] == c.piece[1] - 1:
            whole.sha256 = c.sha256 if pieces == c.piece[1] else ""
    return merged
