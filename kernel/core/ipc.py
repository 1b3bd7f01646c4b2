"""Endpoint IPC (non-MCS): send, receive, reply and cancellation, as seL4's endpoint.c.

Perform-side functions only: the syscall path (:mod:`kernel.entry.invocation`) has looked up
and checked the caps; nothing here can fail. The message itself moves in
:mod:`kernel.core.ipc_transfer`.

- :func:`send` (sendIPC): a waiting receiver gets the message now, else a blocking
  sender queues (BlockedOnSend), a non-blocking one's message is dropped.
- :func:`receive` (receiveIPC): a queued sender's message arrives now, else the
  receiver queues (BlockedOnReceive) or, non-blocking, gets badge 0.
- A Call sender whose cap has Grant or GrantReply waits BlockedOnReply with a reply
  cap in the receiver's caller slot (:func:`setup_caller_cap`); otherwise it becomes
  Inactive. :func:`reply` consumes that cap (doReplyTransfer).
- :func:`cancel_all_ipc` (the endpoint's last cap went) and :func:`cancel_badged_sends`
  take threads off an endpoint (one thread's cancelIPC is :mod:`kernel.core.cancel`).
- Receive-on-either: a receiver whose bound notification is Active takes the signal
  instead of a message (:func:`kernel.core.notifications.complete_signal`); a signal to a
  bound thread blocked here cancels its receive (:func:`kernel.core.notifications.send_signal`).

A woken thread becomes runnable through ``kernel.make_runnable``; if its priority is
higher than the current thread's it runs at kernel exit (an approximation of seL4's
possibleSwitchTo, which would also switch at equal priority on Call fastpaths).

Invariants (checked by ``kernel.views.invariants``, rule ``endpoint``): an endpoint's queue
is empty exactly when it is Idle; every queued thread is blocked in the direction the
state names with ``tcb.blocking.endpoint`` this endpoint; a thread is in one queue at
most; a thread has ``blocking`` set exactly when it is blocked on an endpoint.
"""

from __future__ import annotations

from kernel.core.cancel import leave_endpoint, restart_all_cancelled, restart_cancelled
from kernel.core.fault_reply import handle_fault_reply
from kernel.core.ipc_transfer import BADGE, set_window, transfer
from kernel.core.notifications import complete_signal
from kernel.core.threads import insert_by_priority
from kernel.cspace.cdt import delete_reply_cap, insert_reply_cap
from kernel.model.caps import ReplyCap
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.notification import NotificationState
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER, TCB, Blocking, ThreadState

__all__ = [
    "block_on_endpoint",
    "cancel_all_ipc",
    "cancel_badged_sends",
    "delete_caller_cap",
    "receive",
    "reply",
    "send",
    "wake_thread",
]


def block_on_endpoint(kernel: KernelState, tcb: TCB, state: ThreadState,
                      blocking: Blocking) -> None:
    """Queue ``tcb`` (the current thread) on ``blocking.endpoint``, registers saved."""
    if tcb is kernel.current:
        kernel.save_current()
    endpoint = blocking.endpoint
    endpoint.state = (EndpointState.SEND if state is ThreadState.BLOCKED_ON_SEND
                      else EndpointState.RECV)
    if kernel.mcs is None:
        endpoint.queue.append(tcb)
    else:
        insert_by_priority(endpoint.queue, tcb)
    tcb.blocking = blocking
    kernel.set_thread_state(tcb, state)


def wake_thread(kernel: KernelState, tcb: TCB, state: ThreadState = ThreadState.RUNNING) -> None:
    """Give ``tcb`` ``state`` and let the scheduler consider it."""
    kernel.set_thread_state(tcb, state)
    kernel.make_runnable(tcb)


def send(
    kernel: KernelState, sender: TCB, endpoint: Endpoint, badge: int, can_grant: bool,
    can_grant_reply: bool, blocking: bool, is_call: bool,
) -> None:
    """seL4's sendIPC from ``sender`` (the current thread or a faulting one)."""
    if endpoint.state is not EndpointState.RECV:
        if blocking:
            block_on_endpoint(kernel, sender, ThreadState.BLOCKED_ON_SEND,
                              Blocking(endpoint, badge, can_grant, can_grant_reply, is_call))
        return
    receiver = endpoint.queue[0]
    assert receiver.blocking is not None
    receiver_grant = receiver.blocking.can_grant
    leave_endpoint(endpoint, receiver)
    transfer(kernel, sender, endpoint, badge, can_grant, receiver)
    wake_thread(kernel, receiver)
    if is_call:
        if can_grant or can_grant_reply:
            setup_caller_cap(kernel, sender, receiver, receiver_grant)
        else:
            kernel.set_thread_state(sender, ThreadState.INACTIVE)


