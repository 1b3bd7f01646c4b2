"""MCS scheduling: the clock, charging time to scheduling contexts, the release queue
and the timer (seL4's MCS parts of thread.c and schedcontext.c).

Time (:class:`kernel.model.mcs_clock.MCSClock`) is read from the machine at every
kernel entry (:func:`update_timestamp`) and what the current context used since is kept
in ``clock.consumed`` until it is charged: at a thread switch (:func:`commit_time`) or
when the budget runs out (:mod:`kernel.core.budget`). A thread whose context has no
usable refill waits in the release queue (:func:`postpone`) until its head refill's
release time (:func:`awaken`). At every kernel exit that changed what the timer must
catch, the timer is set to the earlier of the end of the current head refill and the
first release (:func:`set_next_interrupt`).

Only schedulable threads (:func:`is_schedulable`) are in ready queues; the scheduler
drops any other (``Scheduler.mcs``).
"""

from __future__ import annotations

from bisect import bisect_right

from kernel.core.refills import budget_check, is_ready, is_sufficient, unblock_check
from kernel.model.mcs_clock import MCSClock
from kernel.model.mcs_time import max_release_time, min_budget_ticks
from kernel.model.sched_context import Refill, SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "awaken",
    "clock_of",
    "commit_time",
    "idle_until_release",
    "is_schedulable",
    "postpone",
    "release_remove",
    "resume",
    "set_next_interrupt",
    "switch_sched_context",
    "unblock",
    "update_timestamp",
]


def clock_of(kernel: KernelState) -> MCSClock:
    """The MCS clock (the kernel must be an MCS kernel)."""
    clock = kernel.mcs
    assert clock is not None
    return clock


def is_schedulable(tcb: TCB) -> bool:
    """seL4's isSchedulable: runnable, on a configured context, not waiting for a
    release."""
    sc = tcb.sched_context
    return (tcb.state.runnable and sc is not None and sc.max_refills > 0
            and not tcb.in_release_queue)


def update_timestamp(kernel: KernelState) -> None:
    """seL4's updateTimestamp: read the clock; the time since the last entry is added
    to what the current context has used."""
    clock = clock_of(kernel)
    now = kernel.machine.time_now()
    clock.consumed += now - clock.now
    clock.now = now


def commit_time(kernel: KernelState) -> None:
    """seL4's commitTime: charge what the current context used (a round-robin context
    moves it from its head refill to its tail; a sporadic one by the refill rules)."""
    clock = clock_of(kernel)
    sc = clock.sc
    if sc is not None and sc.max_refills > 0 and sc.refills:
        consumed = clock.consumed
        if consumed > 0:
            if sc.period == 0:
                head, tail = sc.refills
                sc.refills[0] = Refill(head.time, head.amount - consumed)
                sc.refills[1] = Refill(tail.time, tail.amount + consumed)
            else:
                budget_check(sc, consumed, min_budget_ticks(kernel.abi),
                             max_release_time(kernel.abi))
        sc.consumed += consumed
    clock.consumed = 0


def unblock(kernel: KernelState, sc: SchedContext | None) -> None:
    """A thread on ``sc`` wakes: a sporadic context (not the one being charged now)
    may use its ready head refill from now on (seL4's calls of refill_unblock_check
    guarded by sc_sporadic)."""
    clock = clock_of(kernel)
    if sc is not None and sc.sporadic and sc is not clock.sc and sc.refills:
        if unblock_check(sc, clock.now):
            clock.reprogram = True


def postpone(kernel: KernelState, sc: SchedContext) -> None:
    """seL4's postpone: the thread on ``sc`` leaves its ready queue and waits in the
    release queue for ``sc``'s head refill."""
    tcb = sc.tcb
    assert tcb is not None
    kernel.scheduler.dequeue(tcb)
    _release_enqueue(kernel, tcb)
    clock_of(kernel).reprogram = True


def _release_time(tcb: TCB) -> int:
    sc = tcb.sched_context
    assert sc is not None
    return sc.refills[0].time


