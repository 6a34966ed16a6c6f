"""Benchmark of incremental runs: `retune run` cold, warm (nothing new), warm forced, then one new batch, in ONE run.

Every call is the CLI exactly as a user types it, against a Prefect server the benchmark starts (so no call pays
the ~9 s temporary-server start); one extra warm call without a server shows that start-up honestly. What each
run reused, and its cost, is read back from the cost ledger the runs wrote in the workdir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = REPO / "benchmarks" / "results" / "incremental.json"
WARM_REPEATS = 3  # "repeated with no new data": the median of these is compared with the cold run
sys.path.insert(0, str(REPO))

from retune.cost import CostLedger, allocate  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="retune-incr-"))
    workdir = tmp / "work"
    config = tmp / "retune.yaml"
    config.write_text((REPO / "retune.yaml").read_text().replace("workdir: .retune", f"workdir: {workdir}"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
           "PREFECT_HOME": str(tmp / "prefect"), "HF_HUB_OFFLINE": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    load_before = os.getloadavg()
    server, url = _start_server(tmp, env)
    try:
        served = {**env, "PREFECT_API_URL": url}
        runs = [
            _run("cold (batch 1)", config, served, ["--source", "examples/batch1/*"]),
            *(_run(f"warm (nothing new) #{i}", config, served, ["--source", "examples/batch1/*"])
              for i in range(1, WARM_REPEATS + 1)),
            _run("warm, forced (nothing new, --force)", config, served, ["--source", "examples/batch1/*", "--force"]),
            _run("one new batch (batch 2)", config, served, ["--source", "examples/batch2/*"]),
        ]
    finally:
        _stop(server)
    runs.append(_run("warm, no server (temporary one)", config, env, ["--source", "examples/batch1/*"]))
    load_after = os.getloadavg()

    ledger = CostLedger(workdir / "cost" / "ledger.jsonl").read()
    for run, recorded in zip(runs, ledger, strict=True):
        total = recorded.totals()
        run["in_flow_s"] = round(recorded.wall_s, 2)
        run["stages"] = {s.stage: (s.status if s.status in ("ran", "failed") else
                                   "cached" if s.status == "cached" else "skipped")
                         for s in recorded.stages if s.stage != "orchestration"}
        run["stage_wall_s"] = {s.stage: round(s.wall_s, 2) for s in recorded.stages}
        run["reused"] = [s.stage for s in recorded.stages if s.status == "cached"]
        run["cost"] = {"cpu_s": round(total.cpu_s, 1), "gpu_s": round(total.gpu_s, 1), "tokens": total.tokens,
                       "store_bytes": total.store_bytes, "peak_rss_mb": round(total.peak_rss_bytes / 2**20),
                       "usd": round(total.currency, 6)}
    cold = runs[0]["wall_s"]
    warm = statistics.median(r["wall_s"] for r in runs[1 : 1 + WARM_REPEATS])
    forced, new_batch, no_server = runs[1 + WARM_REPEATS :]
    result = {
        "cold_wall_s": cold,
        "warm_wall_s_median": warm,
        "warm_over_cold": round(warm / cold, 3),
        "warm_forced_over_cold": round(forced["wall_s"] / cold, 3),
        "new_batch_over_cold": round(new_batch["wall_s"] / cold, 3),
        "warm_no_server_over_cold": round(no_server["wall_s"] / cold, 3),
        "runs": runs,
        "by_flow": [vars(r) for r in allocate(ledger, "flow")],
        "by_stage": [vars(r) for r in allocate(ledger, "stage")],
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
        "note": "machine shared with other jobs (see load average): absolute times are noisy; ratios are side by side",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    shutil.rmtree(tmp, ignore_errors=True)


def _run(label: str, config: Path, env: dict[str, str], args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "retune"), "run", "--config", str(config), *args],
                          cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"retune run failed ({label}):\n{done.stderr[-3000:]}")
    print(f"{label}: {wall:.1f} s", flush=True)
    return {"run": label, "wall_s": round(wall, 2)}


def _start_server(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    sys.exit("prefect server did not start:\n" + (tmp / "server.log").read_text()[-3000:])


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _print(result: dict) -> None:
    print(f"\n{'run':<36} {'wall s':>8} {'x cold':>7} {'in flow s':>9} {'CPU s':>7} {'USD':>9}  reused")
    for r in result["runs"]:
        c = r["cost"]
        print(f"{r['run']:<36} {r['wall_s']:>8} {r['wall_s'] / result['cold_wall_s']:>7.3f} {r['in_flow_s']:>9} "
              f"{c['cpu_s']:>7} {c['usd']:>9.6f}  {', '.join(r['reused']) or '-'}")
    print(f"warm (nothing new), median of {WARM_REPEATS}: {result['warm_wall_s_median']} s = "
          f"{result['warm_over_cold']:.1%} of the cold run (goal: at most 5%)")
    print("\nstage status per run:")
    for r in result["runs"]:
        print(f"  {r['run']}: " + ", ".join(f"{k} {v}" for k, v in r["stages"].items()))
    print(f"\n{'stage':<20} {'ran':>4} {'wall s':>8} {'CPU s':>8} {'tokens':>8} {'stored B':>10} {'USD':>10}")
    for row in result["by_stage"]:
        print(f"{row['name']:<20} {row['runs']:>4} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} {row['tokens']:>8} "
              f"{row['store_bytes']:>10} {row['currency']:>10.6f}")
    print(f"\nload average before/after: {result['load_average_before_after']} on {result['cpus']} CPUs "
          f"(shared machine); wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
