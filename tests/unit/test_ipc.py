"""Endpoint IPC between threads on the fake machine (non-MCS seL4 semantics).

Threads besides the root task are retyped TCBs configured by hand: the root's CSpace
and VSpace caps copied into their slots, a priority, Running and enqueued. Syscalls are
driven by loading the current thread's registers and calling ``kernel.syscall()``; the
invariant checks (including the endpoint rules) run after every entry.
"""

from __future__ import annotations

import struct

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import IPC_BUFFER, FaultLabel, InitialCap, Syscall
from kernel.core.ipc_transfer import get_window
from kernel.cspace import cdt
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from kernel.model.caps import EndpointCap, ReplyCap, Rights, UntypedCap
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.message import MessageInfo
from kernel.model.paging import Access
from kernel.model.tcb import CALLER, TCB, ThreadState
from kernel.views.invariants import check_all
from tests.abi.support import CNODE, System

VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
MSG = IPC_BUFFER.offset("msg")
CAPS = IPC_BUFFER.offset("caps_or_badges")
RECV = IPC_BUFFER.offset("receiveCNode")


class World:
    """A booted root task plus helpers to make endpoints and threads."""

    def __init__(self, arch: Arch, fastpath: bool = True,
                 server_backed_cnodes: bool = False) -> None:
        self.sys = System(arch, fastpath=fastpath, server_backed_cnodes=server_backed_cnodes)
        self.kernel = self.sys.kernel
        self.machine = self.sys.machine
        self.root = self.kernel.current
        assert self.root is not None
        start, end = self.sys.report.bootinfo.untyped
        self.ut = max(
            (i for i in range(start, end)
             if isinstance(self.sys.cap(i), UntypedCap) and not self.sys.cap(i).is_device),
            key=lambda i: self.sys.cap(i).size_bits,  # type: ignore[attr-defined]
        )
        self.page_type = self.sys.otype(
            "seL4_RISCV_4K_Page" if arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject")

    def make(self, otype: int) -> int:
        slot = self.sys.free_slots(1)
        reply = self.sys.retype(self.ut, otype, 0, slot, 1)
        assert reply.label == 0, reply
        return slot

    def endpoint(self) -> tuple[int, Endpoint]:
        slot = self.make(self.sys.otype("seL4_EndpointObject"))
        ep = self.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(ep, Endpoint)
        return slot, ep

    def mint(self, src: int, badge: int = 0, rights: Rights | None = None) -> int:
        """A copy of endpoint cap ``src`` with ``badge`` and ``rights`` (as CNode Mint)."""
        cap = self.sys.cap(src)
        assert isinstance(cap, EndpointCap)
        dest = self.sys.free_slots(1)
        new = EndpointCap(cap.paddr, badge, rights or Rights())
        cdt.insert(new, self.sys.slots[src], self.sys.slots[dest])
        return dest

    def thread(self, priority: int, ipc_buffer: bool = True) -> TCB:
        slot = self.make(self.sys.otype("seL4_TCBObject"))
        tcb = self.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(tcb, TCB)
        cdt.insert_child(self.sys.slots[CNODE], tcb.ctable, self.sys.cap(CNODE), False)
        cdt.insert_child(self.sys.slots[VSPACE], tcb.vtable, self.sys.cap(VSPACE), False)
        if ipc_buffer:
            frame = self.make(self.page_type)
            cdt.insert_child(self.sys.slots[frame], tcb.ipc_buffer_slot,
                             self.sys.cap(frame), False)
            tcb.ipc_buffer = 0x7000_0000
        tcb.priority = priority
        tcb.state = ThreadState.RUNNING
        self.kernel.scheduler.enqueue(tcb)
        check_all(self.kernel)
        return tcb

    # --- driving ---------------------------------------------------------------------

    def syscall(self, number: int, *args: int) -> None:
        self.machine.syscall_args(number, *args)
        self.kernel.syscall()

    def window(self, tcb: TCB) -> list[int]:
        return get_window(self.kernel, tcb)

    def info(self, tcb: TCB) -> MessageInfo:
        return MessageInfo.from_word(self.window(tcb)[1])

    def buf(self, tcb: TCB) -> int:
        paddr = ipc_buffer_paddr(self.kernel, tcb, for_write=True)
        assert paddr is not None
        return paddr

    def write_words(self, tcb: TCB, offset: int, words: list[int]) -> None:
        self.machine.write_phys(self.buf(tcb) + offset, struct.pack(f"<{len(words)}Q", *words))

    def read_words(self, tcb: TCB, offset: int, count: int) -> list[int]:
        raw = self.machine.read_phys(self.buf(tcb) + offset, 8 * count)
        return list(struct.unpack(f"<{count}Q", raw))


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def tag(label: int, length: int, extra: int = 0) -> int:
    return MessageInfo(label, 0, extra, length).to_word()


def test_recv_then_send_delivers_badge_label_and_mrs(world: World) -> None:
    slot, ep = world.endpoint()
    badged = world.mint(slot, badge=0x55)
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.root.state is ThreadState.BLOCKED_ON_RECEIVE and ep.state is EndpointState.RECV
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, badged, tag(5, 3), 11, 22, 33, 44)
    assert world.kernel.current is world.root  # higher priority: runs at exit
    assert world.window(world.root)[0] == 0x55
    assert world.info(world.root) == MessageInfo(5, 0, 0, 3)
    assert world.window(world.root)[2:5] == [11, 22, 33]
    assert b.state is ThreadState.RUNNING and ep.state is EndpointState.IDLE


