"""Small queries about threads that several modules need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .caps import PageTableCap, VSpaceCap
from .objects.tcb import TCB

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["vspace_root_of"]


def vspace_root_of(kernel: Kernel, tcb: TCB) -> tuple[int, int]:
    """(root table paddr, ASID) of ``tcb``'s VSpace; (0, 0) if it has no valid one.

    A thread without a valid VSpace runs with an empty address space: every access
    faults, as on seL4 where such a thread runs in the kernel's global address space.
    Valid means seL4's setVMRoot test: the cap's ASID still resolves (its pool is in
    the ASID table) to this very root.
    """
    cap = tcb.vtable.cap
    if isinstance(cap, (PageTableCap, VSpaceCap)) and cap.mapped_asid:
        asid = cap.mapped_asid
        pool = kernel.asid_table.get(asid >> 9)
        if pool is not None and pool.roots.get(asid) == cap.paddr:
            return cap.paddr, asid
    return 0, 0
