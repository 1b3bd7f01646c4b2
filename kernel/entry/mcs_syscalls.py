"""The MCS configuration's system-call table (abi/syscalls.md, the MCS column).

The MCS kernel numbers its calls differently (Call -1, ReplyRecv -2, NBSendRecv -3,
NBSendWait -4, Send -5, NBSend -6, Recv -7, NBRecv -8, Wait -9, NBWait -10, Yield -11,
the debug calls from -12), has no Reply (a reply is a Send on a reply object) and takes
two more registers: the reply object in a6 / x6 (also NBSendWait's destination) and
NBSendRecv's destination in t0 / x8.

Sends and receives on endpoints and reply objects are the MCS kernel's own
(:mod:`kernel.core.mcs_ipc`: reply objects, scheduling contexts lent along a Call);
invocations of other objects and notifications share the non-MCS invocation path. The
handlers follow seL4's handleSyscall: a Send / NBSend / Call looks up the invoked cap and
its extra caps (cap faults only when blocking); a receive looks up its endpoint or
notification, then (Recv, NBRecv, ReplyRecv, NBSendRecv) the reply object, each failure
a cap fault in the receive phase; ReplyRecv, NBSendRecv and NBSendWait first send
without blocking, never to a TCB, domain, CNode, SchedControl or SchedContext cap.
With ``KernelConfig.fastpath`` Call and ReplyRecv first try the MCS fastpath
(:mod:`kernel.entry.mcs_fastpath`), as the non-MCS table does.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import WORD_MASK, Syscall, SyscallMCS
from kernel.core.budget import after_reply, mcs_yield
from kernel.core.fault_delivery import handle_fault
from kernel.core.mcs_ipc import do_reply_transfer, receive_mcs, send_mcs
from kernel.cspace.arguments import lookup_extra_caps, reply_to_current
from kernel.cspace.lookup import lookup_cap, lookup_slot
from kernel.entry.invocation import invoke
from kernel.entry.mcs_fastpath import REPLY_REGISTER, mcs_fastpath_call, mcs_fastpath_reply_recv
from kernel.entry.syscalls import (
    Handler,
    SyscallTable,
    sys_debug_cap_identify,
    sys_debug_dump_scheduler,
    sys_debug_halt,
    sys_debug_name_thread,
    sys_debug_put_char,
    sys_debug_snapshot,
)
from kernel.model.caps import (
    CNodeCap,
    DomainCap,
    EndpointCap,
    NotificationCap,
    ReplyObjectCap,
    SchedContextCap,
    SchedControlCap,
    ThreadCap,
)
from kernel.model.endpoint import Endpoint
from kernel.model.errors import LOOKUP_FAILURES, InvalidCapability, MissingCapability, error_reply
from kernel.model.faults import CapFault, TimeoutFault
from kernel.model.message import MessageInfo
from kernel.model.reply_object import ReplyObject
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = ["NON_MCS_EQUIVALENT", "is_budgeted", "mcs_syscall_table", "syscall_name_and_kind",
           "sys_call_fastpath", "sys_reply_recv_fastpath"]

_NB_SEND_RECV_DEST: Final = {Arch.RISCV64: "t0", Arch.AARCH64: "x8"}
"""NBSendRecv's destination register, outside the eight-word window."""
_NOT_IN_FIRST_PHASE: Final = (ThreadCap, DomainCap, CNodeCap, SchedControlCap, SchedContextCap)
"""Caps the send phase of ReplyRecv / NBSendRecv / NBSendWait may not invoke (seL4
refuses them with InvalidCapability 0, which a non-blocking send drops)."""


def _fault_ip(kernel: KernelState) -> int:
    return kernel.current_pc() - 4


