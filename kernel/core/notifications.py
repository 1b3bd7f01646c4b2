"""Notifications: signal, wait, poll, cancellation and binding, as seL4's
notification.c.

Perform-side functions only: :mod:`kernel.entry.invocation` has looked up the cap and checked
its rights (and, for a wait, that the notification is not bound to another thread);
nothing here can fail.

- :func:`send_signal` (sendSignal): the first waiter wakes with the badge; with nobody
  waiting the badge is OR-ed into the word (the notification becomes Active), unless
  the notification is bound to a thread blocked receiving on an endpoint: that thread
  leaves the endpoint and wakes with the badge instead.
- :func:`receive_signal` (receiveSignal): an Active notification hands over its word
  and goes Idle; otherwise a Wait queues the thread (BlockedOnNotification) and a Poll
  gets badge 0.
- :func:`complete_signal` (completeSignal): the receive-on-either half of an endpoint
  receive by a thread whose bound notification is Active (:func:`kernel.core.ipc.receive`).
- :func:`cancel_all_signals` (the notification's last cap went) takes the waiters off
  (one waiter's cancelSignal is :mod:`kernel.core.cancel`).
- :func:`bind_notification` / :func:`unbind_notification` /
  :func:`unbind_maybe_notification`: the TCB decoder and the finalisers use these.

Only the badge register is written for a woken or polling thread; its msginfo and
message registers keep what they held (seL4 writes nothing else).

A woken thread becomes runnable through ``kernel.make_runnable`` (capsule's
possibleSwitchTo approximation, as in :mod:`kernel.core.ipc`).

Invariants (``kernel.views.invariants``, rule ``notification``): a notification's queue is
non-empty exactly when it is Waiting; its word is non-zero only when it is Active;
every queued thread is BlockedOnNotification with ``waiting_on`` this notification,
queued once; ``waiting_on`` is set exactly while a thread is queued; binding is
symmetric (``ntfn.bound_tcb.bound_notification is ntfn`` and the reverse), and a
bound notification's queue holds at most its bound thread.
"""

from __future__ import annotations

from kernel.core.cancel import cancel_ipc, leave_notification, restart_all_cancelled
from kernel.core.ipc_transfer import BADGE, set_window
from kernel.core.mcs_sched import resume, unblock
from kernel.core.reply_stack import donate
from kernel.core.threads import insert_by_priority
from kernel.model.notification import Notification, NotificationState
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState

__all__ = [
    "bind_notification",
    "cancel_all_signals",
    "complete_signal",
    "receive_signal",
    "return_sched_context",
    "send_signal",
    "unbind_maybe_notification",
    "unbind_notification",
]


def _wake_with_badge(kernel: KernelState, ntfn: Notification, tcb: TCB, badge: int) -> None:
    """The woken thread runs (MCS: on the notification's context if it has none of
    its own; a thread with no context at all stays out of the ready queues)."""
    kernel.set_thread_state(tcb, ThreadState.RUNNING)
    set_window(kernel, tcb, BADGE, [badge])
    if kernel.mcs is not None:
        _donate_sched_context(kernel, ntfn, tcb)
        unblock(kernel, tcb.sched_context)
    kernel.make_runnable(tcb)


def _donate_sched_context(kernel: KernelState, ntfn: Notification, tcb: TCB) -> None:
    """MCS: seL4's maybeDonateSchedContext: a thread without a context receives on the
    context bound to ``ntfn``, if that context runs nobody."""
    sc = ntfn.sched_context
    if tcb.sched_context is None and sc is not None and sc.tcb is None:
        donate(kernel, sc, tcb)
        resume(kernel, sc)


def return_sched_context(kernel: KernelState, ntfn: Notification, tcb: TCB) -> None:
    """MCS: seL4's maybeReturnSchedContext: a thread that runs on ``ntfn``'s context
    and now blocks gives it back to the notification."""
    sc = ntfn.sched_context
    if sc is not None and sc is tcb.sched_context:
        kernel.scheduler.dequeue(tcb)
        tcb.sched_context = None
        sc.tcb = None
        if tcb is kernel.current:
            kernel.reschedule_required()


