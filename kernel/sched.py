"""The scheduler: 256 priority-ordered FIFO ready queues and seL4's scheduler action.

As in seL4, the decision to run another thread is a value (:class:`SchedulerAction`) set
by the operations that make threads runnable or stop them, and acted on once, at kernel
exit, by :meth:`Scheduler.choose`.
"""

from __future__ import annotations

from collections import deque

from .abi.constants import NUM_PRIORITIES
from .objects.tcb import TCB

__all__ = ["Scheduler"]


class Scheduler:
    """Ready queues. Invariant: a thread is queued at most once, at its priority."""

    __slots__ = ("queues", "queued", "choose_new")

    def __init__(self) -> None:
        self.queues: list[deque[TCB]] = [deque() for _ in range(NUM_PRIORITIES)]
        self.queued: set[int] = set()
        """Physical addresses of queued TCBs."""
        self.choose_new = False
        """seL4's ksSchedulerAction = ChooseNewThread: pick again at kernel exit."""

    def enqueue(self, tcb: TCB) -> None:
        if tcb.paddr not in self.queued:
            self.queues[tcb.priority].append(tcb)
            self.queued.add(tcb.paddr)

    def append_front(self, tcb: TCB) -> None:
        if tcb.paddr not in self.queued:
            self.queues[tcb.priority].appendleft(tcb)
            self.queued.add(tcb.paddr)

    def dequeue(self, tcb: TCB) -> None:
        if tcb.paddr in self.queued:
            self.queues[tcb.priority].remove(tcb)
            self.queued.discard(tcb.paddr)

    def pop_highest(self) -> TCB | None:
        """Remove and return the first thread of the highest non-empty priority."""
        for prio in range(NUM_PRIORITIES - 1, -1, -1):
            queue = self.queues[prio]
            if queue:
                tcb = queue.popleft()
                self.queued.discard(tcb.paddr)
                return tcb
        return None
