"""The model registry on a real local store: register, promote, rollback, download, lineage."""

import json
from pathlib import Path

import pytest

from retune.errors import StoreError
from retune.registry import REGISTRY_PATH, Registry
from retune.store import MAIN, LocalStore


def model_dir(root: Path, weights: bytes) -> Path:
    (root / "onnx").mkdir(parents=True)
    (root / "adapter_model.safetensors").write_bytes(weights)
    (root / "onnx" / "model.onnx").write_bytes(weights[::-1] + b"onnx")
    (root / "metrics.json").write_text(json.dumps({"perplexity": 12.5}))
    return root


def lineage(n: int) -> dict[str, str]:
    return {"dataset_commit": f"{n}" * 64, "base_model": "models/base", "config_hash": "abc", "code_version": "0.1"}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_register_two_versions_promote_and_rollback(store: LocalStore, tmp_path: Path) -> None:
    registry = Registry(store)
    assert registry.versions() == [] and registry.production() is None

    v1 = registry.register(model_dir(tmp_path / "m1", b"weights-1"), {"perplexity": 12.5}, lineage(1))
    v2 = registry.register(model_dir(tmp_path / "m2", b"weights-2"), {"perplexity": 11}, lineage(2), message="r2")
    assert [v.version for v in registry.versions()] == ["v1", "v2"]
    assert v1.files == ["models/v1/adapter_model.safetensors", "models/v1/metrics.json", "models/v1/onnx/model.onnx"]
    assert v2.metrics == {"perplexity": 11.0}
    assert v2.lineage == lineage(2) and registry.get("v1").lineage == lineage(1)

    commit = store.get_commit(v2.commit)  # the registering commit says what it did and where the data came from
    assert commit.message == "r2"
    assert commit.metadata["registry.version"] == "v2"
    assert commit.metadata["lineage.dataset_commit"] == lineage(2)["dataset_commit"]
    assert store.list_objects(MAIN) == []  # models live on their own branch
    assert "models" in store.branches() and len(store.branches()) == 2  # scratch branches are gone

    registry.promote("v1", "first model", by="alice")
    registry.promote("v1", "retried step")  # already production: nothing happens
    registry.promote("v2", "better perplexity", by="bob")
    assert registry.production().version == "v2"
    assert registry.rollback(reason="bad answers", by="carol").version == "v1"
    assert registry.production().version == "v1"
    with pytest.raises(StoreError, match="no previous production"):
        registry.rollback()

    history = registry.history()
    assert [(h["action"], h["version"], h["previous"], h["by"]) for h in history] == [
        ("promote", "v1", None, "alice"),
        ("promote", "v2", "v1", "bob"),
        ("rollback", "v1", "v2", "carol"),
    ]
    assert history[1]["reason"] == "better perplexity" and history[1]["at"].endswith("+00:00")
    stored = json.loads(store.get_bytes("models", REGISTRY_PATH))
    assert stored["production"] == "v1" and len(stored["history"]) == 3

    # A fresh Registry over the same directory sees the same state.
    again = Registry(LocalStore(tmp_path / "store"))
    assert again.production().version == "v1" and again.get("v2").commit == v2.commit


def test_download_round_trip_reads_the_registered_commit(store: LocalStore, tmp_path: Path) -> None:
    registry = Registry(store)
    source = model_dir(tmp_path / "m1", b"weights-1")
    registry.register(source, {"perplexity": 1.0}, lineage(1))
    registry.register(model_dir(tmp_path / "m2", b"weights-2"), {"perplexity": 2.0}, lineage(2))
    out = registry.download("v1", tmp_path / "out")
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["adapter_model.safetensors", "metrics.json", "onnx/model.onnx"]
    for rel in got:
        assert (out / rel).read_bytes() == (source / rel).read_bytes()


def test_refusals(store: LocalStore, tmp_path: Path) -> None:
    registry = Registry(store)
    with pytest.raises(StoreError, match="no model files"):
        registry.register(tmp_path / "missing", {}, {})
    registry.register(model_dir(tmp_path / "m1", b"w"), {}, lineage(1))
    with pytest.raises(StoreError, match="unknown model version 'v9'.*v1"):
        registry.get("v9")
    with pytest.raises(StoreError, match="unknown model version"):
        registry.promote("v9", "nope")
    with pytest.raises(StoreError, match="no previous production"):
        registry.rollback()
    assert registry.production() is None and len(store.branches()) == 2


def _register_many(root: str, worker: int, count: int) -> None:
    registry = Registry(LocalStore(Path(root) / "store"))
    for i in range(count):
        registry.register(model_dir(Path(root) / f"w{worker}-{i}", f"w{worker}-{i}".encode()), {}, lineage(worker))


