"""The example generator is deterministic, matches the committed files, and its two batches really differ."""

import csv
import importlib.util
import json
import re
import statistics
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = ["batch1/chat.jsonl", "batch1/pairs.csv", "batch2/chat.jsonl", "batch2/pairs.csv", "pii_truth.jsonl"]


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_generator_is_deterministic_and_matches_committed_files(generator, tmp_path):
    generator.generate(tmp_path / "a")
    generator.generate(tmp_path / "b")
    for name in FILES:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert first == (EXAMPLES / name).read_bytes(), f"{name} is stale: run python examples/generate.py"


def test_other_seed_gives_other_data(generator, tmp_path):
    generator.generate(tmp_path / "a", seed=1)
    assert (tmp_path / "a/batch1/chat.jsonl").read_bytes() != (EXAMPLES / "batch1/chat.jsonl").read_bytes()


def test_batches_are_small():
    for batch in ("batch1", "batch2"):
        size = sum(p.stat().st_size for p in (EXAMPLES / batch).iterdir())
        assert size < 1_000_000


def _user_texts_and_channels(batch: str) -> tuple[list[str], list[str]]:
    texts, channels = [], []
    for raw in (EXAMPLES / batch / "chat.jsonl").read_bytes().splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if "messages" not in rec:
            continue
        channels.append(rec["channel"])
        texts += [m["content"] for m in rec["messages"] if m["role"] == "user"]
    with (EXAMPLES / batch / "pairs.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["customer"])
    return texts, channels


def test_second_batch_drifts_in_simple_statistics():
    t1, c1 = _user_texts_and_channels("batch1")
    t2, c2 = _user_texts_and_channels("batch2")
    words1 = statistics.mean(len(t.split()) for t in t1)
    words2 = statistics.mean(len(t.split()) for t in t2)
    links1 = sum("https://" in t for t in t1) / len(t1)
    links2 = sum("https://" in t for t in t2) / len(t2)
    chat1, chat2 = c1.count("chat") / len(c1), c2.count("chat") / len(c2)
    assert words2 < 0.7 * words1
    assert links2 > links1 + 0.15
    assert chat2 > chat1 + 0.3
    assert len(t1) >= 300 and len(t2) >= 300


def test_truth_values_occur_in_their_conversations():
    truth = [json.loads(line) for line in (EXAMPLES / "pii_truth.jsonl").read_text().splitlines()]
    assert {e for t in truth for e, _ in t["pii"]} == {"EMAIL", "PHONE", "CARD", "IBAN", "IP", "NAME", "ADDRESS"}
    chat = (EXAMPLES / "batch1/chat.jsonl").read_text(encoding="utf-8", errors="replace")
    for t in truth:
        if t["batch"] == "batch1" and t["file"] == "chat.jsonl":
            line = next(line for line in chat.splitlines() if t["conversation_id"] in line)
            for _, value in t["pii"]:
                assert re.search(re.escape(json.dumps(value, ensure_ascii=False)[1:-1]), line), value