def test_send_then_recv(world: World) -> None:
    slot, ep = world.endpoint()
    badged = world.mint(slot, badge=9)
    world.root.priority = 10
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, badged, tag(1, 2), 7, 8)
    assert b.state is ThreadState.BLOCKED_ON_SEND and ep.queue == [b]
    assert world.kernel.current is world.root
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.window(world.root)[:4] == [9, tag(1, 2), 7, 8]
    assert b.state is ThreadState.RUNNING and world.kernel.current is b


def test_senders_are_served_in_fifo_order(world: World) -> None:
    slot, ep = world.endpoint()
    other, _ = world.endpoint()
    first, second = world.mint(slot, badge=1), world.mint(slot, badge=2)
    world.root.priority = 10
    b, c = world.thread(100), world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, first, tag(0, 0))
    assert world.kernel.current is c
    world.syscall(Syscall.seL4_SysSend, second, tag(0, 0))
    assert ep.queue == [b, c] and world.kernel.current is world.root
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.window(world.root)[0] == 1 and ep.queue == [c]
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysRecv, other)  # b waits elsewhere: root runs again
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.window(world.root)[0] == 2 and ep.state is EndpointState.IDLE


def test_nbsend_without_receiver_is_dropped(world: World) -> None:
    slot, ep = world.endpoint()
    world.syscall(Syscall.seL4_SysNBSend, slot, tag(1, 1), 5)
    assert ep.state is EndpointState.IDLE and world.kernel.current is world.root
    assert world.root.state is ThreadState.RUNNING


def test_nbrecv_with_nothing_returns_badge_zero(world: World) -> None:
    slot, ep = world.endpoint()
    world.syscall(Syscall.seL4_SysNBRecv, slot, tag(3, 0))
    window = world.machine.read_syscall_window()
    assert window[0] == 0 and window[1] == tag(3, 0)  # msginfo left alone
    assert ep.state is EndpointState.IDLE and world.kernel.current is world.root


def test_call_and_reply_recv_round_trip_beyond_four_mrs(world: World) -> None:
    slot, ep = world.endpoint()
    client_cap = world.mint(slot, badge=0x77)
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.kernel.current is b
    world.write_words(b, MSG + 32, [104, 105, 106, 107])
    world.syscall(Syscall.seL4_SysCall, client_cap, tag(4, 8), 100, 101, 102, 103)
    assert b.state is ThreadState.BLOCKED_ON_REPLY and world.kernel.current is world.root
    assert world.window(world.root)[:6] == [0x77, tag(4, 8), 100, 101, 102, 103]
    assert world.read_words(world.root, MSG + 32, 4) == [104, 105, 106, 107]
    caller = world.root.slots[CALLER]
    assert caller.cap == ReplyCap(b.paddr, can_grant=True)
    assert caller.mdb_prev is b.slots[2]  # a CDT child of b's master reply cap
    world.write_words(world.root, MSG + 32, [204, 205])
    world.syscall(Syscall.seL4_SysReplyRecv, slot, tag(9, 6), 200, 201, 202, 203)
    assert caller.is_empty  # consumed
    assert world.root.state is ThreadState.BLOCKED_ON_RECEIVE
    assert world.kernel.current is b and b.state is ThreadState.RUNNING
    assert world.window(b)[:6] == [0, tag(9, 6), 200, 201, 202, 203]
    assert world.read_words(b, MSG + 32, 2) == [204, 205]


