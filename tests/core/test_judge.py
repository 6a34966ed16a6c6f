"""LLM-as-judge against a small real OpenAI-compatible HTTP server on 127.0.0.1 with deterministic verdicts."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retune.errors import ConfigError
from retune.judge import JudgeError, JudgePair, judge_api_key, judge_pairwise, reply_pairs

KEY = "sk-test-0123456789abcdef"


class _Judge(BaseHTTPRequestHandler):
    """POST /v1/chat/completions. Verdicts by `mode`: "quality" prefers the reply that mentions a refund (whatever
    its position), "first" always answers A (a pure position bias), "garbage" answers nonsense."""

    mode = "quality"
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        text = body["messages"][-1]["content"]
        reply_a = text.split("Reply A:\n", 1)[1].split("\n\nReply B:", 1)[0]
        if self.mode == "first":
            verdict = "A"
        elif self.mode == "garbage":
            verdict = "I cannot decide."
        else:
            verdict = "A" if "refund" in reply_a else "B"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def judge_server():
    _Judge.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My lamp broke."}]
GOOD, BAD = "Sorry! I started a refund for you.", "Please restart the router."


def _pairs(candidate_good: int, candidate_bad: int, same: int = 0) -> list[JudgePair]:
    return (
        [JudgePair(CONVERSATION, GOOD, BAD)] * candidate_good
        + [JudgePair(CONVERSATION, BAD, GOOD)] * candidate_bad
        + [JudgePair(CONVERSATION, GOOD, GOOD)] * same
    )


def test_win_rate_counts_both_orders_and_sends_the_key_only_in_the_header(judge_server, caplog):
    _Judge.mode = "quality"
    with caplog.at_level(logging.DEBUG):
        result = judge_pairwise(_pairs(3, 1, same=1), endpoint=judge_server, model="judge-1", api_key=KEY,
                                opponent="production (v1)")
    # 3 pairs won twice, 1 lost twice, the identical pair is a double tie that costs no request
    assert (result.wins, result.losses, result.ties, result.invalid) == (6, 2, 2, 0)
    assert result.win_rate == pytest.approx((6 + 1) / 10)
    assert result.first_position_share == pytest.approx(0.5)  # a fair judge picks each position half the time
    assert (result.pairs, result.comparisons, result.opponent) == (5, 10, "production (v1)")
    assert len(_Judge.requests) == 8
    assert all(r["auth"] == f"Bearer {KEY}" and r["body"]["model"] == "judge-1" for r in _Judge.requests)
    assert all(r["body"]["temperature"] == 0 for r in _Judge.requests)
    # each pair was asked in both orders
    firsts = [r["body"]["messages"][-1]["content"].split("Reply A:\n")[1].startswith("Sorry") for r in _Judge.requests]
    assert firsts.count(True) == firsts.count(False) == 4
    assert KEY not in caplog.text and KEY not in repr(result)


def test_swapping_positions_cancels_a_judge_that_always_picks_the_first_reply(judge_server):
    _Judge.mode = "first"
    result = judge_pairwise(_pairs(4, 0), endpoint=judge_server, model="biased", api_key=None, opponent="base")
    assert result.win_rate == pytest.approx(0.5) and result.first_position_share == 1.0
    assert all(r["auth"] is None for r in _Judge.requests)  # no key configured: no header


def test_unusable_answers_are_counted_and_all_unusable_is_an_error(judge_server):
    _Judge.mode = "garbage"
    with pytest.raises(JudgeError, match="no usable verdict in 4 answers"):
        judge_pairwise(_pairs(2, 0), endpoint=judge_server, model="confused", api_key=None, opponent="base")


def test_a_wrong_endpoint_is_one_readable_error_without_the_key(judge_server):
    with pytest.raises(JudgeError, match="refused the request: HTTP 404") as info:
        judge_pairwise(_pairs(1, 0), endpoint=judge_server + "/wrong", model="m", api_key=KEY, opponent="base")
    assert KEY not in str(info.value)


def test_the_key_comes_from_the_named_environment_variable(monkeypatch):
    assert judge_api_key(None) is None
    monkeypatch.delenv("RETUNE_TEST_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError, match="RETUNE_TEST_JUDGE_KEY is not set"):
        judge_api_key("RETUNE_TEST_JUDGE_KEY")
    monkeypatch.setenv("RETUNE_TEST_JUDGE_KEY", KEY)
    assert judge_api_key("RETUNE_TEST_JUDGE_KEY") == KEY


def test_pairs_are_the_held_out_prompts_both_models_answered():
    conversations = [
        [*CONVERSATION, {"role": "assistant", "content": "reference 1"}],
        [*CONVERSATION, {"role": "assistant", "content": "reference 2"}],
        [{"role": "user", "content": "no reply"}],
        [*CONVERSATION, {"role": "assistant", "content": "reference 3"}],
    ]
    pairs = reply_pairs(conversations, ["c1", None, None, "c3"], ["o1", "o2", None, "o3"], limit=5)
    assert [(p.candidate, p.opponent) for p in pairs] == [("c1", "o1"), ("c3", "o3")]
    assert pairs[0].conversation == CONVERSATION  # the reference reply is what is being judged: not shown
    assert len(reply_pairs(conversations, ["c1", "c2", "c", "c3"], ["o1", "o2", "o", "o3"], limit=2)) == 2
