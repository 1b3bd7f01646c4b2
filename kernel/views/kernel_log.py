"""The kernel log: the lines seL4's debug kernel prints about what user code did wrong.

seL4 built with printing reports each refused invocation with ``userError`` and each
fault that finds no fault handler with ``handleDoubleFault`` (seL4 16.0.0,
``include/api/types.h`` and ``src/kernel/faulthandler.c``). seL4 developers read those
lines, so ``capsule run --kernel-log`` prints them in the same shape:

- a refused invocation (``KernelState.error_observers``)::

      <<seL4(CPU 0) [decode_cnode_invocation T0x80203000 "rootserver" @10a4c]: CNodeCap:
      CNodeCopy: DeleteFirst.>>   (one line; folded here)

  seL4's ``[function/line`` becomes the capsule decoder that refused (or, for a cap type
  refused without one, the cap type's name); ``T`` is the TCB's physical address (seL4
  prints its kernel virtual address) and ``@`` the restart pc, in hex without ``0x`` as
  seL4 prints it. The message names the cap type, the method (the label's name, or
  ``label N`` for a number that names none), the error and its payload.
- a fault with no handler (``KernelState.no_handler_observers``), as one line where seL4
  prints several (and a stack dump after them)::

      Caught cap fault in send phase at address 0x0 while trying to handle: user exception
      0x2 code 0x0 in thread 0x80203000 "orphan" at address 0x10a4c   (one line; folded)

Cap faults of the invoked cap are faults, not refused invocations: they go to the fault
handler and appear here only when there is none. Observers only: nothing here changes
kernel state. Not the trace (:mod:`kernel.views.trace_events`), which shows every event.
"""

from __future__ import annotations

from collections.abc import Callable

from kernel.abi.constants import WORD_MASK
from kernel.abi.extensions import configured_labels
from kernel.entry.dispatch import DECODERS
from kernel.model.errors import (
    DepthMismatch,
    FailedLookup,
    GuardMismatch,
    InvalidArgument,
    InvalidCapability,
    InvalidRoot,
    LookupFailure,
    MissingCapability,
    NotEnoughMemory,
    RangeError,
    SyscallError,
)
from kernel.model.faults import (
    CapFault,
    CapPageTypeFault,
    Fault,
    IndexRequest,
    TimeoutFault,
    UnknownSyscallFault,
    UserExceptionFault,
    VMFault,
)
from kernel.model.state import KernelState, RefusedInvocation
from kernel.model.tcb import TCB

__all__ = ["KernelLog", "error_text", "fault_text", "no_handler_line", "refused_line"]


class KernelLog:
    """Writes the kernel log of ``kernel`` to ``sink``, one line (no newline) per call,
    from now on."""

    def __init__(self, kernel: KernelState, sink: Callable[[str], None]) -> None:
        self._kernel = kernel
        self._sink = sink
        kernel.error_observers.append(self._on_error)
        kernel.no_handler_observers.append(self._on_no_handler)

    def _on_error(self, refused: RefusedInvocation) -> None:
        self._sink(refused_line(self._kernel, refused))

    def _on_no_handler(self, tcb: TCB, fault: Fault, handler_fault: CapFault) -> None:
        self._sink(no_handler_line(tcb, fault, handler_fault))


def refused_line(kernel: KernelState, refused: RefusedInvocation) -> str:
    """seL4's userError line for ``refused``."""
    cap_type = type(refused.cap).__name__
    decoder = DECODERS.get(type(refused.cap))
    where = decoder.__name__.lstrip("_") if decoder is not None else cap_type
    names = {number: name for name, number in configured_labels(
        kernel.arch, kernel.config.mcs, kernel.config.checkpoint_object,
        kernel.config.cap_pages, traversal=kernel.config.server_backed_cnodes).items()}
    method = names.get(refused.label, f"label {refused.label}")
    thread = refused.thread
    return (f'<<seL4(CPU 0) [{where} T{thread.paddr:#x} "{thread.name}" @{refused.pc:x}]: '
            f"{cap_type}: {method}: {error_text(refused.error)}.>>")


def error_text(error: SyscallError) -> str:
    """The error's seL4 name without ``seL4_``, then its payload."""
    name = error.code.name.removeprefix("seL4_")
    match error:
        case InvalidArgument():
            return f"{name} (argument {error.argument})"
        case InvalidCapability():
            return f"{name} (cap {error.cap_index})"
        case RangeError():
            return f"{name} [{error.minimum}..{error.maximum}]"
        case FailedLookup():
            side = "source" if error.was_source else "destination"
            return f"{name} of the {side}: {_lookup_text(error.failure)}"
        case NotEnoughMemory():
            return f"{name} ({error.memory_left} bytes left)"
    return name


def _lookup_text(failure: LookupFailure) -> str:
    match failure:
        case InvalidRoot():
            return "InvalidRoot"
        case MissingCapability(bits_left):
            return f"MissingCapability ({bits_left} bits left)"
        case DepthMismatch(bits_left, bits_found):
            return f"DepthMismatch ({bits_left} bits left, {bits_found} bits found)"
        case GuardMismatch(bits_left, guard_found, bits_found):
            return (f"GuardMismatch ({bits_left} bits left, guard {guard_found:#x} "
                    f"of {bits_found} bits found)")


def fault_text(fault: Fault) -> str:
    """seL4's print_fault: the fault as the debug kernel describes it."""
    match fault:
        case CapFault():
            phase = "receive" if fault.in_receive_phase else "send"
            return f"cap fault in {phase} phase at address {fault.address:#x}"
        case VMFault():
            on = "code" if fault.prefetch else "data"
            return f"vm fault on {on} at address {fault.address:#x} with status {fault.fsr:#x}"
        case UnknownSyscallFault():
            return f"unknown syscall {fault.number & WORD_MASK:#x}"
        case UserExceptionFault():
            return f"user exception {fault.number:#x} code {fault.code:#x}"
        case TimeoutFault():
            return f"Timeout fault for {fault.badge & 0xFFFF_FFFF:#x}"
        case CapPageTypeFault() | IndexRequest():  # capsule's extensions (not seL4)
            return fault.describe()


def no_handler_line(tcb: TCB, fault: Fault, handler_fault: CapFault) -> str:
    """seL4's handleDoubleFault report, on one line: ``handler_fault`` is the cap fault of
    looking up ``tcb``'s fault handler, ``fault`` the one it was to handle; the address
    is the restart pc (the fault's IP)."""
    return (f"Caught {fault_text(handler_fault)} while trying to handle: {fault_text(fault)} "
            f'in thread {tcb.paddr:#x} "{tcb.name}" at address {fault.ip:#x}')
