"""The MCS views (kernel.views.mcs) on hand-made state: a scheduling context lent down a
call stack two Calls deep, reply objects in each role, the release queue, the moves the
trace reports; and the non-MCS views without any of it.

The state is built as seL4's reply_push leaves it (src/object/reply.c): client A, on its
own context, called passive server B, which called passive server C; C runs on A's
context. The newest reply object (B's) is on top, its ``next`` the context."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch, abi_for
from kernel.kernel import Kernel
from kernel.model.mcs_time import us_to_ticks
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import Refill, SchedContext
from kernel.model.tcb import TCB, ThreadState
from kernel.views.mcs import (
    ContextMove,
    SchedContextView,
    call_stack_line,
    context_holders,
    context_moves,
    format_moves,
    mcs_lines,
    mcs_view,
    reply_line,
    sched_context_line,
    thread_mcs,
    thread_note,
    ticks_to_us,
)
from kernel.views.render import snapshot, to_json, to_text
from tests.unit.test_boot import booted

BASE = 0x8070_0000
"""Where the hand-made objects live: free RAM of the fake machine's 8 MiB."""


CONSUMED_US = {Arch.RISCV64: "123.4us", Arch.AARCH64: "19.744us"}
"""1234 ticks at 10 MHz and at 62.5 MHz."""


@dataclass
class Chain:
    kernel: Kernel
    sc: SchedContext
    a: TCB
    b: TCB
    c: TCB
    d: TCB
    first: ReplyObject
    top: ReplyObject
    receiving: ReplyObject
    idle: ReplyObject


def _thread(kernel: Kernel, offset: int, name: str, state: ThreadState) -> TCB:
    tcb = TCB(BASE + offset, len(kernel.abi.user_context), 0)
    tcb.name, tcb.state = name, state
    kernel.add_object(tcb)
    return tcb


def _chain(arch: Arch) -> Chain:
    kernel = booted(arch, mcs=True)[0]
    ticks = us_to_ticks(kernel.abi, 1000)  # configured as 1000 us of every 2000 us
    sc = SchedContext(BASE, 8, period=2 * ticks, budget=ticks, max_refills=4,
                      refills=[Refill(5, ticks - 40), Refill(2 * ticks + 5, 40)],
                      consumed=1234, badge=0x5C, sporadic=True)
    a = _thread(kernel, 0x800, "A", ThreadState.BLOCKED_ON_REPLY)
    b = _thread(kernel, 0x1000, "B", ThreadState.BLOCKED_ON_REPLY)
    c = _thread(kernel, 0x1800, "C", ThreadState.RUNNING)
    d = _thread(kernel, 0x2000, "D", ThreadState.BLOCKED_ON_RECEIVE)
    first, top, receiving, idle = (ReplyObject(BASE + 0x100 + 0x20 * n) for n in range(4))
    first.tcb, first.next = a, top
    top.tcb, top.prev, top.next = b, first, sc
    receiving.tcb = d
    sc.reply, sc.tcb, c.sched_context = top, c, sc
    a.reply_object, b.reply_object, d.reply_object = first, top, receiving
    for obj in (sc, first, top, receiving, idle):
        kernel.add_object(obj)
    return Chain(kernel, sc, a, b, c, d, first, top, receiving, idle)


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def chain(request: pytest.FixtureRequest) -> Chain:
    return _chain(request.param)


def _context(chain: Chain) -> SchedContextView:
    return next(v for v in mcs_view(chain.kernel).sched_contexts if v.paddr == BASE)


def test_microseconds_are_the_ticks_at_the_timer_frequency() -> None:
    riscv, arm = abi_for(Arch.RISCV64), abi_for(Arch.AARCH64)
    assert ticks_to_us(riscv, 10_000) == 1000 and isinstance(ticks_to_us(riscv, 10_000), int)
    assert ticks_to_us(arm, 312_500) == 5000
    assert ticks_to_us(arm, 1) == pytest.approx(0.016)  # 62.5 ticks to the microsecond
    for abi in (riscv, arm):
        assert ticks_to_us(abi, us_to_ticks(abi, 7_776)) == 7_776
    # usToTicks rounds down (486,062.5 ticks): the view says what the context holds.
    assert ticks_to_us(arm, us_to_ticks(arm, 7_777)) == pytest.approx(7_777 - 0.5 / 62.5)


def test_a_lent_context_shows_its_fields_and_its_donation_chain(chain: Chain) -> None:
    view = _context(chain)
    ticks = us_to_ticks(chain.kernel.abi, 1000)
    line = sched_context_line(view)
    assert line == (f"{BASE:#x} size_bits=8 budget={ticks} (1000us) period={2 * ticks} (2000us) "
                    f"refills=[{ticks - 40}@5, 40@{2 * ticks + 5}] max_refills=4 consumed=1234 "
                    f"({CONSUMED_US[chain.kernel.arch]}) badge=0x5c sporadic thread=C (lent by A)")
    # From the context down: the last Call (B's) first, the first (A's) last.
    assert call_stack_line(view) == (
        f"sched_context {BASE:#x} -> reply {chain.top.paddr:#x} (caller B, BlockedOnReply) "
        f"-> reply {chain.first.paddr:#x} (caller A, BlockedOnReply)")


