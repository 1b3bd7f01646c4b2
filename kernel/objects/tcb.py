"""TCB invocations (seL4_TCB_*, non-MCS): decode in seL4's order, then perform.

:func:`decode_tcb_invocation` validates and returns a performer, or raises a
:class:`~kernel.model.errors.SyscallError` having changed nothing; the performers cannot fail.
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

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from kernel.abi.arch import Arch
from kernel.abi.constants import IPC_BUFFER_SIZE_BITS, WORD_MASK
from kernel.abi.labels import label_table
from kernel.core.notifications import bind_notification, unbind_notification
from kernel.core.threads import (
    get_registers,
    reset_next_pc,
    restart,
    sanitise_registers,
    set_priority,
    suspend,
    user_context,
)
from kernel.core.threads import set_registers as store
from kernel.cspace.arguments import Performer, extra_cap_slots, message_args
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
from kernel.model.message import MessageInfo
from kernel.model.notification import Notification
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CTABLE, IPC_BUFFER_FRAME, TCB, VTABLE
from kernel.objects.deletion import delete

__all__ = ["FRAME_REGISTERS", "TCB_FLAG_MASK", "decode_tcb_invocation"]

FRAME_REGISTERS = {Arch.RISCV64: 16, Arch.AARCH64: 17}
"""seL4's n_frameRegisters: the first registers of seL4_UserContext (pc, sp, ... the
callee-saved set); the rest are its gpRegisters. CopyRegisters moves the two groups
separately."""

TCB_FLAG_MASK = 0x1
"""seL4_TCBFlag_MASK: the only flag is seL4_TCBFlag_fpuDisabled (bit 0). capsule runs
no FPU context (guests are integer-only), so the flag is kept and reported only."""

_TLS_REGISTER = {Arch.RISCV64: "tp", Arch.AARCH64: "tpidr_el0"}
"""seL4's TLS_BASE register (AArch64 without the TPIDRRO_EL0 option)."""

_COPY_SUSPEND_SOURCE, _COPY_RESUME_TARGET, _COPY_FRAME, _COPY_INTEGER = (1, 2, 4, 8)
_FLAG_SUSPEND = _FLAG_RESUME = 1
"""Bit 0 of MR0 of Read/WriteRegisters: suspend the source / resume the target."""

_METHODS = (
    "ReadRegisters", "WriteRegisters", "CopyRegisters", "Configure", "SetPriority",
    "SetMCPriority", "SetSchedParams", "SetIPCBuffer", "SetSpace", "Suspend", "Resume",
    "BindNotification", "UnbindNotification", "SetTLSBase", "SetFlags",
)


def _method_of(kernel: KernelState, label: int) -> str | None:
    labels = label_table(kernel.arch, kernel.config.mcs)
    for name in _METHODS:
        if labels.get(f"TCB{name}") == label:
            return name
    return None


# --- decoded invocations --------------------------------------------------------------


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


def _tcb_of(kernel: KernelState, cap: Cap) -> TCB:
    assert isinstance(cap, ThreadCap)
    tcb = kernel.objects.get(cap.paddr)
    assert isinstance(tcb, TCB)
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


def _decode_space(kernel: KernelState, fault_ep: int, croot_data: int, vroot_data: int,
                  croot: Slot, vroot: Slot) -> tuple[int, Cap, Slot, Cap, Slot]:

    def derived(slot: Slot, data: int) -> Cap:
        """The slot's cap with ``data`` applied (0: unchanged), derived as seL4 does."""
        cap = slot.cap if data == 0 else update_cap_data(False, data, slot.cap)
        return derive_cap(kernel, slot, cap)

    ccap = derived(croot, croot_data)
    if not isinstance(ccap, CNodeCap):
        raise IllegalOperation()
    vcap = derived(vroot, vroot_data)
    if not _is_valid_vtable_root(kernel, vcap):
        raise IllegalOperation()
    return fault_ep, ccap, croot, vcap, vroot


def _check_prio(kernel: KernelState, value: int, authority: Cap) -> None:
    """seL4's checkPrio against the authority TCB's MCP."""
    mcp = _tcb_of(kernel, authority).mcp
    if value > mcp:
        raise RangeError(0, mcp)


