"""System-call dispatch: a table from syscall number to handler, built per configuration.

A syscall arrives as the eight-word window a0-a7 / x0-x7; a7/x7 holds the (negative)
number. Numbers outside the table are UnknownSyscall faults, exactly as on seL4 where a
debug syscall whose option is off is "simply not recognised" (abi/syscalls.md).

Handlers have one signature, ``(kernel, window) -> None``; they write results to the
machine themselves, because what is written back differs per syscall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Final

from kernel.abi.constants import (
    IPC_BUFFER,
    MSG_MAX_LENGTH,
    WORD_BITS,
    WORD_BYTES,
    WORD_MASK,
    CapTag,
    Syscall,
)
from kernel.config import KernelConfig
from kernel.core.fault_delivery import handle_fault
from kernel.core.threads import sanitise_registers
from kernel.cspace.ipc_buffer import read_ipc_buffer
from kernel.cspace.lookup import lookup_cap
from kernel.entry.fastpath import fastpath_call, fastpath_reply_recv
from kernel.entry.invocation import invoke
from kernel.model.caps import ThreadCap
from kernel.model.errors import LOOKUP_FAILURES
from kernel.model.faults import UnknownSyscallFault
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = ["CAPSULE_EXIT_MAGIC", "SyscallTable", "signed_word"]

Handler = Callable[[KernelState, list[int]], None]

CAPSULE_EXIT_MAGIC: Final = 0x4341_5053_554C_4521
"""In a1/x1 at seL4_DebugHalt, says that a0/x0 holds an exit status (capsule's runtime)."""

# seL4_DebugNameThread takes the name from the IPC buffer's message words (960 bytes).
_NAME_OFFSET: Final = IPC_BUFFER.offset("msg")
_NAME_MAX: Final = MSG_MAX_LENGTH * WORD_BYTES


def signed_word(word: int) -> int:
    """A 64-bit register value read as a signed number (syscall numbers are negative)."""
    return word - (1 << WORD_BITS) if word >> (WORD_BITS - 1) else word


def sys_debug_put_char(kernel: KernelState, window: list[int]) -> None:
    kernel.console(window[0] & 0xFF)


def sys_debug_halt(kernel: KernelState, window: list[int]) -> None:
    status = window[0] & 0xFF if window[1] == CAPSULE_EXIT_MAGIC else 0
    kernel.halt(status)


def sys_yield(kernel: KernelState, window: list[int]) -> None:
    kernel.yield_current()


def sys_debug_cap_identify(kernel: KernelState, window: list[int]) -> None:
    assert kernel.current is not None
    cap = lookup_cap(kernel, kernel.current, window[0])
    tag = CapTag.null_cap if isinstance(cap, LOOKUP_FAILURES) else cap.tag
    kernel.machine.write_syscall_window([int(tag)])


def sys_debug_name_thread(kernel: KernelState, window: list[int]) -> None:
    """Name a thread from the NUL-terminated string at msg[0] of the caller's IPC buffer."""
    current = kernel.current
    assert current is not None
    cap = lookup_cap(kernel, current, window[0])
    if not isinstance(cap, ThreadCap) or not current.ipc_buffer:
        # The debug kernel halts here; we report it and stop the run the same way.
        kernel.stop_with_message("seL4_DebugNameThread: invalid TCB cap or no IPC buffer")
        return
    raw = read_ipc_buffer(kernel, current, _NAME_OFFSET, _NAME_MAX)
    if raw is None or b"\0" not in raw:
        kernel.stop_with_message("seL4_DebugNameThread: name not NUL-terminated in 960 bytes")
        return
    target = kernel.object_at(cap.paddr, TCB)
    target.name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def sys_debug_dump_scheduler(kernel: KernelState, window: list[int]) -> None:
    lines = ["Dumping all tcbs!", f"{'name':<24} {'state':<22} prio"]
    for tcb in kernel.threads.values():
        lines.append(f"{tcb.name:<24} {tcb.state.value:<22} {tcb.priority}")
    for byte in ("\n".join(lines) + "\n").encode():
        kernel.console(byte)


def sys_debug_snapshot(kernel: KernelState, window: list[int]) -> None:
    """seL4 dumps the capDL of the system here; we have nothing to dump it to yet."""


_SYSCALL_BY_REGISTER: Final[dict[int, Syscall]] = {number & WORD_MASK: number for number in Syscall}
"""Each syscall number as the register holds it (unsigned) -> its Syscall member: a
dict lookup instead of converting the word and calling the Enum."""


def sys_invoke(kernel: KernelState, window: list[int]) -> None:
    """Send / NBSend / Call / Recv / NBRecv / Reply / ReplyRecv.

    The lookup of the invoked cap happens now; what the cap does is the objects'
    business. Objects and IPC arrive with the capabilities and IPC issues: until then a
    successful lookup of a cap reaches :func:`kernel.entry.invocation.invoke`.
    """
    invoke(kernel, _SYSCALL_BY_REGISTER[window[7]], window)


_CALL: Final = Syscall.seL4_SysCall
_REPLY_RECV: Final = Syscall.seL4_SysReplyRecv


def sys_call_fastpath(kernel: KernelState, window: list[int]) -> None:
    """seL4_Call: the fastpath when it applies, else the general path (with the invoked
    cap's slot when the fastpath found it)."""
    outcome = fastpath_call(kernel, window)
    if outcome is True:
        return
    invoke(kernel, _CALL, window, outcome if isinstance(outcome, Slot) else None)


def sys_reply_recv_fastpath(kernel: KernelState, window: list[int]) -> None:
    """seL4_ReplyRecv: the fastpath when it applies, else the general path."""
    if not fastpath_reply_recv(kernel, window):
        invoke(kernel, _REPLY_RECV, window)


def unknown_syscall(kernel: KernelState, number: int) -> None:
    """A syscall number outside the table: an UnknownSyscall fault whose FaultIP is the
    trap instruction itself (4 bytes before the resume pc on both architectures). The
    message carries the registers as seL4 saved them: AArch64's SPSR with its EL0 mode
    bits, as on the hardware (the emulator keeps only NZCV)."""
    current = kernel.save_current()
    registers = sanitise_registers(kernel, list(kernel.registers_of(current)))
    handle_fault(kernel, current,
                 UnknownSyscallFault(ip=registers[0] - 4, number=number, registers=registers))


_FASTPATH_HANDLERS: Final[dict[int, Handler]] = {
    Syscall.seL4_SysCall: sys_call_fastpath,
    Syscall.seL4_SysReplyRecv: sys_reply_recv_fastpath,
}

_DEBUG_HANDLERS: Final[dict[int, Handler]] = {
    Syscall.seL4_SysDebugPutChar: sys_debug_put_char,
    Syscall.seL4_SysDebugHalt: sys_debug_halt,
    Syscall.seL4_SysDebugCapIdentify: sys_debug_cap_identify,
    Syscall.seL4_SysDebugNameThread: sys_debug_name_thread,
    Syscall.seL4_SysDebugDumpScheduler: sys_debug_dump_scheduler,
    Syscall.seL4_SysDebugSnapshot: sys_debug_snapshot,
}

_API_HANDLERS: Final[dict[int, Handler]] = {
    Syscall.seL4_SysCall: sys_invoke,
    Syscall.seL4_SysReplyRecv: sys_invoke,
    Syscall.seL4_SysSend: sys_invoke,
    Syscall.seL4_SysNBSend: sys_invoke,
    Syscall.seL4_SysRecv: sys_invoke,
    Syscall.seL4_SysReply: sys_invoke,
    Syscall.seL4_SysNBRecv: sys_invoke,
    Syscall.seL4_SysYield: sys_yield,
}


@dataclass(frozen=True)
class SyscallTable:
    """Syscall number -> handler for one configuration."""
    handlers: dict[int, Handler]
    by_register: dict[int, Handler] = field(init=False, repr=False, compare=False)
    """The same table keyed by the number as the register holds it (unsigned), so that
    a kernel entry looks its handler up without converting the word."""

    def __post_init__(self) -> None:
        unsigned = {number & WORD_MASK: handler for number, handler in self.handlers.items()}
        object.__setattr__(self, "by_register", unsigned)

    @classmethod
    def for_config(cls, config: KernelConfig) -> SyscallTable:
        # The non-MCS table; the MCS one is kernel.entry.mcs_syscalls.
        fast = _FASTPATH_HANDLERS if config.fastpath else {}
        return cls({**_API_HANDLERS, **fast, **_DEBUG_HANDLERS})

    def dispatch(self, kernel: KernelState, window: list[int]) -> None:
        handler = self.by_register.get(window[7])
        if handler is None:
            unknown_syscall(kernel, signed_word(window[7]))
        else:
            handler(kernel, window)
