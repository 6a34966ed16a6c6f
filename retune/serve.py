"""Serve the production model: OpenAI-compatible chat completions from the registry's ONNX variants, with an
exact-match response cache, a canary, fallback to the previous version, Prometheus metrics, feedback into the
landing directory and hot reload of the production pointer."""

# How a request is answered, in one place:
# - Routing: a conversation is keyed by its opening (the `user` field and the first non-system message), so every
#   later turn of it lands on the same version; canary_share of those keys (by hash) go to serve.canary_version.
# - Fallback chain: the routed version, then production, then the version that was production before it
#   (the registry history's `previous` of the current version's last promotion). Each failure (load or
#   generation) is counted against the version that failed; a version that failed to load is not retried until
#   the next reload.
# - Cache: greedy requests only (temperature 0), keyed by version + the normalized messages + max_tokens.
# - Feedback: the server keeps the last serve.conversations_kept answers by response id; a rating turns one into an
#   anonymized OpenAI-chat JSONL record in the first watch.landing directory (watch -> ingest picks it up).

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import queue
import re
import shutil
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request  # FastAPI resolves a dependency's annotations among the module's globals

from retune.config import Config
from retune.errors import RetuneError, ServeError, StoreError
from retune.export import OnnxGenerator, end_of_turn_ids
from retune.registry import Registry

log = logging.getLogger("retune.serve")

VERSION_HEADER = "X-Retune-Model-Version"
ADMIN_TOKEN_ENV = "RETUNE_SERVE_ADMIN_TOKEN"  # when set, /admin/* needs `Authorization: Bearer <it>`
CACHE_HEADER = "X-Retune-Cache"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PLAIN_END_MARKERS = ("<|im_end|>",)  # retune's default chat template writes ChatML markers as plain text


# ---- the HTTP bodies (OpenAI's chat completion shape; unknown fields such as top_p are ignored) ----------------


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        """OpenAI clients may send content as a list of parts; the text parts are the message (as ingest reads it)."""
        if isinstance(value, list) and all(isinstance(p, dict) for p in value):
            return "\n".join(str(p.get("text", "")) for p in value if p.get("type") == "text")
        return value


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False  # a last chunk with the token counts, before [DONE]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # accepted for client compatibility; the registry decides which version answers
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    user: str | None = None  # a stable end-user id keeps a user's conversations on one version
    stream: bool = False  # answer as server-sent events (chat.completion.chunk), as OpenAI's API does
    stream_options: StreamOptions | None = None


class FeedbackRequest(BaseModel):
    response_id: str
    rating: int = Field(ge=1, le=5)
    correction: str | None = Field(None, description="the reply the assistant should have given")


class RequestError(RetuneError):
    """A request the server cannot answer as asked (HTTP 400/401/403/404)."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


# ---- building blocks ---------------------------------------------------------------------------------------


def conversation_key(messages: list[dict[str, str]], user: str | None = None) -> str:
    """What identifies a conversation across its turns: the end user and its first non-system message."""
    opening = next((m for m in messages if m["role"] != "system"), messages[0])
    return json.dumps([user or "", opening["role"], _normalize(opening["content"])])


def bucket(key: str) -> float:
    """A uniform number in [0, 1) from a key: the same key always gets the same number."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _normalize(text: str) -> str:
    return " ".join(text.split())


