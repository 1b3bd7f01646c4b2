"""AArch64 decode rules for frame, page-table and VSpace invocations (seL4's
decodeARMFrameInvocation / decodeARMPageTableInvocation / decodeARMVSpaceRootInvocation,
abi/vspace.md). The checks run in seL4's order and change nothing.

User limit: seL4's AArch64 USER_TOP is inclusive (0x7fffffffffff, 48-bit VA). capsule
runs a 39-bit VA (``kernel.arch.paging.AARCH64_4K``), so its inclusive limit is
2^39 - 1: addresses in [2^39, 2^47) fail the user-top checks (InvalidArgument 0)
where seL4 would need an L1 table there.

Page Map (vspace = extra cap 0, MR0 vaddr, MR1 rights, MR2 attributes):
 1. length < 3 or no extra cap: TruncatedMessage;
 2. extra cap 0 not a VSpace cap with an ASID: InvalidCapability 1;
 3. ASID does not resolve: FailedLookup (InvalidRoot); another root: InvalidCapability 1;
 4. vaddr not aligned to the frame size: AlignmentError;
 5. frame already mapped: another ASID is InvalidCapability 1, another vaddr
    InvalidArgument 0 (same place: a remap); not mapped: last byte > user top is
    InvalidArgument 0;
 6. the walk stops at another size: FailedLookup (MissingCapability, bits left).
Unlike RISC-V, seL4 on AArch64 does not refuse a valid entry: the new mapping replaces
it (the other frame cap's mapping goes stale). Attributes: bit 0 cacheable (clear:
device nGnRnE), bit 1 parity (ignored), bit 2 ExecuteNever.

PageTable Map: TruncatedMessage (length < 2 or no extra cap); already mapped:
InvalidCapability 0; not a VSpace with an ASID: InvalidCapability 1; vaddr > user top:
InvalidArgument 0; ASID lookup: FailedLookup; other root: InvalidCapability 1; the walk
reaches the last level or a valid entry: DeleteFirst. PageTable Unmap: not the final
cap: RevokeFirst.

Cache maintenance (Page and VSpace Clean_Data, Invalidate_Data, CleanInvalidate_Data,
Unify_Instruction) runs every argument check seL4 runs and then does nothing: the
emulator has no caches that could disagree with RAM.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ...abi.constants import PAGE_BITS, WORD_MASK, ArmVMAttributes
from ...abi.labels import label_table
from ...arch.paging import PteKind, VMRights
from ...caps import FrameCap, PageTableCap, Rights, VSpaceCap
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
    RangeError,
    RevokeFirst,
    TruncatedMessage,
)
from ...invocation_args import extra_cap_slots, message_args
from ...message import MessageInfo
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

__all__ = [
    "decode_frame_invocation",
    "decode_page_table_invocation",
    "decode_vspace_invocation",
    "user_top",
]

_PAGE_FLUSHES = ("ARMPageClean_Data", "ARMPageInvalidate_Data",
                 "ARMPageCleanInvalidate_Data", "ARMPageUnify_Instruction")
_VSPACE_FLUSHES = ("ARMVSpaceClean_Data", "ARMVSpaceInvalidate_Data",
                   "ARMVSpaceCleanInvalidate_Data", "ARMVSpaceUnify_Instruction")


def user_top(kernel: Kernel) -> int:
    """The last user virtual address (inclusive, as seL4's AArch64 USER_TOP)."""
    return min(kernel.abi.user_top, kernel.paging.va_limit) - 1


def _nothing() -> list[int]:
    """The performer of a cache-maintenance call: no caches to maintain."""
    return []


def decode_frame_invocation(
    kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Validate an invocation of the frame cap in ``slot``; return its performer."""
    cap = slot.cap
    if not isinstance(cap, FrameCap):
        raise KernelBug("decode_frame_invocation on a non-frame cap")
    labels = label_table(kernel.arch, kernel.config.mcs)
    if info.label == labels["ARMPageMap"]:
        return _decode_map(kernel, slot, cap, info, window)
    if info.label == labels["ARMPageUnmap"]:
        return lambda: perform_page_unmap(kernel, slot)
    if info.label == labels["ARMPageGetAddress"]:
        return lambda: perform_get_address(cap)
    if info.label in (labels[name] for name in _PAGE_FLUSHES):
        invalidate = info.label == labels["ARMPageInvalidate_Data"]
        _check_page_flush(kernel, cap, info, window, invalidate)
        return _nothing
    raise IllegalOperation()


def _decode_map(kernel: Kernel, slot: Slot, cap: FrameCap, info: MessageInfo,
                window: list[int]) -> Performer:
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    extra = extra_cap_slots(kernel, current, info)
    if len(args) < 3 or not extra:
        raise TruncatedMessage()
    vaddr, rights_word, attr = args[:3]
    rights = mask_vm_rights(cap_vm_rights(cap.rights), Rights.from_word(rights_word))
    vspace = extra[0].cap
    if not isinstance(vspace, VSpaceCap) or not vspace.is_mapped:
        raise InvalidCapability(1)
    asid = vspace.mapped_asid
    if vspace_of_asid(kernel, asid) != vspace.paddr:
        raise InvalidCapability(1)
    size = 1 << cap.size_bits
    if vaddr & (size - 1):
        raise AlignmentError()
    if cap.is_mapped:
        if cap.mapped_asid != asid:
            raise InvalidCapability(1)
        if cap.mapped_vaddr != vaddr:
            raise InvalidArgument(0)
    elif (vaddr + size - 1) & WORD_MASK > user_top(kernel):
        raise InvalidArgument(0)
    where = lookup_pt_slot(kernel, vspace.paddr, vaddr)
    if where.bits_left != cap.size_bits:
        raise FailedLookup(False, MissingCapability(where.bits_left))
    executable = not attr & ArmVMAttributes.seL4_ARM_ExecuteNever
    cacheable = bool(attr & ArmVMAttributes.seL4_ARM_PageCacheable)
    entry = kernel.paging.leaf_entry(cap.paddr, where.level, rights, executable, cacheable)
    inv = PageMapInvocation(slot, replace(cap, mapped_asid=asid, mapped_vaddr=vaddr),
                            where, entry, asid)
    return lambda: perform_page_map(kernel, inv)


def _check_page_flush(kernel: Kernel, cap: FrameCap, info: MessageInfo, window: list[int],
                      invalidate: bool) -> None:
    """Page cache maintenance: (MR0 start, MR1 end) are offsets within the frame.

    TruncatedMessage (length < 2); frame not mapped: IllegalOperation; its ASID does
    not resolve: FailedLookup; end <= start: InvalidArgument 1; range outside the
    frame: InvalidArgument 0; the cap's mapping is stale: InvalidCapability 0;
    Invalidate_Data of a mapping without write: IllegalOperation.
    """
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    if len(args) < 2:
        raise TruncatedMessage()
    if not cap.is_mapped:
        raise IllegalOperation()
    root = vspace_of_asid(kernel, cap.mapped_asid)
    start, end = args[:2]
    if end <= start:
        raise InvalidArgument(1)
    size = 1 << cap.size_bits
    if start >= size or end > size:
        raise InvalidArgument(0)
    where = lookup_pt_slot(kernel, root, cap.mapped_vaddr)
    kind, base = kernel.paging.decode(where.entry, where.level)
    if where.bits_left != cap.size_bits or kind is not PteKind.LEAF or base != cap.paddr:
        raise InvalidCapability(0)
    if invalidate and kernel.paging.leaf_rights(where.entry) is not VMRights.READ_WRITE:
        raise IllegalOperation()


def decode_page_table_invocation(
    kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Validate an invocation of the page-table cap in ``slot``; return its performer."""
    cap = slot.cap
    if not isinstance(cap, PageTableCap):
        raise KernelBug("decode_page_table_invocation on a non-page-table cap")
    labels = label_table(kernel.arch, kernel.config.mcs)
    if info.label == labels["ARMPageTableUnmap"]:
        if not is_final(kernel, slot):
            raise RevokeFirst()
        return lambda: perform_page_table_unmap(kernel, slot)
    if info.label != labels["ARMPageTableMap"]:
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
    if not isinstance(vspace, VSpaceCap) or not vspace.is_mapped:
        raise InvalidCapability(1)
    if vaddr > user_top(kernel):
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


def decode_vspace_invocation(
    kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """VSpace cache maintenance over (MR0 start, MR1 end) virtual addresses.

    Order (seL4): label (IllegalOperation); length < 2 (TruncatedMessage); end <= start
    (InvalidArgument 1); end > user top (IllegalOperation); the VSpace has no ASID
    (InvalidCapability 0); ASID lookup (FailedLookup); another root (InvalidCapability
    0); no page at start: success, nothing to do; range crossing the page:
    RangeError(start, last byte of the page); Invalidate_Data of a mapping without
    write: IllegalOperation. Then nothing to do on an emulator.
    """
    cap = slot.cap
    if not isinstance(cap, VSpaceCap):
        raise KernelBug("decode_vspace_invocation on a non-VSpace cap")
    labels = label_table(kernel.arch, kernel.config.mcs)
    if info.label not in (labels[name] for name in _VSPACE_FLUSHES):
        raise IllegalOperation()
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    if len(args) < 2:
        raise TruncatedMessage()
    start, end = args[:2]
    if end <= start:
        raise InvalidArgument(1)
    if end > user_top(kernel):
        raise IllegalOperation()
    if not cap.is_mapped:
        raise InvalidCapability(0)
    if vspace_of_asid(kernel, cap.mapped_asid) != cap.paddr:
        raise InvalidCapability(0)
    where = lookup_pt_slot(kernel, cap.paddr, start)
    kind, _ = kernel.paging.decode(where.entry, where.level)
    if kind is not PteKind.LEAF:
        return _nothing
    mask = (1 << where.bits_left) - 1
    if start & ~mask != (end - 1) & ~mask:
        raise RangeError(start, (start & ~mask) + mask)
    if (info.label == labels["ARMVSpaceInvalidate_Data"]
            and kernel.paging.leaf_rights(where.entry) is not VMRights.READ_WRITE):
        raise IllegalOperation()
    return _nothing
