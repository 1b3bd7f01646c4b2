"""The IPC fastpath: Call and ReplyRecv in their common case, as seL4's fastpath.c.

The common case of a client/server exchange is a Call to a server already waiting in
Recv, and the server's ReplyRecv to a client waiting for the reply; both carry a few
words in registers and no capabilities. For exactly those, this module does in one
straight line what the general path (:mod:`kernel.entry.invocation`, :mod:`kernel.core.ipc`,
:mod:`kernel.core.ipc_transfer`, the scheduler at kernel exit) does through many layers:
move the message registers, link or consume the reply cap, block one thread, and
switch straight to the other.

Contract: :func:`fastpath_call` and :func:`fastpath_reply_recv` either do nothing and
return False (the caller then takes the general path; :func:`fastpath_call` may return
the invoked cap's slot instead, for the general path to use), or leave *exactly* the
state the general path would have left (same registers, thread states, endpoint queue,
CDT links, scheduler queues and current thread) and return True. ``tests/unit/test_fastpath.py``
and the guest trace comparison check this. The conditions are seL4's:

Call: no extra caps and at most ``seL4_FastMessageRegisters`` words; the cap is an
endpoint cap with Send and (Grant or GrantReply) rights; a receiver is waiting; its
priority is at least the caller's and it is in the current domain (so the scheduler
would switch to it directly).

ReplyRecv: no extra caps and at most ``seL4_FastMessageRegisters`` words; the receive
cap is an endpoint cap with Receive rights and no sender is queued on it; the replier
has no bound notification; its caller slot holds a reply cap to a thread waiting for a
reply with no fault; that thread's priority is at least the replier's and it is in the
current domain.

Selected by ``KernelConfig.fastpath`` (seL4's CONFIG_FASTPATH); off, every Call and
ReplyRecv takes the general path, which is how the equivalence is tested. The MCS
kernel's fastpath (:mod:`kernel.entry.mcs_fastpath`) shares the helpers below.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import FAST_MESSAGE_REGISTERS, MESSAGE_INFO
from kernel.core.threads import install_thread
from kernel.cspace.cdt import delete_reply_cap, insert_reply_cap
from kernel.cspace.lookup import lookup_slot
from kernel.model.caps import EndpointCap, ReplyCap
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER, TCB, Blocking, ThreadState

__all__ = ["call_target", "endpoint_target", "fast_length", "fast_message", "fastpath_call",
           "fastpath_reply_recv", "switch_to", "take_receiver"]

_LENGTH: Final = MESSAGE_INFO["length"]
_EXTRA: Final = MESSAGE_INFO["extraCaps"]
_LABEL: Final = MESSAGE_INFO["label"]
_FAST_SHAPE_MASK: Final = (_EXTRA.mask << _EXTRA.lsb) | (_LENGTH.mask << _LENGTH.lsb)
"""The fields that decide eligibility: extraCaps must be 0 and length at most 4."""
_LABEL_BITS: Final = _LABEL.mask << _LABEL.lsb


def fast_length(info: int) -> int | None:
    """The message length if ``info`` qualifies (no extra caps, length <= 4), else None."""
    shape = info & _FAST_SHAPE_MASK
    if shape > FAST_MESSAGE_REGISTERS:  # extraCaps sits above length: any set bit fails
        return None
    return shape


def fast_message(window: list[int], length: int, badge: int) -> list[int]:
    """The receiver's first window registers after the transfer doIPCTransfer does for
    this message: badge, tag (label kept, length, no caps), then ``length`` register MRs."""
    return [badge, (window[1] & _LABEL_BITS) | length, *window[2 : 2 + length]]


def switch_to(kernel: KernelState, target: TCB, message: list[int]) -> None:
    """The blocked current thread is saved; ``target`` runs next with ``message`` in its
    first window registers (written into the machine once it is the current thread:
    the same end state as writing them into its saved registers, one C call cheaper)."""
    kernel.save_current()
    target.state = ThreadState.RUNNING
    install_thread(kernel, target)
    kernel.machine.write_syscall_window(message)


def call_target(kernel: KernelState, current: TCB, window: list[int]
                ) -> tuple[int, EndpointCap, Endpoint, TCB] | None:
    """Where a fast Call goes (both configurations): its message length (the tag in
    ``window[1]`` passes :func:`fast_length`), the cap at ``window[0]``, an endpoint cap
    with Send and (Grant or GrantReply) rights, its endpoint and the receiver first in
    its queue; None otherwise (the general path then handles the Call)."""
    length = fast_length(window[1])
    if length is None:
        return None
    slot = lookup_slot(kernel, current, window[0])
    if not isinstance(slot, Slot):
        return None
    return endpoint_target(kernel, slot, length)


def endpoint_target(kernel: KernelState, slot: Slot, length: int
                    ) -> tuple[int, EndpointCap, Endpoint, TCB] | None:
    """:func:`call_target` once the invoked cap's slot is found."""
    cap = slot.cap
    if not isinstance(cap, EndpointCap):
        return None
    rights = cap.rights
    if not rights.write or not (rights.grant or rights.grant_reply):
        return None
    endpoint = kernel.object_at(cap.paddr, Endpoint)
    if endpoint.state is not EndpointState.RECV:
        return None
    return length, cap, endpoint, endpoint.queue[0]


