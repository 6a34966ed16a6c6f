"""Benchmark of the drift report: wall time for 10k vs 10k and 100k vs 100k turns, one run each.

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

from retune.drift import drift_report
from retune.schema import TURN_SCHEMA

WORDS = np.array("my order has not arrived please help refund account password reset thanks invoice".split())
RESULTS = Path(__file__).parent / "results" / "drift.json"


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
    started = time.perf_counter()
    import evidently  # noqa: F401  # measured apart: every real run pays it once per process

    import_s = time.perf_counter() - started
    cases = [(10_000, 20_000), (100_000, 20_000), (100_000, 100_000)]  # (rows per side, sample_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, sample_size in cases:
            reference = synthetic_turns(n, shifted=False, seed=1)
            current = synthetic_turns(n, shifted=True, seed=2)
            started = time.perf_counter()
            result = drift_report(
                reference, current, Path(tmp) / f"{n}_{sample_size}", threshold=0.5, sample_size=sample_size
            )
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "rows_per_side": n,
                    "sample_size": sample_size,
                    "rows_compared": result.n_current,
                    "seconds": round(seconds, 2),
                    "drift_share": round(result.drift_share, 3),
                    "drift_detected": result.drift_detected,
                    "html_mb": round(result.html_path.stat().st_size / 1e6, 2),
                }
            )
            print(f"done {n} vs {n} (sample {sample_size}): {seconds:.1f} s", file=sys.stderr, flush=True)

    print(f"evidently import: {import_s:.1f} s (once per process, not in the times below)")
    header = ("rows/side", "sample", "compared", "seconds", "share", "drift", "html MB")
    print("{:>10} {:>8} {:>9} {:>8} {:>6} {:>6} {:>8}".format(*header))
    for r in rows:
        print(
            f"{r['rows_per_side']:>10,} {r['sample_size']:>8,} {r['rows_compared']:>9,} {r['seconds']:>8.2f} "
            f"{r['drift_share']:>6.2f} {str(r['drift_detected']):>6} {r['html_mb']:>8.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    summary = {"import_seconds": round(import_s, 2), "machine": machine, "runs": rows}
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
