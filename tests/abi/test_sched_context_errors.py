"""Error matrices of the MCS invocations (seL4 16.0.0, MCS): SchedControl_ConfigureFlags,
the SchedContext methods and the MCS forms of the TCB methods, each error with its
payload, and that a failed invocation changes nothing; then their successful forms.

Expected values come from seL4's decode rules as kernel/objects/sched_context.py and
kernel/objects/tcb_mcs.py state them. Times: MIN_BUDGET_US is 20 µs on both platforms;
MAX_PERIOD_US is an eighth of the largest microsecond count the platform timer
converts without overflow (10 MHz RISC-V, 62.5 MHz AArch64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import CapRights, Error, InitialCap
from kernel.model.caps import EndpointCap, NullCap
from kernel.model.mcs_time import max_period_us, us_to_ticks
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import FAULT_HANDLER, TCB, TIMEOUT_HANDLER
from tests.abi.support import CNODE, System

ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)
ROOT_SC = int(InitialCap.seL4_CapInitThreadSC)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
WORD = (1 << 64) - 1
MIN_US = 20

TM, IC, IL, RANGE = (Error.seL4_TruncatedMessage, Error.seL4_InvalidCapability,
                     Error.seL4_IllegalOperation, Error.seL4_RangeError)


class Objects:
    """What each case may name, made before it runs: ``sched_control`` (the boot cap),
    ``sc8`` / ``sc7`` unbound unconfigured contexts of 2^8 / 2^7 bytes, ``tcb`` an
    inactive thread, ``ep`` an endpoint (all rights), ``ep_nogrant`` a copy without
    Grant or GrantReply, ``ntfn`` a notification, ``empty`` an empty slot."""

    def __init__(self, s: System) -> None:
        info = s.report.bootinfo
        assert info.schedcontrol is not None
        self.sched_control = info.schedcontrol[0]
        ut = s.ram_untyped(16)
        base = s.free_slots(7)
        self.sc8, self.sc7, self.tcb, self.ep = base, base + 1, base + 2, base + 3
        self.ntfn, self.ep_nogrant, self.empty = base + 4, base + 5, base + 6
        for slot, name, size in ((self.sc8, "seL4_SchedContextObject", 8),
                                 (self.sc7, "seL4_SchedContextObject", 7),
                                 (self.tcb, "seL4_TCBObject", 0),
                                 (self.ep, "seL4_EndpointObject", 0),
                                 (self.ntfn, "seL4_NotificationObject", 0)):
            assert s.retype(ut, s.otype(name), size, slot, 1).label == 0
        rw = CapRights.seL4_CanRead | CapRights.seL4_CanWrite
        copy = s.call(CNODE, s.label("CNodeCopy"),
                      [self.ep_nogrant, 64, self.ep, 64, rw], extra=[CNODE])
        assert copy.label == 0


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    invoked: Callable[[Objects], int]
    label: str | int
    args: Callable[[Arch], tuple[int, ...]] | tuple[int, ...]
    extra: Callable[[Objects], tuple[int, ...]]
    error: Error
    words: Callable[[Arch], tuple[int, ...]] | tuple[int, ...] = ()
    prepare: Callable[[System, Objects], None] | None = None


def _max(arch: Arch) -> int:
    return max_period_us(abi_for(arch))


def _range(arch: Arch) -> tuple[int, ...]:
    return (MIN_US, _max(arch))


def _control(o: Objects) -> int:
    return o.sched_control


def _sc8(o: Objects) -> int:
    return o.sc8


def _root_sc(o: Objects) -> int:
    return ROOT_SC


def _tcb(o: Objects) -> int:
    return o.tcb


def _root_tcb(o: Objects) -> int:
    return ROOT_TCB


def _none(o: Objects) -> tuple[int, ...]:
    return ()


def _bind(sc: Callable[[Objects], int], what: Callable[[Objects], int]) \
        -> Callable[[System, Objects], None]:
    def prepare(s: System, o: Objects) -> None:
        assert s.call(sc(o), s.label("SchedContextBind"), [], extra=[what(o)]).label == 0
    return prepare


def _tcb_prio_then_low_mcp(s: System, o: Objects) -> None:
    """The thread bound to sc8 at priority 200; the caller's MCP then lowered to 100."""
    _bind(_sc8, _tcb)(s, o)
    assert s.call(o.tcb, s.label("TCBSetPriority"), [200], extra=[ROOT_TCB]).label == 0
    assert s.call(ROOT_TCB, s.label("TCBSetMCPriority"), [100], extra=[ROOT_TCB]).label == 0


