"""Frames: the object-generic half of Page Map / Unmap / GetAddress.

A frame is ``2^size_bits`` bytes of RAM (4 KiB, 2 MiB or 1 GiB on both architectures).
Its cap records at most one mapping: ``mapped_asid`` (0: none) and ``mapped_vaddr``; to
map a frame twice, copy the cap (a copy starts unmapped). The decode rules are
``kernel.arch.vspace_decode``, set per architecture in ``kernel.arch.riscv64.vspace`` /
``kernel.arch.aarch64.vspace``.

Rights (seL4's maskVMRights): a frame cap's own rights give its VM rights (read and
write: read-write; read only: read-only; otherwise kernel-only); the Map rights word
can only take away from them.

Invariant: a frame cap that says it is mapped either has its leaf entry at
``mapped_vaddr`` in its ASID's VSpace, or that mapping went stale (its ASID or a table
above it went away, or another cap's Map replaced the entry on AArch64); unmapping a
stale mapping touches nothing, because the entry must still name this very frame.
"""

from __future__ import annotations

from typing import Final

from kernel.model.caps import Cap, FrameCap, Rights
from kernel.model.errors import KernelBug
from kernel.model.page_tables import write_entry
from kernel.model.paging import PteKind, VMRights
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.page_table import PTSlot, lookup_pt_slot
from kernel.records import dataclass

__all__ = [
    "finalise_frame",
    "PageGetAddressInvocation",
    "PageMapInvocation",
    "PageUnmapInvocation",
    "cap_vm_rights",
    "perform_get_address",
    "perform_page_map",
    "perform_page_unmap",
    "unmap_page",
]

# Read at every Page Map and Unmap: module constants, as reading an Enum member through
# its class costs several times a global's lookup (Python 3.11).
_LEAF: Final = PteKind.LEAF
_READ_WRITE: Final = VMRights.READ_WRITE
_READ_ONLY: Final = VMRights.READ_ONLY
_KERNEL_ONLY: Final = VMRights.KERNEL_ONLY


def cap_vm_rights(rights: Rights) -> VMRights:
    """The VM rights a frame cap with ``rights`` holds."""
    if rights.read:
        return _READ_WRITE if rights.write else _READ_ONLY
    return _KERNEL_ONLY


@dataclass(frozen=True, slots=True)
class PageMapInvocation:
    """A validated Page Map (or remap): store ``new_cap`` in ``slot`` and ``entry`` at
    ``where`` in the VSpace of ``asid``."""

    slot: Slot
    new_cap: FrameCap
    where: PTSlot
    entry: int
    asid: int

    def __init__(self, slot: Slot, new_cap: FrameCap, where: PTSlot, entry: int, asid: int) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "new_cap", new_cap)
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "asid", asid)


def perform_page_map(kernel: KernelState, inv: PageMapInvocation) -> list[int]:
    """Write the leaf entry. If the entry was valid (a remap, or on AArch64 a mapping
    replaced), the machine drops what it cached for the ASID first, so the new rights
    hold from the next user instruction."""
    inv.slot.cap = inv.new_cap
    write_entry(kernel.machine, inv.where.table, inv.where.index, inv.entry)
    if kernel.paging.is_valid(inv.where.entry):
        kernel.machine.mappings_changed(inv.asid)
    return []


def unmap_page(kernel: KernelState, size_bits: int, asid: int, vaddr: int, paddr: int) -> None:
    """seL4's unmapPage: clear the leaf at ``vaddr`` in ``asid``'s VSpace if it maps a
    page of ``size_bits`` whose base is ``paddr``; otherwise (stale) do nothing."""
    root = find_vspace_for_asid(kernel, asid)
    if root is None:
        return
    where = lookup_pt_slot(kernel, root, vaddr)
    if where.bits_left != size_bits:
        return
    kind, base = kernel.paging.decode(where.entry, where.level)
    if kind is not _LEAF or base != paddr:
        return
    write_entry(kernel.machine, where.table, where.index, 0)
    kernel.machine.page_unmapped(asid, vaddr, size_bits)


@dataclass(frozen=True, slots=True)
class PageUnmapInvocation:
    """A validated Page Unmap of the frame cap in ``slot`` (its mapping is read when
    performed)."""

    slot: Slot

    def __init__(self, slot: Slot) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "slot", slot)


def perform_page_unmap(kernel: KernelState, inv: PageUnmapInvocation) -> list[int]:
    """Remove the cap's mapping if it has one (no error when it has none)."""
    slot = inv.slot
    cap = slot.cap
    if not isinstance(cap, FrameCap):
        raise KernelBug("perform_page_unmap on a non-frame cap")
    if cap.is_mapped:
        unmap_page(kernel, cap.size_bits, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
    slot.cap = cap.mapped_at(0, 0)
    return []


@dataclass(frozen=True, slots=True)
class PageGetAddressInvocation:
    """A validated Page GetAddress of the frame cap ``cap`` (as it was decoded)."""

    cap: FrameCap


def perform_get_address(kernel: KernelState, inv: PageGetAddressInvocation) -> list[int]:
    """Page GetAddress: MR0 is the frame's physical address."""
    return [inv.cap.paddr]


def finalise_frame(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """A frame cap's own mapping goes with it, final or not (seL4's Arch_finaliseCap)."""
    assert isinstance(cap, FrameCap)
    if cap.is_mapped:
        unmap_page(kernel, cap.size_bits, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
    return []
