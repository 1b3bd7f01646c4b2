"""Notification objects: a word of signal bits and a queue of waiters (2^5 bytes).

Only the state untyped retype creates lives here for now; the IPC issue adds signal,
wait and binding.

Invariants: ``queue`` is non-empty exactly when ``state`` is WAITING; ``word`` is
non-zero only when ``state`` is ACTIVE (seL4's Idle / Waiting / Active).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .tcb import TCB

__all__ = ["NOTIFICATION_BITS", "Notification", "NotificationState"]

NOTIFICATION_BITS = 5
"""seL4_NotificationBits (non-MCS): log2 of a notification's size in bytes."""


class NotificationState(Enum):
    IDLE = "Idle"
    WAITING = "Waiting"
    ACTIVE = "Active"


@dataclass(slots=True, eq=False)
class Notification:
    """A fresh notification is idle: word 0, nobody waiting, no bound thread."""

    paddr: int
    state: NotificationState = NotificationState.IDLE
    queue: list[TCB] = field(default_factory=list)
    word: int = 0
    bound_tcb: TCB | None = None
