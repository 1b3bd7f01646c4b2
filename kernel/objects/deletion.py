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
from typing import Final

from kernel.core.cancel import cancel_ipc
from kernel.core.ipc import cancel_all_ipc
from kernel.core.notifications import cancel_all_signals, unbind_maybe_notification, unbind_notification
from kernel.core.reply_stack import reply_remove
from kernel.core.sched_contexts import complete_yield_to, unbind_ntfn, unbind_reply, unbind_tcb
from kernel.core.threads import suspend
from kernel.cspace.cdt import empty_slot, first_child, is_final, swap
from kernel.model.cap_page import drop_mapping
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CapPageCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ReplyObjectCap,
    SchedContextCap,
    ThreadCap,
    VSpaceCap,
    ZombieCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.errors import KernelBug
from kernel.model.notification import Notification
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState
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


def _finalise_cap_page(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """capsule's capability page (not seL4): its mapping goes with the cap (as a
    frame's), then the last cap empties its slots as a CNode's."""
    assert isinstance(cap, CapPageCap)
    if cap.is_mapped:
        drop_mapping(kernel.cap_page_maps, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
    return _finalise_cnode(kernel, cap, final)


def _finalise_thread(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    if not final:
        return []
    assert isinstance(cap, ThreadCap)
    tcb = _stop_thread(kernel, cap)
    return list(tcb.slots)


def _stop_thread(kernel: KernelState, cap: ThreadCap) -> TCB:
    """The clean-up of a TCB whose last cap goes, before its slots are emptied."""
    tcb = kernel.object_at(cap.paddr, TCB)
    unbind_notification(kernel, tcb)
    suspend(kernel, tcb)
    if tcb.sched_context is not None:  # MCS: the context outlives the thread, unbound
        unbind_tcb(kernel, tcb.sched_context)
    return tcb


def _finalise_zombie(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """A zombie deleted where it lies (its object's first slot): the object's remaining
    slots are deleted now; its clean-up happened when the zombie was made."""
    assert isinstance(cap, ZombieCap)
    if cap.radix is None:
        return list(kernel.object_at(cap.paddr, TCB).slots)
    return list(kernel.object_at(cap.paddr, CNode).slots)


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
        if ntfn.sched_context is not None:  # MCS
            unbind_ntfn(ntfn.sched_context)
    return []


def _finalise_sched_context(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """MCS: the last cap to a scheduling context unbinds its thread and notification
    (seL4's schedContext_unbindAllTCBs and unbindNtfn)."""
    if not final:
        return []
    assert isinstance(cap, SchedContextCap)
    sc = kernel.objects.get(cap.paddr)
    if isinstance(sc, SchedContext):
        if sc.yield_from is not None:
            complete_yield_to(kernel, sc.yield_from)
        unbind_tcb(kernel, sc)
        unbind_ntfn(sc)
        unbind_reply(sc)
    return []


def _finalise_reply_object(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """MCS: the last cap to a reply object takes it out of use: the caller blocked on it
    leaves the call stack (Inactive), a receiver waiting with it is cancelled."""
    if not final:
        return []
    assert isinstance(cap, ReplyObjectCap)
    reply = kernel.objects.get(cap.paddr)
    if isinstance(reply, ReplyObject) and reply.tcb is not None:
        tcb = reply.tcb
        if tcb.state is ThreadState.BLOCKED_ON_REPLY:
            reply_remove(kernel, reply, tcb)
        else:
            cancel_ipc(kernel, tcb)
    return []


FINALISERS: Final[dict[type[Cap], Finaliser]] = {
    CNodeCap: _finalise_cnode,
    CapPageCap: _finalise_cap_page,
    ThreadCap: _finalise_thread,
    EndpointCap: _finalise_endpoint,
    NotificationCap: _finalise_notification,
    PageTableCap: finalise_page_table,
    VSpaceCap: finalise_vspace,
    FrameCap: finalise_frame,
    ASIDPoolCap: finalise_asid_pool,
    ZombieCap: _finalise_zombie,
    SchedContextCap: _finalise_sched_context,
    ReplyObjectCap: _finalise_reply_object,
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

    seL4's zombies: a slot emptied because its container is being destroyed (not the
    slot the caller named) that holds the last cap to a CNode or TCB does not destroy
    that object in turn. The object becomes a zombie in its own first slot, taking the
    cap's place in the derivation tree, and what that first slot held is deleted in the
    container's slot instead; the object's other slots stay as they are. So its memory
    stays in use (its untyped keeps a child) until the zombie is deleted, by revoking
    the untyped (:func:`_make_zombie`).
    """
    work: list[tuple[Slot, bool]] = [(slot, True)]
    while work:
        current, exposed = work.pop()
        if current.is_empty:
            continue
        cap = current.cap
        final = is_final(kernel, current)
        if final and not exposed and isinstance(cap, CNodeCap | ThreadCap):
            if _make_zombie(kernel, current, cap):
                work.append((current, False))  # now holding the first slot's old cap
            continue
        # Unlink first: the object's contents may hold caps whose deletion must not see
        # this slot again (a CNode holding a cap to itself, a cycle of CNodes).
        empty_slot(current)
        work.extend((inner, False) for inner in finalise_cap(kernel, cap, final))


def _make_zombie(kernel: KernelState, slot: Slot, cap: CNodeCap | ThreadCap) -> bool:
    """Turn the object of ``cap`` (the last cap to it, in ``slot``) into a zombie in its
    own first slot (seL4's finaliseCap making a Zombie, then reduceZombie's swap of it
    into that slot). Returns whether ``slot`` must be deleted again: it then holds what
    the first slot held. A zombie that lands in ``slot`` itself (a CNode whose first
    slot holds its own last cap) stays there: seL4's cyclic zombie."""
    if isinstance(cap, CapPageCap) and cap.is_mapped:  # its mapping goes with the cap
        drop_mapping(kernel.cap_page_maps, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
    if isinstance(cap, ThreadCap):
        first = _stop_thread(kernel, cap).slots[0]
        zombie = ZombieCap(cap.paddr)
    else:
        first = kernel.object_at(cap.paddr, CNode).slots[0]
        zombie = ZombieCap(cap.paddr, cap.radix)
    if first is slot:
        slot.cap = zombie
        return False
    swap(zombie, slot, first.cap, first)
    return True


def revoke(kernel: KernelState, slot: Slot) -> None:
    """cteRevoke: delete every CDT descendant of ``slot``; ``slot`` itself stays."""
    while True:
        child = first_child(kernel, slot)
        if child is None:
            return
        delete(kernel, child)
