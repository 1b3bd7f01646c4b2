"""Taking threads out of IPC: seL4's cancelIPC, cancelSignal, and the restart of threads a
cancel-all took off an endpoint or notification.

Below both :mod:`kernel.core.ipc` and :mod:`kernel.core.notifications`, which use it in
both directions (a signal to a bound thread cancels its endpoint receive; suspending a
thread cancels whatever it waits on), and below :mod:`kernel.core.threads`' suspend.
"""

from __future__ import annotations

from kernel.core.reply_stack import reply_remove_tcb
from kernel.cspace.cdt import delete_reply_cap
from kernel.model.caps import ReplyCap
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.faults import IndexRequest
from kernel.model.notification import Notification, NotificationState
from kernel.model.state import KernelState
from kernel.model.tcb import REPLY, TCB, ThreadState

__all__ = [
    "cancel_ipc",
    "cancel_signal",
    "leave_endpoint",
    "leave_notification",
    "restart_all_cancelled",
    "restart_cancelled",
]


def leave_endpoint(endpoint: Endpoint, tcb: TCB) -> None:
    """Take ``tcb`` off ``endpoint``'s queue; the endpoint goes Idle when it empties.
    (MCS: a receiver's reply object is free again.)"""
    endpoint.queue.remove(tcb)
    if not endpoint.queue:
        endpoint.state = EndpointState.IDLE
    tcb.blocking = None
    reply = tcb.reply_object
    if reply is not None:
        reply.tcb = None
        tcb.reply_object = None


def leave_notification(ntfn: Notification, tcb: TCB) -> None:
    """Take ``tcb`` off ``ntfn``'s queue; the notification goes Idle when it empties."""
    ntfn.queue.remove(tcb)
    if not ntfn.queue:
        ntfn.state = NotificationState.IDLE
    tcb.waiting_on = None


def cancel_signal(kernel: KernelState, tcb: TCB, ntfn: Notification) -> None:
    """seL4's cancelSignal: ``tcb``, waiting on ``ntfn``, leaves the queue, Inactive."""
    assert tcb.waiting_on is ntfn and ntfn.state is NotificationState.WAITING
    leave_notification(ntfn, tcb)
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)


def cancel_ipc(kernel: KernelState, tcb: TCB) -> None:
    """seL4's cancelIPC (used by suspend): take ``tcb`` out of any IPC.

    A thread queued on an endpoint or a notification leaves its queue and becomes
    Inactive (suspend makes it so anyway); one waiting for a reply loses the reply cap
    naming it. A thread sending an index request (server-backed CNodes, not seL4)
    forgets it.
    """
    if tcb.waiting_on is not None and tcb.state is ThreadState.BLOCKED_ON_NOTIFICATION:
        cancel_signal(kernel, tcb, tcb.waiting_on)
    elif tcb.blocking is not None and tcb.state in (ThreadState.BLOCKED_ON_SEND,
                                                    ThreadState.BLOCKED_ON_RECEIVE):
        leave_endpoint(tcb.blocking.endpoint, tcb)
        kernel.set_thread_state(tcb, ThreadState.INACTIVE)
        if isinstance(tcb.fault, IndexRequest):
            # capsule's server-backed CNodes (not seL4): a cancelled index request is
            # forgotten; the thread's pc is on its trap, and when it runs again its
            # system call restarts and asks afresh if it still needs to.
            tcb.fault = None
    elif tcb.state is ThreadState.BLOCKED_ON_REPLY and tcb.reply_object is not None:
        tcb.fault = None
        reply_remove_tcb(kernel, tcb)  # MCS: a reply object, not a reply cap
    elif tcb.state is ThreadState.BLOCKED_ON_REPLY:
        tcb.fault = None
        master = tcb.slots[REPLY]
        child = master.mdb_next
        if (not master.is_empty and child is not None and isinstance(child.cap, ReplyCap)
                and child.cap.tcb_paddr == tcb.paddr and not child.cap.is_master):
            delete_reply_cap(child)


def _restart_pc(kernel: KernelState, tcb: TCB) -> None:
    """A restarted syscall runs its trap again: the saved pc is 4 bytes past it. A
    thread blocked sending a fault already has the fault's IP as its pc; re-running
    the instruction raises the fault afresh, so capsule forgets the old one (seL4
    keeps tcbFault until it is replaced)."""
    if tcb.fault is None:
        kernel.registers_of(tcb)[0] -= 4
    tcb.fault = None


def restart_all_cancelled(kernel: KernelState, queue: list[TCB]) -> None:
    """The end of a cancel-all (seL4's cancelAllIPC, cancelAllSignals): ``queue``, the
    threads just taken off an object that is Idle now, restart in queue order.

    Each leaves its blocking link (``blocking`` or ``waiting_on``, whichever it has)
    and goes to the head of its ready queue (:func:`restart_cancelled`), so of equal
    priorities the last one queued runs first, as seL4's loop of tcbSchedEnqueue leaves
    them; then the scheduler chooses again once, at kernel exit (rescheduleRequired).
    """
    for tcb in queue:
        tcb.blocking = None
        tcb.waiting_on = None
        restart_cancelled(kernel, tcb)
    kernel.reschedule_required()


def restart_cancelled(kernel: KernelState, tcb: TCB) -> None:
    """A thread taken out of a queue by a cancel-all: it will run its syscall (or
    fault) again, and goes to the *head* of its ready queue (seL4's SCHED_ENQUEUE);
    the canceller then calls ``kernel.reschedule_required`` once."""
    _restart_pc(kernel, tcb)
    kernel.set_thread_state(tcb, ThreadState.RESTART)
    kernel.scheduler.append_front(tcb)
