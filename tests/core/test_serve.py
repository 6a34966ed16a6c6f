"""`retune serve` over real HTTP on 127.0.0.1: production answers, cache, canary, fallback, metrics, feedback that
ingest keeps, hot reload after promote, and one-line errors from the command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from dag_config import stop_process_group  # noqa: E402

from retune.config import Config, SourceConfig  # noqa: E402
from retune.registry import Registry  # noqa: E402
from retune.serve import VERSION_HEADER, bucket, conversation_key, previous_production, serving  # noqa: E402
from retune.sources import ingest  # noqa: E402
from retune.store import LocalStore  # noqa: E402

BIN = Path(sys.executable).parent / "retune"
SYSTEM_PROMPT = "You are a concise support agent."
MAX_TOKENS = 6  # the tiny model's words are noise; a few tokens are enough to exercise generation


@pytest.fixture(scope="module")
def package(tiny_base_model, tmp_path_factory) -> Path:
    """A model package as tasks/promote.py lays it out (onnx/ + metrics.json), exported with retune's own code."""
    from retune.export import export_onnx

    out = tmp_path_factory.mktemp("package")
    export_onnx(tiny_base_model, out / "onnx")
    (out / "metrics.json").write_text("{}")
    (out / "system_prompt.md").write_text(SYSTEM_PROMPT + "\n")
    return out


def make_config(tmp_path: Path, **serve) -> Config:
    return Config.model_validate({
        "workdir": str(tmp_path / "work"),
        "watch": {"landing": [str(tmp_path / "landing")]},
        "serve": {"reload_seconds": 0, **serve},
    })


@pytest.fixture
def registry(tmp_path, package) -> Registry:
    """v1 (production), v2 (the same weights), v3 (a corrupt ONNX graph) in a fresh local store."""
    registry = Registry(LocalStore(tmp_path / "work" / "store"))
    lineage = {"onnx_variant": "fp32", "dataset_commit": "c0"}
    registry.register(package, {}, lineage)
    registry.register(package, {}, lineage)
    broken = tmp_path / "broken"
    (broken / "onnx").mkdir(parents=True)
    for f in (package / "onnx").iterdir():
        (broken / "onnx" / f.name).write_bytes(b"not an onnx graph" if f.name == "model.onnx" else f.read_bytes())
    registry.register(broken, {}, lineage)
    registry.promote("v1", "first")
    return registry


def chat(url: str, text: str, *, user: str | None = None, history: list[dict] | None = None) -> httpx.Response:
    messages = [*(history or []), {"role": "user", "content": text}]
    body = {"model": "retune", "messages": messages, "max_tokens": MAX_TOKENS, "temperature": 0}
    if user:
        body["user"] = user
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        sample, _, label_text = key.partition("{")
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if sample == name and got == wanted:
            return float(value)
    return 0.0


