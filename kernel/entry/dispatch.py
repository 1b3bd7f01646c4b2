"""Which decoder handles an invocation of which cap type, and which function performs each
decoded invocation: two explicit tables, built here and nowhere else.

A decoder is a pure function ``decode(kernel, invoked slot, InvocationArgs) -> record``:
it validates in seL4's order and returns a frozen invocation record (CNodeInsert,
RetypeInvocation, PageMapInvocation, ...) or raises a ``SyscallError``, changing nothing
(STYLE.md Synthesis 1-2). :data:`PERFORMERS` maps each record type to the function that
applies it and returns the reply words; :func:`kernel.entry.invocation.invoke` writes the
reply. Register both here, never through ``getattr`` on names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from kernel.abi.arch import Arch
from kernel.arch.aarch64 import vspace as aarch64_vspace
from kernel.arch.aarch64.vspace import CacheMaintenance, perform_cache_maintenance
from kernel.arch.cap_page import (
    VSPACE_LABELS,
    CapExchange,
    CapPageMap,
    CapPageUnmap,
    CapTypeFaultRaise,
    decode_cap_page_invocation,
    decode_vspace_cap_invocation,
    perform_cap_page_map,
    perform_cap_page_unmap,
    perform_exchange,
    perform_type_fault,
)
from kernel.arch.riscv64 import vspace as riscv64_vspace
from kernel.arch.vspace_decode import VSpaceRules
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import (
    ASIDControlCap,
    ASIDPoolCap,
    Cap,
    CapPageCap,
    CheckpointCap,
    CNodeCap,
    DomainCap,
    FrameCap,
    PageTableCap,
    ReplyCap,
    SchedContextCap,
    SchedControlCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_control import (
    MakePoolInvocation,
    decode_asid_control_invocation,
    perform_make_pool,
)
from kernel.objects.asid_pool import AssignInvocation, decode_asid_pool_invocation, perform_assign
from kernel.objects.checkpoint import (
    CheckpointInstall,
    CheckpointNextSlot,
    CheckpointReadSlot,
    decode_checkpoint_invocation,
    perform_install,
    perform_next_slot,
    perform_read_slot,
)
from kernel.objects.cnode import (
    CNodeCancelBadgedSends,
    CNodeDelete,
    CNodeInsert,
    CNodeMove,
    CNodeRevoke,
    CNodeRotate,
    CNodeSaveCaller,
    decode_cnode_invocation,
    perform_cancel_badged_sends,
    perform_delete,
    perform_insert,
    perform_move,
    perform_revoke,
    perform_rotate,
    perform_save_caller,
)
from kernel.objects.domain import (
    DomainScheduleConfigure,
    DomainScheduleSetStart,
    DomainSetSet,
    decode_domain_invocation,
    perform_schedule_configure,
    perform_schedule_set_start,
    perform_set_domain,
)
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
from kernel.objects.reply import ReplyInvocation, decode_reply_invocation, perform_reply
from kernel.objects.sched_context import (
    SchedContextBind,
    SchedContextConsumed,
    SchedContextUnbind,
    SchedContextUnbindObject,
    SchedContextYieldTo,
    SchedControlConfigure,
    decode_sched_context_invocation,
    decode_sched_control_invocation,
    perform_bind,
    perform_configure,
    perform_consumed,
    perform_unbind,
    perform_unbind_object,
    perform_yield_to,
)
from kernel.objects.server_cnode import (
    CNodeBindServer,
    decode_server_cnode_invocation,
    is_traversal_label,
    perform_bind_server,
)
from kernel.objects.tcb import (
    TCBBindNotification,
    TCBCopyRegisters,
    TCBReadRegisters,
    TCBResume,
    TCBSetFlags,
    TCBSetMCPriority,
    TCBSetPriority,
    TCBSetSchedParams,
    TCBSetTLSBase,
    TCBSuspend,
    TCBUnbindNotification,
    TCBWriteRegisters,
    ThreadControl,
    decode_tcb_invocation,
    perform_bind_notification,
    perform_copy_registers,
    perform_read_registers,
    perform_resume,
    perform_set_flags,
    perform_set_mc_priority,
    perform_set_priority,
    perform_set_sched_params,
    perform_set_tls_base,
    perform_suspend,
    perform_thread_control,
    perform_unbind_notification,
    perform_write_registers,
)
from kernel.objects.tcb_mcs import (
    TCBSetSchedParamsMCS,
    TCBSetSpaceMCS,
    TCBSetTimeoutEndpoint,
    decode_tcb_mcs_invocation,
    is_mcs_tcb_label,
    perform_set_sched_params_mcs,
    perform_set_space_mcs,
    perform_set_timeout_endpoint,
)
from kernel.objects.untyped import RetypeInvocation, decode_untyped_invocation, perform_retype

__all__ = ["DECODERS", "PERFORMERS", "Decoder", "perform"]

Decoder = Callable[[KernelState, Slot, InvocationArgs], object]
"""decode(kernel, invoked slot, arguments) -> an invocation record, or raise SyscallError."""

Record = TypeVar("Record")

PERFORMERS: Final[dict[type[Any], Callable[[KernelState, Any], list[int]]]] = {}
"""Invocation record type -> the function that performs it and returns the reply words."""


def _performs(record: type[Record], function: Callable[[KernelState, Record], list[int]]) -> None:
    PERFORMERS[record] = function


def perform(kernel: KernelState, record: object) -> list[int]:
    """Apply a decoded invocation; cannot fail. Returns the words of a success reply."""
    return PERFORMERS[type(record)](kernel, record)


def _decode_cnode_invocation(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A CNode invocation: seL4's, or (only in an image with server_backed_cnodes, not
    seL4) one of the server-backed CNode labels. Named so that the kernel log names the
    decoder as before the extension."""
    if kernel.config.server_backed_cnodes and is_traversal_label(args.info.label):
        return decode_server_cnode_invocation(kernel, slot, args)
    return decode_cnode_invocation(kernel, slot, args)


