"""kernel.core.refills on its own: the sporadic-server rules of seL4's sporadic.c, as
pure functions on a SchedContext (no machine, no kernel).

The examples use RISC-V's numbers (10 ticks a microsecond): MIN_BUDGET is 200 ticks
(2 × the 10 µs WCET), a 1 ms budget 10,000 ticks. Each expected refill list is worked
out by hand from seL4's rules in the test's comment.

The property test charges and wakes random sporadic contexts the way the kernel does
(a thread runs only from its head refill's release time on; a charge may overrun the
head, as a late timer or a long kernel entry makes it) and checks seL4's
REFILL_SANITY_CHECK after every step, plus what refill_budget_check and
refill_unblock_check assert: the head holds at least MIN_BUDGET.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import ABI_RISCV64
from kernel.core.refills import (
    MIN_REFILLS,
    budget_check,
    capacity,
    is_ready,
    is_sufficient,
    refill_new,
    unblock_check,
)
from kernel.model.mcs_time import max_release_time, min_budget_ticks
from kernel.model.sched_context import Refill, SchedContext
from tests.fuzzing import fuzzed, longer

MIN_BUDGET = min_budget_ticks(ABI_RISCV64)
MAX_RELEASE = max_release_time(ABI_RISCV64)
BUDGET = 10_000  # 1 ms
PERIOD = 100_000  # 10 ms


def _sporadic(max_refills: int = 4, budget: int = BUDGET, period: int = PERIOD,
              now: int = 0) -> SchedContext:
    sc = SchedContext(paddr=0x1000, size_bits=8)
    refill_new(sc, max_refills, budget, period, now)
    sc.sporadic = True
    return sc


def _charge(sc: SchedContext, usage: int) -> None:
    budget_check(sc, usage, MIN_BUDGET, MAX_RELEASE)


def test_min_budget_is_what_the_examples_assume() -> None:
    assert MIN_BUDGET == 200


# ---------------------------------------------------------------------------- refill_new


def test_refill_new_makes_the_whole_budget_usable_now() -> None:
    sc = _sporadic(max_refills=5, now=777)
    assert sc.refills == [Refill(777, BUDGET)]
    assert (sc.budget, sc.period, sc.max_refills) == (BUDGET, PERIOD, 5)
    assert is_ready(sc, 777) and not is_ready(sc, 776)
    assert capacity(sc, 0) == BUDGET and capacity(sc, BUDGET + 1) == 0


def test_a_round_robin_context_has_two_refills_the_second_empty() -> None:
    sc = SchedContext(paddr=0x1000, size_bits=7)
    refill_new(sc, MIN_REFILLS, BUDGET, 0, 50)
    assert sc.refills == [Refill(50, BUDGET), Refill(50, 0)]
    assert sc.period == 0 and sc.max_refills == MIN_REFILLS == 2


def test_refill_new_starts_again_from_scratch() -> None:
    sc = _sporadic()
    _charge(sc, 3000)
    refill_new(sc, 3, 5000, 20_000, 90_000)
    assert sc.refills == [Refill(90_000, 5000)] and sc.max_refills == 3


# -------------------------------------------------------------------------- budget_check


def test_charging_a_whole_single_refill_moves_it_one_period_on() -> None:
    sc = _sporadic()
    _charge(sc, BUDGET)
    assert sc.refills == [Refill(PERIOD, BUDGET)]


def test_a_partly_used_head_is_split_and_the_used_part_comes_back_a_period_later() -> None:
    sc = _sporadic()
    _charge(sc, 3000)
    # The head now starts where the usage ended; the 3000 used come back at 0 + period.
    assert sc.refills == [Refill(3000, 7000), Refill(PERIOD, 3000)]


def test_charges_in_pieces_merge_into_one_refill_a_period_later() -> None:
    sc = _sporadic()
    _charge(sc, 3000)
    _charge(sc, 2000)
    # The second piece comes back at 3000 + period, where the first one ends: merged.
    assert sc.refills == [Refill(5000, 5000), Refill(PERIOD, 5000)]
    _charge(sc, 5000)  # the rest of the head, whole: it goes to the tail, merged too
    assert sc.refills == [Refill(PERIOD, BUDGET)]


def test_a_charge_larger_than_the_head_uses_later_refills_too() -> None:
    sc = _sporadic()
    _charge(sc, 3000)  # [(3000, 7000), (P, 3000)]
    _charge(sc, 8000)
    # 7000 take the whole head (back at 3000 + P, merged with (P, 3000) which ends
    # there); the remaining 1000 come from that merged refill, which starts at P.
    assert sc.refills == [Refill(PERIOD + 1000, 9000), Refill(2 * PERIOD, 1000)]


def test_an_overrun_of_several_budgets_pushes_the_refill_several_periods_on() -> None:
    sc = _sporadic()
    _charge(sc, 2 * BUDGET + 500)
    # Two whole charges of the single refill (to P, then 2P), then 500 of it.
    assert sc.refills == [Refill(2 * PERIOD + 500, BUDGET - 500), Refill(3 * PERIOD, 500)]
    assert sum(r.amount for r in sc.refills) == BUDGET


def test_when_refills_are_full_the_tail_is_delayed_to_take_the_used_part() -> None:
    sc = _sporadic(max_refills=2)
    _charge(sc, 3000)  # [(3000, 7000), (P, 3000)]: full
    assert unblock_check(sc, 50_000)  # woken at 50,000: the head moves there
    assert sc.refills == [Refill(50_000, 7000), Refill(PERIOD, 3000)]
    _charge(sc, 2000)
    # 2000 would come back at 50,000 + P, apart from the tail (which ends at P + 3000)
    # and with no room for a third refill: the tail grows to 5000 and is delayed to end
    # where the new refill would have ended.
    assert sc.refills == [Refill(52_000, 5000), Refill(50_000 + PERIOD + 2000 - 5000, 5000)]


def test_a_head_left_below_min_budget_is_merged_into_the_next_refill() -> None:
    sc = _sporadic()
    _charge(sc, BUDGET - 100)
    # (9900, 100) is below MIN_BUDGET: it joins (P, 9900), which starts 100 earlier so
    # that it ends no later than before.
    assert sc.refills == [Refill(PERIOD - 100, BUDGET)]
    assert is_sufficient(sc, 0, MIN_BUDGET)


def test_a_head_at_exactly_min_budget_stays() -> None:
    sc = _sporadic()
    _charge(sc, BUDGET - MIN_BUDGET)
    assert sc.refills == [Refill(BUDGET - MIN_BUDGET, MIN_BUDGET),
                          Refill(PERIOD, BUDGET - MIN_BUDGET)]


def test_nothing_charged_changes_nothing() -> None:
    sc = _sporadic()
    _charge(sc, 3000)
    before = list(sc.refills)
    _charge(sc, 0)
    assert sc.refills == before


def test_a_head_past_max_release_time_is_not_moved() -> None:
    sc = _sporadic(now=MAX_RELEASE)
    _charge(sc, 3000)
    # seL4 stops pushing refills into the future there, so that times cannot overflow.
    assert sc.refills == [Refill(MAX_RELEASE, BUDGET)]


# ------------------------------------------------------------------------- unblock_check


def test_unblock_leaves_a_round_robin_context_alone() -> None:
    sc = SchedContext(paddr=0x1000, size_bits=7)
    refill_new(sc, MIN_REFILLS, BUDGET, 0, 0)
    assert not unblock_check(sc, 5000)
    assert sc.refills == [Refill(0, BUDGET), Refill(0, 0)]


def test_unblock_before_the_head_is_released_changes_nothing() -> None:
    sc = _sporadic()
    _charge(sc, BUDGET)  # [(P, BUDGET)]
    assert not unblock_check(sc, PERIOD - 1)
    assert sc.refills == [Refill(PERIOD, BUDGET)]


def test_unblock_moves_the_head_to_now_and_merges_what_is_ready_by_its_end() -> None:
    sc = _sporadic()
    sc.refills = [Refill(0, 3000), Refill(4000, 2000), Refill(60_000, 5000)]
    assert unblock_check(sc, 1500)
    # (1500, 3000) ends at 4500, after (4000, 2000) is released: one refill of 5000
    # from 1500 on; (60,000, 5000) is released after 6500 and stays apart.
    assert sc.refills == [Refill(1500, 5000), Refill(60_000, 5000)]


def test_unblock_merges_a_refill_released_exactly_at_the_head_end() -> None:
    sc = _sporadic()
    sc.refills = [Refill(0, 3000), Refill(4000, 7000)]
    assert unblock_check(sc, 1000)
    assert sc.refills == [Refill(1000, BUDGET)]


# ---------------------------------------------------------------------- the invariants


def _assert_sane(sc: SchedContext) -> None:
    """seL4's REFILL_SANITY_CHECK for a sporadic context, and refill_sufficient(sc, 0)."""
    refills = sc.refills
    assert sum(r.amount for r in refills) == sc.budget, refills
    assert 1 <= len(refills) <= sc.max_refills, refills
    for here, after in zip(refills, refills[1:], strict=False):
        assert here.time + here.amount <= after.time, refills
    assert refills[0].amount >= MIN_BUDGET, refills


