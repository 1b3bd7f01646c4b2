"""Endpoint IPC (non-MCS): send, receive, reply and cancellation, as seL4's endpoint.c.

Perform-side functions only: the syscall path (:mod:`kernel.invocation`) has looked up
and checked the caps; nothing here can fail. The message itself moves in
:mod:`kernel.ipc_transfer`.

- :func:`send` (sendIPC): a waiting receiver gets the message now, else a blocking
  sender queues (BlockedOnSend), a non-blocking one's message is dropped.
- :func:`receive` (receiveIPC): a queued sender's message arrives now, else the
  receiver queues (BlockedOnReceive) or, non-blocking, gets badge 0.
- A Call sender whose cap has Grant or GrantReply waits BlockedOnReply with a reply
  cap in the receiver's caller slot (:func:`setup_caller_cap`); otherwise it becomes
  Inactive. :func:`reply` consumes that cap (doReplyTransfer).
- :func:`cancel_ipc` (suspend), :func:`cancel_all_ipc` (the endpoint's last cap went)
  and :func:`cancel_badged_sends` take threads off an endpoint; ``cancel_ipc`` also
  takes a thread off the notification it waits on.
- Receive-on-either: a receiver whose bound notification is Active takes the signal
  instead of a message (:func:`kernel.notifications.complete_signal`); a signal to a
  bound thread blocked here cancels its receive (:func:`kernel.notifications.send_signal`).

A woken thread becomes runnable through ``kernel.make_runnable``; if its priority is
higher than the current thread's it runs at kernel exit (an approximation of seL4's
possibleSwitchTo, which would also switch at equal priority on Call fastpaths).

Invariants (checked by ``kernel.invariants``, rule ``endpoint``): an endpoint's queue
is empty exactly when it is Idle; every queued thread is blocked in the direction the
state names with ``tcb.blocking.endpoint`` this endpoint; a thread is in one queue at
most; a thread has ``blocking`` set exactly when it is blocked on an endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .caps import ReplyCap
from .ipc_transfer import BADGE, set_window, transfer
from .notifications import cancel_signal, complete_signal
from .objects.endpoint import Endpoint, EndpointState
from .objects.notification import NotificationState
from .objects.slot import Slot
from .objects.tcb import CALLER, REPLY, TCB, Blocking, ThreadState

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = [
    "cancel_all_ipc",
    "cancel_badged_sends",
    "cancel_ipc",
    "delete_caller_cap",
    "receive",
    "reply",
    "restart_all_cancelled",
    "restart_cancelled",
    "send",
]


def _dequeue(endpoint: Endpoint, tcb: TCB) -> None:
    endpoint.queue.remove(tcb)
    if not endpoint.queue:
        endpoint.state = EndpointState.IDLE
    tcb.blocking = None


def _block(kernel: Kernel, tcb: TCB, state: ThreadState, blocking: Blocking) -> None:
    """Queue ``tcb`` (the current thread) on ``blocking.endpoint``, registers saved."""
    if tcb is kernel.current:
        kernel.save_current()
    endpoint = blocking.endpoint
    endpoint.state = (EndpointState.SEND if state is ThreadState.BLOCKED_ON_SEND
                      else EndpointState.RECV)
    endpoint.queue.append(tcb)
    tcb.blocking = blocking
    kernel.set_thread_state(tcb, state)


def _wake(kernel: Kernel, tcb: TCB, state: ThreadState = ThreadState.RUNNING) -> None:
    kernel.set_thread_state(tcb, state)
    kernel.make_runnable(tcb)


def send(
    kernel: Kernel, sender: TCB, endpoint: Endpoint, badge: int, can_grant: bool,
    can_grant_reply: bool, blocking: bool, is_call: bool,
) -> None:
    """seL4's sendIPC from ``sender`` (the current thread or a faulting one)."""
    if endpoint.state is not EndpointState.RECV:
        if blocking:
            _block(kernel, sender, ThreadState.BLOCKED_ON_SEND,
                   Blocking(endpoint, badge, can_grant, can_grant_reply, is_call))
        return
    receiver = endpoint.queue[0]
    assert receiver.blocking is not None
    receiver_grant = receiver.blocking.can_grant
    _dequeue(endpoint, receiver)
    transfer(kernel, sender, endpoint, badge, can_grant, receiver)
    _wake(kernel, receiver)
    if is_call:
        if can_grant or can_grant_reply:
            setup_caller_cap(kernel, sender, receiver, receiver_grant)
        else:
            kernel.set_thread_state(sender, ThreadState.INACTIVE)


