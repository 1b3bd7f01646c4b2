"""The scheduler: per domain, 256 priority-ordered FIFO ready queues, and seL4's
scheduler action.

As in seL4, the decision to run another thread is a value (:class:`SchedulerAction`) set
by the operations that make threads runnable or stop them, and acted on once, at kernel
exit, by :meth:`Scheduler.choose`. seL4 keeps one set of queues per scheduling domain
(ksReadyQueues[domain][priority]) and only ever picks from the current domain's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, final

from mypy_extensions import mypyc_attr

from kernel.abi.constants import NUM_PRIORITIES
from kernel.model.tcb import TCB
from kernel.pickling import Persistent

__all__ = ["Scheduler"]

_PRIORITY_BITS: Final = (NUM_PRIORITIES - 1).bit_length()


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class Scheduler(Persistent):
    """Ready queues, one per (domain, priority), made when first used.

    Invariants: a thread is queued at most once, in the queue of its domain and
    priority; bit p of ``nonempty[d]`` is set exactly when that queue of domain d is
    non-empty (seL4's priority bitmap), so the highest ready priority is found without
    scanning 256 queues. Every operation is O(1) whatever the queue lengths (seL4's
    queues are doubly linked lists; these are insertion-ordered maps by address).
    """

    __slots__ = ("_queues", "queued", "nonempty", "choose_new", "candidate", "mcs")

    def __init__(self, num_domains: int = 1, mcs: bool = False) -> None:
        self._queues: dict[int, OrderedDict[int, TCB]] = {}
        self.queued: set[int] = set()
        """Physical addresses of queued TCBs."""
        self.nonempty: list[int] = [0] * num_domains
        """Per domain, the bitmap of its non-empty priorities."""
        self.choose_new = False
        """seL4's ksSchedulerAction = ChooseNewThread: pick again at kernel exit."""
        self.candidate: TCB | None = None
        """seL4's ksSchedulerAction = a thread: switch to it at kernel exit if it may
        run (possibleSwitchTo). Not queued while it is the candidate; never set
        together with ``choose_new``."""
        self.mcs = mcs
        """MCS: only threads that may run now are queued (seL4's isSchedulable: on a
        configured scheduling context and not waiting for a release); the queueing
        operations ignore any other thread, as seL4's callers check before queueing."""

    @staticmethod
    def _may_queue(tcb: TCB) -> bool:
        sc = tcb.sched_context
        return sc is not None and sc.max_refills > 0 and not tcb.in_release_queue

    def _queue_of(self, tcb: TCB) -> OrderedDict[int, TCB]:
        key = tcb.domain << _PRIORITY_BITS | tcb.priority
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = OrderedDict()
        return queue

    def enqueue(self, tcb: TCB) -> None:
        """seL4's tcbSchedAppend: to the back of its queue (if not queued already)."""
        if tcb.paddr not in self.queued and (not self.mcs or self._may_queue(tcb)):
            self._queue_of(tcb)[tcb.paddr] = tcb
            self.queued.add(tcb.paddr)
            self.nonempty[tcb.domain] |= 1 << tcb.priority

    def append_front(self, tcb: TCB) -> None:
        """seL4's tcbSchedEnqueue: to the front of its queue (if not queued already)."""
        if tcb.paddr not in self.queued and (not self.mcs or self._may_queue(tcb)):
            queue = self._queue_of(tcb)
            queue[tcb.paddr] = tcb
            queue.move_to_end(tcb.paddr, last=False)
            self.queued.add(tcb.paddr)
            self.nonempty[tcb.domain] |= 1 << tcb.priority

    def dequeue(self, tcb: TCB) -> None:
        """seL4's tcbSchedDequeue. Precondition: the thread's domain and priority are the
        ones it was queued with (callers dequeue before changing either)."""
        if tcb.paddr in self.queued:
            queue = self._queue_of(tcb)
            del queue[tcb.paddr]
            self.queued.discard(tcb.paddr)
            if not queue:
                self.nonempty[tcb.domain] &= ~(1 << tcb.priority)

    def is_highest(self, domain: int, priority: int) -> bool:
        """seL4's isHighestPrio: no thread of ``domain`` is queued at a higher priority."""
        return self.nonempty[domain].bit_length() - 1 <= priority

    def pop_highest(self, domain: int) -> TCB | None:
        """Remove and return the first thread of ``domain``'s highest non-empty priority."""
        mask = self.nonempty[domain]
        if not mask:
            return None
        prio = mask.bit_length() - 1
        queue = self._queues[domain << _PRIORITY_BITS | prio]
        _, tcb = queue.popitem(last=False)
        self.queued.discard(tcb.paddr)
        if not queue:
            self.nonempty[domain] &= ~(1 << prio)
        return tcb

    def queue(self, domain: int, priority: int) -> list[TCB]:
        """The threads queued at ``priority`` in ``domain``, first to run first."""
        return list(self._queues.get(domain << _PRIORITY_BITS | priority, {}).values())

    def queues(self) -> list[tuple[int, int, list[TCB]]]:
        """Every non-empty queue as (domain, priority, threads), by domain then priority."""
        return [(key >> _PRIORITY_BITS, key & (NUM_PRIORITIES - 1), list(queue.values()))
                for key, queue in sorted(self._queues.items()) if queue]
