"""Sporadic-server refills: how a scheduling context's budget is spent and replenished
(seL4's sporadic.c, after Lyons et al., "Scheduling-context capabilities", 2018).

A configured context holds its budget as refills (``sc.refills``, head first): each an
amount of time usable from its release time on. Running charges the head refill; what
was used comes back one period after it was released, as a new refill at the tail
(:func:`budget_check`). A thread that blocked and wakes later may use its head refill
from the wake time on (:func:`unblock_check`). A round-robin context (period 0) keeps
exactly two refills: the head is what is left of the time slice, the tail what was used
of it; running out swaps them back into one full head (:mod:`kernel.core.mcs_sched`).

Invariants, at every kernel exit (rule ``sched_context`` of ``kernel.views.invariants``):
the amounts sum to the budget; there are at most ``max_refills``; every refill of a
sporadic (period > 0) context ends no later than the next one starts; the head holds at
least MIN_BUDGET.

Everything here is integer arithmetic on timer ticks (:mod:`kernel.model.mcs_time`):
the same run gives the same refills every time.
"""

from __future__ import annotations

from typing import Final

from kernel.model.sched_context import Refill, SchedContext

__all__ = [
    "budget_check",
    "capacity",
    "is_ready",
    "is_sufficient",
    "refill_new",
    "refill_update",
    "unblock_check",
]

MIN_REFILLS: Final = 2
"""seL4's MIN_REFILLS: a round-robin context has exactly these two."""


def capacity(sc: SchedContext, usage: int) -> int:
    """seL4's refill_capacity: what the head refill has left after ``usage`` (0 if
    ``usage`` exceeds it)."""
    head = sc.refills[0].amount
    return 0 if usage > head else head - usage


def is_sufficient(sc: SchedContext, usage: int, min_budget: int) -> bool:
    """seL4's refill_sufficient: the head refill still holds MIN_BUDGET after ``usage``."""
    return capacity(sc, usage) >= min_budget


def is_ready(sc: SchedContext, now: int) -> bool:
    """seL4's refill_ready: the head refill may be used at ``now``."""
    return sc.refills[0].time <= now


def refill_new(sc: SchedContext, max_refills: int, budget: int, period: int, now: int) -> None:
    """seL4's refill_new: the whole ``budget`` usable from ``now`` as one refill (a
    round-robin context, ``period`` 0, also gets its empty tail), at most ``max_refills``
    of them, replenished every ``period``."""
    sc.period = period
    sc.budget = budget
    sc.max_refills = max_refills
    sc.refills = [Refill(now, budget)]
    if period == 0:
        sc.refills.append(Refill(now, 0))


def refill_update(sc: SchedContext, period: int, budget: int, max_refills: int,
                  now: int) -> None:
    """seL4's refill_update, for a context in use: keep only the head refill (released
    now if it was ready); cut it to the new ``budget``, or schedule the rest of the
    budget one ``period`` after it, so that the new bandwidth holds from now on even
    briefly."""
    head = sc.refills[0]
    if head.time <= now:
        head = Refill(now, head.amount)
    sc.period, sc.budget, sc.max_refills = period, budget, max_refills
    if head.amount >= budget:
        sc.refills = [Refill(head.time, budget)]
        if period == 0:
            sc.refills.append(Refill(head.time, 0))
    else:
        sc.refills = [head, Refill(head.time + period, budget - head.amount)]


def _schedule_used(sc: SchedContext, used: Refill) -> None:
    """Add ``used`` (time to come back one period after it was taken) at the tail:
    merged into the tail if they touch or overlap, appended if there is room, else
    merged by delaying the tail so that it ends where ``used`` would."""
    refills = sc.refills
    tail = refills[-1]
    if tail.time + tail.amount >= used.time:
        refills[-1] = Refill(tail.time, tail.amount + used.amount)
    elif len(refills) < sc.max_refills:
        refills.append(used)
    else:
        refills[-1] = Refill(used.time - tail.amount, tail.amount + used.amount)


def budget_check(sc: SchedContext, usage: int, min_budget: int, max_release_time: int) -> None:
    """seL4's refill_budget_check: charge ``usage`` ticks to a sporadic context.

    Whole head refills the usage covers move one period on (to the tail); a partly used
    head is split, its used part coming back one period after its release; finally a
    head left with less than ``min_budget`` is merged into the next refill (which is
    delayed by as much, so that it ends no later)."""
    refills = sc.refills
    period = sc.period
    while refills[0].amount <= usage and refills[0].time < max_release_time:
        head = refills[0]
        usage -= head.amount
        if len(refills) == 1:
            refills[0] = Refill(head.time + period, head.amount)
        else:
            del refills[0]
            _schedule_used(sc, Refill(head.time + period, head.amount))
    head = refills[0]
    if usage > 0 and head.time < max_release_time:
        refills[0] = Refill(head.time + usage, head.amount - usage)
        _schedule_used(sc, Refill(head.time + period, usage))
    while refills[0].amount < min_budget:
        gone = refills.pop(0)
        nxt = refills[0]
        refills[0] = Refill(nxt.time - gone.amount, nxt.amount + gone.amount)


def unblock_check(sc: SchedContext, now: int) -> bool:
    """seL4's refill_unblock_check: a sporadic context whose thread wakes at ``now``
    with its head refill ready uses it from ``now`` on, merged with every later refill
    that has become ready by the time it would end. True if anything changed (the
    timer must then be reprogrammed)."""
    if sc.period == 0 or sc.refills[0].time > now:
        return False
    refills = sc.refills
    refills[0] = Refill(now, refills[0].amount)
    while len(refills) > 1 and refills[1].time <= refills[0].time + refills[0].amount:
        head = refills.pop(0)
        refills[0] = Refill(head.time, refills[0].amount + head.amount)
    return True