def decode_tcb_invocation(
    kernel: KernelState, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Decode an invocation of the TCB cap in ``slot`` (order in the module docstring).

    Returns the performer; raises SyscallError. Changes no state.
    """

    caller = kernel.current
    assert caller is not None
    name = _method_of(kernel, info.label)
    if name is None:
        raise IllegalOperation()
    target = _tcb_of(kernel, slot.cap)
    args = message_args(kernel, caller, info, window)
    extra = extra_cap_slots(kernel, caller, info)
    n_regs = len(kernel.abi.user_context)
    act: Callable[[], list[int] | None]

    if kernel.config.mcs and name in ("Configure", "SetSpace", "SetSchedParams"):
        return partial(_unsupported, kernel, info.label)
    if name == "BindNotification":
        if not extra:
            raise TruncatedMessage()
        if target.bound_notification is not None:
            raise IllegalOperation()
        ntfn_cap = extra[0].cap
        if not isinstance(ntfn_cap, NotificationCap) or not ntfn_cap.rights.read:
            raise IllegalOperation()
        ntfn = kernel.objects[ntfn_cap.paddr]
        assert isinstance(ntfn, Notification)
        if ntfn.queue or ntfn.bound_tcb is not None:
            raise IllegalOperation()
        act = partial(_bind, kernel, target, ntfn)
    elif name == "UnbindNotification":
        if target.bound_notification is None:
            raise IllegalOperation()
        act = partial(_unbind, kernel, target)
    elif name == "ReadRegisters":
        if len(args) < 2:
            raise TruncatedMessage()
        count = args[1]
        if not 1 <= count <= n_regs:
            raise RangeError(1, n_regs)
        if target is caller:
            raise IllegalOperation()
        act = partial(_read_registers, kernel, target, bool(args[0] & _FLAG_SUSPEND), count)
    elif name == "WriteRegisters":
        if len(args) < 2:
            raise TruncatedMessage()
        count = args[1]
        if len(args) - 2 < count:
            raise TruncatedMessage()
        if target is caller:
            raise IllegalOperation()
        act = partial(_write_registers, kernel, target, bool(args[0] & _FLAG_RESUME),
                      args[2 : 2 + min(count, n_regs)])
    elif name == "CopyRegisters":
        if len(args) < 1 or not extra:
            raise TruncatedMessage()
        if not isinstance(extra[0].cap, ThreadCap):
            raise InvalidCapability(1)
        act = partial(_copy_registers, kernel, target, _tcb_of(kernel, extra[0].cap), args[0])
    elif name == "Suspend":
        act = partial(_suspend, kernel, target)
    elif name == "Resume":
        act = partial(_resume, kernel, target)
    elif name == "Configure":
        if len(args) < 4 or len(extra) < 3:
            raise TruncatedMessage()
        buffer = _decode_buffer(kernel, args[3], extra[2])
        space = _decode_space(kernel, args[0], args[1], args[2], extra[0], extra[1])
        act = partial(_thread_control, kernel, ThreadControl(target, slot, space, buffer))
    elif name == "SetSpace":
        if len(args) < 3 or len(extra) < 2:
            raise TruncatedMessage()
        space = _decode_space(kernel, args[0], args[1], args[2], extra[0], extra[1])
        act = partial(_thread_control, kernel, ThreadControl(target, slot, space, None))
    elif name == "SetIPCBuffer":
        if len(args) < 1 or not extra:
            raise TruncatedMessage()
        buffer = _decode_buffer(kernel, args[0], extra[0])
        act = partial(_thread_control, kernel, ThreadControl(target, slot, None, buffer))
    elif name in ("SetPriority", "SetMCPriority"):
        if len(args) < 1 or not extra:
            raise TruncatedMessage()
        if not isinstance(extra[0].cap, ThreadCap):
            raise InvalidCapability(1)
        _check_prio(kernel, args[0], extra[0].cap)
        mcp, prio = (None, args[0]) if name == "SetPriority" else (args[0], None)
        act = partial(_sched_params, kernel, target, mcp, prio)
    elif name == "SetSchedParams":
        if len(args) < 2 or not extra:
            raise TruncatedMessage()
        if not isinstance(extra[0].cap, ThreadCap):
            raise InvalidCapability(1)
        _check_prio(kernel, args[0], extra[0].cap)
        _check_prio(kernel, args[1], extra[0].cap)
        act = partial(_sched_params, kernel, target, args[0], args[1])
    elif name == "SetTLSBase":
        if len(args) < 1:
            raise TruncatedMessage()
        act = partial(_set_tls_base, kernel, target, args[0])
    else:
        assert name == "SetFlags"
        if len(args) < 2:
            raise TruncatedMessage()
        act = partial(_set_flags, target, args[0], args[1])
    return partial(_perform_and_reply, kernel, caller, act)


# --- perform ---------------------------------------------------------------------------


def _perform_and_reply(kernel: KernelState, caller: TCB,
                       act: Callable[[], list[int] | None]) -> list[int] | None:
    """Run the invocation; the caller gets its reply only if it is still runnable
    (seL4 replies to a thread still in the Restart state it set before invoking:
    one that suspended itself gets nothing)."""
    words = act()
    if not caller.state.runnable:
        return None
    return [] if words is None else words


def _bind(kernel: KernelState, target: TCB, ntfn: Notification) -> None:

    bind_notification(kernel, target, ntfn)


def _unbind(kernel: KernelState, target: TCB) -> None:

    unbind_notification(kernel, target)


def _unsupported(kernel: KernelState, label: int) -> None:
    """The MCS variants of Configure/SetSpace/SetSchedParams are not built: the run
    stops, naming them as ``kernel.entry.invocation`` names undecoded objects."""
    kernel.unsupported(f"invocations of thread_cap (label {label})")


def _read_registers(kernel: KernelState, target: TCB, suspend_source: bool,
                    count: int) -> list[int]:

    if suspend_source:
        suspend(kernel, target)
    return user_context(kernel, target)[:count]


def _write_registers(kernel: KernelState, target: TCB, resume_target: bool,
                     values: list[int]) -> None:

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
    if resume_target:
        restart(kernel, target)
    if target is kernel.current:
        kernel.reschedule_required()


def _copy_registers(kernel: KernelState, dest: TCB, source: TCB, flags: int) -> None:

    if flags & _COPY_SUSPEND_SOURCE:
        suspend(kernel, source)
    if flags & _COPY_RESUME_TARGET:
        restart(kernel, dest)
    frame = FRAME_REGISTERS[kernel.arch]
    values = user_context(kernel, source)
    registers = get_registers(kernel, dest)
    if flags & _COPY_FRAME:
        registers[:frame] = values[:frame]
        dest.after_syscall = False  # setNextPC(getRestartPC): the copied pc resumes
    if flags & _COPY_INTEGER:
        registers[frame:] = values[frame:]
    store(kernel, dest, registers)
    if dest is kernel.current:
        kernel.reschedule_required()


def _suspend(kernel: KernelState, target: TCB) -> None:

    suspend(kernel, target)


def _resume(kernel: KernelState, target: TCB) -> None:

    restart(kernel, target)


def _install(kernel: KernelState, inv: ThreadControl, index: int, cap: Cap | None,
             source: Slot | None) -> None:
    """Empty the TCB's slot ``index`` and put ``cap`` there as a child of ``source``,
    if both the source and the invoked slot still name what they named at decode."""

    slot = inv.target.slots[index]
    delete(kernel, slot)
    bits = kernel.abi.tcb_bits
    if (cap is not None and source is not None
            and same_object_as(cap, source.cap, bits)
            and same_object_as(ThreadCap(inv.target.paddr), inv.slot.cap, bits)):
        insert(cap, source, slot)


def _thread_control(kernel: KernelState, inv: ThreadControl) -> None:
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


def _sched_params(kernel: KernelState, target: TCB, mcp: int | None,
                  priority: int | None) -> None:

    if mcp is not None:
        target.mcp = mcp
    if priority is not None:
        set_priority(kernel, target, priority)


def _set_tls_base(kernel: KernelState, target: TCB, value: int) -> None:

    registers = get_registers(kernel, target)
    registers[kernel.reg_index[_TLS_REGISTER[kernel.arch]]] = value
    store(kernel, target, registers)
    if target is kernel.current:
        kernel.reschedule_required()


def _set_flags(target: TCB, clear: int, set_: int) -> list[int]:
    target.flags = (target.flags & ~clear) | (set_ & TCB_FLAG_MASK)
    return [target.flags]