def test_message_is_cut_to_four_without_an_ipc_buffer(world: World) -> None:
    slot, _ = world.endpoint()
    b = world.thread(100, ipc_buffer=False)
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysSend, slot, tag(2, 9), 1, 2, 3, 4)
    assert world.info(world.root) == MessageInfo(2, 0, 0, 4)
    assert b.state is ThreadState.RUNNING


def test_recv_deletes_a_stale_caller_cap(world: World) -> None:
    slot, _ = world.endpoint()
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysCall, slot, tag(0, 0))
    assert not world.root.slots[CALLER].is_empty
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.root.slots[CALLER].is_empty
    assert b.state is ThreadState.BLOCKED_ON_REPLY  # never answered, as on seL4
    assert world.kernel.stop is not None and world.kernel.stop.kind == "idle"


def test_call_without_grant_or_grant_reply_leaves_the_caller_inactive(world: World) -> None:
    slot, _ = world.endpoint()
    plain = world.mint(slot, rights=Rights(write=True, read=True, grant=False, grant_reply=False))
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysCall, plain, tag(1, 0))
    assert b.state is ThreadState.INACTIVE
    assert world.root.slots[CALLER].is_empty and world.kernel.current is world.root


def test_send_without_send_right_is_invalid_capability(world: World) -> None:
    slot, ep = world.endpoint()
    recv_only = world.mint(slot, rights=Rights(write=False, read=True))
    world.syscall(Syscall.seL4_SysCall, recv_only, tag(1, 0))
    assert world.info(world.root).label == 2 and ep.state is EndpointState.IDLE


def test_a_cap_is_transferred_into_the_receive_slot_as_a_cdt_child(world: World) -> None:
    slot, _ = world.endpoint()
    other, _ = world.endpoint()
    b = world.thread(100)
    dest = world.sys.free_slots(1)
    world.write_words(world.root, RECV, [CNODE, dest, 64])
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.write_words(b, CAPS, [other])
    world.syscall(Syscall.seL4_SysSend, slot, tag(3, 0, extra=1))
    assert world.info(world.root) == MessageInfo(3, 0, 1, 0)
    assert world.sys.cap(dest) == world.sys.cap(other)
    assert cdt.first_child(world.kernel, world.sys.slots[other]) is world.sys.slots[dest]


def test_caps_without_grant_are_dropped(world: World) -> None:
    slot, _ = world.endpoint()
    other, _ = world.endpoint()
    no_grant = world.mint(slot, rights=Rights(grant=False))
    b = world.thread(100)
    dest = world.sys.free_slots(1)
    world.write_words(world.root, RECV, [CNODE, dest, 64])
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.write_words(b, CAPS, [other])
    world.syscall(Syscall.seL4_SysSend, no_grant, tag(3, 0, extra=1))
    assert world.info(world.root).extra_caps == 0 and world.sys.slots[dest].is_empty


def test_a_cap_to_the_same_endpoint_is_unwrapped(world: World) -> None:
    slot, _ = world.endpoint()
    badged = world.mint(slot, badge=0xB0B)
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)  # no receive slot: unwrapping still works
    world.write_words(b, CAPS, [badged])
    world.syscall(Syscall.seL4_SysSend, slot, tag(3, 0, extra=1))
    assert world.info(world.root) == MessageInfo(3, 1, 1, 0)
    assert world.read_words(world.root, CAPS, 1) == [0xB0B]


def test_unknown_syscall_fault_goes_to_the_handler_and_its_reply_resumes(world: World) -> None:
    slot, _ = world.endpoint()
    fault_cap = world.mint(slot, badge=0xF)
    b = world.thread(100)
    b.fault_ep = fault_cap
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.machine.registers[0] = 0x4004  # pc past the trap
    world.syscall(-99)
    abi = world.kernel.abi
    assert b.state is ThreadState.BLOCKED_ON_REPLY and world.kernel.current is world.root
    info = world.info(world.root)
    assert info.label == FaultLabel.seL4_Fault_UnknownSyscall
    assert info.length == len(abi.unknown_syscall_mrs)
    assert world.window(world.root)[0] == 0xF
    names = [n for n in abi.unknown_syscall_mrs if n != "Syscall"]
    reply = [0x1000 + i for i in range(len(names))]
    world.write_words(world.root, MSG + 32, reply[4:])
    world.syscall(Syscall.seL4_SysReply, 0, tag(0, len(reply)), *reply[:4])
    assert b.state is ThreadState.RESTART and b.fault is None
    assert world.kernel.registers_of(b)[0] == reply[names.index("FaultIP")]
    assert world.kernel.registers_of(b)[world.kernel.reg_index["sp"]] == reply[names.index("SP")]


