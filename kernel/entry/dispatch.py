"""Which decoder handles an invocation of which cap type, and which function performs each
decoded invocation: two explicit tables, built here and nowhere else.

A decoder is a pure function ``decode(kernel, invoked slot, InvocationArgs) -> record``:
it validates in seL4's order and returns a frozen invocation record (CNodeCopy,
RetypeInvocation, PageMapInvocation, ...) or raises a ``SyscallError``, changing nothing
(STYLE.md Synthesis 1-2). :data:`PERFORMERS` maps each record type to the function that
applies it and returns the reply words; :func:`kernel.entry.invocation.invoke` writes the
reply. Register both here, never through ``getattr`` on names.

:data:`LEGACY_DECODERS` holds the decoders not converted yet, which return a closure
(``decode(kernel, slot, info, window) -> performer``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kernel.abi.arch import Arch
from kernel.arch.aarch64 import vspace as aarch64_vspace
from kernel.arch.aarch64.vspace import CacheMaintenance, perform_cache_maintenance
from kernel.arch.riscv64 import vspace as riscv64_vspace
from kernel.arch.vspace_decode import VSpaceRules
from kernel.cspace.arguments import InvocationArgs, Performer
from kernel.model.caps import (
    ASIDControlCap,
    ASIDPoolCap,
    Cap,
    CNodeCap,
    FrameCap,
    PageTableCap,
    ReplyCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.message import MessageInfo
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_control import decode_asid_control_invocation
from kernel.objects.asid_pool import decode_asid_pool_invocation
from kernel.objects.cnode import decode_cnode_invocation
from kernel.objects.frame import (
    PageGetAddressInvocation,
    PageMapInvocation,
    PageUnmapInvocation,
    perform_get_address,
    perform_page_map,
    perform_page_unmap,
)
from kernel.objects.page_table import (
    PageTableMapInvocation,
    PageTableUnmapInvocation,
    perform_page_table_map,
    perform_page_table_unmap,
)
from kernel.objects.reply import decode_reply_invocation
from kernel.objects.tcb import decode_tcb_invocation
from kernel.objects.untyped import RetypeInvocation, decode_untyped_invocation, perform_retype

__all__ = ["DECODERS", "LEGACY_DECODERS", "PERFORMERS", "Decoder", "perform"]

Decoder = Callable[[KernelState, Slot, InvocationArgs], object]
"""decode(kernel, invoked slot, arguments) -> an invocation record, or raise SyscallError."""

LegacyDecoder = Callable[[KernelState, Slot, MessageInfo, list[int]], Performer]
"""decode(kernel, invoked slot, message info, window) -> performer, or raise SyscallError."""

Record = TypeVar("Record")

PERFORMERS: dict[type[Any], Callable[[KernelState, Any], list[int]]] = {}
"""Invocation record type -> the function that performs it and returns the reply words."""


def _performs(record: type[Record], function: Callable[[KernelState, Record], list[int]]) -> None:
    PERFORMERS[record] = function


def perform(kernel: KernelState, record: object) -> list[int]:
    """Apply a decoded invocation; cannot fail. Returns the words of a success reply."""
    return PERFORMERS[type(record)](kernel, record)


DECODERS: dict[type[Cap], Decoder] = {
    UntypedCap: decode_untyped_invocation,
}
_performs(RetypeInvocation, perform_retype)

LEGACY_DECODERS: dict[type[Cap], LegacyDecoder] = {}
LEGACY_DECODERS[CNodeCap] = decode_cnode_invocation
LEGACY_DECODERS[ASIDControlCap] = decode_asid_control_invocation
LEGACY_DECODERS[ASIDPoolCap] = decode_asid_pool_invocation
LEGACY_DECODERS[ThreadCap] = decode_tcb_invocation


_VSPACE_RULES: dict[Arch, VSpaceRules] = {
    Arch.RISCV64: riscv64_vspace.RULES,
    Arch.AARCH64: aarch64_vspace.RULES,
}
"""Each architecture's frame and page-table rules (its decoders of those caps)."""


def _decode_frame(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A frame invocation, decoded by the rules of the kernel's architecture."""
    return _VSPACE_RULES[kernel.arch].decode_frame_invocation(kernel, slot, args)


def _decode_page_table(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A page-table invocation, decoded by the rules of the kernel's architecture."""
    return _VSPACE_RULES[kernel.arch].decode_page_table_invocation(kernel, slot, args)


DECODERS[FrameCap] = _decode_frame
DECODERS[PageTableCap] = _decode_page_table
# Only AArch64 has VSpace caps (a RISC-V root is a page-table cap).
DECODERS[VSpaceCap] = aarch64_vspace.decode_vspace_invocation
_performs(PageMapInvocation, perform_page_map)
_performs(PageUnmapInvocation, perform_page_unmap)
_performs(PageGetAddressInvocation, perform_get_address)
_performs(PageTableMapInvocation, perform_page_table_map)
_performs(PageTableUnmapInvocation, perform_page_table_unmap)
_performs(CacheMaintenance, perform_cache_maintenance)

LEGACY_DECODERS[ReplyCap] = decode_reply_invocation