def prompt_tokens(package: Path, text: str) -> int:
    """Tokens of a one-message chat as training renders it: under the version's system prompt."""
    from transformers import AutoTokenizer

    from retune.prompts import with_system_prompt
    from retune.training.dataset import prepare_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(package / "onnx")
    prepare_tokenizer(tokenizer)
    messages = with_system_prompt([{"role": "system", "content": "ignored"}, {"role": "user", "content": text}],
                                  SYSTEM_PROMPT)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert SYSTEM_PROMPT in rendered
    return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def test_production_answers_then_the_cache_does(tmp_path, registry, package):
    with serving(make_config(tmp_path), "127.0.0.1", 0, registry=registry) as s:
        first = chat(s.url, "Hi, where is my order 123?")
        assert first.status_code == 200, first.text
        body = first.json()
        assert first.headers[VERSION_HEADER] == "v1" and body["retune"]["version"] == "v1"
        assert body["object"] == "chat.completion" and body["model"] == "retune-v1"
        usage = body["usage"]
        assert usage["prompt_tokens"] == prompt_tokens(package, "Hi, where is my order 123?")
        assert 1 <= usage["completion_tokens"] <= MAX_TOKENS
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert body["choices"][0]["finish_reason"] in ("stop", "length")
        assert body["retune"]["cached"] is False

        again = chat(s.url, "  Hi,   where is my order 123? ")  # normalized whitespace: the same request
        assert again.headers["X-Retune-Cache"] == "hit" and again.json()["retune"]["cached"] is True
        assert again.json()["choices"] == body["choices"] and again.json()["id"] != body["id"]
        assert chat(s.url, "Hi, where is my parcel 9?").headers["X-Retune-Cache"] == "miss"
        parts = httpx.post(f"{s.url}/v1/chat/completions", json={"max_tokens": MAX_TOKENS, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi, where is my order 123?"}]}]})
        assert parts.headers["X-Retune-Cache"] == "hit"  # content as a list of text parts is the same request

        health = httpx.get(f"{s.url}/healthz").json()
        assert health["production"] == "v1" and health["loaded"] == {"v1": "fp32"}

        text = httpx.get(f"{s.url}/metrics").text
        assert metric(text, "retune_serve_cache_hits_total", version="v1") == 2
        assert metric(text, "retune_serve_cache_misses_total", version="v1") == 2
        assert metric(text, "retune_serve_cache_hit_ratio", version="v1") == pytest.approx(2 / 4)
        generated = body["usage"]["completion_tokens"]
        assert metric(text, "retune_serve_generated_tokens_total", version="v1") >= generated
        assert metric(text, "retune_serve_request_seconds_count", version="v1", cache="hit") == 2
        assert metric(text, "retune_serve_request_seconds_count", version="v1", cache="miss") == 2
        assert metric(text, "retune_serve_model_info", version="v1", role="production") == 1

        bad = httpx.post(f"{s.url}/v1/chat/completions", json={"messages": [{"role": "tool", "content": "x"}]})
        assert bad.status_code == 422


def test_canary_share_routes_whole_conversations(tmp_path, registry):
    cfg = make_config(tmp_path, canary_version="v2", canary_share=0.5, response_cache_size=0)
    with serving(cfg, "127.0.0.1", 0, registry=registry) as s:
        answered = {}
        for i in range(16):
            opening = f"Any news about refund {100 + i}?"
            expected = "v2" if bucket(conversation_key([{"role": "user", "content": opening}])) < 0.5 else "v1"
            response = chat(s.url, opening)
            assert response.headers[VERSION_HEADER] == expected
            assert response.json()["retune"]["canary"] is (expected == "v2")
            answered[opening] = expected
        assert set(answered.values()) == {"v1", "v2"}  # 16 conversations: both sides get some
        # A later turn of a conversation goes where its opening went.
        opening, version = next(iter(answered.items()))
        history = [{"role": "user", "content": opening}, {"role": "assistant", "content": "Let me check."}]
        assert chat(s.url, "Thank you!", history=history).headers[VERSION_HEADER] == version
        text = httpx.get(f"{s.url}/metrics").text
        for v in ("v1", "v2"):
            expected_count = sum(x == v for x in answered.values()) + (v == version)
            assert metric(text, "retune_serve_cache_misses_total", version=v) == expected_count


def test_a_broken_version_falls_back_and_is_counted(tmp_path, registry):
    cfg = make_config(tmp_path, canary_version="v3", canary_share=1.0)
    with serving(cfg, "127.0.0.1", 0, registry=registry) as s:
        response = chat(s.url, "Can you help me with invoice 7 please?")
        assert response.status_code == 200
        assert response.headers[VERSION_HEADER] == "v1" and response.json()["retune"]["fallback_from"] == "v3"
        assert "v3" in httpx.get(f"{s.url}/healthz").json()["broken"]

        # Production itself broken: the previous production version answers.
        registry.promote("v3", "bad release")
        assert httpx.post(f"{s.url}/admin/reload").json()["production"] == "v3"
        response = chat(s.url, "Any news about delivery 5?")
        assert response.headers[VERSION_HEADER] == "v1" and response.json()["retune"]["fallback_from"] == "v3"
        text = httpx.get(f"{s.url}/metrics").text
        assert metric(text, "retune_serve_errors_total", version="v3", stage="load") >= 1
        assert metric(text, "retune_serve_fallbacks_total", failed_version="v3", version="v1") == 2


def test_feedback_lands_anonymized_and_ingest_keeps_it(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("RETUNE_PII_KEY", "serve-test-key")
    with serving(make_config(tmp_path), "127.0.0.1", 0, registry=registry) as s:
        answer = chat(s.url, "Hi, I'm Jane Roe, mail me at jane.roe@example.com about order 55").json()
        correction = "Jane, order 55 ships tomorrow; call us on +44 20 7946 0958 if not."
        rated = httpx.post(f"{s.url}/feedback", json={"response_id": answer["id"], "rating": 5,
                                                      "correction": correction})
        assert rated.status_code == 200 and rated.json()["status"] == "landed", rated.text
        again = httpx.post(f"{s.url}/feedback", json={"response_id": answer["id"], "rating": 5})
        assert again.status_code == 404

        poor = chat(s.url, "Any news about account 8?").json()
        held = httpx.post(f"{s.url}/feedback", json={"response_id": poor["id"], "rating": 1})
        assert held.json()["status"] == "held_back"  # an uncorrected bad answer must not become training data
        text = httpx.get(f"{s.url}/metrics").text
        assert metric(text, "retune_serve_feedback_total", version="v1", outcome="landed") == 1

    files = list((tmp_path / "landing").iterdir())
    assert [f.name for f in files] == [rated.json()["file"]]  # no partial file left behind
    raw = files[0].read_text()
    for secret in ("jane.roe@example.com", "7946 0958", "Jane Roe", "Jane,"):
        assert secret not in raw
    record = json.loads(raw)
    assert record["rating"] == 5 and record["corrected"] is True and record["model_version"] == "v1"
    assert "<EMAIL_" in record["messages"][0]["content"] and "<PHONE_" in record["messages"][-1]["content"]

    report = ingest([SourceConfig(path=str(tmp_path / "landing" / "*.jsonl"))], tmp_path / "turns", tmp_path / "q")
    assert (report.records_in, report.kept, report.quarantined) == (1, 1, 0)
    import pyarrow.parquet as pq

    turns = pq.read_table(report.parts[0]).to_pylist()
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["text"] == record["messages"][1]["content"] and turns[0]["channel"] == "feedback"


def test_hot_reload_follows_promote_and_rollback(tmp_path, registry):
    with serving(make_config(tmp_path, reload_seconds=0.2), "127.0.0.1", 0, registry=registry) as s:
        assert chat(s.url, "Hello").headers[VERSION_HEADER] == "v1"
        other = Registry(LocalStore(tmp_path / "work" / "store"))  # as `retune promote` would, another process
        other.promote("v2", "better")
        wait_for(lambda: httpx.get(f"{s.url}/healthz").json()["production"] == "v2")
        assert chat(s.url, "Hello again").headers[VERSION_HEADER] == "v2"
        assert httpx.get(f"{s.url}/healthz").json()["previous"] == "v1"
        other.rollback()
        wait_for(lambda: httpx.get(f"{s.url}/healthz").json()["production"] == "v1")
        assert chat(s.url, "Hello once more").headers[VERSION_HEADER] == "v1"


def wait_for(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_previous_production_is_what_rollback_restores():
    history = [
        {"action": "promote", "version": "v1", "previous": None},
        {"action": "promote", "version": "v2", "previous": "v1"},
        {"action": "rollback", "version": "v1", "previous": "v2"},
    ]
    assert previous_production(history, "v2") == "v1"
    assert previous_production(history, "v1") is None  # v1 was never promoted over anything


@pytest.mark.slow
def test_the_cli_serves_and_user_mistakes_are_one_line(tmp_path, registry):
    config = tmp_path / "retune.yaml"
    config.write_text(yaml.safe_dump(make_config(tmp_path).model_dump(mode="json")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def retune(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), "serve", "--config", str(config), *args], capture_output=True, text=True,
                              timeout=120, env=env)

    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--config", str(config), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}") or proc.poll() is not None, timeout=90)
        assert proc.poll() is None, proc.communicate()
        assert chat(f"http://127.0.0.1:{port}", "Hello").headers[VERSION_HEADER] == "v1"

        taken = retune("--port", str(port))
        assert taken.returncode == 1 and len(taken.stderr.strip().splitlines()) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    finally:
        stop_process_group(proc)

    config.write_text(yaml.safe_dump({**make_config(tmp_path).model_dump(mode="json"),
                                      "serve": {"canary_version": "v9"}}))
    unknown = retune("--port", "0")
    assert unknown.returncode == 1 and unknown.stderr.strip().splitlines() == [
        "error: serve.canary_version: unknown model version 'v9' (registered: v1, v2, v3)"
    ]

    config.write_text(yaml.safe_dump({"workdir": str(tmp_path / "empty")}))
    empty = retune("--port", "0")
    assert empty.returncode == 1 and "no model in production yet" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_replicas_answer_at_once_and_alike(tmp_path, registry):
    from concurrent.futures import ThreadPoolExecutor

    questions = [f"Hello, I have a problem with parcel {n}." for n in range(6)]
    with serving(make_config(tmp_path, replicas=2, response_cache_size=0), "127.0.0.1", 0, registry=registry) as s:
        with ThreadPoolExecutor(6) as pool:
            together = list(pool.map(lambda q: chat(s.url, q), questions))
        one_by_one = [chat(s.url, q) for q in questions]
    assert all(r.status_code == 200 for r in together + one_by_one)
    assert [r.json()["choices"] for r in together] == [r.json()["choices"] for r in one_by_one]  # greedy: same


def test_the_decoder_generates_what_optimum_generates(package):
    """The served decoder (KV cache in IO binding) picks the same greedy tokens as optimum's generate()."""
    import torch
    from transformers import AutoTokenizer

    from retune.export import load_onnx
    from retune.serve import Decoder

    tokenizer = AutoTokenizer.from_pretrained(package / "onnx")
    reference = load_onnx(package / "onnx")
    decoder = Decoder(package / "onnx", threads=1)
    eos = tokenizer.eos_token_id
    chat_prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Where is my parcel 42?"}],
                                                tokenize=False, add_generation_prompt=True)
    lengths = []
    for text in ("Hi, where is my order 123?", "Thank you!", chat_prompt):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            expected = reference.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                          max_new_tokens=12, do_sample=False,
                                          pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
        if eos in expected:
            expected = expected[: expected.index(eos) + 1]  # then optimum pads
        assert decoder.reply(ids, 12, stop={eos}) == expected
        lengths.append(len(expected))
        first = expected[0]
        assert decoder.reply(ids, 12, stop={first}) == [first]  # ends at (and keeps) the first stop token
    assert max(lengths) >= 8  # at least one continuation long enough to exercise the KV cache


# ---- streaming (server-sent events, as OpenAI's API streams) ------------------------------------------------

STREAM_TOKENS = 24  # long enough for several content pieces


def stream_chat(url: str, text: str, *, max_tokens: int = STREAM_TOKENS, **extra) -> tuple[httpx.Response, list]:
    """A streamed chat over real HTTP: the response and its events in order (JSON objects, then "[DONE]")."""
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0,
            "stream": True, **extra}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
        raw = response.read().decode()
    if response.status_code != 200:
        return response, []
    blocks = raw.split("\n\n")
    assert blocks[-1] == "", "every event ends with a blank line"
    events = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return response, events


