"""The checkpoint object's invocations: capsule's extension, **not seL4**.

The object, its numbers and its reply layout are declared in
:mod:`kernel.abi.extensions` (read that docstring first); it exists only in images
whose configuration sets ``checkpoint_object``, since only then does Untyped_Retype
make one (``kernel.objects.retype``). It holds no state: a cap to it is the authority
to read any cspace its invoker also holds a CNode cap to, and to install caps there.

Decode follows the seL4 pattern (STYLE.md Synthesis 1): :func:`decode_checkpoint_invocation`
validates in the order below and returns a frozen record, or raises a SyscallError,
changing nothing; each record's ``perform_*`` cannot fail.

Decode order:

- label one of :class:`~kernel.abi.extensions.CheckpointLabel` else IllegalOperation;
- ReadSlot: length >= 2 and extra cap 0 (root) else TruncatedMessage; the slot
  MR0/MR1 from the root, as a CNode operation's target
  (:func:`~kernel.cspace.lookup.lookup_target_slot`: FailedLookup with was_source 0,
  RangeError(1, 64) for a depth outside 1..64). An empty slot is read as all zeros.
- NextSlot: length >= 3 and extra cap 0 else TruncatedMessage; the CNode as
  Untyped_Retype names its destination: MR1 (depth) 0 means the root cap itself, else
  the cap in the slot MR0/MR1 names; not a CNode cap -> FailedLookup(0,
  MissingCapability(depth)); MR2 (start) above the CNode's slot count ->
  RangeError(0, slot count).
- Install: length >= 2 and extra cap 0 (destination root) else TruncatedMessage; the
  target slot MR0/MR1 from that root; then exactly CNode_Mint's checks and errors with
  MR2.. as Mint's source index, depth, rights and badge and extra cap 1 as its source
  root (:func:`kernel.objects.cnode.decode_mint`).
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import CapRights
from kernel.abi.extensions import (
    SLOT_WORDS,
    CheckpointLabel,
    CheckpointSlotFlag,
    IdentityKind,
    object_identity,
)
from kernel.cspace import cdt
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.lookup import lookup_target_slot
from kernel.cspace.restrictions import path_restrictions
from kernel.model.caps import (
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
    ThreadCap,
    UntypedCap,
    VSpaceCap,
    ZombieCap,
)
from kernel.model.cnode import CNode
from kernel.model.errors import (
    FailedLookup,
    IllegalOperation,
    KernelBug,
    MissingCapability,
    RangeError,
    TruncatedMessage,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.cnode import decode_mint
from kernel.records import dataclass

__all__ = [
    "CheckpointInstall",
    "CheckpointInvocation",
    "CheckpointNextSlot",
    "CheckpointReadSlot",
    "decode_checkpoint_invocation",
    "perform_install",
    "perform_next_slot",
    "perform_read_slot",
    "slot_reading",
]


# --- decoded invocations --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class CheckpointReadSlot:
    """Read ``slot`` (its cap and derivation facts) into the reply."""

    slot: Slot


@dataclass(frozen=True, slots=True, eq=False)
class CheckpointNextSlot:
    """The first non-empty slot of the CNode ``node`` at or after ``start``: ``found``,
    or None when there is none (the reply then gives the slot count ``end``)."""

    node: CNodeCap
    start: int
    found: Slot | None
    end: int


@dataclass(frozen=True, slots=True, eq=False)
class CheckpointInstall:
    """``new_cap`` (derived from ``src``'s by CNode_Mint's rules) into the empty ``dest``,
    as a derivation child of ``src``."""

    new_cap: Cap
    src: Slot
    dest: Slot


CheckpointInvocation = CheckpointReadSlot | CheckpointNextSlot | CheckpointInstall


# --- decode ---------------------------------------------------------------------------


def decode_checkpoint_invocation(
    kernel: KernelState, slot: Slot, invocation: InvocationArgs
) -> CheckpointInvocation:
    """Validate an invocation of the checkpoint cap in ``slot`` (order in the module
    docstring). Returns the record to perform; raises SyscallError. Changes no state."""
    if not isinstance(slot.cap, CheckpointCap):
        raise KernelBug("decode_checkpoint_invocation on a non-checkpoint cap")
    try:
        method = CheckpointLabel(invocation.label)
    except ValueError:
        raise IllegalOperation() from None
    args, extra = invocation.words, invocation.extra
    if method is CheckpointLabel.capsule_CheckpointReadSlot:
        if len(args) < 2 or not extra:
            raise TruncatedMessage()
        return CheckpointReadSlot(lookup_target_slot(kernel, extra[0].cap, args[0], args[1]))
    if method is CheckpointLabel.capsule_CheckpointNextSlot:
        return _decode_next_slot(kernel, args, extra)
    if len(args) < 2 or not extra:
        raise TruncatedMessage()
    dest = lookup_target_slot(kernel, extra[0].cap, args[0], args[1])
    if kernel.config.cap_pages and path_restrictions(kernel, extra[0].cap, args[0], args[1])[0]:
        raise IllegalOperation()  # capsule's cap pages (not seL4): a read-only path
    minted = decode_mint(kernel, args, extra[1:], dest)
    return CheckpointInstall(minted.new_cap, minted.src, minted.dest)


def _decode_next_slot(kernel: KernelState, args: tuple[int, ...],
                      extra: tuple[Slot, ...]) -> CheckpointNextSlot:
    if len(args) < 3 or not extra:
        raise TruncatedMessage()
    node_index, node_depth, start = args[0], args[1], args[2]
    root = extra[0].cap
    node = root if node_depth == 0 else lookup_target_slot(
        kernel, root, node_index, node_depth).cap
    if not isinstance(node, CNodeCap):
        raise FailedLookup(False, MissingCapability(bits_left=node_depth))
    end = 1 << node.radix
    if start > end:
        raise RangeError(0, end)
    found = kernel.object_at(node.paddr, CNode).slots.first_full(start)
    return CheckpointNextSlot(node, start, found, end)


# --- reading a slot -------------------------------------------------------------------

_ALL_RIGHTS: Final = int(CapRights.seL4_AllRights)
_KINDS: Final[dict[type[Cap], IdentityKind]] = {
    UntypedCap: IdentityKind.capsule_ObjectUntyped,
    ThreadCap: IdentityKind.capsule_ObjectTCB,
    ReplyCap: IdentityKind.capsule_ObjectTCB,
    EndpointCap: IdentityKind.capsule_ObjectEndpoint,
    NotificationCap: IdentityKind.capsule_ObjectNotification,
    CNodeCap: IdentityKind.capsule_ObjectCNode,
    CapPageCap: IdentityKind.capsule_ObjectCapPage,
    FrameCap: IdentityKind.capsule_ObjectFrame,
    PageTableCap: IdentityKind.capsule_ObjectPageTable,
    VSpaceCap: IdentityKind.capsule_ObjectVSpace,
    ASIDPoolCap: IdentityKind.capsule_ObjectASIDPool,
    CheckpointCap: IdentityKind.capsule_ObjectCheckpoint,
    ASIDControlCap: IdentityKind.capsule_ObjectASIDControl,
    IRQControlCap: IdentityKind.capsule_ObjectIRQControl,
    DomainCap: IdentityKind.capsule_ObjectDomain,
}
"""Cap type -> the kind its object identity carries (a reply cap names its thread)."""


def _identity(cap: Cap) -> int:
    if cap.is_null:
        return 0
    if isinstance(cap, ZombieCap):
        kind = IdentityKind.capsule_ObjectTCB if cap.radix is None \
            else IdentityKind.capsule_ObjectCNode
    else:
        kind = _KINDS.get(type(cap), IdentityKind.capsule_ObjectNone)
    return object_identity(kind, cap.object_paddr or 0)


def _rights(cap: Cap) -> int:
    if cap.is_null:
        return 0
    if isinstance(cap, EndpointCap | NotificationCap | FrameCap):
        return cap.rights.to_word()
    if isinstance(cap, ReplyCap):
        return int(CapRights.seL4_CanGrant) if cap.can_grant else 0
    return _ALL_RIGHTS  # no rights field: no mask reduces what it allows


def slot_reading(kernel: KernelState, slot: Slot) -> list[int]:
    """The words of a slot reading, in :data:`~kernel.abi.extensions.SLOT_WORDS` order."""
    cap = slot.cap
    badge = size_bits = guard_size = mapped_vaddr = 0
    flags = CheckpointSlotFlag(0)
    if isinstance(cap, EndpointCap | NotificationCap):
        badge = cap.badge
    elif isinstance(cap, CNodeCap):
        badge, size_bits, guard_size = cap.guard, cap.radix, cap.guard_size
    elif isinstance(cap, UntypedCap | FrameCap):
        size_bits = cap.size_bits
        if cap.is_device:
            flags |= CheckpointSlotFlag.capsule_SlotIsDevice
    if isinstance(cap, FrameCap | PageTableCap | VSpaceCap) and cap.is_mapped:
        flags |= CheckpointSlotFlag.capsule_SlotMapped
        if not isinstance(cap, VSpaceCap):
            mapped_vaddr = cap.mapped_vaddr
    if not cap.is_null:
        if cdt.has_children(kernel, slot):
            flags |= CheckpointSlotFlag.capsule_SlotHasChildren
        if slot.revocable:
            flags |= CheckpointSlotFlag.capsule_SlotRevocable
    values = {
        "type": int(cap.tag), "rights": _rights(cap), "badge": badge,
        "size_bits": size_bits, "guard_size": guard_size, "flags": int(flags),
        "object": _identity(cap), "mapped_vaddr": mapped_vaddr,
    }
    return [values[p.name] for p in SLOT_WORDS]


# --- perform --------------------------------------------------------------------------


def perform_read_slot(kernel: KernelState, inv: CheckpointReadSlot) -> list[int]:
    """ReadSlot: the slot reading."""
    return slot_reading(kernel, inv.slot)


def perform_next_slot(kernel: KernelState, inv: CheckpointNextSlot) -> list[int]:
    """NextSlot: the found slot's index and reading, or the slot count and zeros."""
    if inv.found is None:
        return [inv.end] + [0] * len(SLOT_WORDS)
    return [inv.found.index, *slot_reading(kernel, inv.found)]


def perform_install(kernel: KernelState, inv: CheckpointInstall) -> list[int]:
    """Install: cteInsert of the derived cap, as CNode_Mint performs it."""
    cdt.insert(inv.new_cap, inv.src, inv.dest)
    return []