def test_a_non_zero_fault_reply_label_leaves_the_thread_inactive(world: World) -> None:
    slot, _ = world.endpoint()
    b = world.thread(100)
    b.fault_ep = slot
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.machine.registers[0] = 0x4004
    world.syscall(-99)
    world.syscall(Syscall.seL4_SysReply, 0, tag(1, 0))
    assert b.state is ThreadState.INACTIVE


def test_vm_fault_reply_restarts_at_the_faulting_instruction(world: World) -> None:
    slot, _ = world.endpoint()
    b = world.thread(100)
    b.fault_ep = slot
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.machine.registers[0] = 0x5000
    world.kernel.vm_fault(0xDEAD000, Access.READ, 13)
    assert world.info(world.root) == MessageInfo(int(FaultLabel.seL4_Fault_VMFault), 0, 0, 4)
    assert world.window(world.root)[2:6] == [0x5000, 0xDEAD000, 0, 13]
    world.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))
    assert b.state is ThreadState.RESTART and world.kernel.registers_of(b)[0] == 0x5000


def test_fault_blocks_on_send_until_the_handler_receives(world: World) -> None:
    slot, ep = world.endpoint()
    world.root.priority = 10
    b = world.thread(100)
    b.fault_ep = slot
    world.syscall(Syscall.seL4_SysYield)
    world.machine.registers[0] = 0x6000
    world.kernel.vm_fault(0x10, Access.WRITE, 15)
    assert b.state is ThreadState.BLOCKED_ON_SEND and ep.queue == [b]
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.info(world.root).label == FaultLabel.seL4_Fault_VMFault
    assert b.state is ThreadState.BLOCKED_ON_REPLY


def test_deleting_the_endpoint_restarts_its_waiters(world: World) -> None:
    slot, ep = world.endpoint()
    world.root.priority = 10
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    world.machine.registers[0] = 0x7004
    world.syscall(Syscall.seL4_SysSend, slot, tag(0, 0))
    assert b.state is ThreadState.BLOCKED_ON_SEND
    world.sys.call(CNODE, world.sys.label("CNodeDelete"), [slot, 64])
    assert ep.state is EndpointState.IDLE
    assert b.state is ThreadState.RESTART and world.kernel.registers_of(b)[0] == 0x7000  # the trap again


def test_cancel_badged_sends_restarts_only_that_badge(world: World) -> None:
    slot, ep = world.endpoint()
    one, two = world.mint(slot, badge=1), world.mint(slot, badge=2)
    world.root.priority = 10
    b, c = world.thread(100), world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    world.syscall(Syscall.seL4_SysSend, one, tag(0, 0))
    world.syscall(Syscall.seL4_SysSend, two, tag(0, 0))
    assert ep.queue == [b, c]
    reply = world.sys.call(CNODE, world.sys.label("CNodeCancelBadgedSends"), [one, 64])
    assert reply.label == 0
    assert b.state is ThreadState.RESTART and ep.queue == [c]


def test_suspending_a_blocked_thread_takes_it_off_the_queue(world: World) -> None:
    slot, ep = world.endpoint()
    world.root.priority = 10
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    world.syscall(Syscall.seL4_SysSend, slot, tag(0, 0))
    tcb_slot = next(s.index for s in world.sys.slots
                    if s.cap.object_paddr == b.paddr and s.cap.tag.name == "thread_cap")
    world.sys.call(CNODE, world.sys.label("CNodeDelete"), [tcb_slot, 64])
    assert b.state is ThreadState.INACTIVE and ep.state is EndpointState.IDLE


