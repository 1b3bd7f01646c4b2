"""Page tables and VSpace roots: the object-generic half of their invocations.

A page table is one 4 KiB table of 512 entries in RAM, in the architecture's format
(``kernel.model.paging``). Its cap records where it is mapped: ``mapped_asid`` (0: not
mapped) and ``mapped_vaddr``, the first address it translates. A VSpace root is the top
table: on RISC-V a page-table cap that ASIDPool Assign gave an ASID (mapped at vaddr 0),
on AArch64 a VSpace cap with an ASID.

The decode rules (which checks, in seL4's order) are ``kernel.arch.vspace_decode``,
set per architecture in ``kernel.arch.riscv64.vspace`` and ``kernel.arch.aarch64.vspace``;
they share what is here: the walk seL4 calls lookupPTSlot, the validated invocation records and their
performers, and the finalisers.

Invariants:
- a mapped page-table cap's table is reachable from the root of its ASID at
  ``mapped_vaddr`` through table entries, unless the mapping went stale (its ASID was
  deleted, or the table holding its entry was unmapped and cleared); every operation
  on a stale mapping is a no-op, as on seL4.
- every change to an entry that may be cached (valid before) is followed by
  ``machine.mappings_changed(asid)`` before the next user instruction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from kernel.abi.constants import PAGE_BITS
from kernel.model.caps import Cap, PageTableCap, VSpaceCap
from kernel.model.errors import FailedLookup, InvalidRoot, KernelBug
from kernel.model.page_tables import read_entry, write_entry
from kernel.model.paging import ENTRIES_PER_TABLE, PteKind
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_pool import delete_asid, find_vspace_for_asid
from kernel.objects.retype import zero_phys
from kernel.records import dataclass

__all__ = [
    "finalise_vspace",
    "finalise_page_table",
    "PTSlot",
    "PageTableMapInvocation",
    "PageTableUnmapInvocation",
    "lookup_pt_slot",
    "perform_page_table_map",
    "perform_page_table_unmap",
    "unmap_page_table",
    "vspace_of_asid",
]

_TABLE: Final = PteKind.TABLE  # every walk reads it: a global is cheaper than the Enum's member
_INDEX_MASK: Final = ENTRIES_PER_TABLE - 1


@dataclass(frozen=True, slots=True)
class PTSlot:
    """Where seL4's lookupPTSlot stopped: entry ``index`` of the table at ``table``.

    ``bits_left`` is the log2 size of what that entry maps (30, 21 or 12); ``level``
    its level (0 = root); ``entry`` its current value.
    """

    table: int
    index: int
    level: int
    bits_left: int
    entry: int

    def __init__(self, table: int, index: int, level: int, bits_left: int, entry: int) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "bits_left", bits_left)
        object.__setattr__(self, "entry", entry)


def lookup_pt_slot(kernel: KernelState, root: int, vaddr: int) -> PTSlot:
    """Descend from ``root`` through table entries towards ``vaddr`` (seL4's lookupPTSlot).

    Stops at the first entry that is not a table (empty, or a page) or at the last
    level. Reads RAM only.
    """
    fmt = kernel.paging
    read_table_entry = kernel.machine.read_table_entry
    shifts = fmt.shifts
    last = len(shifts) - 1
    table, level = root, 0
    while True:
        index = (vaddr >> shifts[level]) & _INDEX_MASK  # fmt.index, inlined
        entry = read_table_entry(table, index)
        if level == last:
            break
        kind, target = fmt.decode(entry, level)
        if kind is not _TABLE:
            break
        table, level = target, level + 1
    return PTSlot(table, index, level, shifts[level], entry)


def vspace_of_asid(kernel: KernelState, asid: int) -> int:
    """The root assigned to ``asid``; FailedLookup(InvalidRoot) as seL4's decoders
    report a failed findVSpaceForASID."""
    root = find_vspace_for_asid(kernel, asid)
    if root is None:
        raise FailedLookup(False, InvalidRoot())
    return root


# --- map / unmap -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageTableMapInvocation:
    """A validated PageTable Map: write a table entry for the cap's table at ``where``
    and store ``new_cap`` (mapped) in ``slot``."""

    slot: Slot
    new_cap: PageTableCap
    where: PTSlot


def perform_page_table_map(kernel: KernelState, inv: PageTableMapInvocation) -> list[int]:
    """Install the table; the entry was invalid, so nothing cached can be stale."""
    inv.slot.cap = inv.new_cap
    write_entry(kernel.machine, inv.where.table, inv.where.index,
                kernel.paging.table_entry(inv.new_cap.paddr))
    return []


def unmap_page_table(kernel: KernelState, asid: int, vaddr: int, table: int) -> None:
    """seL4's unmapPageTable: clear the entry naming ``table`` on the walk from
    ``asid``'s root towards ``vaddr``; nothing if the ASID or the entry is gone."""
    root = find_vspace_for_asid(kernel, asid)
    if root is None:
        return
    fmt = kernel.paging
    current, parent = root, None
    for level in range(fmt.levels - 1):
        if current == table:
            break
        index = fmt.index(level, vaddr)
        kind, target = fmt.decode(read_entry(kernel.machine, current, index), level)
        if kind is not _TABLE:
            return
        parent = (current, index)
        current = target
    if current != table or parent is None:
        return
    write_entry(kernel.machine, parent[0], parent[1], 0)
    kernel.machine.mappings_changed(asid)


@dataclass(frozen=True, slots=True)
class PageTableUnmapInvocation:
    """A validated PageTable Unmap of the page-table cap in ``slot`` (its mapping is
    read when performed)."""

    slot: Slot


def perform_page_table_unmap(kernel: KernelState, inv: PageTableUnmapInvocation) -> list[int]:
    """Unmap the table if it is mapped, zero it (so no mapping beneath survives to be
    reached again), and mark the cap unmapped."""
    slot = inv.slot
    cap = slot.cap
    if not isinstance(cap, PageTableCap):
        raise KernelBug("perform_page_table_unmap on a non-page-table cap")
    if cap.is_mapped:
        unmap_page_table(kernel, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
        zero_phys(kernel.machine, cap.paddr, 1 << PAGE_BITS)
    slot.cap = replace(cap, mapped_asid=0, mapped_vaddr=0)
    return []


# --- finalisers ------------------------------------------------------------------------


def finalise_page_table(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """The last cap of a mapped page table: a RISC-V VSpace root gives its ASID back;
    any other table is unmapped from its parent (seL4's Arch_finaliseCap)."""
    assert isinstance(cap, PageTableCap)
    if final and cap.is_mapped:
        if find_vspace_for_asid(kernel, cap.mapped_asid) == cap.paddr:
            delete_asid(kernel, cap.mapped_asid, cap.paddr)
        else:
            unmap_page_table(kernel, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
    return []


def finalise_vspace(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """The last cap of an AArch64 VSpace with an ASID gives the ASID back."""
    assert isinstance(cap, VSpaceCap)
    if final and cap.is_mapped:
        delete_asid(kernel, cap.mapped_asid, cap.paddr)
    return []
