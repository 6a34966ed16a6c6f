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
#   quarantine rows are flushed in batches too.
# - Shapes: a JSON object (a JSONL line or a Parquet row) is an OpenAI chat (`messages`), a prompt/completion
#   pair, or a customer/agent exchange; with format `turns` it is one turn (conversation_id, role, content).
#   SourceConfig.fields renames the source's fields to ours first, SourceConfig.roles its role names.

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import json
import os
import unicodedata
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from retune.config import SourceConfig
from retune.errors import RetuneError, SourceError
from retune.schema import QUARANTINE_SCHEMA, ROLES, TURN_SCHEMA

FORMAT_BY_EXTENSION = {
    ".jsonl": "openai_chat", ".json": "openai_chat", ".csv": "pairs_csv", ".parquet": "parquet",
}
COMPRESSION_EXTENSIONS = (".gz", ".zst")
CSV_REQUIRED_COLUMNS = ("customer", "agent")


@dataclass
class SourceCounts:
    """What happened to the records of one source file."""

    source: str
    records_in: int = 0
    kept: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reason -> count

    def reconciles(self) -> bool:
        return self.records_in == self.kept + self.quarantined + self.duplicates


@dataclass
class IngestReport:
    """The outcome of one ingest run: counts per source, the parts written, the quarantine file."""

    sources: list[SourceCounts]
    turns: int
    parts: list[Path]
    quarantine_path: Path | None
    new_hashes: set[str] = field(default_factory=set)  # content hashes of the records kept in this run

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


@dataclass
class _Record:
    """One parsed, valid record before dedup."""

    conversation_id: str
    first_turn: int
    turns: list[_Turn]
    created_at: datetime | None
    channel: str | None
    content_hash: str


class _Quarantined(Exception):
    """A record is malformed; `reason` is short and stable (it becomes a metric label)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def format_for(path: Path) -> str | None:
    """The format an extension stands for, looking through a .gz/.zst suffix; None when unknown."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_EXTENSIONS:
        suffixes = suffixes[:-1]
    return FORMAT_BY_EXTENSION.get(suffixes[-1]) if suffixes else None


def open_binary(path: Path) -> BinaryIO:
    """A file opened for reading bytes, decompressed on the fly when it ends in .gz or .zst."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise SourceError(f"{path}: reading .zst files needs the zstandard package") from None
        raw = path.open("rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return path.open("rb")


def resolve_sources(sources: list[SourceConfig]) -> list[tuple[Path, str, SourceConfig]]:
    """Expand paths and globs (relative to the current directory) into (file, format, config)."""
    resolved: list[tuple[Path, str, SourceConfig]] = []
    for src in sources:
        if any(ch in src.path for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(src.path, recursive=True) if Path(p).is_file())
            if not matches:
                raise SourceError(f"source pattern matched no files: {src.path}")
        else:
            path = Path(src.path)
            if path.is_dir():
                matches = sorted(p for p in path.iterdir() if p.is_file() and format_for(p))
                if not matches:
                    raise SourceError(f"source directory holds no .jsonl/.csv/.parquet files: {src.path}")
            elif path.is_file():
                matches = [path]
            else:
                raise SourceError(f"source not found: {src.path}")
        for path in matches:
            fmt = src.format
            if fmt == "auto":
                fmt = format_for(path) or ""
                if not fmt:
                    raise SourceError(f"cannot tell the format of {path} from its extension; set format")
            if not os.access(path, os.R_OK):
                raise SourceError(f"source is not readable: {path}")
            resolved.append((path, fmt, src))
    return resolved


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


def _finish(cid: str | None, first_turn: int, turns: list[_Turn], created_at: datetime | None,
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
    except json.JSONDecodeError:
        raise _Quarantined("invalid_json") from None
    if not isinstance(obj, dict):
        raise _Quarantined("not_an_object")
    return obj


def _parse_object(obj: dict, src: SourceConfig, max_text_chars: int, exchanges: dict[str, int]) -> _Record:
    # exchanges: conversation_id -> turns numbered so far (rows without `messages` continue a conversation)
    """One conversation record from an object: chat `messages`, prompt/completion, or customer/agent."""
    obj = _mapped(obj, src)
    first_turn = 0
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
        first_turn = exchanges.get(cid, 0)
        exchanges[cid] = first_turn + len(turns)
    channel = obj.get("channel", src.channel)
    if channel is not None and not isinstance(channel, str):
        raise _Quarantined("bad_field:channel")
    return _finish(cid, first_turn, turns, _parse_time(obj.get("created_at")), channel)


def _parse_turn_object(obj: dict, src: SourceConfig, max_text_chars: int,
                       turns_seen: dict[str, int]) -> _Record:
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
        index = turns_seen.get(cid, 0)
    elif not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _Quarantined("bad_field:turn")
    turns_seen[cid] = max(turns_seen.get(cid, 0), index + 1)
    _check_turns([turn], max_text_chars, require_assistant=False)
    channel = obj.get("channel", src.channel)
    if channel is not None and not isinstance(channel, str):
        raise _Quarantined("bad_field:channel")
    # the position is part of the content: "Thanks!" twice in one conversation is not a duplicate
    content_hash = _content_hash(f"{cid}#{index}", [turn])
    return _Record(cid, index, [turn], _parse_time(obj.get("created_at")), channel, content_hash)


def _iter_jsonl(path: Path, src: SourceConfig, max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per non-blank line; offset = 0-based line number."""
    state: dict[str, int] = {}  # conversation_id -> exchanges / turns so far
    parse = _parse_turn_object if src.format == "turns" else _parse_object
    with open_binary(path) as f:
        for offset, raw in enumerate(f):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                result: object = parse(_decode_object(raw), src, max_text_chars, state)
            except _Quarantined as q:
                result = q
            yield offset, raw.decode("utf-8", errors="replace"), result


