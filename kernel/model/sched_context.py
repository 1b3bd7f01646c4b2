"""MCS scheduling contexts: a budget of CPU time and the refills that replenish it.

A scheduling context (seL4's sched_context_t) is what lets a thread run in the MCS
kernel: a thread without one never runs unless another thread's context is lent to it
along a Call (a passive server). The context holds a budget of time per period as a
list of *refills*, each an amount of time usable from a release time on (seL4's sporadic
servers, Lyons et al. 2018). Time is in timer ticks (:mod:`kernel.model.mcs_time`).

The data lives here; SchedControl and SchedContext invocations are in
:mod:`kernel.objects.sched_context`.

Invariants (rule ``sched_context`` of ``kernel.views.invariants``):
- ``tcb`` is a thread whose ``sched_context`` is this context, and the other way round;
- a configured context (``refills`` not empty) has at most ``max_refills`` refills whose
  amounts sum to its budget; an unconfigured one has none (it cannot run anything);
- ``max_refills`` is at most :func:`refill_absolute_max` of its size.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Final, final

from mypy_extensions import mypyc_attr

from kernel.abi.arch import ArchABI
from kernel.abi.constants import CORE_SCHED_CONTEXT_BYTES, MIN_REFILLS, REFILL_SIZE_BYTES
from kernel.model.mcs_time import us_to_ticks
from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    # Types only: a context names the thread it is bound to and the thread names it.
    from kernel.model.notification import Notification
    from kernel.model.reply_object import ReplyObject
    from kernel.model.tcb import TCB

__all__ = ["Refill", "SchedContext", "refill_absolute_max", "take_consumed_us"]

_CORE_FIELDS_BYTES: Final = CORE_SCHED_CONTEXT_BYTES - MIN_REFILLS * REFILL_SIZE_BYTES
"""sizeof(sched_context_t) without its refills: what a context of 2^n bytes has left for
refills is 2^n minus this, 16 bytes each (seL4's refill_absolute_max)."""


def refill_absolute_max(size_bits: int) -> int:
    """How many refills a scheduling context of 2^``size_bits`` bytes can hold (the
    minimum two included)."""
    return ((1 << size_bits) - _CORE_FIELDS_BYTES) // REFILL_SIZE_BYTES


@dataclass(frozen=True, slots=True)
class Refill:
    """``amount`` ticks of budget usable from tick ``time`` on (seL4's refill_t)."""

    time: int
    amount: int


@final
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True, eq=False)
class SchedContext(Persistent):
    """A fresh context (from retype) is unconfigured: no refills, period 0, unbound.

    ``period == 0`` marks a round-robin context (seL4's isRoundRobin; the root task's is
    one): its budget is a time slice renewed whenever it runs out, with no release time.
    """

    paddr: int
    size_bits: int
    period: int = 0
    budget: int = 0
    """The sum of the refills once configured (kept for views and the invariant)."""
    max_refills: int = 0
    refills: list[Refill] = field(default_factory=list)
    consumed: int = 0
    """Ticks charged since the last SchedContext_Consumed or timeout fault."""
    badge: int = 0
    """Sent with timeout faults raised on this context."""
    sporadic: bool = False
    """seL4_SchedContext_Sporadic: refills follow the sporadic-server rules."""
    core: int = 0
    tcb: TCB | None = None
    notification: Notification | None = None
    yield_from: TCB | None = None
    """The thread that yielded to this context (SchedContext_YieldTo), if any."""
    reply: ReplyObject | None = None
    """seL4's scReply: the reply object at the head of the call stack this context was
    lent along (its ``next`` is this context), if it is lent."""

    @property
    def is_round_robin(self) -> bool:
        return self.period == 0

    @property
    def configured(self) -> bool:
        return bool(self.refills)


def take_consumed_us(abi: ArchABI, sc: SchedContext) -> int:
    """seL4's schedContext_updateConsumed: the time ``sc`` was charged since the last
    call, in microseconds (rounded down), and the count starts again."""
    ticks_per_ms = us_to_ticks(abi, 1000)
    consumed = sc.consumed * 1000 // ticks_per_ms
    sc.consumed = 0
    return consumed
