"""Thread control blocks: registers, scheduling state and the thread's own cap slots.

A TCB holds, as seL4's does, slots for its CSpace root, VSpace root, IPC buffer frame,
reply and caller caps (``ctable``, ``vtable``, ``ipc_buffer_frame``, ``reply``,
``caller``). The register file is a plain list in seL4_UserContext order; while a thread
runs, the live values are in the machine and ``registers`` is stale (``kernel.threads``
saves them at a switch).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .slot import Slot

if TYPE_CHECKING:
    from ..faults import Fault
    from .endpoint import Endpoint
    from .notification import Notification

__all__ = ["TCB", "Blocking", "ThreadState"]

# Indices of the TCB's own slots (seL4's tcbCNodeEntries order).
CTABLE, VTABLE, REPLY, CALLER, IPC_BUFFER_FRAME = range(5)


class ThreadState(Enum):
    """seL4's thread states (non-MCS)."""

    INACTIVE = "Inactive"
    RUNNING = "Running"
    RESTART = "Restart"
    BLOCKED_ON_RECEIVE = "BlockedOnReceive"
    BLOCKED_ON_SEND = "BlockedOnSend"
    BLOCKED_ON_REPLY = "BlockedOnReply"
    BLOCKED_ON_NOTIFICATION = "BlockedOnNotification"
    IDLE = "IdleThreadState"

    @property
    def runnable(self) -> bool:
        return self in (ThreadState.RUNNING, ThreadState.RESTART)


@dataclass(frozen=True, slots=True)
class Blocking:
    """What a thread blocked on an endpoint waits with (seL4's blockingObject and
    blockingIPC* fields of the thread state). Set exactly while the thread is
    BlockedOnSend / BlockedOnReceive and queued on ``endpoint``.

    ``badge``, ``can_grant_reply`` and ``is_call`` matter for senders only;
    ``can_grant`` is the Grant right of the cap the thread sends or receives through.
    """

    endpoint: Endpoint
    badge: int = 0
    can_grant: bool = False
    can_grant_reply: bool = False
    is_call: bool = False


class TCB:
    """A thread. ``paddr`` is where retype placed it; ``name`` is for humans."""

    __slots__ = (
        "paddr", "registers", "state", "priority", "mcp", "time_slice", "name",
        "slots", "ipc_buffer", "fault_ep", "domain", "stop_reason", "blocking", "fault",
        "flags", "after_syscall", "waiting_on", "bound_notification",
    )

    def __init__(self, paddr: int, n_registers: int, time_slice: int) -> None:
        self.paddr = paddr
        self.registers = [0] * n_registers
        self.state = ThreadState.INACTIVE
        self.priority = 0
        self.mcp = 0
        self.time_slice = time_slice
        self.name = f"tcb@{paddr:#x}"
        self.slots = [Slot(paddr, i) for i in range(5)]
        self.ipc_buffer = 0
        """Virtual address of the thread's IPC buffer (0: none)."""
        self.fault_ep = 0
        """CPtr of the fault endpoint, looked up in the thread's CSpace at fault time."""
        self.domain = 0
        self.stop_reason: str | None = None
        """Why the thread last stopped for good (an unhandled fault), for reports."""
        self.blocking: Blocking | None = None
        """Set while blocked on an endpoint (see :class:`Blocking`), else None."""
        self.fault: Fault | None = None
        """seL4's tcbFault: the fault being handled (sent or waiting for the reply)."""
        self.flags = 0
        """seL4's tcbFlags (SetFlags): bit 0 is seL4_TCBFlag_fpuDisabled."""
        self.after_syscall = False
        """The thread's last kernel entry was a syscall that left ``registers[0]`` at
        the instruction after the trap: seL4's FaultIP (the pc ReadRegisters shows and
        a restart resumes at) is then 4 bytes before it. See
        :func:`kernel.threads.restart_pc`."""
        self.waiting_on: Notification | None = None
        """The notification whose queue holds this thread: set exactly while it is
        BlockedOnNotification (the notification counterpart of ``blocking``)."""
        self.bound_notification: Notification | None = None
        """seL4's tcbBoundNotification: set exactly when that notification's
        ``bound_tcb`` is this thread (see :mod:`kernel.notifications`)."""

    @property
    def ctable(self) -> Slot:
        return self.slots[CTABLE]

    @property
    def vtable(self) -> Slot:
        return self.slots[VTABLE]

    @property
    def ipc_buffer_slot(self) -> Slot:
        return self.slots[IPC_BUFFER_FRAME]
