"""Invoking a non-MCS reply cap: a Send or Call on a reply cap saved with CNode
SaveCaller is the reply (seL4's decodeInvocation, reply cap case, and
performInvocation_Reply).

Decode (:func:`decode_reply_invocation`): a master reply cap (the one in a TCB's reply
slot, never reachable from a CSpace in practice) is InvalidCapability 0; any other reply
cap is accepted, whatever the label and arguments, as a :class:`ReplyInvocation`.
Perform (:func:`perform_reply`): :func:`kernel.core.ipc.reply` through the invoked slot,
with the cap's Grant right, consuming the cap. It returns no reply words: the invoker's
own Call is answered with an empty success reply by the invocation path, since the
invoker still runs (seL4 leaves it in Restart, and handleInvocation answers a Call that
ends in Restart with an empty message).
"""

from __future__ import annotations

from kernel.core.ipc import reply
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import ReplyCap
from kernel.model.errors import InvalidCapability
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.records import dataclass

__all__ = ["ReplyInvocation", "decode_reply_invocation", "perform_reply"]


@dataclass(frozen=True, slots=True, eq=False)
class ReplyInvocation:
    """A reply through the (non-master) reply cap in ``slot``."""

    slot: Slot


def decode_reply_invocation(kernel: KernelState, slot: Slot,
                            invocation: InvocationArgs) -> ReplyInvocation:
    """Accept an invocation of the (non-master) reply cap in ``slot``.

    Raises:
        InvalidCapability: the cap is a master reply cap (argument 0).
    """
    cap = slot.cap
    assert isinstance(cap, ReplyCap)
    if cap.is_master:
        raise InvalidCapability(0)
    return ReplyInvocation(slot)


def perform_reply(kernel: KernelState, inv: ReplyInvocation) -> list[int]:
    """Reply from the current thread through ``inv.slot``; returns no reply words."""
    replier = kernel.current
    assert replier is not None
    reply(kernel, replier, inv.slot)
    return []