CONFIGURE = "SchedControlConfigureFlags"

CASES = [
    # --- SchedControl_ConfigureFlags ------------------------------------------------
    Case("SCC0001", "no scheduling context cap", _control, CONFIGURE, (1000, 1000, 0, 0, 0),
         _none, TM),
    Case("SCC0002", "four words", _control, CONFIGURE, (1000, 1000, 0, 0),
         lambda o: (o.sc8,), TM),
    Case("SCC0003", "budget above MAX_PERIOD_US", _control, CONFIGURE,
         lambda a: (_max(a) + 1, 1000, 0, 0, 0), lambda o: (o.sc8,), RANGE, _range),
    Case("SCC0004", "period above MAX_PERIOD_US", _control, CONFIGURE,
         lambda a: (1000, _max(a) + 1, 0, 0, 0), lambda o: (o.sc8,), RANGE, _range),
    Case("SCC0005", "budget below MIN_BUDGET", _control, CONFIGURE, (19, 1000, 0, 0, 0),
         lambda o: (o.sc8,), RANGE, _range),
    Case("SCC0006", "period below MIN_BUDGET", _control, CONFIGURE, (20, 19, 0, 0, 0),
         lambda o: (o.sc8,), RANGE, _range),
    Case("SCC0007", "budget above period", _control, CONFIGURE, (1000, 500, 0, 0, 0),
         lambda o: (o.sc8,), RANGE, (MIN_US, 500)),
    Case("SCC0008", "not a scheduling context", _control, CONFIGURE, (1000, 1000, 0, 0, 0),
         lambda o: (o.ep,), IC, (1,)),
    Case("SCC0009", "ranges checked before the cap", _control, CONFIGURE,
         (1000, 500, 0, 0, 0), lambda o: (o.ep,), RANGE, (MIN_US, 500)),
    Case("SCC0010", "9 extra refills in 256 bytes", _control, CONFIGURE,
         (1000, 2000, 9, 0, 0), lambda o: (o.sc8,), RANGE, (0, 8)),
    Case("SCC0011", "1 extra refill in 128 bytes", _control, CONFIGURE,
         (1000, 2000, 1, 0, 0), lambda o: (o.sc7,), RANGE, (0, 0)),
    Case("SCC0012", "a SchedContext label", _control, "SchedContextBind", (),
         lambda o: (o.tcb,), IL),
    Case("SCC0013", "label 0", _control, 0, (), _none, IL),
    # --- SchedContext ------------------------------------------------------------------
    Case("SCX0001", "Bind: no cap", _sc8, "SchedContextBind", (), _none, TM),
    Case("SCX0002", "Bind: a CNode", _sc8, "SchedContextBind", (), lambda o: (CNODE,), IC,
         (1,)),
    Case("SCX0003", "Bind: the thread has a context", _sc8, "SchedContextBind", (),
         lambda o: (ROOT_TCB,), IL),
    Case("SCX0004", "Bind: the context has a thread", _root_sc, "SchedContextBind", (),
         lambda o: (o.tcb,), IL),
    Case("SCX0005", "Bind: the notification has a context", lambda o: o.sc7,
         "SchedContextBind", (), lambda o: (o.ntfn,), IL, prepare=_bind(_sc8, lambda o: o.ntfn)),
    Case("SCX0006", "Bind: the context has a notification", _sc8, "SchedContextBind", (),
         lambda o: (o.ntfn,), IL, prepare=_bind(_sc8, lambda o: o.ntfn)),
    Case("SCX0007", "UnbindObject: no cap", _sc8, "SchedContextUnbindObject", (), _none, TM),
    Case("SCX0008", "UnbindObject: an endpoint", _sc8, "SchedContextUnbindObject", (),
         lambda o: (o.ep,), IC, (1,)),
    Case("SCX0009", "UnbindObject: a thread not bound to it", _sc8,
         "SchedContextUnbindObject", (), lambda o: (o.tcb,), IL),
    Case("SCX0010", "UnbindObject: the caller's own", _root_sc, "SchedContextUnbindObject",
         (), lambda o: (ROOT_TCB,), IL),
    Case("SCX0011", "UnbindObject: a notification not bound to it", _sc8,
         "SchedContextUnbindObject", (), lambda o: (o.ntfn,), IL),
    Case("SCX0012", "Unbind: the caller's own context", _root_sc, "SchedContextUnbind", (),
         _none, IL),
    Case("SCX0013", "YieldTo: no thread", _sc8, "SchedContextYieldTo", (), _none, IL),
    Case("SCX0014", "YieldTo: the caller's own", _root_sc, "SchedContextYieldTo", (), _none,
         IL),
    Case("SCX0015", "YieldTo: priority above the caller's MCP", _sc8, "SchedContextYieldTo",
         (), _none, IL, prepare=_tcb_prio_then_low_mcp),
    Case("SCX0016", "a TCB label", _sc8, "TCBSuspend", (), _none, IL),
    Case("SCX0017", "label 0", _sc8, 0, (), _none, IL),
    # --- TCB, MCS forms ----------------------------------------------------------------
    Case("TCM0001", "Configure: two words", _tcb, "TCBConfigure", (0, 0),
         lambda o: (CNODE, VSPACE, o.empty), TM),
    Case("TCM0002", "Configure: two caps", _tcb, "TCBConfigure", (0, 0, 0),
         lambda o: (CNODE, VSPACE), TM),
    Case("TCM0003", "Configure: CSpace an endpoint", _tcb, "TCBConfigure", (0, 0, 0),
         lambda o: (o.ep, VSPACE, o.empty), IL),
    Case("TCM0004", "Configure: VSpace a CNode", _tcb, "TCBConfigure", (0, 0, 0),
         lambda o: (CNODE, CNODE, o.empty), IL),
    Case("TCM0005", "SetSpace: one word", _tcb, "TCBSetSpace", (0,),
         lambda o: (o.ep, CNODE, VSPACE), TM),
    Case("TCM0006", "SetSpace: two caps", _tcb, "TCBSetSpace", (0, 0),
         lambda o: (o.ep, CNODE), TM),
    Case("TCM0007", "SetSpace: handler without Grant", _tcb, "TCBSetSpace", (0, 0),
         lambda o: (o.ep_nogrant, CNODE, VSPACE), IC, (1,)),
    Case("TCM0008", "SetSpace: handler a CNode", _tcb, "TCBSetSpace", (0, 0),
         lambda o: (CNODE, CNODE, VSPACE), IC, (1,)),
    Case("TCM0009", "SetSpace: the spaces checked first", _tcb, "TCBSetSpace", (0, 0),
         lambda o: (CNODE, CNODE, CNODE), IL),
    Case("TCM0010", "SetSchedParams: two caps", _tcb, "TCBSetSchedParams", (0, 0),
         lambda o: (ROOT_TCB, o.sc8), TM),
    Case("TCM0011", "SetSchedParams: authority a CNode", _tcb, "TCBSetSchedParams", (0, 0),
         lambda o: (CNODE, o.sc8, o.ep), IC, (1,)),
    Case("TCM0012", "SetSchedParams: MCP too high", _tcb, "TCBSetSchedParams", (256, 0),
         lambda o: (ROOT_TCB, o.sc8, o.ep), RANGE, (0, 255)),
    Case("TCM0013", "SetSchedParams: priority too high", _tcb, "TCBSetSchedParams", (0, 256),
         lambda o: (ROOT_TCB, o.sc8, o.ep), RANGE, (0, 255)),
    Case("TCM0014", "SetSchedParams: context an endpoint", _tcb, "TCBSetSchedParams", (0, 0),
         lambda o: (ROOT_TCB, o.ep, o.ep), IC, (2,)),
    Case("TCM0015", "SetSchedParams: context bound elsewhere", _tcb, "TCBSetSchedParams",
         (0, 0), lambda o: (ROOT_TCB, ROOT_SC, o.ep), IL),
    Case("TCM0016", "SetSchedParams: the thread has another context", _tcb,
         "TCBSetSchedParams", (0, 0), lambda o: (ROOT_TCB, o.sc8, o.ep), IL,
         prepare=_bind(lambda o: o.sc7, _tcb)),
    Case("TCM0017", "SetSchedParams: no context for the caller", _root_tcb,
         "TCBSetSchedParams", (255, 255), lambda o: (ROOT_TCB, o.empty, o.ep), IL),
    Case("TCM0018", "SetSchedParams: handler a CNode", _tcb, "TCBSetSchedParams", (0, 0),
         lambda o: (ROOT_TCB, o.sc8, CNODE), IC, (3,)),
    Case("TCM0019", "SetTimeoutEndpoint: no cap", _tcb, "TCBSetTimeoutEndpoint", (), _none,
         TM),
    Case("TCM0020", "SetTimeoutEndpoint: a notification", _tcb, "TCBSetTimeoutEndpoint", (),
         lambda o: (o.ntfn,), IC, (1,)),
]


