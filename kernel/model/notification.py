"""Notification objects: a word of signal bits and a queue of waiters (2^5 bytes).

The state lives here; signal, wait, poll, cancellation and binding are in
:mod:`kernel.core.notifications`.

Invariants (checked by ``kernel.views.invariants``, rule ``notification``): ``queue`` is
non-empty exactly when ``state`` is WAITING; ``word`` is non-zero only when ``state``
is ACTIVE (seL4's Idle / Waiting / Active; an unbadged signal makes it Active with word
0); ``bound_tcb`` is a thread whose ``bound_notification`` is this notification, and
while bound only that thread can be in ``queue``.
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import TYPE_CHECKING, final

from mypy_extensions import mypyc_attr

from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    # Types only: a TCB names the endpoint or notification it waits on, and the queues
    # here hold TCBs; at run time neither module needs the other.
    from kernel.model.sched_context import SchedContext
    from kernel.model.tcb import TCB

__all__ = ["Notification", "NotificationState"]


class NotificationState(Enum):
    IDLE = "Idle"
    WAITING = "Waiting"
    ACTIVE = "Active"


@final
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True, eq=False)
class Notification(Persistent):
    """A fresh notification is idle: word 0, nobody waiting, no bound thread.

    ``word`` is seL4's ntfnMsgIdentifier: the OR of the badges signalled since the
    last wait; ``queue`` holds the BlockedOnNotification waiters, first to wake first.
    """

    paddr: int
    state: NotificationState = NotificationState.IDLE
    queue: list[TCB] = field(default_factory=list)
    word: int = 0
    bound_tcb: TCB | None = None
    sched_context: SchedContext | None = None
    """MCS: the scheduling context bound to it (SchedContext_Bind), whose ``notification``
    is this one; always None in the non-MCS kernel."""
