"""Benchmark of ingest: records/s and peak RSS at 1x and 10x input, to show memory stays flat with input size.

Run: .venv/bin/python benchmarks/ingest.py [--copies 50]
(prints a table, writes benchmarks/results/ingest.json)

"1x" is the examples' batch1 (chat.jsonl + pairs.csv) copied --copies times with fresh conversation ids (so
nothing is a duplicate), written to a temporary directory, chat.jsonl gzip-compressed; "10x" is ten times
that.
Each size is ingested in its own fresh process, whose peak RSS (ru_maxrss) is reported.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = ROOT / "examples" / "batch1"
RESULTS = Path(__file__).parent / "results" / "ingest.json"


def generate(out_dir: Path, copies: int) -> int:
    """Write `copies` renamed copies of batch1 into out_dir (chat .jsonl.gz, pairs .csv); bytes written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chat_lines = (BATCH / "chat.jsonl").read_bytes().splitlines()
    with (BATCH / "pairs.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, pairs = reader.fieldnames, list(reader)
    with gzip.open(out_dir / "chat.jsonl.gz", "wb", compresslevel=1) as chat:
        for c in range(copies):
            for raw in chat_lines:
                try:
                    rec = json.loads(raw)
                    if isinstance(rec, dict) and "conversation_id" in rec:
                        rec["conversation_id"] = f"{rec['conversation_id']}-{c}"
                    raw = json.dumps(rec, ensure_ascii=False).encode()
                except ValueError:
                    pass  # malformed lines stay malformed: they exercise the quarantine
                chat.write(raw + b"\n")
    with (out_dir / "pairs.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for c in range(copies):
            for row in pairs:
                writer.writerow({**row, "conversation_id": f"{row['conversation_id']}-{c}"})
    return sum(p.stat().st_size for p in out_dir.iterdir())


def child(data_dir: Path, work: Path) -> None:
    """Ingest data_dir in this process and print one JSON line with the figures."""
    from retune.config import SourceConfig
    from retune.sources import ingest

    start = time.perf_counter()
    report = ingest([SourceConfig(path=str(data_dir))], work / "out", work / "q", batch_size=1000)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "records_in": report.records_in,
                "kept": report.kept,
                "turns": report.turns,
                "quarantined": report.quarantined,
                "duplicates": report.duplicates,
                "reconciles": report.reconciles(),
                "seconds": round(seconds, 2),
                "records_per_s": round(report.records_in / seconds),
                "turns_per_s": round(report.turns / seconds),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=50, help="copies of batch1 in the 1x input")
    parser.add_argument("--child", nargs=2, metavar=("DATA", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, copies in (("1x", args.copies), ("10x", 10 * args.copies)):
            data = Path(tmp) / f"data-{label}"
            size = generate(data, copies)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(data), str(Path(tmp) / f"work-{label}")],
                capture_output=True,
                text=True,
                check=True,
            )
            results[label] = {
                "copies": copies,
                "input_mb": round(size / 1e6, 2),
                **json.loads(io.StringIO(proc.stdout).readlines()[-1]),
            }
    print(f"{'input':<6}{'MB':>8}{'records':>10}{'turns':>10}{'s':>8}{'records/s':>11}{'peak RSS MB':>13}")
    for label, r in results.items():
        print(
            f"{label:<6}{r['input_mb']:>8}{r['records_in']:>10}{r['turns']:>10}{r['seconds']:>8}"
            f"{r['records_per_s']:>11}{r['peak_rss_mb']:>13}"
        )
    ratio = results["10x"]["peak_rss_mb"] / results["1x"]["peak_rss_mb"]
    print(f"peak RSS 10x / 1x: {ratio:.2f}")
    summary = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "results": results,
        "peak_rss_ratio_10x_over_1x": round(ratio, 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
