"""Flow-run heartbeats without the second of waiting at the end of every sync flow run (Prefect 3.8).

Prefect sends a flow run's heartbeats from a daemon thread that sleeps in one-second steps. Its async engine
leaves that thread to stop on its own (`join_on_exit=False`); its sync engine joins it, which waits out the
current sleep: about a second per flow run (a trivial flow: 1.1–1.4 s with the join, 0.15 s without), most of
a `retune run` that finds nothing new. retune's flows are sync, so they get the async engine's behaviour: the
heartbeats are sent exactly as before while the run lasts, and the thread ends within a second after it, on
its own. Where Prefect's private hook is not what this expects, nothing is changed.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow_engine


def _hook() -> Callable[..., Any] | None:
    hook = getattr(flow_engine, "_send_heartbeats", None)
    if hook is None or getattr(hook, "_retune_no_join", False):
        return None
    try:
        parameters = list(inspect.signature(hook).parameters)
    except (TypeError, ValueError):
        return None
    return hook if parameters == ["engine", "join_on_exit"] else None


def leave_heartbeat_threads_unjoined() -> bool:
    """Install the no-join heartbeats; False when this Prefect has no such hook (or it is installed already)."""
    original = _hook()
    if original is None:
        return False

    @contextlib.contextmanager
    def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
        with original(engine, join_on_exit=False):
            yield

    send_heartbeats._retune_no_join = True  # type: ignore[attr-defined]
    flow_engine._send_heartbeats = send_heartbeats
    return True


def installed() -> bool:
    return getattr(getattr(flow_engine, "_send_heartbeats", None), "_retune_no_join", False)
