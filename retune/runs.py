"""Run identifiers: sortable by time, unique across concurrent runs, safe as branch and directory names."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
