"""What a capability becomes when it is copied, minted or mutated (abi/objects.md).

Pure functions on cap values, in the roles seL4 gives them:

- :func:`same_region_as` / :func:`same_object_as`: do two caps cover the same memory /
  name the same object? The derivation tree and finalisation are built on these.
- :func:`mask_cap_rights`: Copy and Mint may only remove rights.
- :func:`update_cap_data`: the badge (Mint) or CNode guard (Mint, Mutate, Rotate) a cap
  gets from a data word; a NullCap result means "not allowed" (IllegalOperation).
- deriveCap, the cap a Copy/Mint/IPC transfer actually stores, needs the derivation
  tree (an untyped with children cannot be copied): :func:`kernel.cspace.cdt.derive_cap`.
- :func:`is_cap_revocable`: the ``revocable`` bit a derived cap gets in its new slot.

Object sizes come from the cap except for TCBs, whose size depends on the architecture;
functions that need it take ``tcb_bits`` (``kernel.tcb_bits``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from kernel.abi.constants import (
    ASID_POOL_BITS,
    CNODE_CAPDATA,
    ENDPOINT_BITS,
    NOTIFICATION_BITS,
    PAGE_TABLE_BITS,
    REPLY_BITS_MCS,
    SLOT_BITS,
    VSPACE_BITS,
    WORD_BITS,
    CapRights,
)
from kernel.abi.extensions import CHECKPOINT_BITS
from kernel.model.caps import (
    NULL_CAP,
    ASIDControlCap,
    ASIDPoolCap,
    Cap,
    CapPageCap,
    CheckpointCap,
    CNodeCap,
    DomainCap,
    EndpointCap,
    FrameCap,
    IRQControlCap,
    NotificationCap,
    PageTableCap,
    ReplyCap,
    ReplyObjectCap,
    Rights,
    SchedContextCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
    ZombieCap,
    mask_vm_rights,
)

__all__ = [
    "has_cancel_send_rights",
    "is_cap_revocable",
    "mask_cap_rights",
    "object_size_bits",
    "same_object_as",
    "same_region_as",
    "update_cap_data",
]

_GUARD_SIZE: Final = CNODE_CAPDATA["guardSize"]
_GUARD: Final = CNODE_CAPDATA["guard"]


def object_size_bits(cap: Cap, tcb_bits: int) -> int | None:
    """log2 of the size of the memory ``cap`` covers; None for caps naming no memory.

    These are seL4's "physical" caps; only they can lie inside an untyped's region.
    """
    match cap:
        case UntypedCap(size_bits=bits) | FrameCap(size_bits=bits):
            return bits
        case CNodeCap(radix=radix):
            return radix + SLOT_BITS
        case EndpointCap():
            return ENDPOINT_BITS
        case NotificationCap():
            return NOTIFICATION_BITS
        case ThreadCap():
            return tcb_bits
        case ZombieCap(radix=radix):
            return tcb_bits if radix is None else radix + SLOT_BITS
        case PageTableCap():
            return PAGE_TABLE_BITS
        case VSpaceCap():
            return VSPACE_BITS
        case ASIDPoolCap():
            return ASID_POOL_BITS
        case CheckpointCap():
            return CHECKPOINT_BITS
        case SchedContextCap(size_bits=bits):
            return bits
        case ReplyObjectCap():
            return REPLY_BITS_MCS
    return None


def same_region_as(a: Cap, b: Cap, tcb_bits: int) -> bool:
    """seL4's sameRegionAs: ``b`` covers memory or an object that ``a`` covers.

    An untyped covers every physical cap inside its region; a frame every frame inside
    it; other caps cover exactly their own object (a CNode also needs the same radix).
    IRQControl covers IRQ handlers (none exist yet); Domain/ASIDControl caps all match.
    """
    match a:
        case UntypedCap(paddr=base, size_bits=bits):
            b_bits = object_size_bits(b, tcb_bits)
            b_base = b.object_paddr
            if b_bits is None or b_base is None:
                return False
            a_top = base + (1 << bits) - 1
            b_top = b_base + (1 << b_bits) - 1
            return base <= b_base and b_top <= a_top
        case FrameCap(paddr=base, size_bits=bits):
            if not isinstance(b, FrameCap):
                return False
            return base <= b.paddr and b.paddr + (1 << b.size_bits) <= base + (1 << bits)
        case CNodeCap():
            return isinstance(b, CNodeCap) and (b.paddr, b.radix) == (a.paddr, a.radix)
        case (EndpointCap() | NotificationCap() | ThreadCap() | ReplyCap() | PageTableCap()
              | VSpaceCap() | ASIDPoolCap() | CheckpointCap()):
            return type(b) is type(a) and b.object_paddr == a.object_paddr
        case DomainCap() | ASIDControlCap() | IRQControlCap():
            return type(b) is type(a)
    return False


def same_object_as(a: Cap, b: Cap, tcb_bits: int) -> bool:
    """seL4's sameObjectAs: ``a`` and ``b`` name the very same object.

    An untyped is never "the same object" as anything (its children do not keep it
    alive); frames must agree on base, size and device-ness, not just overlap.
    """
    if isinstance(a, UntypedCap):
        return False
    if isinstance(a, FrameCap) and isinstance(b, FrameCap):
        return (a.paddr, a.size_bits, a.is_device) == (b.paddr, b.size_bits, b.is_device)
    return same_region_as(a, b, tcb_bits)


def mask_cap_rights(rights: Rights, cap: Cap) -> Cap:
    """``cap`` with at most ``rights`` (objects.md "Masking"); caps without rights unchanged."""
    match cap:
        case EndpointCap() | NotificationCap():
            return replace(cap, rights=cap.rights & _rights_mask_for(cap, rights))
        case ReplyCap():
            return replace(cap, can_grant=cap.can_grant and rights.grant)
        case FrameCap():
            return cap.with_rights(mask_vm_rights(cap.rights, rights))
        case CapPageCap():  # capsule's cap pages (not seL4): no write, read-only; no grant, weak
            return replace(cap, read_only=cap.read_only or not rights.write,
                           weak=cap.weak or not rights.grant)
    return cap


def _rights_mask_for(cap: EndpointCap | NotificationCap, rights: Rights) -> Rights:
    # A notification cap has only send (write) and receive (read); its grant bits are
    # left as they are.
    if isinstance(cap, NotificationCap):
        return Rights(rights.write, rights.read, True, True)
    return rights


def update_cap_data(preserve: bool, data: int, cap: Cap) -> Cap:
    """seL4's updateCapData: the cap after applying a Mint/Mutate data word.

    - endpoint / notification: ``data`` becomes the badge, only when minting
      (``preserve`` false) from an unbadged cap; otherwise the result is NullCap;
    - CNode: ``data`` is a guard word (bits 0-5 size, 6-63 guard); a guard that does
      not fit beside the radix in 64 bits gives NullCap;
    - everything else is unchanged.
    """
    match cap:
        case EndpointCap() | NotificationCap():
            if not preserve and cap.badge == 0:
                return replace(cap, badge=data)
            return NULL_CAP
        case CNodeCap():
            guard_size = _GUARD_SIZE.get(data)
            if guard_size + cap.radix > WORD_BITS:
                return NULL_CAP
            guard = _GUARD.get(data) & ((1 << guard_size) - 1)
            return replace(cap, guard_size=guard_size, guard=guard)
    return cap


def is_cap_revocable(new: Cap, src: Cap) -> bool:
    """seL4's isCapRevocable: the ``revocable`` bit of ``new`` derived from ``src``.

    A badged endpoint/notification minted from one with another badge starts a new
    revocable "badge parent"; an untyped copy is always revocable; others are not.
    (IRQ handlers issued from IRQControl are revocable too, when they exist.)
    """
    if isinstance(new, (EndpointCap, NotificationCap)):
        return isinstance(src, type(new)) and new.badge != src.badge
    return isinstance(new, UntypedCap)


def has_cancel_send_rights(cap: Cap) -> bool:
    """An endpoint cap with all four rights (CNode CancelBadgedSends needs one)."""
    return isinstance(cap, EndpointCap) and cap.rights.to_word() == CapRights.seL4_AllRights
