"""Step: when `promote.require_approval` is on, pause the flow until an approver answers in the Prefect UI
(approve or reject, with a comment); no answer within `promote.approval_timeout_s` rejects. Recorded in the
registry and an artifact."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

from retune.config import Config
from retune.registry import Registry
from retune.report import markdown_table
from retune.store import open_store
from tasks.promote import Approval, Candidate

TIMED_OUT = "timeout"  # the approver recorded when nobody answered in time


class ApprovalInput(RunInput):
    """The form the Prefect UI shows on the paused run."""

    approve: bool = Field(description="Put this model version in production?")
    approver: str = Field(description="Your name: recorded in the model registry")
    comment: str = Field("", description="Why: recorded in the model registry")


def request_approval(cfg: Config, candidate: Candidate) -> Approval | None:
    """Pause the flow run for an approver's answer; None when approval is not required or the gate already said no.

    Called from the flow itself (not a task): a pause belongs to the flow run."""
    if not cfg.promote.require_approval or not candidate.passed_gate:
        return None
    logger = get_run_logger()
    registry = Registry(open_store(cfg))
    recorded = registry.get(candidate.version).approval
    if recorded is not None and recorded["by"] != TIMED_OUT:
        # A rerun reusing this registered candidate: a person already answered; a timeout is asked again.
        logger.info("%s was already %s by %s at %s", candidate.version,
                    "approved" if recorded["approved"] else "rejected", recorded["by"], recorded["at"])
        return Approval(recorded["approved"], recorded["by"], recorded["at"], recorded["comment"])
    timeout = cfg.promote.approval_timeout_s
    form = ApprovalInput.with_initial_data(
        description=f"## Approve {candidate.version} for production?\n\n{candidate.reason}\n\n"
        + markdown_table(["check", "result", "detail"],
                         [(c.name, "pass" if c.passed else "FAIL", c.detail) for c in candidate.decision.checks]),
        approve=False,
        comment="",
    )
    logger.info("waiting up to %d s for an approver to answer on this flow run in the Prefect UI", timeout)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=max(1, min(10, timeout // 10)))
        approval = Approval(answer.approve, answer.approver.strip() or "unknown", _now(), answer.comment.strip())
    except FlowPauseTimeout:
        approval = Approval(False, TIMED_OUT, _now(), f"no answer within {timeout} s")
        # The server fails a run left paused past its timeout; a timeout is a rejection, so the run goes on.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(FlowRunContext.get().flow_run.id, Running(), force=True)

    registry.record_approval(
        candidate.version, approved=approval.approved, by=approval.by, comment=approval.comment, at=approval.at
    )
    verdict = "approved" if approval.approved else "rejected"
    create_markdown_artifact(
        f"## {candidate.version} {verdict} by {approval.by}\n\n"
        + markdown_table(["", ""], [("answer", verdict), ("by", approval.by), ("at", approval.at),
                                    ("comment", approval.comment or "-"), ("timeout", f"{timeout} s")]),
        key="approval",
        description=f"{candidate.version} {verdict} by {approval.by}",
    )
    logger.info("%s %s by %s: %s", candidate.version, verdict, approval.by, approval.comment or "-")
    return approval


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