STEP = st.one_of(
    st.tuples(st.just("run"), st.one_of(st.integers(0, 3 * BUDGET),
                                        st.integers(0, 2 * MIN_BUDGET))),
    st.tuples(st.just("wake"), st.integers(0, 2 * PERIOD)),
)


@fuzzed(300)
@given(
    max_refills=st.integers(MIN_REFILLS, 8),
    budget=st.integers(MIN_BUDGET, BUDGET),
    period_extra=st.integers(1, 2 * PERIOD),
    steps=st.lists(STEP, max_size=longer(40)),
)
def test_random_charges_and_wakes_keep_the_refill_invariants(
        max_refills: int, budget: int, period_extra: int,
        steps: list[tuple[str, int]]) -> None:
    sc = _sporadic(max_refills, budget, budget + period_extra)
    _assert_sane(sc)
    now = 0
    for kind, amount in steps:
        if kind == "run":
            # It runs from its head refill's release on, for `amount` ticks, then the
            # kernel charges them (seL4's commitTime or chargeBudget).
            now = max(now, sc.refills[0].time) + amount
            _charge(sc, amount)
        else:
            # It blocked for `amount` ticks and wakes (an IPC or a signal).
            now += amount
            unblock_check(sc, now)
        _assert_sane(sc)


# Small amounts as often as large ones: a few ticks of slack between refills is where
# a merge that releases time too early shows.
FAIR_STEP = st.one_of(
    st.tuples(st.just("run"), st.one_of(st.integers(0, 10), st.integers(0, BUDGET))),
    st.tuples(st.just("wake"), st.one_of(st.integers(0, 10), st.integers(0, 2 * PERIOD))),
)