def _state(s: System) -> tuple[object, ...]:
    scs = tuple((o.paddr, o.period, o.budget, o.max_refills, tuple(o.refills), o.badge,
                 o.sporadic, o.consumed, getattr(o.tcb, "paddr", None),
                 getattr(o.notification, "paddr", None))
                for o in s.kernel.objects.values() if isinstance(o, SchedContext))
    threads = tuple((t.paddr, t.state, t.priority, t.mcp, t.ipc_buffer,
                     getattr(t.sched_context, "paddr", None),
                     tuple((slot.cap, slot.mdb_prev, slot.mdb_next) for slot in t.slots))
                    for t in s.kernel.threads.values())
    return scs, threads, s.kernel.scheduler.queues(), s.kernel.stop


def _value(v: Callable[[Arch], tuple[int, ...]] | tuple[int, ...], arch: Arch) -> tuple[int, ...]:
    return v(arch) if callable(v) else v


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_mcs_invocation_error(case: Case, arch: Arch) -> None:
    s = System(arch, mcs=True)
    o = Objects(s)
    if case.prepare is not None:
        case.prepare(s, o)
    before = _state(s)
    label = s.label(case.label) if isinstance(case.label, str) else case.label
    reply = s.call(case.invoked(o), label, list(_value(case.args, arch)),
                   extra=list(case.extra(o)))
    assert (reply.label, tuple(reply.words)) == (case.error, _value(case.words, arch)), \
        case.title
    assert _state(s) == before, f"{case.id}: a failed invocation changed kernel state"


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


