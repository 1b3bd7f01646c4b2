"""What the API returns: plain frozen records, detached from the running machine (they
do not change when the guest runs on, and hold no reference into it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from enum import Enum

from kernel.records import dataclass

from .conditions import Condition

__all__ = [
    "CapInfo",
    "FaultEvent",
    "SlotInfo",
    "Stop",
    "StopKind",
    "SyscallEvent",
    "ThreadInfo",
]


@dataclass(frozen=True, slots=True)
class SyscallEvent:
    """One system call, once the kernel has handled it: what ``capsule run --trace``
    shows as one line (:attr:`text`), as fields."""

    entry: int
    """Kernel entries since boot, this one included (it orders events)."""
    thread: str
    """The calling thread's name."""
    tcb: int
    """The calling thread's TCB address (:attr:`ThreadInfo.tcb`: unique while it exists)."""
    syscall: str
    """The syscall without the ``seL4_Sys`` prefix: ``Call``, ``Send``, ``Recv``,
    ``DebugPutChar``, ...; ``unknown(N)`` for a number seL4 does not have."""
    number: int
    """The syscall number (negative, as seL4's)."""
    cptr: int | None
    """The invoked CPtr (Call, Send, NBSend, Recv, NBRecv, ReplyRecv), else None."""
    cap: str | None
    """The invoked cap's tag (``cnode_cap``, ``endpoint_cap``, ...) or the name of the
    lookup failure when the CPtr named no cap."""
    label: str | None
    """The invocation label of an object invocation (``CNodeMint``), or ``Signal``,
    ``Wait``, ``Poll`` for a notification; None for endpoint IPC and other syscalls."""
    args: Mapping[str, int | tuple[int, ...]] = field(hash=False)
    """An object invocation's arguments by libsel4's parameter names (capability
    parameters are the CPtrs the caller passed)."""
    words: tuple[int, ...]
    """The message words sent; for DebugPutChar, the character."""
    result: str
    """What the caller got, as the trace shows it (``NoError``, ``InvalidArgument``,
    where an IPC message went, ``halt(0)``, ...)."""
    reply: tuple[int, ...]
    """The words of the reply or of the message received."""
    decoded: str | None
    """The invocation record the kernel decoded (slots and objects resolved), for an
    invocation it accepted; None otherwise."""
    text: str
    """The whole event as ``capsule run --trace`` prints it."""

    @property
    def char(self) -> str | None:
        """DebugPutChar's character; None for any other syscall."""
        if self.syscall == "DebugPutChar" and self.words:
            return chr(self.words[0])
        return None


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A thread faulted (reported once the kernel entry is complete)."""

    entry: int
    """Kernel entries since boot, this one included."""
    thread: str
    kind: str
    """seL4's fault type: ``VMFault``, ``CapFault``, ``UserException`` or
    ``UnknownSyscall``; or ``IndexRequest``, a system call suspended on a lookup that
    asks the server of a server-backed CNode (capsule's extension, not seL4)."""
    pc: int
    """Where it happened (seL4's FaultIP)."""
    address: int | None
    """VMFault: the data or instruction address; CapFault: the CPtr; else None."""
    access: str | None
    """VMFault: ``read``, ``write`` or ``execute``; else None."""
    delivered: bool
    """True if it went to the thread's fault handler, False if the thread stopped
    because it has none."""
    message: str
    """One line describing it, as the kernel's report of an unhandled fault."""


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A thread (TCB) as it is now."""

    name: str
    tcb: int
    """Physical address of the TCB (unique while the thread exists)."""
    state: str
    """seL4's thread state: ``Running``, ``Restart``, ``Inactive``,
    ``BlockedOnReceive``, ``BlockedOnSend``, ``BlockedOnReply``,
    ``BlockedOnNotification``."""
    priority: int
    current: bool
    """Whether it is the thread the machine runs next."""
    stopped_by: str | None
    """Why it stopped for good (an unhandled fault), if it did."""


@dataclass(frozen=True, slots=True)
class CapInfo:
    """A capability, as ``capsule cspace`` shows it."""

    type: str
    """The cap type without ``_cap``: ``endpoint``, ``cnode``, ``untyped``, ``frame``,
    ``thread``, ``notification``, ``reply``, ``page_table``, ``vspace``, ..."""
    object: int | None
    """Physical address of the object it names (None for caps that name none, such as
    ASID control)."""
    badge: int | None
    """Endpoint and notification caps: the badge; else None."""
    rights: str | None
    """Endpoint, notification and frame caps: the rights as letters, ``W`` write,
    ``R`` read, ``G`` grant, ``g`` grant-reply (``-`` none); else None."""
    fields: Mapping[str, int | str | bool] = field(hash=False)
    """Every attribute shown for this type (badge, rights, radix, guard, size_bits,
    free_bytes, mapped vaddr, ...)."""


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """A non-empty slot a thread can name with a CPtr."""

    cptr: int
    """The CPtr that reaches it (resolving all 64 bits; when the lookup stops early at a
    non-CNode cap, the first of the CPtrs that reach it)."""
    depth: int
    """Bits the lookup resolves to reach it (64 unless it stops early)."""
    cap: CapInfo
    name: str | None
    """seL4's name for an initial cap of the root task (``seL4_CapInitThreadTCB``, ...)."""


class StopKind(Enum):
    """Why :meth:`Machine.run <capsule.Machine.run>` returned."""

    CONDITION = "condition"
    """A stop condition was met (:attr:`Stop.condition` says which); the run can go on."""
    HOOK = "hook"
    """A hook callback returned True; the run can go on."""
    LIMIT = "limit"
    """``max_instructions`` ran out; the run can go on."""
    HALT = "halt"
    """The guest halted (seL4_DebugHalt, or the runtime's ``exit``); :attr:`Stop.status`
    is its exit status. The run is over."""
    FAULT = "fault"
    """The last thread that could run stopped on a fault nobody handles. Over."""
    IDLE = "idle"
    """Every thread is blocked or inactive: nothing can run again. Over."""
    KERNEL_HALT = "kernel-halt"
    """The kernel stopped on a guest error, as seL4's debug kernel does, or on a
    feature capsule does not have yet. Over."""
    INTERRUPT = "interrupt"
    """SIGINT (Ctrl-C) ended the run where it was, under the command line's
    ``emulator.interrupt.interrupts_stop``; the run can go on."""


_ENDED = frozenset({StopKind.HALT, StopKind.FAULT, StopKind.IDLE, StopKind.KERNEL_HALT})


@dataclass(frozen=True, slots=True)
class Stop:
    """How a :meth:`Machine.run <capsule.Machine.run>` ended."""

    kind: StopKind
    condition: Condition | None
    """The stop condition that was met (also set when the run ended in the very kernel
    entry that met it), else None."""
    thread: str | None
    """The thread the stop is about: the one whose syscall or fault met the condition,
    else the thread that runs next (None when none can)."""
    pc: int | None
    """The program counter of the thread that runs next, None when none can."""
    syscall: SyscallEvent | None
    """The system call that met the condition or made a hook stop the run."""
    fault: FaultEvent | None
    """The fault that met the condition or made a hook stop the run; for a stop of kind
    FAULT, the fault that stopped the last thread."""
    status: int
    """The exit status ``capsule run`` gives for a run that ends so (README, "Exit
    status"): the guest's own on a halt (118 if that is one of capsule's codes), 121
    fault, 122 idle, 123 kernel halt, 124 the instruction limit, 130 an interrupt; 0 at
    a condition or a hook."""
    message: str
    """One line: what ``capsule run`` says on stderr when a run ends so (the condition
    met, the limit, the fault, why the kernel halted, an interrupt with its thread and
    pc; a halt's message is the kernel's)."""
    instructions: int | None
    """Guest instructions run since boot (None if Unicorn could not count them)."""

    @property
    def ended(self) -> bool:
        """Whether the guest's run is over (another ``run`` raises RunEnded)."""
        return self.kind in _ENDED