def receive(kernel: Kernel, receiver: TCB, endpoint: Endpoint, can_grant: bool,
            blocking: bool) -> None:
    """seL4's receiveIPC by the current thread; its stale caller cap is already gone.

    A pending signal on the receiver's bound notification comes first: the receiver
    gets its word as the badge and no message (seL4's completeSignal).
    """
    bound = receiver.bound_notification
    if bound is not None and bound.state is NotificationState.ACTIVE:
        complete_signal(kernel, bound, receiver)
        return
    if endpoint.state is not EndpointState.SEND:
        if blocking:
            _block(kernel, receiver, ThreadState.BLOCKED_ON_RECEIVE,
                   Blocking(endpoint, can_grant=can_grant))
        else:
            set_window(kernel, receiver, BADGE, [0])  # doNBRecvFailedTransfer
        return
    sender = endpoint.queue[0]
    info = sender.blocking
    assert info is not None
    _dequeue(endpoint, sender)
    transfer(kernel, sender, endpoint, info.badge, info.can_grant, receiver)
    if info.is_call:
        if info.can_grant or info.can_grant_reply:
            setup_caller_cap(kernel, sender, receiver, can_grant)
        else:
            kernel.set_thread_state(sender, ThreadState.INACTIVE)
    else:
        _wake(kernel, sender)


# --- reply caps ---------------------------------------------------------------------------


def setup_caller_cap(kernel: Kernel, sender: TCB, receiver: TCB, can_grant: bool) -> None:
    """``sender`` waits BlockedOnReply; ``receiver``'s caller slot gets a reply cap to
    it, a CDT child of ``sender``'s master reply cap.

    seL4 creates the master reply cap (setupReplyMaster) when the thread is started;
    capsule creates it here, on first use, when the reply slot is still empty.
    """
    from .cdt import insert_child, insert_root

    if sender is kernel.current:
        kernel.save_current()
    kernel.set_thread_state(sender, ThreadState.BLOCKED_ON_REPLY)
    master = sender.slots[REPLY]
    if master.is_empty:
        insert_root(master, ReplyCap(sender.paddr, can_grant=True, is_master=True))
    # cteInsert of a reply cap under its master: never revocable, no untyped to mark,
    # and the caller slot is empty (a Recv deletes what it held first).
    insert_child(master, receiver.slots[CALLER], ReplyCap(sender.paddr, can_grant=can_grant),
                 False)


def delete_caller_cap(kernel: Kernel, tcb: TCB) -> None:
    """Non-MCS Recv starts by deleting a reply cap left in the caller slot."""
    from .cdt import delete

    delete(kernel, tcb.slots[CALLER])


def reply(kernel: Kernel, replier: TCB, slot: Slot | None = None) -> None:
    """seL4's handleReply: answer the thread named by the caller slot, consuming it.

    With ``slot``, the reply goes through that reply cap instead: a Send on a reply
    cap saved with CNode SaveCaller (seL4's performInvocation_Reply); the cap is
    consumed the same way. An empty slot does nothing. A thread that had a fault is
    restarted or stopped as its fault type says
    (:func:`kernel.fault_delivery.handle_fault_reply`).
    """
    from .cdt import delete_reply_cap as consume  # a non-master reply cap: no finaliser
    from .fault_delivery import handle_fault_reply

    if slot is None:
        slot = replier.slots[CALLER]
    cap = slot.cap
    if not isinstance(cap, ReplyCap) or cap.is_master:
        return
    caller = kernel.objects.get(cap.tcb_paddr)
    assert isinstance(caller, TCB)
    if caller.state is not ThreadState.BLOCKED_ON_REPLY:
        consume(slot)
        return
    if caller.fault is None:
        transfer(kernel, replier, None, 0, cap.can_grant, caller)
        consume(slot)
        _wake(kernel, caller)
        return
    consume(slot)
    restart = handle_fault_reply(kernel, caller, replier)
    caller.fault = None
    if restart:
        _wake(kernel, caller, ThreadState.RESTART)
    else:
        kernel.set_thread_state(caller, ThreadState.INACTIVE)