# --- the successful forms -------------------------------------------------------------


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def mcs(request: pytest.FixtureRequest) -> tuple[System, Objects]:
    s = System(request.param, mcs=True)
    return s, Objects(s)


def _sc(s: System, slot: int) -> SchedContext:
    cap = s.cap(slot)
    sc = s.kernel.objects[cap.object_paddr]  # type: ignore[index]
    assert isinstance(sc, SchedContext)
    return sc


def _thread(s: System, slot: int) -> TCB:
    tcb = s.kernel.objects[s.cap(slot).object_paddr]  # type: ignore[index]
    assert isinstance(tcb, TCB)
    return tcb


def test_configure_sets_budget_period_refills_badge_and_flags(mcs: tuple[System, Objects]) -> None:
    s, o = mcs
    abi = s.kernel.abi
    reply = s.call(o.sched_control, s.label(CONFIGURE), [1000, 3000, 2, 0xBAD, 1],
                   extra=[o.sc8])
    assert (reply.label, reply.words) == (0, [])
    sc = _sc(s, o.sc8)
    assert (sc.budget, sc.period) == (us_to_ticks(abi, 1000), us_to_ticks(abi, 3000))
    assert (sc.max_refills, sc.badge, sc.sporadic) == (4, 0xBAD, True)
    assert sum(r.amount for r in sc.refills) == sc.budget
    # budget = period: round robin (period 0), two refills at most, not sporadic.
    assert s.call(o.sched_control, s.label(CONFIGURE), [MIN_US, MIN_US, 8, 0, 0],
                  extra=[o.sc8]).label == 0
    assert (sc.period, sc.max_refills, sc.sporadic, sc.is_round_robin) == (0, 2, False, True)
    # The largest values both platforms take.
    big = max_period_us(abi)
    assert s.call(o.sched_control, s.label(CONFIGURE), [big, big, 8, 0, 0],
                  extra=[o.sc8]).label == 0


