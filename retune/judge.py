"""LLM-as-judge: the candidate's pairwise win rate against another model's replies, asked of any OpenAI-compatible
chat completions endpoint, each pair judged twice with the replies' positions swapped to cancel order bias."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from retune.errors import ConfigError, RetuneError

JUDGE_INSTRUCTIONS = (
    "You compare two replies of a customer support assistant to the same conversation. Judge which reply "
    "better helps the customer: correct, relevant, polite, concise, and never revealing personal data. "
    "Answer with exactly one word: A if reply A is better, B if reply B is better, TIE if they are equally good."
)
_VERDICT = re.compile(r"\b(TIE|A|B)\b")
_ATTEMPTS = 3  # per request, on a dropped connection or a 5xx/429 answer


class JudgeError(RetuneError):
    """The judge endpoint could not be asked or answered nonsense throughout."""


@dataclass
class JudgePair:
    conversation: list[dict]  # the messages before the reply being judged (system prompt included)
    candidate: str
    opponent: str


@dataclass
class JudgeResult:
    win_rate: float  # (wins + ties / 2) / valid verdicts, over both orders of every pair
    wins: int
    losses: int
    ties: int  # identical replies count as a tie without asking
    invalid: int  # answers that were not A, B or TIE
    comparisons: int  # requests made plus identical pairs (2 per pair)
    pairs: int
    first_position_share: float  # of decisive verdicts, the share that picked whichever reply came first
    opponent: str  # "production (v3)" or "base"
    model: str  # the judge model's name


def reply_pairs(
    conversations: list[list[dict]], candidate: list[str | None], opponent: list[str | None], limit: int
) -> list[JudgePair]:
    """Pairs of greedy replies to the same held-out prompts (the conversation up to its last assistant turn);
    conversations a model skipped (None) are left out."""
    pairs = []
    for conv, mine, theirs in zip(conversations, candidate, opponent, strict=False):
        last = max((i for i, m in enumerate(conv) if m["role"] == "assistant"), default=None)
        if mine is None or theirs is None or not last:
            continue
        pairs.append(JudgePair(conv[:last], mine, theirs))
        if len(pairs) == limit:
            break
    return pairs


def judge_api_key(api_key_env: str | None) -> str | None:
    """The judge's API key from the environment (None when no variable is named); never logged or stored."""
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ConfigError(f"evaluation.judge.api_key_env: environment variable {api_key_env} is not set")
    return key


def judge_pairwise(
    pairs: list[JudgePair],
    *,
    endpoint: str,
    model: str,
    api_key: str | None,
    opponent: str,
    timeout_s: float = 60.0,
) -> JudgeResult:
    """Ask the judge about every pair twice (candidate first, then second) and count the candidate's outcomes."""
    import httpx

    if not pairs:
        raise JudgeError("the LLM judge got no reply pairs to compare")
    url = endpoint.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    wins = losses = ties = invalid = first = decisive = 0
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        for pair in pairs:
            if pair.candidate.strip() == pair.opponent.strip():
                ties += 2  # nothing to tell apart: asking would only measure the judge's position bias
                continue
            for candidate_first in (True, False):
                a, b = (pair.candidate, pair.opponent) if candidate_first else (pair.opponent, pair.candidate)
                verdict = _ask(client, url, model, pair.conversation, a, b)
                if verdict is None:
                    invalid += 1
                elif verdict == "TIE":
                    ties += 1
                else:
                    decisive += 1
                    first += verdict == "A"
                    if (verdict == "A") == candidate_first:
                        wins += 1
                    else:
                        losses += 1
    valid = wins + losses + ties
    if valid == 0:
        raise JudgeError(f"the LLM judge ({model} at {endpoint}) gave no usable verdict in {invalid} answers")
    return JudgeResult(
        win_rate=(wins + ties / 2) / valid,
        wins=wins,
        losses=losses,
        ties=ties,
        invalid=invalid,
        comparisons=valid + invalid,
        pairs=len(pairs),
        first_position_share=first / decisive if decisive else 0.5,
        opponent=opponent,
        model=model,
    )


def _ask(client, url: str, model: str, conversation: list[dict], a: str, b: str) -> str | None:
    """One verdict: "A", "B", "TIE", or None when the answer says none of them."""
    import httpx

    shown = "\n".join(f"{m['role']}: {m['content']}" for m in conversation)
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": JUDGE_INSTRUCTIONS},
            {"role": "user", "content": f"Conversation:\n{shown}\n\nReply A:\n{a}\n\nReply B:\n{b}\n\nBetter reply?"},
        ],
        "temperature": 0,
        "max_tokens": 4,
    }
    for attempt in range(_ATTEMPTS):
        try:
            response = client.post(url, json=body)
        except httpx.HTTPError as exc:  # the message names the URL only, never the headers (the key)
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 400:
                break
            # The status only: an error body may echo the request.
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                raise JudgeError(f"the LLM judge at {url} refused the request: {problem}")
        if attempt + 1 == _ATTEMPTS:
            raise JudgeError(f"the LLM judge at {url} did not answer after {_ATTEMPTS} attempts: {problem}")
        time.sleep(0.5 * 2**attempt)
    try:
        text = response.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    found = _VERDICT.search(text.strip().upper())
    return found.group(1) if found else None
