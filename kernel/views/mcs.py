"""MCS state as a picture: scheduling contexts, reply objects and their call stacks.

:func:`mcs_view` reads an MCS kernel (no mutation) into frozen records, which the cspace
view (:mod:`kernel.views.render`), the debugger's ``sched`` and ``threads`` commands and
the trace (:func:`context_holders`, :func:`context_moves`) show; :func:`mcs_lines` is
their text form, ``as_plain`` (:mod:`kernel.views.json_form`) their JSON form.

What a person debugging an MCS system wants to see, and where it comes from:

- a scheduling context (:class:`kernel.model.sched_context.SchedContext`): budget and
  period in timer ticks and in microseconds (``ticks * 10**6 / timer_hz``, the inverse
  of :func:`kernel.model.mcs_time.us_to_ticks`, exact or with a fraction), its refills
  (``amount@time``: ``amount`` ticks usable from tick ``time`` on), consumed, badge,
  the sporadic flag, the thread running on it now (``sc.tcb``: its own thread, or the
  passive server it is lent to), the bound notification, the thread that yielded to it,
  and, when it is lent, its call stack;
- a call stack (seL4's scReply and the reply objects' replyPrev / replyNext): the reply
  object on top (``sc.reply``, the most recent Call) and each one below it (``prev``)
  down to the first Call, each with the caller blocked on it. The context goes back
  along it one reply at a time: to the top's caller first, to the bottom's last (the
  thread the context came from);
- a reply object (:class:`kernel.model.reply_object.ReplyObject`): the thread it holds
  (``tcb``) and whether that thread waits on it for a reply (BlockedOnReply) or is the
  receiver blocked receiving with it (BlockedOnReceive); its neighbours on the call
  stack (``prev``, and ``next``: the next reply object or, on top, the context);
- a thread: the context it runs on (or none: passive), whether it is the context's own
  or lent to it, the reply object it is blocked with, and whether it is in the release
  queue (``kernel.release_queue``, a list of TCBs by release time).

Invariants relied on (rules ``sched_context`` and ``reply`` of
:mod:`kernel.views.invariants`): a reply object is on at most one call stack, so a walk
of ``prev`` ends. The walks still stop at a reply object met twice, so that a broken
kernel shows a cut stack rather than hanging the view that would show the bug.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field
from fractions import Fraction
from typing import Final

from kernel.abi.arch import ArchABI
from kernel.kernel import Kernel
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = [
    "ContextMove", "McsView", "RefillView", "ReplyView", "SchedContextView", "StackEntry", "ThreadMcsView",
    "call_stack_line", "context_holders", "context_moves", "format_moves", "mcs_lines",
    "mcs_view", "reply_line", "reply_view", "sched_context_line", "sched_context_view",
    "thread_mcs", "thread_note", "ticks_to_us",
]

_US_PER_S: Final = 1_000_000


def ticks_to_us(abi: ArchABI, ticks: int) -> int | float:
    """``ticks`` timer ticks in microseconds: an int when whole, else a float (62.5 MHz
    has 62.5 ticks to the microsecond)."""
    us = Fraction(ticks * _US_PER_S, abi.timer_hz)
    return int(us) if us.denominator == 1 else float(us)


@dataclass(frozen=True, slots=True)
class RefillView:
    """``amount`` ticks of budget usable from tick ``time`` on."""

    time: int
    amount: int


@dataclass(frozen=True, slots=True)
class StackEntry:
    """One reply object of a call stack and the thread that called through it."""

    reply: int
    caller: str | None
    caller_tcb: int | None
    caller_state: str | None


@dataclass(frozen=True, slots=True)
class SchedContextView:
    """A scheduling context. Times are ticks; ``*_us`` the same in microseconds.
    ``refills`` are in the kernel's order, the head (the next to use) first. ``thread`` is the
    thread running on it now (None: unbound); ``call_stack`` is empty unless the context
    is lent, and then lists the reply objects from the top (the last Call) down, so that
    ``call_stack[-1].caller`` is the thread it was lent by first."""

    paddr: int
    size_bits: int
    budget: int
    budget_us: int | float
    period: int
    period_us: int | float
    refills: list[RefillView]
    max_refills: int
    consumed: int
    consumed_us: int | float
    badge: int
    sporadic: bool
    core: int
    thread: str | None
    thread_tcb: int | None
    notification: int | None
    yield_from: str | None
    call_stack: list[StackEntry]


@dataclass(frozen=True, slots=True)
class ReplyView:
    """A reply object. ``thread`` holds it: the caller waiting on it
    (``thread_state`` BlockedOnReply) or the receiver receiving with it
    (BlockedOnReceive); None when idle. ``prev`` / ``next`` are its neighbours on a call
    stack (``next_is_sched_context``: ``next`` is the context lent along that Call, this
    object is on top); ``sched_context`` the context whose call stack it is on."""

    paddr: int
    thread: str | None
    thread_tcb: int | None
    thread_state: str | None
    prev: int | None
    next: int | None
    next_is_sched_context: bool
    sched_context: int | None


@dataclass(frozen=True, slots=True)
class ThreadMcsView:
    """A thread's MCS state: the context it runs on (None: none), ``lent_by`` the
    thread that context was first lent by (None: its own, or none), the reply object it
    is blocked with, ``lent_along`` the context whose call stack that reply object is on
    (the thread's Call took it along), and whether it is in the release queue."""

    sched_context: int | None
    lent_by: str | None
    reply: int | None
    lent_along: int | None
    in_release_queue: bool


@dataclass(frozen=True, slots=True)
class McsView:
    """Every scheduling context and reply object (by address) and the release queue
    (thread names, in queue order)."""

    sched_contexts: list[SchedContextView]
    replies: list[ReplyView]
    release_queue: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ContextMove:
    """A context that changed threads during one kernel entry (None: no thread)."""

    sched_context: int
    before: str | None
    after: str | None
    lent: bool = False
    """After the move the context is lent along a call stack."""
    by: str | None = None
    """When lent: the thread at the bottom of the stack, which it was first lent by."""


# --- reading kernel state ----------------------------------------------------------------


def _call_stack(sc: SchedContext) -> list[ReplyObject]:
    """The reply objects of ``sc``'s call stack, top (``sc.reply``) first."""
    stack: list[ReplyObject] = []
    seen: set[int] = set()
    reply = sc.reply
    while reply is not None and id(reply) not in seen:
        seen.add(id(reply))
        stack.append(reply)
        reply = reply.prev
    return stack


def _stack_of(reply: ReplyObject) -> SchedContext | None:
    """The context whose call stack ``reply`` is on, by ``next`` up to the top."""
    seen: set[int] = set()
    node: ReplyObject | SchedContext | None = reply
    while isinstance(node, ReplyObject) and id(node) not in seen:
        seen.add(id(node))
        node = node.next
    return node if isinstance(node, SchedContext) else None


def _lent_by(sc: SchedContext) -> TCB | None:
    stack = _call_stack(sc)
    return stack[-1].tcb if stack else None


def _entry(reply: ReplyObject) -> StackEntry:
    tcb = reply.tcb
    return StackEntry(reply.paddr, tcb.name if tcb is not None else None,
                      tcb.paddr if tcb is not None else None,
                      tcb.state.value if tcb is not None else None)


def sched_context_view(abi: ArchABI, sc: SchedContext) -> SchedContextView:
    """The view of ``sc`` (``abi``'s timer frequency converts ticks to microseconds)."""
    tcb = sc.tcb
    return SchedContextView(
        sc.paddr, sc.size_bits, sc.budget, ticks_to_us(abi, sc.budget), sc.period,
        ticks_to_us(abi, sc.period), [RefillView(r.time, r.amount) for r in sc.refills],
        sc.max_refills, sc.consumed, ticks_to_us(abi, sc.consumed), sc.badge, sc.sporadic,
        sc.core, tcb.name if tcb is not None else None,
        tcb.paddr if tcb is not None else None,
        sc.notification.paddr if sc.notification is not None else None,
        sc.yield_from.name if sc.yield_from is not None else None,
        [_entry(reply) for reply in _call_stack(sc)])


def reply_view(reply: ReplyObject) -> ReplyView:
    tcb = reply.tcb
    after = reply.next
    stack = _stack_of(reply)
    return ReplyView(reply.paddr, tcb.name if tcb is not None else None,
                     tcb.paddr if tcb is not None else None,
                     tcb.state.value if tcb is not None else None,
                     reply.prev.paddr if reply.prev is not None else None,
                     after.paddr if after is not None else None,
                     isinstance(after, SchedContext),
                     stack.paddr if stack is not None else None)


def _release_queue(kernel: Kernel) -> list[TCB]:
    return list(kernel.release_queue)


def thread_mcs(kernel: Kernel, tcb: TCB) -> ThreadMcsView:
    """``tcb``'s MCS state (:class:`ThreadMcsView`)."""
    sc = tcb.sched_context
    lender = _lent_by(sc) if sc is not None else None
    reply = tcb.reply_object
    stack = _stack_of(reply) if reply is not None else None
    return ThreadMcsView(sc.paddr if sc is not None else None,
                         lender.name if lender is not None and lender is not tcb else None,
                         reply.paddr if reply is not None else None,
                         stack.paddr if stack is not None else None,
                         tcb.in_release_queue)


def mcs_view(kernel: Kernel) -> McsView:
    """Every scheduling context and reply object of ``kernel``, by address."""
    contexts: list[SchedContextView] = []
    replies: list[ReplyView] = []
    for paddr in sorted(kernel.objects):
        obj = kernel.objects[paddr]
        if isinstance(obj, SchedContext):
            contexts.append(sched_context_view(kernel.abi, obj))
        elif isinstance(obj, ReplyObject):
            replies.append(reply_view(obj))
    return McsView(contexts, replies, [t.name for t in _release_queue(kernel)])


def context_holders(kernel: Kernel) -> dict[int, tuple[SchedContext, TCB]]:
    """Each context a thread runs on now, by id, with that thread: the before of
    :func:`context_moves` (one look per thread)."""
    return {id(t.sched_context): (t.sched_context, t) for t in kernel.threads.values()
            if t.sched_context is not None}


def context_moves(before: dict[int, tuple[SchedContext, TCB]],
                  after: dict[int, tuple[SchedContext, TCB]]) -> list[ContextMove]:
    """The contexts that changed threads between two :func:`context_holders`: lent along
    a Call, back with a reply, bound, unbound; in the order of ``before`` then ``after``."""
    moves: list[ContextMove] = []
    for key in list(before) + [k for k in after if k not in before]:
        sc, _ = before.get(key) or after[key]
        old = before[key][1] if key in before else None
        new = after[key][1] if key in after else None
        if old is new:
            continue
        lender = _lent_by(sc)
        moves.append(ContextMove(sc.paddr, old.name if old is not None else None,
                                 new.name if new is not None else None, sc.reply is not None,
                                 lender.name if lender is not None else None))
    return moves


# --- text -----------------------------------------------------------------------------------


def _us(value: int | float) -> str:
    return f"{value}us" if isinstance(value, int) else f"{value:.3f}".rstrip("0") + "us"


def _name(name: str | None) -> str:
    return "(none)" if name is None else name


def format_moves(moves: Iterable[ContextMove]) -> str:
    """``sched_context 0x... A -> B (lent)``, comma-separated; '' for no moves."""
    parts = []
    for move in moves:
        how = " (lent)" if move.lent else ""
        parts.append(f"sched_context {move.sched_context:#x} {_name(move.before)} -> "
                     f"{_name(move.after)}{how}")
    return ", ".join(parts)


def sched_context_line(view: SchedContextView) -> str:
    """``0x... size_bits=7 budget=10000 (1000us) period=... refills=[amount@time, ...]
    max_refills=.. consumed=.. badge=0x.. [sporadic] thread=NAME ...``."""
    if not view.refills:
        timing = "unconfigured"
    else:
        period = ("0 (round robin)" if view.period == 0
                  else f"{view.period} ({_us(view.period_us)})")
        timing = f"budget={view.budget} ({_us(view.budget_us)}) period={period}"
    refills = ", ".join(f"{r.amount}@{r.time}" for r in view.refills)
    parts = [f"{view.paddr:#x} size_bits={view.size_bits} {timing} refills=[{refills}] "
             f"max_refills={view.max_refills} consumed={view.consumed} "
             f"({_us(view.consumed_us)}) badge={view.badge:#x}"]
    if view.sporadic:
        parts.append("sporadic")
    if view.core:
        parts.append(f"core={view.core}")
    parts.append(f"thread={_name(view.thread)}")
    if view.call_stack:
        parts.append(f"(lent by {_name(view.call_stack[-1].caller)})")
    if view.notification is not None:
        parts.append(f"notification={view.notification:#x}")
    if view.yield_from is not None:
        parts.append(f"yield_from={view.yield_from}")
    return " ".join(parts)


def call_stack_line(view: SchedContextView) -> str:
    """``sched_context 0x... -> reply 0x... (caller B, BlockedOnReply) -> ...``: the
    donation chain, from the context down its call stack (the last Call first)."""
    links = [f"sched_context {view.paddr:#x}"]
    links += [f"reply {e.reply:#x} (caller {_name(e.caller)}, {e.caller_state or 'no thread'})"
              for e in view.call_stack]
    return " -> ".join(links)


def reply_line(view: ReplyView) -> str:
    """``0x... caller=A (BlockedOnReply) prev=.. next=..`` (``receiver=`` for a thread
    receiving with it; ``idle`` for one that holds nothing)."""
    if view.thread is None:
        text = f"{view.paddr:#x} idle"
    else:
        role = "receiver" if view.thread_state == "BlockedOnReceive" else "caller"
        text = f"{view.paddr:#x} {role}={view.thread} ({view.thread_state})"
    if view.sched_context is not None:
        text += f" on the call stack of sched_context {view.sched_context:#x}"
        if view.prev is not None:
            text += f" prev={view.prev:#x}"
        if view.next is not None and not view.next_is_sched_context:
            text += f" next={view.next:#x}"
        elif view.next_is_sched_context:
            text += " (top)"
    return text


def thread_note(view: ThreadMcsView) -> str:
    """What a thread line adds under MCS: `` sched_context=0x...`` (`` (lent by A)``), or
    `` sched_context=none (lent 0x... along its call)`` for a caller whose context went
    with its Call, or `` passive`` for a thread with none; then `` reply=0x...`` and
    `` in release queue``."""
    if view.sched_context is None and view.lent_along is not None:
        text = f" sched_context=none (lent {view.lent_along:#x} along its call)"
    elif view.sched_context is None:
        text = " passive"
    else:
        text = f" sched_context={view.sched_context:#x}"
        if view.lent_by is not None:
            text += f" (lent by {view.lent_by})"
    if view.reply is not None:
        text += f" reply={view.reply:#x}"
    if view.in_release_queue:
        text += " in release queue"
    return text


def mcs_lines(view: McsView) -> list[str]:
    """The text form: a section of scheduling contexts (each lent one followed by its
    call stack), one of reply objects, and the release queue."""
    out = [f"scheduling contexts ({len(view.sched_contexts)}):"]
    for sc in view.sched_contexts:
        out.append(f"  {sched_context_line(sc)}")
        if sc.call_stack:
            out.append(f"    call stack: {call_stack_line(sc)}")
    out.append(f"reply objects ({len(view.replies)}):")
    out += [f"  {reply_line(reply)}" for reply in view.replies]
    out.append(f"release queue ({len(view.release_queue)}):"
               + "".join(f" {name}" for name in view.release_queue))
    return out