def cache_key(version: str, messages: list[dict[str, str]], max_tokens: int) -> str:
    normalized = [[m["role"], _normalize(m["content"])] for m in messages]
    payload = json.dumps({"version": version, "messages": normalized, "max_tokens": max_tokens}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class LRU:
    """A bounded mapping that forgets the least recently used entry first; thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: str, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: str) -> Any | None:
        with self._lock:
            return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def previous_production(history: list[dict[str, Any]], current: str | None) -> str | None:
    """The version that was in production before `current` was last promoted (what `retune rollback` restores)."""
    promotions = [h for h in history if h["action"] == "promote" and h["version"] == current]
    return promotions[-1]["previous"] if promotions else None


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn) or "length" (max_tokens reached)


class Decoder(OnnxGenerator):
    """The parity gate's generator (the KV cache kept in onnxruntime between steps: optimum's generate() copies
    every past key/value to torch and back at each step, 2-4x slower on SmolLM2 here), made to answer chats:
    it stops at end of turn and can sample."""

    def tokens(self, input_ids: list[int], max_new: int, stop: set[int], temperature: float = 0.0) -> Iterator[int]:
        """Up to max_new tokens after the prompt, one at a time as each is chosen, ending with the first token in
        `stop` (included). A consumer that stops iterating stops the generation."""
        import numpy as np

        rng = np.random.default_rng()
        binding = self.session.io_binding()
        ids = np.asarray(input_ids, dtype=np.int64)[None]
        past = self._empty_past()
        past_len = 0
        for _ in range(max_new):
            outputs = self._run(binding, ids, past_len, past)
            logits = outputs[0].numpy()[0, -1].astype(np.float64)
            if temperature > 0:
                weights = np.exp((logits - logits.max()) / temperature)
                token = int(rng.choice(len(weights), p=weights / weights.sum()))
            else:
                token = int(logits.argmax())
            yield token
            if token in stop:
                return
            past, past_len, ids = outputs[1:], past_len + ids.shape[1], np.array([[token]], np.int64)

    def reply(self, input_ids: list[int], max_new: int, stop: set[int], temperature: float = 0.0) -> list[int]:
        """Up to max_new tokens after the prompt, ending with the first token in `stop` (included)."""
        return list(self.tokens(input_ids, max_new, stop, temperature))


def settled_text(text: str) -> str:
    """The part of a reply decoded so far that later tokens cannot change: no leading whitespace (the reply is
    stripped), and not yet any trailing whitespace (dropped if the reply ends there), a last incomplete UTF-8
    character (decoded as one U+FFFD until its last byte comes) or the start of an end-of-turn marker."""
    text = text.lstrip().removesuffix("\ufffd")  # only the last one: bytes after an invalid one made it final
    while True:
        trimmed = text.rstrip()
        for marker in _PLAIN_END_MARKERS:
            size = next((n for n in range(len(marker) - 1, 0, -1) if trimmed.endswith(marker[:n])), 0)
            trimmed = trimmed[: len(trimmed) - size]
        if trimmed == text:
            return text
        text = trimmed


class ServedModel:
    """One model version's ONNX variant and tokenizer, loaded for generation."""

    def __init__(self, version: str, package_dir: Path, threads: int, variant: str, replicas: int = 1):
        from transformers import AutoConfig, AutoTokenizer

        from retune.training.dataset import prepare_tokenizer

        onnx_dir = package_dir / "onnx"
        if not (onnx_dir / "model.onnx").is_file():
            raise ServeError(f"model {version} has no ONNX graph at {onnx_dir / 'model.onnx'}")
        self.version, self.variant = version, variant
        # The prompt this version was trained and evaluated under (tasks/promote.py stores it with the version);
        # a version without one was trained without one.
        prompt_file = package_dir / "system_prompt.md"
        self.system_prompt = prompt_file.read_text(encoding="utf-8").strip() if prompt_file.is_file() else None
        self.tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
        prepare_tokenizer(self.tokenizer)  # the same chat template and pad token training used
        # Each replica is its own onnxruntime session generating one request at a time: N replicas answer N
        # requests at once, and no KV cache is ever shared between two requests.
        self._free: queue.SimpleQueue[Decoder] = queue.SimpleQueue()
        for _ in range(replicas):
            self._free.put(Decoder(onnx_dir, threads))
        config = AutoConfig.from_pretrained(onnx_dir)
        self.max_positions = getattr(config, "max_position_embeddings", None)
        self.stop = set(end_of_turn_ids(self.tokenizer, config))  # the export's parity gate stops there too
        self._tokenizer_lock = threading.Lock()  # fast tokenizers raise "Already borrowed" when shared by threads

    def generate(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Generation:
        """The whole reply at once (what the streamed pieces add up to)."""
        pieces = list(self.stream(messages, max_tokens, temperature))
        generation = pieces[-1]
        assert isinstance(generation, Generation)
        return generation

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
               cancelled: threading.Event | None = None) -> Iterator[str | Generation]:
        """The reply as text pieces while tokens are decoded, then its Generation (whose text is the pieces joined).
        Nothing more comes once `cancelled` is set (checked between tokens)."""
        from retune.prompts import with_system_prompt

        messages = with_system_prompt(messages, self.system_prompt)  # as the training set was built
        with self._tokenizer_lock:
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]  # the template has its own markers
        if self.max_positions and len(ids) + max_tokens > self.max_positions:
            raise RequestError(
                f"the conversation is {len(ids)} tokens; with max_tokens {max_tokens} that exceeds the "
                f"model's {self.max_positions} positions: shorten it or lower max_tokens"
            )
        new: list[int] = []
        text, sent, stopped = "", "", False
        decoder = self._free.get()  # blocks until a replica is free
        tokens = decoder.tokens(ids, max_tokens, self.stop, temperature)
        try:
            for token in tokens:
                if cancelled is not None and cancelled.is_set():
                    return
                if token in self.stop:
                    stopped = True
                    break
                new.append(token)
                # The text difference of the decoded prefix, not each token decoded alone: a multi-byte character
                # split over tokens, or a merge that changes spacing, only comes out right in context.
                with self._tokenizer_lock:
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                for marker in _PLAIN_END_MARKERS:
                    if marker in text:
                        text, stopped = text.split(marker, 1)[0], True
                if stopped:
                    break
                settled = settled_text(text)
                if len(settled) > len(sent) and settled.startswith(sent):
                    yield settled[len(sent):]
                    sent = settled
        finally:
            tokens.close()  # ends the decoder's loop before another request gets the replica
            self._free.put(decoder)
        text = text.strip()
        if len(text) > len(sent) and text.startswith(sent):
            yield text[len(sent):]
        elif not text.startswith(sent):  # decoding rewrote text already sent (no tokenizer here does): say so
            log.warning("model %s: the streamed reply differs from the decoded one", self.version)
        yield Generation(text, len(ids), len(new), "stop" if stopped else "length")


