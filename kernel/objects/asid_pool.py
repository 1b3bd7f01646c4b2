"""ASID pools: 512 ASIDs each, mapping an ASID to the VSpace root assigned to it."""

from __future__ import annotations

__all__ = ["ASIDPool", "ASID_POOL_BITS", "ASIDS_PER_POOL"]

ASID_POOL_BITS = 12
ASIDS_PER_POOL = 512


class ASIDPool:
    """Invariant: keys of ``roots`` lie in ``asid_base .. asid_base + 511``; ASID 0 is never used."""

    __slots__ = ("paddr", "asid_base", "roots")

    def __init__(self, paddr: int, asid_base: int) -> None:
        self.paddr = paddr
        self.asid_base = asid_base
        self.roots: dict[int, int] = {}
