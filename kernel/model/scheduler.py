"""The scheduler: 256 priority-ordered FIFO ready queues and seL4's scheduler action.

As in seL4, the decision to run another thread is a value (:class:`SchedulerAction`) set
by the operations that make threads runnable or stop them, and acted on once, at kernel
exit, by :meth:`Scheduler.choose`.
"""

from __future__ import annotations

from collections import deque

from kernel.abi.constants import NUM_PRIORITIES
from kernel.model.tcb import TCB

__all__ = ["Scheduler"]


class Scheduler:
    """Ready queues.

    Invariants: a thread is queued at most once, at its priority; bit p of
    ``nonempty`` is set exactly when ``queues[p]`` is non-empty (seL4's priority
    bitmap), so the highest ready priority is found without scanning 256 queues.
    """

    __slots__ = ("queues", "queued", "nonempty", "choose_new", "candidate")

    def __init__(self) -> None:
        self.queues: list[deque[TCB]] = [deque() for _ in range(NUM_PRIORITIES)]
        self.queued: set[int] = set()
        """Physical addresses of queued TCBs."""
        self.nonempty = 0
        self.choose_new = False
        """seL4's ksSchedulerAction = ChooseNewThread: pick again at kernel exit."""
        self.candidate: TCB | None = None
        """seL4's ksSchedulerAction = a thread: switch to it at kernel exit if it may
        run (possibleSwitchTo). Not queued while it is the candidate; never set
        together with ``choose_new``."""

    def enqueue(self, tcb: TCB) -> None:
        if tcb.paddr not in self.queued:
            self.queues[tcb.priority].append(tcb)
            self.queued.add(tcb.paddr)
            self.nonempty |= 1 << tcb.priority

    def append_front(self, tcb: TCB) -> None:
        if tcb.paddr not in self.queued:
            self.queues[tcb.priority].appendleft(tcb)
            self.queued.add(tcb.paddr)
            self.nonempty |= 1 << tcb.priority

    def dequeue(self, tcb: TCB) -> None:
        if tcb.paddr in self.queued:
            queue = self.queues[tcb.priority]
            queue.remove(tcb)
            self.queued.discard(tcb.paddr)
            if not queue:
                self.nonempty &= ~(1 << tcb.priority)

    def is_highest(self, priority: int) -> bool:
        """seL4's isHighestPrio: no queued thread has a higher priority."""
        return self.nonempty.bit_length() - 1 <= priority

    def pop_highest(self) -> TCB | None:
        """Remove and return the first thread of the highest non-empty priority."""
        if not self.nonempty:
            return None
        prio = self.nonempty.bit_length() - 1
        queue = self.queues[prio]
        tcb = queue.popleft()
        self.queued.discard(tcb.paddr)
        if not queue:
            self.nonempty &= ~(1 << prio)
        return tcb
