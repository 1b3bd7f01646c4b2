"""Domain scheduling on the fake machine: the schedule's durations decide, tick by tick,
whose threads run (seL4's timerTick / nextDomain / chooseThread)."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.cspace import cdt
from kernel.model.tcb import TCB, ThreadState
from tests.abi.support import CNODE, System

DOMAIN = int(InitialCap.seL4_CapDomain)
ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)


def _thread(s: System, name: str, priority: int, domain: int) -> TCB:
    """A runnable thread in the root task's spaces, put in ``domain`` by DomainSetSet."""
    slot = s.free_slots(1)
    assert s.retype(s.ram_untyped(12), s.otype("seL4_TCBObject"), 0, slot, 1).label == 0
    tcb = s.kernel.object_at(s.cap(slot).object_paddr, TCB)  # type: ignore[attr-defined]
    cdt.insert_child(s.slots[CNODE], tcb.ctable, s.cap(CNODE), False)
    cdt.insert_child(s.slots[VSPACE], tcb.vtable, s.cap(VSPACE), False)
    tcb.name, tcb.priority, tcb.state = name, priority, ThreadState.RUNNING
    s.kernel.scheduler.append_front(tcb)
    assert s.call(DOMAIN, s.label("DomainSetSet"), [domain], extra=[slot]).label == 0
    return tcb


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_each_domain_runs_for_its_duration_in_turn(arch: Arch) -> None:
    s = System(arch, num_domains=2)
    a, b = _thread(s, "a", 100, 0), _thread(s, "b", 100, 1)
    configure = s.label("DomainScheduleConfigure")
    assert s.call(DOMAIN, configure, [0, 0, 2]).label == 0  # domain 0 for 2 ticks,
    assert s.call(DOMAIN, configure, [1, 1, 3]).label == 0  # then domain 1 for 3
    assert s.call(DOMAIN, s.label("DomainScheduleSetStart"), [0]).label == 0
    root = s.kernel.current
    assert root is not None and root.name == "rootserver"
    s.call(ROOT_TCB, s.label("TCBSuspend"))  # the root task stops (no reply comes)
    assert root.state is ThreadState.INACTIVE and s.kernel.current is a
    seen = []
    for _ in range(10):
        s.kernel.timer_tick()
        assert s.kernel.current is not None
        seen.append(s.kernel.current.name)
    assert seen == ["a", "b", "b", "b", "a", "a", "b", "b", "b", "a"]
    assert b.domain == 1 and a.domain == 0


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_one_domain_ignores_the_schedule_time(arch: Arch) -> None:
    """With one domain the domain time never runs down (seL4 checks numDomains > 1)."""
    s = System(arch)
    time = s.kernel.domains.time
    for _ in range(5):
        s.kernel.timer_tick()
    assert s.kernel.domains.time == time and s.kernel.domains.current == 0


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_thread_woken_in_another_domain_waits_for_its_turn(arch: Arch) -> None:
    """possibleSwitchTo: a higher-priority thread of another domain is only queued."""
    s = System(arch, num_domains=2)
    high = _thread(s, "high", 254, 1)
    root = s.kernel.current
    assert root is not None and root.name == "rootserver" and high.paddr in s.kernel.scheduler.queued
    s.kernel.timer_tick()
    assert s.kernel.current is root  # domain 0's turn lasts 2^56 - 1 ticks
