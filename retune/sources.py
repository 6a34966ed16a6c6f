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
# - Memory stays flat: files are iterated line by line / row by row, a part is flushed every
#   `batch_size` kept records, quarantine rows are flushed in batches too.

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from retune.config import SourceConfig
from retune.errors import RetuneError, SourceError
from retune.schema import QUARANTINE_SCHEMA, ROLES, TURN_SCHEMA

FORMAT_BY_EXTENSION = {".jsonl": "openai_chat", ".json": "openai_chat", ".csv": "pairs_csv"}
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
                matches = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMAT_BY_EXTENSION)
                if not matches:
                    raise SourceError(f"source directory holds no .jsonl/.json/.csv files: {src.path}")
            elif path.is_file():
                matches = [path]
            else:
                raise SourceError(f"source not found: {src.path}")
        for path in matches:
            fmt = src.format
            if fmt == "auto":
                fmt = FORMAT_BY_EXTENSION.get(path.suffix.lower(), "")
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
    if not isinstance(value, str):
        raise _Quarantined("bad_field:created_at")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Quarantined("bad_field:created_at") from None
    if parsed.tzinfo is None:  # naive timestamps are taken as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _check_turns(turns: list[_Turn], max_text_chars: int) -> None:
    for t in turns:
        if t.role not in ROLES:
            raise _Quarantined(f"unknown_role:{t.role[:20]}")
        if not t.text:
            raise _Quarantined("empty_text")
        if len(t.text) > max_text_chars:
            raise _Quarantined("text_too_long")
    if not any(t.role == "assistant" for t in turns):
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


def _parse_chat_line(raw: bytes, default_channel: str | None, max_text_chars: int) -> _Record:
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
    if "messages" not in obj:
        raise _Quarantined("missing_field:messages")
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise _Quarantined("bad_field:messages")
    turns = []
    for msg in messages:
        if not isinstance(msg, dict):
            raise _Quarantined("bad_field:messages")
        for key in ("role", "content"):
            if key not in msg:
                raise _Quarantined(f"missing_field:{key}")
        if not isinstance(msg["role"], str):
            raise _Quarantined("bad_field:role")
        turns.append(_Turn(msg["role"], _normalize_text(_message_text(msg["content"]))))
    _check_turns(turns, max_text_chars)
    cid = obj.get("conversation_id", obj.get("id"))
    if cid is not None and not isinstance(cid, str | int):
        raise _Quarantined("bad_field:conversation_id")
    channel = obj.get("channel", default_channel)
    if channel is not None and not isinstance(channel, str):
        raise _Quarantined("bad_field:channel")
    return _finish(str(cid) if cid is not None else None, 0, turns, _parse_time(obj.get("created_at")), channel)


def _iter_chat(path: Path, src: SourceConfig, max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per non-blank line; offset = 0-based line number."""
    with path.open("rb") as f:
        for offset, raw in enumerate(f):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                result: object = _parse_chat_line(raw, src.channel, max_text_chars)
            except _Quarantined as q:
                result = q
            yield offset, raw.decode("utf-8", errors="replace"), result


def _iter_pairs_csv(path: Path, src: SourceConfig, max_text_chars: int) -> Iterator[tuple[int, str, object]]:
    """Yields (offset, raw text, _Record | _Quarantined) per data row; offset = 0-based data-row index."""
    exchanges_seen: dict[str, int] = {}  # conversation_id -> rows so far (numbers the turns)
    # surrogateescape keeps reading past bad bytes; a row holding one is quarantined as invalid_utf8
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as f:
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
            records = _iter_chat if fmt == "openai_chat" else _iter_pairs_csv
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
