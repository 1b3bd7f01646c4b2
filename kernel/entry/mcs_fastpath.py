"""The MCS IPC fastpath: Call to a passive server and its ReplyRecv, as seL4's fastpath.c
with CONFIG_KERNEL_MCS.

The MCS common case is a client Calling a passive server (one with no scheduling
context of its own) that waits in Recv with a reply object, and the server's ReplyRecv
on that reply object. The Call lends the client's context to the server along the
reply object (the general path's :func:`kernel.core.reply_stack.reply_push`); the
ReplyRecv gives it back (:func:`kernel.core.reply_stack.reply_pop`) and queues the
server on the endpoint again. One context runs before and after the switch, so time
goes on being charged to the same context and the timer needs no reprogramming.

Contract, as :mod:`kernel.entry.fastpath`'s: :func:`mcs_fastpath_call` and
:func:`mcs_fastpath_reply_recv` either do nothing and return False (the general path,
:mod:`kernel.entry.mcs_syscalls` and :mod:`kernel.core.mcs_ipc`, then runs), or leave
exactly the state the general path would have left at the end of its kernel entry and
return True. Both run after the entry's clock read and budget check
(``Kernel.syscall``), and the kernel exit after them (``Kernel._schedule``: awaken,
the scheduler, ``switch_sched_context``) finds nothing left to do but what it would do
after the general path. ``tests/unit/test_mcs_fastpath.py`` and the guest trace
comparison check this.

Both need: no extra caps and at most ``seL4_FastMessageRegisters`` words; the current
thread has no pending fault, runs on the context the clock charges (``kernel.mcs.sc``),
is in no release queue; no release is due at this entry (awaken would make a thread
runnable at the exit); no scheduler decision is pending; the thread switched to is in
the current domain (whose time is not up) and no ready thread of that domain has a
higher priority (the scheduler would pick it at once: the general path puts it at the
front of its priority's queue, then chooses the highest).

Call: the cap is an endpoint cap with Send and (Grant or GrantReply) rights; a
receiver waits on it with a reply object and no context.

ReplyRecv: the reply cap (a6 / x6) is a reply object cap whose caller is BlockedOnReply
on it with no fault and no context; the object is the top of the call stack of the
replier's context (its ``next`` is that context), a context whose head refill is ready
and sufficient (else the caller would wait for a release); the receive cap is an
endpoint cap with Receive rights and no sender queued on it; the replier has no bound
notification.

Selected by ``KernelConfig.fastpath`` as the non-MCS fastpath.
"""

from __future__ import annotations

from typing import Final

from kernel.core.mcs_sched import clock_of
from kernel.core.refills import is_ready, is_sufficient
from kernel.core.reply_stack import push_call_stack
from kernel.core.threads import insert_by_priority
from kernel.cspace.lookup import lookup_cap
from kernel.entry.fastpath import call_target, fast_length, fast_message, switch_to, take_receiver
from kernel.model.caps import EndpointCap, ReplyObjectCap
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.mcs_time import min_budget_ticks
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, Blocking, ThreadState

__all__ = ["REPLY_REGISTER", "mcs_fastpath_call", "mcs_fastpath_reply_recv"]

REPLY_REGISTER: Final = 6
"""a6 / x6 in the syscall window: the reply object (NBSendWait: the destination)."""


def _switches_directly(kernel: KernelState, current: TCB, sc: SchedContext, target: TCB) -> bool:
    """Whether the general path, once ``current`` blocks and ``target`` runs on ``sc``,
    would switch straight to ``target`` and change nothing else in the scheduler or
    the clock (see the module docstring)."""
    clock = clock_of(kernel)
    if sc is not clock.sc or current.in_release_queue or target.in_release_queue:
        return False
    release = clock.release_queue
    if release:
        head = release[0].sched_context
        if head is None or head.refills[0].time <= clock.now:
            return False
    scheduler, domains = kernel.scheduler, kernel.domains
    if scheduler.candidate is not None or scheduler.choose_new:
        return False
    if target.domain != domains.current or (kernel.config.num_domains > 1 and domains.time == 0):
        return False
    return scheduler.is_highest(domains.current, target.priority)


