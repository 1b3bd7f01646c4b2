"""MCS call stacks: reply objects pushed by a Call and popped by the reply, and the
scheduling context lent along them (seL4's reply.c and schedContext_donate).

A Call that meets a receiver with a reply object leaves the caller BlockedOnReply on
that object (:func:`reply_push`). If the caller runs on a scheduling context and the
receiver has none (a passive server), the context is lent to the receiver: the reply
object goes on top of the context's call stack (``sc.reply``, each object's ``prev``
the one below it, the top one's ``next`` the context). The reply gives it back
(:func:`reply_pop`); a reply object taken out of the middle of a stack (its caller
cancelled) closes the gap (:func:`reply_remove`, :func:`reply_remove_tcb`).
"""

from __future__ import annotations

from kernel.core.mcs_sched import release_remove
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState

__all__ = ["donate", "push_call_stack", "reply_pop", "reply_push", "reply_remove", "reply_remove_tcb",
           "reply_unlink"]


def donate(kernel: KernelState, sc: SchedContext, to: TCB) -> None:
    """seL4's schedContext_donate: ``sc`` leaves the thread it runs (which leaves its
    ready queue, and if current must give way) and runs ``to``."""
    old = sc.tcb
    if old is not None:
        kernel.scheduler.dequeue(old)
        release_remove(kernel, old)
        old.sched_context = None
        if old is kernel.current or old is kernel.scheduler.candidate:
            kernel.reschedule_required()
    sc.tcb = to
    to.sched_context = sc


def reply_unlink(kernel: KernelState, reply: ReplyObject, tcb: TCB) -> None:
    """Forget the thread ``reply`` names; that thread becomes Inactive (the caller of
    this sets the state it really ends in)."""
    reply.tcb = None
    tcb.reply_object = None
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)


def reply_push(kernel: KernelState, caller: TCB, callee: TCB, reply: ReplyObject,
               can_donate: bool) -> None:
    """seL4's reply_push: ``caller`` waits BlockedOnReply on ``reply``; its scheduling
    context is lent to ``callee`` if it has one, may lend it, and ``callee`` has none.

    Precondition: ``reply`` names no thread and is on no call stack."""
    if caller is kernel.current:
        kernel.save_current()
    sc = caller.sched_context
    reply.tcb = caller
    caller.reply_object = reply
    kernel.set_thread_state(caller, ThreadState.BLOCKED_ON_REPLY)
    if sc is not None and callee.sched_context is None and can_donate:
        push_call_stack(sc, reply)
        donate(kernel, sc, callee)


def push_call_stack(sc: SchedContext, reply: ReplyObject) -> None:
    """``reply`` becomes the top of ``sc``'s call stack (the one below it links up to
    it), as it is when ``sc`` goes with a Call. Precondition: ``reply`` is on no stack."""
    below = sc.reply
    if below is not None:
        below.next = reply
    reply.prev = below
    reply.next = sc
    sc.reply = reply


def reply_pop(kernel: KernelState, reply: ReplyObject, tcb: TCB) -> None:
    """seL4's reply_pop: ``reply`` is the top of its context's call stack; the one below
    becomes the top, and the context goes back to ``tcb`` (the caller) unless that
    thread got another context meanwhile."""
    sc = reply.next
    assert isinstance(sc, SchedContext)
    below = reply.prev
    sc.reply = below
    if below is not None:
        below.next = sc
    reply.next = None
    if tcb.sched_context is None:
        donate(kernel, sc, tcb)
    reply.prev = None
    reply_unlink(kernel, reply, tcb)


def reply_remove(kernel: KernelState, reply: ReplyObject, tcb: TCB) -> None:
    """seL4's reply_remove: take ``reply`` (``tcb`` blocked on it) off its call stack;
    the top of a stack is popped, one in the middle leaves a gap closed on both sides."""
    if isinstance(reply.next, SchedContext):
        reply_pop(kernel, reply, tcb)
        return
    if reply.next is not None:
        reply.next.prev = None
    if reply.prev is not None:
        reply.prev.next = None
    reply.prev = reply.next = None
    reply_unlink(kernel, reply, tcb)


def reply_remove_tcb(kernel: KernelState, tcb: TCB) -> None:
    """seL4's reply_remove_tcb: ``tcb``, blocked on a reply, is cancelled; its reply
    object leaves the call stack without giving a lent context back."""
    reply = tcb.reply_object
    if reply is None:
        return
    nxt = reply.next
    if isinstance(nxt, SchedContext):
        nxt.reply = None
    elif nxt is not None:
        nxt.prev = None
    if reply.prev is not None:
        reply.prev.next = None
    reply.prev = reply.next = None
    reply_unlink(kernel, reply, tcb)
