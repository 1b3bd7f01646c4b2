"""Where a fault goes: the faulting thread's fault endpoint, or nowhere; and the reply.

Non-MCS seL4 looks the TCB's fault-endpoint CPtr up in the faulting thread's own CSpace
when the fault happens. If that does not yield an endpoint cap with Send and Grant or
GrantReply, the fault cannot be delivered ("double fault") and the thread becomes
Inactive; the debug kernel prints what happened, and so do we (on the console, as one
line, also kept in ``tcb.stop_reason`` for the run's final report).

Otherwise the fault is sent as a Call through that endpoint (seL4's sendFaultIPC:
blocking, with GrantReply, the cap's badge and Grant right): ``tcb.fault`` holds it
until the handler replies, and the message is made from it when it is transferred.
The handler's reply is read by :func:`handle_fault_reply` (abi/errors.md, "Replying to
faults").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .caps import EndpointCap
from .cspace import lookup_cap
from .faults import CapFault, Fault, UnknownSyscallFault, UserExceptionFault, VMFault
from .ipc_transfer import INFO, get_mrs, get_window
from .message import MessageInfo
from .objects.endpoint import Endpoint
from .objects.tcb import TCB, ThreadState
from .threads import sanitise_registers

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["deliver_fault", "handle_fault_reply"]


def deliver_fault(kernel: Kernel, tcb: TCB, fault: Fault) -> None:
    """Deliver ``fault`` of ``tcb`` or, failing that, stop ``tcb``."""
    from .ipc import send

    # Save the registers now: the thread will not run again before a handler replies.
    if tcb is kernel.current:
        kernel.save_current()
    # A restarted thread resumes at the fault's IP: the faulting instruction, or the
    # syscall's trap instruction (seL4's FaultIP), so that it is retried.
    tcb.set_register(0, fault.ip)
    handler = lookup_cap(kernel, tcb, tcb.fault_ep)
    if isinstance(handler, EndpointCap) and handler.rights.write and (
        handler.rights.grant or handler.rights.grant_reply
    ):
        endpoint = kernel.objects[handler.paddr]
        assert isinstance(endpoint, Endpoint)
        tcb.fault = fault
        send(kernel, tcb, endpoint, handler.badge, handler.rights.grant,
             can_grant_reply=True, blocking=True, is_call=True)
        return
    reason = (f'thread "{tcb.name}" stopped: {fault.describe()}; '
              f"no fault handler (fault endpoint cptr {tcb.fault_ep:#x} is not a usable endpoint)")
    tcb.stop_reason = reason
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)


_REGISTER_OF = {"FaultIP": "pc"}
"""Fault message word names that are not the register's own name."""

_IGNORED_ON_REPLY = {"LR"}
"""AArch64's LR word is ELR_EL1, the next pc: seL4 writes it back, but restarting the
thread then sets the next pc to FaultIP, so the written value never takes effect."""


def handle_fault_reply(kernel: Kernel, faulted: TCB, replier: TCB) -> bool:
    """seL4's handleFaultReply: apply ``replier``'s reply to ``faulted``'s pending
    fault; True if the thread restarts.

    Cap and VM faults always restart. UnknownSyscall / UserException write the reply's
    MRs (at most the fault's register count) back into the registers the message
    carried, in message order (sanitised as WriteRegisters does), and restart only on
    label 0.
    """
    fault = faulted.fault
    info = MessageInfo.from_word(get_window(kernel, replier)[INFO])
    if isinstance(fault, (CapFault, VMFault)) or fault is None:
        return True
    if isinstance(fault, UnknownSyscallFault):
        names = [n for n in kernel.abi.unknown_syscall_mrs if n != "Syscall"]
    else:
        assert isinstance(fault, UserExceptionFault)
        names = [n for n in kernel.abi.user_exception_mrs if n not in ("Number", "Code")]
    words = get_mrs(kernel, replier, min(info.clamped_length, len(names)))
    for name, value in zip(names, words):
        if name in _IGNORED_ON_REPLY:
            continue
        register = _REGISTER_OF.get(name, name.lower())
        faulted.registers[kernel.reg_index[register]] = value
    # seL4's copyMRsFaultReply passes every value through sanitiseRegister: a handler
    # cannot give the thread an AArch64 SPSR that leaves EL0.
    sanitise_registers(kernel, faulted.registers)
    return info.label == 0
