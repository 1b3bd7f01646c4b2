"""The MCS configuration's system-call table (abi/syscalls.md, the MCS column).

The MCS kernel numbers its calls differently (Call -1, ReplyRecv -2, NBSendRecv -3,
NBSendWait -4, Send -5, NBSend -6, Recv -7, NBRecv -8, Wait -9, NBWait -10, Yield -11,
the debug calls from -12), has no Reply (a reply is a Send on a reply object) and takes
two more registers: the reply object in a6 / x6 (also NBSendWait's destination) and
NBSendRecv's destination in t0 / x8.

What works so far, and what does not (each refusal stops the run with a message naming
the missing feature, ``KernelState.unsupported``, rather than answering something seL4
would not):

- Send / NBSend / Call of kernel objects and notifications, and Send / NBSend to
  endpoints: as in the non-MCS kernel, whose invocation path these share;
- Wait / NBWait / Recv / NBRecv on notifications (signals carry no reply);
- the debug calls at their MCS numbers, and Yield;
- not yet: a Call to an endpoint, a receive on an endpoint, a Send on a reply object
  (reply objects, scheduling context donation), ReplyRecv, NBSendRecv and NBSendWait.
"""

from __future__ import annotations

from kernel.abi.constants import Syscall, SyscallMCS
from kernel.cspace.lookup import lookup_cap
from kernel.entry.invocation import invoke
from kernel.entry.syscalls import (
    Handler,
    SyscallTable,
    sys_debug_cap_identify,
    sys_debug_dump_scheduler,
    sys_debug_halt,
    sys_debug_name_thread,
    sys_debug_put_char,
    sys_debug_snapshot,
    sys_yield,
)
from kernel.model.caps import EndpointCap, ReplyObjectCap
from kernel.model.state import KernelState

__all__ = ["NON_MCS_EQUIVALENT", "mcs_syscall_table", "syscall_name_and_kind"]


def _sending(kind: Syscall) -> Handler:
    """Send / NBSend / Call: the shared invocation path, except a Call to an endpoint,
    whose reply needs the receiver's reply object (not built yet)."""

    def handler(kernel: KernelState, window: list[int]) -> None:
        assert kernel.current is not None
        cap = lookup_cap(kernel, kernel.current, window[0])
        if kind is Syscall.seL4_SysCall and isinstance(cap, EndpointCap):
            kernel.unsupported("MCS: Call to an endpoint (reply objects)")
            return
        if isinstance(cap, ReplyObjectCap):
            kernel.unsupported("MCS: a reply through a reply object")
            return
        invoke(kernel, kind, window)

    return handler


def _receiving(kind: Syscall, name: str) -> Handler:
    """Recv / NBRecv / Wait / NBWait: a notification is waited on or polled as in the
    non-MCS kernel; an endpoint needs the MCS receive path (not built yet)."""

    def handler(kernel: KernelState, window: list[int]) -> None:
        if _names_endpoint(kernel, window[0]):
            kernel.unsupported(f"MCS: {name} on an endpoint (reply objects)")
            return
        invoke(kernel, kind, window)

    return handler


def _not_yet(name: str) -> Handler:
    def handler(kernel: KernelState, window: list[int]) -> None:
        kernel.unsupported(f"MCS: {name} (reply objects)")

    return handler


def _names_endpoint(kernel: KernelState, cptr: int) -> bool:
    """Whether ``cptr`` resolves to an endpoint cap in the current thread's CSpace (the
    invocation path looks it up again and owns every error)."""
    assert kernel.current is not None
    cap = lookup_cap(kernel, kernel.current, cptr)
    return isinstance(cap, EndpointCap)


_HANDLERS: dict[int, Handler] = {
    SyscallMCS.seL4_SysCall: _sending(Syscall.seL4_SysCall),
    SyscallMCS.seL4_SysSend: _sending(Syscall.seL4_SysSend),
    SyscallMCS.seL4_SysNBSend: _sending(Syscall.seL4_SysNBSend),
    SyscallMCS.seL4_SysRecv: _receiving(Syscall.seL4_SysRecv, "Recv"),
    SyscallMCS.seL4_SysNBRecv: _receiving(Syscall.seL4_SysNBRecv, "NBRecv"),
    SyscallMCS.seL4_SysWait: _receiving(Syscall.seL4_SysRecv, "Wait"),
    SyscallMCS.seL4_SysNBWait: _receiving(Syscall.seL4_SysNBRecv, "NBWait"),
    SyscallMCS.seL4_SysReplyRecv: _not_yet("ReplyRecv"),
    SyscallMCS.seL4_SysNBSendRecv: _not_yet("NBSendRecv"),
    SyscallMCS.seL4_SysNBSendWait: _not_yet("NBSendWait"),
    SyscallMCS.seL4_SysYield: sys_yield,
    SyscallMCS.seL4_SysDebugPutChar: sys_debug_put_char,
    SyscallMCS.seL4_SysDebugHalt: sys_debug_halt,
    SyscallMCS.seL4_SysDebugCapIdentify: sys_debug_cap_identify,
    SyscallMCS.seL4_SysDebugNameThread: sys_debug_name_thread,
    SyscallMCS.seL4_SysDebugDumpScheduler: sys_debug_dump_scheduler,
    SyscallMCS.seL4_SysDebugSnapshot: sys_debug_snapshot,
}


def mcs_syscall_table() -> SyscallTable:
    """The MCS kernel's table: number -> handler (numbers outside it are UnknownSyscall
    faults, as in every configuration)."""
    return SyscallTable(dict(_HANDLERS))


NON_MCS_EQUIVALENT: dict[int, Syscall] = {
    **{int(m): Syscall[m.name] for m in SyscallMCS if m.name in Syscall.__members__
       and m.name != "seL4_SysReplyRecv"},
    SyscallMCS.seL4_SysWait: Syscall.seL4_SysRecv,
    SyscallMCS.seL4_SysNBWait: Syscall.seL4_SysNBRecv,
}
"""MCS number -> the non-MCS call that does the same (Wait is a Recv without a reply
object), for views that describe a call by what it does. ReplyRecv, NBSendRecv and
NBSendWait have none: their reply goes through a reply object."""


def syscall_name_and_kind(mcs: bool, number: int) -> tuple[str, int]:
    """The name of syscall ``number`` in the (non-)MCS numbering (``unknown(N)`` if
    none) and the non-MCS number of what it does: ``number`` itself without MCS, 0 (no
    call) for an MCS call with no non-MCS counterpart, whose number means another call
    in the non-MCS numbering."""
    numbering: type[Syscall] | type[SyscallMCS] = SyscallMCS if mcs else Syscall
    try:
        name = numbering(number).name.removeprefix("seL4_Sys")
    except ValueError:
        return f"unknown({number})", number
    if not mcs:
        return name, number
    kind = NON_MCS_EQUIVALENT.get(number)
    return name, 0 if kind is None else int(kind)
