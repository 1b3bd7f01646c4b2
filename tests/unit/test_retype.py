"""Untyped_Retype on the fake machine: every object type, placement, zeroing, the CDT."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.abi.arch import Arch, ObjectTypeAArch64, ObjectTypeRV64, abi_for
from kernel.abi.constants import MIN_UNTYPED_BITS, Error, InitialCap
from kernel.boot import BootError, boot
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.caps import (
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.notification import Notification, NotificationState
from kernel.model.tcb import TCB, ThreadState
from kernel.objects.retype import zero_phys
from kernel.objects.untyped import untyped_free_bytes
from tests.abi.support import CNODE, System
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def system(request: pytest.FixtureRequest) -> System:
    return System(request.param)


def _all_types() -> list[tuple[Arch, str]]:
    cases = []
    for arch, enum in ((Arch.RISCV64, ObjectTypeRV64), (Arch.AARCH64, ObjectTypeAArch64)):
        cases += [(arch, m.name) for m in enum if m.name != "seL4_ObjectTypeCount"]
    return cases


# (cap class, log2 size, user size_bits) per type name; huge pages do not fit in 8 MiB.
EXPECTED = {
    "seL4_UntypedObject": (UntypedCap, 8, 8),
    "seL4_TCBObject": (ThreadCap, None, 0),
    "seL4_EndpointObject": (EndpointCap, 4, 0),
    "seL4_NotificationObject": (NotificationCap, 5, 0),
    "seL4_CapTableObject": (CNodeCap, 5 + 3, 3),
    "seL4_RISCV_Giga_Page": (FrameCap, 30, 0),
    "seL4_RISCV_4K_Page": (FrameCap, 12, 0),
    "seL4_RISCV_Mega_Page": (FrameCap, 21, 0),
    "seL4_RISCV_PageTableObject": (PageTableCap, 12, 0),
    "seL4_ARM_HugePageObject": (FrameCap, 30, 0),
    "seL4_ARM_VSpaceObject": (VSpaceCap, 12, 0),
    "seL4_ARM_SmallPageObject": (FrameCap, 12, 0),
    "seL4_ARM_LargePageObject": (FrameCap, 21, 0),
    "seL4_ARM_PageTableObject": (PageTableCap, 12, 0),
}


def _dirty(system: System, paddr: int, size: int) -> None:
    system.machine.write_phys(paddr, b"\xa5" * size)


@pytest.mark.parametrize(("arch", "name"), _all_types(), ids=lambda v: getattr(v, "short", v))
def test_each_object_type(arch: Arch, name: str) -> None:
    system = System(arch)
    cls, bits, user_size = EXPECTED[name]
    bits = abi_for(arch).tcb_bits if bits is None else bits
    ut_index = system.untyped(22)
    ut = system.cap(ut_index)
    assert isinstance(ut, UntypedCap)
    _dirty(system, ut.paddr, 1 << 22)  # boot untypeds start full: the first retype resets
    dest = system.free_slots(2)
    reply = system.retype(ut_index, system.otype(name), user_size, dest, 2)
    if bits > 22:
        assert (reply.label, reply.words) == (Error.seL4_NotEnoughMemory, [1 << 22])
        return
    assert (reply.label, reply.words) == (0, [])
    caps = [system.cap(dest), system.cap(dest + 1)]
    assert all(type(c) is cls for c in caps)
    assert [c.object_paddr for c in caps] == [ut.paddr, ut.paddr + (1 << bits)]
    after = system.cap(ut_index)
    assert isinstance(after, UntypedCap)
    assert after.free_index == (2 << bits) >> MIN_UNTYPED_BITS
    # The whole untyped is zero again: the reset zeroed what boot had marked used.
    assert system.machine.read_phys(ut.paddr, 1 << 22) == bytes(1 << 22)
    kernel = system.kernel
    for cap in caps:
        paddr = cap.object_paddr
        state = kernel.objects.get(paddr)
        if cls is ThreadCap:
            assert isinstance(state, TCB) and kernel.threads.get(state.paddr) is state
            assert (state.state, state.priority, state.mcp) == (ThreadState.INACTIVE, 0, 0)
            assert state.time_slice == kernel.config.time_slice_ticks
        elif cls is EndpointCap:
            assert isinstance(state, Endpoint)
            assert (state.state, state.queue) == (EndpointState.IDLE, [])
        elif cls is NotificationCap:
            assert isinstance(state, Notification)
            assert (state.state, state.word, state.bound_tcb) == (NotificationState.IDLE, 0, None)
        elif cls is CNodeCap:
            assert isinstance(state, CNode) and len(state.slots) == 8
            assert (cap.radix, cap.guard_size, cap.guard) == (3, 0, 0)
        else:
            assert state is None  # frames, tables, untypeds: RAM only
        if cls is FrameCap:
            assert (cap.size_bits, cap.is_device, cap.is_mapped) == (bits, False, False)
        if cls is UntypedCap:
            assert (cap.size_bits, cap.free_index, cap.is_device) == (8, 0, False)
        if cls in (PageTableCap, VSpaceCap):
            assert not cap.is_mapped


def test_objects_are_children_of_the_untyped_in_order(system: System) -> None:
    ut = system.untyped(16)
    dest = system.free_slots(3)
    assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, dest, 3).label == 0
    parent = system.slots[ut]
    children = [system.slots[dest + i] for i in range(3)]
    # seL4 inserts each new cap right after the untyped: the list reads parent, 2, 1, 0.
    assert parent.mdb_next is children[2]
    assert children[2].mdb_next is children[1] and children[1].mdb_next is children[0]
    assert all(c.revocable and c.first_badged for c in children)


def test_start_is_aligned_up_to_the_object_size(system: System) -> None:
    ut = system.untyped(16)
    base = system.cap(ut).paddr
    dest = system.free_slots(3)
    assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, dest, 1).label == 0
    assert system.retype(ut, system.otype("seL4_TCBObject"), 0, dest + 1, 1).label == 0
    tcb_size = 1 << system.kernel.abi.tcb_bits
    assert system.cap(dest + 1).paddr == base + tcb_size
    assert system.cap(ut).free_index == (2 * tcb_size) >> 4
    # Continuing after the TCB: the next endpoint follows it directly.
    assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, dest + 2, 1).label == 0
    assert system.cap(dest + 2).paddr == base + 2 * tcb_size


def test_free_index_moves_in_16_byte_units(system: System) -> None:
    ut = system.ram_untyped(14)
    dest = system.free_slots(10)
    for i in range(5):
        assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, dest + i, 1).label == 0
        assert system.cap(ut).free_index == i + 1
    assert system.retype(ut, system.otype("seL4_NotificationObject"), 0, dest + 5, 2).label == 0
    assert system.cap(ut).free_index == 6 + 4  # aligned to 32 bytes, then 2 x 32 bytes


def test_retype_into_a_cnode_named_by_index_and_depth(system: System) -> None:
    ut = system.untyped(16)
    node_slot = system.free_slots(1)
    assert system.retype(ut, system.otype("seL4_CapTableObject"), 4, node_slot, 1).label == 0
    reply = system.retype(ut, system.otype("seL4_EndpointObject"), 0, 5, 3,
                          root=CNODE, node_index=node_slot, node_depth=64)
    assert reply.label == 0
    node = system.kernel.objects[system.cap(node_slot).paddr]
    assert isinstance(node, CNode)
    assert [type(node.slots[i].cap) for i in (4, 5, 6, 7, 8)] == [
        type(node.slots[4].cap), EndpointCap, EndpointCap, EndpointCap, type(node.slots[8].cap)]
    assert node.slots[4].is_empty and node.slots[8].is_empty


def test_child_untyped_can_be_retyped_and_whole_copy_leaves_parent_full(system: System) -> None:
    ut = system.ram_untyped(14)
    dest = system.free_slots(3)
    assert system.retype(ut, system.otype("seL4_UntypedObject"), 14, dest, 1).label == 0
    parent = system.cap(ut)
    assert parent.free_index == 1 << (14 - 4)  # the child covers it all: parent is full
    reply = system.retype(ut, system.otype("seL4_EndpointObject"), 0, dest + 1, 1)
    assert (reply.label, reply.words) == (Error.seL4_NotEnoughMemory, [0])
    assert system.retype(dest, system.otype("seL4_EndpointObject"), 0, dest + 1, 1).label == 0
    assert system.cap(dest + 1).paddr == parent.paddr


def test_device_untyped_makes_frames_without_touching_memory(system: System) -> None:
    start, end = system.report.bootinfo.untyped
    dev = next(i for i in range(start, end)
               if isinstance(system.cap(i), UntypedCap) and system.cap(i).is_device)
    dest = system.free_slots(2)
    page = "seL4_RISCV_4K_Page" if system.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    # FakeMachine raises if the kernel writes outside RAM: device memory is left alone.
    assert system.retype(dev, system.otype(page), 0, dest, 1).label == 0
    frame = system.cap(dest)
    assert isinstance(frame, FrameCap) and frame.is_device
    assert system.retype(dev, system.otype("seL4_UntypedObject"), 12, dest + 1, 1).label == 0
    assert system.cap(dest + 1).is_device


def test_untyped_free_bytes_counts_childless_untypeds_as_free(system: System) -> None:
    ut = system.untyped(16)
    paddr = system.cap(ut).paddr
    assert untyped_free_bytes(system.kernel)[paddr] == 1 << 16  # boot: full but childless
    dest = system.free_slots(1)
    assert system.retype(ut, system.otype("seL4_TCBObject"), 0, dest, 1).label == 0
    assert untyped_free_bytes(system.kernel)[paddr] == (1 << 16) - (1 << system.kernel.abi.tcb_bits)


def test_extra_cap_lookup_failure_is_a_cap_fault(system: System) -> None:
    ut = system.untyped(16)
    system.call(ut, system.label("UntypedRetype"), [2, 0, 0, 0, 0, 1], extra=[1 << 63])
    # No error reply: the thread took a cap fault (no handler, so the run stops).
    stop = system.kernel.stop
    assert stop is not None and stop.kind == "fault"
    assert "cap fault in send phase on cptr 0x8000000000000000" in stop.message


def test_failed_send_gets_no_reply(system: System) -> None:
    from kernel.abi.constants import Syscall
    from kernel.model.message import MessageInfo

    ut = system.untyped(16)
    info = MessageInfo(system.label("UntypedRetype"), 0, 0, 6).to_word()
    system.machine.syscall_args(Syscall.seL4_SysSend, ut, info, 99, 0, 0, 0)
    before = system.machine.save_context()
    system.kernel.syscall()
    assert system.machine.save_context() == before
    assert int(InitialCap.seL4_CapInitThreadCNode) == CNODE


# --- leak checks: delete what was retyped, then the untyped starts over -----------------


def _retype_one_of_each(system: System, ut: int) -> list[int]:
    """Retype a mix of objects (and objects inside a child untyped); their slots."""
    page = "seL4_RISCV_4K_Page" if system.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    plan = [("seL4_TCBObject", 0, 2), ("seL4_EndpointObject", 0, 3),
            ("seL4_NotificationObject", 0, 1), ("seL4_CapTableObject", 2, 1),
            (page, 0, 2), ("seL4_UntypedObject", 13, 1)]
    slots: list[int] = []
    for name, size_bits, count in plan:
        dest = system.free_slots(count)
        assert system.retype(ut, system.otype(name), size_bits, dest, count).label == 0
        slots += range(dest, dest + count)
    child = slots[-1]
    dest = system.free_slots(2)
    assert system.retype(child, system.vspace_type, 0, dest, 1).label == 0
    assert system.retype(child, system.otype("seL4_EndpointObject"), 0, dest + 1, 1).label == 0
    return slots + [dest, dest + 1]


def _cnode_op(system: System, name: str, index: int) -> None:
    reply = system.call(CNODE, system.label(name), [index, 64])
    assert (reply.label, reply.words) == (0, []), name


@pytest.mark.parametrize("how", ["revoke", "delete"])
def test_deleting_everything_gives_all_memory_back(system: System, how: str) -> None:
    ut = system.untyped(18)
    base = system.cap(ut).paddr
    initial = untyped_free_bytes(system.kernel)
    slots = _retype_one_of_each(system, ut)
    frame = system.cap(slots[7])
    assert isinstance(frame, FrameCap)
    system.machine.write_phys(frame.paddr, b"dirty" * 100)
    assert untyped_free_bytes(system.kernel)[base] < 1 << 18
    if how == "revoke":
        _cnode_op(system, "CNodeRevoke", ut)
    else:
        for index in reversed(slots):
            _cnode_op(system, "CNodeDelete", index)
    assert all(system.slots[i].is_empty for i in slots)
    assert untyped_free_bytes(system.kernel) == initial
    # The next retype resets the untyped: it starts at the base, on zeroed memory, and
    # the dead objects' state is gone.
    dest = system.free_slots(1)
    page = "seL4_RISCV_4K_Page" if system.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    assert system.retype(ut, system.otype(page), 0, dest, 1).label == 0
    assert system.cap(dest).paddr == base
    assert system.cap(ut).free_index == 1 << (12 - 4)
    assert system.machine.read_phys(frame.paddr, 500) == bytes(500)
    assert not [p for p in system.kernel.objects if base <= p < base + (1 << 18)]
    assert all(not base <= t.paddr < base + (1 << 18) for t in system.kernel.threads.values())


def test_deleting_an_asid_pool_frees_its_index_and_untyped(system: System) -> None:
    from kernel.objects.asid_pool import asid_table

    parent = system.ram_untyped(14)
    ut = system.free_slots(1)
    assert system.retype(parent, system.otype("seL4_UntypedObject"), 12, ut, 1).label == 0
    pool = system.free_slots(1)
    assert system.make_pool(ut, pool).label == 0
    assert 1 in asid_table(system.kernel)
    _cnode_op(system, "CNodeDelete", pool)
    assert 1 not in asid_table(system.kernel)
    again = system.free_slots(1)
    assert system.make_pool(ut, again).label == 0
    assert system.cap(again).asid_base == 512


@pytest.mark.parametrize(("fpu", "tcb_bits"), [(True, 11), (False, 10)])
def test_a_riscv_tcb_is_larger_with_the_fpu(fpu: bool, tcb_bits: int) -> None:
    """seL4_TCBBits on RISC-V: 11 with CONFIG_HAVE_FPU (the default, as sel4test's
    builds), 10 without (abi/objects.md); the FPU's state is part of the TCB."""

    cfg = KernelConfig(fpu=fpu)
    machine = FakeMachine(Arch.RISCV64, cfg.ram_size)
    kernel = Kernel(machine, cfg, lambda byte: None)
    boot(kernel, make_image(Arch.RISCV64))
    assert kernel.tcb_bits == tcb_bits
    assert machine.fpu_enabled is fpu  # the root task's FP instructions run, or trap


