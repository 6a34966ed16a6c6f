"""Hostile and broken input through `retune.sources.ingest` (hypothesis): random bytes, invalid UTF-8, BOMs, NUL
bytes, deeply nested JSON, wrong types, huge numbers, CSV with embedded newlines and quotes, a 50 MB line. Never a
crash; every input record is counted once (in = kept + quarantined + duplicates, and `in` is the number of records
the file really holds); every quarantined record is in the quarantine file with a reason."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retune.config import SourceConfig
from retune.sources import ingest

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
BOM = b"\xef\xbb\xbf"

texts = st.text(max_size=40)  # any Unicode: zero-width, confusables, RTL marks, control characters
roles = st.sampled_from(["user", "assistant", "system", "tool", "", "USER", "agent", "\u200buser"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner,
                                                                                                 max_size=3),
                           max_leaves=8)  # fmt: skip


@st.composite
def chat_lines(draw) -> bytes:
    """A JSONL line: a valid chat, one with wrong types, huge numbers or deep nesting, or raw junk."""
    turns = draw(st.lists(st.fixed_dictionaries({"role": roles, "content": texts}), min_size=1, max_size=4))
    record: object = {"messages": turns}
    kind = draw(st.sampled_from(["chat", "wrong_types", "huge_number", "nested", "scalar", "bytes", "pairs"]))
    if kind == "wrong_types":
        record = {"messages": turns, draw(st.sampled_from(["messages", "conversation_id", "created_at", "channel"])):
                  draw(json_values)}  # fmt: skip
    elif kind == "pairs":
        record = {"prompt": draw(json_values), "completion": draw(texts), "conversation_id": draw(json_values)}
    elif kind == "scalar":
        record = draw(json_values)
    if kind == "huge_number":
        line = json.dumps({"messages": turns})[:-1] + ', "conversation_id": ' + "9" * draw(st.integers(20, 20_000))
        line += "}" if draw(st.booleans()) else ', "created_at": 1e999999}'
        data = line.encode()
    elif kind == "nested":
        depth = draw(st.integers(10, 200_000))
        data = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "bytes":
        data = draw(st.binary(max_size=200))
    else:
        data = json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    mangle = draw(st.sampled_from(["none", "none", "bom", "nul", "bad_utf8", "crlf", "truncate"]))
    if mangle == "bom":
        data = BOM + data
    elif mangle == "nul":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" + data[at:]
    elif mangle == "bad_utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + data[at:]
    elif mangle == "crlf":
        data += b"\r"
    elif mangle == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _records_in_jsonl(data: bytes) -> int:
    """A JSONL record is a line (split on \\n) that is not blank; a BOM opening the file is not data."""
    return sum(1 for line in data.removeprefix(BOM).split(b"\n") if line.rstrip(b"\r\n").strip())


def _check(path: Path, expected_records: int, fmt: str = "auto") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = ingest([SourceConfig(path=str(path), format=fmt)], Path(tmp) / "parts", Path(tmp) / "quarantine",
                        batch_size=7, max_text_chars=100)  # fmt: skip
        assert report.reconciles()
        (counts,) = report.sources
        assert counts.records_in == expected_records
        assert report.kept + report.quarantined + report.duplicates == expected_records
        quarantined = [pq.read_table(p) for p in (Path(tmp) / "quarantine").glob("*.parquet")]
        reasons = [r for t in quarantined for r in t["reason"].to_pylist()]
        assert len(reasons) == report.quarantined
        assert all(reasons), "a quarantined record without a reason"
        assert sorted(set(reasons)) == sorted(report.reasons)
        hashes = set()
        for part in report.parts:
            hashes |= set(pc.unique(pq.read_table(part)["content_hash"]).to_pylist())
        assert len(hashes) == report.kept  # every kept record is in the parts, once


@FUZZ
@given(lines=st.lists(chat_lines(), max_size=12), duplicate=st.booleans())
def test_fuzzed_jsonl_never_crashes_and_every_record_is_accounted_for(lines, duplicate):
    if duplicate and lines:
        lines.append(lines[0])
    data = b"\n".join(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(data)
        _check(path, _records_in_jsonl(data))


@FUZZ
@given(data=st.binary(max_size=2000), ext=st.sampled_from(["jsonl", "csv"]))
def test_random_bytes_never_crash(data, ext):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random.{ext}"
        path.write_bytes(data)
        if ext == "jsonl":
            _check(path, _records_in_jsonl(data))
        else:
            _check_csv_or_clear_error(path, data)


csv_fields = st.one_of(texts, st.sampled_from(['a "quoted" word', "two\nlines", "comma, inside", "\r\n", '"', ""]))


@FUZZ
@given(rows=st.lists(st.lists(csv_fields, min_size=2, max_size=5), max_size=10), bom=st.booleans())
def test_fuzzed_csv_with_embedded_newlines_and_quotes(rows, bom):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["conversation_id", "customer", "agent", "channel"])
    writer.writerows(rows)  # rows of 2 to 5 fields: some short, some long, all quoted properly
    data = (BOM if bom else b"") + out.getvalue().encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes(data)
        _check(path, len(rows))


def _check_csv_or_clear_error(path: Path, data: bytes) -> None:
    """Random bytes as CSV: rows as Python's csv module splits them, or a SourceError naming the file."""
    from retune.errors import SourceError

    text = data.decode("utf-8", "surrogateescape")
    try:
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    except csv.Error:
        rows = None
    header = rows[0] if rows else []
    if rows is None or not {"customer", "agent"} <= set(header):
        try:
            _check(path, -1)
        except SourceError as exc:
            assert str(path) in str(exc)
            return
        raise AssertionError("a CSV without the required columns was read")
    _check(path, len(rows) - 1)


def test_a_50_mb_single_line_is_quarantined_not_a_crash(tmp_path):
    big = "x" * (50 << 20)
    lines = [
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
        json.dumps({"messages": [{"role": "user", "content": big}, {"role": "assistant", "content": "ok"}]}),
        json.dumps({"messages": [{"role": "user", "content": "bye"}, {"role": "assistant", "content": "bye!"}]}),
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines))
    _check(path, 3)
    csv_path = tmp_path / "big.csv"
    csv_path.write_text(f"conversation_id,customer,agent\nc1,hi,hello\nc2,{big},ok\nc3,bye,bye!\n")
    _check(csv_path, 3)
