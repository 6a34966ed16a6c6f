"""Benchmark `retune serve` under a bounded local load: throughput and p50/p99 latency, cache misses vs hits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retune.registry import Registry  # noqa: E402
from retune.store import LocalStore  # noqa: E402

SMOLLM2 = ROOT / ".cache" / "models" / "smollm2"
WORK = ROOT / ".cache" / "bench" / "serve"
RETUNE = Path(sys.executable).parent / "retune"
ITEMS = ["order", "parcel", "invoice", "refund", "password", "subscription", "delivery", "account"]
ASKS = ["Hi, where is my {item} {n}?", "Hello, I have a problem with {item} {n}.",
        "Can you help me with {item} {n} please?", "Any news about {item} {n}?"]


def question(rng: random.Random) -> str:
    return rng.choice(ASKS).format(item=rng.choice(ITEMS), n=rng.randint(10_000, 99_999))


def build_package(model: str, recipe: str | None) -> tuple[Path, str]:
    """A model package (onnx/ + system prompt) as tasks/promote.py lays it out; exported once, then reused."""
    from retune.export import export_onnx, quantize

    out = WORK / f"package-{model}-{recipe or 'fp32'}"
    if (out / "onnx" / "model.onnx").is_file():
        return out, recipe or "fp32"
    if model == "smollm2":
        base = SMOLLM2
    else:
        import torch

        from retune.config import BootstrapConfig
        from retune.training.bootstrap import bootstrap_base_model

        torch.set_num_threads(1)  # a shared machine: more threads than free cores make pre-training crawl
        base = WORK / "tiny-base"
        if not (base / "config.json").is_file():
            texts = [question(random.Random(i)) for i in range(400)]
            tiny = BootstrapConfig(vocab_size=500, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                                   pretrain_steps=100)
            bootstrap_base_model(base, texts, tiny)
    fp32 = WORK / f"onnx-{model}-fp32"
    if not (fp32 / "model.onnx").is_file():
        export_onnx(base, fp32)
    shutil.rmtree(out, ignore_errors=True)
    if recipe:
        quantize(fp32, out / "onnx", recipe)
    else:
        shutil.copytree(fp32, out / "onnx")
    (out / "system_prompt.md").write_text((ROOT / "prompts" / "system.md").read_text())
    return out, recipe or "fp32"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_serve(config: Path) -> Iterator[str]:
    """`retune serve` on a free port until the block ends (SIGTERM, then SIGKILL after 20 s); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(RETUNE), "serve", "--config", str(config), "--port", str(port)],
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"retune serve did not start: {server.communicate()[1][-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def load(url: str, prompts: list[str], clients: int, seconds: float, max_tokens: int) -> dict[str, Any]:
    """`clients` threads, each sending one request after the other for `seconds`, prompts taken in turn."""
    latencies: list[float] = []
    tokens, errors, hits = [0], [0], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < deadline:
                with lock:
                    text = prompts[next(counter) % len(prompts)]
                body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0}
                start = time.perf_counter()
                response = http.post(f"{url}/v1/chat/completions", json=body)
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code != 200:
                        errors[0] += 1
                        continue
                    latencies.append(elapsed)
                    tokens[0] += response.json()["usage"]["completion_tokens"]
                    hits[0] += response.headers.get("X-Retune-Cache") == "hit"

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started  # includes the requests in flight at the deadline
    ordered = sorted(latencies)
    pct = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")  # noqa: E731
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "cache_hits": hits[0],
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 2),
        "tokens_per_s": round(tokens[0] / wall, 1),
        "completion_tokens_mean": round(tokens[0] / max(1, len(latencies)), 1),
        "p50_ms": round(pct(0.50), 1),
        "p99_ms": round(pct(0.99), 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2" if SMOLLM2.is_dir() else "tiny")
    parser.add_argument("--recipe", default="int8_weight_only_all",
                        help="quantization recipe of the served variant ('' for fp32 ONNX)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    package, variant = build_package(args.model, args.recipe or None)
    run_dir = WORK / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    registry = Registry(LocalStore(run_dir / "work" / "store"))
    version = registry.register(package, {}, {"onnx_variant": variant}).version
    registry.promote(version, "serve benchmark")
    config = run_dir / "retune.yaml"
    settings = {"threads": args.threads, "replicas": args.replicas, "max_new_tokens": args.max_tokens,
                "reload_seconds": 0, "response_cache_size": 4096}
    config.write_text(yaml.safe_dump({"workdir": str(run_dir / "work"), "serve": settings}))

    load_before = os.getloadavg()
    with running_serve(config) as url:
        rng = random.Random(0)
        load(url, [question(rng) for _ in range(args.clients)], args.clients, 3, args.max_tokens)  # warm-up
        # Misses: every request a new question. Hits: a few questions, answered once before the phase starts.
        # One client first: the latency of a request that waits for nobody, to read the loaded figures against.
        alone = load(url, [question(rng) for _ in range(100_000)], 1, args.seconds / 2, args.max_tokens)
        misses = load(url, [question(rng) for _ in range(100_000)], args.clients, args.seconds, args.max_tokens)
        repeated = [question(rng) for _ in range(16)]
        for text in repeated:
            httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
                "messages": [{"role": "user", "content": text}], "max_tokens": args.max_tokens, "temperature": 0})
        hits = load(url, repeated, args.clients, min(args.seconds, 15), args.max_tokens)
        server_metrics = httpx.get(f"{url}/metrics").text
    load_after = os.getloadavg()

    rows = [("1 client, cache misses", alone), (f"{args.clients} clients, cache misses (new questions)", misses),
            (f"{args.clients} clients, cache hits (repeated questions)", hits)]
    print(f"retune serve, {args.model} ONNX {variant}, {args.clients} concurrent clients, {args.max_tokens} max new "
          f"tokens, {args.replicas} replica(s) x {args.threads} thread(s); load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    header = ["phase", "requests", "req/s", "tokens/s", "p50 ms", "p99 ms", "errors"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, r in rows:
        print(f"| {name} | {r['requests']} | {r['requests_per_s']} | {r['tokens_per_s']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['errors']} |")
    speedup = hits["requests_per_s"] / misses["requests_per_s"] if misses["requests_per_s"] else float("nan")
    print(f"cache hit throughput = {speedup:.0f}x miss throughput")
    result = {
        "model": args.model, "variant": variant, "clients": args.clients, "seconds_per_phase": args.seconds,
        "hit_phase_seconds": min(args.seconds, 15), "max_tokens": args.max_tokens, "replicas": args.replicas,
        "threads": args.threads, "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                                             "load_average_before": load_before, "load_average_after": load_after,
                                             "shared": True},
        "single_client_misses": alone, "misses": misses, "hits": hits, "hit_vs_miss_throughput": round(speedup, 1),
        "server_cache_hit_ratio": [line for line in server_metrics.splitlines()
                                   if line.startswith("retune_serve_cache_hit_ratio")],
    }
    # One entry per model and variant, so several runs' figures live side by side.
    out = ROOT / "benchmarks" / "results" / "serve.json"
    runs = json.loads(out.read_text()) if out.is_file() else {}
    runs[f"{args.model}-{variant}"] = result
    out.write_text(json.dumps(runs, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
