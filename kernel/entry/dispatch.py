"""Which decoder handles an invocation of which cap type: one explicit table.

Each object module provides ``decode_<object>_invocation(kernel, slot, info, window)``
returning a performer (a zero-argument callable that applies the effects and returns
the reply words) or raising a ``SyscallError`` (STYLE.md Synthesis 1-2). Register it
here, never through ``getattr`` on names.
"""

from __future__ import annotations

from collections.abc import Callable

from kernel.abi.arch import Arch
from kernel.arch.aarch64 import vspace as aarch64_vspace
from kernel.arch.riscv64 import vspace as riscv64_vspace
from kernel.cspace.arguments import Performer
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
from kernel.objects.reply import decode_reply_invocation
from kernel.objects.tcb import decode_tcb_invocation
from kernel.objects.untyped import decode_untyped_invocation

__all__ = ["DECODERS", "Decoder"]

Decoder = Callable[[KernelState, Slot, MessageInfo, list[int]], Performer]
"""decode(kernel, invoked slot, message info, window) -> performer, or raise SyscallError."""

DECODERS: dict[type[Cap], Decoder] = {}
DECODERS[UntypedCap] = decode_untyped_invocation
DECODERS[CNodeCap] = decode_cnode_invocation
DECODERS[ASIDControlCap] = decode_asid_control_invocation
DECODERS[ASIDPoolCap] = decode_asid_pool_invocation
DECODERS[ThreadCap] = decode_tcb_invocation


def _by_arch(riscv64: Decoder, aarch64: Decoder) -> Decoder:
    """A decoder that hands the invocation to the rules of the kernel's architecture."""
    def decode(kernel: KernelState, slot: Slot, info: MessageInfo, window: list[int]) -> Performer:
        rules = riscv64 if kernel.arch is Arch.RISCV64 else aarch64
        return rules(kernel, slot, info, window)
    return decode


DECODERS[FrameCap] = _by_arch(riscv64_vspace.decode_frame_invocation,
                              aarch64_vspace.decode_frame_invocation)
DECODERS[PageTableCap] = _by_arch(riscv64_vspace.decode_page_table_invocation,
                                  aarch64_vspace.decode_page_table_invocation)
DECODERS[VSpaceCap] = aarch64_vspace.decode_vspace_invocation
DECODERS[ReplyCap] = decode_reply_invocation