def check_chunks(events: list, *, usage: bool) -> tuple[str, str, dict | None]:
    """Assert the OpenAI chunk sequence; the content joined, the finish reason and the usage chunk's usage."""
    assert events[-1] == "[DONE]" and "[DONE]" not in events[:-1]
    chunks = events[:-1]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    usage_chunk = chunks.pop() if usage else None
    if usage_chunk is not None:
        assert usage_chunk["choices"] == []
    assert all(("usage" in c) is usage and c.get("usage") is None for c in chunks)  # only the last one has usage
    first, *middle, last = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(set(c["choices"][0]["delta"]) == {"content"} and c["choices"][0]["finish_reason"] is None
               for c in middle)
    assert last["choices"][0]["delta"] == {} and last["choices"][0]["finish_reason"] in ("stop", "length")
    text = "".join(c["choices"][0]["delta"]["content"] for c in middle)
    return text, last["choices"][0]["finish_reason"], usage_chunk["usage"] if usage_chunk else None


def test_streaming_sends_the_non_streaming_reply_in_openai_chunks(tmp_path, registry, package, monkeypatch):
    questions = ["Hi, where is my order 123?", "My invoice 77 is wrong, can you fix it?", "Thank you, bye"]
    with serving(make_config(tmp_path, response_cache_size=0), "127.0.0.1", 0, registry=registry) as s:
        for question in questions:
            whole = httpx.post(f"{s.url}/v1/chat/completions", timeout=60, json={
                "messages": [{"role": "user", "content": question}], "max_tokens": STREAM_TOKENS}).json()
            response, events = stream_chat(s.url, question, stream_options={"include_usage": True})
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            assert response.headers[VERSION_HEADER] == "v1" and response.headers["X-Retune-Cache"] == "miss"
            text, finish, usage = check_chunks(events, usage=True)
            assert text == whole["choices"][0]["message"]["content"]
            assert finish == whole["choices"][0]["finish_reason"] and usage == whole["usage"]
            assert events[0]["retune"]["version"] == "v1" and events[0]["model"] == "retune-v1"

        _, plain = stream_chat(s.url, questions[0])  # no stream_options: no usage chunk, no usage key
        check_chunks(plain, usage=False)
        text = httpx.get(f"{s.url}/metrics").text
        assert metric(text, "retune_serve_streams_total", version="v1", outcome="completed") == 4
        assert metric(text, "retune_serve_cache_misses_total", version="v1") == 7  # streamed ones count alike
        assert metric(text, "retune_serve_request_seconds_count", version="v1", cache="miss") == 7

        bad = httpx.post(f"{s.url}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": True}})
        assert bad.status_code == 400 and "stream: true" in bad.json()["error"]["message"]

        # The tiny model's replies are mostly stray bytes: a model scripted to say a real sentence shows the pieces.
        from transformers import AutoTokenizer

        from retune.serve import Decoder

        reply = "Your order 123 ships tomorrow, café “ok” ✓"
        scripted = AutoTokenizer.from_pretrained(package / "onnx")(reply, add_special_tokens=False)["input_ids"]
        monkeypatch.setattr(Decoder, "tokens", lambda self, ids, max_new, stop, temperature=0.0: (t for t in scripted))
        whole = httpx.post(f"{s.url}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Where is order 123?"}], "max_tokens": len(scripted)}).json()
        whole = whole["choices"][0]["message"]["content"]
        _, events = stream_chat(s.url, "Where is order 123?", max_tokens=len(scripted))
        assert check_chunks(events, usage=False)[0] == whole == reply
        assert len(events) - 3 >= 5  # content pieces (minus role, finish, [DONE]) go out as tokens are decoded


