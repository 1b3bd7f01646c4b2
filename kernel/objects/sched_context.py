"""MCS scheduling contexts and SchedControl: boot's share, and their invocations.

Boot (:func:`boot_sched_context`, :func:`sched_control_caps`): the root task runs on a
scheduling context of seL4_MinSchedContextBits whose cap is in slot 14
(seL4_CapInitThreadSC), a round-robin context with CONFIG_BOOT_THREAD_TIME_SLICE of
budget; one SchedControl cap per core (capsule has one) follows the extra bootinfo
frames and is named by the bootinfo's ``schedcontrol`` region (abi/boot.md).

Decode order and errors (seL4's decodeSchedControl_ConfigureFlags and
decodeSchedContextInvocation; times in microseconds, ``MIN`` = MIN_BUDGET_US (20),
``MAX`` = MAX_PERIOD_US of the platform):

- SchedControl ConfigureFlags: no extra cap -> TruncatedMessage; length < 5 ->
  TruncatedMessage; budget > MAX, period > MAX, budget below MIN_BUDGET in ticks, period
  below it -> RangeError(MIN, MAX); budget > period -> RangeError(MIN, period); extra
  cap 0 not a scheduling context -> InvalidCapability(1); extra refills above what the
  context's size holds -> RangeError(0, that many). Budget = period makes a round-robin
  context (period 0).
- SchedContext Consumed: no check; replies with the consumed time (µs) and restarts the
  count. Bind (extra cap 0, else TruncatedMessage): a TCB cap -> IllegalOperation if the
  context or the thread is bound already, or the thread is blocked and the context not
  released; a notification cap -> IllegalOperation if either is bound already; any other
  cap -> InvalidCapability(1). UnbindObject (extra cap 0, else TruncatedMessage): a TCB
  or notification cap not the bound one -> IllegalOperation, the caller's own context
  -> IllegalOperation, another cap -> InvalidCapability(1). Unbind: the caller's own
  context -> IllegalOperation. YieldTo: an unbound context, the caller's own, or a
  thread of priority above the caller's MCP -> IllegalOperation.
- Any other label: IllegalOperation.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import (
    BOOT_THREAD_TIME_SLICE_MS,
    MIN_REFILLS,
    MIN_SCHED_CONTEXT_BITS,
    SchedContextFlag,
)
from kernel.abi.labels import label_table
from kernel.core.mcs_sched import clock_of, commit_time, is_schedulable, release_remove, resume
from kernel.core.refills import refill_new, refill_update
from kernel.core.sched_contexts import (
    bind_ntfn,
    bind_tcb,
    complete_yield_to,
    is_released,
    unbind_ntfn,
    unbind_reply,
    unbind_tcb,
)
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import (
    Cap,
    NotificationCap,
    SchedContextCap,
    SchedControlCap,
    ThreadCap,
)
from kernel.model.errors import (
    IllegalOperation,
    InvalidCapability,
    KernelBug,
    RangeError,
    TruncatedMessage,
)
from kernel.model.mcs_time import max_period_us, min_budget_ticks, min_budget_us, us_to_ticks
from kernel.model.notification import Notification
from kernel.model.sched_context import SchedContext, refill_absolute_max, take_consumed_us
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState
from kernel.records import dataclass

__all__ = [
    "SchedContextBind",
    "SchedContextConsumed",
    "SchedContextUnbind",
    "SchedContextUnbindObject",
    "SchedContextYieldTo",
    "SchedControlConfigure",
    "boot_sched_context",
    "decode_sched_context_invocation",
    "decode_sched_control_invocation",
    "is_blocked",
    "perform_bind",
    "perform_configure",
    "perform_consumed",
    "perform_unbind",
    "perform_unbind_object",
    "perform_yield_to",
    "sched_control_caps",
]

NUM_NODES: Final = 1
"""Processors capsule models: one SchedControl cap each."""


def boot_sched_context(kernel: KernelState, paddr: int, tcb: TCB) -> SchedContextCap:
    """Make the root task's scheduling context at ``paddr`` (2^seL4_MinSchedContextBits
    bytes of zeroed RAM boot reserved), bind it to ``tcb`` and return the cap for slot
    seL4_CapInitThreadSC (seL4's configure_sched_context at boot)."""
    sc = SchedContext(paddr, MIN_SCHED_CONTEXT_BITS)
    kernel.add_object(sc)
    budget = us_to_ticks(kernel.abi, BOOT_THREAD_TIME_SLICE_MS * 1000)
    refill_new(sc, MIN_REFILLS, budget, 0, clock_of(kernel).now)
    sc.tcb = tcb
    tcb.sched_context = sc
    return SchedContextCap(paddr, MIN_SCHED_CONTEXT_BITS)


def sched_control_caps() -> list[Cap]:
    """The SchedControl caps boot hands the root task, core 0 first."""
    return [SchedControlCap(core) for core in range(NUM_NODES)]


# --- decoded invocations --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SchedControlConfigure:
    """ConfigureFlags: ``budget`` and ``period`` in ticks (budget <= period, both at least
    MIN_BUDGET), ``max_refills`` = extra refills + 2 (fits the context)."""

    sc: SchedContext
    core: int
    budget: int
    period: int
    max_refills: int
    badge: int
    sporadic: bool


@dataclass(frozen=True, slots=True, eq=False)
class SchedContextConsumed:
    sc: SchedContext


@dataclass(frozen=True, slots=True, eq=False)
class SchedContextBind:
    """Bind ``sc`` (unbound on that side) to a thread or a notification (unbound)."""

    sc: SchedContext
    target: TCB | Notification


@dataclass(frozen=True, slots=True, eq=False)
class SchedContextUnbindObject:
    """Unbind ``target``, the thread or notification bound to ``sc``."""

    sc: SchedContext
    target: TCB | Notification


@dataclass(frozen=True, slots=True, eq=False)
class SchedContextUnbind:
    """Unbind everything from ``sc`` (not the caller's own context)."""

    sc: SchedContext


@dataclass(frozen=True, slots=True, eq=False)
class SchedContextYieldTo:
    """Yield to the thread bound to ``sc`` (bound, not the caller, priority within the
    caller's MCP)."""

    sc: SchedContext


def is_blocked(tcb: TCB) -> bool:
    """seL4's isBlocked: waiting on an endpoint, a notification or a reply."""
    return tcb.state in (ThreadState.BLOCKED_ON_RECEIVE, ThreadState.BLOCKED_ON_SEND,
                         ThreadState.BLOCKED_ON_NOTIFICATION, ThreadState.BLOCKED_ON_REPLY)


# --- decode ---------------------------------------------------------------------------


_CONFIGURE_ARGS: Final = 5
"""budget, period (one word each on a 64-bit kernel), extra refills, badge, flags."""


def decode_sched_control_invocation(kernel: KernelState, slot: Slot,
                                    invocation: InvocationArgs) -> SchedControlConfigure:
    """Decode an invocation of the SchedControl cap in ``slot`` (module docstring)."""
    cap = slot.cap
    if not isinstance(cap, SchedControlCap):
        raise KernelBug("decode_sched_control_invocation on another cap")
    if invocation.label != label_table(kernel.arch, True)["SchedControlConfigureFlags"]:
        raise IllegalOperation()
    args, extra = invocation.words, invocation.extra
    if not extra or len(args) < _CONFIGURE_ARGS:
        raise TruncatedMessage()
    abi = kernel.abi
    low, high = min_budget_us(), max_period_us(abi)
    budget_us, period_us = args[0], args[1]
    if budget_us > high:
        raise RangeError(low, high)
    budget = us_to_ticks(abi, budget_us)
    if period_us > high:
        raise RangeError(low, high)
    period = us_to_ticks(abi, period_us)
    if budget < min_budget_ticks(abi) or period < min_budget_ticks(abi):
        raise RangeError(low, high)
    if budget > period:
        raise RangeError(low, period_us)
    target = extra[0].cap
    if not isinstance(target, SchedContextCap):
        raise InvalidCapability(1)
    most = refill_absolute_max(target.size_bits) - MIN_REFILLS
    if args[2] > most:
        raise RangeError(0, most)
    sc = kernel.object_at(target.paddr, SchedContext)
    sporadic = bool(args[4] & SchedContextFlag.seL4_SchedContext_Sporadic)
    return SchedControlConfigure(sc, cap.core, budget, period, args[2] + MIN_REFILLS,
                                 args[3], sporadic)


def _bound_object(kernel: KernelState, cap: Cap) -> TCB | Notification | None:
    """The thread or notification a TCB or notification cap names; None otherwise."""
    if isinstance(cap, ThreadCap):
        return kernel.object_at(cap.paddr, TCB)
    if isinstance(cap, NotificationCap):
        return kernel.object_at(cap.paddr, Notification)
    return None


def decode_sched_context_invocation(kernel: KernelState, slot: Slot,
                                    invocation: InvocationArgs) -> object:
    """Decode an invocation of the SchedContext cap in ``slot`` (module docstring)."""
    cap = slot.cap
    if not isinstance(cap, SchedContextCap):
        raise KernelBug("decode_sched_context_invocation on another cap")
    caller = kernel.current
    assert caller is not None
    sc = kernel.object_at(cap.paddr, SchedContext)
    labels = label_table(kernel.arch, True)
    label, extra = invocation.label, invocation.extra
    if label == labels["SchedContextConsumed"]:
        return SchedContextConsumed(sc)
    if label == labels["SchedContextBind"]:
        if not extra:
            raise TruncatedMessage()
        target = _bound_object(kernel, extra[0].cap)
        if isinstance(target, TCB):
            if sc.tcb is not None or target.sched_context is not None:
                raise IllegalOperation()
            if is_blocked(target) and not is_released(kernel, sc):
                raise IllegalOperation()
        elif isinstance(target, Notification):
            if sc.notification is not None or target.sched_context is not None:
                raise IllegalOperation()
        else:
            raise InvalidCapability(1)
        return SchedContextBind(sc, target)
    if label == labels["SchedContextUnbindObject"]:
        if not extra:
            raise TruncatedMessage()
        target = _bound_object(kernel, extra[0].cap)
        if isinstance(target, TCB):
            if sc.tcb is not target or target is caller:
                raise IllegalOperation()
        elif isinstance(target, Notification):
            if sc.notification is not target:
                raise IllegalOperation()
        else:
            raise InvalidCapability(1)
        return SchedContextUnbindObject(sc, target)
    if label == labels["SchedContextUnbind"]:
        if sc.tcb is caller:
            raise IllegalOperation()
        return SchedContextUnbind(sc)
    if label == labels["SchedContextYieldTo"]:
        tcb = sc.tcb
        if tcb is None or tcb is caller or tcb.priority > caller.mcp:
            raise IllegalOperation()
        return SchedContextYieldTo(sc)
    raise IllegalOperation()


# --- perform --------------------------------------------------------------------------


def perform_configure(kernel: KernelState, inv: SchedControlConfigure) -> list[int]:
    """seL4's invokeSchedControl_ConfigureFlags: new refills (a round-robin context when
    budget = period; a running thread's context keeps its bandwidth through
    refill_update), the badge and the sporadic flag; a runnable bound thread goes back
    to its ready queue."""
    sc, tcb = inv.sc, inv.sc.tcb
    clock = clock_of(kernel)
    if tcb is not None:
        release_remove(kernel, tcb)
        kernel.scheduler.dequeue(tcb)
        if clock.sc is sc:
            commit_time(kernel)  # charge what it used under the old parameters
    if inv.budget == inv.period:
        refill_new(sc, MIN_REFILLS, inv.budget, 0, clock.now)
    elif sc.max_refills > 0 and tcb is not None and tcb.state.runnable:
        refill_update(sc, inv.period, inv.budget, inv.max_refills, clock.now)
    else:
        refill_new(sc, inv.max_refills, inv.budget, inv.period, clock.now)
    sc.core = inv.core
    sc.badge = inv.badge
    sc.sporadic = inv.sporadic
    if tcb is not None:
        resume(kernel, sc)
        if tcb is kernel.current:
            kernel.reschedule_required()
        elif tcb.state.runnable:
            kernel.make_runnable(tcb)
    return []


def perform_consumed(kernel: KernelState, inv: SchedContextConsumed) -> list[int]:
    """seL4's invokeSchedContext_Consumed: the reply is the consumed time (µs)."""
    return [take_consumed_us(kernel.abi, inv.sc)]


def perform_bind(kernel: KernelState, inv: SchedContextBind) -> list[int]:
    if isinstance(inv.target, TCB):
        bind_tcb(kernel, inv.sc, inv.target)
    else:
        bind_ntfn(inv.sc, inv.target)
    return []


def perform_unbind_object(kernel: KernelState, inv: SchedContextUnbindObject) -> list[int]:
    if isinstance(inv.target, TCB):
        unbind_tcb(kernel, inv.sc)
    else:
        unbind_ntfn(inv.sc)
    return []


def perform_unbind(kernel: KernelState, inv: SchedContextUnbind) -> list[int]:
    """seL4's invokeSchedContext_Unbind: the thread, the notification and the call
    stack the context was lent along."""
    unbind_tcb(kernel, inv.sc)
    unbind_ntfn(inv.sc)
    unbind_reply(inv.sc)
    return []


def perform_yield_to(kernel: KernelState, inv: SchedContextYieldTo) -> list[int]:
    """seL4's invokeSchedContext_YieldTo: a schedulable bound thread of lower priority
    than the caller goes to the front of its queue and the caller gets the context's
    consumed time at once; one of the caller's priority or above runs next, before the
    caller, whose reply (the consumed time, then) is written when it runs again
    (``complete_yield_to``): the empty reply returned here stands until then."""
    sc = inv.sc
    caller = kernel.current
    assert caller is not None
    if sc.yield_from is not None:
        complete_yield_to(kernel, sc.yield_from)
    resume(kernel, sc)
    tcb = sc.tcb
    if tcb is not None and is_schedulable(tcb):
        scheduler = kernel.scheduler
        scheduler.dequeue(tcb)
        if tcb.priority < caller.priority:
            scheduler.append_front(tcb)
        else:
            caller.yield_to = sc
            sc.yield_from = caller
            scheduler.append_front(caller)
            scheduler.append_front(tcb)
            kernel.reschedule_required()
            return []
    return [take_consumed_us(kernel.abi, sc)]
