"""ASIDControl MakePool: turn a 4 KiB untyped into a new ASID pool.

The ASID control cap is the authority over the ASID table. MakePool takes an untyped of
exactly 2^12 bytes (extra cap 0) that is not device memory and has no children, and a
destination given by a CNode (extra cap 1) plus ``index`` (MR0) and ``depth`` (MR1). The
new pool takes the lowest free pool index: ``asid_base = index * 512`` (abi/vspace.md).
The untyped becomes the pool cap's CDT parent and is marked full.

:func:`decode_asid_control_invocation` validates the invocation's arguments (read once
at kernel entry) and returns a :class:`MakePoolInvocation`, changing nothing;
:func:`perform_make_pool` (registered in ``kernel.entry.dispatch.PERFORMERS``) applies it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import ASID_POOL_BITS, ASID_POOL_INDEX_BITS, MIN_UNTYPED_BITS
from kernel.abi.labels import label_table
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import has_children, insert_child
from kernel.cspace.lookup import lookup_target_slot
from kernel.model.asid_pool import NUM_ASID_POOLS, ASIDPool
from kernel.model.caps import ASIDControlCap, ASIDPoolCap, UntypedCap
from kernel.model.errors import (
    DeleteFirst,
    IllegalOperation,
    InvalidCapability,
    KernelBug,
    RevokeFirst,
    TruncatedMessage,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_pool import asid_table, register_pool
from kernel.objects.retype import purge_region, zero_phys
from kernel.records import dataclass

__all__ = ["MakePoolInvocation", "decode_asid_control_invocation", "perform_make_pool"]

_MAKE_POOL_ARGS: Final = 2


@dataclass(frozen=True, slots=True)
class MakePoolInvocation:
    """A validated MakePool: a pool with ``asid_base`` at the untyped's address."""

    untyped_slot: Slot
    dest_slot: Slot
    asid_base: int


@cache
def _make_pool_label(arch: Arch, mcs: bool) -> int:
    """The MakePool label number of a configuration."""
    name = "RISCVASIDControlMakePool" if arch is Arch.RISCV64 else "ARMASIDControlMakePool"
    return label_table(arch, mcs)[name]


def decode_asid_control_invocation(
    kernel: KernelState, slot: Slot, invocation: InvocationArgs
) -> MakePoolInvocation:
    """Validate an invocation of the ASID control cap; return the MakePool to perform.

    Order (seL4's ASID-control decode): label (IllegalOperation); length >= 2 and two
    extra caps (TruncatedMessage); a free pool index (DeleteFirst); extra cap 0 a
    non-device untyped of exactly 2^12 bytes (InvalidCapability 1) without children
    (RevokeFirst); the destination lookup (as lookupTargetSlot: FailedLookup source=0,
    RangeError(1, 64)); an empty destination (DeleteFirst). Changes nothing.
    """
    if not isinstance(slot.cap, ASIDControlCap):
        raise KernelBug("decode_asid_control_invocation on a non-ASID-control cap")
    if invocation.label != _make_pool_label(kernel.arch, kernel.config.mcs):
        raise IllegalOperation()
    args, extra = invocation.words, invocation.extra
    if len(args) < _MAKE_POOL_ARGS or len(extra) < 2:
        raise TruncatedMessage()
    index, depth = args[:_MAKE_POOL_ARGS]
    untyped_slot, root = extra[0], extra[1].cap

    used = asid_table(kernel)
    free = [i for i in range(NUM_ASID_POOLS) if i not in used]
    if not free:
        raise DeleteFirst()
    asid_base = free[0] << ASID_POOL_INDEX_BITS
    untyped = untyped_slot.cap
    if (
        not isinstance(untyped, UntypedCap)
        or untyped.is_device
        or untyped.size_bits != ASID_POOL_BITS
    ):
        raise InvalidCapability(1)
    if has_children(kernel, untyped_slot):
        raise RevokeFirst()
    dest = lookup_target_slot(kernel, root, index, depth)
    if not dest.is_empty:
        raise DeleteFirst()
    return MakePoolInvocation(untyped_slot, dest, asid_base)


def perform_make_pool(kernel: KernelState, inv: MakePoolInvocation) -> list[int]:
    """Create the pool; returns no reply words.

    Postconditions: the untyped is full (free index at its end); its 4 KiB are zero and
    hold the new ``ASIDPool`` (empty) in ``kernel.objects``; the pool cap sits in
    ``dest_slot`` as a non-revocable CDT child of the untyped; the pool is in the ASID
    table at ``asid_base >> 9``.
    """
    untyped = inv.untyped_slot.cap
    assert isinstance(untyped, UntypedCap)
    paddr = untyped.paddr
    purge_region(kernel, paddr, 1 << ASID_POOL_BITS)
    inv.untyped_slot.cap = replace(
        untyped, free_index=1 << (untyped.size_bits - MIN_UNTYPED_BITS)
    )
    zero_phys(kernel.machine, paddr, 1 << ASID_POOL_BITS)
    register_pool(kernel, ASIDPool(paddr, inv.asid_base))
    insert_child(inv.untyped_slot, inv.dest_slot, ASIDPoolCap(paddr, inv.asid_base), False)
    return []
