"""TCB invocations (seL4_TCB_*): decode in seL4's order, then perform. The MCS forms of
Configure, SetSpace and SetSchedParams, and SetTimeoutEndpoint, are
:mod:`kernel.objects.tcb_mcs`'s.

:func:`decode_tcb_invocation` validates and returns one frozen record per method
(:class:`TCBReadRegisters`, :class:`ThreadControl`, ...), or raises a
:class:`~kernel.model.errors.SyscallError` having changed nothing; each record has one
``perform_*`` function (registered in ``kernel.entry.dispatch``) that cannot fail and
returns the reply words. Whether a Call is answered at all is the invocation path's one
rule (the caller still runnable after perform): a thread that suspended itself through
CopyRegisters or Suspend gets no reply.

Decode order (seL4's decodeTCBInvocation and the per-method decoders; ``length`` is the
message length the kernel sees, cut to 4 without an IPC buffer):

- ReadRegisters: length >= 2 else TruncatedMessage; count (MR1) in 1..n_regs else
  RangeError(1, n_regs) (32 on RV64, 36 on AArch64); the target is the caller ->
  IllegalOperation. Reply: the first ``count`` words of seL4_UserContext.
- WriteRegisters: length >= 2; length - 2 >= count else TruncatedMessage; target is
  the caller -> IllegalOperation. A count above n_regs is cut to n_regs.
- CopyRegisters: length >= 1 and extra cap 0 else TruncatedMessage; extra cap 0 not a
  TCB cap -> InvalidCapability(1). (Copying from or to the caller is allowed.)
- Suspend, Resume: nothing to check.
- Configure: length >= 4 and extra caps 0-2 else TruncatedMessage; with a buffer
  address (MR3) != 0: the buffer cap (extra 2) is derived, then must be a non-device
  frame (IllegalOperation) at an address aligned to the IPC buffer size
  (AlignmentError); the CSpace cap (extra 0) gets MR1 as guard data if non-zero, is
  derived, and must be a CNode (IllegalOperation); the VSpace cap (extra 1) gets MR2
  if non-zero, is derived, and must be a mapped VSpace root (IllegalOperation).
- SetSpace: as Configure without the buffer: length >= 3 and extra caps 0-1.
- SetIPCBuffer: length >= 1 and extra cap 0, then the buffer checks of Configure.
- SetPriority / SetMCPriority: length >= 1 and extra cap 0 else TruncatedMessage; the
  authority (extra 0) not a TCB -> InvalidCapability(1); the value above the
  authority's MCP -> RangeError(0, mcp). SetSchedParams: length >= 2; MCP (MR0) then
  priority (MR1) checked.
- SetTLSBase: length >= 1. SetFlags: length >= 2; replies with the new flags word.
- BindNotification: the notification cap (extra cap 0) is required (TruncatedMessage);
  a TCB already bound, a cap that is not a notification with Receive, or a
  notification with waiters or a bound thread: IllegalOperation.
  UnbindNotification: IllegalOperation if nothing is bound. The effects are
  :mod:`kernel.core.notifications`' bind/unbind.
- Any other label: IllegalOperation.

Deriving may itself refuse (derive_cap: an untyped with children -> RevokeFirst, an
unmapped page table -> IllegalOperation). seL4's check that the TCB's CSpace or VSpace
is not in a long-running delete (IllegalOperation) never applies: capsule deletes
without zombies or preemption.

Performing Configure / SetSpace / SetIPCBuffer follows invokeTCB_ThreadControl: the
fault endpoint CPtr is stored; each of the TCB's slots is emptied (cdt.delete, which may
finalise objects) and then receives the derived cap as a CDT child of its source slot,
but only if the source still holds the same object and the invoked slot still names
this TCB; the IPC buffer address is stored even when no cap is.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final, assert_never

from kernel.abi.arch import Arch
from kernel.abi.constants import IPC_BUFFER_SIZE_BITS, TCB_FLAG_MASK, WORD_MASK
from kernel.abi.labels import label_table
from kernel.abi.methods import methods_for
from kernel.core.notifications import bind_notification, unbind_notification
from kernel.core.threads import (
    fpu_usable,
    get_registers,
    reset_next_pc,
    restart,
    sanitise_registers,
    set_priority,
    suspend,
    user_context,
)
from kernel.core.threads import set_registers as store
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import derive_cap, insert
from kernel.cspace.derive import same_object_as, update_cap_data
from kernel.model.caps import Cap, CNodeCap, FrameCap, NotificationCap, PageTableCap, ThreadCap, VSpaceCap
from kernel.model.errors import (
    AlignmentError,
    IllegalOperation,
    InvalidCapability,
    RangeError,
    TruncatedMessage,
)
from kernel.model.notification import Notification
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CTABLE, IPC_BUFFER_FRAME, TCB, VTABLE
from kernel.objects.deletion import delete
from kernel.records import dataclass

__all__ = [
    "FRAME_REGISTERS",
    "TCBBindNotification",
    "TCBCopyRegisters",
    "TCBMethod",
    "TCBReadRegisters",
    "TCBResume",
    "TCBSetFlags",
    "TCBSetMCPriority",
    "TCBSetPriority",
    "TCBSetSchedParams",
    "TCBSetTLSBase",
    "TCBSuspend",
    "TCBUnbindNotification",
    "TCBWriteRegisters",
    "ThreadControl",
    "decode_tcb_invocation",
    "perform_bind_notification",
    "perform_copy_registers",
    "perform_read_registers",
    "perform_resume",
    "perform_set_flags",
    "perform_set_mc_priority",
    "perform_set_priority",
    "perform_set_sched_params",
    "perform_set_tls_base",
    "perform_suspend",
    "perform_thread_control",
    "perform_unbind_notification",
    "perform_write_registers",
    "tcb_methods",
]

FRAME_REGISTERS: Final = {Arch.RISCV64: 16, Arch.AARCH64: 17}
"""seL4's n_frameRegisters: the first registers of seL4_UserContext (pc, sp, ... the
callee-saved set); the rest are its gpRegisters. CopyRegisters moves the two groups
separately."""


_TLS_REGISTER: Final = {Arch.RISCV64: "tp", Arch.AARCH64: "tpidr_el0"}
"""seL4's TLS_BASE register (AArch64 without the TPIDRRO_EL0 option)."""

