"""CNode objects: 2^radix capability slots (object size 2^(radix + seL4_SlotBits)).

Their invocations are :mod:`kernel.objects.cnode`.
"""

from __future__ import annotations

from kernel.abi.constants import SLOT_BITS
from kernel.model.slot import Slot

__all__ = ["CNode", "cnode_object_bits"]


def cnode_object_bits(radix: int) -> int:
    """log2 of a CNode's size in bytes."""
    return radix + SLOT_BITS


class CNode:
    """A CNode at ``paddr`` with ``2^radix`` slots.

    Invariant: ``len(slots) == 2**radix`` and ``slots[i].index == i``.
    """

    __slots__ = ("paddr", "radix", "slots")

    def __init__(self, paddr: int, radix: int) -> None:
        self.paddr = paddr
        self.radix = radix
        self.slots = [Slot(paddr, i) for i in range(1 << radix)]