def _send(kernel: KernelState, current: TCB, cptr: int, window: list[int], kind: Syscall,
          can_donate: bool) -> None:
    """Send / NBSend / Call of the cap at ``cptr``: an endpoint by MCS sendIPC, a reply
    object by doReplyTransfer, anything else by the shared invocation path.
    ``can_donate``: a Call, or the send phase of ReplyRecv / NBSendRecv / NBSendWait,
    lends the current context to a receiver that has none."""
    blocking, is_call = kind is not Syscall.seL4_SysNBSend, kind is Syscall.seL4_SysCall
    slot = lookup_slot(kernel, current, cptr)
    if isinstance(slot, LOOKUP_FAILURES):
        if blocking:
            handle_fault(kernel, current, CapFault(_fault_ip(kernel), cptr, False, slot))
        return
    cap = slot.cap
    if isinstance(cap, EndpointCap):
        info = MessageInfo.from_word(window[1])
        extra = lookup_extra_caps(kernel, current, info)
        if isinstance(extra, tuple):
            if blocking:
                handle_fault(kernel, current,
                             CapFault(_fault_ip(kernel), extra[0], False, extra[1]))
            return
        if not cap.rights.write:
            if is_call:
                reply_to_current(kernel, current, *error_reply(InvalidCapability(0)))
            return
        send_mcs(kernel, current, kernel.object_at(cap.paddr, Endpoint), cap.badge,
                 cap.rights.grant, cap.rights.grant_reply, can_donate, blocking, is_call)
        return
    if isinstance(cap, ReplyObjectCap):
        reply = kernel.object_at(cap.paddr, ReplyObject)
        was_timeout = reply.tcb is not None and isinstance(reply.tcb.fault, TimeoutFault)
        caller = do_reply_transfer(kernel, current, reply, cap.can_grant)
        if caller is not None:
            after_reply(kernel, caller, was_timeout)
        if is_call:
            reply_to_current(kernel, current, 0, [])
        return
    invoke(kernel, kind, [cptr, *window[1:]])


def _sending(kind: Syscall) -> Handler:
    def handler(kernel: KernelState, window: list[int]) -> None:
        assert kernel.current is not None
        _send(kernel, kernel.current, window[0], window, kind,
              can_donate=kind is Syscall.seL4_SysCall)

    return handler


def _receive(kernel: KernelState, current: TCB, window: list[int], blocking: bool,
             with_reply: bool) -> None:
    """MCS handleRecv: a notification is waited on or polled as in the non-MCS kernel;
    an endpoint is received on with the reply object in a6 / x6 (Recv, NBRecv) or
    none (Wait, NBWait). Failed lookups and wrong caps are cap faults."""
    cptr = window[0]
    cap = lookup_cap(kernel, current, cptr)
    if isinstance(cap, LOOKUP_FAILURES):
        handle_fault(kernel, current, CapFault(_fault_ip(kernel), cptr, True, cap))
        return
    if isinstance(cap, NotificationCap):
        invoke(kernel, Syscall.seL4_SysRecv if blocking else Syscall.seL4_SysNBRecv, window)
        return
    if not isinstance(cap, EndpointCap) or not cap.rights.read:
        handle_fault(kernel, current, CapFault(_fault_ip(kernel), cptr, True,
                                               MissingCapability(bits_left=0)))
        return
    reply: ReplyObject | None = None
    if with_reply:
        reply_cptr = window[REPLY_REGISTER]
        reply_cap = lookup_cap(kernel, current, reply_cptr)
        if not isinstance(reply_cap, ReplyObjectCap):
            failure = reply_cap if isinstance(reply_cap, LOOKUP_FAILURES) \
                else MissingCapability(bits_left=0)
            handle_fault(kernel, current, CapFault(_fault_ip(kernel), reply_cptr, True, failure))
            return
        reply = kernel.object_at(reply_cap.paddr, ReplyObject)
    receive_mcs(kernel, current, kernel.object_at(cap.paddr, Endpoint), cap.rights.grant,
                blocking, reply)


def _receiving(blocking: bool, with_reply: bool) -> Handler:
    def handler(kernel: KernelState, window: list[int]) -> None:
        assert kernel.current is not None
        _receive(kernel, kernel.current, window, blocking, with_reply)

    return handler