# --- cancellation ---------------------------------------------------------------------------


def _restart_pc(kernel: Kernel, tcb: TCB) -> None:
    """A restarted syscall runs its trap again: the saved pc is 4 bytes past it. A
    thread blocked sending a fault already has the fault's IP as its pc; re-running
    the instruction raises the fault afresh, so capsule forgets the old one (seL4
    keeps tcbFault until it is replaced)."""
    if tcb.fault is None:
        tcb.registers[0] -= 4
    tcb.fault = None


def cancel_ipc(kernel: Kernel, tcb: TCB) -> None:
    """seL4's cancelIPC (used by suspend): take ``tcb`` out of any IPC.

    A thread queued on an endpoint or a notification leaves its queue and becomes
    Inactive (suspend makes it so anyway); one waiting for a reply loses the reply cap
    naming it.
    """
    from .cdt import delete

    if tcb.waiting_on is not None and tcb.state is ThreadState.BLOCKED_ON_NOTIFICATION:
        cancel_signal(kernel, tcb, tcb.waiting_on)
    elif tcb.blocking is not None and tcb.state in (ThreadState.BLOCKED_ON_SEND,
                                                    ThreadState.BLOCKED_ON_RECEIVE):
        _dequeue(tcb.blocking.endpoint, tcb)
        kernel.set_thread_state(tcb, ThreadState.INACTIVE)
    elif tcb.state is ThreadState.BLOCKED_ON_REPLY:
        tcb.fault = None
        master = tcb.slots[REPLY]
        child = master.mdb_next
        if (not master.is_empty and child is not None and isinstance(child.cap, ReplyCap)
                and child.cap.tcb_paddr == tcb.paddr and not child.cap.is_master):
            delete(kernel, child)


def cancel_all_ipc(kernel: Kernel, endpoint: Endpoint) -> None:
    """seL4's cancelAllIPC: every queued thread restarts its syscall (or fault). An
    idle endpoint is left as it is, with no reschedule (seL4 does nothing for it)."""
    if endpoint.state is EndpointState.IDLE:
        return
    queue = list(endpoint.queue)
    endpoint.queue.clear()
    endpoint.state = EndpointState.IDLE
    restart_all_cancelled(kernel, queue)


def cancel_badged_sends(kernel: Kernel, endpoint: Endpoint, badge: int) -> None:
    """seL4's cancelBadgedSends: senders with ``badge`` restart (badge 0: nothing)."""
    if badge == 0 or endpoint.state is not EndpointState.SEND:
        return
    for tcb in list(endpoint.queue):
        assert tcb.blocking is not None
        if tcb.blocking.badge == badge:
            _dequeue(endpoint, tcb)
            restart_cancelled(kernel, tcb)
    kernel.reschedule_required()


def restart_all_cancelled(kernel: Kernel, queue: list[TCB]) -> None:
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


def restart_cancelled(kernel: Kernel, tcb: TCB) -> None:
    """A thread taken out of a queue by a cancel-all: it will run its syscall (or
    fault) again, and goes to the *head* of its ready queue (seL4's SCHED_ENQUEUE);
    the canceller then calls ``kernel.reschedule_required`` once."""
    _restart_pc(kernel, tcb)
    kernel.set_thread_state(tcb, ThreadState.RESTART)
    kernel.scheduler.append_front(tcb)