def _flag(label: str, param: str) -> int:
    """The MR0 bit of a Boolean parameter of a TCB register method, from the method
    declarations (kernel.abi.methods; the same on both architectures)."""
    for method in methods_for(Arch.RISCV64):
        if method.label == label:
            for placed in method.words:
                if placed.param.name == param and placed.mr == 0 and placed.bits == 1:
                    return 1 << placed.bit
    raise LookupError(f"{label} declares no one-bit MR0 parameter {param}")


_COPY_SUSPEND_SOURCE: Final = _flag("TCBCopyRegisters", "suspend_source")
_COPY_RESUME_TARGET: Final = _flag("TCBCopyRegisters", "resume_target")
_COPY_FRAME: Final = _flag("TCBCopyRegisters", "transfer_frame")
_COPY_INTEGER: Final = _flag("TCBCopyRegisters", "transfer_integer")
_FLAG_SUSPEND: Final = _flag("TCBReadRegisters", "suspend_source")
_FLAG_RESUME: Final = _flag("TCBWriteRegisters", "resume_target")


def _arch_flags(word: int) -> int:
    """Bits 8-15 of MR0 of Read/Write/CopyRegisters (seL4's arch_flags; no architecture
    capsule builds gives them a meaning)."""
    return (word >> 8) & 0xFF


class TCBMethod(Enum):
    """The non-MCS TCB methods; the value is the label name without its ``TCB`` prefix."""

    READ_REGISTERS = "ReadRegisters"
    WRITE_REGISTERS = "WriteRegisters"
    COPY_REGISTERS = "CopyRegisters"
    CONFIGURE = "Configure"
    SET_PRIORITY = "SetPriority"
    SET_MC_PRIORITY = "SetMCPriority"
    SET_SCHED_PARAMS = "SetSchedParams"
    SET_IPC_BUFFER = "SetIPCBuffer"
    SET_SPACE = "SetSpace"
    SUSPEND = "Suspend"
    RESUME = "Resume"
    BIND_NOTIFICATION = "BindNotification"
    UNBIND_NOTIFICATION = "UnbindNotification"
    SET_TLS_BASE = "SetTLSBase"
    SET_FLAGS = "SetFlags"


