"""Random MCS system-call sequences from the root task: no Python exception escapes the
kernel, and the invariants hold after every kernel entry (the System checks them:
among them "a scheduling context is bound to at most one thread" and the other way
round, "refills sum to the budget", "a reply object is on at most one call stack").

The pool: two scheduling contexts (2^7 and 2^8 bytes), two threads below the root
task's priority (so the root task stays the current thread), an endpoint, a
notification, a reply object; each step invokes one of them (or a boot cap) with
random arguments among the MCS methods, deletes one, traps with a random MCS
system-call number and registers, or lets guest time pass (firing the timer when the
clock reaches the deadline the kernel set).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap, SyscallMCS
from kernel.model.sched_context import SchedContext
from tests.abi.support import CNODE, System
from tests.fuzzing import fuzzed, longer

ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)
ROOT_SC = int(InitialCap.seL4_CapInitThreadSC)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
POOL = ("sc7", "sc8", "tcb_a", "tcb_b", "ep", "ntfn", "reply")
LABELS = ("SchedControlConfigureFlags", "SchedContextBind", "SchedContextUnbind",
          "SchedContextUnbindObject", "SchedContextConsumed", "SchedContextYieldTo",
          "TCBSetSchedParams", "TCBSetSpace", "TCBConfigure", "TCBSetTimeoutEndpoint",
          "TCBResume", "TCBSuspend", "TCBSetPriority")


def _setup(arch: Arch) -> tuple[System, dict[str, int]]:
    s = System(arch, mcs=True)
    ut = s.ram_untyped(16)
    base = s.free_slots(len(POOL) + 1)
    slots = {name: base + i for i, name in enumerate(POOL)}
    slots["empty"] = base + len(POOL)
    for name, otype, size in (("sc7", "seL4_SchedContextObject", 7),
                              ("sc8", "seL4_SchedContextObject", 8),
                              ("tcb_a", "seL4_TCBObject", 0), ("tcb_b", "seL4_TCBObject", 0),
                              ("ep", "seL4_EndpointObject", 0),
                              ("ntfn", "seL4_NotificationObject", 0),
                              ("reply", "seL4_ReplyObject", 0)):
        assert s.retype(ut, s.otype(otype), size, slots[name], 1).label == 0
    info = s.report.bootinfo
    assert info.schedcontrol is not None
    slots["sched_control"] = info.schedcontrol[0]
    slots["root_tcb"], slots["root_sc"], slots["cnode"], slots["vspace"] = (
        ROOT_TCB, ROOT_SC, CNODE, VSPACE)
    return s, slots


CAP_NAMES = st.sampled_from(POOL + ("empty", "sched_control", "root_tcb", "root_sc", "cnode",
                                    "vspace"))
WORDS = st.one_of(st.integers(0, 300), st.integers(0, 1 << 64 - 1),
                  st.sampled_from([20, 1000, 2000, 10_000]))

WILD = st.tuples(st.just("invoke"), CAP_NAMES, st.sampled_from(LABELS),
                 st.lists(WORDS, max_size=6), st.lists(CAP_NAMES, max_size=3))
"""Any label on any cap with any caps: mostly refused, which must change nothing."""

SCS = st.sampled_from(["sc7", "sc8", "root_sc"])
TCBS = st.sampled_from(["tcb_a", "tcb_b"])
HANDLERS = st.sampled_from(["ep", "empty", "ntfn"])
TIMES = st.sampled_from([20, 500, 1000, 10_000])


def _method(label: str, invoked: st.SearchStrategy[str],
            words: st.SearchStrategy[list[int]],
            extra: st.SearchStrategy[list[str]]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.tuples(st.just("invoke"), invoked, st.just(label), words, extra)


FITTING = st.one_of(
    _method("SchedControlConfigureFlags", st.just("sched_control"),
            st.tuples(TIMES, TIMES, st.integers(0, 9), st.integers(0, 3), st.integers(0, 1))
            .map(list), SCS.map(lambda c: [c])),
    _method("SchedContextBind", SCS, st.just([]),
            st.sampled_from(["tcb_a", "tcb_b", "ntfn", "root_tcb"]).map(lambda c: [c])),
    _method("SchedContextUnbindObject", SCS, st.just([]),
            st.sampled_from(["tcb_a", "tcb_b", "ntfn"]).map(lambda c: [c])),
    _method("SchedContextUnbind", SCS, st.just([]), st.just([])),
    _method("SchedContextConsumed", SCS, st.just([]), st.just([])),
    _method("SchedContextYieldTo", SCS, st.just([]), st.just([])),
    _method("TCBSetSchedParams", TCBS, st.tuples(st.integers(0, 254), st.integers(0, 254))
            .map(list), st.tuples(st.just("root_tcb"), st.sampled_from(["sc7", "sc8", "empty"]),
                                  HANDLERS).map(list)),
    _method("TCBSetSpace", TCBS, st.just([0, 0]),
            st.tuples(HANDLERS, st.just("cnode"), st.just("vspace")).map(list)),
    _method("TCBSetTimeoutEndpoint", TCBS, st.just([]), HANDLERS.map(lambda c: [c])),
    _method("TCBResume", TCBS, st.just([]), st.just([])),
    _method("TCBSuspend", TCBS, st.just([]), st.just([])),
)
"""Methods on caps they fit, with arguments that often pass decoding."""

DELETE = st.tuples(st.just("delete"), st.sampled_from(POOL))
TRAP = st.tuples(st.just("trap"), st.sampled_from([int(n) for n in SyscallMCS][:17]),
                 CAP_NAMES, st.lists(WORDS, min_size=6, max_size=6))
"""A trap with a random MCS number (Call .. DebugNameThread) and random registers."""
TIME = st.tuples(st.just("time"), st.one_of(st.integers(0, 300), st.integers(0, 400_000)))
"""Guest time passing (timer ticks of the fake machine's clock): the timer interrupt
comes when the clock reaches the deadline the kernel set, charging budgets; entries
later in the same slice may find the budget short and restart."""
STEP = st.one_of(*[FITTING] * 8, WILD, DELETE, TRAP, TIME, TIME)


@fuzzed(60)
@given(arch=st.sampled_from(list(Arch)), steps=st.lists(STEP, min_size=longer(25), max_size=longer(60)))
def test_random_mcs_invocations_keep_the_invariants(
        arch: Arch, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    s, slots = _setup(arch)
    root = s.kernel.current
    for step in steps:
        if s.kernel.current is not root or s.kernel.stop is not None:
            break  # the root task blocked or stopped: nothing more can be invoked
        kind = step[0]
        if kind == "invoke":
            _, cap, label, words, extra = step
            s.call(slots[cap], s.label(label), list(words), extra=[slots[e] for e in extra])
        elif kind == "delete":
            s.call(CNODE, s.label("CNodeDelete"), [slots[step[1]], 64])
        elif kind == "time":
            machine = s.machine
            machine.clock += step[1]
            if machine.deadline is not None and machine.clock >= machine.deadline:
                machine.deadline = None  # one-shot, until the kernel sets it again
                s.kernel.timer_tick()
        else:
            _, number, cap, words = step
            s.machine.syscall_args(number, slots[cap], *words)
            s.kernel.syscall()
    # Whatever happened, the contexts still satisfy the budget rules.
    for obj in s.kernel.objects.values():
        if isinstance(obj, SchedContext) and obj.refills:
            assert sum(r.amount for r in obj.refills) == obj.budget
            assert obj.budget <= obj.period or obj.period == 0
