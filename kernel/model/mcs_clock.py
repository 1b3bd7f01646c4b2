"""The MCS kernel's time and budget state (seL4's ksCurTime, ksConsumed, ksCurSC,
ksReprogram and ksReleaseQueue): plain data, one per MCS kernel.

Time is in timer ticks, one per guest instruction retired, plus the time idle periods
skip (:mod:`kernel.model.mcs_time`); the machine keeps the clock and the kernel reads it
at each kernel entry into :attr:`MCSClock.now`. The operations are in
:mod:`kernel.core.mcs_sched`.

Invariants (rule ``mcs_clock`` of ``kernel.views.invariants``): the release queue holds
exactly the threads whose ``in_release_queue`` is set, each with a scheduling context,
none in a ready queue, ordered by the release time of their head refills (ties in the
order they were queued); ``sc`` is the current thread's context at every kernel exit,
or None when no thread runs.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, final

from mypy_extensions import mypyc_attr

from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    from kernel.model.sched_context import SchedContext
    from kernel.model.tcb import TCB

__all__ = ["MCSClock"]


@final
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True, eq=False)
class MCSClock(Persistent):
    now: int = 0
    """seL4's ksCurTime: the time of the latest kernel entry, in ticks."""
    consumed: int = 0
    """seL4's ksConsumed: ticks used by ``sc`` since they were last charged to it."""
    sc: SchedContext | None = None
    """seL4's ksCurSC: the context the time is being charged to (None: the idle
    thread's, which is charged nothing)."""
    reprogram: bool = False
    """seL4's ksReprogram: the timer must be set again at this kernel exit."""
    deadline: int = 0
    """When the timer fires next (what the latest reprogramming asked for)."""
    release_queue: list[TCB] = field(default_factory=list)
    """seL4's ksReleaseQueue: threads waiting for their head refill's release time,
    soonest first."""
