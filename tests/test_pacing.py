"""The refresher's chores give way to queries (pacing.Pacer)."""

from __future__ import annotations

import threading

from karabakh_qa.pacing import Pacer


def test_pause_waits_for_the_query_in_flight_to_finish() -> None:
    pacer = Pacer(slice_s=0.0, max_wait_s=30.0)
    order: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    def query() -> None:
        with pacer.query():
            inside.set()
            leave.wait(30)
            order.append("query finished")

    worker = threading.Thread(target=query)
    worker.start()
    inside.wait(30)
    chore = threading.Thread(target=lambda: (pacer.pause(), order.append("chore resumed")))
    chore.start()
    chore.join(0.2)  # still waiting: the query has not finished
    order.append("query released")
    leave.set()
    worker.join(30)
    chore.join(30)
    assert order == ["query released", "query finished", "chore resumed"]


def test_pause_does_not_wait_without_a_query_or_within_its_slice() -> None:
    idle = Pacer(slice_s=0.0, max_wait_s=30.0)
    done = threading.Event()
    threading.Thread(target=lambda: (idle.pause(), done.set())).start()
    assert done.wait(5)  # nothing in flight: no wait (a wait would last 30 s)

    busy = Pacer(slice_s=3600.0, max_wait_s=30.0)
    busy.start()
    resumed = threading.Event()
    with busy.query():  # in flight, but the chore's slice has not run out
        threading.Thread(target=lambda: (busy.pause(), resumed.set())).start()
        assert resumed.wait(5)


def test_a_chore_gives_up_waiting_after_max_wait() -> None:
    pacer = Pacer(slice_s=0.0, max_wait_s=0.01)
    done = threading.Event()
    with pacer.query():  # a load that never pauses
        threading.Thread(target=lambda: (pacer.pause(), done.set())).start()
        assert done.wait(5)
