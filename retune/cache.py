"""Stage cache keys (exactly what determines a stage's output) and the workdir records that let a rerun reuse a
stage's output instead of running it again."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from retune.config import Config

_ROOT = Path(__file__).resolve().parent.parent  # the checkout (or site-packages) holding retune/

# The code each stage's output depends on: a change to one of these files is a different output.
STAGE_CODE = {
    "build-training-set": ("retune/training/dataset.py", "retune/datasets.py", "retune/contracts.py",
                           "retune/prompts.py"),
    "finetune": ("retune/training/worker.py", "retune/training/dataset.py", "retune/training/launch.py"),
    "export": ("retune/export.py", "retune/prompts.py"),
    "evaluate": ("retune/evaluation.py", "retune/prompts.py"),
    "register": ("retune/evaluation.py", "retune/registry.py", "retune/model_card.py"),
    "promote": ("retune/registry.py",),
    "drift": ("retune/drift.py", "retune/embeddings.py", "retune/datasets.py"),
}
# Config sections (dotted) each stage reads. `training.launcher`-like knobs that do not change the result are
# left out by the fine-tune (retune.training.launch.NOT_IN_HASH).
STAGE_SECTIONS = {
    "build-training-set": ("split",),
    "finetune": ("model", "training"),
    "export": ("export",),
    "evaluate": ("evaluation",),
    "register": ("evaluation", "promote"),
    "promote": ("promote",),
    "drift": ("drift",),
}


def digest(*parts: object) -> str:
    """A short stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str | Path | None) -> str:
    """sha256 of a file's bytes ("" when there is no such file)."""
    if path is None or not Path(path).is_file():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_digest(stage: str) -> str:
    """The stage's source files, by content (precise, unlike a git commit that any unrelated change moves)."""
    return digest(*(file_digest(_ROOT / rel) for rel in STAGE_CODE[stage]))


def sections_digest(cfg: Config, stage: str) -> str:
    data = {}
    for name in STAGE_SECTIONS[stage]:
        section = getattr(cfg, name, None)
        data[name] = section.model_dump(mode="json") if section is not None else None
    if stage == "finetune":
        from retune.training.launch import NOT_IN_HASH

        data["training"] = {k: v for k, v in data["training"].items() if k not in NOT_IN_HASH}
    return digest(data)


def base_model_revision(base_model: str) -> str:
    """What identifies the base model's weights: for a local directory its files (name, size, modification
    time: a rewrite is a new revision); for a hub id the snapshot revision in the local cache."""
    path = Path(base_model)
    if path.is_dir():
        entries = sorted(
            (p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.rglob("*") if p.is_file()
        )
        return digest(entries)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base_model, local_files_only=True)).name  # the commit sha of the snapshot
    except Exception:  # noqa: BLE001 - not cached locally: the name is all we know; training will say more
        return base_model


@dataclass(frozen=True)
class RetrainKeys:
    training_set: str
    finetune: str
    export: str
    evaluate: str
    register: str
    promote: str


def training_set_key(cfg: Config, dataset_commit: str) -> str:
    return digest(
        "build-training-set", dataset_commit, sections_digest(cfg, "build-training-set"),
        file_digest(Path(cfg.contracts.dir) / "training_examples.json"),
        file_digest(getattr(cfg.model, "system_prompt", None)), code_digest("build-training-set"),
    )


def retrain_keys(cfg: Config, training_set: str, base_model: str) -> RetrainKeys:
    """Each key chains the key of the stage it reads from: a change reruns that stage and what is downstream."""
    finetune = digest(
        "finetune", training_set, base_model, base_model_revision(base_model), sections_digest(cfg, "finetune"),
        file_digest(cfg.training.deepspeed_config), code_digest("finetune"),
    )
    export = digest("export", finetune, sections_digest(cfg, "export"), code_digest("export"))
    # Not the production model of the day: a candidate judged once is not judged (and registered) again
    # because production moved since, e.g. to this very candidate.
    evaluate = digest("evaluate", export, sections_digest(cfg, "evaluate"), code_digest("evaluate"))
    register = digest("register", evaluate, sections_digest(cfg, "register"), code_digest("register"))
    promote = digest("promote", register, sections_digest(cfg, "promote"), code_digest("promote"))
    return RetrainKeys(training_set, finetune, export, evaluate, register, promote)


def drift_key(cfg: Config, reference_commit: str, current_commit: str) -> str:
    return digest("drift", reference_commit, current_commit, sections_digest(cfg, "drift"), code_digest("drift"))


class StageCache:
    """One record per (stage, key) under the workdir: the stage's returned value, pickled."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pkl"

    def get(self, stage: str, key: str) -> object | None:
        """The recorded output, or None: no record, an unreadable one, or one whose files are gone."""
        path = self._path(stage, key)
        if not path.is_file():
            return None
        try:
            value = pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a record written by other code or cut by a crash is a miss, not an error
            return None
        return value if outputs_exist(value) else None

    def put(self, stage: str, key: str, value: object) -> None:
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as f:
            pickle.dump(value, f)
        os.replace(tmp, path)  # atomic: a reader sees the old record or the new one

    def forget(self, stage: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(stage, key).unlink()


def outputs_exist(value: object, _depth: int = 0) -> bool:
    """Every local path a recorded output names still exists (a deleted run directory makes the record stale)."""
    if _depth > 6:
        return True
    if isinstance(value, Path):
        return value.exists()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(outputs_exist(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return all(outputs_exist(v, _depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return all(outputs_exist(v, _depth + 1) for v in value)
    return True
