"""Task: launch the DeepSpeed LoRA fine-tune as a subprocess and stream its metrics into logs and a progress bar."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from retune import cost
from retune.config import Config
from retune.report import markdown_table
from retune.training.launch import TrainResult, complete_checkpoints
from retune.training.launch import finetune as launch_finetune


@task(name="finetune", cache_policy=NO_CACHE)
def finetune(cfg: Config, base_model: str, examples: Path, run_dir: Path) -> TrainResult:
    logger = get_run_logger()
    # Keyed by the training set's content, not the run: a killed run resumes on the next flow run.
    train_dir = cfg.path("training") / hashlib.sha256(examples.read_bytes()).hexdigest()[:16]
    progress_id = create_progress_artifact(0.0, key="finetune-progress", description="fine-tune steps done")
    max_steps = cfg.training.max_steps
    log_every = max(1, max_steps // 10)
    bar = Progress(
        TextColumn("fine-tune"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(), disable=not sys.stderr.isatty(),
    )
    bar_task = bar.add_task("fine-tune", total=max_steps, loss="-")
    budget = BudgetWatch(cfg, train_dir)

    def on_event(event: dict) -> None:
        kind = event.get("event")
        budget.check(event)  # raises BudgetExceeded: the launcher tree is stopped, checkpoints stay
        if kind == "start":
            logger.info("fine-tune started: %s", {k: v for k, v in event.items() if k not in ("event", "data", "pids")})
            if event.get("resumed_from_step"):
                logger.info("resuming from the checkpoint at step %d", event["resumed_from_step"])
            elif event.get("fresh_start_reason"):
                logger.warning("starting fresh: %s", event["fresh_start_reason"])
            if "data" in event:
                logger.info("training examples (%s): %s", event["data"].get("truncation"), event["data"].get("train"))
            for note in event.get("tokenizer_notes", []):
                logger.info(note)
        elif kind == "step":
            step = event["step"]
            bar.update(bar_task, completed=step, loss=f"{event['loss']:.3f}")
            if step % log_every == 0 or step == max_steps:
                logger.info(
                    "step %d/%d loss %.4f lr %.2e %.0f tokens/s eta %.0fs",
                    step, max_steps, event["loss"], event.get("lr", 0.0),
                    event.get("tokens_per_s", 0.0), event.get("eta_s", 0.0),
                )
                update_progress_artifact(progress_id, 100.0 * step / max_steps)
        elif kind == "checkpoint":
            logger.info("checkpoint at step %d", event["step"])

    with bar:
        result = launch_finetune(
            base_model, examples, train_dir, cfg.training,
            deepspeed_config=Path(cfg.training.deepspeed_config), on_event=on_event,
            # DeepSpeed compiles its CPU ops once per machine; keep them outside the workdir so they outlive it.
            cache_dir=Path.home() / ".cache" / "retune",
        )
    update_progress_artifact(progress_id, 100.0)
    steps = [m for m in result.metrics if m.get("event") == "step"]
    stride = max(1, len(steps) // 20)
    create_markdown_artifact(
        "## Fine-tune (DeepSpeed + LoRA)\n\n"
        + markdown_table(
            ["", ""],
            [
                ("steps", result.steps),
                ("loss first → last", loss_summary(result)),
                ("method", result.method),
                ("fresh start", result.fresh_start_reason or "-"),
                ("held-out loss", f"{result.eval_loss:.4f}" if result.eval_loss is not None else "-"),
                ("tokens/s", f"{result.tokens_per_s:.0f}"),
                ("wall time", f"{result.wall_s:.1f} s"),
                ("processes", cfg.training.nproc_per_node),
                ("DeepSpeed config", cfg.training.deepspeed_config),
                ("resumed from step", result.resumed_from_step if result.resumed_from_step else "-"),
            ],
        )
        + "\n\n### Loss curve\n\n"
        + markdown_table(["step", "loss", "lr"], [(m["step"], m["loss"], m.get("lr", 0.0)) for m in steps[::stride]]),
        key="finetune",
        description=f"loss {loss_summary(result)}",
    )
    return result


def loss_summary(result: TrainResult) -> str:
    if result.loss_first is None:
        return "nothing left to train (this training set was already trained with this config)"
    return f"{result.loss_first:.3f} → {result.loss_last:.3f}"



class BudgetWatch:
    """Projects the run's cost from the fine-tune's first steps and stops it when `cost.budget` would be broken."""

    CHECK_AFTER_STEPS = 2  # the first step includes start-up; from the second on, the pace is the training's own

    def __init__(self, cfg: Config, train_dir: Path) -> None:
        self.cfg, self.train_dir = cfg, train_dir
        b = cfg.cost.budget
        self.enabled = any(v is not None for v in (b.max_cpu_hours, b.max_gpu_hours, b.max_currency))
        self.pid: int | None = None
        self.launched = time.perf_counter()
        self.first_step: int | None = None
        self.config_hash = ""

    def check(self, event: dict) -> None:
        if not self.enabled:
            return
        kind = event.get("event")
        if kind == "launch":
            self.pid, self.launched, self.config_hash = event["pid"], time.perf_counter(), event["config_hash"]
            return
        if kind != "step" or self.pid is None:
            return
        self.first_step = self.first_step or event["step"]
        if event["step"] - self.first_step + 1 < self.CHECK_AFTER_STEPS:
            return
        run = cost.current_run()
        spent = run.totals() if run is not None else cost.StageCost("", "")
        gpus, gpu_type = cost.visible_gpus()
        projection = cost.project_finetune(
            self.cfg.cost, spent, event["step"], event.get("max_steps", self.cfg.training.max_steps),
            event.get("tokens_per_s", 0.0), event.get("eta_s", 0.0), time.perf_counter() - self.launched,
            cost.tree_cpu_seconds(self.pid), min(gpus, self.cfg.training.nproc_per_node), gpu_type,
        )
        broken = cost.over_budget(self.cfg.cost.budget, projection)
        if broken is None:
            return
        kept = complete_checkpoints(self.train_dir / "checkpoints" / self.config_hash)
        raise cost.BudgetExceeded(
            f"fine-tune stopped by the budget: {projection.line(self.cfg.cost.currency)}, above {broken}; "
            + (f"checkpoints kept up to step {kept[-1]} in {self.train_dir} (a rerun resumes there)" if kept
               else f"no complete checkpoint yet in {self.train_dir}")
        )
