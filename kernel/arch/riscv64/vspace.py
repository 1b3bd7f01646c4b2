"""RISC-V decode rules for frame and page-table invocations (seL4's
decodeRISCVFrameInvocation / decodeRISCVPageTableInvocation, abi/vspace.md).

The steps RISC-V shares with AArch64 are in ``kernel.arch.vspace_decode``; this module
holds what is RISC-V's own, as a :class:`~kernel.arch.vspace_decode.VSpaceRules`. The
checks run in seL4's order and change nothing; the records they return are the generic
ones of ``kernel.objects.frame`` and ``kernel.objects.page_table``.

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

from typing import Final

from kernel.abi.constants import RiscvVMAttributes
from kernel.arch.vspace_decode import (
    FrameMethod,
    MapRequest,
    PageTableMethod,
    VSpaceRules,
    check_aligned,
    check_remap,
    check_user_range,
    frame_slot,
)
from kernel.model.caps import FrameCap, PageTableCap
from kernel.model.errors import DeleteFirst
from kernel.model.state import KernelState
from kernel.objects.page_table import PTSlot

__all__ = ["RULES", "decode_frame_invocation", "decode_page_table_invocation"]


def _last_user_vaddr(kernel: KernelState) -> int:
    """seL4_UserTop is exclusive on RISC-V: the last user address is one below it."""
    return kernel.abi.user_top - 1


def _place_frame(kernel: KernelState, cap: FrameCap, req: MapRequest) -> PTSlot:
    """Page Map steps 5-8: user limit, alignment, walk, then remap or DeleteFirst."""
    check_user_range(cap, req.vaddr, _last_user_vaddr(kernel))
    check_aligned(cap, req.vaddr)
    where = frame_slot(kernel, cap, req)
    if cap.is_mapped:
        check_remap(cap, req)
    elif kernel.paging.is_valid(where.entry):
        raise DeleteFirst()
    return where


_EXECUTE_NEVER: Final = int(RiscvVMAttributes.seL4_RISCV_ExecuteNever)  # a plain int: read per Map


def _leaf_attributes(attr: int) -> tuple[bool, bool]:
    """(executable, cacheable): ExecuteNever is the only attribute; always cacheable."""
    return not attr & _EXECUTE_NEVER, True


RULES: Final = VSpaceRules(
    frame_labels=(
        ("RISCVPageMap", FrameMethod.MAP),
        ("RISCVPageUnmap", FrameMethod.UNMAP),
        ("RISCVPageGetAddress", FrameMethod.GET_ADDRESS),
    ),
    page_table_labels=(
        ("RISCVPageTableMap", PageTableMethod.MAP),
        ("RISCVPageTableUnmap", PageTableMethod.UNMAP),
    ),
    root_type=PageTableCap,
    last_user_vaddr=_last_user_vaddr,
    place_frame=_place_frame,
    leaf_attributes=_leaf_attributes,
    unmap_refuses_root=True,
)
"""RISC-V's frame and page-table rules: a VSpace root is a page-table cap."""

decode_frame_invocation = RULES.decode_frame_invocation
decode_page_table_invocation = RULES.decode_page_table_invocation
