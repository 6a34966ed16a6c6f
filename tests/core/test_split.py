"""Files read in pieces (JSONL byte ranges, Parquet row groups) land exactly what one sequential read lands."""

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retune import sources
from retune.config import SourceConfig
from retune.dedup import SourceLedger
from retune.sources import ingest_files, ingest_partition, merge_partitions, partitions, resolve_sources

MULTIBYTE = "é€😀"  # 2, 3 and 4 bytes in UTF-8: a cut inside one must not split the character


def _chat(i: int, text: str = "") -> dict:
    return {"conversation_id": f"c{i % 7}-{i}", "messages": [{"role": "user", "content": f"q{i} {text}"},
                                                             {"role": "assistant", "content": f"a{i}"}]}


def _pair(i: int) -> dict:
    # rows of a conversation without `messages`: their turn numbers continue over the file (state across pieces)
    return {"conversation_id": f"p{i % 3}", "customer": f"c{i} {MULTIBYTE}", "agent": f"ok {i % 4}"}


def _turn(i: int, explicit: bool) -> dict:
    row = {"conversation_id": f"t{i % 4}", "role": "user" if i % 2 else "assistant", "content": f"x{i % 5}"}
    if explicit:
        row["turn"] = i % 9
    return row


LINE_KINDS = ["chat", "pair", "multibyte", "duplicate", "bad_json", "bad_utf8", "blank", "crlf", "empty_text"]


def _line(kind: str, i: int) -> bytes:
    if kind == "chat":
        return json.dumps(_chat(i)).encode() + b"\n"
    if kind == "pair":
        return json.dumps(_pair(i), ensure_ascii=False).encode() + b"\n"
    if kind == "multibyte":
        return json.dumps(_chat(i, MULTIBYTE * 3), ensure_ascii=False).encode() + b"\n"
    if kind == "duplicate":
        return json.dumps(_chat(0)).encode() + b"\n"  # the same record as line kind chat with i = 0
    if kind == "bad_json":
        return b'{"conversation_id": "broken", "messages": [\n'
    if kind == "bad_utf8":
        return b'{"conversation_id": "u", "customer": "\xff\xfe", "agent": "x"}\n'
    if kind == "blank":
        return b"   \n"
    if kind == "crlf":
        return json.dumps(_chat(i, "crlf")).encode() + b"\r\n"
    return b'{"customer": "", "agent": "x"}\n'


def _jsonl(path: Path, kinds: list[str], final_newline: bool = True) -> Path:
    data = b"".join(_line(k, i) for i, k in enumerate(kinds))
    path.write_bytes(data if final_newline else data.rstrip(b"\r\n"))
    return path


