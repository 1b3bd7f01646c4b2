"""TCB invocations' effects on the fake machine (non-MCS seL4 semantics).

The error cases are in tests/abi/test_tcb_errors.py; here: what a successful
invocation changes — slots and derivation links, registers and the restart pc, thread
states and the order of the ready queues.
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap, Syscall
from kernel.cspace.cdt import is_mdb_parent_of
from kernel.model.caps import CNodeCap, FrameCap, ThreadCap
from kernel.model.tcb import TCB, ThreadState
from tests.unit.test_ipc import CNODE, VSPACE, World, tag

ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def new_tcb(world: World) -> tuple[int, TCB]:
    slot = world.make(world.sys.otype("seL4_TCBObject"))
    tcb = world.kernel.objects[world.sys.cap(slot).object_paddr]  # type: ignore[index]
    assert isinstance(tcb, TCB) and tcb.state is ThreadState.INACTIVE
    return slot, tcb


def cap_slot(world: World, tcb: TCB) -> int:
    """The root-CNode slot holding the cap World.thread() retyped for ``tcb``."""
    return next(slot.index for slot in world.sys.slots
                if slot.cap == ThreadCap(tcb.paddr))


def call(world: World, cptr: int, label: str, args: list[int],
         extra: tuple[int, ...] | list[int] = ()) -> list[int]:
    reply = world.sys.call(cptr, world.sys.label(label), args, extra)
    assert reply.label == 0, reply
    return reply.words


def test_configure_installs_derived_caps_as_children(world: World) -> None:
    slot, tcb = new_tcb(world)
    frame = world.make(world.page_type)
    call(world, slot, "TCBConfigure", [0x77, 0, 0, 0x7000_0400], [CNODE, VSPACE, frame])
    k = world.kernel
    assert tcb.fault_ep == 0x77 and tcb.ipc_buffer == 0x7000_0400
    assert isinstance(tcb.ctable.cap, CNodeCap)
    assert is_mdb_parent_of(k, world.sys.slots[CNODE], tcb.ctable)
    assert is_mdb_parent_of(k, world.sys.slots[VSPACE], tcb.vtable)
    assert isinstance(tcb.ipc_buffer_slot.cap, FrameCap)
    assert is_mdb_parent_of(k, world.sys.slots[frame], tcb.ipc_buffer_slot)
    # Buffer address 0: the slot is emptied, the address cleared.
    call(world, slot, "TCBSetIPCBuffer", [0], [frame])
    assert tcb.ipc_buffer_slot.is_empty and tcb.ipc_buffer == 0


def test_resume_queues_at_the_front_so_last_resumed_runs_first(world: World) -> None:
    a, ta = new_tcb(world)
    b, tb = new_tcb(world)
    for slot in (a, b):
        call(world, slot, "TCBSetPriority", [100], [ROOT_TCB])
        call(world, slot, "TCBResume", [])
    assert ta.state is tb.state is ThreadState.RESTART
    assert world.kernel.scheduler.queue(0, 100) == [tb, ta]
    assert world.kernel.current is world.root  # priority 255 keeps running
    # Lowering the root task below them runs the last resumed first.
    call(world, ROOT_TCB, "TCBSetPriority", [50], [ROOT_TCB])
    assert world.kernel.current is tb


def test_higher_priority_resume_preempts(world: World) -> None:
    world.root.priority = 10
    slot, tcb = new_tcb(world)
    call(world, slot, "TCBSetPriority", [9], [ROOT_TCB])
    call(world, slot, "TCBResume", [])
    assert world.kernel.current is world.root
    call(world, slot, "TCBSetPriority", [11], [ROOT_TCB])
    assert world.kernel.current is tcb


def test_blocked_thread_shows_the_trap_as_pc_and_restarts_its_syscall(world: World) -> None:
    ep_slot, ep = world.endpoint()
    b = world.thread(200)
    world.root.priority = 100
    b_cap = cap_slot(world, b)
    world.syscall(Syscall.seL4_SysYield)  # b runs
    assert world.kernel.current is b
    world.machine.registers[0] = 0x5004  # resume pc after b's trap at 0x5000
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    assert b.state is ThreadState.BLOCKED_ON_RECEIVE and world.kernel.current is world.root
    n = len(world.kernel.abi.user_context)
    assert call(world, b_cap, "TCBReadRegisters", [0, 1])[0] == 0x5000
    call(world, b_cap, "TCBSuspend", [])
    assert b.state is ThreadState.INACTIVE and ep.queue == []
    assert call(world, b_cap, "TCBReadRegisters", [0, n])[0] == 0x5000
    call(world, b_cap, "TCBResume", [])  # b (200) runs at once, from the trap again
    assert world.kernel.current is b and world.kernel.registers_of(b)[0] == 0x5000


def test_running_thread_suspended_continues_after_its_syscall(world: World) -> None:
    b = world.thread(5)
    b_cap = cap_slot(world, b)
    world.kernel.registers_of(b)[0] = 0x6004
    b.after_syscall = True  # as if b's last entry were a syscall that completed
    assert call(world, b_cap, "TCBReadRegisters", [0, 1])[0] == 0x6000
    call(world, b_cap, "TCBSuspend", [])
    assert call(world, b_cap, "TCBReadRegisters", [0, 1])[0] == 0x6004  # updateRestartPC


def test_set_flags_replies_with_the_masked_flags(world: World) -> None:
    slot, tcb = new_tcb(world)
    assert call(world, slot, "TCBSetFlags", [0, 0xFF]) == [1]
    assert call(world, slot, "TCBSetFlags", [1, 0]) == [0] and tcb.flags == 0


def test_suspending_itself_gets_no_reply_and_stops(world: World) -> None:
    b = world.thread(5)
    world.machine.syscall_args(Syscall.seL4_SysCall, ROOT_TCB,
                               tag(world.sys.label("TCBSuspend"), 0))
    world.kernel.syscall()
    assert world.root.state is ThreadState.INACTIVE and world.kernel.current is b


def test_deleting_the_last_cap_suspends_a_blocked_thread(world: World) -> None:
    ep_slot, ep = world.endpoint()
    slot, tcb = new_tcb(world)
    call(world, slot, "TCBConfigure", [0, 0, 0, 0], [CNODE, VSPACE, CNODE])
    call(world, slot, "TCBSetPriority", [100], [ROOT_TCB])
    call(world, slot, "TCBResume", [])
    world.root.priority = 50
    call(world, ROOT_TCB, "TCBSetPriority", [50], [ROOT_TCB])
    assert world.kernel.current is tcb
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    assert tcb.state is ThreadState.BLOCKED_ON_RECEIVE
    call(world, CNODE, "CNodeDelete", [slot, 64])
    assert tcb.state is ThreadState.INACTIVE and ep.queue == [] and tcb.ctable.is_empty