@fuzzed(1000)
@given(
    max_refills=st.integers(MIN_REFILLS, 4),
    budget=st.one_of(st.integers(MIN_BUDGET, MIN_BUDGET + 20), st.integers(MIN_BUDGET, BUDGET)),
    period_extra=st.one_of(st.integers(1, 20), st.integers(1, 2 * PERIOD)),
    steps=st.lists(FAIR_STEP, max_size=longer(40)),
)
def test_a_sporadic_context_never_runs_more_than_its_budget_in_any_period(
        max_refills: int, budget: int, period_extra: int,
        steps: list[tuple[str, int]]) -> None:
    """The sporadic-server guarantee the refills exist for: a thread alone on the
    processor, running from each release of its head refill for no longer than the
    refill holds (the timer stops it) and sometimes blocking, runs at most ``budget``
    in any window of one period. (With other threads delaying it, the guarantee is
    about release times instead: a refill comes back a period after its release.)"""
    period = budget + period_extra
    sc = _sporadic(max_refills, budget, period)
    now = 0
    runs: list[tuple[int, int]] = []  # (start, length)
    for kind, amount in steps:
        if kind == "run":
            head = sc.refills[0]
            now = max(now, head.time)
            used = min(amount, head.amount)
            runs.append((now, used))
            now += used
            _charge(sc, used)
        else:
            now += amount
            unblock_check(sc, now)
    for start, _ in runs:
        end = start + period
        in_window = sum(max(0, min(s + n, end) - max(s, start)) for s, n in runs)
        assert in_window <= budget, (start, runs, sc.refills)