def _decode_tcb_invocation(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A TCB invocation: the MCS form of Configure / SetSpace / SetSchedParams /
    SetTimeoutEndpoint in an MCS kernel (kernel.objects.tcb_mcs), else the method the
    two kernels share (kernel.objects.tcb). Named for the kernel log as before MCS."""
    if is_mcs_tcb_label(kernel, args.info.label):
        return decode_tcb_mcs_invocation(kernel, slot, args)
    return decode_tcb_invocation(kernel, slot, args)


DECODERS: Final[dict[type[Cap], Decoder]] = {
    UntypedCap: decode_untyped_invocation,
    CNodeCap: _decode_cnode_invocation,
    ASIDControlCap: decode_asid_control_invocation,
    ASIDPoolCap: decode_asid_pool_invocation,
    ReplyCap: decode_reply_invocation,
    ThreadCap: _decode_tcb_invocation,
    # MCS only: boot and retype make these caps only in an MCS kernel.
    SchedControlCap: decode_sched_control_invocation,
    SchedContextCap: decode_sched_context_invocation,
    DomainCap: decode_domain_invocation,
    # capsule's extension (not seL4): only an image with checkpoint_object makes these caps.
    CheckpointCap: decode_checkpoint_invocation,
    # capsule's capability pages (not seL4): only an image with cap_pages makes these caps.
    CapPageCap: decode_cap_page_invocation,
}
_performs(RetypeInvocation, perform_retype)
_performs(CNodeRevoke, perform_revoke)
_performs(CNodeDelete, perform_delete)
_performs(CNodeCancelBadgedSends, perform_cancel_badged_sends)
_performs(CNodeInsert, perform_insert)
_performs(CNodeMove, perform_move)
_performs(CNodeRotate, perform_rotate)
_performs(CNodeSaveCaller, perform_save_caller)
_performs(MakePoolInvocation, perform_make_pool)
_performs(AssignInvocation, perform_assign)
_performs(ReplyInvocation, perform_reply)
_performs(TCBReadRegisters, perform_read_registers)
_performs(TCBWriteRegisters, perform_write_registers)
_performs(TCBCopyRegisters, perform_copy_registers)
_performs(ThreadControl, perform_thread_control)
_performs(TCBSetPriority, perform_set_priority)
_performs(TCBSetMCPriority, perform_set_mc_priority)
_performs(TCBSetSchedParams, perform_set_sched_params)
_performs(TCBSuspend, perform_suspend)
_performs(TCBResume, perform_resume)
_performs(TCBBindNotification, perform_bind_notification)
_performs(TCBUnbindNotification, perform_unbind_notification)
_performs(TCBSetTLSBase, perform_set_tls_base)
_performs(TCBSetFlags, perform_set_flags)
_performs(TCBSetSpaceMCS, perform_set_space_mcs)
_performs(TCBSetSchedParamsMCS, perform_set_sched_params_mcs)
_performs(TCBSetTimeoutEndpoint, perform_set_timeout_endpoint)
_performs(SchedControlConfigure, perform_configure)
_performs(SchedContextConsumed, perform_consumed)
_performs(SchedContextBind, perform_bind)
_performs(SchedContextUnbind, perform_unbind)
_performs(SchedContextUnbindObject, perform_unbind_object)
_performs(SchedContextYieldTo, perform_yield_to)
_performs(DomainSetSet, perform_set_domain)
_performs(DomainScheduleConfigure, perform_schedule_configure)
_performs(DomainScheduleSetStart, perform_schedule_set_start)
_performs(CheckpointReadSlot, perform_read_slot)
_performs(CheckpointNextSlot, perform_next_slot)
_performs(CheckpointInstall, perform_install)
_performs(CapPageMap, perform_cap_page_map)
_performs(CapPageUnmap, perform_cap_page_unmap)
_performs(CapExchange, perform_exchange)
_performs(CapTypeFaultRaise, perform_type_fault)
_performs(CNodeBindServer, perform_bind_server)



_VSPACE_RULES: Final[dict[Arch, VSpaceRules]] = {
    Arch.RISCV64: riscv64_vspace.RULES,
    Arch.AARCH64: aarch64_vspace.RULES,
}
"""Each architecture's frame and page-table rules (its decoders of those caps)."""


def _decode_frame(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A frame invocation, decoded by the rules of the kernel's architecture."""
    return _VSPACE_RULES[kernel.arch].decode_frame_invocation(kernel, slot, args)


def _decode_page_table(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """A page-table invocation, decoded by the rules of the kernel's architecture."""
    if kernel.config.cap_pages and args.label in VSPACE_LABELS:
        return decode_vspace_cap_invocation(kernel, slot, args)  # capsule's, not seL4
    return _VSPACE_RULES[kernel.arch].decode_page_table_invocation(kernel, slot, args)


def _decode_vspace(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """An AArch64 VSpace invocation (and, with cap pages on, the capability instructions)."""
    if kernel.config.cap_pages and args.label in VSPACE_LABELS:
        return decode_vspace_cap_invocation(kernel, slot, args)  # capsule's, not seL4
    return aarch64_vspace.decode_vspace_invocation(kernel, slot, args)


DECODERS[FrameCap] = _decode_frame
DECODERS[PageTableCap] = _decode_page_table
# Only AArch64 has VSpace caps (a RISC-V root is a page-table cap).
DECODERS[VSpaceCap] = _decode_vspace
_performs(PageMapInvocation, perform_page_map)
_performs(PageUnmapInvocation, perform_page_unmap)
_performs(PageGetAddressInvocation, perform_get_address)
_performs(PageTableMapInvocation, perform_page_table_map)
_performs(PageTableUnmapInvocation, perform_page_table_unmap)
_performs(CacheMaintenance, perform_cache_maintenance)