def take_receiver(endpoint: Endpoint) -> TCB:
    """The first receiver leaves ``endpoint``'s queue (Idle once it is empty) and its
    blocking link goes."""
    receiver = endpoint.queue.pop(0)
    if not endpoint.queue:
        endpoint.state = EndpointState.IDLE
    receiver.blocking = None
    return receiver


def fastpath_call(kernel: KernelState, window: list[int]) -> bool | Slot:
    """seL4_Call to a waiting receiver: True once done. Otherwise the general path must
    handle the Call, and this returns the slot of the invoked cap if it looked that up
    and found a cap there (else False): an invocation of any other object is a Call
    too, and the general path need not look its cap up again. Its own lookup would
    walk the same slots and reach the same one; the walk met no empty slot, so no
    server-backed CNode would be asked either (:func:`kernel.cspace.lookup.resolve_address_bits`)."""
    current = kernel.current
    assert current is not None
    length = fast_length(window[1])
    if length is None:
        return False
    slot = lookup_slot(kernel, current, window[0])
    if not isinstance(slot, Slot):
        return False
    target = endpoint_target(kernel, slot, length)
    if target is None:
        return False if slot.is_empty else slot
    length, cap, endpoint, receiver = target
    if receiver.priority < current.priority or receiver.domain != kernel.domains.current:
        return slot
    blocking = receiver.blocking
    assert blocking is not None
    # Effects, in the general path's order: the receiver leaves the queue; the caller
    # waits for the reply, its reply cap in the receiver's slot; the receiver runs with
    # the message (written as it starts, see switch_to).
    take_receiver(endpoint)
    current.state = ThreadState.BLOCKED_ON_REPLY
    insert_reply_cap(current, receiver, blocking.can_grant)
    switch_to(kernel, receiver, fast_message(window, length, cap.badge))
    return True


def fastpath_reply_recv(kernel: KernelState, window: list[int]) -> bool:
    """seL4_ReplyRecv answering a waiting caller, or False for the general path."""
    current = kernel.current
    assert current is not None
    length = fast_length(window[1])
    if length is None or current.bound_notification is not None:
        return False
    reply_slot = current.slots[CALLER]
    reply_cap = reply_slot.cap
    if not isinstance(reply_cap, ReplyCap) or reply_cap.is_master:
        return False
    caller = kernel.objects.get(reply_cap.tcb_paddr)
    if (not isinstance(caller, TCB) or caller.state is not ThreadState.BLOCKED_ON_REPLY
            or caller.fault is not None or caller.priority < current.priority
            or caller.domain != kernel.domains.current):
        return False
    slot = lookup_slot(kernel, current, window[0])
    if not isinstance(slot, Slot):
        return False
    cap = slot.cap
    if not isinstance(cap, EndpointCap) or not cap.rights.read:
        return False
    endpoint = kernel.object_at(cap.paddr, Endpoint)
    if endpoint.state is EndpointState.SEND:
        return False
    # Effects: the reply consumes the reply cap; the replier waits on the endpoint; the
    # caller runs with the reply (badge 0) in its registers.
    delete_reply_cap(reply_slot)
    endpoint.state = EndpointState.RECV
    endpoint.queue.append(current)
    current.blocking = Blocking(endpoint, can_grant=cap.rights.grant)
    current.state = ThreadState.BLOCKED_ON_RECEIVE
    switch_to(kernel, caller, fast_message(window, length, 0))
    return True
