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
    """
    cap = tcb.vtable.cap
    if isinstance(cap, (PageTableCap, VSpaceCap)) and cap.mapped_asid:
        return cap.paddr, cap.mapped_asid
    return 0, 0
