"""Fixtures of the fault tests: one real Prefect server that `retune` processes started by the tests talk to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from dag_config import running_prefect_server  # noqa: E402


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """The API URL of a real `prefect server start`, shared by every test that runs `retune` as a process."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as (url, _):
        yield url
