"""Frames, page tables and VSpaces on the fake machine: effects of the invocations.

Each test makes objects with real invocations, then looks at what the MMU would see
(the tables in RAM, walked by ``kernel.model.page_tables.translate``), at the caps, and at what
the machine was told to forget (``FakeMachine.changed_asids`` / ``tlb_flushes``).
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import PAGE_BITS, Error, InitialCap
from kernel.core.threads import vspace_root_of
from kernel.model.caps import FrameCap, PageTableCap
from kernel.model.page_tables import walk
from kernel.model.paging import Access, PteKind
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.deletion import delete
from tests.abi.support import CNODE, System
from tests.abi.vspace_support import (
    BOOT_POOL,
    FREE_VA,
    RO,
    ROOT_ASID,
    RW,
    VSPACE,
    frame,
    frame_cap,
    get_address,
    method,
    new_vspace,
    page_map,
    page_table,
    page_unmap,
    pt_map,
    pt_unmap,
    reaches,
    root_of,
    tables_for,
)

IPCBUF = int(InitialCap.seL4_CapInitThreadIPCBuffer)


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def s(request: pytest.FixtureRequest) -> System:
    return System(request.param, ram_size=64 << 20)


def copy(s: System, src: int) -> int:
    dest = s.free_slots(1)
    reply = s.call(CNODE, s.label("CNodeCopy"), [dest, 64, src, 64, 0xF], extra=[CNODE])
    assert reply.label == 0, reply
    return dest


def test_map_a_4k_frame_into_the_root_vspace(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    paddr = frame_cap(s, f).paddr
    assert reaches(s, VSPACE, FREE_VA) is None
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    assert reaches(s, VSPACE, FREE_VA + 0x123, Access.WRITE) == paddr + 0x123
    assert reaches(s, VSPACE, FREE_VA + 0x1000) is None
    cap = frame_cap(s, f)
    assert (cap.mapped_asid, cap.mapped_vaddr) == (ROOT_ASID, FREE_VA)


def test_page_table_map_records_the_aligned_address_and_level(s: System) -> None:
    top, low = tables_for(s, VSPACE, FREE_VA + 0x12345, 2)
    top_cap, low_cap = s.cap(top), s.cap(low)
    assert isinstance(top_cap, PageTableCap) and isinstance(low_cap, PageTableCap)
    assert (top_cap.mapped_asid, top_cap.mapped_vaddr) == (ROOT_ASID, FREE_VA)
    assert (low_cap.mapped_asid, low_cap.mapped_vaddr) == (ROOT_ASID, FREE_VA)
    fmt = s.kernel.paging
    result = walk(s.machine, fmt, root_of(s, VSPACE), FREE_VA)
    assert (result.kind, result.level) == (PteKind.INVALID, fmt.levels - 1)  # below both


def test_two_caps_map_one_frame_twice_and_see_the_same_bytes(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    g = copy(s, f)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    assert page_map(s, g, VSPACE, FREE_VA + 0x1000).label == 0
    a = reaches(s, VSPACE, FREE_VA + 8, Access.WRITE)
    b = reaches(s, VSPACE, FREE_VA + 0x1008, Access.READ)
    assert a == b == frame_cap(s, f).paddr + 8


def test_unmap_takes_access_away_and_tells_the_machine(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    flushes = s.machine.tlb_flushes
    assert page_unmap(s, f).label == 0
    assert reaches(s, VSPACE, FREE_VA) is None
    assert not frame_cap(s, f).is_mapped
    assert s.machine.changed_asids[-1] == ROOT_ASID
    assert s.machine.tlb_flushes == flushes + 1  # the root task's own address space
    # The machine is told which page, so that it may forget that page alone.
    assert s.machine.unmapped_pages == [(ROOT_ASID, FREE_VA, PAGE_BITS)]
    # Unmapping an unmapped frame is no error and changes nothing.
    assert page_unmap(s, f).label == 0
    assert s.machine.unmapped_pages == [(ROOT_ASID, FREE_VA, PAGE_BITS)]


def test_remap_changes_rights_and_attributes_in_place(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    assert page_map(s, f, VSPACE, FREE_VA, RW).label == 0
    assert reaches(s, VSPACE, FREE_VA, Access.WRITE) is not None
    flushes = s.machine.tlb_flushes
    never = 1 if s.arch is Arch.RISCV64 else 4 | 3
    assert page_map(s, f, VSPACE, FREE_VA, RO, attr=never).label == 0
    assert s.machine.tlb_flushes == flushes + 1
    assert reaches(s, VSPACE, FREE_VA, Access.WRITE) is None
    assert reaches(s, VSPACE, FREE_VA, Access.READ) is not None
    assert reaches(s, VSPACE, FREE_VA, Access.EXECUTE) is None


def test_rights_come_from_the_cap_and_the_argument(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    ro = s.free_slots(1)  # a read-only copy
    assert s.call(CNODE, s.label("CNodeMint"), [ro, 64, f, 64, 0b0010, 0],
                  extra=[CNODE]).label == 0
    assert page_map(s, ro, VSPACE, FREE_VA, RW).label == 0
    assert reaches(s, VSPACE, FREE_VA, Access.READ) is not None
    assert reaches(s, VSPACE, FREE_VA, Access.WRITE) is None


def test_write_only_or_no_rights_map_kernel_only(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f, g = frame(s), frame(s)
    never = 1 if s.arch is Arch.RISCV64 else 4 | 3
    assert page_map(s, f, VSPACE, FREE_VA, 0b0001).label == 0  # write only
    assert page_map(s, g, VSPACE, FREE_VA + 0x1000, 0, attr=never).label == 0
    for va in (FREE_VA, FREE_VA + 0x1000):
        assert reaches(s, VSPACE, va, Access.READ) is None
        assert reaches(s, VSPACE, va, Access.WRITE) is None
    assert frame_cap(s, f).is_mapped and frame_cap(s, g).is_mapped


def test_get_address_is_the_physical_address(s: System) -> None:
    f = frame(s)
    reply = get_address(s, f)
    assert (reply.label, reply.words) == (0, [frame_cap(s, f).paddr])


@pytest.mark.parametrize("bits", [21, 30])
def test_large_pages_map_at_their_level(s: System, bits: int) -> None:
    levels = {21: 1, 30: 0}[bits]
    tables_for(s, VSPACE, FREE_VA, levels)
    # A 1 GiB frame does not fit the fake machine's RAM: take it from device memory
    # (only the tables are walked here).
    f = frame(s, bits, device=bits == 30)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    offset = (1 << bits) - 8
    assert reaches(s, VSPACE, FREE_VA + offset, Access.WRITE) == frame_cap(s, f).paddr + offset
    result = walk(s.machine, s.kernel.paging, root_of(s, VSPACE), FREE_VA)
    assert result.level == s.kernel.paging.shifts.index(bits)


def test_page_table_unmap_cuts_off_everything_beneath(s: System) -> None:
    top, low = tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    assert pt_unmap(s, low).label == 0
    assert reaches(s, VSPACE, FREE_VA) is None
    low_cap = s.cap(low)
    assert isinstance(low_cap, PageTableCap) and not low_cap.is_mapped
    assert s.machine.read_phys(low_cap.paddr, 4096) == bytes(4096)  # cleared
    # The frame's cap still says mapped (stale); unmapping it touches nothing.
    assert frame_cap(s, f).is_mapped
    assert page_unmap(s, f).label == 0
    # The table can be mapped again, and a fresh mapping through it works.
    assert pt_map(s, low, VSPACE, FREE_VA).label == 0
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    assert reaches(s, VSPACE, FREE_VA) == frame_cap(s, f).paddr


def test_changes_in_another_address_space_do_not_flush(s: System) -> None:
    vs = new_vspace(s)
    tables_for(s, vs, FREE_VA)
    f = frame(s)
    assert page_map(s, f, vs, FREE_VA).label == 0
    flushes = s.machine.tlb_flushes
    assert page_unmap(s, f).label == 0
    assert reaches(s, vs, FREE_VA) is None
    other = s.machine.changed_asids[-1]
    assert other != ROOT_ASID
    assert s.machine.tlb_flushes == flushes  # not the installed address space


# --- finalisers ------------------------------------------------------------------------


def test_deleting_a_mapped_frame_cap_unmaps_it(s: System) -> None:
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    g = copy(s, f)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    assert s.call(CNODE, s.label("CNodeDelete"), [g, 64]).label == 0  # an unmapped copy
    assert reaches(s, VSPACE, FREE_VA) is not None
    assert s.call(CNODE, s.label("CNodeDelete"), [f, 64]).label == 0
    assert reaches(s, VSPACE, FREE_VA) is None


def test_deleting_the_last_page_table_cap_unmaps_it(s: System) -> None:
    _, low = tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    second = copy(s, low)
    assert s.call(CNODE, s.label("CNodeDelete"), [low, 64]).label == 0
    assert reaches(s, VSPACE, FREE_VA) is not None  # a cap to the table remains
    assert s.call(CNODE, s.label("CNodeDelete"), [second, 64]).label == 0
    assert reaches(s, VSPACE, FREE_VA) is None


def test_deleting_a_vspace_root_returns_its_asid(s: System) -> None:
    vs = new_vspace(s)
    cap = s.cap(vs)
    asid = cap.mapped_asid  # type: ignore[attr-defined]
    assert find_vspace_for_asid(s.kernel, asid) == cap.paddr  # type: ignore[attr-defined]
    assert s.call(CNODE, s.label("CNodeDelete"), [vs, 64]).label == 0
    assert find_vspace_for_asid(s.kernel, asid) is None
    again = new_vspace(s)
    assert s.cap(again).mapped_asid == asid  # type: ignore[attr-defined]


def test_a_thread_whose_vspace_root_is_gone_runs_without_address_space(s: System) -> None:
    k = s.kernel
    tcb = k.current
    assert tcb is not None
    assert vspace_root_of(k, tcb) == (root_of(s, VSPACE), ROOT_ASID)
    # Deleting the boot pool invalidates every VSpace assigned from it, the root
    # task's own included: the machine switches it to no address space at once.
    assert s.call(CNODE, s.label("CNodeDelete"), [BOOT_POOL, 64]).label == 0
    assert vspace_root_of(k, tcb) == (0, 0)
    assert (s.machine.root, s.machine.asid) == (0, 0)
    assert find_vspace_for_asid(k, ROOT_ASID) is None


def test_deleting_the_tcb_ipc_buffer_copy_keeps_the_buffer_mapped(s: System) -> None:
    k = s.kernel
    tcb = k.current
    assert tcb is not None
    held = tcb.ipc_buffer_slot.cap
    assert isinstance(held, FrameCap) and not held.is_mapped
    buffer_va = s.report.bootinfo.ipc_buffer
    before = reaches(s, VSPACE, buffer_va, Access.WRITE)
    assert before is not None
    delete(k, tcb.ipc_buffer_slot)
    assert reaches(s, VSPACE, buffer_va, Access.WRITE) == before
    mapped = s.cap(IPCBUF)
    assert isinstance(mapped, FrameCap) and mapped.mapped_vaddr == buffer_va


def test_arm_cache_maintenance_is_accepted_on_mapped_pages() -> None:
    s = System(Arch.AARCH64, ram_size=64 << 20)
    tables_for(s, VSPACE, FREE_VA, 2)
    f = frame(s)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    before = bytes(s.machine.ram)
    for name in ("Clean_Data", "Invalidate_Data", "CleanInvalidate_Data",
                 "Unify_Instruction"):
        assert s.call(f, method(s, "Page" + name), [0, 0x1000]).label == 0
        assert s.call(VSPACE, method(s, "VSpace" + name),
                      [FREE_VA, FREE_VA + 0x1000]).label == 0
        # No page at the start address: nothing to do, no error (as seL4).
        assert s.call(VSPACE, method(s, "VSpace" + name),
                      [FREE_VA + 0x10000, FREE_VA + 0x10008]).label == 0
    page = (s.ipc_paddr() & ~0xFFF) - s.machine.ram_base
    after = bytearray(s.machine.ram)
    after[page:page + 4096] = before[page:page + 4096]
    assert bytes(after) == before
    assert page_table(s)  # the system still works


def test_a_cached_vspace_resolution_follows_every_asid_change(s: System) -> None:
    # vspace_root_of caches per thread; any change of the ASID table or of a pool's
    # roots must show in the next resolution even though the thread's cap is the same.
    from kernel.objects.asid_pool import delete_asid

    k = s.kernel
    tcb = k.current
    assert tcb is not None
    root = root_of(s, VSPACE)
    assert vspace_root_of(k, tcb) == (root, ROOT_ASID)
    delete_asid(k, ROOT_ASID, root)  # as deleting the last VSpace cap would
    assert vspace_root_of(k, tcb) == (0, 0)
    assert (s.machine.root, s.machine.asid) == (0, 0)


def test_a_thread_saved_in_an_entry_keeps_the_address_space_the_entry_left(s: System) -> None:
    # The machine's saved copy of a thread carries the root installed at the save; if
    # the same thread runs on after an entry that removed its VSpace, it must run with
    # none, not with the root its saved copy remembers.
    from kernel.objects.asid_pool import delete_asid

    k = s.kernel
    assert k.current is not None
    k.save_current()  # as an entry that blocks or faults would, before changing things
    delete_asid(k, ROOT_ASID, root_of(s, VSPACE))
    assert (s.machine.root, s.machine.asid) == (0, 0)
    k.reschedule_required()
    k._exit_kernel()  # the scheduler picks the same thread again
    assert k.current is not None and (s.machine.root, s.machine.asid) == (0, 0)


HIGH_VA = 0x7F00_0000_0000
"""Above 2^39 and below seL4_UserTop on AArch64; past the user range on RISC-V."""


def test_a_high_mapping_takes_a_table_per_level_below_the_root(s: System) -> None:
    """AArch64 (seL4, non-hypervisor): a 48-bit VSpace whose root is the L0 table. Far
    above the root task's image nothing is below the root, so Page Map reports each
    missing level in turn (bits left 39, 30, 21: one L0, L1, L2 entry's span) until
    three page tables are in; then the page maps and the MMU reaches it. RISC-V's
    Sv39 space ends at 2^38 - 4 KiB: the address is out of range (InvalidArgument 0)."""
    f = frame(s)
    if s.arch is Arch.RISCV64:
        reply = page_map(s, f, VSPACE, HIGH_VA)
        assert (reply.label, reply.words) == (Error.seL4_InvalidArgument, [0])
        reply = pt_map(s, page_table(s), VSPACE, HIGH_VA)
        assert (reply.label, reply.words) == (Error.seL4_InvalidArgument, [0])
        return
    missing = []
    while (reply := page_map(s, f, VSPACE, HIGH_VA)).label == Error.seL4_FailedLookup:
        assert reply.words[:2] == [0, 2]  # not the source; MissingCapability
        missing.append(reply.words[2])
        assert pt_map(s, page_table(s), VSPACE, HIGH_VA).label == 0
        assert len(missing) <= 4
    assert reply.label == 0
    assert missing == [39, 30, 21]
    assert reaches(s, VSPACE, HIGH_VA + 0x10, Access.WRITE) == frame_cap(s, f).paddr + 0x10
    result = walk(s.machine, s.kernel.paging, root_of(s, VSPACE), HIGH_VA)
    assert (result.kind, result.level) == (PteKind.LEAF, 3)
