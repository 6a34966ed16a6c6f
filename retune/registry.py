"""The model registry: versions, lineage and the production pointer, kept on the store's `models` branch."""

from __future__ import annotations

import getpass
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retune.errors import StoreError
from retune.store.base import MAIN, MergeConflict, Store

BRANCH = "models"
REGISTRY_PATH = "models/registry.json"
_ATTEMPTS = 5  # optimistic retries when another process changed the registry at the same moment


@dataclass
class ModelVersion:
    version: str  # "v1", "v2", ...
    created_at: str
    metrics: dict[str, float]
    lineage: dict[str, str]  # dataset_commit, base_model, config_hash, code_version
    files: list[str]  # store paths under models/<version>/
    commit: str  # the store commit that registered it
    # The promotion gate's decision (retune.evaluation.Decision.as_dict: checks and the metric-by-metric table).
    decision: dict[str, Any] = field(default_factory=dict)
    # A human approver's answer when approval is required: approved, by, at, comment (None: not asked).
    approval: dict[str, Any] | None = None


class Registry:
    """Model versions in a Store; each change is one commit on `models` with metadata saying what it did."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- reading ----------------------------------------------------------------------------------------

    def versions(self) -> list[ModelVersion]:
        state = self._state(BRANCH) if BRANCH in self.store.branches() else _empty()
        return [_version(name, state["versions"][name]) for name in sorted(state["versions"], key=_number)]

    def get(self, version: str) -> ModelVersion:
        state = self._state(BRANCH) if BRANCH in self.store.branches() else _empty()
        if version not in state["versions"]:
            known = ", ".join(sorted(state["versions"], key=_number)) or "none"
            raise StoreError(f"unknown model version '{version}' (registered: {known})")
        return _version(version, state["versions"][version])

    def production(self) -> ModelVersion | None:
        state = self._state(BRANCH) if BRANCH in self.store.branches() else _empty()
        current = state["production"]
        return _version(current, state["versions"][current]) if current else None

    def history(self) -> list[dict[str, str]]:
        """Every promotion and rollback: action, version, previous, reason, by, at."""
        state = self._state(BRANCH) if BRANCH in self.store.branches() else _empty()
        return list(state["history"])

    # ---- changing -------------------------------------------------------------------------------------

    def register(
        self,
        model_dir: Path,
        metrics: dict[str, Any],
        lineage: dict[str, Any],
        *,
        message: str = "",
        decision: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Upload every file under model_dir as the next version and record its metrics, lineage and the
        promotion gate's decision."""
        model_dir = Path(model_dir)
        files = sorted(p for p in model_dir.rglob("*") if p.is_file()) if model_dir.is_dir() else []
        if not files:
            raise StoreError(f"no model files to register in {model_dir}")
        metrics = {str(k): float(v) for k, v in metrics.items()}
        lineage = {str(k): str(v) for k, v in lineage.items()}

        def change(state: dict[str, Any], branch: str) -> tuple[str, dict[str, str]]:
            version = f"v{1 + max(map(_number, state['versions']), default=0)}"
            paths = []
            for local in files:
                path = f"models/{version}/{local.relative_to(model_dir).as_posix()}"
                self.store.put_file(branch, path, local)
                paths.append(path)
            state["versions"][version] = {
                "created_at": _now(),
                "metrics": metrics,
                "lineage": lineage,
                "files": paths,
                "commit": None,  # filled in from the commit log: a commit cannot name its own id
                "decision": decision or {},
            }
            text = message or f"Register model {version}"
            return text, {"registry.action": "register", "registry.version": version, **_prefixed(lineage)}

        commit = self._change(change)
        version = commit.metadata["registry.version"]
        return self.get(version)

    def record_approval(self, version: str, *, approved: bool, by: str, comment: str, at: str | None = None) -> None:
        """Record a human approver's answer (or a timeout's rejection) on a version's entry and in the history."""

        def change(state: dict[str, Any], branch: str) -> tuple[str, dict[str, str]]:
            if version not in state["versions"]:
                raise StoreError(f"unknown model version '{version}'")
            answer = {"approved": approved, "by": by, "at": at or _now(), "comment": comment}
            state["versions"][version]["approval"] = answer
            state["history"].append({"action": "approve" if approved else "reject", "version": version,
                                     "previous": state["production"], "reason": comment, "by": by, "at": answer["at"]})
            verb = "Approved" if approved else "Rejected"
            return f"{verb} {version} by {by}: {comment}", {"registry.action": "approval", "registry.version": version}

        self._change(change)

    def statuses(self) -> dict[str, str]:
        """Each version's status: production, retired (was production), rejected (by the gate or an approver),
        or candidate; read in one go."""
        state = self._state(BRANCH) if BRANCH in self.store.branches() else _empty()
        served = {h["version"] for h in state["history"] if h["action"] in ("promote", "rollback")}
        found = {}
        for name, entry in state["versions"].items():
            approval = entry.get("approval")
            if state["production"] == name:
                found[name] = "production"
            elif name in served:
                found[name] = "retired"
            elif not (entry.get("decision") or {}).get("promote", True) or (approval and not approval["approved"]):
                found[name] = "rejected"
            else:
                found[name] = "candidate"
        return found

    def promote(self, version: str, reason: str, *, by: str | None = None) -> None:
        """Make version the production one, recording who, when and why; a no-op if it already is."""
        current = self.production()
        if current is not None and current.version == version:
            return  # a retried promote step must not fail

        def change(state: dict[str, Any], branch: str) -> tuple[str, dict[str, str]]:
            if version not in state["versions"]:
                raise StoreError(f"unknown model version '{version}'")
            previous = state["production"]
            if previous == version:  # promoted by another process since the check above
                raise StoreError(f"model {version} is already in production")
            _record(state, "promote", version, previous, reason, by)
            return f"Promote {version}: {reason}", {"registry.action": "promote", "registry.version": version}

        self._change(change)

    def rollback(self, *, reason: str = "rollback", by: str | None = None) -> ModelVersion:
        """Put back the version that was in production before the current one was promoted."""

        def change(state: dict[str, Any], branch: str) -> tuple[str, dict[str, str]]:
            current = state["production"]
            promotions = [h for h in state["history"] if h["action"] == "promote" and h["version"] == current]
            previous = promotions[-1]["previous"] if promotions else None
            if not current or not previous:
                raise StoreError("no previous production model to roll back to")
            _record(state, "rollback", previous, current, reason, by)
            text = f"Roll back production from {current} to {previous}"
            return text, {"registry.action": "rollback", "registry.version": previous}

        commit = self._change(change)
        return self.get(commit.metadata["registry.version"])

    def download(self, version: str, dest: Path) -> Path:
        """Materialize a version's files under dest (read at the commit that registered it); return dest."""
        model = self.get(version)
        prefix = f"models/{version}/"
        for path in model.files:
            self.store.get_file(model.commit, path, Path(dest) / path.removeprefix(prefix))
        return Path(dest)

    # ---- internals ------------------------------------------------------------------------------------

    def _state(self, ref: str) -> dict[str, Any]:
        if REGISTRY_PATH not in self.store.list_objects(ref, REGISTRY_PATH):
            return _empty()
        state = json.loads(self.store.get_bytes(ref, REGISTRY_PATH))
        registered = {
            c.metadata["registry.version"]: c.id
            for c in self.store.log(ref, limit=100_000)
            if c.metadata.get("registry.action") == "register"
        }
        for name, entry in state["versions"].items():
            entry["commit"] = registered.get(name, "")
        return state

    def _change(self, change: Any) -> Any:
        """Apply one change on a scratch branch, commit it, and merge it into `models`.

        Two writers at once both rewrite registry.json, so the second merge conflicts instead of
        overwriting the first: then the change is redone on top of the new state.
        """
        if BRANCH not in self.store.branches():
            try:
                self.store.create_branch(BRANCH, MAIN)
            except StoreError:
                if BRANCH not in self.store.branches():  # else another process just created it
                    raise
        for attempt in range(_ATTEMPTS):
            scratch = f"{BRANCH}-{uuid.uuid4().hex[:12]}"
            self.store.create_branch(scratch, BRANCH)
            try:
                state = self._state(scratch)
                message, metadata = change(state, scratch)
                for entry in state["versions"].values():
                    entry.pop("commit", None)
                data = json.dumps(state, indent=2, sort_keys=True).encode()
                self.store.put_bytes(scratch, REGISTRY_PATH, data)
                commit = self.store.commit(scratch, message, metadata)
                self.store.merge(scratch, BRANCH)  # fast-forward unless someone else got there first
                return commit
            except MergeConflict:
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # let the other writer finish
                continue
            finally:
                self.store.delete_branch(scratch)
        raise StoreError(f"the model registry kept changing under us; gave up after {_ATTEMPTS} attempts")


def _empty() -> dict[str, Any]:
    return {"versions": {}, "production": None, "history": []}


def _number(version: str) -> int:
    return int(version.removeprefix("v"))


def _version(name: str, entry: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        version=name,
        created_at=entry["created_at"],
        metrics=dict(entry["metrics"]),
        lineage=dict(entry["lineage"]),
        files=list(entry["files"]),
        commit=entry.get("commit") or "",
        decision=dict(entry.get("decision") or {}),
        approval=entry.get("approval"),
    )


def _record(
    state: dict[str, Any], action: str, version: str, previous: str | None, reason: str, by: str | None
) -> None:
    state["production"] = version
    state["history"].append(
        {
            "action": action,
            "version": version,
            "previous": previous,
            "reason": reason,
            "by": by or _user(),
            "at": _now(),
        }
    )


def _prefixed(lineage: dict[str, str]) -> dict[str, str]:
    return {f"lineage.{k}": v for k, v in lineage.items()}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no name
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
