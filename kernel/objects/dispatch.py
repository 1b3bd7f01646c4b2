"""Which decoder handles an invocation of which cap type: one explicit table.

Each object module provides ``decode_<object>_invocation(kernel, slot, info, window)``
returning a performer (a zero-argument callable that applies the effects and returns
the reply words) or raising a ``SyscallError`` (STYLE.md Synthesis 1-2). Register it
here, never through ``getattr`` on names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..abi.arch import Arch
from ..arch.aarch64 import vspace as aarch64_vspace
from ..arch.riscv64 import vspace as riscv64_vspace
from ..caps import (
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
from .asid_control import decode_asid_control_invocation
from .asid_pool import decode_asid_pool_invocation
from .cnode import decode_cnode_invocation
from .reply import decode_reply_invocation
from .tcb_invocation import decode_tcb_invocation
from .untyped import decode_untyped_invocation

if TYPE_CHECKING:
    from ..invocation import Decoder, Performer
    from ..kernel import Kernel
    from ..message import MessageInfo
    from .slot import Slot

__all__ = ["DECODERS"]

DECODERS: dict[type[Cap], Decoder] = {}
DECODERS[UntypedCap] = decode_untyped_invocation
DECODERS[CNodeCap] = decode_cnode_invocation
DECODERS[ASIDControlCap] = decode_asid_control_invocation
DECODERS[ASIDPoolCap] = decode_asid_pool_invocation
DECODERS[ThreadCap] = decode_tcb_invocation


def _by_arch(riscv64: Decoder, aarch64: Decoder) -> Decoder:
    """A decoder that hands the invocation to the rules of the kernel's architecture."""
    def decode(kernel: Kernel, slot: Slot, info: MessageInfo, window: list[int]) -> Performer:
        rules = riscv64 if kernel.arch is Arch.RISCV64 else aarch64
        return rules(kernel, slot, info, window)
    return decode


DECODERS[FrameCap] = _by_arch(riscv64_vspace.decode_frame_invocation,
                              aarch64_vspace.decode_frame_invocation)
DECODERS[PageTableCap] = _by_arch(riscv64_vspace.decode_page_table_invocation,
                                  aarch64_vspace.decode_page_table_invocation)
DECODERS[VSpaceCap] = aarch64_vspace.decode_vspace_invocation
DECODERS[ReplyCap] = decode_reply_invocation
