"""Capability-space addressing: seL4's resolveAddressBits and the lookups built on it.

Two families (abi/objects.md, "CSpace addressing"):

- implicit lookups (:func:`lookup_slot`, :func:`lookup_cap`; extra caps in
  :mod:`kernel.cspace.arguments`)
  resolve all 64 bits of a CPtr from a thread's CSpace root and may stop early at a
  non-CNode cap. Their failures are *returned* as
  :class:`~kernel.model.errors.LookupFailure` values: the caller makes them cap faults.
- CNode-operation lookups (:func:`lookup_target_slot`, :func:`lookup_source_slot`,
  :func:`lookup_pivot_slot`) resolve exactly ``depth`` bits from a given root and
  *raise* :class:`~kernel.model.errors.FailedLookup` / :class:`~kernel.model.errors.RangeError`,
  which decode functions let through to the caller's reply. The source and pivot
  lookups set the error's ``was_source`` word, the target lookup clears it.
"""

from __future__ import annotations

from kernel.abi.constants import WORD_BITS
from kernel.cspace.restrictions import in_place
from kernel.model.caps import Cap, CNodeCap
from kernel.model.cnode import CNode
from kernel.model.errors import (
    LOOKUP_FAILURES,
    DepthMismatch,
    FailedLookup,
    GuardMismatch,
    InvalidRoot,
    LookupFailure,
    RangeError,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "lookup_cap",
    "lookup_pivot_slot",
    "lookup_slot",
    "lookup_source_slot",
    "lookup_target_slot",
    "resolve_address_bits",
]


def resolve_address_bits(
    kernel: KernelState, node_cap: Cap, cptr: int, n_bits: int
) -> tuple[Slot, int] | LookupFailure:
    """Resolve the top ``n_bits`` of ``cptr`` starting at ``node_cap``.

    Returns the slot reached and the number of bits left unresolved (non-zero when the
    walk stopped at a cap that is not a CNode), or the failure (abi/objects.md, "CSpace
    addressing"). Precondition: ``0 <= n_bits <= 64``.
    """
    if not isinstance(node_cap, CNodeCap):
        return InvalidRoot()
    cap: Cap = node_cap
    while True:
        assert isinstance(cap, CNodeCap)
        radix, guard_bits = cap.radix, cap.guard_size
        level = radix + guard_bits
        if guard_bits > n_bits or (
            (cptr >> (n_bits - guard_bits)) & ((1 << guard_bits) - 1) != cap.guard
        ):
            return GuardMismatch(bits_left=n_bits, guard_found=cap.guard, bits_found=guard_bits)
        if level > n_bits:
            return DepthMismatch(bits_left=n_bits, bits_found=level)
        index = (cptr >> (n_bits - level)) & ((1 << radix) - 1)
        node = kernel.object_at(cap.paddr, CNode)
        slot = node.slots[index]
        if n_bits == level:
            return slot, 0
        n_bits -= level
        if not isinstance(slot.cap, CNodeCap):
            return slot, n_bits
        cap = slot.cap


def lookup_slot(kernel: KernelState, tcb: TCB, cptr: int) -> Slot | LookupFailure:
    """An implicit lookup: all 64 bits of ``cptr`` from ``tcb``'s CSpace root.

    With capsule's capability pages (not seL4), a cap reached through a weak path that
    weakening would change is not usable in place: the slot yielded is then empty
    (:func:`kernel.cspace.restrictions.in_place`)."""
    result = resolve_address_bits(kernel, tcb.ctable.cap, cptr, WORD_BITS)
    if isinstance(result, tuple):
        if kernel.config.cap_pages:
            return in_place(kernel, tcb.ctable.cap, cptr, result[0])
        return result[0]
    return result


def lookup_cap(kernel: KernelState, tcb: TCB, cptr: int) -> Cap | LookupFailure:
    """The cap ``cptr`` names in ``tcb``'s CSpace (a NullCap for an empty slot)."""
    result = lookup_slot(kernel, tcb, cptr)
    if isinstance(result, Slot):
        return result.cap
    return result



def _lookup_for_cnode_op(
    kernel: KernelState, root: Cap, index: int, depth: int, is_source: bool
) -> Slot:
    """seL4's lookupSlotForCNodeOp: resolve exactly ``depth`` bits of ``index``.

    Check order: root is a CNode (InvalidRoot), then 1 <= depth <= 64 (RangeError),
    then resolution; a lookup that stops early at a non-CNode cap with bits left is a
    DepthMismatch with ``bits_found`` 0. The slot returned may be empty.
    """
    if not isinstance(root, CNodeCap):
        raise FailedLookup(is_source, InvalidRoot())
    if not 1 <= depth <= WORD_BITS:
        raise RangeError(1, WORD_BITS)
    result = resolve_address_bits(kernel, root, index, depth)
    if isinstance(result, LOOKUP_FAILURES):
        raise FailedLookup(is_source, result)
    slot, bits_left = result
    if bits_left:
        raise FailedLookup(is_source, DepthMismatch(bits_left=bits_left, bits_found=0))
    return slot


def lookup_target_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The destination / target slot of a CNode operation (``was_source`` = 0).

    Raises:
        FailedLookup: root not a CNode, or resolution failed or stopped early.
        RangeError(1, 64): ``depth`` outside 1..64.
    """
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=False)


def lookup_source_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The source slot of a CNode operation (``was_source`` = 1); raises as above."""
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=True)


def lookup_pivot_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The pivot slot of CNode Rotate: seL4 reports its failures as source ones."""
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=True)
