"""What a model version records about where it came from: the code version and the config hash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import retune
from retune.config import Config

# The config sections that decide what a fine-tune produces; a change to any of them is a different model.
TRAINING_SECTIONS = ("model", "training", "split")


def code_version() -> str:
    """The git commit of the code when run from a checkout, else the package version."""
    repo = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"retune-{retune.__version__}"


def config_hash(cfg: Config) -> str:
    return cfg.section_hash(*TRAINING_SECTIONS)