def _turns_jsonl(path: Path, n: int) -> Path:
    lines = [json.dumps(_turn(i, explicit=i % 6 == 5)) for i in range(n)]
    lines[n // 2] = lines[1]  # an exact duplicate in the middle
    path.write_text("\n".join(lines) + "\n")
    return path


def _parquet(path: Path, n: int, group: int) -> Path:
    # exchanges of a few conversations: their turn numbers continue across row groups (state across pieces)
    rows = [{"conversation_id": f"p{i % 5}", "customer": f"c{i}", "agent": f"a{i % 3}"} for i in range(n)]
    rows[n - 2]["customer"] = ""  # quarantined, in the last row group
    rows[n // 2] = rows[1]  # an exact duplicate
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group)
    return path


def _ordered_rows(parts: list[Path]) -> list[dict]:
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pylist() if parts else []


def _quarantine(report) -> list[dict]:
    return pq.read_table(report.quarantine_path).to_pylist() if report.quarantine_path else []


def _summary(report) -> list[tuple]:
    return [(s.source, s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons, s.sha256, s.fingerprint)
            for s in report.sources]


def _in_pieces(files, groups, tmp: Path, known=frozenset()):
    results = [ingest_partition(g, tmp / "work", tmp / "q", i, batch_size=7) for i, g in enumerate(groups)]
    return merge_partitions(results, tmp / "merged", tmp / "q", known_hashes=known, batch_size=7)


def _assert_same(files, groups, tmp: Path, known=frozenset()):
    one = ingest_files(files, tmp / "one", tmp / "q1", known_hashes=known, batch_size=5)
    many = _in_pieces(files, groups, tmp, known)
    assert _summary(many) == _summary(one) and many.reconciles()
    assert many.turns == one.turns and _ordered_rows(many.parts) == _ordered_rows(one.parts)  # same order too
    assert _quarantine(many) == _quarantine(one)
    return one, many


def _cut(file: sources.SourceFile, positions: list[int]) -> list[sources.SourceFile]:
    """The file's pieces cut at these byte positions (each moved to the next line start, as `partitions` does)."""
    with open(file.location, "rb") as f:
        bounds = sorted({0, file.size} | {sources._next_line_start(f, p, file.size) for p in positions if p > 0})
    spans = list(zip(bounds, bounds[1:], strict=False))
    return [replace(file, span=s, piece=(i, len(spans))) for i, s in enumerate(spans)]


def test_mixed_formats_split_over_processes_equal_one_process(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    kinds = [LINE_KINDS[(i * 5) % len(LINE_KINDS)] for i in range(300)]
    _jsonl(data / "a-chat.jsonl", kinds, final_newline=False)
    (data / "b-small.csv").write_text("conversation_id,customer,agent\nz,hello,hi\nz,\"two\nlines\",ok\n")
    with gzip.open(data / "c-zipped.jsonl.gz", "wb") as f:
        f.write(b"".join(_line(k, i) for i, k in enumerate(kinds[:40])))
    _parquet(data / "d-rows.parquet", 1000, group=40)
    files = resolve_sources([SourceConfig(path=str(data / "[abcd]*"))])
    files += resolve_sources([SourceConfig(path=str(_turns_jsonl(data / "e-turns.jsonl", 400)), format="turns")])
    known = {sources.turn_hash("t0", 0, "assistant", "x0")}  # one record already in the store
    groups = partitions(files, 2, min_piece_bytes=1)
    units = [u for g in groups for u in g]
    by_file = {f.location: [u for u in units if u.location == f.location] for f in files}
    assert len(by_file[files[0].location]) > 1 and len(by_file[files[3].location]) > 1  # JSONL and Parquet cut
    assert len(by_file[files[4].location]) > 1
    assert len(by_file[files[1].location]) == len(by_file[files[2].location]) == 1  # CSV and gzip stay whole
    one, many = _assert_same(files, groups, tmp_path, known)
    assert many.duplicates >= 3 and many.quarantined > 10 and all(s.sha256 for s in many.sources)
    assert not list((tmp_path / "q").glob("*-p0000*.parquet"))  # partition quarantine files merged away


def test_cuts_at_awkward_places_equal_one_process(tmp_path):
    path = _jsonl(tmp_path / "x.jsonl", ["chat", "bad_json", "multibyte", "crlf", "pair", "pair", "bad_utf8",
                                         "blank", "pair", "duplicate", "multibyte", "chat"], final_newline=False)
    data = path.read_bytes()
    (file,) = resolve_sources([SourceConfig(path=str(path))])
    bad = data.index(b'{"conversation_id": "broken"')
    euro = data.index(MULTIBYTE.encode()) + 3  # inside the 3-byte euro sign
    crlf = data.index(b"\r\n") + 1  # between \r and \n
    last = data.rindex(b"\n") + 1  # the start of the final line, which has no newline
    for cuts in ([bad], [bad + 1], [euro], [crlf], [last], [bad, euro, crlf, last], list(range(1, len(data), 37))):
        pieces = _cut(file, cuts)
        assert len(pieces) > 1
        _assert_same([file], [[p] for p in pieces], tmp_path / f"cut-{cuts[0]}-{len(cuts)}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(LINE_KINDS), min_size=1, max_size=40),
       cuts=st.lists(st.floats(0, 1), max_size=5), final_newline=st.booleans(), turns=st.booleans())
def test_any_cuts_equal_one_process(tmp_path_factory, kinds, cuts, final_newline, turns):
    tmp = tmp_path_factory.mktemp("cuts")
    path = _jsonl(tmp / "x.jsonl", kinds, final_newline)
    if turns:  # one turn per row: the turn number is in the hash, resolved at the merge
        path.write_text("\n".join(json.dumps(_turn(i, explicit=k == "pair")) for i, k in enumerate(kinds)))
    (file,) = resolve_sources([SourceConfig(path=str(path), format="turns" if turns else "auto")])
    pieces = _cut(file, [int(c * file.size) for c in cuts])
    _assert_same([file], [[p] for p in pieces], tmp)


def test_a_missing_piece_leaves_the_file_unrecorded(tmp_path):
    path = _jsonl(tmp_path / "x.jsonl", ["chat"] * 30)
    (file,) = resolve_sources([SourceConfig(path=str(path))])
    pieces = _cut(file, [file.size // 2])
    first_only = merge_partitions([ingest_partition([pieces[0]], tmp_path / "w", tmp_path / "q", 0)],
                                 tmp_path / "m", tmp_path / "q")
    ledger = SourceLedger(tmp_path / "ledger.json", "local:test")
    assert first_only.sources[0].sha256 == "" and ledger.record(first_only, "c1") == 0
    whole = _in_pieces([file], [[p] for p in pieces], tmp_path / "all")
    assert whole.sources[0].sha256 == sources.file_sha256(str(path)) and whole.sources[0].records_in == 30
    assert ledger.record(whole, "c2") == 1


def test_small_files_and_one_process_are_not_cut(tmp_path):
    path = _jsonl(tmp_path / "x.jsonl", ["chat"] * 30)
    files = resolve_sources([SourceConfig(path=str(path))])
    assert partitions(files, 2) == [files]  # under MIN_PIECE_BYTES
    assert partitions(files, 1, min_piece_bytes=1) == [files]
    assert len(partitions(files, 2, min_piece_bytes=1)) == 8


@pytest.mark.parametrize("processes", [2, 3])
def test_a_file_s_pieces_never_share_a_partition(tmp_path, processes):
    path = _jsonl(tmp_path / "x.jsonl", ["chat"] * 200)
    files = resolve_sources([SourceConfig(path=str(path))])
    for group in partitions(files, processes, min_piece_bytes=1):
        assert len({u.location for u in group}) == len(group)


def test_one_turn_per_row_rehashed_after_the_cut(tmp_path):
    # after the cut, "hello" is turn 2 (two turns before it), not the 0 a piece reading alone would assume: it must
    # not be taken as the same record as the explicit turn 0 "hello" that follows it
    rows = [{"conversation_id": "t", "role": "user", "content": text} for text in ("first", "second", "hello")]
    rows.append({"conversation_id": "t", "role": "user", "content": "hello", "turn": 0})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (file,) = resolve_sources([SourceConfig(path=str(path), format="turns")])
    data = path.read_bytes()
    pieces = _cut(file, [data.rindex(b"\n", 0, data.index(b"hello")) + 1])  # the start of the first "hello" line
    one, _ = _assert_same([file], [[p] for p in pieces], tmp_path)
    assert one.kept == 4 and [r["turn"] for r in _ordered_rows(one.parts)] == [0, 1, 2, 0]


def test_remote_files_are_cut_with_ranged_reads(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    kinds = [LINE_KINDS[(i * 7) % len(LINE_KINDS)] for i in range(120)]
    fs.pipe("/split-test/chat.jsonl", _jsonl(tmp_path / "chat.jsonl", kinds).read_bytes())
    fs.pipe("/split-test/rows.parquet", _parquet(tmp_path / "rows.parquet", 300, group=30).read_bytes())
    try:
        files = resolve_sources([SourceConfig(path="memory://split-test/*")])
        groups = partitions(files, 2, min_piece_bytes=1)
        assert all(f.location.startswith("memory://") for f in files) and len(groups) > len(files)
        _assert_same(files, groups, tmp_path)
    finally:
        fs.rm("/split-test", recursive=True)


def test_records_of_two_files_at_the_same_line_stay_apart_in_the_merge(tmp_path):
    _jsonl(tmp_path / "a.jsonl", ["chat"])
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps(_chat(1)) + "\n")  # line 0 too, right after a's line 0 in the same part
    files = resolve_sources([SourceConfig(path=str(tmp_path / "*.jsonl"))])
    store = ingest_files(files[1:], tmp_path / "store", tmp_path / "q0")
    known = set(pq.read_table(store.parts[0])["content_hash"].to_pylist())  # b's record is already in the store
    _, many = _assert_same(files, [files], tmp_path, known)
    assert [(s.kept, s.duplicates) for s in many.sources] == [(1, 0), (0, 1)]