class Metrics:
    """Prometheus metrics of one server, per model version (its own registry: several servers in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "retune_serve_request_seconds", "Chat completion latency", ["version", "cache"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.prompt_tokens = Counter("retune_serve_prompt_tokens", "Prompt tokens read", ["version"], registry=r)
        self.tokens = Counter("retune_serve_generated_tokens", "Tokens generated", ["version"], registry=r)
        self.hits = Counter("retune_serve_cache_hits", "Answers from the response cache", ["version"], registry=r)
        self.misses = Counter("retune_serve_cache_misses", "Answers generated", ["version"], registry=r)
        self.hit_ratio = Gauge("retune_serve_cache_hit_ratio", "Cache hits / requests", ["version"], registry=r)
        self.errors = Counter("retune_serve_errors", "Failures of a version", ["version", "stage"], registry=r)
        self.fallbacks = Counter(
            "retune_serve_fallbacks", "Requests answered by another version", ["failed_version", "version"],
            registry=r,
        )
        self.feedback = Counter("retune_serve_feedback", "Ratings received", ["version", "outcome"], registry=r)
        self.streams = Counter(
            "retune_serve_streams", "Streamed answers by how they ended (completed, cancelled by the client, error)",
            ["version", "outcome"], registry=r,
        )
        self.models = Gauge("retune_serve_model_info", "Versions served, by role", ["version", "role"], registry=r)
        self._counts: dict[str, list[int]] = {}  # version -> [hits, requests], for the ratio gauge
        self._lock = threading.Lock()

    def cache(self, version: str, hit: bool) -> None:
        (self.hits if hit else self.misses).labels(version).inc()
        with self._lock:
            counts = self._counts.setdefault(version, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
            self.hit_ratio.labels(version).set(counts[0] / counts[1])

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


@dataclass
class Answer:
    id: str
    version: str
    generation: Generation
    cached: bool
    canary: bool
    fallback_from: str | None
    variant: str
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Stream:
    """A streamed answer whose version is settled (its first piece is ready, or it came from the cache): `events`
    are the reply's text pieces, then its Generation; an exception from them ends the stream."""

    id: str
    version: str
    variant: str
    cached: bool
    canary: bool
    fallback_from: str | None
    events: Iterator[str | Generation]
    created: int = field(default_factory=lambda: int(time.time()))


def _replay(generation: Generation) -> Iterator[str | Generation]:
    """A cached reply as a stream: its text in one piece."""
    if generation.text:
        yield generation.text
    yield generation


# ---- the server's state ------------------------------------------------------------------------------------


