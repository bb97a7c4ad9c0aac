"""``stop_first`` in this process, with real signals: the stop runs once and before the handler
the signal had, an ignored signal stays ignored, and the handlers are back afterwards. (The
search that uses it: tests/test_runner_embedded_fidelity.py, the signal tests.)"""

from __future__ import annotations

import contextlib
import os
import signal

from slm_bench.runners.stop_signals import stop_first


class Previous(Exception):
    """What the handler before ``stop_first``'s raises, as ``slm-bench``'s raises SystemExit."""


def test_a_signal_stops_first_once_then_reaches_the_previous_handler():
    calls: list[str] = []

    def previous(signum, _frame):
        calls.append(f"previous {signum}")
        raise Previous

    old = signal.signal(signal.SIGTERM, previous)
    try:
        with stop_first(lambda: calls.append("stop"), (signal.SIGTERM,)):
            for _ in range(2):
                with contextlib.suppress(Previous):
                    os.kill(os.getpid(), signal.SIGTERM)  # handled before the next bytecode
        assert calls == ["stop", "previous 15", "previous 15"]
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def test_an_ignored_signal_stays_ignored_and_stops_nothing():
    stops: list[int] = []
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_first(lambda: stops.append(1), (signal.SIGHUP,)):
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # nohup: the process goes on
        assert not stops
    finally:
        signal.signal(signal.SIGHUP, old)
