"""The command line: help that explains, one-line errors for user mistakes, and `anonymize` on a JSONL file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "retune"


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for command in ("run", "ingest", "retrain", "monitor", "anonymize", "history", "models", "rollback", "ui"):
        assert command in out.stdout


def test_missing_config_is_one_line_not_a_traceback(tmp_path):
    out = run("run", "--config", str(tmp_path / "nope.yaml"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: config file not found: {tmp_path / 'nope.yaml'}"]


def test_bad_config_value_names_the_field(tmp_path):
    config = tmp_path / "retune.yaml"
    config.write_text("training:\n  max_steps: lots\n")
    out = run("ingest", "--config", str(config))
    assert out.returncode == 1
    assert "training.max_steps" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_anonymize_keeps_other_fields_and_order(tmp_path):
    records = [
        {"id": 1, "messages": [{"role": "user", "content": "mail me at jane.doe@example.com"}], "note": "a@b.co"},
        {"id": 2, "messages": [{"role": "assistant", "content": "call +44 20 7946 0958"}], "note": "keep"},
        {"id": 3, "messages": [{"role": "user", "content": "nothing personal"}], "note": "keep"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    dst = tmp_path / "out.jsonl"
    env = {"PATH": "/usr/bin:/bin", "RETUNE_PII_KEY": "test-key"}
    out = run("anonymize", str(src), "--output", str(dst), "--fields", "messages.content", env=env)
    assert out.returncode == 0, out.stderr
    result = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in result] == [1, 2, 3]
    assert "jane.doe@example.com" not in result[0]["messages"][0]["content"]
    assert "<EMAIL_" in result[0]["messages"][0]["content"]
    assert "<PHONE_" in result[1]["messages"][0]["content"]
    assert result[0]["note"] == "a@b.co"  # not a selected field: untouched
    assert result[2] == records[2]
    assert "3 lines = 3 anonymized + 0 rejected" in out.stdout
    assert "jane.doe" not in out.stdout + out.stderr


def test_anonymize_missing_input_is_one_line(tmp_path):
    out = run("anonymize", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o.jsonl"), "--fields", "text")
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: input file not found: {tmp_path / 'missing.jsonl'}"
