"""The reviewed system prompt: read from its file, put in every training conversation, hashed into the config hash
and the model's lineage (a changed prompt is a new model version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from retune.cli import app
from retune.config import Config, load_config
from retune.errors import ConfigError
from retune.lineage import config_hash, version_lineage
from retune.prompts import load_system_prompt, with_system_prompt
from retune.registry import Registry
from retune.store import open_store
from retune.training.dataset import build_training_set

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, prompt: Path | None) -> Config:
    return Config.model_validate(
        {"workdir": str(tmp_path / "work"), "model": {"system_prompt": str(prompt) if prompt else None}}
    )


def test_the_repository_prompt_is_the_default_and_loads():
    assert Config().model.system_prompt == "prompts/system.md"
    prompt = load_system_prompt(str(REPO / "prompts/system.md"))
    assert prompt is not None and prompt.text and len(prompt.sha256) == 64


def test_a_missing_or_empty_prompt_file_is_one_readable_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="model.system_prompt: no such file"):
        load_system_prompt(str(tmp_path / "nope.md"))
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        load_system_prompt(str(tmp_path / "empty.md"))
    assert load_system_prompt(None) is None


def test_the_reviewed_prompt_replaces_the_conversations_own_system_turns(tiny_turns):
    messages = [{"role": "system", "content": "old prompt"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}]
    assert with_system_prompt(messages, "Be brief.") == [{"role": "system", "content": "Be brief."}, *messages[1:]]
    assert with_system_prompt(messages, None) == messages

    examples = build_training_set(tiny_turns, 0.2, "Be brief.")
    conversations = [json.loads(m) for m in examples.column("messages").to_pylist()]
    assert conversations and all(c[0] == {"role": "system", "content": "Be brief."} for c in conversations)
    assert all(sum(m["role"] == "system" for m in c) == 1 for c in conversations)
    plain = build_training_set(tiny_turns, 0.2)
    assert plain.column("conversation_id").to_pylist() == examples.column("conversation_id").to_pylist()


def test_a_changed_prompt_file_is_a_new_config_hash_and_shows_in_the_lineage(tmp_path: Path):
    prompt = tmp_path / "system.md"
    prompt.write_text("You are a helpful support assistant.\n")
    cfg = _config(tmp_path, prompt)
    first = config_hash(cfg)
    prompt.write_text("\nYou are a helpful support assistant.\n\n")  # the same text for the model: same hash
    assert config_hash(cfg) == first
    prompt.write_text("You are a terse support assistant.\n")
    second = config_hash(cfg)
    assert second != first
    assert config_hash(_config(tmp_path, None)) not in (first, second)

    lineage = version_lineage(cfg, "c0ffee" * 10, "models/base")
    assert lineage["config_hash"] == second and lineage["system_prompt"] == str(prompt)
    assert lineage["system_prompt_sha256"] == load_system_prompt(str(prompt)).sha256

    # `retune lineage VERSION` shows the prompt and its hash
    config_file = tmp_path / "retune.yaml"
    config_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    store = open_store(load_config(config_file))
    store.put_bytes("main", "data/turns/x.parquet", b"x")
    commit = store.commit("main", "data").id
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    Registry(store).register(model, {"perplexity": 3.0}, version_lineage(cfg, commit, "models/base"))
    shown = CliRunner().invoke(app, ["lineage", "v1", "--config", str(config_file)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert f"system prompt {prompt}  sha256 {lineage['system_prompt_sha256']}" in shown.output
    assert f"config {second}" in shown.output
