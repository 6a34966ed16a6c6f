"""`retune anonymize`: records keep their order and other fields, malformed lines go to a rejected file with their
reason, and every line is counted."""

from __future__ import annotations

import base64
import io
import json
import stat

from typer.testing import CliRunner

from retune.anonymize_file import RejectedFile, anonymize_jsonl, rejected_path
from retune.cli import app
from retune.pii import Pseudonymizer

P = Pseudonymizer(b"test-key")

GOOD = [
    {"messages": [{"role": "user", "content": "I'm Kenji Tanaka, card 4111 1111 1111 1111"},
                  {"role": "assistant", "content": "Thanks Kenji."}], "conversation_id": "a", "n": 1},
    {"messages": [{"role": "user", "content": "no pii"}], "meta": {"ip": "203.0.113.9"}, "conversation_id": "b"},
]  # fmt: skip


def test_records_keep_order_and_other_fields_and_bad_lines_are_set_aside_with_their_reason():
    lines = [
        json.dumps(GOOD[0]).encode(),
        b'{"broken": "mail me at x@example.com',
        json.dumps(GOOD[1]).encode(),
        b'{"text": "caf\xe9 latte"}',  # Latin-1, not UTF-8
        b"   ",
        b'["a", "list"]',
    ]
    src = io.BytesIO(b"\n".join(lines) + b"\r\n")
    dst = io.BytesIO()
    rejected: list[tuple[int, str, bytes]] = []
    report = anonymize_jsonl(src, dst, lambda *r: rejected.append(r), ["messages.content"], P)

    assert report.lines == 6 == report.anonymized + report.rejected and report.rejected == 4
    first, second = (json.loads(line) for line in dst.getvalue().decode().splitlines())
    assert list(first) == ["messages", "conversation_id", "n"] and first["n"] == 1
    assert "Kenji" not in json.dumps(first) and "4111" not in json.dumps(first)
    assert first["messages"][1]["content"] == f"Thanks {P.placeholder('NAME', 'Kenji')}."  # the cue was elsewhere
    assert second == GOOD[1]  # the IP is outside the anonymized fields
    assert report.found == {"NAME": 2, "CARD": 1}
    assert [(n, reason.split(":")[0]) for n, reason, _ in rejected] == [
        (2, "invalid JSON"), (4, "invalid UTF-8"), (5, "empty line"), (6, "not a JSON object")]
    assert rejected[0][2] == lines[1] and "at column" in rejected[0][1]
    assert report.reasons == {"invalid JSON": 1, "invalid UTF-8": 1, "empty line": 1, "not a JSON object": 1}
    assert dst.getvalue().endswith(b"\n")  # each kept line keeps its own ending


def test_rejected_file_is_private_holds_the_raw_line_and_appears_only_when_needed(tmp_path):
    path = tmp_path / "out.rejected.jsonl"
    unused = RejectedFile(path)
    unused.close()
    assert not path.exists()

    path.write_text("stale\n")
    path.chmod(0o644)
    reject = RejectedFile(path)
    reject(3, "invalid JSON: Expecting value at column 1", b"not json")
    reject(7, "invalid UTF-8: byte 2", b"a\xffb")
    reject.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[0] == {"line": 3, "reason": "invalid JSON: Expecting value at column 1", "raw": "not json"}
    assert base64.b64decode(entries[1]["raw_base64"]) == b"a\xffb" and "raw" not in entries[1]


def test_rejected_path_defaults():
    assert rejected_path("out/clean.jsonl", None).as_posix() == "out/clean.rejected.jsonl"
    assert rejected_path("clean.txt", None).as_posix() == "clean.txt.rejected.jsonl"
    assert rejected_path("-", None).as_posix() == "rejected.jsonl"
    assert rejected_path("-", "bad/lines.jsonl").as_posix() == "bad/lines.jsonl"


def test_cli_counts_every_line_and_names_the_rejected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RETUNE_PII_KEY", "cli-test-key")
    src, out = tmp_path / "in.jsonl", tmp_path / "clean.jsonl"
    src.write_text('{"id": 1, "msg": "mail anna.berg@web.de"}\nnot json\n{"id": 2, "msg": "hi"}\n')
    result = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(out), "--fields", "msg"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [1, 2]
    assert "anna.berg" not in out.read_text()
    summary = " ".join(result.output.split())
    assert "3 lines = 2 anonymized + 1 rejected" in summary and "(invalid JSON 1)" in summary
    rejected = tmp_path / "clean.rejected.jsonl"
    assert rejected.name in summary
    assert json.loads(rejected.read_text())["raw"] == "not json"

    missing = CliRunner().invoke(app, ["anonymize", str(tmp_path / "nope.jsonl"), "-o", str(out), "--fields", "m"])
    assert missing.exit_code != 0 and "input file not found" in str(missing.exception)
    onto_itself = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(src), "--fields", "msg"])
    assert onto_itself.exit_code != 0 and "erase" in str(onto_itself.exception)
    assert "anna.berg@web.de" in src.read_text()  # untouched
