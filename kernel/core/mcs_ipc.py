"""MCS endpoint IPC: send, receive and reply with reply objects (seL4's endpoint.c and
doReplyTransfer with CONFIG_KERNEL_MCS).

The MCS kernel has no reply caps in TCBs: a receiver names a reply object, and a Call
that meets it leaves the caller blocked on that object, lending its scheduling context
to a receiver that has none (:mod:`kernel.core.reply_stack`). The reply is a Send on
the reply object's cap (:func:`do_reply_transfer`), which gives the context back. A
Call whose receiver has no reply object, or whose cap has neither Grant nor GrantReply,
leaves the caller Inactive, as seL4 does.

Perform-side only, as :mod:`kernel.core.ipc`: the MCS syscall handlers
(:mod:`kernel.entry.mcs_syscalls`) have looked the caps up and checked them.
"""

from __future__ import annotations

from kernel.core.cancel import cancel_ipc, leave_endpoint
from kernel.core.fault_reply import handle_fault_reply
from kernel.core.ipc import block_on_endpoint, wake_thread
from kernel.core.ipc_transfer import BADGE, set_window, transfer
from kernel.core.mcs_sched import unblock
from kernel.core.notifications import complete_signal, return_sched_context
from kernel.core.reply_stack import donate, reply_push, reply_remove
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.faults import TimeoutFault
from kernel.model.notification import NotificationState
from kernel.model.reply_object import ReplyObject
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, Blocking, ThreadState

__all__ = ["do_reply_transfer", "receive_mcs", "send_mcs"]




def _answered_by(kernel: KernelState, sender: TCB, receiver: TCB, reply: ReplyObject | None,
                 can_grant: bool, can_grant_reply: bool, can_donate: bool) -> None:
    """A Call (or fault) just delivered: the sender waits on ``reply``, lending its
    context if ``can_donate``, or, without a reply object or the right to be answered,
    becomes Inactive."""
    if (can_grant or can_grant_reply) and reply is not None:
        reply_push(kernel, sender, receiver, reply, can_donate=can_donate)
    else:
        kernel.set_thread_state(sender, ThreadState.INACTIVE)


def send_mcs(kernel: KernelState, sender: TCB, endpoint: Endpoint, badge: int, can_grant: bool,
             can_grant_reply: bool, can_donate: bool, blocking: bool, is_call: bool) -> None:
    """seL4's sendIPC (MCS) from the current thread (or a faulting one: ``is_call``).

    ``can_donate``: a Call or fault lends the sender's context to a receiver without
    one; so does a send of ReplyRecv / NBSendRecv / NBSendWait (seL4 lends it then
    even without a Call)."""
    if endpoint.state is not EndpointState.RECV:
        if blocking:
            block_on_endpoint(kernel, sender, ThreadState.BLOCKED_ON_SEND,
                              Blocking(endpoint, badge, can_grant, can_grant_reply, is_call))
        return
    receiver = endpoint.queue[0]
    reply = receiver.reply_object
    leave_endpoint(endpoint, receiver)  # frees the receiver's reply object
    transfer(kernel, sender, endpoint, badge, can_grant, receiver)
    if is_call:
        _answered_by(kernel, sender, receiver, reply, can_grant, can_grant_reply,
                     can_donate and sender.sched_context is not None)
    elif can_donate and receiver.sched_context is None and sender.sched_context is not None:
        donate(kernel, sender.sched_context, receiver)
    kernel.set_thread_state(receiver, ThreadState.RUNNING)
    unblock(kernel, receiver.sched_context)
    kernel.make_runnable(receiver)


def receive_mcs(kernel: KernelState, receiver: TCB, endpoint: Endpoint, can_grant: bool,
                blocking: bool, reply: ReplyObject | None) -> None:
    """seL4's receiveIPC (MCS) by the current thread, with ``reply`` (None: Wait).

    A reply object still holding another caller is cleared first: that caller is
    cancelled and stays blocked for good, as in seL4. A thread running on the context
    of its bound notification gives it back before it blocks (a passive server waits
    for its clients' contexts).
    """
    if reply is not None and reply.tcb is not None and reply.tcb is not receiver:
        cancel_ipc(kernel, reply.tcb)
    bound = receiver.bound_notification
    if bound is not None and bound.state is NotificationState.ACTIVE:
        complete_signal(kernel, bound, receiver)
        return
    if bound is not None and blocking:
        return_sched_context(kernel, bound, receiver)
    if endpoint.state is not EndpointState.SEND:
        if blocking:
            block_on_endpoint(kernel, receiver, ThreadState.BLOCKED_ON_RECEIVE,
                              Blocking(endpoint, can_grant=can_grant))
            if reply is not None:
                reply.tcb = receiver
                receiver.reply_object = reply
        else:
            set_window(kernel, receiver, BADGE, [0])
        return
    sender = endpoint.queue[0]
    info = sender.blocking
    assert info is not None
    leave_endpoint(endpoint, sender)
    transfer(kernel, sender, endpoint, info.badge, info.can_grant, receiver)
    unblock(kernel, sender.sched_context)
    if info.is_call:
        can_donate = (sender.sched_context is not None
                      and not isinstance(sender.fault, TimeoutFault))
        _answered_by(kernel, sender, receiver, reply, info.can_grant, info.can_grant_reply,
                     can_donate)
    else:
        wake_thread(kernel, sender)


def do_reply_transfer(kernel: KernelState, replier: TCB, reply: ReplyObject,
                      can_grant: bool) -> TCB | None:
    """seL4's doReplyTransfer (MCS): answer the caller blocked on ``reply`` (nothing to
    do if there is none); the lent context goes back; a faulted caller restarts or
    stops as its fault type says.

    Returns the caller if it is runnable now, on a context, for the caller of this to
    check that context's budget (:func:`kernel.core.budget.after_reply`): seL4 does
    that here, but a timeout fault it may raise is delivered above this module."""
    caller = reply.tcb
    if caller is None or caller.state is not ThreadState.BLOCKED_ON_REPLY:
        return None
    reply_remove(kernel, reply, caller)
    unblock(kernel, caller.sched_context)
    if caller.fault is None:
        transfer(kernel, replier, None, 0, can_grant, caller)
        kernel.set_thread_state(caller, ThreadState.RUNNING)
    else:
        restart = handle_fault_reply(kernel, caller, replier)
        caller.fault = None
        kernel.set_thread_state(caller, ThreadState.RESTART if restart
                                else ThreadState.INACTIVE)
    if caller.sched_context is not None and caller.state.runnable:
        return caller
    return None
