"""Flow: dataset commit → training set → fine-tune → export → evaluate → register → (approval) → promote or reject."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from retune.config import load_config
from retune.evaluation import EvalMetrics
from retune.export import ExportResult
from retune.policy import RetrainDecision
from retune.runs import new_run_id
from retune.store import open_store
from retune.training.launch import TrainResult
from tasks.approve import request_approval
from tasks.evaluate import evaluate
from tasks.export import export
from tasks.finetune import finetune
from tasks.promote import Promotion, promote, register_candidate
from tasks.retrain_gate import check_new_data
from tasks.training_set import build_training_set, prepare_base_model


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

    worth_it = check_new_data(cfg, commit, force)
    if not worth_it.run:
        return worth_it

    examples = build_training_set(cfg, commit, run_dir)
    base_model = prepare_base_model(cfg, examples)
    trained = finetune(cfg, base_model, examples, run_dir)
    exported = export(cfg, base_model, trained, examples, run_dir)
    scores = evaluate(cfg, exported.merged_dir, base_model, examples, run_dir)
    candidate = register_candidate(cfg, scores, exported, trained, commit, base_model, run_dir)
    approval = request_approval(cfg, candidate)
    promotion = promote(cfg, candidate, approval)
    return Retrained(commit, trained, exported, scores, promotion)
