"""What happens to an object when a cap to it is deleted (seL4's finaliseCap).

:func:`kernel.cdt.delete` calls :func:`finalise_cap` for every cap it removes, saying
whether it was the *final* cap to its object. A finaliser does the object's clean-up and
returns the slots inside the object that must be deleted in turn (seL4 turns the cap into
a zombie and deletes them one by one; we hand them back to ``delete``'s work list).

Finalisers are registered per cap type in :data:`FINALISERS`, so the modules that own
an object type add theirs. Current behaviour:

- CNode, final: its slots are deleted (last first).
- TCB, final: the thread is suspended (its IPC cancelled, Inactive, out of the ready
  queues) and its own slots (CSpace root, VSpace root, reply, caller, IPC buffer) are
  deleted. The TCB stays in ``kernel.objects`` and ``kernel.threads``: its memory
  belongs to the untyped.
- Endpoint, final: every thread queued on it restarts (seL4's cancelAllIPC).
- Notification, final: it is unbound from its thread and every waiter restarts
  (seL4's unbindMaybeNotification and cancelAllSignals). A final TCB cap likewise
  unbinds the thread's notification before the suspend (seL4's unbindNotification).
- Frame, final or not: the cap's own mapping is removed (kernel.objects.frame).
- Page table, final and mapped: unmapped from its parent table; a RISC-V VSpace root
  gives its ASID back to its pool instead (kernel.objects.page_table).
- AArch64 VSpace, final with an ASID: the ASID goes back to its pool.
- ASID pool, final: the pool leaves the ASID table; its VSpaces stop resolving
  (kernel.objects.asid_pool).
- Untyped, reply, ASID control: nothing.

A finaliser is called for non-final caps too (``final`` false): seL4 unmaps a frame cap's
own mapping whenever that cap goes, final or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .caps import Cap, CNodeCap, EndpointCap, NotificationCap, ThreadCap
from .errors import KernelBug
from .ipc import cancel_all_ipc
from .notifications import cancel_all_signals, unbind_maybe_notification, unbind_notification
from .objects.cnode import CNode
from .objects.endpoint import Endpoint
from .objects.notification import Notification
from .objects.slot import Slot
from .objects.tcb import TCB
from .threads import suspend

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["FINALISERS", "Finaliser", "finalise_cap"]

Finaliser = Callable[["Kernel", Cap, bool], list[Slot]]
"""finalise(kernel, cap, final) -> slots to delete next (in order; the last goes first)."""


def _finalise_cnode(kernel: Kernel, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, CNodeCap)
    node = kernel.objects.get(cap.paddr)
    if not isinstance(node, CNode):
        raise KernelBug(f"finalise: no CNode at {cap.paddr:#x}")
    return list(node.slots)


def _finalise_thread(kernel: Kernel, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, ThreadCap)
    tcb = kernel.objects.get(cap.paddr)
    if not isinstance(tcb, TCB):
        raise KernelBug(f"finalise: no TCB at {cap.paddr:#x}")
    unbind_notification(kernel, tcb)
    suspend(kernel, tcb)
    return list(tcb.slots)


def _finalise_endpoint(kernel: Kernel, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, EndpointCap)
    endpoint = kernel.objects.get(cap.paddr)
    # Caps made by hand in unit tests may name no object; nothing waits on those.
    if isinstance(endpoint, Endpoint):
        cancel_all_ipc(kernel, endpoint)
    return []


def _finalise_notification(kernel: Kernel, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, NotificationCap)
    ntfn = kernel.objects.get(cap.paddr)
    if isinstance(ntfn, Notification):  # hand-made caps in unit tests may name nothing
        unbind_maybe_notification(kernel, ntfn)
        cancel_all_signals(kernel, ntfn)
    return []


FINALISERS: dict[type[Cap], Finaliser] = {
    CNodeCap: _finalise_cnode,
    ThreadCap: _finalise_thread,
    EndpointCap: _finalise_endpoint,
    NotificationCap: _finalise_notification,
}
"""Cap type -> finaliser. Types without an entry need no clean-up (yet)."""


def finalise_cap(kernel: Kernel, cap: Cap, final: bool) -> list[Slot]:
    """Clean up after ``cap`` left its slot; return the slots that must be deleted next."""
    finaliser = FINALISERS.get(type(cap))
    return [] if finaliser is None else finaliser(kernel, cap, final)