class ModelServer:
    """Which versions answer, the models loaded for them, and everything a request needs; no HTTP here."""

    def __init__(self, cfg: Config, registry: Registry | None = None):
        from retune.store import open_store

        self.cfg = cfg
        self.settings = cfg.serve
        self.registry = registry or Registry(open_store(cfg))
        self.cache_dir = cfg.path(self.settings.model_cache_dir)
        self.metrics = Metrics()
        self.responses = LRU(self.settings.response_cache_size)
        self.conversations = LRU(self.settings.conversations_kept)  # response id -> what was answered
        self.production: str | None = None
        self.previous: str | None = None
        self.canary: str | None = self.settings.canary_version
        self._models: dict[str, ServedModel] = {}
        self._broken: dict[str, str] = {}  # version -> why it failed to load (until the next reload)
        self._state_lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._pseudonymizer: Any = None

    # ---- versions ----

    def start(self) -> None:
        """Read the registry and load production (and the canary); ServeError for what the user must fix."""
        if self.canary is not None:
            try:
                self.registry.get(self.canary)  # before anything loads
            except StoreError as exc:
                raise ServeError(f"serve.canary_version: {exc}") from None
        if self.registry.production() is None:
            raise ServeError("no model in production yet: run `retune run` (or `retune promote VERSION`) first")
        self.reload()
        if self.canary is not None:
            self._try_load(self.canary)

    def reload(self) -> bool:
        """Re-read the production pointer; load a new production model before switching to it. True if moved."""
        production = self.registry.production()
        if production is None:
            return False  # keep serving what we have: the pointer never goes back to none
        previous = previous_production(self.registry.history(), production.version)
        if production.version == self.production and previous == self.previous:
            return False
        with self._state_lock:
            self._broken.clear()  # a new pointer is a new chance for every version
        self._try_load(production.version)  # loaded before the switch: no request waits for it
        with self._state_lock:
            moved_from = self.production
            self.production, self.previous = production.version, previous
            keep = {self.production, self.previous, self.canary}
            for version in [v for v in self._models if v not in keep]:
                del self._models[version]
        self.metrics.models.clear()
        for role, version in (("production", self.production), ("previous", self.previous), ("canary", self.canary)):
            if version:
                self.metrics.models.labels(version, role).set(1)
        if moved_from != self.production:
            log.info("production is %s (was %s); fallback %s", self.production, moved_from or "none", previous)
        return moved_from != self.production

    def watch_registry(self, stop: threading.Event) -> None:
        """Re-read the production pointer every reload_seconds until stopped (a thread's body)."""
        while not stop.wait(self.settings.reload_seconds):
            try:
                self.reload()
            except Exception:  # a store hiccup must not end hot reload; the next tick tries again
                log.exception("reading the model registry failed; serving the versions loaded")

    def model(self, version: str) -> ServedModel:
        """The loaded model of a version, downloading and loading it on first use."""
        with self._state_lock:
            if version in self._models:
                return self._models[version]
            if version in self._broken:
                raise ServeError(f"model {version} failed to load: {self._broken[version]}")
            lock = self._load_locks.setdefault(version, threading.Lock())
        with lock:  # one load per version, however many requests ask at once
            with self._state_lock:
                if version in self._models:
                    return self._models[version]
            try:
                entry = self.registry.get(version)
                package_dir = self._download(entry)
                variant = entry.lineage.get("onnx_variant", "?")
                served = ServedModel(version, package_dir, self.settings.threads, variant, self.settings.replicas)
            except Exception as exc:
                self.metrics.errors.labels(version, "load").inc()
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                with self._state_lock:
                    self._broken[version] = reason
                log.warning("model %s failed to load: %s", version, reason)
                raise ServeError(f"model {version} failed to load: {reason}") from exc
            with self._state_lock:
                self._models[version] = served
            log.info("loaded model %s (%s) from %s", version, served.variant, package_dir)
            return served

    def _try_load(self, version: str) -> None:
        with contextlib.suppress(ServeError):
            self.model(version)

    def _download(self, entry: Any) -> Path:
        """The version's served files in the local cache, fetched from the store once: the chosen ONNX variant
        (onnx/) and the system prompt, not the merged weights or the adapter."""
        dest = self.cache_dir / f"{entry.version}-{entry.commit[:12]}"  # a reset store reuses version names
        if (dest / "onnx").is_dir():
            return dest
        prefix = f"models/{entry.version}/"
        files = [p for p in entry.files if p.startswith(prefix + "onnx/") or p == prefix + "system_prompt.md"]
        if not any(p.startswith(prefix + "onnx/") for p in files):
            raise ServeError(f"model {entry.version} has no onnx/ files in the store")
        partial = self.cache_dir / f".{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            for path in files:
                self.registry.store.get_file(entry.commit, path, partial / path.removeprefix(prefix))
            partial.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(partial, dest)  # atomic: a killed download never looks complete
            except OSError:
                if not (dest / "onnx").is_dir():  # else another server process finished it first
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return dest

    def versions(self) -> dict[str, Any]:
        with self._state_lock:
            return {
                "production": self.production,
                "previous": self.previous,
                "canary": self.canary,
                "canary_share": self.settings.canary_share if self.canary else 0.0,
                "loaded": {v: m.variant for v, m in sorted(self._models.items())},
                "broken": dict(self._broken),
            }

    # ---- answering ----

    def route(self, messages: list[dict[str, str]], user: str | None) -> str:
        with self._state_lock:
            production, canary = self.production, self.canary
        share = self.settings.canary_share
        if canary and canary != production and share > 0 and bucket(conversation_key(messages, user)) < share:
            return canary
        if production is None:
            raise ServeError("no model in production")
        return production

    def _plan(self, request: ChatRequest) -> tuple[list[dict[str, str]], int, list[str]]:
        """The request's messages, its max_tokens within the server's bound, and the versions to try in order."""
        if request.stream_options is not None and not request.stream:
            raise RequestError("stream_options is only allowed with stream: true")
        messages = [m.model_dump() for m in request.messages]
        max_tokens = min(request.max_tokens or self.settings.max_new_tokens, self.settings.max_new_tokens)
        chosen = self.route(messages, request.user)
        with self._state_lock:
            chain = list(dict.fromkeys(v for v in (chosen, self.production, self.previous) if v))
        return messages, max_tokens, chain

    def _failed(self, version: str, exc: Exception) -> None:
        if not isinstance(exc, ServeError):  # load failures were counted where they happened
            self.metrics.errors.labels(version, "generate").inc()
            log.warning("model %s failed to answer: %s: %s", version, type(exc).__name__, exc)

    def complete(self, request: ChatRequest) -> Answer:
        """The whole answer at once."""
        messages, max_tokens, chain = self._plan(request)
        failed: list[str] = []
        for version in chain:
            start = time.perf_counter()
            try:
                answer = self._answer(version, messages, max_tokens, request.temperature)
            except RequestError:
                raise  # the request is at fault, not the model: no fallback
            except Exception as exc:
                self._failed(version, exc)
                failed.append(version)
                continue
            self.metrics.latency.labels(version, "hit" if answer.cached else "miss").observe(
                time.perf_counter() - start
            )
            if failed:
                self.metrics.fallbacks.labels(failed[0], version).inc()
                answer.fallback_from = failed[0]
            answer.canary = version == self.canary and version != self.production
            self.conversations.put(answer.id, {"version": version, "messages": messages,
                                               "reply": answer.generation.text})
            return answer
        raise ServeError(f"no model version could answer (tried {', '.join(failed)})")

    def open_stream(self, request: ChatRequest, cancelled: threading.Event) -> Stream:
        """Start a streamed answer. Routing, cache and fallback as for `complete`, but a version is settled only
        once it produced the reply's first piece: a failure after that ends the stream (no fallback: the client
        already has part of a reply). Setting `cancelled` stops the generation at the next token."""
        messages, max_tokens, chain = self._plan(request)
        failed: list[str] = []
        for version in chain:
            start = time.perf_counter()
            answer_id = f"chatcmpl-{uuid.uuid4().hex}"
            key = cache_key(version, messages, max_tokens) if request.temperature == 0 else None
            canary = version == self.canary and version != self.production
            fallback_from = failed[0] if failed else None
            hit = self.responses.get(key) if key else None
            if hit is not None:
                generation, variant = hit
                self.metrics.cache(version, True)
                self.metrics.latency.labels(version, "hit").observe(time.perf_counter() - start)
                self.metrics.streams.labels(version, "completed").inc()
                if fallback_from:
                    self.metrics.fallbacks.labels(fallback_from, version).inc()
                self.conversations.put(answer_id, {"version": version, "messages": messages,
                                                   "reply": generation.text})
                return Stream(answer_id, version, variant, True, canary, fallback_from, _replay(generation))
            try:
                model = self.model(version)
                events = model.stream(messages, max_tokens, request.temperature, cancelled)
                first = next(events, None)  # None: the client left before the first piece
            except RequestError:
                raise
            except Exception as exc:
                self._failed(version, exc)
                failed.append(version)
                continue
            if fallback_from:
                self.metrics.fallbacks.labels(fallback_from, version).inc()
            follow = self._follow(version, model.variant, answer_id, messages, key, start, first, events)
            return Stream(answer_id, version, model.variant, False, canary, fallback_from, follow)
        raise ServeError(f"no model version could answer (tried {', '.join(failed)})")

    def _follow(self, version: str, variant: str, answer_id: str, messages: list[dict[str, str]], key: str | None,
                start: float, first: str | Generation | None, events: Iterator[str | Generation],
                ) -> Iterator[str | Generation]:
        """The settled stream's pieces, counted as `complete` counts an answer once its Generation arrives."""
        outcome = "cancelled"
        try:
            if first is None:
                return
            yield first
            generation = first if isinstance(first, Generation) else None
            if generation is None:
                for event in events:
                    yield event
                    if isinstance(event, Generation):
                        generation = event
            if generation is not None:
                outcome = "completed"
                self.metrics.cache(version, False)
                self.metrics.prompt_tokens.labels(version).inc(generation.prompt_tokens)
                self.metrics.tokens.labels(version).inc(generation.completion_tokens)
                self.metrics.latency.labels(version, "miss").observe(time.perf_counter() - start)
                if key:
                    self.responses.put(key, (generation, variant))
                self.conversations.put(answer_id, {"version": version, "messages": messages,
                                                   "reply": generation.text})
        except Exception as exc:
            outcome = "error"
            self.metrics.errors.labels(version, "stream").inc()
            log.warning("model %s failed while streaming: %s: %s", version, type(exc).__name__, exc)
            raise
        finally:
            self.metrics.streams.labels(version, outcome).inc()
            events.close()  # frees the replica if the stream was left early

    def _answer(self, version: str, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Answer:
        answer_id = f"chatcmpl-{uuid.uuid4().hex}"
        key = cache_key(version, messages, max_tokens) if temperature == 0 else None
        hit = self.responses.get(key) if key else None
        if hit is not None:
            self.metrics.cache(version, True)
            generation, variant = hit
            return Answer(answer_id, version, generation, True, False, None, variant)
        model = self.model(version)
        generation = model.generate(messages, max_tokens, temperature)
        self.metrics.cache(version, False)
        self.metrics.prompt_tokens.labels(version).inc(generation.prompt_tokens)
        self.metrics.tokens.labels(version).inc(generation.completion_tokens)
        if key:
            self.responses.put(key, (generation, model.variant))
        return Answer(answer_id, version, generation, False, False, None, model.variant)

    # ---- feedback ----

    def feedback(self, request: FeedbackRequest) -> dict[str, Any]:
        """Turn a rated answer into an anonymized training record: landing when fit to learn from, else held back."""
        conversation = self.conversations.pop(request.response_id)
        if conversation is None:
            raise RequestError(f"unknown, expired or already rated response id '{request.response_id}'", 404)
        corrected = bool(request.correction and request.correction.strip())
        reply = request.correction.strip() if corrected else conversation["reply"]
        if not reply:
            raise RequestError("the answer was empty: send a correction to rate it", 400)
        messages = [*conversation["messages"], {"role": "assistant", "content": reply}]
        record = {
            "conversation_id": f"feedback-{request.response_id.removeprefix('chatcmpl-')}",
            "messages": self._anonymized(messages),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": "feedback",
            "rating": request.rating,
            "corrected": corrected,
            "model_version": conversation["version"],
        }
        fit = corrected or request.rating >= self.settings.feedback_min_rating
        path = self._write_landing(record) if fit else self._write_held_back(record)
        outcome = "landed" if fit else "held_back"
        self.metrics.feedback.labels(conversation["version"], outcome).inc()
        return {"status": outcome, "file": path.name}

    def _anonymized(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        from retune import pii

        if self._pseudonymizer is None:
            key, is_dev_key = pii.load_key(self.cfg.pii.key_env)
            if is_dev_key:
                log.warning("%s is not set: feedback is pseudonymized with the development key", self.cfg.pii.key_env)
            self._pseudonymizer = pii.Pseudonymizer(key)
        options = pii.PiiOptions.from_config(self.cfg.pii)
        entities = self.cfg.pii.entities
        # A name introduced in one turn ("I'm Jane Roe") is also replaced where it recurs, as ingest does.
        known = set().union(*(pii.names_in(m["content"]) for m in messages)) if "NAME" in entities else set()
        return [
            {"role": m["role"], "content": pii.anonymize_text(
                m["content"], self._pseudonymizer, entities, known_names=known, options=options)[0]}
            for m in messages
        ]

    def landing_dir(self) -> Path:
        landing = self.cfg.watch.landing
        if not landing:
            raise RequestError("feedback needs a landing directory: set watch.landing in the config", 409)
        first = landing[0]
        if "://" in first or re.search(r"[*?\[]", first):
            raise RequestError(f"feedback is written to the first watch.landing entry, a local directory; "
                               f"'{first}' is not one", 409)
        return Path(first)

    def _write_landing(self, record: dict[str, Any]) -> Path:
        directory = self.landing_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = directory / f"feedback-{stamp}-{record['conversation_id'].removeprefix('feedback-')[:12]}.jsonl"
        partial = directory / f".{path.name}.partial"  # matches no watch pattern: watch never sees half a file
        partial.write_text(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(partial, path)
        return path

    def _write_held_back(self, record: dict[str, Any]) -> Path:
        path = self.cfg.path("feedback/held_back.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path


# ---- HTTP --------------------------------------------------------------------------------------------------


def create_app(server: ModelServer) -> Any:
    """The FastAPI app around a started ModelServer; hot reload runs while the app does."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None  # a secret: read once here, never logged

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        if admin_token:
            log.info("/admin/reload requires the bearer token in %s", ADMIN_TOKEN_ENV)
        else:
            log.info("/admin/reload answers loopback clients only: set %s to require a bearer token instead",
                     ADMIN_TOKEN_ENV)
        stop = threading.Event()
        watcher = None
        if server.settings.reload_seconds > 0:
            watcher = threading.Thread(target=server.watch_registry, args=(stop,), name="retune-reload", daemon=True)
            watcher.start()
        yield
        stop.set()
        if watcher is not None:
            watcher.join(timeout=5)

    app = FastAPI(title="retune serve", lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error"}}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "type": "server_error"}}, status_code=503)

    def admin(request: Request) -> None:
        """Who may call /admin/*: the bearer of the admin token when one is set, else loopback clients only."""
        if admin_token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), admin_token.encode()):
                raise RequestError("admin endpoints need 'Authorization: Bearer <token>' with the server's admin "
                                   "token", 401, {"WWW-Authenticate": "Bearer"})
        elif not is_loopback(request.client.host if request.client else None):
            raise RequestError(f"admin endpoints answer loopback clients only (set {ADMIN_TOKEN_ENV} on the server "
                               "to allow token-authenticated calls)", 403)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: ChatRequest) -> Any:
        if request.stream:
            cancelled = threading.Event()
            # The first piece is produced before the response starts: until then a failing version falls back,
            # and the headers can say which version answers.
            stream = await run_in_threadpool(server.open_stream, request, cancelled)
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            headers = {VERSION_HEADER: stream.version, CACHE_HEADER: "hit" if stream.cached else "miss",
                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(server_sent_events(stream, cancelled, include_usage),
                                     media_type="text/event-stream", headers=headers)
        answer = await run_in_threadpool(server.complete, request)
        g = answer.generation
        body = {
            "id": answer.id,
            "object": "chat.completion",
            "created": answer.created,
            "model": f"retune-{answer.version}",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": g.text},
                         "finish_reason": g.finish_reason}],
            "usage": {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                      "total_tokens": g.prompt_tokens + g.completion_tokens},
            "retune": {"version": answer.version, "variant": answer.variant, "cached": answer.cached,
                       "canary": answer.canary, "fallback_from": answer.fallback_from},
        }
        headers = {VERSION_HEADER: answer.version, CACHE_HEADER: "hit" if answer.cached else "miss"}
        return JSONResponse(body, headers=headers)

    @app.post("/feedback")
    def feedback(request: FeedbackRequest) -> dict[str, Any]:
        return server.feedback(request)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **server.versions()}

    @app.post("/admin/reload", dependencies=[Depends(admin)])
    def admin_reload() -> dict[str, Any]:
        moved = server.reload()
        return {"moved": moved, **server.versions()}

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(server.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def is_loopback(host: str | None) -> bool:
    """Whether a client address is this machine's loopback (127.0.0.0/8, ::1, ::ffff:127.x)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def server_sent_events(stream: Stream, cancelled: threading.Event, include_usage: bool) -> Any:
    """A settled Stream as OpenAI's chat.completion.chunk events: the role, content pieces as they are decoded,
    the finish reason, usage if asked, [DONE]. The stream's generation runs in its own thread, so the event loop
    serves other requests meanwhile; when the client goes away, `cancelled` stops it at the next token."""
    import asyncio

    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def put(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop closed: nobody is listening any more
            loop.call_soon_threadsafe(events.put_nowait, item)

    def produce() -> None:
        try:
            with contextlib.closing(stream.events) as pieces:  # type: ignore[type-var]
                for piece in pieces:
                    put(piece)
        except Exception as exc:
            put(exc)
        finally:
            put(end)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        body = {"id": stream.id, "object": "chat.completion.chunk", "created": stream.created,
                "model": f"retune-{stream.version}",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], **extra}
        if include_usage:
            body["usage"] = None  # as OpenAI does: only the last chunk carries usage
        return _sse(body)

    threading.Thread(target=produce, name="retune-stream", daemon=True).start()
    try:
        yield chunk({"role": "assistant", "content": ""}, retune={
            "version": stream.version, "variant": stream.variant, "cached": stream.cached, "canary": stream.canary,
            "fallback_from": stream.fallback_from})
        while (piece := await events.get()) is not end:
            if isinstance(piece, Exception):
                message = f"model {stream.version} failed while streaming the answer ({type(piece).__name__})"
                yield _sse({"error": {"message": message, "type": "server_error"}})
                return
            if isinstance(piece, Generation):
                yield chunk({}, piece.finish_reason)
                if include_usage:
                    usage = {"prompt_tokens": piece.prompt_tokens, "completion_tokens": piece.completion_tokens,
                             "total_tokens": piece.prompt_tokens + piece.completion_tokens}
                    yield _sse({"id": stream.id, "object": "chat.completion.chunk", "created": stream.created,
                                "model": f"retune-{stream.version}", "choices": [], "usage": usage})
                yield "data: [DONE]\n\n"
            else:
                yield chunk({"content": piece})
    finally:
        cancelled.set()  # the client left (or the stream ended): the generation stops at its next token


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line ServeError (port taken, unknown host) before any model loads."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}") from None
    family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror} (is another server running there? "
                         "choose another --port)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class Running:
    """A server started by `start_server`: its URL, the ModelServer, and how to stop it."""

    url: str
    server: ModelServer
    stop: Callable[[], None]


@contextlib.contextmanager
def serving(cfg: Config, host: str, port: int, *, registry: Registry | None = None) -> Iterator[Running]:
    """Run the server in a background thread for the block (tests, benchmarks); port 0 picks a free one."""
    import uvicorn

    sock = bind(host, port)
    model_server = ModelServer(cfg, registry)
    try:
        model_server.start()
    except BaseException:
        sock.close()
        raise
    uv = uvicorn.Server(uvicorn.Config(create_app(model_server), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="retune-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ServeError("the HTTP server did not start")
        time.sleep(0.02)
    actual_port = sock.getsockname()[1]

    def stop() -> None:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()

    try:
        yield Running(f"http://{host}:{actual_port}", model_server, stop)
    finally:
        stop()


def run_server(cfg: Config, host: str, port: int, on_ready: Callable[[str, dict[str, Any]], None]) -> None:
    """`retune serve`: bind, load production (and the canary), answer until interrupted."""
    import uvicorn

    sock = bind(host, port)
    try:
        model_server = ModelServer(cfg)
        model_server.start()
    except BaseException:
        sock.close()
        raise
    on_ready(f"http://{host}:{sock.getsockname()[1]}", model_server.versions())
    uv = uvicorn.Server(uvicorn.Config(create_app(model_server), log_level="info", lifespan="on"))
    try:
        uv.run(sockets=[sock])
    finally:
        sock.close()
