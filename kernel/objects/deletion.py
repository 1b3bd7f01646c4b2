"""Deleting caps: seL4's cteDelete and cteRevoke, and what happens to an object when its
last cap goes (finaliseCap).

:func:`delete` calls :func:`finalise_cap` for every cap it removes, saying whether it was
the *final* cap to its object. A finaliser does the object's clean-up and returns the
slots inside the object that must be deleted in turn (seL4 turns the cap into a zombie
and deletes them one by one; we hand them back to ``delete``'s work list, so nested
CNodes of any depth cannot exhaust the stack). Deletion is not preemptible here: a kernel
entry runs to completion.

:data:`FINALISERS` is the one table of finalisers, built here from the object modules'
functions: it is complete whatever module is imported first. This module sits above the
object types whose clean-up it calls and below the invocations that delete (CNode
Delete/Revoke, TCB SetSpace). Current behaviour:

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

from kernel.core.ipc import cancel_all_ipc
from kernel.core.notifications import cancel_all_signals, unbind_maybe_notification, unbind_notification
from kernel.core.threads import suspend
from kernel.cspace.cdt import empty_slot, first_child, is_final
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ThreadCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.errors import KernelBug
from kernel.model.notification import Notification
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.objects.asid_pool import finalise_asid_pool
from kernel.objects.frame import finalise_frame
from kernel.objects.page_table import finalise_page_table, finalise_vspace

__all__ = ["FINALISERS", "Finaliser", "finalise_cap"]

Finaliser = Callable[[KernelState, Cap, bool], list[Slot]]
"""finalise(kernel, cap, final) -> slots to delete next (in order; the last goes first)."""


def _finalise_cnode(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, CNodeCap)
    node = kernel.objects.get(cap.paddr)
    if not isinstance(node, CNode):
        raise KernelBug(f"finalise: no CNode at {cap.paddr:#x}")
    return list(node.slots)


def _finalise_thread(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, ThreadCap)
    tcb = kernel.objects.get(cap.paddr)
    if not isinstance(tcb, TCB):
        raise KernelBug(f"finalise: no TCB at {cap.paddr:#x}")
    unbind_notification(kernel, tcb)
    suspend(kernel, tcb)
    return list(tcb.slots)


def _finalise_endpoint(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, EndpointCap)
    endpoint = kernel.objects.get(cap.paddr)
    # Caps made by hand in unit tests may name no object; nothing waits on those.
    if isinstance(endpoint, Endpoint):
        cancel_all_ipc(kernel, endpoint)
    return []


def _finalise_notification(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
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
    PageTableCap: finalise_page_table,
    VSpaceCap: finalise_vspace,
    FrameCap: finalise_frame,
    ASIDPoolCap: finalise_asid_pool,
}
"""Cap type -> finaliser. Types without an entry need no clean-up (yet)."""


def finalise_cap(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """Clean up after ``cap`` left its slot; return the slots that must be deleted next."""
    finaliser = FINALISERS.get(type(cap))
    return [] if finaliser is None else finaliser(kernel, cap, final)


def delete(kernel: KernelState, slot: Slot) -> None:
    """cteDelete: empty ``slot``; if it held the last cap to an object, finalise it.

    Finalising may empty further slots (a CNode's contents, a TCB's own slots); they
    are deleted the same way, last slot first as seL4's zombies do. The cap's children
    stay: they now follow the deleted cap's parent. An empty slot is left alone.
    """
    work = [slot]
    while work:
        current = work.pop()
        if current.is_empty:
            continue
        cap = current.cap
        final = is_final(kernel, current)
        # Unlink first: the object's contents may hold caps whose deletion must not see
        # this slot again (a CNode holding a cap to itself, a cycle of CNodes).
        empty_slot(current)
        work.extend(finalise_cap(kernel, cap, final))


def revoke(kernel: KernelState, slot: Slot) -> None:
    """cteRevoke: delete every CDT descendant of ``slot``; ``slot`` itself stays."""
    while True:
        child = first_child(kernel, slot)
        if child is None:
            return
        delete(kernel, child)
