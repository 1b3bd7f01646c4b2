"""Invoking a non-MCS reply cap: a Send or Call on a reply cap saved with CNode
SaveCaller is the reply (seL4's decodeInvocation, reply cap case, and
performInvocation_Reply).

Decode: a master reply cap (the one in a TCB's reply slot, never reachable from a
CSpace in practice) is InvalidCapability 0; any other reply cap is accepted, whatever
the label. Perform: :func:`kernel.core.ipc.reply` through the invoked slot, with the
cap's Grant right, consuming the cap. The invoker's own Call completes at once with an
empty success reply (seL4 leaves the invoker in Restart, and handleInvocation answers
a Call that ends in Restart with an empty message).
"""

from __future__ import annotations

from functools import partial

from kernel.core.ipc import reply
from kernel.cspace.arguments import Performer
from kernel.model.caps import ReplyCap
from kernel.model.errors import InvalidCapability
from kernel.model.message import MessageInfo
from kernel.model.slot import Slot
from kernel.model.state import KernelState

__all__ = ["decode_reply_invocation"]


def decode_reply_invocation(kernel: KernelState, slot: Slot, info: MessageInfo,
                            window: list[int]) -> Performer:
    """Accept an invocation of the (non-master) reply cap in ``slot``.

    Raises:
        InvalidCapability: the cap is a master reply cap (argument 0).
    """
    cap = slot.cap
    assert isinstance(cap, ReplyCap)
    if cap.is_master:
        raise InvalidCapability(0)
    return partial(_perform_reply, kernel, slot)


def _perform_reply(kernel: KernelState, slot: Slot) -> list[int]:

    replier = kernel.current
    assert replier is not None
    reply(kernel, replier, slot)
    return []
