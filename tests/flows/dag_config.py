"""Config helpers for the DAG tests: a tiny, fast config that still runs every stage for real."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def tiny_config(workdir: Path, **overrides) -> dict:
    """A config that exercises every stage for real, sized to run in about a minute on 2 cores."""
    cfg = {
        "workdir": str(workdir),
        "sources": [{"path": str(REPO / "examples/batch1/*")}],
        "contracts": {"dir": str(REPO / "data_contracts")},
        "model": {
            "base_model": "models/base",
            "bootstrap": {"vocab_size": 600, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2,
                          "num_heads": 4, "max_position_embeddings": 512, "pretrain_steps": 40},
        },
        "training": {"nproc_per_node": 2, "deepspeed_config": str(REPO / "infra/deepspeed/zero2.json"),
                     "max_steps": 8, "per_device_batch_size": 2, "max_length": 256, "checkpoint_every": 4},
        "export": {"parity_prompts": 3, "parity_new_tokens": 8, "min_greedy_agreement": 0.5},
        "evaluation": {"max_examples": 6, "max_new_tokens": 8, "tolerance": 0.05},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = values
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path
