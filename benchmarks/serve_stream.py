"""Benchmark `retune serve` streaming: time to the first streamed piece vs the whole reply, side by side."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve import SMOLLM2, WORK, build_package, question, running_serve  # noqa: E402

from retune.registry import Registry  # noqa: E402
from retune.store import LocalStore  # noqa: E402


def whole(http: httpx.Client, url: str, text: str, max_tokens: int) -> tuple[float, str, int]:
    """Seconds until the non-streamed reply is complete, its text and its completion tokens."""
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0}
    start = time.perf_counter()
    response = http.post(f"{url}/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()["choices"][0]["message"]["content"], response.json()["usage"]["completion_tokens"]


def streamed(http: httpx.Client, url: str, text: str, max_tokens: int) -> tuple[float, float, str, int]:
    """Seconds to the first content piece and to [DONE], the joined text, and how many content pieces came."""
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0,
            "stream": True}
    start = time.perf_counter()
    first, pieces = None, []
    with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line.removeprefix("data: "))["choices"]
            content = delta[0]["delta"].get("content") if delta else None
            if content:
                first = first if first is not None else time.perf_counter() - start
                pieces.append(content)
    done = time.perf_counter() - start
    return first if first is not None else done, done, "".join(pieces), len(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2" if SMOLLM2.is_dir() else "tiny")
    parser.add_argument("--recipe", default="int8_weight_only_all",
                        help="quantization recipe of the served variant ('' for fp32 ONNX)")
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    package, variant = build_package(args.model, args.recipe or None)
    run_dir = WORK / "run-stream"
    shutil.rmtree(run_dir, ignore_errors=True)
    registry = Registry(LocalStore(run_dir / "work" / "store"))
    version = registry.register(package, {}, {"onnx_variant": variant}).version
    registry.promote(version, "serve streaming benchmark")
    config = run_dir / "retune.yaml"
    settings = {"threads": 1, "replicas": 1, "max_new_tokens": args.max_tokens, "reload_seconds": 0,
                "response_cache_size": 0}  # every request generates: no cache hit hides the generation
    config.write_text(yaml.safe_dump({"workdir": str(run_dir / "work"), "serve": settings}))

    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with running_serve(config) as url:
        rng = random.Random(0)
        with httpx.Client(timeout=300) as http:
            whole(http, url, question(rng), args.max_tokens)  # warm-up
            for i in range(args.questions):
                text = question(rng)
                # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
                if i % 2:
                    w = whole(http, url, text, args.max_tokens)
                    s = streamed(http, url, text, args.max_tokens)
                else:
                    s = streamed(http, url, text, args.max_tokens)
                    w = whole(http, url, text, args.max_tokens)
                rows.append({"whole_s": w[0], "first_piece_s": s[0], "stream_done_s": s[1], "tokens": w[2],
                             "pieces": s[3], "same_text": s[2] == w[1]})
    load_after = os.getloadavg()

    med = lambda key: statistics.median(r[key] for r in rows) * 1000  # noqa: E731
    summary = {
        "whole_reply_p50_ms": round(med("whole_s"), 1),
        "first_piece_p50_ms": round(med("first_piece_s"), 1),
        "stream_done_p50_ms": round(med("stream_done_s"), 1),
        "first_piece_vs_whole": round(med("first_piece_s") / med("whole_s"), 3),
        "stream_done_vs_whole": round(med("stream_done_s") / med("whole_s"), 3),
        "completion_tokens_mean": round(statistics.fmean(r["tokens"] for r in rows), 1),
        "pieces_mean": round(statistics.fmean(r["pieces"] for r in rows), 1),
        "streamed_text_equals_whole": sum(r["same_text"] for r in rows),
        "requests_each": len(rows),
    }
    print(f"retune serve streaming, {args.model} ONNX {variant}, 1 client, 1 replica x 1 thread, "
          f"{args.max_tokens} max new tokens, {len(rows)} questions each way; load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    print("| measure | p50 ms | vs whole reply |\n|---|---|---|")
    print(f"| whole reply (non-streamed) | {summary['whole_reply_p50_ms']} | 1.00 |")
    print(f"| first streamed piece | {summary['first_piece_p50_ms']} | {summary['first_piece_vs_whole']:.2f} |")
    print(f"| streamed reply complete ([DONE]) | {summary['stream_done_p50_ms']} | "
          f"{summary['stream_done_vs_whole']:.2f} |")
    print(f"streamed text == non-streamed text in {summary['streamed_text_equals_whole']}/{len(rows)}; "
          f"{summary['pieces_mean']} pieces for {summary['completion_tokens_mean']} tokens on average")
    result = {"model": args.model, "variant": variant, "max_tokens": args.max_tokens, **summary,
              "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                          "load_average_before": load_before, "load_average_after": load_after, "shared": True},
              "requests": rows}
    out = ROOT / "benchmarks" / "results" / "serve_stream.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
