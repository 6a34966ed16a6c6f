"""Ingest: counts reconcile, malformed records are quarantined with their reason, dedup, bounded parts."""

import json
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retune.config import SourceConfig
from retune.errors import RetuneError, SourceError
from retune.schema import QUARANTINE_SCHEMA, TURN_SCHEMA
from retune.sources import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHAT_REASONS = {"invalid_json": 1, "missing_field:messages": 1, "empty_text": 1, "unknown_role:bot": 1,
                "text_too_long": 1, "no_assistant_turn": 1, "invalid_utf8": 1}


def _sources(*batches: str) -> list[SourceConfig]:
    return [SourceConfig(path=str(EXAMPLES / b / "*")) for b in batches]


def _read(parts: list[Path]) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in parts])


@pytest.fixture(scope="module")
def batch1(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest")
    return ingest(_sources("batch1"), root / "out", root / "quarantine"), root


def test_counts_reconcile_and_malformed_records_are_quarantined(batch1):
    report, _ = batch1
    assert report.reconciles()
    chat, pairs = report.sources
    assert chat.source.endswith("chat.jsonl") and pairs.source.endswith("pairs.csv")
    assert chat.reasons == CHAT_REASONS
    assert (chat.records_in, chat.quarantined, chat.duplicates) == (170, 7, 3)
    assert pairs.reasons == {"empty_text": 1} and pairs.duplicates == 1
    assert report.records_in == report.kept + report.quarantined + report.duplicates
    assert len(report.new_hashes) == report.kept


def test_parts_have_the_turn_schema_and_sane_rows(batch1):
    report, _ = batch1
    table = _read(report.parts)
    assert table.schema.equals(TURN_SCHEMA)
    assert table.num_rows == report.turns
    rows = table.to_pylist()
    assert {r["role"] for r in rows} == {"system", "user", "assistant"}
    assert all(r["text"] and r["created_at"] is not None and r["channel"] in {"email", "chat", "phone"}
               for r in rows)
    keys = [(r["conversation_id"], r["turn"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (conversation, turn) pair occurs twice"
    assert len({r["content_hash"] for r in rows}) == report.kept


def test_csv_rows_of_a_conversation_are_numbered_exchanges(batch1):
    report, _ = batch1
    rows = [r for r in _read(report.parts).to_pylist() if r["source"].endswith("pairs.csv")]
    by_conv: dict[str, list[int]] = {}
    for r in rows:
        by_conv.setdefault(r["conversation_id"], []).append(r["turn"])
    longest = max(by_conv.values(), key=len)
    assert longest == list(range(len(longest))) and len(longest) >= 4
    assert all(r["role"] == ("user" if r["turn"] % 2 == 0 else "assistant") for r in rows)


def test_quarantine_file_is_private_and_holds_the_raw_records(batch1):
    report, root = batch1
    path = report.quarantine_path
    assert path.parent == root / "quarantine" and path.name.startswith("quarantine-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    table = pq.read_table(path)
    assert table.schema.equals(QUARANTINE_SCHEMA)
    assert table.num_rows == report.quarantined
    too_long = [r for r in table.to_pylist() if r["reason"] == "text_too_long"]
    assert len(too_long[0]["raw"]) > 8000


def test_reingest_with_known_hashes_adds_nothing(batch1, tmp_path):
    first, _ = batch1
    again = ingest(_sources("batch1"), tmp_path / "out", tmp_path / "q", known_hashes=first.new_hashes)
    assert again.kept == 0 and again.parts == [] and again.turns == 0
    assert again.duplicates == first.kept + first.duplicates
    assert again.reconciles()


def test_small_batch_size_gives_several_parts_with_the_same_rows(batch1, tmp_path):
    first, _ = batch1
    small = ingest(_sources("batch1"), tmp_path / "out", tmp_path / "q", batch_size=50)
    assert len(small.parts) == -(-first.kept // 50) and len(small.parts) > 3
    assert [p.name for p in small.parts][:2] == ["part-00000.parquet", "part-00001.parquet"]
    assert max(pq.read_metadata(p).num_rows for p in small.parts) < first.turns
    key = ["conversation_id", "turn", "content_hash"]
    assert _read(small.parts).sort_by([(k, "ascending") for k in key]).equals(
        _read(first.parts).sort_by([(k, "ascending") for k in key]))


def test_two_batches_dedup_across_files_and_keep_counts(tmp_path):
    report = ingest(_sources("batch1", "batch2"), tmp_path / "out", tmp_path / "q")
    assert len(report.sources) == 4 and report.reconciles()
    assert report.reasons["empty_text"] == 4 and report.reasons["invalid_json"] == 2
    assert report.duplicates == 8


def test_relative_glob_and_source_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    report = ingest([SourceConfig(path="batch2/*.csv")], tmp_path / "out", tmp_path / "q")
    assert [s.source for s in report.sources] == ["batch2/pairs.csv"]
    with pytest.raises(SourceError, match="matched no files"):
        ingest([SourceConfig(path="nothing/*.jsonl")], tmp_path / "o2", tmp_path / "q")
    with pytest.raises(SourceError, match="not found"):
        ingest([SourceConfig(path="missing.jsonl")], tmp_path / "o3", tmp_path / "q")
    odd = tmp_path / "data.txt"
    odd.write_text("x\n")
    with pytest.raises(SourceError, match="format"):
        ingest([SourceConfig(path=str(odd))], tmp_path / "o4", tmp_path / "q")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("question,answer\nhi,hello\n")
    with pytest.raises(SourceError, match="customer, agent"):
        ingest([SourceConfig(path=str(bad_csv))], tmp_path / "o5", tmp_path / "q")
    with pytest.raises(RetuneError, match="already holds parts"):
        ingest([SourceConfig(path="batch2/*.csv")], tmp_path / "out", tmp_path / "q")


def test_record_level_rules(tmp_path):
    lines = [
        # content as a list of parts, no id (derived), no channel (from the source config), naive time
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                      {"role": "assistant", "content": "Hello!"}], "created_at": "2026-09-01T10:00:00"},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
         "conversation_id": "c1", "created_at": "yesterday"},
        {"messages": [{"role": "user"}], "conversation_id": "c2"},
        {"messages": "Hi", "conversation_id": "c3"},
        ["not", "an", "object"],
    ]
    path = tmp_path / "few.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")  # a trailing blank line is no record
    report = ingest([SourceConfig(path=str(path), channel="chat")], tmp_path / "out", tmp_path / "q")
    (counts,) = report.sources
    assert counts.records_in == 5 and counts.kept == 1
    assert counts.reasons == {"bad_field:created_at": 1, "missing_field:content": 1, "bad_field:messages": 1,
                              "not_an_object": 1}
    (row, _) = _read(report.parts).to_pylist()
    assert row["conversation_id"].startswith("h-") and row["channel"] == "chat"
    assert row["created_at"].isoformat() == "2026-09-01T10:00:00+00:00" and row["text"] == "Hi"
    again = ingest([SourceConfig(path=str(path))], tmp_path / "out2", tmp_path / "q")
    assert _read(again.parts).column("conversation_id")[0].as_py() == row["conversation_id"]


def _write_compressed(path: Path, data: bytes) -> Path:
    import gzip

    import zstandard

    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    return path


def test_gzip_and_zstd_sources_give_the_same_rows_as_plain_ones(tmp_path):
    plain = ingest(_sources("batch1"), tmp_path / "plain", tmp_path / "q")
    packed = tmp_path / "packed"
    packed.mkdir()
    _write_compressed(packed / "chat.jsonl.gz", (EXAMPLES / "batch1" / "chat.jsonl").read_bytes())
    _write_compressed(packed / "pairs.csv.zst", (EXAMPLES / "batch1" / "pairs.csv").read_bytes())
    report = ingest([SourceConfig(path=str(packed))], tmp_path / "out", tmp_path / "q")
    assert [Path(s.source).name for s in report.sources] == ["chat.jsonl.gz", "pairs.csv.zst"]
    assert [(s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons) for s in report.sources] == [
        (s.records_in, s.kept, s.quarantined, s.duplicates, s.reasons) for s in plain.sources]
    assert report.new_hashes == plain.new_hashes and report.turns == plain.turns


def test_prompt_completion_turn_rows_parquet_and_a_field_mapping(tmp_path):
    pc = tmp_path / "pc.jsonl"
    pc.write_text("\n".join(json.dumps(x) for x in [
        {"prompt": "Where is my parcel?", "completion": "It ships today.", "conversation_id": "p1"},
        {"prompt": "And the invoice?", "completion": "Attached.", "conversation_id": "p1",
         "system": "Be brief."},
        {"prompt": "no answer"},
    ]) + "\n")
    turns = tmp_path / "turns.jsonl"
    turns.write_text("\n".join(json.dumps(x) for x in [
        {"conversation_id": "t1", "role": "user", "content": "Hi"},
        {"conversation_id": "t1", "role": "assistant", "content": "Hello!"},
        {"conversation_id": "t1", "role": "user", "content": "Hi"},  # same text later: not a duplicate
        {"conversation_id": "t1", "role": "bot", "content": "?"},
        {"role": "user", "content": "orphan"},
    ]) + "\n")
    mapped = tmp_path / "export.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"ticket": "m1", "dialog": [{"speaker": "customer", "utterance": "Refund please"},
                                    {"speaker": "agent", "utterance": "Done."}]},
        {"ticket": "m2", "dialog": [{"speaker": "customer", "utterance": "Hello"},
                                    {"speaker": "agent", "utterance": "Hi!"}]},
    ]), mapped)
    report = ingest([
        SourceConfig(path=str(pc), format="prompt_completion"),
        SourceConfig(path=str(turns), format="turns"),
        SourceConfig(path=str(mapped), roles={"customer": "user", "agent": "assistant"},
                     fields={"conversation_id": "ticket", "messages": "dialog", "role": "speaker",
                             "content": "utterance"}),
    ], tmp_path / "out", tmp_path / "q")
    assert report.reconciles()
    pc_counts, turn_counts, pq_counts = report.sources
    assert (pc_counts.kept, pc_counts.reasons) == (2, {"missing_field:completion": 1})
    assert turn_counts.kept == 3
    assert turn_counts.reasons == {"unknown_role:bot": 1, "missing_field:conversation_id": 1}
    assert pq_counts.kept == 2 and pq_counts.quarantined == 0
    rows = _read(report.parts).to_pylist()
    p1 = [(r["turn"], r["role"], r["text"]) for r in rows if r["conversation_id"] == "p1"]
    assert p1 == [(0, "user", "Where is my parcel?"), (1, "assistant", "It ships today."),
                  (2, "system", "Be brief."), (3, "user", "And the invoice?"), (4, "assistant", "Attached.")]
    t1 = [(r["turn"], r["role"], r["text"]) for r in rows if r["conversation_id"] == "t1"]
    assert t1 == [(0, "user", "Hi"), (1, "assistant", "Hello!"), (2, "user", "Hi")]
    m1 = [(r["role"], r["text"]) for r in rows if r["conversation_id"] == "m1"]
    assert m1 == [("user", "Refund please"), ("assistant", "Done.")]
