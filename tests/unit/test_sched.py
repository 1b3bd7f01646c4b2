"""The ready queues: highest priority first, FIFO within a priority, the bitmap exact."""

from __future__ import annotations

from kernel.abi.arch import Arch
from kernel.model.scheduler import Scheduler
from kernel.model.tcb import TCB, ThreadState
from tests.unit.test_ipc import World


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


def test_a_candidate_set_before_the_current_thread_blocks_is_still_the_decision() -> None:
    """seL4's scheduleTCB reschedules only while no decision is pending, and schedule()
    switches straight to a candidate that does not rank below the blocked thread, even
    past a higher-priority thread in the ready queues (as a Call's receiver runs when
    the caller blocks for the reply)."""
    world = World(Arch.RISCV64)
    kernel, root = world.kernel, world.root
    assert root is not None
    root.priority = 10
    higher = world.thread(50)  # ready, queued
    candidate = world.thread(20)
    kernel.scheduler.dequeue(candidate)
    kernel.make_runnable(candidate)
    assert kernel.scheduler.candidate is candidate
    kernel.set_thread_state(root, ThreadState.BLOCKED_ON_REPLY)
    assert kernel.scheduler.candidate is candidate and not kernel.scheduler.choose_new
    kernel._schedule()
    assert kernel.current is candidate
    assert kernel.scheduler.pop_highest(0) is higher
