"""Flow-run heartbeats are still sent, and no sync flow run waits for the heartbeat thread at its end."""

from __future__ import annotations

import contextlib
import threading
import time

from prefect import flow_engine

import flows.run  # noqa: F401  (installs the no-join heartbeats, as every flow module does)
from flows import heartbeats


class _Engine:
    """What Prefect's heartbeat hook reads from a flow run engine."""

    heartbeat_seconds = 30
    flow_run = None

    def __init__(self) -> None:
        self.sent = 0
        self.logger = __import__("logging").getLogger("test-heartbeats")

    def _build_heartbeat_event_template(self):
        return {}, []

    def _emit_flow_run_heartbeat(self, resource, related) -> None:
        self.sent += 1


def test_installed_on_the_pinned_prefect():
    # a Prefect upgrade that changes the private hook must be noticed here, not as a slow warm run
    assert heartbeats.installed()
    assert not heartbeats.leave_heartbeat_threads_unjoined()  # once only


def test_heartbeats_are_sent_and_the_thread_ends_on_its_own():
    engine = _Engine()
    before = {t.ident for t in threading.enumerate()}
    with flow_engine._send_heartbeats(engine):
        deadline = time.monotonic() + 10
        while engine.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.sent == 1  # the first heartbeat goes out at the start
    new = [t for t in threading.enumerate() if t.ident not in before]
    for thread in new:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert engine.sent == 1  # nothing after the run ended


def test_the_original_is_called_without_the_join(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def recorded(engine, join_on_exit=True):
        calls.append(join_on_exit)
        yield

    monkeypatch.setattr(flow_engine, "_send_heartbeats", recorded)
    assert heartbeats.leave_heartbeat_threads_unjoined()
    with flow_engine._send_heartbeats(object()):
        pass
    assert calls == [False]


def test_an_unexpected_hook_is_left_alone(monkeypatch):
    def other(engine, interval, join_on_exit=True):
        return contextlib.nullcontext()

    monkeypatch.setattr(flow_engine, "_send_heartbeats", other)
    assert not heartbeats.leave_heartbeat_threads_unjoined()
    assert flow_engine._send_heartbeats is other
