"""Where a fault goes: the faulting thread's fault endpoint, or nowhere.

Non-MCS seL4 looks the TCB's fault-endpoint CPtr up in the faulting thread's own CSpace
when the fault happens. If that does not yield an endpoint cap with Send and Grant or
GrantReply, the fault cannot be delivered ("double fault") and the thread becomes
Inactive; the debug kernel prints what happened, and so do we (on the console, as one
line, also kept in ``tcb.stop_reason`` for the run's final report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .caps import EndpointCap
from .cspace import lookup_cap
from .faults import Fault
from .objects.tcb import TCB, ThreadState

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["deliver_fault"]


def deliver_fault(kernel: Kernel, tcb: TCB, fault: Fault) -> None:
    """Deliver ``fault`` of ``tcb`` or, failing that, stop ``tcb``."""
    # Save the registers now: the thread will not run again before a handler replies.
    if tcb is kernel.current:
        kernel.save_current()
    # A restarted thread resumes at the fault's IP: the faulting instruction, or the
    # syscall's trap instruction (seL4's FaultIP), so that it is retried.
    tcb.registers[0] = fault.ip
    handler = lookup_cap(kernel, tcb, tcb.fault_ep)
    if isinstance(handler, EndpointCap) and handler.rights.write and (
        handler.rights.grant or handler.rights.grant_reply
    ):
        # Endpoint caps cannot exist before untyped retype lands (capabilities issue);
        # fault IPC arrives with the IPC issue.
        kernel.unsupported("fault delivery to a fault endpoint (the IPC issue)")
        return
    reason = (f'thread "{tcb.name}" stopped: {fault.describe()}; '
              f"no fault handler (fault endpoint cptr {tcb.fault_ep:#x} is not a usable endpoint)")
    tcb.stop_reason = reason
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)
