"""The ready queues: highest priority first, FIFO within a priority, the bitmap exact."""

from __future__ import annotations

from kernel.model.scheduler import Scheduler
from kernel.model.tcb import TCB


def tcb(paddr: int, priority: int) -> TCB:
    thread = TCB(paddr, 32, 5)
    thread.priority = priority
    return thread


def test_highest_priority_first_then_fifo() -> None:
    sched = Scheduler()
    low, mid_a, mid_b, high = tcb(1, 3), tcb(2, 100), tcb(3, 100), tcb(4, 200)
    for thread in (low, mid_a, high, mid_b):
        sched.enqueue(thread)
    assert [sched.pop_highest(0) for _ in range(5)] == [high, mid_a, mid_b, low, None]
    assert sched.nonempty == [0] and not sched.queued


def test_dequeue_clears_the_bitmap_only_when_the_queue_empties() -> None:
    sched = Scheduler()
    a, b = tcb(1, 7), tcb(2, 7)
    sched.enqueue(a)
    sched.enqueue(b)
    sched.dequeue(a)
    assert sched.nonempty == [1 << 7]
    sched.dequeue(b)
    assert sched.nonempty == [0]
    sched.append_front(a)
    sched.enqueue(a)  # already queued: no second entry
    assert sched.pop_highest(0) is a and sched.pop_highest(0) is None