def test_two_processes_registering_at_once_get_distinct_versions(tmp_path: Path) -> None:
    import multiprocessing

    LocalStore(tmp_path / "store")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), w, 3)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    registry = Registry(LocalStore(tmp_path / "store"))
    versions = registry.versions()
    assert [v.version for v in versions] == [f"v{i}" for i in range(1, 7)]
    weights = {registry.store.get_bytes(v.commit, f"models/{v.version}/adapter_model.safetensors") for v in versions}
    assert weights == {f"w{w}-{i}".encode() for w in (0, 1) for i in range(3)}


def test_the_gate_decision_and_an_approval_are_part_of_the_entry(store: LocalStore, tmp_path: Path) -> None:
    registry = Registry(store)
    decision = {"promote": True, "reason": "promoted: ...", "checks": [],
                "metrics": [{"metric": "chrf", "candidate": 41.0, "production": 40.0, "vs_production": True}]}
    v1 = registry.register(model_dir(tmp_path / "m1", b"w1"), {}, lineage(1), decision=decision)
    rejected = registry.register(model_dir(tmp_path / "m2", b"w2"), {}, lineage(2),
                                 decision={"promote": False, "reason": "rejected: chrF"})
    assert registry.get("v1").decision == decision and v1.approval is None
    assert registry.statuses()["v2"] == "rejected" and rejected.decision["promote"] is False
    assert registry.statuses()["v1"] == "candidate"

    registry.record_approval("v1", approved=True, by="dana", comment="reviewed the replies", at="2026-11-23T10:00:00")
    assert registry.get("v1").approval == {"approved": True, "by": "dana", "at": "2026-11-23T10:00:00",
                                           "comment": "reviewed the replies"}
    assert registry.history()[-1] == {"action": "approve", "version": "v1", "previous": None,
                                      "reason": "reviewed the replies", "by": "dana", "at": "2026-11-23T10:00:00"}
    registry.promote("v1", "approved by dana", by="dana")
    assert registry.statuses()["v1"] == "production"
    with pytest.raises(StoreError, match="unknown model version 'v7'"):
        registry.record_approval("v7", approved=False, by="x", comment="")


def test_cli_promote_and_rollback_record_who_when_why_and_models_lists_status(store: LocalStore,
                                                                             tmp_path: Path) -> None:
    import getpass

    import yaml
    from typer.testing import CliRunner

    from retune.cli import app

    registry = Registry(store)
    metrics = {"perplexity": 9.5, "token_accuracy": 0.41, "chrf": 33.3, "rouge_l": 21.0, "pii_hits": 0,
               "onnx_size_bytes": 3 * 2**20, "latency_p32_ms": 41.0, "latency_p128_ms": 57.0}
    for n in (1, 2):
        registry.register(model_dir(tmp_path / f"m{n}", b"w%d" % n), metrics,
                          {**lineage(n), "onnx_variant": "int8_weight_only_all", "system_prompt_sha256": "ab" * 32})
    config = tmp_path / "retune.yaml"
    config.write_text(yaml.safe_dump({"workdir": str(tmp_path), "store": {"path": "store"}}))
    cli = CliRunner()

    def run(*args: str):
        result = cli.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    assert "--reason" in cli.invoke(app, ["rollback", "--config", str(config)]).output  # a reason is required
    run("promote", "v1", "--reason", "first model")
    registry.register(model_dir(tmp_path / "m3", b"w3"), metrics, lineage(3),
                      decision={"promote": False, "reason": "rejected: chrF 30.00 is -3.30 vs production"})
    overruled = cli.invoke(app, ["promote", "v3", "--reason", "hotfix", "--config", str(config)])
    assert overruled.exit_code == 0 and "v3 failed the promotion gate (rejected: chrF" in overruled.output
    run("rollback", "--reason", "hotfix done")
    shown = run("promote", "v2", "--reason", "better chrF")
    assert "production is now v2 (was v1; by " in shown and "better chrF" in shown
    assert "production is now v1 (was v2;" in run("rollback", "--reason", "v2 answers worse")
    me = getpass.getuser()
    assert [(h["action"], h["version"], h["by"], h["reason"]) for h in registry.history()] == [
        ("promote", "v1", me, "first model"), ("promote", "v3", me, "hotfix"), ("rollback", "v1", me, "hotfix done"),
        ("promote", "v2", me, "better chrF"),
        ("rollback", "v1", me, "v2 answers worse"),
    ]
    table = run("models")
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│ v" in line}
    assert "production" in rows["v1"] and "retired" in rows["v2"]
    for shown_value in ("9.500", "0.4100", "33.3", "21.0", "int8_weight_only_all", "3.0 MB", "41/57 ms",
                        lineage(1)["dataset_commit"][:12], "abababababab"):
        assert shown_value in rows["v1"], (shown_value, rows["v1"])
