"""MCS reply objects: where a Call waits for its answer (2^5 bytes).

In the MCS kernel a receiver names a reply object when it receives; a Call that meets it
leaves the caller blocked on that object, and a Send on the reply cap answers it. A
server holding several reply objects can answer its clients in any order (resume
objects, after KeyKOS). Reply objects also carry the call stack along which scheduling
contexts are lent and returned.

The data lives here; what IPC does with it is MCS IPC's business.

Invariants (rule ``reply`` of ``kernel.views.invariants``): ``tcb`` is the caller
blocked on this object (BlockedOnReply) or the receiver blocked with it
(BlockedOnReceive), or None; a reply object is on at most one call stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from mypy_extensions import mypyc_attr

from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    from kernel.model.sched_context import SchedContext
    from kernel.model.tcb import TCB

__all__ = ["ReplyObject"]


@final
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True, eq=False)
class ReplyObject(Persistent):
    """A fresh reply object is idle: no thread, on no call stack."""

    paddr: int
    tcb: TCB | None = None
    prev: ReplyObject | None = None
    """The previous reply object of the call stack (None at its start)."""
    next: ReplyObject | SchedContext | None = None
    """The next reply object of the call stack, or at its head the scheduling context
    lent along the Call."""
