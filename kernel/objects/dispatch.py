"""Which decoder handles an invocation of which cap type: one explicit table.

Each object module provides ``decode_<object>_invocation(kernel, slot, info, window)``
returning a performer (a zero-argument callable that applies the effects and returns
the reply words) or raising a ``SyscallError`` (STYLE.md Synthesis 1-2). Register it
here, never through ``getattr`` on names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..caps import ASIDControlCap, ASIDPoolCap, Cap, CNodeCap, ReplyCap, ThreadCap, UntypedCap
from .asid_control import decode_asid_control_invocation
from .asid_pool import decode_asid_pool_invocation
from .cnode import decode_cnode_invocation
from .reply import decode_reply_invocation
from .tcb_invocation import decode_tcb_invocation
from .untyped import decode_untyped_invocation

if TYPE_CHECKING:
    from ..invocation import Decoder

__all__ = ["DECODERS"]

DECODERS: dict[type[Cap], Decoder] = {}
DECODERS[UntypedCap] = decode_untyped_invocation
DECODERS[CNodeCap] = decode_cnode_invocation
DECODERS[ASIDControlCap] = decode_asid_control_invocation
DECODERS[ASIDPoolCap] = decode_asid_pool_invocation
DECODERS[ThreadCap] = decode_tcb_invocation
DECODERS[ReplyCap] = decode_reply_invocation