def _set_active(ntfn: Notification, word: int) -> None:
    ntfn.state = NotificationState.ACTIVE
    ntfn.word = word


def send_signal(kernel: KernelState, ntfn: Notification, badge: int) -> None:
    """seL4's sendSignal of ``badge`` (the invoked cap's badge, maybe 0) to ``ntfn``.

    A thread bound to the notification but not receiving on an endpoint (running, or
    BlockedOnReply in the middle of a Call) is not woken: the signal stays pending.
    """
    if ntfn.state is NotificationState.ACTIVE:
        ntfn.word |= badge
        return
    if ntfn.state is NotificationState.WAITING:
        waiter = ntfn.queue[0]
        leave_notification(ntfn, waiter)
        _wake_with_badge(kernel, ntfn, waiter, badge)
        return
    bound = ntfn.bound_tcb
    if bound is not None and bound.state is ThreadState.BLOCKED_ON_RECEIVE:
        cancel_ipc(kernel, bound)
        _wake_with_badge(kernel, ntfn, bound, badge)
        return
    _set_active(ntfn, badge)


def receive_signal(kernel: KernelState, tcb: TCB, ntfn: Notification, blocking: bool) -> None:
    """seL4's receiveSignal by ``tcb`` (the current thread): Wait (``blocking``) or Poll."""
    if ntfn.state is NotificationState.ACTIVE:
        complete_signal(kernel, ntfn, tcb)
        return
    if not blocking:
        set_window(kernel, tcb, BADGE, [0])  # doNBRecvFailedTransfer
        return
    if tcb is kernel.current:
        kernel.save_current()
    ntfn.state = NotificationState.WAITING
    if kernel.mcs is None:
        ntfn.queue.append(tcb)
    else:
        insert_by_priority(ntfn.queue, tcb)
    tcb.waiting_on = ntfn
    kernel.set_thread_state(tcb, ThreadState.BLOCKED_ON_NOTIFICATION)
    if kernel.mcs is not None:
        return_sched_context(kernel, ntfn, tcb)


def complete_signal(kernel: KernelState, ntfn: Notification, tcb: TCB) -> None:
    """seL4's completeSignal: ``tcb`` takes the word of Active ``ntfn``, which goes Idle."""
    assert ntfn.state is NotificationState.ACTIVE
    set_window(kernel, tcb, BADGE, [ntfn.word])
    ntfn.state = NotificationState.IDLE
    ntfn.word = 0
    if kernel.mcs is not None:
        _donate_sched_context(kernel, ntfn, tcb)
        unblock(kernel, tcb.sched_context)


def cancel_all_signals(kernel: KernelState, ntfn: Notification) -> None:
    """seL4's cancelAllSignals: every waiter restarts its Wait (runs its trap again).

    A pending word is left as it is, as seL4 leaves it. As seL4's rescheduleRequired,
    the scheduler chooses again at kernel exit.
    """
    if ntfn.state is not NotificationState.WAITING:
        return

    waiters = list(ntfn.queue)
    ntfn.queue.clear()
    ntfn.state = NotificationState.IDLE
    restart_all_cancelled(kernel, waiters)


def bind_notification(kernel: KernelState, tcb: TCB, ntfn: Notification) -> None:
    """seL4's bindNotification. The caller (the TCB decoder) has checked that neither
    is bound yet and that nobody waits on ``ntfn``."""
    ntfn.bound_tcb = tcb
    tcb.bound_notification = ntfn


def unbind_notification(kernel: KernelState, tcb: TCB) -> None:
    """seL4's unbindNotification: ``tcb``'s binding goes, if it has one."""
    ntfn = tcb.bound_notification
    if ntfn is not None:
        ntfn.bound_tcb = None
        tcb.bound_notification = None


def unbind_maybe_notification(kernel: KernelState, ntfn: Notification) -> None:
    """seL4's unbindMaybeNotification: ``ntfn``'s binding goes, if it has one."""
    tcb = ntfn.bound_tcb
    if tcb is not None:
        ntfn.bound_tcb = None
        tcb.bound_notification = None
