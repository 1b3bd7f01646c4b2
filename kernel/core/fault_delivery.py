"""Where a fault goes: the faulting thread's fault endpoint, or nowhere.

Non-MCS seL4 looks the TCB's fault-endpoint CPtr up in the faulting thread's own CSpace
when the fault happens. If that does not yield an endpoint cap with Send and Grant or
GrantReply, the fault cannot be delivered ("double fault") and the thread becomes
Inactive; the debug kernel prints what happened ("Caught <the handler's cap fault> while
trying to handle: <the fault>"). We keep one line in ``tcb.stop_reason`` for the run's
final report and tell ``KernelState.no_handler_observers`` (the kernel log prints
seL4's text).

Otherwise the fault is sent as a Call through that endpoint (seL4's sendFaultIPC:
blocking, with GrantReply, the cap's badge and Grant right): ``tcb.fault`` holds it
until the handler replies, and the message is made from it when it is transferred.
The handler's reply is read by :func:`kernel.core.fault_reply.handle_fault_reply`.

The MCS kernel keeps the handler as a cap in the TCB (SetSpace / SetSchedParams) and
sends with that cap's GrantReply; the handler answers through the reply object it
received with (:mod:`kernel.core.mcs_ipc`). A null handler cap is the double fault.
"""

from __future__ import annotations

from kernel.core.ipc import send
from kernel.core.mcs_ipc import send_mcs
from kernel.cspace.lookup import lookup_cap
from kernel.model.caps import EndpointCap
from kernel.model.endpoint import Endpoint
from kernel.model.errors import LOOKUP_FAILURES, MissingCapability
from kernel.model.faults import CapFault, Fault, TimeoutFault
from kernel.model.state import KernelState
from kernel.model.tcb import FAULT_HANDLER, TCB, TIMEOUT_HANDLER, ThreadState

__all__ = ["deliver_fault", "deliver_timeout_fault", "handle_fault", "has_timeout_handler"]


def deliver_fault(kernel: KernelState, tcb: TCB, fault: Fault) -> None:
    """Deliver ``fault`` of ``tcb`` or, failing that, stop ``tcb``."""
    for observer in kernel.fault_observers:
        observer(tcb, fault)
    # Save the registers now: the thread will not run again before a handler replies.
    if tcb is kernel.current:
        kernel.save_current()
    # A restarted thread resumes at the fault's IP: the faulting instruction, or the
    # syscall's trap instruction (seL4's FaultIP), so that it is retried.
    tcb.set_register(0, fault.ip)
    mcs = kernel.config.mcs
    handler = tcb.slots[FAULT_HANDLER].cap if mcs else lookup_cap(kernel, tcb, tcb.fault_ep)
    if isinstance(handler, EndpointCap) and handler.rights.write and (
        handler.rights.grant or handler.rights.grant_reply
    ):
        endpoint = kernel.object_at(handler.paddr, Endpoint)
        tcb.fault = fault
        if mcs:
            send_mcs(kernel, tcb, endpoint, handler.badge, handler.rights.grant,
                     handler.rights.grant_reply, can_donate=tcb.sched_context is not None,
                     blocking=True, is_call=True)
            return
        send(kernel, tcb, endpoint, handler.badge, handler.rights.grant,
             can_grant_reply=True, blocking=True, is_call=True)
        return
    # seL4's sendFaultIPC: the second fault is a cap fault on the handler's CPtr, with the
    # lookup's failure, or MissingCapability 0 when the cap found is not a usable endpoint.
    failure = handler if isinstance(handler, LOOKUP_FAILURES) else MissingCapability(0)
    double = CapFault(fault.ip, tcb.fault_ep, False, failure)
    for no_handler_observer in kernel.no_handler_observers:
        no_handler_observer(tcb, fault, double)
    where = ("the TCB's fault handler cap is not a usable endpoint" if mcs else
             f"fault endpoint cptr {tcb.fault_ep:#x} is not a usable endpoint")
    reason = f'thread "{tcb.name}" stopped: {fault.describe()}; no fault handler ({where})'
    tcb.stop_reason = reason
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)


def handle_fault(kernel: KernelState, tcb: TCB, fault: Fault) -> None:
    """A fault of ``tcb`` at a kernel entry: its FaultIP is the restart pc from now on
    (not the instruction after a syscall), then it goes to the fault handler."""
    tcb.after_syscall = False
    deliver_fault(kernel, tcb, fault)


def has_timeout_handler(tcb: TCB) -> bool:
    """MCS: seL4's validTimeoutHandler: the TCB's timeout handler cap is an endpoint."""
    return isinstance(tcb.slots[TIMEOUT_HANDLER].cap, EndpointCap)


def deliver_timeout_fault(kernel: KernelState, tcb: TCB, fault: TimeoutFault) -> None:
    """MCS: seL4's handleTimeout: ``tcb`` (with a timeout handler) ran out of budget;
    the fault goes as a Call through the timeout handler cap, without lending the
    context that just ran out. ``fault.ip`` is where a restart resumes it."""
    handler = tcb.slots[TIMEOUT_HANDLER].cap
    assert isinstance(handler, EndpointCap)
    for observer in kernel.fault_observers:
        observer(tcb, fault)
    if tcb is kernel.current:
        kernel.save_current()
    tcb.set_register(0, fault.ip)
    tcb.after_syscall = False
    tcb.fault = fault
    send_mcs(kernel, tcb, kernel.object_at(handler.paddr, Endpoint), handler.badge,
             handler.rights.grant, handler.rights.grant_reply, can_donate=False,
             blocking=True, is_call=True)
