"""Flow: dataset commit → training set → fine-tune → export → evaluate → register → promote or reject; a stage whose
inputs did not change since it last ran is reused (and the run says so)."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from flows.heartbeats import leave_heartbeat_threads_unjoined
from retune.cache import retrain_keys, training_set_key
from retune.config import Config, load_config
from retune.evaluation import EvalMetrics
from retune.export import ExportResult
from retune.policy import RetrainDecision, should_retrain
from retune.runs import new_run_id
from retune.store import open_store
from retune.training.launch import TrainResult
from tasks.approve import request_approval
from tasks.evaluate import evaluate
from tasks.export import export
from tasks.finetune import finetune
from tasks.promote import Promotion, promote, promote_key, register_candidate
from tasks.retrain_gate import check_new_data
from tasks.stages import refresh_production, stages
from tasks.training_set import build_training_set, prepare_base_model

leave_heartbeat_threads_unjoined()  # no second of waiting at the end of each flow run

RETRAIN_STAGES = ["build-training-set", "prepare-base-model", "finetune", "export", "evaluate", "register", "promote"]


@dataclass
class Retrained:
    dataset_commit: str
    trained: TrainResult
    exported: ExportResult
    scores: dict[str, EvalMetrics]
    promotion: Promotion


@flow(name="retrain")
def retrain_flow(
    config: str = "retune.yaml", dataset_commit: str | None = None, force: bool = False
) -> Retrained | RetrainDecision:
    """Fine-tune a candidate on a dataset commit (default: main's head) and promote it only if it is better.

    Without `force`, it stops early unless enough new conversations arrived since the production model.
    """
    cfg = load_config(config)
    commit = dataset_commit or open_store(cfg).resolve("main")
    run_dir = cfg.path("runs") / new_run_id()

    with stages(cfg, "retrain") as stage:
        stage.dataset(commit)
        worth_it = stage.run("check-new-data", check_new_data, cfg, commit, force)
        if not worth_it.run:
            stage.skip(RETRAIN_STAGES, worth_it.reason)
            return worth_it

        examples = stage.run("build-training-set", build_training_set, cfg, commit, run_dir,
                             key=training_set_key(cfg, commit))
        base_model = stage.run("prepare-base-model", prepare_base_model, cfg, examples)
        keys = retrain_keys(cfg, training_set_key(cfg, commit), base_model)
        trained = stage.run("finetune", finetune, cfg, base_model, examples, run_dir, key=keys.finetune)
        exported = stage.run("export", export, cfg, base_model, trained, examples, run_dir, key=keys.export)
        scores = stage.run("evaluate", evaluate, cfg, exported.merged_dir, base_model, examples, run_dir,
                           key=keys.evaluate)
        candidate = stage.run("register", register_candidate, cfg, scores, exported, trained, commit, base_model,
                              run_dir, key=keys.register)
        approval = request_approval(cfg, candidate)
        promotion = stage.run("promote", promote, cfg, candidate, approval, key=promote_key(keys.promote, approval),
                              on_hit=refresh_production(cfg))
        return Retrained(commit, trained, exported, scores, promotion)


def retrain_needed(cfg: Config, dataset_commit: str | None, force: bool) -> bool:
    """What the flow's check-new-data stage will decide: whether a fine-tune is due on this commit."""
    store = open_store(cfg)
    return should_retrain(store, dataset_commit or store.resolve("main"), cfg.retrain.min_new_conversations,
                          force=force).run
