"""Capability-space addressing: seL4's resolveAddressBits and the lookups built on it.

Failures are returned as :class:`~kernel.errors.LookupFailure` values, never raised:
the caller decides whether a failure is a cap fault (implicit lookups of the invoked cap)
or a FailedLookup syscall error (CNode-operation lookups).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi.constants import WORD_BITS
from .caps import Cap, CNodeCap
from .errors import DepthMismatch, GuardMismatch, InvalidRoot, LookupFailure
from .objects.cnode import CNode
from .objects.slot import Slot
from .objects.tcb import TCB

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["lookup_cap", "lookup_slot", "resolve_address_bits"]


def resolve_address_bits(
    kernel: Kernel, node_cap: Cap, cptr: int, n_bits: int
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
        node = kernel.objects[cap.paddr]
        assert isinstance(node, CNode)
        slot = node.slots[index]
        if n_bits == level:
            return slot, 0
        n_bits -= level
        if not isinstance(slot.cap, CNodeCap):
            return slot, n_bits
        cap = slot.cap


def lookup_slot(kernel: Kernel, tcb: TCB, cptr: int) -> Slot | LookupFailure:
    """An implicit lookup: all 64 bits of ``cptr`` from ``tcb``'s CSpace root."""
    result = resolve_address_bits(kernel, tcb.ctable.cap, cptr, WORD_BITS)
    if isinstance(result, tuple):
        return result[0]
    return result


def lookup_cap(kernel: Kernel, tcb: TCB, cptr: int) -> Cap | LookupFailure:
    """The cap ``cptr`` names in ``tcb``'s CSpace (a NullCap for an empty slot)."""
    result = lookup_slot(kernel, tcb, cptr)
    if isinstance(result, Slot):
        return result.cap
    return result

