"""ASID pools and seL4's ASID table: which VSpace root each ASID names.

The ASID space has 2^16 values: 128 pools (the high 7 bits) of 512 ASIDs (the low 9
bits); ASID 0 is never assigned (abi/vspace.md, "ASIDs"). The kernel's ASID table (seL4's
riscvKSASIDTable / armKSASIDTable) is ``KernelState.asid_table``, the live pools by
``asid_base >> 9``. Looking ASIDs up, pool invocations (Assign) and deletion are
:mod:`kernel.objects.asid_pool`.
"""

from __future__ import annotations

__all__ = [
    "ASIDPool",
    "ASID_LOW_BITS",
    "ASID_POOL_BITS",
    "ASIDS_PER_POOL",
    "NUM_ASID_POOLS",
]


ASID_POOL_BITS = 12
ASID_LOW_BITS = 9
ASIDS_PER_POOL = 1 << ASID_LOW_BITS
NUM_ASID_POOLS = 1 << 7


class ASIDPool:
    """Invariant: keys of ``roots`` lie in ``asid_base .. asid_base + 511``; ASID 0 is never used."""

    __slots__ = ("paddr", "asid_base", "roots")

    def __init__(self, paddr: int, asid_base: int) -> None:
        self.paddr = paddr
        self.asid_base = asid_base
        self.roots: dict[int, int] = {}
        """ASID -> physical address of the VSpace root assigned to it."""
