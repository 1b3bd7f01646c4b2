"""Stop conditions: where :meth:`Machine.run <capsule.Machine.run>` pauses, as small
frozen records. ``run(until=...)`` takes one or a sequence (it stops at the first met).

The kernel-level ones (:class:`AfterSyscall`, :class:`AfterInvocation`,
:class:`AfterFault`, :class:`ThreadScheduled`) are checked once a kernel entry is
complete, so the state you inspect after the stop is what the guest will see next
(the syscall's result is in the caller's registers, a retyped object is in its slot).
:class:`AtAddress` stops before an instruction runs; :class:`AfterInstructions` after a
number of guest instructions. Pausing never changes what the guest does: a run that
pauses and continues gives the same output and instruction count as one that does not.

Names are those of ``capsule run --trace`` and ``capsule debug``: syscalls without the
``seL4_Sys`` prefix (``Call``, ``DebugPutChar``), invocation labels as libsel4's
``invocation_label`` enum has them (``UntypedRetype``, ``CNodeMint``) or ``Signal``,
``Wait``, ``Poll`` for a notification, threads by the name seL4_DebugNameThread gave them
(the root task is ``rootserver``).
"""

from __future__ import annotations

from kernel.records import dataclass

__all__ = [
    "AfterFault",
    "AfterInstructions",
    "AfterInvocation",
    "AfterSyscall",
    "AtAddress",
    "Condition",
    "ThreadScheduled",
]


@dataclass(frozen=True, slots=True)
class AfterSyscall:
    """After the kernel handled a system call: any (``name`` None) or the one named
    (``"Call"``, ``"DebugPutChar"``, ``"Yield"``, ...), made by any thread or by
    ``thread``, invoking any cap or one of type ``cap`` (a cap tag as the trace shows
    it: ``"untyped_cap"``, ``"endpoint_cap"``, ...)."""

    name: str | None = None
    thread: str | None = None
    cap: str | None = None


@dataclass(frozen=True, slots=True)
class AfterInvocation:
    """After the kernel handled an invocation of a kernel object with this label
    (``"UntypedRetype"``, ``"CNodeMint"``, ``"TCBResume"``, ...; ``"Signal"``,
    ``"Wait"``, ``"Poll"`` on a notification), by any thread or by ``thread``. It stops
    whether the kernel accepted the invocation or replied with an error."""

    label: str
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class AfterFault:
    """After the kernel entry in which a thread (any, or ``thread``) faulted: a VM
    fault, cap fault, user exception or unknown syscall, whether it went to a fault
    handler or stopped the thread."""

    thread: str | None = None


@dataclass(frozen=True, slots=True)
class ThreadScheduled:
    """After the kernel entry that switched to the thread called ``name`` (it was not
    the running thread before the entry and is now)."""

    name: str


@dataclass(frozen=True, slots=True)
class AtAddress:
    """Before the instruction at virtual address ``vaddr`` runs, in any thread or only
    in ``thread``. The instruction a run starts at does not count, so running again
    from such a stop moves on."""

    vaddr: int
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class AfterInstructions:
    """Once ``count`` more guest instructions (from the start of this ``run``) have
    run. Time slices carry over, so stopping here changes nothing the guest sees."""

    count: int


Condition = AfterSyscall | AfterInvocation | AfterFault | ThreadScheduled | AtAddress | AfterInstructions
"""Any stop condition."""

CONDITION_TYPES = (AfterSyscall, AfterInvocation, AfterFault, ThreadScheduled, AtAddress,
                   AfterInstructions)
