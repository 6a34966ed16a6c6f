"""Cost measurement, pricing, budgets and the ledger; stage cache keys change exactly with their inputs."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retune import cache, cost
from retune.config import BudgetConfig, Config, CostConfig


def test_measure_counts_child_process_cpu_and_store_bytes(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    stage = cost.StageCost("busy", "ran")
    with cost.measure(stage, lambda: cost.store_size(store)):
        # a child that burns ~0.3 s of CPU: getrusage(RUSAGE_CHILDREN) must count it once it is waited for
        burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
        subprocess.run([sys.executable, "-c", burn], check=True)
        (store / "obj").write_bytes(b"x" * 5000)
    assert stage.cpu_s >= stage.child_cpu_s >= 0.3
    assert stage.wall_s >= 0.3
    assert stage.store_bytes == 5000
    assert stage.peak_rss_bytes > 10_000_000  # at least this Python process


def test_measure_fills_the_stage_when_the_block_raises():
    stage = cost.StageCost("fails", "ran")
    with pytest.raises(ValueError), cost.measure(stage):
        raise ValueError("boom")
    assert stage.wall_s >= 0 and stage.peak_rss_bytes > 0


def test_prices_and_gpu_types():
    prices = CostConfig(cpu_hour=0.1, gpu_hour={"default": 2.0, "A100": 3.0}, storage_gb_month=0.02)
    assert cost.estimate(prices, 3600, 0, "", 0) == pytest.approx(0.1)
    assert cost.estimate(prices, 0, 1800, "NVIDIA A100-SXM4-40GB", 0) == pytest.approx(1.5)
    assert cost.estimate(prices, 0, 3600, "Some GPU", 0) == pytest.approx(2.0)
    assert cost.estimate(prices, 0, 0, "", 2 * 10**9) == pytest.approx(0.04)


def _run(flow: str, started: datetime, model: str, cpu: list[float]) -> cost.RunCost:
    prices = CostConfig()
    stages = [cost.StageCost(f"s{i}", "ran", wall_s=c, cpu_s=c, tokens=10).priced(prices) for i, c in enumerate(cpu)]
    return cost.RunCost("r", flow, started=started.isoformat(), model_version=model, stages=stages,
                        wall_s=sum(cpu), cpu_s=sum(cpu))


def test_ledger_round_trip_since_and_allocation_add_up(tmp_path):
    ledger = cost.CostLedger(tmp_path / "cost" / "ledger.jsonl")
    now = datetime.now(UTC)
    runs = [_run("retune-run", now, "v1", [3600, 7200]), _run("retrain", now, "", [1800]),
            _run("retune-run", now - timedelta(days=40), "v0", [99999])]
    for r in runs:
        ledger.append(r)
    with open(ledger.path, "a") as f:
        f.write('{"cut": \n')  # a line cut by a crash is ignored
    recent = ledger.read(timedelta(days=30))
    assert [r.flow for r in recent] == ["retune-run", "retrain"]
    by_flow = {row.name: row for row in cost.allocate(recent, "flow")}
    assert by_flow["retune-run"].cpu_s == 10800 and by_flow["retune-run"].runs == 1
    assert by_flow["retune-run"].currency == pytest.approx(3 * CostConfig().cpu_hour)
    by_model = {row.name: row for row in cost.allocate(recent, "model")}
    assert set(by_model) == {"v1", "(no model)"}
    by_stage = cost.allocate(recent, "stage")
    # the same money, however it is cut
    for cut in (by_flow.values(), by_model.values(), by_stage):
        assert sum(r.currency for r in cut) == pytest.approx(sum(r.totals().currency for r in recent))
        assert sum(r.tokens for r in cut) == 30


def test_nested_accounts_join_the_outer_run():
    outer = cost.RunCost("a", "retune-run")
    with cost.account(outer) as (acc, top):
        assert top and acc is outer
        with cost.account(cost.RunCost("b", "retrain")) as (inner, inner_top):
            assert inner is outer and not inner_top
            inner.stages.append(cost.StageCost("finetune", "ran", wall_s=1.0, cpu_s=2.0))
    assert outer.status == "completed" and outer.wall_s >= 0
    assert [s.stage for s in outer.stages] == ["finetune"]
    overhead = outer.orchestration()
    assert overhead.wall_s >= 0 and overhead.cpu_s >= 0
    assert cost.current_run() is None


def test_budget_projection_and_the_limit_it_breaks():
    prices = CostConfig(cpu_hour=1.0)
    spent = cost.StageCost("so far", "", cpu_s=360.0, currency=0.1)
    # 10 s in, 20 CPU-s used (2 ranks busy), 90 s to go: 360 + 20 + 2 * 90 = 560 CPU-s
    p = cost.project_finetune(prices, spent, 2, 20, 100.0, 90.0, 10.0, 20.0, 0, "")
    assert p.cpu_hours == pytest.approx(560 / 3600)
    assert p.currency == pytest.approx(0.1 + 200 / 3600)
    assert cost.over_budget(BudgetConfig(), p) is None
    assert cost.over_budget(BudgetConfig(max_cpu_hours=0.1), p) == "cost.budget.max_cpu_hours 0.1"
    assert cost.over_budget(BudgetConfig(max_currency=0.12), p) == "cost.budget.max_currency 0.12"
    assert "step 2/20" in p.line("USD") and "USD" in p.line("USD")


def test_stage_cache_round_trip_and_stale_records(tmp_path):
    store = cache.StageCache(tmp_path / "cache")
    out = tmp_path / "examples.parquet"
    out.write_text("x")
    store.put("build-training-set", "k1", out)
    assert store.get("build-training-set", "k1") == out
    assert store.get("build-training-set", "other") is None
    out.unlink()  # the recorded output is gone: a miss, the stage runs again
    assert store.get("build-training-set", "k1") is None
    (tmp_path / "cache" / "export").mkdir()
    (tmp_path / "cache" / "export" / "bad.pkl").write_bytes(b"not a pickle")
    assert store.get("export", "bad") is None


def test_each_key_changes_exactly_with_its_inputs(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    contracts = Path(__file__).resolve().parents[2] / "data_contracts"
    ds = Path(__file__).resolve().parents[2] / "infra/deepspeed/zero2.json"

    def keys(**sections) -> cache.RetrainKeys:
        data = {"workdir": str(tmp_path), "contracts": {"dir": str(contracts)},
                "training": {"deepspeed_config": str(ds)}, **sections}
        cfg = Config.model_validate(data)
        return cache.retrain_keys(cfg, cache.training_set_key(cfg, "commit-a"), str(base))

    before = keys()
    assert keys() == before  # stable
    after_eval = keys(evaluation={"max_new_tokens": 7})
    assert (after_eval.training_set, after_eval.finetune, after_eval.export) == (
        before.training_set, before.finetune, before.export)
    assert after_eval.evaluate != before.evaluate and after_eval.promote != before.promote
    after_export = keys(export={"parity_prompts": 2})
    assert after_export.finetune == before.finetune and after_export.export != before.export
    # knobs that do not change the trajectory keep the fine-tune
    assert keys(training={"deepspeed_config": str(ds), "checkpoint_every": 5}).finetune == before.finetune
    after_train = keys(training={"deepspeed_config": str(ds), "max_steps": 3})
    assert after_train.training_set == before.training_set and after_train.finetune != before.finetune
    assert after_train.promote != before.promote
    after_split = keys(split={"test_fraction": 0.2})
    assert after_split.training_set != before.training_set and after_split.finetune != before.finetune
    (base / "config.json").write_text('{"changed": 1}')  # a new base model revision
    assert keys().finetune != before.finetune and keys().training_set == before.training_set
