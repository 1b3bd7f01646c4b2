"""The invocation path of Send / NBSend / Call and the receive side of Recv / NBRecv.

Endpoint caps are decoded here (Send needs the cap's Send right, Recv its Receive
right) and performed by :mod:`kernel.core.ipc`. Notification caps too, performed by
:mod:`kernel.core.notifications`: Send / NBSend / Call signal (the Send right, else
InvalidCapability 0; a Call gets an empty reply, label 0, as seL4's handleInvocation
gives any invocation that completes), Recv / NBRecv wait / poll (the Receive right, and
the notification not bound to another thread, else a cap fault: MissingCapability 0).

Follows seL4's handleInvocation in three stages (STYLE.md Synthesis 1):
1. lookup of the invoked cap: a failure is a cap fault, delivered to the fault handler;
2. decode: a refused invocation is a SyscallError, told to ``error_observers`` (the
   kernel log) and replied on Call, dropped otherwise (``_refuse``, the one place);
3. perform: cannot fail.

Object decoders are registered per cap type in ``kernel.entry.dispatch.DECODERS``.
For a cap type without a decoder yet (IRQ and domain caps until
their issues land), a label that is not one of its methods gets IllegalOperation, as on
seL4; one of its methods stops the run with a message naming what is missing
(``KernelState.unsupported``) rather than answering something seL4 would not.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import Syscall
from kernel.abi.extensions import LookupKind
from kernel.abi.labels import label_name
from kernel.core.fault_delivery import handle_fault
from kernel.core.ipc import delete_caller_cap, receive, reply, send
from kernel.core.ipc_transfer import receive_slot
from kernel.core.notifications import receive_signal, send_signal
from kernel.cspace.arguments import InvocationArgs, lookup_cptrs, read_message, reply_to_current
from kernel.cspace.lookup import ServerLookup, lookup_cap, lookup_slot
from kernel.entry.dispatch import DECODERS, perform
from kernel.entry.traversal import suspend_on_lookup
from kernel.model.caps import (
    Cap,
    DomainCap,
    EndpointCap,
    IRQControlCap,
    NotificationCap,
    NullCap,
)
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.errors import (
    LOOKUP_FAILURES,
    IllegalOperation,
    InvalidCapability,
    MissingCapability,
    SyscallError,
    error_reply,
)
from kernel.model.faults import CapFault
from kernel.model.message import MessageInfo
from kernel.model.notification import Notification, NotificationState
from kernel.model.slot import Slot
from kernel.model.state import KernelState, RefusedInvocation
from kernel.model.tcb import TCB

__all__ = ["invoke"]

# Enum members read on every system call, as module constants: on Python 3.11 reading a
# member through its Enum class costs several times a global's lookup.
_REPLY: Final = Syscall.seL4_SysReply
_REPLY_RECV: Final = Syscall.seL4_SysReplyRecv
_RECV: Final = Syscall.seL4_SysRecv
_NB_RECV: Final = Syscall.seL4_SysNBRecv
_CALL: Final = Syscall.seL4_SysCall
_NB_SEND: Final = Syscall.seL4_SysNBSend
_PHASE_INVOKED_CAP: Final = LookupKind.capsule_LookupInvokedCap
_PHASE_EXTRA_CAP: Final = LookupKind.capsule_LookupExtraCap
_PHASE_OPERATION_SLOT: Final = LookupKind.capsule_LookupOperationSlot
_PHASE_RECEIVE_ENDPOINT: Final = LookupKind.capsule_LookupReceiveEndpoint
_PHASE_RECEIVE_SLOT: Final = LookupKind.capsule_LookupReceiveSlot
_SEND_STATE: Final = EndpointState.SEND
_ACTIVE: Final = NotificationState.ACTIVE


def invoke(kernel: KernelState, syscall: Syscall, window: list[int],
           invoked: Slot | None = None) -> None:
    """Run one API syscall of the current thread (window = a0-a7 / x0-x7).

    ``invoked``: for a send or call, the slot ``window[0]`` names, when the caller has
    looked it up already and found a cap there (the fastpath's attempt), so that it is
    not looked up twice.

    With server-backed CNodes (capsule's extension, not seL4), a lookup before the
    commit point may need a server: the system call is then suspended before anything
    changed and restarts from its beginning when the server answers
    (:mod:`kernel.entry.traversal`). ``kernel.lookup_phase`` says which lookup runs
    while suspension is still possible, and is -1 from the commit point on.
    """
    current = kernel.current
    assert current is not None
    while True:
        try:
            _invoke(kernel, current, syscall, window, invoked)
        except ServerLookup as request:
            kernel.lookup_phase = -1
            if suspend_on_lookup(kernel, current, request):
                return
            # Refused (a loop, or too deep): restart at once with the lookup denied,
            # every lookup made again.
            invoked = None
            continue
        kernel.lookup_phase = -1
        current.lookup_denied = ()
        return


def _invoke(kernel: KernelState, current: TCB, syscall: Syscall, window: list[int],
            invoked: Slot | None) -> None:
    if syscall is _REPLY:
        _reply(kernel)
        return
    if syscall is _REPLY_RECV:
        _reply(kernel)
        # The reply is committed: the receive endpoint's lookup cannot suspend.
        _receive(kernel, window[0], blocking=True, may_suspend=False)
        return
    if syscall is _RECV or syscall is _NB_RECV:
        _receive(kernel, window[0], blocking=syscall is _RECV, may_suspend=True)
        return
    is_call = syscall is _CALL
    blocking = syscall is not _NB_SEND
    if invoked is None:
        kernel.lookup_phase = _PHASE_INVOKED_CAP
        slot = lookup_slot(kernel, current, window[0])
        kernel.lookup_phase = -1
    else:
        slot = invoked
    if not isinstance(slot, Slot):  # a lookup failure (one check, not one per kind)
        if blocking:
            handle_fault(kernel, current, CapFault(_fault_ip(kernel), window[0], False, slot))
        return
    info = MessageInfo.from_word(window[1])
    # Read now for the decoder too, in one read of the IPC buffer: only object
    # invocations use the words (signals and endpoint sends move them themselves).
    words, cptrs = read_message(kernel, current, info, window)
    kernel.lookup_phase = _PHASE_EXTRA_CAP
    extra = lookup_cptrs(kernel, current, cptrs)
    kernel.lookup_phase = -1
    if isinstance(extra, tuple):
        # seL4's lookupExtraCaps: a cap fault on the extra cap's CPtr, before decoding.
        if blocking:
            cptr, failure = extra
            handle_fault(kernel, current, CapFault(_fault_ip(kernel), cptr, False, failure))
        return
    cap = slot.cap
    if isinstance(cap, NotificationCap):
        _signal(kernel, current, cap, info.label, is_call)
        return
    if isinstance(cap, EndpointCap):
        _send_endpoint(kernel, current, cap, info.label, blocking, is_call)
        return
    args = InvocationArgs(info, tuple(words), tuple(extra))
    decoder = DECODERS.get(type(cap))
    if decoder is None and _is_own_method(kernel, cap, info.label):
        kernel.unsupported(f"invocations of {cap.tag.name} (label {info.label})")
        return
    try:
        if decoder is None:
            # A null cap, or a label that is not one of this object's methods: seL4's
            # decoders answer those without knowing more of the object.
            raise InvalidCapability(0) if isinstance(cap, NullCap) else IllegalOperation()
        kernel.lookup_phase = _PHASE_OPERATION_SLOT
        record = decoder(kernel, slot, args)
    except SyscallError as error:
        kernel.lookup_phase = -1
        _refuse(kernel, current, cap, info.label, error, is_call)
        return
    # The commit point: from here on no lookup may suspend.
    kernel.lookup_phase = -1
    kernel.last_invocation = record
    reply_words = perform(kernel, record)
    # seL4's handleInvocation: a Call is answered when the invocation left its caller
    # running (not blocked, suspended or deleted by what it did).
    if is_call and current.state.runnable:
        reply_to_current(kernel, current, 0, reply_words)


_OWN_METHODS: Final[dict[type[Cap], tuple[str, ...]]] = {
    IRQControlCap: ("IRQIssueIRQHandler", "RISCVIRQIssue", "ARMIRQIssue"),
    DomainCap: ("DomainSetSet",),
}
"""Label-name prefixes of the methods of each object type not decoded yet."""


def _is_own_method(kernel: KernelState, cap: Cap, label: int) -> bool:
    """Whether ``label`` names a method of ``cap``'s object type (so it is not built yet)."""
    prefixes = _OWN_METHODS.get(type(cap))
    if prefixes is None:
        return False
    name = label_name(kernel.arch, kernel.config.mcs, label)
    return name is not None and name.startswith(prefixes)


def _refuse(kernel: KernelState, current: TCB, cap: Cap, label: int, error: SyscallError,
            is_call: bool) -> None:
    """The one place a refused invocation ends: the error observers hear of it (seL4's
    userError, printed for every send kind), then a Call gets the error as its reply
    and Send/NBSend get nothing."""
    if kernel.error_observers:
        refused = RefusedInvocation(current, _fault_ip(kernel), cap, label, error)
        for observer in kernel.error_observers:
            observer(refused)
    if is_call:
        reply_label, words = error_reply(error)
        reply_to_current(kernel, current, reply_label, words)


def _may_send(kernel: KernelState, current: TCB, cap: EndpointCap | NotificationCap,
              label: int, is_call: bool) -> bool:
    """Whether ``cap`` has Write, so that it may be sent on; without it the invocation
    is refused with InvalidCapability 0."""
    if not cap.rights.write:
        _refuse(kernel, current, cap, label, InvalidCapability(0), is_call)
    return cap.rights.write


def _send_endpoint(kernel: KernelState, current: TCB, cap: EndpointCap, label: int,
                   blocking: bool, is_call: bool) -> None:
    """Decode (the cap needs Send, else InvalidCapability 0) and perform sendIPC."""
    if not _may_send(kernel, current, cap, label, is_call):
        return
    endpoint = kernel.object_at(cap.paddr, Endpoint)
    send(kernel, current, endpoint, cap.badge, cap.rights.grant, cap.rights.grant_reply,
         blocking, is_call)


def _signal(kernel: KernelState, current: TCB, cap: NotificationCap, label: int,
            is_call: bool) -> None:
    """Decode (the cap needs Send, else InvalidCapability 0) and perform sendSignal.

    The label, length and extra caps of the message do not matter. A Call gets the
    empty reply of an invocation that completed; Send and NBSend get nothing.
    """
    if not _may_send(kernel, current, cap, label, is_call):
        return
    ntfn = kernel.object_at(cap.paddr, Notification)
    send_signal(kernel, ntfn, cap.badge)
    if is_call:
        reply_to_current(kernel, current, 0, [])


def _reply(kernel: KernelState) -> None:
    """Reply through the caller slot: nothing to do while it is empty (as on seL4)."""
    current = kernel.current
    assert current is not None
    reply(kernel, current)


def _receive(kernel: KernelState, cptr: int, blocking: bool, may_suspend: bool) -> None:
    current = kernel.current
    assert current is not None
    kernel.lookup_phase = _PHASE_RECEIVE_ENDPOINT if may_suspend else -1
    cap = lookup_cap(kernel, current, cptr)
    kernel.lookup_phase = -1
    if isinstance(cap, LOOKUP_FAILURES):
        handle_fault(kernel, current, CapFault(_fault_ip(kernel), cptr, True, cap))
        return
    if isinstance(cap, NotificationCap) and cap.rights.read:
        ntfn = kernel.object_at(cap.paddr, Notification)
        # Only the bound thread may wait on a bound notification; unlike an endpoint
        # receive, no caller cap is deleted.
        if ntfn.bound_tcb is None or ntfn.bound_tcb is current:
            receive_signal(kernel, current, ntfn, blocking)
            return
    if isinstance(cap, EndpointCap) and cap.rights.read:
        endpoint = kernel.object_at(cap.paddr, Endpoint)
        bound = current.bound_notification
        if may_suspend and endpoint.state is _SEND_STATE and (
                bound is None or bound.state is not _ACTIVE):
            # A sender waits, so the transfer happens now: look the receive slot up
            # before anything commits (deleting the caller cap is the first change), so
            # that a server-backed CNode on its path may still suspend the Recv. The
            # transfer looks it up again, as an ordinary lookup.
            kernel.lookup_phase = _PHASE_RECEIVE_SLOT
            receive_slot(kernel, current)
            kernel.lookup_phase = -1
        delete_caller_cap(kernel, current)
        receive(kernel, current, endpoint, cap.rights.grant, blocking)
        return
    handle_fault(kernel,
        current, CapFault(_fault_ip(kernel), cptr, True, MissingCapability(bits_left=0))
    )


def _fault_ip(kernel: KernelState) -> int:
    """The restart pc of a syscall: the trap instruction (4 bytes before the resume pc)."""
    return kernel.current_pc() - 4
