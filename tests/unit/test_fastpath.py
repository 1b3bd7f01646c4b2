"""The IPC fastpath leaves exactly the state the general path leaves.

Each test runs the same syscalls on two kernels, one with ``KernelConfig.fastpath`` on
and one with it off, and compares a full picture of kernel state after every step:
every thread's registers, state, blocking endpoint and fault; endpoint queues; the
scheduler's queues and the current thread; every cap and its derivation links. The
fastpath is also shown to have been taken, so that the comparison is not vacuous.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import Syscall
from kernel.cspace.lookup import lookup_slot
from kernel.entry import fastpath
from kernel.model.endpoint import Endpoint
from kernel.model.slot import Slot
from kernel.model.tcb import TCB, ThreadState
from kernel.views.render import all_slots, slot_id
from tests.fuzzing import fuzzed
from tests.unit.test_ipc import World, tag
from tests.unit.test_ipc_properties import SCENARIO_ARGUMENTS, Scenario, step_strategy


def picture(world: World) -> dict[str, Any]:
    """Everything the fastpath could change, keyed by stable names (paddrs, slot ids)."""
    kernel = world.kernel
    live = kernel.machine.save_context() if kernel.current is not None else None
    threads = {}
    for obj in kernel.objects.values():
        if isinstance(obj, TCB):
            regs = live if kernel.registers_live(obj) else kernel.registers_of(obj)
            threads[obj.paddr] = (
                obj.state, list(regs or []), obj.priority, obj.fault,
                obj.blocking.endpoint.paddr if obj.blocking else None,
                obj.blocking and (obj.blocking.badge, obj.blocking.can_grant,
                                  obj.blocking.can_grant_reply, obj.blocking.is_call),
            )
    endpoints = {obj.paddr: (obj.state, [t.paddr for t in obj.queue])
                 for obj in kernel.objects.values() if isinstance(obj, Endpoint)}
    sched = kernel.scheduler
    slots = {
        slot_id(kernel, slot): (
            slot.cap,
            slot.mdb_prev and slot_id(kernel, slot.mdb_prev),
            slot.mdb_next and slot_id(kernel, slot.mdb_next),
        )
        for slot in all_slots(kernel)
    }
    return {
        "threads": threads, "endpoints": endpoints, "slots": slots,
        "current": kernel.current and kernel.current.paddr, "stop": kernel.stop,
        "queues": [(d, p, [t.paddr for t in q]) for d, p, q in sched.queues()],
        "action": (sched.choose_new, sched.candidate and sched.candidate.paddr),
    }


class Counted:
    """Counts the fastpath's successes (wrapping the functions the syscall table uses)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = 0
        from kernel.entry import syscalls

        for name in ("fastpath_call", "fastpath_reply_recv"):
            original = getattr(fastpath, name)

            def counting(kernel: Any, window: list[int], _f: Any = original) -> Any:
                outcome = _f(kernel, window)  # True when taken (fastpath_call: or a Slot)
                self.taken += outcome is True
                return outcome

            monkeypatch.setattr(syscalls, name, counting)


def pair(arch: Arch, client_prio: int, server_prio: int) -> tuple[World, World, int, int]:
    """The same client/server set-up twice (fastpath on, fastpath off), with the
    endpoint's slot and a badged copy's (the same numbers in both worlds)."""
    worlds = []
    for fast in (True, False):
        w = World(arch, fast)
        slot, _ = w.endpoint()
        w.root.priority = client_prio
        w.thread(server_prio)
        badged = w.mint(slot, badge=0x42)
        worlds.append(w)
    return worlds[0], worlds[1], slot, badged


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize(("client_prio", "server_prio"), [(100, 100), (100, 200), (200, 100)])
def test_round_trips_match_the_general_path(monkeypatch: pytest.MonkeyPatch, arch: Arch,
                                            client_prio: int, server_prio: int) -> None:
    counted = Counted(monkeypatch)
    fast, slow, ep, badged = pair(arch, client_prio, server_prio)
    steps: list[tuple[int, ...]] = []
    if server_prio <= client_prio:
        steps.append((Syscall.seL4_SysYield,))  # equal priority: let the server run
    steps.append((Syscall.seL4_SysRecv, ep))  # the server waits (or the client, below)
    for i in range(6):
        steps.append((Syscall.seL4_SysCall, badged, tag(7 + i, i % 5), 10 + i, 20, 30, 40))
        steps.append((Syscall.seL4_SysReplyRecv, ep, tag(i, 4 - i % 5), 50 + i, 60, 70, 80))
    for step in steps:
        for w in (fast, slow):
            if w.kernel.current is not None:
                w.syscall(*step)
        assert picture(fast) == picture(slow), step
    if server_prio >= client_prio:
        assert counted.taken >= 6  # the calls went the fast way (replies too when allowed)
    assert fast.kernel.kernel_entries == slow.kernel.kernel_entries


@fuzzed(80, HealthCheck.function_scoped_fixture)
@given(**SCENARIO_ARGUMENTS)
def test_random_ipc_is_the_same_with_and_without_the_fastpath(
    data: st.DataObject, arch: Arch, priorities: list[int], grants: list[bool],
    fault_handlers: list[int],
) -> None:
    fast = Scenario(arch, priorities, grants, fault_handlers, fastpath=True)
    slow = Scenario(arch, priorities, grants, fault_handlers, fastpath=False)
    steps = data.draw(st.lists(step_strategy(fast.good_cptrs()), min_size=10, max_size=60))
    for step in steps:
        fast.run([step])
        slow.run([step])
        assert picture(fast.world) == picture(slow.world), step


def test_the_fastpath_declines_what_it_does_not_handle(arch: Arch = Arch.RISCV64) -> None:
    """Extra caps, long messages, no waiting receiver, a lower-priority receiver. Where
    it looked the cap up before declining, it hands the slot to the general path."""
    w = World(arch)
    slot, _ = w.endpoint()
    w.root.priority = 100
    low = w.thread(50)
    kernel = w.kernel
    endpoint_slot = lookup_slot(kernel, w.root, slot)
    assert isinstance(endpoint_slot, Slot) and not endpoint_slot.is_empty
    window = [slot, tag(1, 5), 0, 0, 0, 0, 0, Syscall.seL4_SysCall]
    assert fastpath.fastpath_call(kernel, window) is False  # 5 words
    window[1] = tag(1, 1, extra=1)
    assert fastpath.fastpath_call(kernel, window) is False  # an extra cap
    window[1] = tag(1, 1)
    assert fastpath.fastpath_call(kernel, window) is endpoint_slot  # nobody waits
    window[0] = w.sys.free_slots(1)  # an empty slot: looked up, nothing to hand on
    assert fastpath.fastpath_call(kernel, window) is False
    window[0] = slot
    low.state = ThreadState.BLOCKED_ON_RECEIVE  # as if it waited (queued below)
    ep = kernel.objects[w.sys.cap(slot).object_paddr]  # type: ignore[attr-defined]
    assert isinstance(ep, Endpoint)
    kernel.scheduler.dequeue(low)
    from kernel.model.endpoint import EndpointState
    from kernel.model.tcb import Blocking

    ep.state, ep.queue, low.blocking = EndpointState.RECV, [low], Blocking(ep)
    assert fastpath.fastpath_call(kernel, window) is endpoint_slot  # a lower-priority receiver
    assert kernel.current is w.root and w.root.state is ThreadState.RUNNING