@functools.cache
def tcb_methods(arch: Arch, mcs: bool) -> Mapping[int, TCBMethod]:
    """Label number -> TCB method in a configuration (built once per configuration,
    read-only); a method without a label in that configuration is absent."""
    labels = label_table(arch, mcs)
    return MappingProxyType({labels[f"TCB{method.value}"]: method for method in TCBMethod
                             if f"TCB{method.value}" in labels})


# --- decoded invocations --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TCBReadRegisters:
    """ReadRegisters of ``target`` (never the caller): suspend it first if
    ``suspend_source``; reply with the first ``count`` words of its seL4_UserContext."""

    target: TCB
    suspend_source: bool
    arch_flags: int
    count: int


@dataclass(frozen=True, slots=True)
class TCBWriteRegisters:
    """WriteRegisters of ``target`` (never the caller): ``values`` replace the first
    registers of its seL4_UserContext (at most n_regs of them); then resume it if
    ``resume_target``."""

    target: TCB
    resume_target: bool
    arch_flags: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TCBCopyRegisters:
    """CopyRegisters from ``source`` to ``target`` (either may be the caller)."""

    target: TCB
    source: TCB
    suspend_source: bool
    resume_target: bool
    transfer_frame: bool
    transfer_integer: bool
    arch_flags: int


@dataclass(frozen=True, slots=True, eq=False)
class ThreadControl:
    """Configure / SetSpace / SetIPCBuffer: what to install in ``target``.

    ``space`` is (fault_ep, cspace cap, its source slot, vspace cap, its source slot)
    when the CSpace/VSpace change; ``buffer`` is (address, frame cap or None, source
    slot or None) when the IPC buffer changes.
    """

    target: TCB
    slot: Slot
    space: tuple[int, Cap, Slot, Cap, Slot] | None
    buffer: tuple[int, Cap | None, Slot | None] | None


@dataclass(frozen=True, slots=True)
class TCBSetPriority:
    """SetPriority: ``priority`` is at most the authority's MCP (checked at decode)."""

    target: TCB
    priority: int


@dataclass(frozen=True, slots=True)
class TCBSetMCPriority:
    """SetMCPriority: ``mcp`` is at most the authority's MCP (checked at decode)."""

    target: TCB
    mcp: int


@dataclass(frozen=True, slots=True)
class TCBSetSchedParams:
    """SetSchedParams (non-MCS): both values are at most the authority's MCP."""

    target: TCB
    mcp: int
    priority: int


@dataclass(frozen=True, slots=True)
class TCBSuspend:
    """Suspend ``target`` (the caller too: it then gets no reply)."""

    target: TCB


@dataclass(frozen=True, slots=True)
class TCBResume:
    """Resume (seL4's restart) ``target``."""

    target: TCB


@dataclass(frozen=True, slots=True)
class TCBBindNotification:
    """Bind ``notification`` (no waiters, not bound) to ``target`` (not bound)."""

    target: TCB
    notification: Notification


@dataclass(frozen=True, slots=True)
class TCBUnbindNotification:
    """Unbind ``target``'s bound notification (there is one)."""

    target: TCB


@dataclass(frozen=True, slots=True)
class TCBSetTLSBase:
    """Write ``base`` into ``target``'s TLS base register."""

    target: TCB
    base: int


@dataclass(frozen=True, slots=True)
class TCBSetFlags:
    """Clear the flags in ``clear``, then set those of ``set`` within seL4_TCBFlag_MASK;
    the reply is the new flags word."""

    target: TCB
    clear: int
    set: int


def _tcb_of(kernel: KernelState, cap: Cap) -> TCB:
    assert isinstance(cap, ThreadCap)
    tcb = kernel.object_at(cap.paddr, TCB)
    return tcb


def _check_ipc_buffer(address: int, cap: Cap) -> None:
    """seL4's checkValidIPCBuffer (same on both architectures)."""
    if not isinstance(cap, FrameCap) or cap.is_device:
        raise IllegalOperation()
    if address & ((1 << IPC_BUFFER_SIZE_BITS) - 1):
        raise AlignmentError()


def _is_valid_vtable_root(kernel: KernelState, cap: Cap) -> bool:
    """seL4's isValidVTableRoot: a mapped (ASID-assigned) top-level table."""
    root = PageTableCap if kernel.arch is Arch.RISCV64 else VSpaceCap
    return isinstance(cap, root) and cap.mapped_asid != 0