def _iter_parquet(path: Path, src: SourceConfig, max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per row, reading one record batch at a time."""
    state: dict[str, int] = {}
    parse = _parse_turn_object if src.format == "turns" else _parse_object
    with open_binary(path) as handle:
        try:
            file = pq.ParquetFile(handle)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
        offset = 0
        for batch in file.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                try:
                    result: object = parse(row, src, max_text_chars, state)
                except _Quarantined as q:
                    result = q
                yield offset, json.dumps(row, ensure_ascii=False, default=str), result
                offset += 1


def _iter_pairs_csv(path: Path, src: SourceConfig, max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per data row; offset = 0-based data-row index."""
    exchanges_seen: dict[str, int] = {}  # conversation_id -> rows so far (numbers the turns)
    # surrogateescape keeps reading past bad bytes; a row holding one is quarantined as invalid_utf8
    with io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f)
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
    if any("\udc80" <= ch <= "\udcff" for v in row.values() for ch in v):
        raise _Quarantined("invalid_utf8")
    turns = [_Turn("user", _normalize_text(row["customer"])), _Turn("assistant", _normalize_text(row["agent"]))]
    _check_turns(turns, max_text_chars)
    channel = (row.get("channel") or "").strip() or default_channel
    return _finish(cid or None, 2 * exchange, turns, _parse_time(row.get("created_at")), channel)


class _PartWriter:
    """Buffers turn rows and writes out_dir/part-NNNNN.parquet every `batch_size` records."""

    def __init__(self, out_dir: Path, batch_size: int):
        self.out_dir = out_dir
        self.batch_size = batch_size
        self.columns: dict[str, list] = {f.name: [] for f in TURN_SCHEMA}
        self.records = 0
        self.turns = 0
        self.parts: list[Path] = []

    def add(self, rec: _Record, source: str, offset: int) -> None:
        for i, t in enumerate(rec.turns):
            row = (rec.conversation_id, rec.first_turn + i, t.role, t.text, rec.created_at, rec.channel,
                   source, offset, rec.content_hash)
            for name, value in zip(self.columns, row, strict=True):
                self.columns[name].append(value)
        self.records += 1
        self.turns += len(rec.turns)
        if self.records >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        path = self.out_dir / f"part-{len(self.parts):05d}.parquet"
        pq.write_table(pa.Table.from_pydict(self.columns, schema=TURN_SCHEMA), path)
        self.parts.append(path)
        self.columns = {name: [] for name in self.columns}
        self.records = 0


class _QuarantineWriter:
    """Appends quarantined records to one private Parquet file, created on the first record."""

    def __init__(self, quarantine_dir: Path, batch_size: int):
        self.dir = quarantine_dir
        self.batch_size = batch_size
        self.path: Path | None = None
        self.writer: pq.ParquetWriter | None = None
        self.rows: list[dict] = []

    def add(self, source: str, offset: int, reason: str, raw: str) -> None:
        self.rows.append({"source": source, "source_offset": offset, "reason": reason, "raw": raw})
        if len(self.rows) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            # raw records hold personal data: owner-only directory and file
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self.path = self.dir / f"quarantine-{stamp}.parquet"
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            self.writer = pq.ParquetWriter(self.path, QUARANTINE_SCHEMA)
        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=QUARANTINE_SCHEMA))
        self.rows = []

    def close(self) -> Path | None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            os.chmod(self.path, 0o600)
        return self.path


def ingest(
    sources: list[SourceConfig],
    out_dir: Path,
    quarantine_dir: Path,
    *,
    known_hashes: Set[str] = frozenset(),
    batch_size: int = 1000,
    max_text_chars: int = 8000,
) -> IngestReport:
    """Read every source in bounded batches into TURN_SCHEMA parts under out_dir; see the rules on top."""
    files = resolve_sources(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.glob("part-*.parquet")):
        raise RetuneError(f"ingest output directory already holds parts: {out_dir}")
    parts = _PartWriter(out_dir, batch_size)
    quarantine = _QuarantineWriter(Path(quarantine_dir), batch_size)
    seen: set[str] = set()
    all_counts = []
    try:
        for path, fmt, src in files:
            counts = SourceCounts(source=str(path))
            all_counts.append(counts)
            if format_for(path) == "parquet" or fmt == "parquet":  # the shape inside comes from the format
                records = _iter_parquet
            else:
                records = _iter_pairs_csv if fmt == "pairs_csv" else _iter_jsonl
            try:
                for offset, raw, result in records(path, src, max_text_chars):
                    counts.records_in += 1
                    if isinstance(result, _Quarantined):
                        counts.quarantined += 1
                        counts.reasons[result.reason] = counts.reasons.get(result.reason, 0) + 1
                        quarantine.add(str(path), offset, result.reason, raw)
                    elif result.content_hash in known_hashes or result.content_hash in seen:
                        counts.duplicates += 1
                    else:
                        seen.add(result.content_hash)
                        counts.kept += 1
                        parts.add(result, str(path), offset)
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        parts.flush()
    finally:
        quarantine_path = quarantine.close()
    return IngestReport(sources=all_counts, turns=parts.turns, parts=parts.parts,
                        quarantine_path=quarantine_path, new_hashes=seen)