def receive(kernel: KernelState, receiver: TCB, endpoint: Endpoint, can_grant: bool,
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
            block_on_endpoint(kernel, receiver, ThreadState.BLOCKED_ON_RECEIVE,
                              Blocking(endpoint, can_grant=can_grant))
        else:
            set_window(kernel, receiver, BADGE, [0])  # doNBRecvFailedTransfer
        return
    sender = endpoint.queue[0]
    info = sender.blocking
    assert info is not None
    leave_endpoint(endpoint, sender)
    transfer(kernel, sender, endpoint, info.badge, info.can_grant, receiver)
    if info.is_call:
        if info.can_grant or info.can_grant_reply:
            setup_caller_cap(kernel, sender, receiver, can_grant)
        else:
            kernel.set_thread_state(sender, ThreadState.INACTIVE)
    else:
        wake_thread(kernel, sender)


# --- reply caps ---------------------------------------------------------------------------


def setup_caller_cap(kernel: KernelState, sender: TCB, receiver: TCB, can_grant: bool) -> None:
    """``sender`` waits BlockedOnReply; ``receiver``'s caller slot gets a reply cap to
    it (:func:`kernel.cspace.cdt.insert_reply_cap`, which the fastpath uses too)."""
    if sender is kernel.current:
        kernel.save_current()
    kernel.set_thread_state(sender, ThreadState.BLOCKED_ON_REPLY)
    insert_reply_cap(sender, receiver, can_grant)


def delete_caller_cap(kernel: KernelState, tcb: TCB) -> None:
    """Non-MCS Recv starts by deleting a reply cap left in the caller slot (only
    :func:`setup_caller_cap` fills that slot, and only with a non-master reply cap,
    which has no finaliser: emptying the slot is the whole of cteDelete for it)."""
    slot = tcb.slots[CALLER]
    if not slot.is_empty:
        delete_reply_cap(slot)


def reply(kernel: KernelState, replier: TCB, slot: Slot | None = None) -> None:
    """seL4's handleReply: answer the thread named by the caller slot, consuming it.

    With ``slot``, the reply goes through that reply cap instead: a Send on a reply
    cap saved with CNode SaveCaller (seL4's performInvocation_Reply); the cap is
    consumed the same way. An empty slot does nothing. A thread that had a fault is
    restarted or stopped as its fault type says
    (:func:`kernel.core.fault_reply.handle_fault_reply`).
    """
    if slot is None:
        slot = replier.slots[CALLER]
    cap = slot.cap
    if not isinstance(cap, ReplyCap) or cap.is_master:
        return
    caller = kernel.object_at(cap.tcb_paddr, TCB)
    if caller.state is not ThreadState.BLOCKED_ON_REPLY:
        delete_reply_cap(slot)
        return
    if caller.fault is None:
        transfer(kernel, replier, None, 0, cap.can_grant, caller)
        delete_reply_cap(slot)
        wake_thread(kernel, caller)
        return
    delete_reply_cap(slot)
    restart = handle_fault_reply(kernel, caller, replier)
    caller.fault = None
    if restart:
        wake_thread(kernel, caller, ThreadState.RESTART)
    else:
        kernel.set_thread_state(caller, ThreadState.INACTIVE)


# --- cancellation ---------------------------------------------------------------------------


def cancel_all_ipc(kernel: KernelState, endpoint: Endpoint) -> None:
    """seL4's cancelAllIPC: every queued thread restarts its syscall (or fault). An
    idle endpoint is left as it is, with no reschedule (seL4 does nothing for it)."""
    if endpoint.state is EndpointState.IDLE:
        return
    queue = list(endpoint.queue)
    endpoint.queue.clear()
    endpoint.state = EndpointState.IDLE
    restart_all_cancelled(kernel, queue)


def cancel_badged_sends(kernel: KernelState, endpoint: Endpoint, badge: int) -> None:
    """seL4's cancelBadgedSends: senders with ``badge`` restart (badge 0: nothing)."""
    if badge == 0 or endpoint.state is not EndpointState.SEND:
        return
    for tcb in list(endpoint.queue):
        assert tcb.blocking is not None
        if tcb.blocking.badge == badge:
            leave_endpoint(endpoint, tcb)
            restart_cancelled(kernel, tcb)
    kernel.reschedule_required()