def _decode_buffer(kernel: KernelState, address: int, slot: Slot) -> tuple[int, Cap | None,
                                                                      Slot | None]:

    if address == 0:
        return 0, None, None
    cap = derive_cap(kernel, slot, slot.cap)
    _check_ipc_buffer(address, cap)
    return address, cap, slot


def _derived(kernel: KernelState, slot: Slot, data: int) -> Cap:
    """The slot's cap with ``data`` applied (0: unchanged), derived as seL4 does."""
    cap = slot.cap if data == 0 else update_cap_data(False, data, slot.cap)
    return derive_cap(kernel, slot, cap)


def _decode_space(kernel: KernelState, fault_ep: int, croot_data: int, vroot_data: int,
                  croot: Slot, vroot: Slot) -> tuple[int, Cap, Slot, Cap, Slot]:

    ccap = _derived(kernel, croot, croot_data)
    if not isinstance(ccap, CNodeCap):
        raise IllegalOperation()
    vcap = _derived(kernel, vroot, vroot_data)
    if not _is_valid_vtable_root(kernel, vcap):
        raise IllegalOperation()
    return fault_ep, ccap, croot, vcap, vroot


def _check_prio(kernel: KernelState, value: int, authority: Cap) -> None:
    """seL4's checkPrio against the authority TCB's MCP."""
    mcp = _tcb_of(kernel, authority).mcp
    if value > mcp:
        raise RangeError(0, mcp)


def _authority(extra: tuple[Slot, ...]) -> Cap:
    """The authority TCB cap of SetPriority / SetMCPriority / SetSchedParams (extra 0,
    present): not a TCB cap -> InvalidCapability(1)."""
    cap = extra[0].cap
    if not isinstance(cap, ThreadCap):
        raise InvalidCapability(1)
    return cap