def test_an_aarch64_kernel_always_has_the_fpu() -> None:

    cfg = KernelConfig(fpu=False)
    kernel = Kernel(FakeMachine(Arch.AARCH64, cfg.ram_size), cfg, lambda byte: None)
    with pytest.raises(BootError, match="always has the FPU"):
        boot(kernel, make_image(Arch.AARCH64))


class _WriteLog(FakeMachine):
    """A fake machine that records every range the kernel writes."""

    def __init__(self, ram_size: int) -> None:
        super().__init__(Arch.RISCV64, ram_size)
        self.writes: list[tuple[int, int]] = []

    def write_phys(self, paddr: int, data: bytes) -> None:
        self.writes.append((paddr, len(data)))
        super().write_phys(paddr, data)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 3 * 4096), size=st.integers(0, 80 * 4096),
       dirty=st.lists(st.tuples(st.integers(0, 90 * 4096 - 1), st.integers(1, 3 * 4096)),
                      max_size=12))
def test_zeroing_writes_only_the_pages_that_are_not_zero_and_leaves_the_rest(
        start: int, size: int, dirty: list[tuple[int, int]]) -> None:
    """zero_phys over any range of any RAM: the range reads zero afterwards, nothing
    outside it changed, and every 4 KiB piece (counted from the range's start) that it
    wrote held a non-zero byte before: zero memory stays unwritten, so the host need
    not back it. A range of more than one 256 KiB chunk is covered too."""
    ram_size = 96 * 4096
    machine = _WriteLog(ram_size)
    for offset, length in dirty:
        length = min(length, ram_size - offset)
        machine.ram[offset : offset + length] = bytes([0xA5]) * length
    before = bytes(machine.ram)
    size = min(size, ram_size - start)
    zero_phys(machine, machine.ram_base + start, size)
    after = bytes(machine.ram)
    assert after[start : start + size] == bytes(size)
    assert after[:start] == before[:start]
    assert after[start + size :] == before[start + size :]
    for paddr, length in machine.writes:
        offset = paddr - machine.ram_base
        assert start <= offset and offset + length <= start + size
        assert (offset - start) % 4096 == 0
        for piece in range(offset, offset + length, 4096):
            end = min(piece + 4096, start + size)
            assert before[piece:end] != bytes(end - piece)