def test_bind_unbind_consumed_and_yield(mcs: tuple[System, Objects]) -> None:
    s, o = mcs
    tcb, sc = _thread(s, o.tcb), _sc(s, o.sc8)
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.tcb]).label == 0
    assert sc.tcb is tcb and tcb.sched_context is sc
    assert s.call(o.sc8, s.label("SchedContextConsumed")).words == [0]
    assert s.call(o.sc8, s.label("SchedContextUnbindObject"), [], extra=[o.tcb]).label == 0
    assert sc.tcb is None and tcb.sched_context is None
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.ntfn]).label == 0
    assert sc.notification is not None and sc.notification.sched_context is sc
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.tcb]).label == 0
    assert s.call(o.sc8, s.label("SchedContextUnbind")).label == 0
    assert sc.tcb is None and sc.notification is None and tcb.sched_context is None
    # YieldTo a bound, inactive thread: nothing to run, the consumed time comes back.
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.tcb]).label == 0
    reply = s.call(o.sc8, s.label("SchedContextYieldTo"))
    assert (reply.label, reply.words) == (0, [0])
    assert s.kernel.current is not None and s.kernel.current.name == "rootserver"


def test_tcb_mcs_forms_install_handlers_and_contexts(mcs: tuple[System, Objects]) -> None:
    s, o = mcs
    tcb, sc = _thread(s, o.tcb), _sc(s, o.sc8)
    assert s.call(o.tcb, s.label("TCBConfigure"), [0, 0, 0],
                  extra=[CNODE, VSPACE, o.empty]).label == 0
    assert tcb.ctable.cap.object_paddr == s.cap(CNODE).object_paddr
    assert s.call(o.tcb, s.label("TCBSetSpace"), [0, 0], extra=[o.ep, CNODE, VSPACE]).label == 0
    assert isinstance(tcb.slots[FAULT_HANDLER].cap, EndpointCap)
    assert tcb.slots[FAULT_HANDLER].mdb_prev is s.slots[o.ep]  # a CDT child of its source
    assert s.call(o.tcb, s.label("TCBSetTimeoutEndpoint"), [], extra=[o.ep]).label == 0
    assert isinstance(tcb.slots[TIMEOUT_HANDLER].cap, EndpointCap)
    reply = s.call(o.tcb, s.label("TCBSetSchedParams"), [50, 40],
                   extra=[ROOT_TCB, o.sc8, o.empty])
    assert reply.label == 0
    assert (tcb.mcp, tcb.priority, tcb.sched_context) == (50, 40, sc)
    assert isinstance(tcb.slots[FAULT_HANDLER].cap, NullCap)  # the null handler replaced it
    # The same context again changes nothing of the binding; none unbinds it.
    assert s.call(o.tcb, s.label("TCBSetSchedParams"), [50, 40],
                  extra=[ROOT_TCB, o.sc8, o.ep]).label == 0
    assert tcb.sched_context is sc
    assert s.call(o.tcb, s.label("TCBSetSchedParams"), [50, 40],
                  extra=[ROOT_TCB, o.empty, o.ep]).label == 0
    assert tcb.sched_context is None and sc.tcb is None


def test_deleting_the_last_context_cap_unbinds_it(mcs: tuple[System, Objects]) -> None:
    s, o = mcs
    tcb = _thread(s, o.tcb)
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.tcb]).label == 0
    assert s.call(o.sc8, s.label("SchedContextBind"), [], extra=[o.ntfn]).label == 0
    sc = _sc(s, o.sc8)
    assert s.call(CNODE, s.label("CNodeDelete"), [o.sc8, 64]).label == 0
    assert tcb.sched_context is None and sc.tcb is None and sc.notification is None
    # and deleting a thread leaves its context unbound
    assert s.call(o.sc7, s.label("SchedContextBind"), [], extra=[o.tcb]).label == 0
    sc7 = _sc(s, o.sc7)
    assert s.call(CNODE, s.label("CNodeDelete"), [o.tcb, 64]).label == 0
    assert sc7.tcb is None
