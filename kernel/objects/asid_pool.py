"""ASID pools: 512 ASIDs each, mapping an ASID to the VSpace root assigned to it.

The ASID space has 2^16 values: 128 pools (the high 7 bits) of 512 ASIDs (the low 9
bits); ASID 0 is never assigned (abi/vspace.md, "ASIDs"). Boot creates pool 0; more come
from ASIDControl MakePool (:func:`register_pool`). The kernel's ASID table (seL4's
riscvKSASIDTable / armKSASIDTable) is ``kernel.asid_table``, the live pools by
``asid_base >> 9`` (:func:`asid_table`); :func:`find_vspace_for_asid` resolves an ASID.

Deletion (seL4's deleteASID / deleteASIDPool): a VSpace root whose last cap goes gives
its ASID back (:func:`delete_asid`); a pool whose last cap goes leaves the table, and
every VSpace assigned from it stops resolving. Caps keep naming such ASIDs; threads
whose VSpace no longer resolves run with no address space (``kernel.core.threads``'
``vspace_root_of``), and the current thread's address space is re-installed at once.

Assign (seL4_RISCV_ASIDPool_Assign / seL4_ARM_ASIDPool_Assign) gives an unassigned
VSpace root the pool's first free ASID: on RISC-V the root is a page-table cap, which
becomes a VSpace root (mapped, ASID set, vaddr 0); on AArch64 it is a VSpace cap.

:func:`decode_asid_pool_invocation` validates the invocation's arguments (read once at
kernel entry) and returns an :class:`AssignInvocation`, changing nothing;
:func:`perform_assign` (registered in ``kernel.entry.dispatch.PERFORMERS``) applies it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from kernel.abi.arch import Arch
from kernel.abi.constants import ASID_POOL_INDEX_BITS
from kernel.abi.labels import label_table
from kernel.core.threads import vspace_root_of
from kernel.cspace.arguments import InvocationArgs
from kernel.model.asid_pool import ASID_BITS, ASIDS_PER_POOL, NUM_ASID_POOLS, ASIDPool
from kernel.model.caps import ASIDPoolCap, Cap, PageTableCap, VSpaceCap
from kernel.model.errors import (
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    InvalidCapability,
    InvalidRoot,
    KernelBug,
    TruncatedMessage,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.records import dataclass

__all__ = [
    "finalise_asid_pool",
    "asid_table",
    "find_vspace_for_asid",
    "register_pool",
    "AssignInvocation",
    "decode_asid_pool_invocation",
    "delete_asid",
    "perform_assign",
    "set_vm_root",
]

def asid_table(kernel: KernelState) -> dict[int, ASIDPool]:
    """The live ASID pools by pool index (``asid_base >> 9``, 0..127)."""
    return kernel.asid_table


def register_pool(kernel: KernelState, pool: ASIDPool) -> None:
    """Make ``pool`` a kernel object and enter it in the ASID table."""
    kernel.add_object(pool)
    kernel.asid_table[pool.asid_base >> ASID_POOL_INDEX_BITS] = pool
    kernel.asid_epoch += 1


def find_vspace_for_asid(kernel: KernelState, asid: int) -> int | None:
    """seL4's findVSpaceForASID: the root assigned to ``asid``, or None (the caller's
    error is then FailedLookup with an InvalidRoot lookup failure)."""
    pool = kernel.asid_table.get((asid >> ASID_POOL_INDEX_BITS) & (NUM_ASID_POOLS - 1))
    if pool is None or asid >> ASID_BITS:
        return None
    return pool.roots.get(asid)


@dataclass(frozen=True, slots=True)
class AssignInvocation:
    """A validated Assign: give ``asid`` from ``pool`` to the root cap in ``root_slot``."""

    asid: int
    pool: ASIDPool
    root_slot: Slot


@cache
def _assign_label(arch: Arch, mcs: bool) -> int:
    """The Assign label number of a configuration."""
    name = "RISCVASIDPoolAssign" if arch is Arch.RISCV64 else "ARMASIDPoolAssign"
    return label_table(arch, mcs)[name]


def decode_asid_pool_invocation(
    kernel: KernelState, slot: Slot, invocation: InvocationArgs
) -> AssignInvocation:
    """Validate an invocation of the ASID pool cap in ``slot``; return the Assign to perform.

    Order (seL4's ASID-pool decode): label (IllegalOperation); extra cap 0 present
    (TruncatedMessage); extra cap 0 an unassigned VSpace root — RISC-V: an unmapped
    page-table cap, AArch64: a VSpace cap without ASID (InvalidCapability 1); the pool
    is in the ASID table (FailedLookup(False, InvalidRoot)) and is the very pool this
    cap names (InvalidCapability 0); a free ASID other than 0 (DeleteFirst).
    """
    cap = slot.cap
    if not isinstance(cap, ASIDPoolCap):
        raise KernelBug("decode_asid_pool_invocation on a non-pool cap")
    if invocation.label != _assign_label(kernel.arch, kernel.config.mcs):
        raise IllegalOperation()
    extra = invocation.extra
    if not extra:
        raise TruncatedMessage()
    root_slot = extra[0]
    root = root_slot.cap
    root_type = PageTableCap if kernel.arch is Arch.RISCV64 else VSpaceCap
    if not isinstance(root, root_type) or root.is_mapped:
        raise InvalidCapability(1)
    pool = kernel.asid_table.get(cap.asid_base >> ASID_POOL_INDEX_BITS)
    if pool is None:
        raise FailedLookup(False, InvalidRoot())
    if pool.paddr != cap.paddr:
        raise InvalidCapability(0)
    for asid in range(cap.asid_base, cap.asid_base + ASIDS_PER_POOL):
        if asid != 0 and asid not in pool.roots:
            return AssignInvocation(asid, pool, root_slot)
    raise DeleteFirst()


def perform_assign(kernel: KernelState, inv: AssignInvocation) -> list[int]:
    """Record the root in the pool and mark its cap assigned; returns no reply words.

    RISC-V: the page-table cap becomes a VSpace root (``mapped_asid`` set, vaddr 0).
    AArch64: the VSpace cap gets ``mapped_asid``. The root table's contents are not
    touched (capsule maps no kernel window into user tables).
    """
    cap = inv.root_slot.cap
    if isinstance(cap, PageTableCap):
        inv.root_slot.cap = replace(cap, mapped_asid=inv.asid, mapped_vaddr=0)
    elif isinstance(cap, VSpaceCap):
        inv.root_slot.cap = replace(cap, mapped_asid=inv.asid)
    else:
        raise KernelBug("perform_assign: the root cap changed since decode")
    inv.pool.roots[inv.asid] = cap.paddr
    kernel.asid_epoch += 1
    return []


def set_vm_root(kernel: KernelState) -> None:
    """seL4's setVMRoot for the current thread, after an ASID or pool went away: the
    machine gets whatever the thread's VSpace now resolves to (possibly nothing)."""

    if kernel.current is not None:
        kernel.machine.set_address_space(*vspace_root_of(kernel, kernel.current))


def delete_asid(kernel: KernelState, asid: int, root_paddr: int) -> None:
    """seL4's deleteASID: drop ``asid``'s pool entry if it still names ``root_paddr``.

    A deleted VSpace root gives its ASID back to its pool; the machine forgets what it
    cached for that ASID and the current thread's address space is re-installed.
    """
    pool = kernel.asid_table.get(asid >> ASID_POOL_INDEX_BITS)
    if pool is not None and pool.roots.get(asid) == root_paddr:
        del pool.roots[asid]
        kernel.asid_epoch += 1
        kernel.machine.mappings_changed(asid)
        set_vm_root(kernel)


def finalise_asid_pool(kernel: KernelState, cap: Cap, final: bool) -> list[Slot]:
    """seL4's deleteASIDPool: when the last cap to a pool goes, the pool leaves the ASID
    table (its index is free for MakePool again). The VSpace caps assigned from it keep
    their ASID, which no longer resolves: threads using them run with no address space."""
    assert isinstance(cap, ASIDPoolCap)
    pool = kernel.objects.get(cap.paddr)
    if final and isinstance(pool, ASIDPool):
        kernel.remove_objects_in(cap.paddr, 1)
        index = pool.asid_base >> ASID_POOL_INDEX_BITS
        if kernel.asid_table.get(index) is pool:
            del kernel.asid_table[index]
            kernel.asid_epoch += 1
            for asid in pool.roots:
                kernel.machine.mappings_changed(asid)
            set_vm_root(kernel)
    return []
