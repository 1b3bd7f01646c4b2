"""ASID pools and seL4's ASID table: which VSpace root each ASID names.

The ASID space has 2^16 values: 128 pools (the high 7 bits) of 512 ASIDs (the low 9
bits); ASID 0 is never assigned (abi/vspace.md, "ASIDs"). The kernel's ASID table (seL4's
riscvKSASIDTable / armKSASIDTable) is ``KernelState.asid_table``, the live pools by
``asid_base >> 9``. Looking ASIDs up, pool invocations (Assign) and deletion are
:mod:`kernel.objects.asid_pool`.
"""

from __future__ import annotations

from typing import Final, final

from mypy_extensions import mypyc_attr

from kernel.abi.constants import ASID_POOL_INDEX_BITS, NUM_ASID_POOLS_BITS
from kernel.pickling import Persistent

__all__ = [
    "ASIDPool",
    "ASID_BITS",
    "ASIDS_PER_POOL",
    "NUM_ASID_POOLS",
]

# Derived from the ABI's ASID split (kernel.abi.constants), not declared here.
ASIDS_PER_POOL: Final = 1 << ASID_POOL_INDEX_BITS
NUM_ASID_POOLS: Final = 1 << NUM_ASID_POOLS_BITS
ASID_BITS: Final = ASID_POOL_INDEX_BITS + NUM_ASID_POOLS_BITS
"""Width of an ASID: pool index bits above the index-in-pool bits (2^16 ASIDs in all)."""


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class ASIDPool(Persistent):
    """Invariant: keys of ``roots`` lie in ``asid_base .. asid_base + 511``; ASID 0 is never used."""

    __slots__ = ("paddr", "asid_base", "roots")

    def __init__(self, paddr: int, asid_base: int) -> None:
        self.paddr = paddr
        self.asid_base = asid_base
        self.roots: dict[int, int] = {}
        """ASID -> physical address of the VSpace root assigned to it."""