def _send_then_receive(dest: str, with_reply: bool) -> Handler:
    """ReplyRecv (dest in a6 / x6, the reply object), NBSendRecv (dest in t0 / x8),
    NBSendWait (dest in a6 / x6, no reply object): a non-blocking send that cannot
    fault, then a blocking receive on a0 / x0."""

    def handler(kernel: KernelState, window: list[int]) -> None:
        current = kernel.current
        assert current is not None
        if dest == "register":
            kernel.save_current()
            registers = kernel.registers_of(current)
            cptr = registers[kernel.reg_index[_NB_SEND_RECV_DEST[kernel.arch]]]
        else:
            cptr = window[REPLY_REGISTER]
        cap = lookup_cap(kernel, current, cptr)
        if not isinstance(cap, LOOKUP_FAILURES + _NOT_IN_FIRST_PHASE):
            _send(kernel, current, cptr, window, Syscall.seL4_SysNBSend, can_donate=True)
        _receive(kernel, current, window, True, with_reply)

    return handler


_HANDLERS: Final[dict[int, Handler]] = {
    SyscallMCS.seL4_SysCall: _sending(Syscall.seL4_SysCall),
    SyscallMCS.seL4_SysSend: _sending(Syscall.seL4_SysSend),
    SyscallMCS.seL4_SysNBSend: _sending(Syscall.seL4_SysNBSend),
    SyscallMCS.seL4_SysRecv: _receiving(blocking=True, with_reply=True),
    SyscallMCS.seL4_SysNBRecv: _receiving(blocking=False, with_reply=True),
    SyscallMCS.seL4_SysWait: _receiving(blocking=True, with_reply=False),
    SyscallMCS.seL4_SysNBWait: _receiving(blocking=False, with_reply=False),
    SyscallMCS.seL4_SysReplyRecv: _send_then_receive("reply", with_reply=True),
    SyscallMCS.seL4_SysNBSendRecv: _send_then_receive("register", with_reply=True),
    SyscallMCS.seL4_SysNBSendWait: _send_then_receive("reply", with_reply=False),
    SyscallMCS.seL4_SysYield: lambda kernel, _window: mcs_yield(kernel),
    SyscallMCS.seL4_SysDebugPutChar: sys_debug_put_char,
    SyscallMCS.seL4_SysDebugHalt: sys_debug_halt,
    SyscallMCS.seL4_SysDebugCapIdentify: sys_debug_cap_identify,
    SyscallMCS.seL4_SysDebugNameThread: sys_debug_name_thread,
    SyscallMCS.seL4_SysDebugDumpScheduler: sys_debug_dump_scheduler,
    SyscallMCS.seL4_SysDebugSnapshot: sys_debug_snapshot,
}


_GENERAL_CALL: Final = _HANDLERS[SyscallMCS.seL4_SysCall]
_GENERAL_REPLY_RECV: Final = _HANDLERS[SyscallMCS.seL4_SysReplyRecv]


def sys_call_fastpath(kernel: KernelState, window: list[int]) -> None:
    """seL4_Call (MCS): the fastpath when it applies, else the general path."""
    if not mcs_fastpath_call(kernel, window):
        _GENERAL_CALL(kernel, window)


def sys_reply_recv_fastpath(kernel: KernelState, window: list[int]) -> None:
    """seL4_ReplyRecv (MCS): the fastpath when it applies, else the general path."""
    if not mcs_fastpath_reply_recv(kernel, window):
        _GENERAL_REPLY_RECV(kernel, window)


_FASTPATH_HANDLERS: Final[dict[int, Handler]] = {
    SyscallMCS.seL4_SysCall: sys_call_fastpath,
    SyscallMCS.seL4_SysReplyRecv: sys_reply_recv_fastpath,
}


_DEBUG_CALLS: Final = frozenset(int(number) & WORD_MASK for number in SyscallMCS
                         if number.name.startswith("seL4_SysDebug"))


def is_budgeted(number: int) -> bool:
    """Whether syscall ``number`` (the a7 / x7 word) checks the budget before it runs:
    all but the debug calls, which seL4 handles before it reads the clock."""
    return number not in _DEBUG_CALLS


def mcs_syscall_table(fastpath: bool = True) -> SyscallTable:
    """The MCS kernel's table: number -> handler (numbers outside it are UnknownSyscall
    faults, as in every configuration); with ``fastpath`` (``KernelConfig.fastpath``),
    Call and ReplyRecv try the MCS fastpath first."""
    return SyscallTable({**_HANDLERS, **(_FASTPATH_HANDLERS if fastpath else {})})


NON_MCS_EQUIVALENT: Final[dict[int, Syscall]] = {
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
