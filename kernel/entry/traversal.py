"""capsule's server-backed CNodes: suspending a system call on a lookup (**not seL4**).

Virtualizable capability-space traversal (Viengoos): a CNode bound to a server's endpoint
(``capsule_CNode_BindServer``, :mod:`kernel.objects.server_cnode`) is a cache the server
fills. When a lookup of a system call meets an empty slot of such a node while the
system call has committed nothing (:attr:`KernelState.lookup_phase` >= 0), the lookup
raises :class:`~kernel.cspace.lookup.ServerLookup` out of the decode, and
:func:`suspend_on_lookup` turns it into an index request:

- the thread's pc is put back on its trap instruction (seL4's Restart: the system call
  runs again from its beginning; its registers and message are untouched, since decode
  changed nothing), and it is sent as a fault is (a blocking Call with GrantReply, the
  thread's TCB the queue element: nothing is allocated) on the binding's endpoint with
  the binding's badge; its message is the :class:`~kernel.model.faults.IndexRequest`
  (label ``capsule_IndexRequest``, words ``INDEX_REQUEST_WORDS``);
- the server installs caps with ordinary CNode invocations and replies: label 0 and the
  thread restarts; another label denies the lookup (remembered in
  ``TCB.lookup_denied``), and the restarted system call meets the empty slot as through
  an ordinary CNode, so it fails with exactly seL4's failure;
- the waiting thread is blocked as a faulting thread is (BlockedOnSend, then
  BlockedOnReply): deleting or suspending it, or deleting the endpoint, cancels the
  request as seL4 cancels any IPC, and the system call restarts when it runs again.

Refusals (answered at once as a denial, so nothing hangs): a thread whose caller slot
holds the reply to a suspended lookup (a server answering) whose own lookup would ask
a server already in that chain of suspended lookups (a loop), or would make the chain
deeper than ``MAX_SERVER_DEPTH``.

Invariants: a thread whose ``fault`` is an IndexRequest is BlockedOnSend on the
request's endpoint or BlockedOnReply, or Inactive / Restart after a cancellation
cleared it (as any fault).
"""

from __future__ import annotations

from kernel.abi.extensions import MAX_SERVER_DEPTH
from kernel.core.ipc import send
from kernel.cspace.lookup import ServerLookup
from kernel.model.caps import ReplyCap
from kernel.model.endpoint import Endpoint
from kernel.model.faults import IndexRequest
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER, TCB, ThreadState

__all__ = ["refused_request", "suspend_on_lookup"]


def refused_request(kernel: KernelState, tcb: TCB, endpoint: int) -> bool:
    """Whether a request of ``tcb`` to the server on ``endpoint`` is refused: following
    caller slots from ``tcb`` through threads waiting on index requests, the endpoint is
    met again (a server asking itself, directly or not), or the chain reaches
    ``MAX_SERVER_DEPTH``. At most ``MAX_SERVER_DEPTH`` steps."""
    depth = 0
    while True:
        cap = tcb.slots[CALLER].cap
        if not isinstance(cap, ReplyCap) or cap.is_master:
            return False
        client = kernel.objects.get(cap.tcb_paddr)
        if not isinstance(client, TCB) or client.state is not ThreadState.BLOCKED_ON_REPLY:
            return False
        request = client.fault
        if not isinstance(request, IndexRequest):
            return False
        if request.endpoint == endpoint:
            return True
        depth += 1
        if depth >= MAX_SERVER_DEPTH:
            return True
        tcb = client


def suspend_on_lookup(kernel: KernelState, tcb: TCB, request: ServerLookup) -> bool:
    """Suspend the current thread ``tcb``'s system call on ``request``: True if it now
    waits for the server; False if the request was refused (:func:`refused_request`),
    the lookup then recorded as denied for the restart the caller makes at once.

    Precondition: the system call changed nothing yet (it raised from a decode)."""
    key = (request.node, request.address, request.bits_left)
    if refused_request(kernel, tcb, request.endpoint):
        tcb.lookup_denied = (*tcb.lookup_denied, key)
        return False
    fault = IndexRequest(ip=kernel.current_pc() - 4, node=request.node,
                         endpoint=request.endpoint, address=request.address,
                         bits_left=request.bits_left, kind=request.kind, slot=request.slot)
    for observer in kernel.fault_observers:
        observer(tcb, fault)
    kernel.save_current()
    tcb.after_syscall = False
    tcb.set_register(0, fault.ip)
    tcb.fault = fault
    endpoint = kernel.object_at(request.endpoint, Endpoint)
    send(kernel, tcb, endpoint, request.badge, False, can_grant_reply=True, blocking=True,
         is_call=True)
    return True
