"""Thread control blocks: registers, scheduling state and the thread's own cap slots.

A TCB holds, as seL4's does, slots for its CSpace root, VSpace root, IPC buffer frame,
reply and caller caps (``ctable``, ``vtable``, ``ipc_buffer_frame``, ``reply``,
``caller``). While a thread runs, its live registers are in the machine and the TCB's
copy is stale (``Kernel.save_current`` saves them when the kernel needs them or switches).

The saved register file has two forms, so that a thread switch need not convert it to
Python integers and back: the machine's own copy of the thread's CPU state, named by the
plain handle ``cpu`` (``Machine.save_thread``), and ``registers``, a list in
seL4_UserContext order made from that copy on first use
(``KernelState.registers_of``: the TCB holds no reference to the machine).
Invariant: when the list exists it is the truth for the user registers and ``changes``
is empty; when it does not, the registers are the copy's with ``changes``
({position: value}, written by :meth:`TCB.set_register`) over them.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Final, final

from mypy_extensions import mypyc_attr

from kernel.model.endpoint import Endpoint
from kernel.model.faults import Fault
from kernel.model.notification import Notification
from kernel.model.slot import Slot
from kernel.pickling import Persistent
from kernel.records import dataclass

if TYPE_CHECKING:
    from kernel.model.reply_object import ReplyObject
    from kernel.model.sched_context import SchedContext

__all__ = ["TCB", "Blocking", "ThreadState", "FAULT_HANDLER", "TIMEOUT_HANDLER"]

# Indices of the TCB's own slots (seL4's tcbCNodeEntries order).
CTABLE: Final = 0
VTABLE: Final = 1
REPLY: Final = 2
CALLER: Final = 3
IPC_BUFFER_FRAME: Final = 4
# The MCS kernel has no reply caps in TCBs; its TCB keeps the fault handler and timeout
# handler caps (seL4's tcbFaultHandler, tcbTimeoutHandler) in those two slots instead.
FAULT_HANDLER: Final = REPLY
TIMEOUT_HANDLER: Final = CALLER


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
        return self is _RUNNING or self is _RESTART


# Read on every kernel entry: module constants, as an Enum class's member lookup costs
# several times a global's (Python 3.11).
_RUNNING: Final = ThreadState.RUNNING
_RESTART: Final = ThreadState.RESTART


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

    def __init__(self, endpoint: Endpoint, badge: int = 0, can_grant: bool = False,
                 can_grant_reply: bool = False, is_call: bool = False) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "endpoint", endpoint)
        object.__setattr__(self, "badge", badge)
        object.__setattr__(self, "can_grant", can_grant)
        object.__setattr__(self, "can_grant_reply", can_grant_reply)
        object.__setattr__(self, "is_call", is_call)


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class TCB(Persistent):
    """A thread. ``paddr`` is where retype placed it; ``name`` is for humans."""

    __slots__ = (
        "paddr", "_registers", "cpu", "changes", "state", "priority", "mcp", "time_slice", "name",
        "slots", "ipc_buffer", "fault_ep", "domain", "stop_reason", "blocking", "fault",
        "flags", "after_syscall", "waiting_on", "bound_notification", "vspace_cache",
        "lookup_denied", "sched_context", "reply_object", "in_release_queue", "yield_to",
    )

    def __init__(self, paddr: int, n_registers: int, time_slice: int) -> None:
        self.paddr = paddr
        self._registers: list[int] | None = [0] * n_registers
        self.cpu = 0
        """Handle of the machine's copy of the thread's CPU state from its last save
        (0: the thread never ran). Opaque to the kernel: see the module docstring."""
        self.changes: dict[int, int] = {}
        """Words written over ``saved``'s registers since (only while the list of
        :attr:`registers` has not been made)."""
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
        :func:`kernel.core.threads.restart_pc`."""
        self.waiting_on: Notification | None = None
        """The notification whose queue holds this thread: set exactly while it is
        BlockedOnNotification (the notification counterpart of ``blocking``)."""
        self.vspace_cache: tuple[object, int, tuple[int, int]] | None = None
        """(VSpace cap, ASID epoch, (root, ASID)): the last resolution of this thread's
        VSpace (``kernel.core.threads.vspace_root_of``), valid while the slot holds that very
        cap object and the ASID table is unchanged."""
        self.bound_notification: Notification | None = None
        """seL4's tcbBoundNotification: set exactly when that notification's
        ``bound_tcb`` is this thread (see :mod:`kernel.core.notifications`)."""
        self.lookup_denied: tuple[tuple[int, int, int], ...] = ()
        """capsule's server-backed CNodes (not seL4): the keys (node, address, bits left)
        of the lookups a server denied, or the kernel refused to ask for, during the
        system call this thread is restarting: those lookups then go on as through an
        ordinary CNode. At most one per lookup of a system call (a handful); emptied
        when the system call completes (``kernel.entry.invocation.invoke``)."""
        self.sched_context: SchedContext | None = None
        """MCS: seL4's tcbSchedContext, the scheduling context the thread runs on (its
        own or one lent along a Call); set exactly when that context's ``tcb`` is this
        thread. Always None in the non-MCS kernel."""
        self.reply_object: ReplyObject | None = None
        """MCS: seL4's thread-state replyObject: the reply object this thread received
        with while BlockedOnReceive, or waits on while BlockedOnReply; that object's
        ``tcb`` is this thread. None otherwise, and always in the non-MCS kernel."""
        self.in_release_queue = False
        """MCS: seL4's tcbInReleaseQueue: the thread waits in the kernel's release queue
        (``MCSClock.release_queue``) for its context's next refill."""
        self.yield_to: SchedContext | None = None
        """MCS: seL4's tcbYieldTo: the context this thread yielded to with
        SchedContext_YieldTo, until it runs again; that context's ``yield_from`` is
        this thread."""

    @property
    def registers(self) -> list[int]:
        """The saved register file, seL4_UserContext order; edits to the list stick.

        Exists once set, or once ``KernelState.registers_of`` made it from the machine's
        copy after a save: read it through that method unless it surely exists."""
        registers = self._registers
        if registers is None:
            raise AssertionError(f"{self.name}: registers are in the machine's copy "
                                 "(read them with KernelState.registers_of)")
        return registers

    @registers.setter
    def registers(self, values: list[int]) -> None:
        self._registers = values
        self.changes.clear()

    @property
    def register_list(self) -> list[int] | None:
        """The list form of the registers if it exists, without making it."""
        return self._registers

    def set_register(self, position: int, value: int) -> None:
        """Write one saved register without making the list (the fastpath's way)."""
        registers = self._registers
        if registers is None:
            self.changes[position] = value
        else:
            registers[position] = value

    def adopt_cpu(self, handle: int) -> None:
        """The machine just saved the running thread into copy ``handle``: it is the truth."""
        self.cpu = handle
        self._registers = None
        self.changes.clear()

    @property
    def ctable(self) -> Slot:
        return self.slots[CTABLE]

    @property
    def vtable(self) -> Slot:
        return self.slots[VTABLE]

    @property
    def ipc_buffer_slot(self) -> Slot:
        return self.slots[IPC_BUFFER_FRAME]