def _release_enqueue(kernel: KernelState, tcb: TCB) -> None:
    """seL4's tcbReleaseEnqueue: by release time, after those released at the same
    time."""
    if tcb.in_release_queue:
        return
    queue = clock_of(kernel).release_queue
    queue.insert(bisect_right(queue, _release_time(tcb), key=_release_time), tcb)
    tcb.in_release_queue = True


def release_remove(kernel: KernelState, tcb: TCB) -> None:
    """seL4's tcbReleaseRemove: ``tcb`` leaves the release queue if it is in it."""
    if tcb.in_release_queue:
        clock = clock_of(kernel)
        if clock.release_queue[0] is tcb:
            clock.reprogram = True
        clock.release_queue.remove(tcb)
        tcb.in_release_queue = False


def awaken(kernel: KernelState) -> None:
    """seL4's awaken: every thread whose release time has come leaves the release
    queue and may preempt (possibleSwitchTo)."""
    clock = clock_of(kernel)
    queue = clock.release_queue
    while queue and _release_time(queue[0]) <= clock.now:
        tcb = queue.pop(0)
        tcb.in_release_queue = False
        clock.reprogram = True
        kernel.make_runnable(tcb)


def resume(kernel: KernelState, sc: SchedContext | None) -> None:
    """seL4's schedContext_resume: a schedulable thread on ``sc`` whose head refill is
    not usable now waits for it in the release queue."""
    if sc is None or sc.tcb is None or not is_schedulable(sc.tcb):
        return
    now = clock_of(kernel).now
    if not (is_ready(sc, now) and is_sufficient(sc, 0, min_budget_ticks(kernel.abi))):
        postpone(kernel, sc)


def switch_sched_context(kernel: KernelState) -> None:
    """The end of seL4's schedule(): the chosen thread's context becomes the one time
    is charged to (what the old one used is committed first), and the timer is set
    again if anything it depends on changed."""
    clock = clock_of(kernel)
    current = kernel.current
    sc = current.sched_context if current is not None else None
    if sc is not clock.sc:
        clock.reprogram = True
        if sc is not None and not sc.sporadic and sc.period != 0 and sc.refills:
            unblock_check(sc, clock.now)
    if clock.reprogram:
        commit_time(kernel)
    clock.sc = sc
    if clock.reprogram:
        set_next_interrupt(kernel)
        clock.reprogram = False


def set_next_interrupt(kernel: KernelState) -> None:
    """seL4's setNextInterrupt: the timer fires when the current head refill is used
    up or the first waiting thread is released, whichever comes first.

    seL4 sets the timer a timer precision early, for the time its own entry takes;
    capsule's kernel entries take no time, so it sets it at the deadline itself (an
    early interrupt would find nothing due and be set again for the same instant).
    Never at or before now: each interrupt lets at least one instruction run."""
    clock = clock_of(kernel)
    sc = clock.sc
    deadline: int | None = None
    if sc is not None and sc.refills:
        deadline = clock.now + sc.refills[0].amount
    if clock.release_queue:
        release = _release_time(clock.release_queue[0])
        deadline = release if deadline is None else min(deadline, release)
    if deadline is None:
        return  # nothing can happen until a kernel entry (no thread runs: none will)
    clock.deadline = max(deadline, clock.now + 1)
    kernel.machine.set_timer(clock.deadline)


def idle_until_release(kernel: KernelState) -> bool:
    """No thread can run: let the idle thread's time pass at once, up to the first
    release (the idle context is charged nothing), and release what is due then.
    False if no thread waits for a release (then no thread will ever run)."""
    clock = clock_of(kernel)
    if not clock.release_queue:
        return False
    commit_time(kernel)
    clock.sc = None
    release = _release_time(clock.release_queue[0])
    if release > clock.now:
        kernel.machine.advance_time(release)
        clock.now = release
        kernel.ticks += 1  # the timer interrupt that ends the idle period
    clock.consumed = 0
    clock.reprogram = True
    awaken(kernel)
    return True
