"""Incremental runs on tiny data: nothing new skips every heavy stage, a changed input reruns exactly what is
downstream of it, a tiny budget stops the fine-tune, and each run's cost figures add up."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from dag_config import tiny_config, write_config

from retune.config import load_config
from retune.cost import BudgetExceeded, CostLedger, ledger_path

pytestmark = pytest.mark.slow

HEAVY = ("build-training-set", "finetune", "export", "evaluate", "register", "promote")


def statuses(rows: list[tuple[str, str]]) -> dict[str, str]:
    return {k.removeprefix("stage "): v for k, v in rows if k.startswith("stage ")}


def assert_adds_up(run) -> None:
    """Stage sums are the run's totals: the stages (orchestration included) account for the whole run."""
    total = run.totals()
    assert run.stages[-1].stage == "orchestration"
    assert total.wall_s == pytest.approx(run.wall_s, abs=0.01)
    assert total.cpu_s == pytest.approx(run.cpu_s, abs=0.01)
    assert total.currency == pytest.approx(sum(s.currency for s in run.stages))
    assert total.currency > 0


def flow_runs() -> Counter[str]:
    """Flow runs on the server so far, by flow name."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        names = {flow_id: client.read_flow(flow_id).name for flow_id in {r.flow_id for r in runs}}
    return Counter(names[r.flow_id] for r in runs)


def test_incremental_reruns_budget_and_cost(tmp_path, prefect_harness):
    from flows.run import run_flow

    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    ledger = CostLedger(ledger_path(load_config(config).path(".")))

    before = flow_runs()
    cold = statuses(run_flow(str(config)))
    # with work to do, ingest and retrain are subflow runs of their own; monitor has no production model to
    # compare against yet, so its check runs inside the run
    assert flow_runs() - before == Counter({"retune-run": 1, "ingest": 1, "retrain": 1})
    assert all(cold[s].startswith("ran") for s in HEAVY), cold
    (run,) = ledger.read()
    assert_adds_up(run)
    assert run.flow == "retune-run" and run.model_version == "v1" and run.status == "completed"
    by_stage = {s.stage: s for s in run.stages}
    # the ranks run as child processes of the launcher: their CPU is counted, and is most of the fine-tune's
    assert by_stage["finetune"].child_cpu_s > 0.5 * by_stage["finetune"].cpu_s > 0
    assert by_stage["finetune"].tokens > 0 and by_stage["evaluate"].tokens > 0
    assert by_stage["register"].store_bytes > 0 and by_stage["ingest"].store_bytes > 0
    assert by_stage["finetune"].gpu_s == 0  # the field exists; no GPU here

    # nothing new: the gate stops the retrain and the reason is given for every stage; the checks run inside the
    # one flow run (no subflow run is started for nothing), and their cost joins it
    before = flow_runs()
    warm = statuses(run_flow(str(config)))
    assert all(warm[s].startswith("skipped: only 0 new conversations") for s in HEAVY), warm
    assert warm["ingest"].startswith("ran") and warm["check-new-data"].startswith("ran"), warm
    assert flow_runs() - before == Counter({"retune-run": 1})
    assert [s.stage for s in ledger.read()[-1].stages][:3] == ["ingest", "drift", "check-new-data"]

    # forced, with nothing changed: every heavy stage is reused
    forced = statuses(run_flow(str(config), force=True))
    assert all(forced[s].startswith("skipped: cached (key ") for s in HEAVY), forced

    # a change to evaluation.* reruns evaluate, register and promote; the fine-tune and the export are reused
    write_config(config, tiny_config(tmp_path / "work", evaluation={"max_new_tokens": 6}))
    changed = statuses(run_flow(str(config), force=True))
    assert [s for s in HEAVY if changed[s].startswith("ran")] == ["evaluate", "register", "promote"], changed
    assert all(changed[s].startswith("skipped: cached") for s in ("build-training-set", "finetune", "export"))

    # a tiny budget stops a fine-tune that has to run (new training knobs) with the projection in one line
    write_config(config, tiny_config(tmp_path / "work", evaluation={"max_new_tokens": 6},
                                     training={"max_steps": 40}, cost={"budget": {"max_cpu_hours": 0.0001}}))
    with pytest.raises(BudgetExceeded, match=r"projected to use .* CPU-hours.*above cost.budget.max_cpu_hours"):
        run_flow(str(config), force=True)
    stopped = ledger.read()[-1]
    assert stopped.status.startswith("failed") and {s.stage: s.status for s in stopped.stages}["finetune"] == "failed"
    assert_adds_up(stopped)

    runs = ledger.read()
    assert len(runs) == 5
    for r in runs:
        assert_adds_up(r)
    shown = subprocess.run([f"{sys.prefix}/bin/retune", "cost", "--since", "1d", "--config", str(config)],
                           capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "by flow" in shown.stdout and "retune-run" in shown.stdout and "v1" in shown.stdout
    assert f"{len(runs)} run(s)" in shown.stdout


def test_a_flow_run_alone_leaves_its_cost_for_history_and_the_ledger(tmp_path, prefect_harness):
    """`retune monitor` on its own is a top-level run: one ledger line, and `retune history` shows its cost."""
    from flows.history import recent_runs
    from flows.monitor import monitor_flow

    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    assert monitor_flow(str(config)).result is None  # no model in production yet
    (run,) = CostLedger(ledger_path(load_config(config).path("."))).read()
    assert run.flow == "monitor" and [s.stage for s in run.stages] == ["drift", "orchestration"]
    assert_adds_up(run)
    shown = next(r for r in recent_runs(50) if r.flow == "monitor" and r.name == run.flow_run_name)
    assert shown.cost.endswith("GPU-s") and "USD" in shown.cost


def test_an_ingest_run_alone_leaves_its_cost_in_the_ledger(tmp_path, prefect_harness):
    """The `ingest` deployment runs on its own (triggered by landed files): its cost is recorded too."""
    from flows.ingest import ingest_flow

    config = write_config(tmp_path / "retune.yaml", tiny_config(tmp_path / "work"))
    ingested = ingest_flow(str(config))
    assert ingested.dataset is not None
    (run,) = CostLedger(ledger_path(load_config(config).path("."))).read()
    assert run.flow == "ingest" and [s.stage for s in run.stages] == ["ingest", "orchestration"]
    assert run.stages[0].store_bytes > 0
    assert_adds_up(run)
