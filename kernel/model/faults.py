"""Faults: what a thread did wrong, as data, and the message seL4 sends about it.

Each fault type knows its label and builds its message words for an architecture
(abi/errors.md, "Message layouts"); :meth:`describe` is the one-line text used when no
handler takes the fault.
"""

from __future__ import annotations

from kernel.abi.arch import ArchABI
from kernel.abi.constants import WORD_MASK, FaultLabel, FaultLabelMCS
from kernel.abi.extensions import CapPageAccess, CapPageFaultLabel, TraversalLabel
from kernel.model.errors import LookupFailure, lookup_failure_words
from kernel.model.paging import Access
from kernel.records import dataclass

__all__ = ["CapFault", "CapPageTypeFault", "Fault", "IndexRequest", "TimeoutFault",
           "UnknownSyscallFault", "UserExceptionFault", "VMFault"]


@dataclass(frozen=True, slots=True)
class CapFault:
    ip: int
    address: int
    in_receive_phase: bool
    failure: LookupFailure

    @property
    def label(self) -> FaultLabel:
        return FaultLabel.seL4_Fault_CapFault

    def message(self, abi: ArchABI) -> list[int]:
        return [self.ip, self.address, int(self.in_receive_phase),
                *lookup_failure_words(self.failure)]

    def describe(self) -> str:
        phase = "receive" if self.in_receive_phase else "send"
        return (f"cap fault in {phase} phase on cptr {self.address:#x} "
                f"({type(self.failure).__name__}) at pc {self.ip:#x}")


@dataclass(frozen=True, slots=True)
class VMFault:
    ip: int
    address: int
    prefetch: bool
    fsr: int
    access: Access

    @property
    def label(self) -> FaultLabel:
        return FaultLabel.seL4_Fault_VMFault

    def message(self, abi: ArchABI) -> list[int]:
        return [self.ip, self.address, int(self.prefetch), self.fsr]

    def describe(self) -> str:
        return (f"VMFault: {self.access.value} at address {self.address:#x} "
                f"(fsr {self.fsr:#x}) at pc {self.ip:#x}")


@dataclass(frozen=True, slots=True)
class UserExceptionFault:
    ip: int
    number: int
    code: int
    sp: int = 0
    spsr: int = 0

    @property
    def label(self) -> FaultLabel:
        return FaultLabel.seL4_Fault_UserException

    def message(self, abi: ArchABI) -> list[int]:
        values = {"FaultIP": self.ip, "SP": self.sp, "SPSR": self.spsr,
                  "Number": self.number, "Code": self.code}
        return [values[name] for name in abi.user_exception_mrs]

    def describe(self) -> str:
        # Number is the architecture's own word (scause, ESR_EL1), not only an illegal
        # instruction's.
        return (f"UserException (number {self.number:#x}, "
                f"code {self.code:#x}) at pc {self.ip:#x}")


@dataclass(frozen=True, slots=True)
class UnknownSyscallFault:
    ip: int
    number: int
    registers: list[int]
    """The thread's register file at the trap, seL4_UserContext order."""

    @property
    def label(self) -> FaultLabel:
        return FaultLabel.seL4_Fault_UnknownSyscall

    def message(self, abi: ArchABI) -> list[int]:
        index = {name: i for i, name in enumerate(abi.user_context)}
        words = []
        for name in abi.unknown_syscall_mrs:
            if name == "FaultIP":
                words.append(self.ip)
            elif name == "Syscall":
                words.append(self.number & WORD_MASK)
            elif name == "LR":
                # AArch64's "LR" word is ELR_EL1 (abi/errors.md): at an svc, the address
                # of the next instruction, not x30.
                words.append((self.ip + 4) & WORD_MASK)
            else:
                words.append(self.registers[index[name.lower()]])
        return words

    def describe(self) -> str:
        return f"UnknownSyscall: syscall number {self.number} at pc {self.ip:#x}"


@dataclass(frozen=True, slots=True)
class CapPageTypeFault:
    """capsule's capability-page type error (not seL4; ``kernel.abi.extensions``): a data
    access or fetch at a capability page (``expected_caps`` False: data was expected
    there), or a capability load or store where no capability page is mapped
    (``expected_caps`` True). The message is ``FaultIP, Addr, Access, Expected``; a
    handler's reply restarts the thread at ``ip`` (the instruction, or the syscall)."""

    ip: int
    address: int
    access: CapPageAccess
    expected_caps: bool

    @property
    def label(self) -> CapPageFaultLabel:
        return (CapPageFaultLabel.capsule_Fault_CapAccessTypeError if self.expected_caps
                else CapPageFaultLabel.capsule_Fault_DataAccessTypeError)

    def message(self, abi: ArchABI) -> list[int]:
        return [self.ip, self.address, int(self.access), int(self.expected_caps)]

    def describe(self) -> str:
        what = "capability" if self.expected_caps else "data"
        return (f"{self.label.name.removeprefix('capsule_Fault_')}: "
                f"{self.access.name.removeprefix('capsule_Access')} at address "
                f"{self.address:#x} where {what} was expected, at pc {self.ip:#x}")


@dataclass(frozen=True, slots=True)
class IndexRequest:
    """capsule's server-backed CNodes (not seL4): a lookup of the thread's system call
    met an empty slot of the server-backed CNode at ``node``; the thread waits for the
    server (``kernel.entry.traversal``). Delivered as a fault is (a Call on the
    binding's endpoint with its badge, the message made from this record, the server's
    reply read by ``handle_fault_reply``), but to the node's server, never to the
    thread's fault handler. ``ip`` is the trap instruction: the thread restarts the
    system call from its beginning when the server answers.

    ``address`` / ``bits_left``: the unresolved low bits of the capability address
    where the lookup reached the node; ``kind``: which lookup (``LookupKind``); ``slot``:
    the empty slot's index in the node."""

    ip: int
    node: int
    endpoint: int
    """The address of the endpoint the request went to (the node's binding then)."""
    address: int
    bits_left: int
    kind: int
    slot: int

    @property
    def label(self) -> TraversalLabel:
        return TraversalLabel.capsule_IndexRequest

    @property
    def key(self) -> tuple[int, int, int]:
        """What a denial is remembered by: the node, the residual address, its bits."""
        return (self.node, self.address, self.bits_left)

    def message(self, abi: ArchABI) -> list[int]:
        return [self.address, self.bits_left, self.kind, self.slot]

    def describe(self) -> str:
        return (f"index request to the server of CNode {self.node:#x}: address "
                f"{self.address:#x}, {self.bits_left} bits left (lookup kind {self.kind}, "
                f"slot {self.slot}) at pc {self.ip:#x}")


@dataclass(frozen=True, slots=True)
class TimeoutFault:
    """MCS: a thread with a timeout handler ran out of budget (seL4_Fault_Timeout).

    ``ip`` is where the thread resumes if the handler restarts it. The message is the
    context's badge, then (if the thread still has a context when the message is made)
    the time the context consumed since it was last asked, in microseconds: that part
    is made at transfer time (``kernel.core.ipc_transfer``), as seL4 makes it."""

    ip: int
    badge: int

    @property
    def label(self) -> FaultLabelMCS:
        return FaultLabelMCS.seL4_Fault_Timeout

    def message(self, abi: ArchABI) -> list[int]:
        return [self.badge]

    def describe(self) -> str:
        return f"timeout fault (badge {self.badge:#x}) at pc {self.ip:#x}"


Fault = (CapFault | VMFault | UserExceptionFault | UnknownSyscallFault | CapPageTypeFault
         | IndexRequest | TimeoutFault)