def test_send_on_a_saved_reply_cap_is_the_reply_and_consumes_it(world: World) -> None:
    """seL4's performInvocation_Reply: a reply cap moved out of the caller slot with
    CNode SaveCaller answers its caller when invoked (here by a Send), once."""
    slot, _ = world.endpoint()
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysCall, slot, tag(1, 1), 0x42)
    assert world.kernel.current is world.root and b.state is ThreadState.BLOCKED_ON_REPLY
    saved = world.sys.free_slots(1)
    assert world.sys.call(CNODE, world.sys.label("CNodeSaveCaller"), [saved, 64]).label == 0
    assert world.root.slots[CALLER].is_empty
    assert world.sys.cap(saved) == ReplyCap(b.paddr, can_grant=True)
    world.syscall(Syscall.seL4_SysReply, 0, tag(9, 1), 0xbad)  # empty caller slot: nothing
    assert b.state is ThreadState.BLOCKED_ON_REPLY
    world.syscall(Syscall.seL4_SysSend, saved, tag(7, 2), 0x43, 0x44)
    assert world.sys.slots[saved].is_empty  # used up
    assert b.state is ThreadState.RUNNING
    assert world.window(b)[:4] == [0, tag(7, 2), 0x43, 0x44]
    assert world.kernel.current is world.root  # b (100) is below the root (255)


def test_call_on_a_saved_reply_cap_gets_an_empty_success_reply(world: World) -> None:
    slot, _ = world.endpoint()
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysCall, slot, tag(1, 0))
    saved = world.sys.free_slots(1)
    assert world.sys.call(CNODE, world.sys.label("CNodeSaveCaller"), [saved, 64]).label == 0
    world.syscall(Syscall.seL4_SysCall, saved, tag(3, 1), 0x99)
    assert world.info(world.root) == MessageInfo(0, 0, 0, 0)
    assert world.root.state is ThreadState.RUNNING and world.sys.slots[saved].is_empty
    assert world.window(b)[:3] == [0, tag(3, 1), 0x99]


def _aarch64_unknown_syscall(spsr: int = 0) -> tuple[World, TCB, list[str]]:
    """An AArch64 thread (SPSR ``spsr`` in the machine) makes an unknown syscall; the
    root task, receiving on its fault endpoint, gets the fault message. Returns the
    world, the thread and the names of the message's registers."""
    world = World(Arch.AARCH64)
    slot, _ = world.endpoint()
    b = world.thread(100)
    b.fault_ep = slot
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.machine.registers[0] = 0x4004
    world.machine.registers[world.kernel.reg_index["spsr"]] = spsr
    world.syscall(-99)
    return world, b, [n for n in world.kernel.abi.unknown_syscall_mrs if n != "Syscall"]


def test_a_fault_reply_cannot_give_an_aarch64_thread_a_privileged_spsr() -> None:
    """seL4's copyMRsFaultReply sanitises each register: SPSR keeps NZCV only and
    gets the user-mode bits, whatever the handler's reply says."""
    world, b, names = _aarch64_unknown_syscall()
    reply = [0] * len(names)
    reply[names.index("FaultIP")] = 0x4004
    reply[names.index("SPSR")] = 0xF000_03C5  # all flags, EL1h, DAIF masked
    world.write_words(world.root, MSG + 32, reply[4:])
    world.syscall(Syscall.seL4_SysReply, 0, tag(0, len(reply)), *reply[:4])
    assert b.state is ThreadState.RESTART
    assert world.kernel.registers_of(b)[world.kernel.reg_index["spsr"]] == 0xF000_0040


def test_an_aarch64_fault_message_reports_spsr_as_the_hardware_saved_it() -> None:
    """The emulator keeps NZCV (and whatever its own upper bits hold); seL4's message
    carries the saved SPSR, which has EL0t with FIQs masked (bit 6) besides the flags."""
    world, _, names = _aarch64_unknown_syscall(spsr=(1 << 40) | 0x8000_0000)
    words = world.window(world.root)[2:6] + world.read_words(world.root, MSG + 32,
                                                             len(names) - 4)
    assert words[names.index("SPSR")] == 0x8000_0040


def test_cancel_all_on_an_idle_endpoint_changes_nothing() -> None:
    # seL4's cancelAllIPC does nothing for an idle endpoint: in particular no
    # rescheduleRequired, which would otherwise reorder a pending switch candidate.
    from kernel.core.ipc import cancel_all_ipc

    k = System(Arch.RISCV64).kernel
    assert k.scheduler.choose_new is False and k.scheduler.candidate is None
    endpoint = Endpoint(0x8000_0000)
    cancel_all_ipc(k, endpoint)
    assert endpoint.state is EndpointState.IDLE and endpoint.queue == []
    assert k.scheduler.choose_new is False and k.scheduler.candidate is None