def decode_tcb_invocation(kernel: KernelState, slot: Slot, invocation: InvocationArgs) -> object:
    """Decode an invocation of the TCB cap in ``slot`` (order in the module docstring).

    Returns the method's record; raises SyscallError. Changes no state.
    """
    caller = kernel.current
    assert caller is not None
    method = tcb_methods(kernel.arch, kernel.config.mcs).get(invocation.label)
    if method is None:
        raise IllegalOperation()
    target = _tcb_of(kernel, slot.cap)
    args, extra = invocation.words, invocation.extra

    match method:
        case TCBMethod.BIND_NOTIFICATION:
            if not extra:
                raise TruncatedMessage()
            if target.bound_notification is not None:
                raise IllegalOperation()
            ntfn_cap = extra[0].cap
            if not isinstance(ntfn_cap, NotificationCap) or not ntfn_cap.rights.read:
                raise IllegalOperation()
            ntfn = kernel.object_at(ntfn_cap.paddr, Notification)
            if ntfn.queue or ntfn.bound_tcb is not None:
                raise IllegalOperation()
            return TCBBindNotification(target, ntfn)
        case TCBMethod.UNBIND_NOTIFICATION:
            if target.bound_notification is None:
                raise IllegalOperation()
            return TCBUnbindNotification(target)
        case TCBMethod.READ_REGISTERS:
            if len(args) < 2:
                raise TruncatedMessage()
            n_regs = len(kernel.abi.user_context)
            count = args[1]
            if not 1 <= count <= n_regs:
                raise RangeError(1, n_regs)
            if target is caller:
                raise IllegalOperation()
            return TCBReadRegisters(target, bool(args[0] & _FLAG_SUSPEND), _arch_flags(args[0]),
                                    count)
        case TCBMethod.WRITE_REGISTERS:
            if len(args) < 2:
                raise TruncatedMessage()
            count = args[1]
            if len(args) - 2 < count:
                raise TruncatedMessage()
            if target is caller:
                raise IllegalOperation()
            n_regs = len(kernel.abi.user_context)
            return TCBWriteRegisters(target, bool(args[0] & _FLAG_RESUME), _arch_flags(args[0]),
                                     tuple(args[2 : 2 + min(count, n_regs)]))
        case TCBMethod.COPY_REGISTERS:
            if len(args) < 1 or not extra:
                raise TruncatedMessage()
            if not isinstance(extra[0].cap, ThreadCap):
                raise InvalidCapability(1)
            flags = args[0]
            return TCBCopyRegisters(
                target, _tcb_of(kernel, extra[0].cap),
                suspend_source=bool(flags & _COPY_SUSPEND_SOURCE),
                resume_target=bool(flags & _COPY_RESUME_TARGET),
                transfer_frame=bool(flags & _COPY_FRAME),
                transfer_integer=bool(flags & _COPY_INTEGER),
                arch_flags=_arch_flags(flags),
            )
        case TCBMethod.SUSPEND:
            return TCBSuspend(target)
        case TCBMethod.RESUME:
            return TCBResume(target)
        case TCBMethod.CONFIGURE:
            if len(args) < 4 or len(extra) < 3:
                raise TruncatedMessage()
            buffer = _decode_buffer(kernel, args[3], extra[2])
            space = _decode_space(kernel, args[0], args[1], args[2], extra[0], extra[1])
            return ThreadControl(target, slot, space, buffer)
        case TCBMethod.SET_SPACE:
            if len(args) < 3 or len(extra) < 2:
                raise TruncatedMessage()
            space = _decode_space(kernel, args[0], args[1], args[2], extra[0], extra[1])
            return ThreadControl(target, slot, space, None)
        case TCBMethod.SET_IPC_BUFFER:
            if len(args) < 1 or not extra:
                raise TruncatedMessage()
            buffer = _decode_buffer(kernel, args[0], extra[0])
            return ThreadControl(target, slot, None, buffer)
        case TCBMethod.SET_PRIORITY:
            if len(args) < 1 or not extra:
                raise TruncatedMessage()
            _check_prio(kernel, args[0], _authority(extra))
            return TCBSetPriority(target, args[0])
        case TCBMethod.SET_MC_PRIORITY:
            if len(args) < 1 or not extra:
                raise TruncatedMessage()
            _check_prio(kernel, args[0], _authority(extra))
            return TCBSetMCPriority(target, args[0])
        case TCBMethod.SET_SCHED_PARAMS:
            if len(args) < 2 or not extra:
                raise TruncatedMessage()
            authority = _authority(extra)
            _check_prio(kernel, args[0], authority)
            _check_prio(kernel, args[1], authority)
            return TCBSetSchedParams(target, args[0], args[1])
        case TCBMethod.SET_TLS_BASE:
            if len(args) < 1:
                raise TruncatedMessage()
            return TCBSetTLSBase(target, args[0])
        case TCBMethod.SET_FLAGS:
            if len(args) < 2:
                raise TruncatedMessage()
            return TCBSetFlags(target, args[0], args[1])
        case _:
            assert_never(method)


# --- perform ---------------------------------------------------------------------------
# Each returns the words of the success reply; the invocation path sends it only to a
# caller still runnable afterwards (seL4's handleInvocation), which covers a caller that
# suspended itself (Suspend of itself, CopyRegisters suspending itself as the source).


def perform_bind_notification(kernel: KernelState, inv: TCBBindNotification) -> list[int]:
    """seL4's bindNotification."""
    bind_notification(kernel, inv.target, inv.notification)
    return []


def perform_unbind_notification(kernel: KernelState, inv: TCBUnbindNotification) -> list[int]:
    """seL4's unbindNotification."""
    unbind_notification(kernel, inv.target)
    return []


def perform_read_registers(kernel: KernelState, inv: TCBReadRegisters) -> list[int]:
    """seL4's invokeTCB_ReadRegisters: the reply is the first ``count`` registers."""
    if inv.suspend_source:
        suspend(kernel, inv.target)
    return user_context(kernel, inv.target)[: inv.count]


def perform_write_registers(kernel: KernelState, inv: TCBWriteRegisters) -> list[int]:
    """seL4's invokeTCB_WriteRegisters."""
    target, values = inv.target, inv.values
    registers = get_registers(kernel, target)
    if values:
        # A written pc is both FaultIP and the resume pc.
        target.after_syscall = False
    for index, value in enumerate(values):
        registers[index] = value & WORD_MASK
    if kernel.arch is Arch.AARCH64 and kernel.reg_index["spsr"] < len(values):
        registers = sanitise_registers(kernel, registers)  # seL4's sanitiseRegister
    store(kernel, target, registers)
    reset_next_pc(kernel, target)
    if inv.resume_target:
        restart(kernel, target)
    if target is kernel.current:
        kernel.reschedule_required()
    return []


