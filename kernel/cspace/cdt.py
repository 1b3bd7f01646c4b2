"""The capability derivation tree (seL4's mapping database).

Slots form doubly linked lists in depth-first order; a slot's children follow it
directly, and the parent relation is recovered from that order and the ``revocable`` /
``first_badged`` bits (:func:`is_mdb_parent_of`). This module is the only one that edits
the links. Caps to the same object are always adjacent in a list, which is why
:func:`is_final` only needs to look at a slot's two neighbours.

Operations, in seL4's terms:
- :func:`insert` (cteInsert): a derived cap placed right after its source;
- :func:`move` (cteMove) and :func:`swap` (cteSwap): caps change slots, keep positions;
- :func:`empty_slot` (emptySlot): unlink a slot and clear it. Deletion proper, with
  finalisation (cteDelete, cteRevoke), is :mod:`kernel.objects.deletion`, above the
  object types whose clean-up it calls.

Invariants (checked by ``kernel.views.invariants``):
- ``a.mdb_next is b`` exactly when ``b.mdb_prev is a``;
- an empty slot has no links and both bits clear.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from kernel.abi.constants import MIN_UNTYPED_BITS
from kernel.cspace.derive import is_cap_revocable, same_object_as, same_region_as
from kernel.model.caps import (
    NULL_CAP,
    Cap,
    CapPageCap,
    EndpointCap,
    FrameCap,
    IRQControlCap,
    NotificationCap,
    PageTableCap,
    ReplyCap,
    UntypedCap,
    VSpaceCap,
    ZombieCap,
)
from kernel.model.errors import IllegalOperation, KernelBug, RevokeFirst
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER, REPLY, TCB

__all__ = [
    "derive_cap",
    "descendants",
    "empty_slot",
    "first_child",
    "has_children",
    "insert",
    "insert_child",
    "insert_reply_cap",
    "insert_root",
    "is_final",
    "is_mdb_parent_of",
    "move",
    "swap",
]


# --- placing caps ---------------------------------------------------------------------


def insert_root(slot: Slot, cap: Cap) -> None:
    """Put ``cap`` in the empty ``slot`` with no parent (boot-time caps).

    As seL4's boot does, a root cap is both revocable and first-badged.
    """
    if not slot.is_empty:
        raise KernelBug("insert_root into a non-empty slot")
    slot.cap = cap
    slot.revocable = True
    slot.first_badged = True


def insert_child(parent: Slot, slot: Slot, cap: Cap, revocable: bool) -> None:
    """Put ``cap`` in the empty ``slot`` as the first child of ``parent``.

    The raw form of cteInsert with the bits given: retype uses it with ``revocable``
    true (seL4's insertNewCap), boot with false.
    """
    if not slot.is_empty or slot.mdb_prev is not None or slot.mdb_next is not None:
        raise KernelBug("cteInsert to non-empty destination")
    if parent.is_empty:
        raise KernelBug("cteInsert from an empty source")
    slot.cap = cap
    slot.revocable = revocable
    slot.first_badged = revocable
    _link_after(parent, slot)


def insert(new_cap: Cap, src: Slot, dest: Slot) -> None:
    """cteInsert: store ``new_cap`` (derived from ``src``'s cap) in the empty ``dest``.

    ``dest`` becomes the first child of ``src``, revocable as :func:`is_cap_revocable`
    says. Copying an untyped whole marks the source full, so that the same memory
    cannot be handed out through both caps.
    """
    src_cap = src.cap
    revocable = is_cap_revocable(new_cap, src_cap)
    if (isinstance(src_cap, UntypedCap) and isinstance(new_cap, UntypedCap)
            and (src_cap.paddr, src_cap.size_bits) == (new_cap.paddr, new_cap.size_bits)):
        src.cap = replace(src_cap, free_index=1 << (src_cap.size_bits - MIN_UNTYPED_BITS))
    insert_child(src, dest, new_cap, revocable)


def move(new_cap: Cap, src: Slot, dest: Slot) -> None:
    """cteMove: ``dest`` takes ``src``'s place in the tree (links and bits) with ``new_cap``."""
    if not dest.is_empty or dest.mdb_prev is not None or dest.mdb_next is not None:
        raise KernelBug("cteMove to non-empty destination")
    prev, nxt = src.mdb_prev, src.mdb_next
    dest.cap, dest.mdb_prev, dest.mdb_next = new_cap, prev, nxt
    dest.revocable, dest.first_badged = src.revocable, src.first_badged
    _clear(src)
    if prev is not None:
        prev.mdb_next = dest
    if nxt is not None:
        nxt.mdb_prev = dest


def swap(cap1: Cap, slot1: Slot, cap2: Cap, slot2: Slot) -> None:
    """cteSwap: ``slot1`` gets ``cap2`` and ``slot2``'s place, ``slot2`` gets ``cap1``
    and ``slot1``'s place. Works when the two are neighbours in a list."""
    if slot1 is slot2:
        raise KernelBug("cteSwap of a slot with itself")
    slot1.cap, slot2.cap = cap2, cap1
    # Re-point slot1's neighbours at slot2 first; reading slot2's links only afterwards
    # makes the adjacent case (slot1.next is slot2 or the reverse) come out right.
    if slot1.mdb_prev is not None:
        slot1.mdb_prev.mdb_next = slot2
    if slot1.mdb_next is not None:
        slot1.mdb_next.mdb_prev = slot2
    node1 = (slot1.mdb_prev, slot1.mdb_next, slot1.revocable, slot1.first_badged)
    node2 = (slot2.mdb_prev, slot2.mdb_next, slot2.revocable, slot2.first_badged)
    slot1.mdb_prev, slot1.mdb_next, slot1.revocable, slot1.first_badged = node2
    slot2.mdb_prev, slot2.mdb_next, slot2.revocable, slot2.first_badged = node1
    if slot1.mdb_prev is not None:
        slot1.mdb_prev.mdb_next = slot1
    if slot1.mdb_next is not None:
        slot1.mdb_next.mdb_prev = slot1


def insert_reply_cap(caller: TCB, receiver: TCB, can_grant: bool) -> None:
    """The reply-cap half of seL4's setupCallerCap: ``receiver``'s caller slot gets a
    reply cap to ``caller`` (with Grant if ``can_grant``), a CDT child of ``caller``'s
    master reply cap. The general path and the fastpath both link through here.

    seL4 makes the master reply cap when the thread starts (setupReplyMaster); capsule
    makes it here, on first use, when the reply slot is still empty.
    Precondition: the caller slot is empty (a Recv deletes what it held first).
    """
    master = caller.slots[REPLY]
    if master.is_empty:
        insert_root(master, ReplyCap(caller.paddr, can_grant=True, is_master=True))
    # cteInsert of a reply cap under its master: never revocable, no untyped to mark.
    insert_child(master, receiver.slots[CALLER], ReplyCap(caller.paddr, can_grant=can_grant),
                 False)


def _link_after(parent: Slot, slot: Slot) -> None:
    nxt = parent.mdb_next
    slot.mdb_prev, slot.mdb_next = parent, nxt
    parent.mdb_next = slot
    if nxt is not None:
        nxt.mdb_prev = slot


def _clear(slot: Slot) -> None:
    slot.cap = NULL_CAP
    slot.mdb_prev = slot.mdb_next = None
    slot.revocable = slot.first_badged = False


# --- queries --------------------------------------------------------------------------


def is_mdb_parent_of(kernel: KernelState, a: Slot, b: Slot) -> bool:
    """seL4's isMDBParentOf: is ``b`` (which follows ``a`` in its list) a child of ``a``?

    ``a`` must be revocable and cover ``b``'s object. A badged endpoint/notification is
    the parent only of caps with its badge that do not start a badge of their own
    (``first_badged``); an unbadged one is the parent of everything derived from it.
    """
    if not a.revocable or not same_region_as(a.cap, b.cap, kernel.tcb_bits):
        return False
    cap = a.cap
    if isinstance(cap, (EndpointCap, NotificationCap)) and cap.badge != 0:
        other = b.cap
        assert isinstance(other, (EndpointCap, NotificationCap))  # same region: same type
        return other.badge == cap.badge and not b.first_badged
    return True


def has_children(kernel: KernelState, slot: Slot) -> bool:
    """Whether ``slot`` has a CDT child (seL4's ensureNoChildren test).

    Exact: a childless untyped is reset by its next retype, so this must see every
    child, including a last one just deleted (deletion unlinks immediately).
    """
    nxt = slot.mdb_next
    return nxt is not None and is_mdb_parent_of(kernel, slot, nxt)


def first_child(kernel: KernelState, slot: Slot) -> Slot | None:
    """The first child of ``slot`` in the tree, or None."""
    return slot.mdb_next if has_children(kernel, slot) else None


def descendants(kernel: KernelState, slot: Slot) -> Iterator[Slot]:
    """All CDT descendants of ``slot``, depth first: the run of slots after it that it is
    MDB parent of. Do not change the tree while iterating."""
    nxt = slot.mdb_next
    while nxt is not None and is_mdb_parent_of(kernel, slot, nxt):
        yield nxt
        nxt = nxt.mdb_next


def is_final(kernel: KernelState, slot: Slot) -> bool:
    """seL4's isFinalCapability: no other slot holds a cap to ``slot``'s object.

    Caps to one object are adjacent in the tree, so the neighbours decide it.
    """
    bits = kernel.tcb_bits
    prev, nxt = slot.mdb_prev, slot.mdb_next
    if prev is not None and same_object_as(prev.cap, slot.cap, bits):
        return False
    return nxt is None or not same_object_as(slot.cap, nxt.cap, bits)


# --- removing caps --------------------------------------------------------------------


def empty_slot(slot: Slot) -> None:
    """seL4's emptySlot: unlink ``slot``; the next slot inherits ``first_badged``, so a
    badge boundary survives the deletion of the cap that started it."""
    prev, nxt = slot.mdb_prev, slot.mdb_next
    if prev is not None:
        prev.mdb_next = nxt
    if nxt is not None:
        nxt.mdb_prev = prev
        nxt.first_badged = nxt.first_badged or slot.first_badged
    _clear(slot)


def delete_reply_cap(slot: Slot) -> None:
    """Empty ``slot``, which holds a non-master reply cap: what
    :func:`kernel.objects.deletion.delete` does for one, minus the finality test whose
    answer nothing uses (reply caps have no finaliser). The IPC paths' way of consuming
    a reply cap."""
    cap = slot.cap
    if not isinstance(cap, ReplyCap) or cap.is_master:
        raise KernelBug(f"delete_reply_cap on {cap!r}")
    empty_slot(slot)


# --- deriving caps ---------------------------------------------------------------------


def derive_cap(kernel: KernelState, slot: Slot, cap: Cap) -> Cap:
    """seL4's deriveCap: the cap to store when ``cap`` (taken from ``slot``) is copied.

    Returns NullCap for caps that cannot be copied (IRQControl, non-MCS reply caps);
    the caller turns that into IllegalOperation (CNode ops) or stops (IPC transfer).

    Raises:
        RevokeFirst: ``cap`` is an untyped that still has children.
        IllegalOperation: an unmapped page table / VSpace root.
    """
    match cap:
        case IRQControlCap() | ReplyCap() | ZombieCap():
            return NULL_CAP
        case UntypedCap():
            if has_children(kernel, slot):
                raise RevokeFirst()
            return cap
        case PageTableCap() | VSpaceCap():
            if not cap.is_mapped:
                raise IllegalOperation()
            return cap
        case CapPageCap():  # capsule's cap pages: a copy is not a mapping
            return replace(cap, mapped_asid=0, mapped_vaddr=0, map_read_only=False,
                           map_weak=False)
        case FrameCap():
            # A copy of a frame cap is not a mapping: it starts unmapped. AArch64 keeps
            # the (stale) mapped address and clears the ASID only.
            if kernel.platform.frame_copy_keeps_vaddr:
                return cap.mapped_at(0, cap.mapped_vaddr)
            return cap.mapped_at(0, 0)
    return cap
