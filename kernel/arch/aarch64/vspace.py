"""AArch64 decode rules for frame, page-table and VSpace invocations (seL4's
decodeARMFrameInvocation / decodeARMPageTableInvocation / decodeARMVSpaceRootInvocation,
abi/vspace.md). The checks run in seL4's order and change nothing. The steps AArch64
shares with RISC-V are in ``kernel.arch.vspace_decode``; this module holds what is
AArch64's own: its :class:`~kernel.arch.vspace_decode.VSpaceRules`, the cache
maintenance labels and the VSpace root's invocations.

User limit: seL4's AArch64 USER_TOP is inclusive (0x7fffffffffff) in a 48-bit VA whose
root is the L0 table (``kernel.model.paging.AARCH64_4K``); the upper half of what the L0
table could reach, [2^47, 2^48), fails the user-top checks (InvalidArgument 0).

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

from enum import Enum
from typing import Final

from kernel.abi.constants import ArmVMAttributes
from kernel.arch.vspace_decode import (
    FrameMethod,
    LabelNames,
    MapRequest,
    PageTableMethod,
    VSpaceRules,
    check_aligned,
    check_remap,
    check_user_range,
    frame_slot,
    invocation_words,
    mapped_root,
    methods_by_label,
    root_asid,
)
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import FrameCap, VSpaceCap
from kernel.model.errors import (
    IllegalOperation,
    InvalidArgument,
    InvalidCapability,
    KernelBug,
    RangeError,
)
from kernel.model.paging import PteKind, VMRights
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.page_table import PTSlot, lookup_pt_slot, vspace_of_asid
from kernel.records import dataclass

__all__ = [
    "RULES",
    "CacheMaintenance",
    "CacheOp",
    "decode_frame_invocation",
    "decode_page_table_invocation",
    "decode_vspace_invocation",
    "perform_cache_maintenance",
    "user_top",
]


class CacheOp(Enum):
    """The cache-maintenance operations of frames and VSpaces."""

    CLEAN_DATA = "clean_data"
    INVALIDATE_DATA = "invalidate_data"
    CLEAN_INVALIDATE_DATA = "clean_invalidate_data"
    UNIFY_INSTRUCTION = "unify_instruction"


@dataclass(frozen=True, slots=True)
class CacheMaintenance:
    """A validated cache-maintenance call (seL4's performPageFlush / performVSpaceFlush):
    ``op`` over the virtual range [``start``, ``end``) of ``asid``'s VSpace, whose first
    byte is at physical ``pstart``. An empty range (``start == end``): a VSpace call
    whose start has no page, which seL4 answers without flushing."""

    op: CacheOp
    asid: int
    start: int
    end: int
    pstart: int

    def __init__(self, op: CacheOp, asid: int, start: int, end: int, pstart: int) -> None:
        # Written out: see kernel.records on hot records (seL4's process loaders
        # make the caches agree for every page they load, twice).
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "asid", asid)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "pstart", pstart)


def perform_cache_maintenance(kernel: KernelState, inv: CacheMaintenance) -> list[int]:
    """Nothing to do: the emulator has no caches that could disagree with RAM. Returns
    the (empty) reply words."""
    return []


_PAGE_FLUSHES: Final[LabelNames] = (
    ("ARMPageClean_Data", CacheOp.CLEAN_DATA),
    ("ARMPageInvalidate_Data", CacheOp.INVALIDATE_DATA),
    ("ARMPageCleanInvalidate_Data", CacheOp.CLEAN_INVALIDATE_DATA),
    ("ARMPageUnify_Instruction", CacheOp.UNIFY_INSTRUCTION),
)
_VSPACE_FLUSHES: Final[LabelNames] = (
    ("ARMVSpaceClean_Data", CacheOp.CLEAN_DATA),
    ("ARMVSpaceInvalidate_Data", CacheOp.INVALIDATE_DATA),
    ("ARMVSpaceCleanInvalidate_Data", CacheOp.CLEAN_INVALIDATE_DATA),
    ("ARMVSpaceUnify_Instruction", CacheOp.UNIFY_INSTRUCTION),
)


def user_top(kernel: KernelState) -> int:
    """The last user virtual address (inclusive, as seL4's AArch64 USER_TOP)."""
    return min(kernel.abi.user_top, kernel.paging.va_limit) - 1


def _place_frame(kernel: KernelState, cap: FrameCap, req: MapRequest) -> PTSlot:
    """Page Map steps 4-6: alignment, remap or user limit, then the walk."""
    check_aligned(cap, req.vaddr)
    if cap.is_mapped:
        check_remap(cap, req)
    else:
        check_user_range(cap, req.vaddr, user_top(kernel))
    return frame_slot(kernel, cap, req)


# Read at every Page Map and cache operation: module constants (plain ints for the
# attribute bits), as reading an Enum member through its class costs several times a
# global's lookup (Python 3.11).
_EXECUTE_NEVER: Final = int(ArmVMAttributes.seL4_ARM_ExecuteNever)
_CACHEABLE: Final = int(ArmVMAttributes.seL4_ARM_PageCacheable)
_LEAF: Final = PteKind.LEAF
_INVALIDATE_DATA: Final = CacheOp.INVALIDATE_DATA
_READ_WRITE: Final = VMRights.READ_WRITE


def _leaf_attributes(attr: int) -> tuple[bool, bool]:
    """(executable, cacheable) from the attribute bits; parity is ignored."""
    return not attr & _EXECUTE_NEVER, bool(attr & _CACHEABLE)


def _decode_page_flush(kernel: KernelState, cap: FrameCap, args: InvocationArgs,
                       method: Enum) -> CacheMaintenance:
    """The frame methods besides Map / Unmap / GetAddress: cache maintenance.

    (MR0 start, MR1 end) are offsets within the frame. TruncatedMessage (length < 2);
    frame not mapped: IllegalOperation; its ASID does not resolve: FailedLookup;
    end <= start: InvalidArgument 1; range outside the frame: InvalidArgument 0; the
    cap's mapping is stale: InvalidCapability 0; Invalidate_Data of a mapping without
    write: IllegalOperation.
    """
    if not isinstance(method, CacheOp):
        raise KernelBug(f"frame method {method} is not a cache operation")
    words = invocation_words(args, 2)
    if not cap.is_mapped:
        raise IllegalOperation()
    root = vspace_of_asid(kernel, cap.mapped_asid)
    start, end = words[:2]
    if end <= start:
        raise InvalidArgument(1)
    size = 1 << cap.size_bits
    if start >= size or end > size:
        raise InvalidArgument(0)
    where = lookup_pt_slot(kernel, root, cap.mapped_vaddr)
    kind, base = kernel.paging.decode(where.entry, where.level)
    if where.bits_left != cap.size_bits or kind is not _LEAF or base != cap.paddr:
        raise InvalidCapability(0)
    if (method is _INVALIDATE_DATA
            and kernel.paging.leaf_rights(where.entry) is not _READ_WRITE):
        raise IllegalOperation()
    return CacheMaintenance(method, cap.mapped_asid, cap.mapped_vaddr + start,
                            cap.mapped_vaddr + end, cap.paddr + start)


RULES: Final = VSpaceRules(
    frame_labels=(
        ("ARMPageMap", FrameMethod.MAP),
        ("ARMPageUnmap", FrameMethod.UNMAP),
        ("ARMPageGetAddress", FrameMethod.GET_ADDRESS),
        *_PAGE_FLUSHES,
    ),
    page_table_labels=(
        ("ARMPageTableMap", PageTableMethod.MAP),
        ("ARMPageTableUnmap", PageTableMethod.UNMAP),
    ),
    root_type=VSpaceCap,
    last_user_vaddr=user_top,
    place_frame=_place_frame,
    leaf_attributes=_leaf_attributes,
    other_frame_labels=_decode_page_flush,
)
"""AArch64's frame and page-table rules: a VSpace root is a VSpace cap; frames have
the cache operations besides Map, Unmap and GetAddress."""

decode_frame_invocation = RULES.decode_frame_invocation
decode_page_table_invocation = RULES.decode_page_table_invocation


def decode_vspace_invocation(
    kernel: KernelState, slot: Slot, args: InvocationArgs
) -> CacheMaintenance:
    """VSpace cache maintenance over (MR0 start, MR1 end) virtual addresses.

    Order (seL4): label (IllegalOperation); length < 2 (TruncatedMessage); end <= start
    (InvalidArgument 1); end > user top (IllegalOperation); the VSpace has no ASID
    (InvalidCapability 0); ASID lookup (FailedLookup); another root (InvalidCapability
    0); no page at start: success, nothing to do (an empty range); range crossing the
    page: RangeError(start, last byte of the page); Invalidate_Data of a mapping without
    write: IllegalOperation.
    """
    cap = slot.cap
    if not isinstance(cap, VSpaceCap):
        raise KernelBug("decode_vspace_invocation on a non-VSpace cap")
    op = methods_by_label(kernel.arch, kernel.config.mcs, _VSPACE_FLUSHES).get(args.label)
    if not isinstance(op, CacheOp):
        raise IllegalOperation()
    start, end = invocation_words(args, 2)[:2]
    if end <= start:
        raise InvalidArgument(1)
    if end > user_top(kernel):
        raise IllegalOperation()
    asid = root_asid(kernel, mapped_root(cap, VSpaceCap, 0), 0)
    where = lookup_pt_slot(kernel, cap.paddr, start)
    kind, base = kernel.paging.decode(where.entry, where.level)
    if kind is not PteKind.LEAF:
        return CacheMaintenance(op, asid, start, start, 0)
    mask = (1 << where.bits_left) - 1
    if start & ~mask != (end - 1) & ~mask:
        raise RangeError(start, (start & ~mask) + mask)
    if (op is CacheOp.INVALIDATE_DATA
            and kernel.paging.leaf_rights(where.entry) is not VMRights.READ_WRITE):
        raise IllegalOperation()
    return CacheMaintenance(op, asid, start, end, base + (start & mask))
