"""The capability derivation tree (seL4's mapping database).

Slots form one doubly linked list in depth-first order; a slot's children follow it
directly, and the parent relation is recovered from that order and the ``revocable`` /
``first_badged`` bits. This module is the only one that edits the links.

Invariants (checked by ``kernel.invariants``):
- ``a.mdb_next is b`` exactly when ``b.mdb_prev is a``;
- an empty slot has no links;
- every linked slot is non-empty.
"""

from __future__ import annotations

from .caps import Cap
from .errors import KernelBug
from .objects.slot import Slot

__all__ = ["insert_child", "insert_root"]


def insert_root(slot: Slot, cap: Cap) -> None:
    """Put ``cap`` in the empty ``slot`` with no parent (boot-time caps)."""
    if not slot.is_empty:
        raise KernelBug("insert_root into a non-empty slot")
    slot.cap = cap
    slot.revocable = True
    slot.first_badged = False


def insert_child(parent: Slot, slot: Slot, cap: Cap, revocable: bool) -> None:
    """Put ``cap`` in the empty ``slot`` as the first child of ``parent`` (cteInsert)."""
    if not slot.is_empty:
        raise KernelBug("cteInsert to non-empty destination")
    if parent.is_empty:
        raise KernelBug("cteInsert from an empty source")
    slot.cap = cap
    slot.revocable = revocable
    slot.first_badged = revocable
    nxt = parent.mdb_next
    slot.mdb_prev = parent
    slot.mdb_next = nxt
    parent.mdb_next = slot
    if nxt is not None:
        nxt.mdb_prev = slot
