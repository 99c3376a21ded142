"""Provider-backed answers start after the acks that are pending (bot/slack/listeners.py)."""

from __future__ import annotations

import threading

from bot.slack.listeners import AcksFirst, ProviderPool


def test_provider_work_waits_for_the_pending_ack() -> None:
    acks = AcksFirst(patience=30)
    pool = ProviderPool(acks, threads=2)
    started = threading.Event()
    with acks.acking():
        pool(started.set)
        assert not started.wait(0.3)  # a command is still being acked
    assert started.wait(5)


def test_provider_work_starts_anyway_after_its_patience() -> None:
    acks = AcksFirst(patience=0.2)
    pool = ProviderPool(acks, threads=2)
    started = threading.Event()
    with acks.acking():
        pool(started.set)
        assert started.wait(5)  # an ack that never ends does not hold the answers back for good


def test_a_failing_answer_is_logged_and_the_pool_goes_on() -> None:
    pool = ProviderPool(AcksFirst(), threads=1)
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("provider adapter bug")

    pool(boom)
    pool(done.set)
    assert done.wait(5)
