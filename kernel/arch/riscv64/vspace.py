"""RISC-V decode rules for frame and page-table invocations (seL4's
decodeRISCVFrameInvocation / decodeRISCVPageTableInvocation, abi/vspace.md).

The checks run in seL4's order and change nothing; the performers are the generic ones
of ``kernel.objects.frame`` and ``kernel.objects.page_table``.

Page Map (vspace = extra cap 0, MR0 vaddr, MR1 rights, MR2 attributes):
 1. length < 3 or no extra cap: TruncatedMessage;
 2. extra cap 0 not a page-table cap with an ASID: InvalidCapability 1;
 3. its ASID does not resolve: FailedLookup (InvalidRoot);
 4. it resolves to another table: InvalidCapability 1;
 5. last byte of the mapping >= seL4_UserTop (64-bit arithmetic): InvalidArgument 0;
 6. vaddr not aligned to the frame size: AlignmentError;
 7. the walk stops at another size: FailedLookup (MissingCapability, bits left);
 8. frame already mapped: another ASID is InvalidCapability 1, another vaddr
    InvalidArgument 0 (same place: a remap, new rights and attributes);
    not mapped: a valid entry there is DeleteFirst.
Attributes: bit 0 ExecuteNever; the rest are ignored.

PageTable Map (vspace = extra cap 0, MR0 vaddr, MR1 attributes, ignored):
TruncatedMessage (length < 2 or no extra cap); the table already mapped:
InvalidCapability 0; extra cap 0 not a page table with an ASID: InvalidCapability 1;
vaddr >= seL4_UserTop: InvalidArgument 0; ASID lookup: FailedLookup; other root:
InvalidCapability 1; the walk reaches the last level or a valid entry: DeleteFirst.

PageTable Unmap: not the final cap to the table, or a VSpace root: RevokeFirst.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ...abi.constants import PAGE_BITS, WORD_MASK, RiscvVMAttributes
from ...abi.labels import label_table
from ...caps import FrameCap, PageTableCap, Rights
from ...cdt import is_final
from ...errors import (
    AlignmentError,
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    InvalidArgument,
    InvalidCapability,
    KernelBug,
    MissingCapability,
    RevokeFirst,
    TruncatedMessage,
)
from ...invocation_args import extra_cap_slots, message_args
from ...message import MessageInfo
from ...objects.asid_pool import find_vspace_for_asid
from ...objects.frame import (
    PageMapInvocation,
    cap_vm_rights,
    mask_vm_rights,
    perform_get_address,
    perform_page_map,
    perform_page_unmap,
)
from ...objects.page_table import (
    PageTableMapInvocation,
    lookup_pt_slot,
    perform_page_table_map,
    perform_page_table_unmap,
    vspace_of_asid,
)
from ...objects.slot import Slot

if TYPE_CHECKING:
    from ...invocation import Performer
    from ...kernel import Kernel

__all__ = ["decode_frame_invocation", "decode_page_table_invocation"]


def decode_frame_invocation(
    kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Validate an invocation of the frame cap in ``slot``; return its performer."""
    cap = slot.cap
    if not isinstance(cap, FrameCap):
        raise KernelBug("decode_frame_invocation on a non-frame cap")
    labels = label_table(kernel.arch, kernel.config.mcs)
    if info.label == labels["RISCVPageUnmap"]:
        return lambda: perform_page_unmap(kernel, slot)
    if info.label == labels["RISCVPageGetAddress"]:
        return lambda: perform_get_address(cap)
    if info.label != labels["RISCVPageMap"]:
        raise IllegalOperation()
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    extra = extra_cap_slots(kernel, current, info)
    if len(args) < 3 or not extra:
        raise TruncatedMessage()
    vaddr, rights_word, attr = args[:3]
    vspace = extra[0].cap
    if not isinstance(vspace, PageTableCap) or not vspace.is_mapped:
        raise InvalidCapability(1)
    asid = vspace.mapped_asid
    if vspace_of_asid(kernel, asid) != vspace.paddr:
        raise InvalidCapability(1)
    size = 1 << cap.size_bits
    if (vaddr + size - 1) & WORD_MASK >= kernel.abi.user_top:
        raise InvalidArgument(0)
    if vaddr & (size - 1):
        raise AlignmentError()
    where = lookup_pt_slot(kernel, vspace.paddr, vaddr)
    if where.bits_left != cap.size_bits:
        raise FailedLookup(False, MissingCapability(where.bits_left))
    if cap.is_mapped:
        if cap.mapped_asid != asid:
            raise InvalidCapability(1)
        if cap.mapped_vaddr != vaddr:
            raise InvalidArgument(0)
    elif kernel.paging.is_valid(where.entry):
        raise DeleteFirst()
    rights = mask_vm_rights(cap_vm_rights(cap.rights), Rights.from_word(rights_word))
    executable = not attr & RiscvVMAttributes.seL4_RISCV_ExecuteNever
    entry = kernel.paging.leaf_entry(cap.paddr, where.level, rights, executable, True)
    inv = PageMapInvocation(slot, replace(cap, mapped_asid=asid, mapped_vaddr=vaddr),
                            where, entry, asid)
    return lambda: perform_page_map(kernel, inv)


def decode_page_table_invocation(
    kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Validate an invocation of the page-table cap in ``slot``; return its performer."""
    cap = slot.cap
    if not isinstance(cap, PageTableCap):
        raise KernelBug("decode_page_table_invocation on a non-page-table cap")
    labels = label_table(kernel.arch, kernel.config.mcs)
    if info.label == labels["RISCVPageTableUnmap"]:
        if not is_final(kernel, slot):
            raise RevokeFirst()
        if cap.is_mapped and find_vspace_for_asid(kernel, cap.mapped_asid) == cap.paddr:
            raise RevokeFirst()
        return lambda: perform_page_table_unmap(kernel, slot)
    if info.label != labels["RISCVPageTableMap"]:
        raise IllegalOperation()
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    extra = extra_cap_slots(kernel, current, info)
    if len(args) < 2 or not extra:
        raise TruncatedMessage()
    if cap.is_mapped:
        raise InvalidCapability(0)
    vaddr = args[0]
    vspace = extra[0].cap
    if not isinstance(vspace, PageTableCap) or not vspace.is_mapped:
        raise InvalidCapability(1)
    if vaddr >= kernel.abi.user_top:
        raise InvalidArgument(0)
    asid = vspace.mapped_asid
    if vspace_of_asid(kernel, asid) != vspace.paddr:
        raise InvalidCapability(1)
    where = lookup_pt_slot(kernel, vspace.paddr, vaddr)
    if where.bits_left == PAGE_BITS or kernel.paging.is_valid(where.entry):
        raise DeleteFirst()
    aligned = vaddr & ~((1 << where.bits_left) - 1)
    inv = PageTableMapInvocation(slot, replace(cap, mapped_asid=asid, mapped_vaddr=aligned),
                                 where)
    return lambda: perform_page_table_map(kernel, inv)
