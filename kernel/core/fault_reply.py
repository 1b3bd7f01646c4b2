"""What a fault handler's reply does to the thread that faulted (abi/errors.md, "Replying
to faults"): seL4's handleFaultReply. Below :mod:`kernel.core.ipc`, whose reply uses it;
sending the fault is :mod:`kernel.core.fault_delivery`, above it.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch
from kernel.core.ipc_transfer import INFO, get_mrs, get_window
from kernel.core.threads import sanitise_registers
from kernel.model.faults import (
    CapFault,
    CapPageTypeFault,
    IndexRequest,
    TimeoutFault,
    UnknownSyscallFault,
    UserExceptionFault,
    VMFault,
)
from kernel.model.message import MessageInfo
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = ["handle_fault_reply"]


_REGISTER_OF: Final = {"FaultIP": "pc"}
"""Fault message word names that are not the register's own name."""

_TIMEOUT_REPLY_LENGTH: Final = {Arch.RISCV64: 32, Arch.AARCH64: 34}
"""seL4's n_timeoutMessage: how many registers a TimeoutReply may set."""
_IGNORED_ON_REPLY: Final = {"LR"}
"""AArch64's LR word is ELR_EL1, the next pc: seL4 writes it back, but restarting the
thread then sets the next pc to FaultIP, so the written value never takes effect."""


def handle_fault_reply(kernel: KernelState, faulted: TCB, replier: TCB) -> bool:
    """seL4's handleFaultReply: apply ``replier``'s reply to ``faulted``'s pending
    fault; True if the thread restarts.

    Cap and VM faults (and capsule's capability-page type faults) always restart, and so
    do index requests of server-backed CNodes (a non-zero label remembers the lookup as
    denied). UnknownSyscall / UserException / Timeout write the reply's
    MRs (at most the fault's register count) back into the registers the message
    carried, in message order (sanitised as WriteRegisters does), and restart only on
    label 0.
    """
    fault = faulted.fault
    info = MessageInfo.from_word(get_window(kernel, replier)[INFO])
    if isinstance(fault, (CapFault, VMFault, CapPageTypeFault)) or fault is None:
        return True
    if isinstance(fault, IndexRequest):
        # capsule's server-backed CNodes (not seL4): label 0 says the server installed
        # what the lookup needs; any other label denies it, and the restarted system
        # call then meets the empty slot as an ordinary CNode would have it.
        if info.label != 0:
            faulted.lookup_denied = (*faulted.lookup_denied, fault.key)
        return True
    if isinstance(fault, TimeoutFault):
        # MCS TimeoutReply: the user context in its own order, up to seL4's
        # n_timeoutMessage (32 on RISC-V, 34 on AArch64: without the TLS registers).
        names = list(kernel.abi.user_context[:_TIMEOUT_REPLY_LENGTH[kernel.arch]])
    elif isinstance(fault, UnknownSyscallFault):
        names = [n for n in kernel.abi.unknown_syscall_mrs if n != "Syscall"]
    else:
        assert isinstance(fault, UserExceptionFault)
        names = [n for n in kernel.abi.user_exception_mrs if n not in ("Number", "Code")]
    words = get_mrs(kernel, replier, min(info.clamped_length, len(names)))
    for name, value in zip(names, words):
        if name in _IGNORED_ON_REPLY:
            continue
        register = _REGISTER_OF.get(name, name.lower())
        kernel.registers_of(faulted)[kernel.reg_index[register]] = value
    # seL4's copyMRsFaultReply passes every value through sanitiseRegister: a handler
    # cannot give the thread an AArch64 SPSR that leaves EL0.
    sanitise_registers(kernel, kernel.registers_of(faulted))
    return info.label == 0
