"""MCS scheduling contexts: binding to threads and notifications, consumed time, and
SchedContext_YieldTo's bookkeeping (seL4's schedcontext.c).

The operations the SchedControl and SchedContext invocations
(:mod:`kernel.objects.sched_context`), the MCS TCB invocations, deletion and boot need.
Time is in timer ticks (:mod:`kernel.model.mcs_time`); the clock, budgets and the
release queue are :mod:`kernel.core.mcs_sched`'s.
"""

from __future__ import annotations

from kernel.core.ipc_transfer import write_message
from kernel.core.mcs_sched import clock_of, is_schedulable, release_remove, resume, unblock
from kernel.core.refills import is_ready
from kernel.model.notification import Notification
from kernel.model.sched_context import SchedContext, take_consumed_us
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "bind_ntfn",
    "bind_tcb",
    "cancel_yield_to",
    "complete_yield_to",
    "is_released",
    "unbind_ntfn",
    "unbind_reply",
    "unbind_tcb",
]


def is_released(kernel: KernelState, sc: SchedContext) -> bool:
    """seL4's sc_released: configured, and its head refill usable now."""
    return sc.max_refills > 0 and bool(sc.refills) and is_ready(sc, clock_of(kernel).now)


def bind_tcb(kernel: KernelState, sc: SchedContext, tcb: TCB) -> None:
    """seL4's schedContext_bindTCB: ``tcb`` runs on ``sc`` from now on; a runnable
    thread joins its ready queue (or the release queue, if ``sc`` has nothing usable
    now) and the scheduler chooses again.

    Precondition (checked by the decoders): neither is bound."""
    sc.tcb = tcb
    tcb.sched_context = sc
    if sc.max_refills > 0:
        unblock(kernel, sc)
    resume(kernel, sc)
    if is_schedulable(tcb) and tcb is not kernel.current:
        kernel.scheduler.append_front(tcb)
        kernel.reschedule_required()


def unbind_tcb(kernel: KernelState, sc: SchedContext) -> None:
    """seL4's schedContext_unbindTCB: the bound thread (if any) leaves the ready and
    release queues and has no scheduling context: it cannot run until it gets one."""
    tcb = sc.tcb
    if tcb is None:
        return
    if tcb is kernel.current:
        kernel.reschedule_required()
    kernel.scheduler.dequeue(tcb)
    release_remove(kernel, tcb)
    sc.tcb = None
    tcb.sched_context = None


def bind_ntfn(sc: SchedContext, ntfn: Notification) -> None:
    """seL4's schedContext_bindNtfn: a passive thread woken by ``ntfn`` runs on ``sc``
    (``kernel.core.notifications`` lends it)."""
    sc.notification = ntfn
    ntfn.sched_context = sc


def unbind_ntfn(sc: SchedContext) -> None:
    ntfn = sc.notification
    if ntfn is not None:
        ntfn.sched_context = None
    sc.notification = None


def cancel_yield_to(tcb: TCB) -> None:
    """seL4's schedContext_cancelYieldTo: ``tcb`` no longer waits for the context it
    yielded to."""
    sc = tcb.yield_to
    if sc is not None:
        sc.yield_from = None
        tcb.yield_to = None


def complete_yield_to(kernel: KernelState, yielder: TCB) -> None:
    """seL4's schedContext_completeYieldTo: ``yielder`` runs again after its YieldTo;
    its reply becomes the consumed time of the context it yielded to."""
    sc = yielder.yield_to
    if sc is None:
        return
    write_message(kernel, yielder, 0, 0, [take_consumed_us(kernel.abi, sc)])
    cancel_yield_to(yielder)


def unbind_reply(sc: SchedContext) -> None:
    """seL4's schedContext_unbindReply: a context leaving its call stack (its last cap
    went, or Unbind) is no longer what the top reply object gives back."""
    reply = sc.reply
    if reply is not None:
        reply.next = None
    sc.reply = None
