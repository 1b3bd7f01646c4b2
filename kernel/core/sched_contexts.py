"""MCS scheduling contexts: refills, binding to threads and notifications, consumed time.

The operations seL4 spreads over sporadic.c and schedcontext.c that the SchedControl and
SchedContext invocations (:mod:`kernel.objects.sched_context`) and boot need. Time is in
timer ticks (:mod:`kernel.model.mcs_time`); :func:`current_time` is the kernel's clock.

Not built yet (the issue's later stages): charging a budget on kernel entry, the release
queue, sporadic-server refill splitting and merging, timeout faults, donation along
Call. Until then a scheduling context's refills are set when it is configured and
charged nothing, and a thread runs on the round-robin time slice of the non-MCS kernel.
"""

from __future__ import annotations

from kernel.abi.arch import ArchABI
from kernel.model.mcs_time import us_to_ticks
from kernel.model.notification import Notification
from kernel.model.sched_context import Refill, SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "bind_ntfn",
    "bind_tcb",
    "current_time",
    "is_released",
    "refill_new",
    "refill_update",
    "take_consumed_us",
    "unbind_ntfn",
    "unbind_reply",
    "unbind_tcb",
]


def current_time(kernel: KernelState) -> int:
    """The kernel's clock in timer ticks: one per instruction retired, counted at the
    last timer tick (capsule's kernel sees instructions only at its ticks so far)."""
    return kernel.ticks * kernel.config.tick_instructions


def refill_new(sc: SchedContext, max_refills: int, budget: int, period: int, now: int) -> None:
    """seL4's refill_new: the whole ``budget`` usable from ``now`` as one refill, a list
    of at most ``max_refills``, replenished every ``period`` (0: round robin)."""
    sc.period = period
    sc.budget = budget
    sc.max_refills = max_refills
    sc.refills = [Refill(now, budget)]


def refill_update(sc: SchedContext, period: int, budget: int, max_refills: int,
                  now: int) -> None:
    """seL4's refill_update, for a context in use: keep only the head refill (released
    now if it was ready); cut it to the new ``budget``, or schedule the rest of the
    budget one ``period`` after it, so that the new bandwidth holds from now on."""
    head = sc.refills[0]
    if head.time <= now:
        head = Refill(now, head.amount)
    sc.period, sc.budget, sc.max_refills = period, budget, max_refills
    if head.amount >= budget:
        sc.refills = [Refill(head.time, budget)]
    else:
        sc.refills = [head, Refill(head.time + period, budget - head.amount)]


def is_released(kernel: KernelState, sc: SchedContext) -> bool:
    """seL4's sc_released: configured, and its head refill usable now."""
    return sc.max_refills > 0 and bool(sc.refills) and sc.refills[0].time <= current_time(kernel)


def bind_tcb(kernel: KernelState, sc: SchedContext, tcb: TCB) -> None:
    """seL4's schedContext_bindTCB: ``tcb`` runs on ``sc`` from now on; a runnable
    thread joins its ready queue and may preempt the current one.

    Precondition (checked by the decoders): neither is bound."""
    sc.tcb = tcb
    tcb.sched_context = sc
    if tcb.state.runnable and tcb is not kernel.current:
        kernel.scheduler.enqueue(tcb)
        kernel.reschedule_required()


def unbind_tcb(kernel: KernelState, sc: SchedContext) -> None:
    """seL4's schedContext_unbindTCB: the bound thread (if any) leaves its ready queue
    and has no scheduling context: it cannot run until it gets one."""
    tcb = sc.tcb
    if tcb is None:
        return
    kernel.scheduler.dequeue(tcb)
    if tcb is kernel.current:
        kernel.reschedule_required()
    sc.tcb = None
    tcb.sched_context = None


def bind_ntfn(sc: SchedContext, ntfn: Notification) -> None:
    """seL4's schedContext_bindNtfn: a passive thread waiting on ``ntfn`` will run on
    ``sc`` when signalled (lending it is a later stage's work)."""
    sc.notification = ntfn
    ntfn.sched_context = sc


def unbind_ntfn(sc: SchedContext) -> None:
    ntfn = sc.notification
    if ntfn is not None:
        ntfn.sched_context = None
    sc.notification = None


def take_consumed_us(abi: ArchABI, sc: SchedContext) -> int:
    """seL4's schedContext_updateConsumed: the time ``sc`` was charged since the last
    call, in microseconds (rounded down), and the count starts again."""
    ticks_per_ms = us_to_ticks(abi, 1000)
    consumed = sc.consumed * 1000 // ticks_per_ms
    sc.consumed = 0
    return consumed


def unbind_reply(sc: SchedContext) -> None:
    """seL4's schedContext_unbindReply: a context leaving its call stack (its last cap
    went, or Unbind) is no longer what the top reply object gives back."""
    reply = sc.reply
    if reply is not None:
        reply.next = None
    sc.reply = None
