"""Read-only and weak access along a capability-space path (capsule's capability-page
extension, **not seL4**; ``kernel.abi.extensions``).

A CNode or capability-page cap may be *read-only* (nothing may be stored into or removed
from the slots reached through it) and *weak* (a cap fetched through it is weakened, as
EROS's sensory keys). Both accumulate along a path: a slot reached through any read-only
cap, or mapping, is read-only; through any weak one, weak. seL4's caps have neither bit,
so without the extension every path is unrestricted and nothing here is called.

Fetches (CNode_Copy / Mint, the capability instructions) weaken what they copy;
implicit lookups (a thread's own CPtrs) find an empty slot where a weak path reaches a
cap that weakening would change (:func:`in_place`).

Weakening (:func:`weaken`): a frame cap becomes read-only, a CNode or capability-page
cap read-only and weak (so that what is reached through it stays weakened), a null cap
stays null, every other cap becomes null: a weak path confers no authority to act on an
object, only to read what is reachable.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from kernel.abi.constants import WORD_BITS
from kernel.model.caps import NULL_CAP, Cap, CNodeCap, FrameCap, Rights, mask_vm_rights
from kernel.model.cnode import CNode
from kernel.model.slot import Slot
from kernel.model.state import KernelState

__all__ = ["Restrictions", "in_place", "path_restrictions", "weaken"]

Restrictions = tuple[bool, bool]
"""(read_only, weak) of a path."""

_READ_ONLY_MASK: Final = Rights(write=False, read=True, grant=True, grant_reply=True)


def weaken(cap: Cap) -> Cap:
    """The cap a weak path yields for ``cap`` (module docstring). Idempotent."""
    if isinstance(cap, CNodeCap):
        return replace(cap, read_only=True, weak=True)
    if isinstance(cap, FrameCap):
        return replace(cap, rights=mask_vm_rights(cap.rights, _READ_ONLY_MASK))
    return NULL_CAP


def path_restrictions(kernel: KernelState, root: Cap, cptr: int, n_bits: int) -> Restrictions:
    """The accumulated (read_only, weak) of the CNode caps a resolution of the top
    ``n_bits`` of ``cptr`` from ``root`` passes through (``root`` included, the cap in
    the slot reached excluded).

    Precondition: the same resolution succeeded (the caller looked the slot up first);
    a walk that stops early only reports what it passed.
    """
    read_only = weak = False
    cap = root
    while isinstance(cap, CNodeCap):
        read_only = read_only or cap.read_only
        weak = weak or cap.weak
        level = cap.radix + cap.guard_size
        if level > n_bits:
            break
        index = (cptr >> (n_bits - level)) & ((1 << cap.radix) - 1)
        n_bits -= level
        if n_bits == 0:
            break
        cap = kernel.object_at(cap.paddr, CNode).slots[index].cap
    return read_only, weak


def in_place(kernel: KernelState, root: Cap, cptr: int, slot: Slot) -> Slot:
    """The slot an implicit lookup (a thread's own CPtr, all 64 bits from its CSpace
    root) yields for ``slot``, reached from ``root`` by ``cptr``: ``slot`` itself, unless
    the path is weak and weakening would change its cap. Such a cap cannot be used in
    place (invoked, received on, passed as an extra cap, made a fault handler): the
    lookup yields a detached empty slot, so it is used as seL4 uses an empty slot. Its
    weakened form is had by fetching it (CNode_Copy, capsule_VSpace_CapLoad), which
    weakens it. Without this, a holder of a weak CNode cap could invoke what is inside.

    The detached slot is in no CNode and linked to nothing; callers never store into a
    slot an implicit lookup returned, and an empty slot's null cap is never copied.
    """
    if slot.is_empty or not path_restrictions(kernel, root, cptr, WORD_BITS)[1]:
        return slot
    if weaken(slot.cap) == slot.cap:
        return slot
    return Slot(slot.owner, slot.index)
