"""Benchmark of the drift report: time for 10k and 100k turns per side, with and without embedding drift,
with a cold and a warm reference cache, pinned to one core.

Run: .venv/bin/python benchmarks/drift.py   (prints a table, writes benchmarks/results/drift.json)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from retune import embeddings
from retune.drift import EMBEDDING_COLUMNS, EMBEDDING_MISSING, drift_report
from retune.schema import TURN_SCHEMA

WORDS = np.array("my order has not arrived please help refund account password reset thanks invoice".split())
RESULTS = Path(__file__).parent / "results" / "drift.json"
EMBEDDING_SAMPLE_SIZE = 2000  # DriftConfig's default


def synthetic_turns(n: int, *, shifted: bool, seed: int) -> pa.Table:
    """Support-like turns built with numpy; `shifted` makes texts longer, with links, and email-heavy."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 40, n) if shifted else rng.integers(3, 25, n)
    texts = [" ".join(rng.choice(WORDS, k)) + "." for k in lengths]
    link = rng.random(n) < (0.3 if shifted else 0.05)
    email = rng.random(n) < 0.1
    texts = [
        t + (" https://help.example.com/a" if li else "") + (" <EMAIL_3f9a1c2b>" if em else "")
        for t, li, em in zip(texts, link, email, strict=True)
    ]
    mix = [0.5, 0.4, 0.1] if shifted else [0.2, 0.7, 0.1]
    start = np.datetime64("2026-11-01T00:00:00", "us")
    offsets = rng.integers(0, 30 * 24 * 3600, n).astype("timedelta64[s]").astype("timedelta64[us]")
    return pa.Table.from_pydict(
        {
            "conversation_id": [f"c{i // 2}" for i in range(n)],
            "turn": np.arange(n, dtype=np.int32) % 2,
            "role": np.where(np.arange(n) % 2 == 0, "user", "assistant"),
            "text": texts,
            "created_at": pa.array(start + offsets, pa.timestamp("us", tz="UTC")),
            "channel": rng.choice(["email", "chat", "phone"], n, p=mix),
            "source": ["bench"] * n,
            "source_offset": np.arange(n, dtype=np.int64),
            "content_hash": ["0" * 64] * n,
        },
        schema=TURN_SCHEMA,
    )


def main() -> None:
    # One core, one torch thread: the goal is stated for one core, and the machine is shared.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    started = time.perf_counter()
    import evidently  # noqa: F401  # measured apart: every real run pays it once per process

    import_s = time.perf_counter() - started
    model = embeddings.find_model()
    load_s = None
    if model is not None:
        import torch

        torch.set_num_threads(1)
        started = time.perf_counter()
        embeddings.encode(model, ["warm up"])  # loads transformers and the model: once per process
        load_s = time.perf_counter() - started
    # (rows per side, sample_size, embeddings, cache): "cold" writes the reference cache, "warm" reads it.
    cases = [
        (10_000, 20_000, False, "none"),
        (100_000, 20_000, False, "none"),
        (100_000, 20_000, False, "cold"),
        (100_000, 20_000, False, "warm"),
        (100_000, 20_000, True, "cold"),
        (100_000, 20_000, True, "warm"),
        (100_000, 100_000, False, "none"),
    ]
    rows = []
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, sample_size, with_embeddings, cache in cases:
            if with_embeddings and model is None:
                print(f"skipped {n} with embeddings: {EMBEDDING_MISSING}", file=sys.stderr)
                continue
            if n not in tables:
                tables[n] = (
                    synthetic_turns(n, shifted=False, seed=1),
                    synthetic_turns(n, shifted=True, seed=2),
                )
            reference, current = tables[n]
            name = f"{n}_{sample_size}_{with_embeddings}_{cache}"
            cache_dir = None if cache == "none" else Path(tmp) / f"cache_{n}_{sample_size}_{with_embeddings}"
            started, cpu_started = time.perf_counter(), time.process_time()
            result = drift_report(
                reference,
                current,
                Path(tmp) / name,
                threshold=0.5,
                sample_size=sample_size,
                embeddings=with_embeddings,
                embedding_sample_size=EMBEDDING_SAMPLE_SIZE,
                cache_dir=cache_dir,
                reference_key=f"bench-{n}",
            )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            assert result.reference_from_cache == (cache == "warm")
            embedded = [c for c, _, _ in result.columns if c in EMBEDDING_COLUMNS]
            rows.append(
                {
                    "rows_per_side": n,
                    "sample_size": sample_size,
                    "rows_compared": result.n_current,
                    "embeddings": with_embeddings,
                    "embedded_per_side": EMBEDDING_SAMPLE_SIZE if embedded else 0,
                    "reference_cache": cache,
                    "seconds": round(seconds, 2),
                    "cpu_seconds": round(cpu, 2),
                    "drift_share": round(result.drift_share, 3),
                    "drift_detected": result.drift_detected,
                    "embedding_columns_drifted": sum(1 for c, _, d in result.columns if d and c in embedded),
                    "html_mb": round(result.html_path.stat().st_size / 1e6, 2),
                }
            )
            print(f"done {name}: {seconds:.1f} s", file=sys.stderr, flush=True)

    print(f"evidently import: {import_s:.1f} s (once per process, not in the times below)")
    if load_s is not None:
        print(f"transformers import + {embeddings.MODEL_NAME} load: {load_s:.1f} s (once per process)")
    header = ("rows/side", "sample", "compared", "embedded", "ref cache", "wall s", "cpu s", "share", "drift")
    print("{:>10} {:>8} {:>9} {:>9} {:>9} {:>7} {:>7} {:>6} {:>6}".format(*header))
    for r in rows:
        print(
            f"{r['rows_per_side']:>10,} {r['sample_size']:>8,} {r['rows_compared']:>9,} "
            f"{r['embedded_per_side']:>9,} {r['reference_cache']:>9} "
            f"{r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} "
            f"{r['drift_share']:>6.2f} {str(r['drift_detected']):>6}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpus_used": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": 1,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    summary = {
        "import_seconds": round(import_s, 2),
        "model_load_seconds": None if load_s is None else round(load_s, 2),
        "embedding_model": None if model is None else f"{embeddings.EMBEDDING_PACKAGE}=={model.version}",
        "machine": machine,
        "runs": rows,
    }
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
