"""Benchmark of `make run`: wall time and peak memory of each `retune run`, and Prefect's share of the time.

Runs the CLI exactly as `make run` does (batch 1, then batch 2) in a fresh workdir with its own Prefect
database, then reads every flow and task run back from Prefect to split the wall time into stage work
(the sum of top-level task run times) and orchestration overhead (everything else: temporary server start,
flow/task bookkeeping, process start-up and imports).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = REPO / "benchmarks" / "results" / "run.json"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="retune-bench-"))
    workdir = tmp / "work"
    config = tmp / "retune.yaml"
    base = (REPO / "retune.yaml").read_text()
    config.write_text(base.replace("workdir: .retune", f"workdir: {workdir}"))
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect"), "HF_HUB_OFFLINE": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)

    runs = []
    for batch in ("batch1", "batch2"):
        start = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "retune"), "run", "--config", str(config), "--source", f"examples/{batch}/*"],
            cwd=REPO, env=env, capture_output=True, text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"retune run failed on {batch}:\n{done.stderr[-3000:]}")
        runs.append({"batch": batch, "wall_s": round(wall, 1)})
    # ru_maxrss of children: the largest single process (a training rank or the flow process), in KiB.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    stages = _stage_times(env)
    for run, flow_stages in zip(runs, stages, strict=True):
        run["stage_work_s"] = round(sum(flow_stages.values()), 1)
        run["overhead_s"] = round(run["wall_s"] - run["stage_work_s"], 1)
        run["stages_s"] = {k: round(v, 1) for k, v in flow_stages.items()}

    total_wall = sum(r["wall_s"] for r in runs)
    total_work = sum(r["stage_work_s"] for r in runs)
    result = {
        "make_run_wall_s": round(total_wall, 1),
        "stage_work_s": round(total_work, 1),
        "overhead_s": round(total_wall - total_work, 1),
        "overhead_share": round((total_wall - total_work) / total_wall, 3),
        "peak_rss_mb_largest_process": round(peak_mb),
        "runs": runs,
        "cpus": os.cpu_count(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    shutil.rmtree(tmp, ignore_errors=True)


def _stage_times(env: dict[str, str]) -> list[dict[str, float]]:
    """Per `retune-run` flow run (oldest first): seconds per stage, from the task runs Prefect recorded."""
    code = r"""
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    flows = {f.id: f.name for f in c.read_flows()}
    runs = c.read_flow_runs(limit=200)
    tasks = c.read_task_runs(limit=200)
by_parent = {}
for r in runs:
    by_parent.setdefault(str(r.parent_task_run_id), []).append(r)
top = sorted((r for r in runs if flows[r.flow_id] == "retune-run"), key=lambda r: r.start_time)
task_flow = {str(t.id): str(t.flow_run_id) for t in tasks}
sub_of = {str(r.id): task_flow.get(str(r.parent_task_run_id)) for r in runs if r.parent_task_run_id}
def root(fid):
    while fid in sub_of and sub_of[fid]:
        fid = sub_of[fid]
    return fid
# A subflow is represented in its parent by a task run spanning it whole: count only real stage tasks.
subflow_tasks = {str(r.parent_task_run_id) for r in runs if r.parent_task_run_id}
out = []
for t_run in top:
    stages = {}
    for t in tasks:
        if str(t.id) in subflow_tasks:
            continue
        if root(str(t.flow_run_id)) == str(t_run.id) and t.total_run_time:
            name = t.name.rsplit("-", 1)[0]
            stages[name] = stages.get(name, 0.0) + t.total_run_time.total_seconds()
    out.append(stages)
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print(result: dict) -> None:
    print(f"{'run':<8} {'wall s':>8} {'stage work s':>13} {'overhead s':>11}")
    for r in result["runs"]:
        print(f"{r['batch']:<8} {r['wall_s']:>8} {r['stage_work_s']:>13} {r['overhead_s']:>11}")
    print(f"{'total':<8} {result['make_run_wall_s']:>8} {result['stage_work_s']:>13} {result['overhead_s']:>11}"
          f"  (overhead share {result['overhead_share']:.0%}; peak RSS {result['peak_rss_mb_largest_process']} MB)")
    for r in result["runs"]:
        slowest = sorted(r["stages_s"].items(), key=lambda x: -x[1])
        print(f"  {r['batch']}: " + ", ".join(f"{k} {v}" for k, v in slowest))
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
