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
from kernel.core.notifications import complete_signal
from kernel.core.reply_stack import reply_push, reply_remove
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.notification import NotificationState
from kernel.model.reply_object import ReplyObject
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, Blocking, ThreadState

__all__ = ["do_reply_transfer", "receive_mcs", "send_mcs"]




def _answered_by(kernel: KernelState, sender: TCB, receiver: TCB, reply: ReplyObject | None,
                 can_grant: bool, can_grant_reply: bool) -> None:
    """A Call (or fault) just delivered: the sender waits on ``reply``, or, without a
    reply object or the right to be answered, becomes Inactive."""
    if (can_grant or can_grant_reply) and reply is not None:
        reply_push(kernel, sender, receiver, reply, can_donate=sender.sched_context is not None)
    else:
        kernel.set_thread_state(sender, ThreadState.INACTIVE)


def send_mcs(kernel: KernelState, sender: TCB, endpoint: Endpoint, badge: int, can_grant: bool,
             can_grant_reply: bool, blocking: bool, is_call: bool) -> None:
    """seL4's sendIPC (MCS) from the current thread."""
    if endpoint.state is not EndpointState.RECV:
        if blocking:
            block_on_endpoint(kernel, sender, ThreadState.BLOCKED_ON_SEND,
                              Blocking(endpoint, badge, can_grant, can_grant_reply, is_call))
        return
    receiver = endpoint.queue[0]
    reply = receiver.reply_object
    leave_endpoint(endpoint, receiver)  # frees the receiver's reply object
    transfer(kernel, sender, endpoint, badge, can_grant, receiver)
    wake_thread(kernel, receiver)
    if is_call:
        _answered_by(kernel, sender, receiver, reply, can_grant, can_grant_reply)


def receive_mcs(kernel: KernelState, receiver: TCB, endpoint: Endpoint, can_grant: bool,
                blocking: bool, reply: ReplyObject | None) -> None:
    """seL4's receiveIPC (MCS) by the current thread, with ``reply`` (None: Wait).

    A reply object still holding another caller is cleared first: that caller is
    cancelled and stays blocked for good, as in seL4.
    """
    if reply is not None and reply.tcb is not None and reply.tcb is not receiver:
        cancel_ipc(kernel, reply.tcb)
    bound = receiver.bound_notification
    if bound is not None and bound.state is NotificationState.ACTIVE:
        complete_signal(kernel, bound, receiver)
        return
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
    if info.is_call:
        _answered_by(kernel, sender, receiver, reply, info.can_grant, info.can_grant_reply)
    else:
        wake_thread(kernel, sender)


def do_reply_transfer(kernel: KernelState, replier: TCB, reply: ReplyObject,
                      can_grant: bool) -> None:
    """seL4's doReplyTransfer (MCS): answer the caller blocked on ``reply`` (nothing to
    do if there is none); the lent context goes back; a faulted caller restarts or
    stops as its fault type says."""
    caller = reply.tcb
    if caller is None or caller.state is not ThreadState.BLOCKED_ON_REPLY:
        return
    reply_remove(kernel, reply, caller)
    if caller.fault is None:
        transfer(kernel, replier, None, 0, can_grant, caller)
        wake_thread(kernel, caller)
        return
    restart = handle_fault_reply(kernel, caller, replier)
    caller.fault = None
    if restart:
        wake_thread(kernel, caller, ThreadState.RESTART)
    else:
        kernel.set_thread_state(caller, ThreadState.INACTIVE)