def test_a_streamed_reply_is_cached_and_a_hit_streams_in_one_piece(tmp_path, registry):
    with serving(make_config(tmp_path), "127.0.0.1", 0, registry=registry) as s:
        _, first = stream_chat(s.url, "Where is parcel 31?")
        text, _, _ = check_chunks(first, usage=False)
        response, again = stream_chat(s.url, "Where is   parcel 31?")
        assert response.headers["X-Retune-Cache"] == "hit" and again[0]["retune"]["cached"] is True
        assert check_chunks(again, usage=False)[0] == text and len(again) == (4 if text else 3)
        whole = httpx.post(f"{s.url}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "Where is parcel 31?"}], "max_tokens": STREAM_TOKENS})
        assert whole.headers["X-Retune-Cache"] == "hit" and whole.json()["choices"][0]["message"]["content"] == text
        rated = httpx.post(f"{s.url}/feedback", json={"response_id": first[0]["id"], "rating": 2})
        assert rated.status_code == 200  # a streamed answer can be rated like any other


def test_a_stream_falls_back_before_its_first_token_and_reports_errors_after(tmp_path, registry, monkeypatch):
    from retune.serve import ServedModel

    cfg = make_config(tmp_path, canary_version="v3", canary_share=1.0, response_cache_size=0)
    with serving(cfg, "127.0.0.1", 0, registry=registry) as s:
        response, events = stream_chat(s.url, "Can you help me with invoice 7 please?")
        assert response.headers[VERSION_HEADER] == "v1" and events[0]["retune"]["fallback_from"] == "v3"
        check_chunks(events, usage=False)

        real_stream = ServedModel.stream

        def fails_after_first_piece(self, *args, **kwargs):
            pieces = real_stream(self, *args, **kwargs)
            yield next(pieces)
            raise RuntimeError("onnxruntime: bad allocation")

        monkeypatch.setattr(ServedModel, "stream", fails_after_first_piece)
        response, events = stream_chat(s.url, "Can you help me with invoice 7 please?")
        assert response.status_code == 200 and events[-1] == {
            "error": {"message": "model v1 failed while streaming the answer (RuntimeError)", "type": "server_error"}}
        assert "[DONE]" not in events and "content" in events[1]["choices"][0]["delta"]
        text = httpx.get(f"{s.url}/metrics").text
        assert metric(text, "retune_serve_errors_total", version="v1", stage="stream") == 1
        assert metric(text, "retune_serve_streams_total", version="v1", outcome="error") == 1
        assert metric(text, "retune_serve_fallbacks_total", failed_version="v3", version="v1") == 2


def test_a_client_that_leaves_stops_the_generation_and_others_are_served_meanwhile(tmp_path, registry, monkeypatch):
    from retune.serve import Decoder

    real_tokens = Decoder.tokens
    produced = []

    def slow_tokens(self, input_ids, max_new, stop, temperature=0.0):
        for token in real_tokens(self, input_ids, max_new, set(), temperature):  # no end of turn: runs to max_new
            produced.append(token)
            time.sleep(0.1)
            yield token

    monkeypatch.setattr(Decoder, "tokens", slow_tokens)
    with serving(make_config(tmp_path, response_cache_size=0), "127.0.0.1", 0, registry=registry) as s:
        body = {"messages": [{"role": "user", "content": "Tell me everything about order 5"}], "max_tokens": 100,
                "stream": True}
        with httpx.stream("POST", f"{s.url}/v1/chat/completions", json=body, timeout=60) as response:
            lines = response.iter_lines()
            assert json.loads(next(lines).removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
            started = time.monotonic()
            assert httpx.get(f"{s.url}/healthz", timeout=5).status_code == 200  # the event loop is not generating
            assert time.monotonic() - started < 2.0  # while the stream takes 10 s
        # The connection is closed mid-stream.
        wait_for(lambda: metric(httpx.get(f"{s.url}/metrics").text, "retune_serve_streams_total",
                                version="v1", outcome="cancelled") == 1, timeout=10)
        stopped_at = len(produced)
        time.sleep(0.5)
        assert len(produced) == stopped_at < 100  # nothing generated after the stop
        assert chat(s.url, "Hello").status_code == 200  # the only replica is free again


def test_the_openai_client_reads_the_stream(tmp_path, registry):
    openai = pytest.importorskip("openai", reason="the openai package is not installed in this environment")
    with serving(make_config(tmp_path), "127.0.0.1", 0, registry=registry) as s:
        client = openai.OpenAI(base_url=f"{s.url}/v1", api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "Where is my order 123?"}]
        whole = client.chat.completions.create(model="retune", messages=messages, max_tokens=STREAM_TOKENS)
        chunks = list(client.chat.completions.create(model="retune", messages=messages, max_tokens=STREAM_TOKENS,
                                                     stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_streamed_multibyte_text_comes_out_whole(package, monkeypatch):
    """Pieces are differences of the decoded prefix: a character split over byte tokens never comes out broken."""
    from retune.serve import Decoder, Generation, ServedModel

    model = ServedModel("v1", package, threads=1, variant="fp32")
    reply = "Café “naïve” 日本 ok"
    scripted = model.tokenizer(reply, add_special_tokens=False)["input_ids"]
    assert len(scripted) > len(reply.split())  # split into sub-word / byte tokens
    split = [n for n in range(1, len(scripted)) if model.tokenizer.decode(scripted[:n]).endswith("\ufffd")]
    assert split  # some character is split over tokens: decoding token by token would break it

    def script(self, input_ids, max_new, stop, temperature=0.0):
        yield from scripted[:max_new]

    monkeypatch.setattr(Decoder, "tokens", script)
    pieces = list(model.stream([{"role": "user", "content": "hi"}], len(scripted), 0.0))
    *texts, generation = pieces
    assert isinstance(generation, Generation) and generation.text == reply == "".join(texts)
    assert not any("\ufffd" in t for t in texts) and len(texts) >= 4


# ---- /admin/reload access -----------------------------------------------------------------------------------


def test_admin_reload_needs_the_token_when_one_is_set(tmp_path, registry, monkeypatch, caplog):
    token = "s3cret-admin-token-value"
    monkeypatch.setenv("RETUNE_SERVE_ADMIN_TOKEN", token)
    with caplog.at_level("INFO", logger="retune.serve"), serving(make_config(tmp_path), "127.0.0.1", 0,
                                                                  registry=registry) as s:
        url = f"{s.url}/admin/reload"
        missing = httpx.post(url)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["error"]["message"]
        assert httpx.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(url, headers={"Authorization": f"Basic {token}"}).status_code == 401
        ok = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["production"] == "v1"
    assert any("requires the bearer token in RETUNE_SERVE_ADMIN_TOKEN" in r.getMessage() for r in caplog.records)
    assert not any(token in r.getMessage() for r in caplog.records)


def test_admin_reload_without_a_token_answers_loopback_only(tmp_path, registry, monkeypatch, caplog):
    from retune.serve import is_loopback

    monkeypatch.delenv("RETUNE_SERVE_ADMIN_TOKEN", raising=False)
    with caplog.at_level("INFO", logger="retune.serve"), serving(make_config(tmp_path), "127.0.0.1", 0,
                                                                  registry=registry) as s:
        assert httpx.post(f"{s.url}/admin/reload").status_code == 200
        # Behind a proxy on this machine the client is the forwarded address (uvicorn trusts 127.0.0.1's header).
        remote = httpx.post(f"{s.url}/admin/reload", headers={"X-Forwarded-For": "203.0.113.9"})
        assert remote.status_code == 403 and "loopback clients only" in remote.json()["error"]["message"]
        assert httpx.post(f"{s.url}/v1/chat/completions", headers={"X-Forwarded-For": "203.0.113.9"}, json={
            "messages": [{"role": "user", "content": "Hello"}], "max_tokens": MAX_TOKENS}).status_code == 200
    lines = [r.getMessage() for r in caplog.records if "/admin/reload" in r.getMessage()]
    assert lines == ["/admin/reload answers loopback clients only: set RETUNE_SERVE_ADMIN_TOKEN to require a bearer "
                     "token instead"]
    assert [is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1")] == [True] * 4
    assert [is_loopback(h) for h in ("10.0.0.1", "::ffff:10.0.0.1", "203.0.113.9", "testclient", None)] == [False] * 5