def test_reply_objects_say_whom_they_hold_and_where_on_the_stack(chain: Chain) -> None:
    lines = {v.paddr: reply_line(v) for v in mcs_view(chain.kernel).replies}
    stack = f"on the call stack of sched_context {BASE:#x}"
    assert lines[chain.top.paddr] == (f"{chain.top.paddr:#x} caller=B (BlockedOnReply) {stack} "
                                      f"prev={chain.first.paddr:#x} (top)")
    assert lines[chain.first.paddr] == (f"{chain.first.paddr:#x} caller=A (BlockedOnReply) "
                                        f"{stack} next={chain.top.paddr:#x}")
    assert lines[chain.receiving.paddr] == f"{chain.receiving.paddr:#x} receiver=D (BlockedOnReceive)"
    assert lines[chain.idle.paddr] == f"{chain.idle.paddr:#x} idle"


def test_threads_say_what_they_run_on(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = chain.kernel
    assert thread_note(thread_mcs(kernel, chain.c)) == f" sched_context={BASE:#x} (lent by A)"
    assert thread_note(thread_mcs(kernel, chain.a)) == (
        f" sched_context=none (lent {BASE:#x} along its call) reply={chain.first.paddr:#x}")
    assert thread_note(thread_mcs(kernel, chain.b)) == (
        f" sched_context=none (lent {BASE:#x} along its call) reply={chain.top.paddr:#x}")
    assert thread_note(thread_mcs(kernel, chain.d)) == f" passive reply={chain.receiving.paddr:#x}"
    # The release queue, where the kernel has one (a list of TCBs by release time).
    assert not thread_mcs(kernel, chain.a).in_release_queue
    assert kernel.mcs is not None
    monkeypatch.setattr(kernel.mcs, "release_queue", [chain.a, chain.d])
    monkeypatch.setattr(chain.a, "in_release_queue", True)
    monkeypatch.setattr(chain.d, "in_release_queue", True)
    assert thread_mcs(kernel, chain.a).in_release_queue
    assert thread_note(thread_mcs(kernel, chain.d)).endswith(" in release queue")
    assert mcs_lines(mcs_view(kernel))[-1] == "release queue (2): A D"


def test_the_cspace_view_has_the_mcs_sections_in_text_and_json(chain: Chain) -> None:
    snap = snapshot(chain.kernel)
    text = to_text(snap)
    assert "\nthread C tcb=" in text and f"sched_context={BASE:#x} (lent by A)\n" in text
    tail = text[text.index("scheduling contexts ("):].splitlines()
    at = next(i for i, line in enumerate(tail) if line.startswith(f"  {BASE:#x} "))
    assert tail[at + 1] == f"    call stack: {call_stack_line(_context(chain))}"
    plain = to_json(snap)
    sc = next(v for v in plain["mcs"]["sched_contexts"] if v["paddr"] == BASE)
    assert sc["budget_us"] == 1000 and sc["period_us"] == 2000 and sc["sporadic"]
    assert [e["caller"] for e in sc["call_stack"]] == ["B", "A"]
    assert sc["refills"][0] == {"time": 5, "amount": sc["budget"] - 40}
    threads = {t["name"]: t["mcs"] for t in plain["threads"]}
    assert threads["C"]["lent_by"] == "A" and threads["A"]["lent_along"] == BASE


def test_moves_name_the_context_and_both_threads(chain: Chain) -> None:
    kernel = chain.kernel
    sc, c, b = chain.sc, chain.c, chain.b
    before = context_holders(kernel)
    # C replies to B: the context goes back one Call (as seL4's reply_pop leaves it).
    sc.reply, chain.top.next, chain.first.next = chain.first, None, sc
    chain.top.prev = None
    c.sched_context, b.sched_context, sc.tcb = None, sc, b
    moves = context_moves(before, context_holders(kernel))
    assert moves == [ContextMove(BASE, "C", "B", lent=True, by="A")]
    assert format_moves(moves) == f"sched_context {BASE:#x} C -> B (lent)"
    # Unbound altogether: no thread after.
    b.sched_context, sc.tcb, sc.reply = None, None, None
    assert format_moves(context_moves(before, context_holders(kernel))) == \
        f"sched_context {BASE:#x} C -> (none)"


def test_a_broken_call_stack_is_cut_not_followed_forever(chain: Chain) -> None:
    chain.first.prev = chain.top  # a cycle: the invariant checker's business, not a hang
    view = _context(chain)
    assert [e.caller for e in view.call_stack] == ["B", "A"]


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_without_mcs_nothing_is_added(arch: Arch) -> None:
    kernel = booted(arch)[0]
    snap = snapshot(kernel)
    assert snap.mcs is None and all(t.mcs is None for t in snap.threads)
    text = to_text(snap)
    assert "scheduling contexts" not in text and "passive" not in text
    assert "mcs" not in to_json(snap)