def perform_copy_registers(kernel: KernelState, inv: TCBCopyRegisters) -> list[int]:
    """seL4's invokeTCB_CopyRegisters."""
    dest, source = inv.target, inv.source
    if inv.suspend_source:
        suspend(kernel, source)
    if inv.resume_target:
        restart(kernel, dest)
    frame = FRAME_REGISTERS[kernel.arch]
    values = user_context(kernel, source)
    registers = get_registers(kernel, dest)
    if inv.transfer_frame:
        registers[:frame] = values[:frame]
        dest.after_syscall = False  # setNextPC(getRestartPC): the copied pc resumes
    if inv.transfer_integer:
        registers[frame:] = values[frame:]
    store(kernel, dest, registers)
    if dest is kernel.current:
        kernel.reschedule_required()
    return []


def perform_suspend(kernel: KernelState, inv: TCBSuspend) -> list[int]:
    """seL4's invokeTCB_Suspend."""
    suspend(kernel, inv.target)
    return []


def perform_resume(kernel: KernelState, inv: TCBResume) -> list[int]:
    """seL4's invokeTCB_Resume (restart)."""
    restart(kernel, inv.target)
    return []


def _install(kernel: KernelState, inv: ThreadControl, index: int, cap: Cap | None,
             source: Slot | None) -> None:
    """Empty the TCB's slot ``index`` and put ``cap`` there as a child of ``source``,
    if both the source and the invoked slot still name what they named at decode."""

    slot = inv.target.slots[index]
    delete(kernel, slot)
    bits = kernel.tcb_bits
    if (cap is not None and source is not None
            and same_object_as(cap, source.cap, bits)
            and same_object_as(ThreadCap(inv.target.paddr), inv.slot.cap, bits)):
        insert(cap, source, slot)


def perform_thread_control(kernel: KernelState, inv: ThreadControl) -> list[int]:
    """seL4's invokeTCB_ThreadControl (non-MCS) for the space and buffer parts."""
    target = inv.target
    if inv.space is not None:
        fault_ep, ccap, csrc, vcap, vsrc = inv.space
        target.fault_ep = fault_ep
        _install(kernel, inv, CTABLE, ccap, csrc)
        _install(kernel, inv, VTABLE, vcap, vsrc)
    if inv.buffer is not None:
        address, cap, source = inv.buffer
        _install(kernel, inv, IPC_BUFFER_FRAME, cap, source)
        target.ipc_buffer = address
        if target is kernel.current:
            kernel.reschedule_required()
    return []


def perform_set_priority(kernel: KernelState, inv: TCBSetPriority) -> list[int]:
    """seL4's setPriority."""
    set_priority(kernel, inv.target, inv.priority)
    return []


def perform_set_mc_priority(kernel: KernelState, inv: TCBSetMCPriority) -> list[int]:
    """seL4's setMCPriority."""
    inv.target.mcp = inv.mcp
    return []


def perform_set_sched_params(kernel: KernelState, inv: TCBSetSchedParams) -> list[int]:
    """Non-MCS SetSchedParams (seL4's invokeTCB_ThreadControl sets the MCP, then the
    priority)."""
    inv.target.mcp = inv.mcp
    set_priority(kernel, inv.target, inv.priority)
    return []


def perform_set_tls_base(kernel: KernelState, inv: TCBSetTLSBase) -> list[int]:
    """seL4's invokeSetTLSBase."""
    target = inv.target
    registers = get_registers(kernel, target)
    registers[kernel.reg_index[_TLS_REGISTER[kernel.arch]]] = inv.base
    store(kernel, target, registers)
    if target is kernel.current:
        kernel.reschedule_required()
    return []


def perform_set_flags(kernel: KernelState, inv: TCBSetFlags) -> list[int]:
    """seL4's invokeSetFlags: the reply is the new flags word."""
    target = inv.target
    target.flags = (target.flags & ~inv.clear) | (inv.set & TCB_FLAG_MASK)
    if target is kernel.current:
        # A thread switch applies the flag to any other thread (install_thread); the
        # caller keeps running, so its live CPU state changes now.
        kernel.machine.set_fpu_enabled(fpu_usable(kernel, target))
    return [target.flags]