def mcs_fastpath_call(kernel: KernelState, window: list[int]) -> bool:
    """seL4_Call (MCS) to a passive receiver, or False if the general path must handle it."""
    current = kernel.current
    assert current is not None
    sc = current.sched_context
    if current.fault is not None or sc is None:
        return False
    target = call_target(kernel, current, window)
    if target is None:
        return False
    length, cap, endpoint, receiver = target
    reply = receiver.reply_object
    if (reply is None or receiver.sched_context is not None
            or not _switches_directly(kernel, current, sc, receiver)):
        return False
    # Effects, as sendIPC, reply_push and the scheduler leave them: the receiver leaves
    # the queue (its reply object now holds the caller); the caller waits on the reply
    # object, pushed on its context's call stack; the context goes to the receiver,
    # which runs with the message.
    take_receiver(endpoint)
    receiver.reply_object = None
    kernel.scheduler.dequeue(current)
    current.state = ThreadState.BLOCKED_ON_REPLY
    reply.tcb = current
    current.reply_object = reply
    push_call_stack(sc, reply)
    _lend(sc, current, receiver)
    switch_to(kernel, receiver, fast_message(window, length, cap.badge))
    return True


def mcs_fastpath_reply_recv(kernel: KernelState, window: list[int]) -> bool:
    """seL4_ReplyRecv (MCS) answering a caller that lent its context, or False for the
    general path."""
    current = kernel.current
    assert current is not None
    length = fast_length(window[1])
    sc = current.sched_context
    if (length is None or current.fault is not None or sc is None
            or current.bound_notification is not None):
        return False
    reply_cap = lookup_cap(kernel, current, window[REPLY_REGISTER])
    if not isinstance(reply_cap, ReplyObjectCap):
        return False
    reply = kernel.object_at(reply_cap.paddr, ReplyObject)
    caller = reply.tcb
    if (caller is None or caller.state is not ThreadState.BLOCKED_ON_REPLY
            or caller.fault is not None or caller.sched_context is not None
            or reply.next is not sc or sc.reply is not reply):
        return False
    if not (is_ready(sc, clock_of(kernel).now)
            and is_sufficient(sc, 0, min_budget_ticks(kernel.abi))):
        return False
    cap = lookup_cap(kernel, current, window[0])
    if not isinstance(cap, EndpointCap) or not cap.rights.read:
        return False
    endpoint = kernel.object_at(cap.paddr, Endpoint)
    if (endpoint.state is EndpointState.SEND
            or not _switches_directly(kernel, current, sc, caller)):
        return False
    # Effects, as doReplyTransfer (reply_pop), receiveIPC and the scheduler leave them:
    # the reply object leaves the call stack and the context goes back to the caller;
    # the replier waits on the endpoint (in priority order) with the reply object; the
    # caller runs with the reply (badge 0).
    below = reply.prev
    sc.reply = below
    if below is not None:
        below.next = sc
    reply.prev = None
    reply.next = None
    _lend(sc, current, caller)
    caller.reply_object = None
    kernel.scheduler.dequeue(current)
    endpoint.state = EndpointState.RECV
    insert_by_priority(endpoint.queue, current)
    current.blocking = Blocking(endpoint, can_grant=cap.rights.grant)
    current.state = ThreadState.BLOCKED_ON_RECEIVE
    reply.tcb = current
    current.reply_object = reply
    switch_to(kernel, caller, fast_message(window, length, 0))
    return True


def _lend(sc: SchedContext, giver: TCB, taker: TCB) -> None:
    """``sc`` runs ``taker`` instead of ``giver`` (schedContext_donate, with nothing to
    dequeue: the fastpath's giver is the current thread and its taker is blocked)."""
    giver.sched_context = None
    sc.tcb = taker
    taker.sched_context = sc
