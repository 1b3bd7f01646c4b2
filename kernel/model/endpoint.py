"""Endpoint objects: a rendezvous point with a queue of threads (object size 2^4 bytes).

The state lives here; send, receive, reply and cancellation are in :mod:`kernel.core.ipc`.

Invariant: ``queue`` is empty exactly when ``state`` is IDLE; when it is not, every
queued thread waits in the direction ``state`` names (seL4's IdleEP / SendEP / RecvEP).
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import TYPE_CHECKING, final

from mypy_extensions import mypyc_attr

from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    # Types only: a TCB names the endpoint or notification it waits on, and the queues
    # here hold TCBs; at run time neither module needs the other.
    from kernel.model.tcb import TCB

__all__ = ["Endpoint", "EndpointState"]


class EndpointState(Enum):
    IDLE = "Idle"
    SEND = "Send"
    RECV = "Recv"


@final
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True, eq=False)
class Endpoint(Persistent):
    """A fresh endpoint is idle with an empty queue."""

    paddr: int
    state: EndpointState = EndpointState.IDLE
    queue: list[TCB] = field(default_factory=list)
