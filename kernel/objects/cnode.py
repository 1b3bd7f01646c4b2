"""CNode invocations (seL4_CNode_*); the object itself is :class:`kernel.model.cnode.CNode`.

Invocations follow the decode/perform split (STYLE.md Synthesis 1):
:func:`decode_cnode_invocation` validates the invocation's arguments (read once at
kernel entry) in seL4's order and returns one of the frozen records below, or raises a
:class:`~kernel.model.errors.SyscallError`, changing nothing. Each record type has its
``perform_*`` function (registered in ``kernel.entry.dispatch.PERFORMERS``), which
cannot fail and returns no reply words; the invocation path answers a Call when its
caller still runs afterwards (so a caller that deleted the last cap to its own TCB gets
no reply, as on seL4).

Decode order (every method): label one of the configuration's CNode labels
(:func:`cnode_methods`: CNodeRevoke..CNodeSaveCaller, ..CNodeRotate under MCS) else
IllegalOperation; length >= 2 else TruncatedMessage; target slot = MR0/MR1 looked up in
the *invoked* CNode (:func:`~kernel.cspace.lookup.lookup_target_slot`). Then per method:

- Copy / Mint / Move / Mutate: length >= 4 and extra cap 0 (source root) else
  TruncatedMessage; target empty else DeleteFirst; source slot = MR2/MR3 from the source
  root; source empty -> FailedLookup(source, MissingCapability(src_depth)); then
  Copy: length >= 5, rights mask MR4, derive; Mint: length >= 6, rights MR4, badge or
  guard MR5, derive; Move: the cap as is; Mutate: length >= 5, guard data MR4.
  A NullCap result -> IllegalOperation.
- Revoke, Delete: nothing more.
- SaveCaller: target empty else DeleteFirst.
- CancelBadgedSends: the target must be an endpoint cap with all rights, else
  IllegalOperation.
- Rotate: length >= 8 and extra caps 0 (pivot root) and 1 (source root) else
  TruncatedMessage; source slot (MR6/MR7), then pivot slot (MR3/MR4) — both report as
  "source"; pivot is source or target -> IllegalOperation; target empty unless it is
  the source, else DeleteFirst; source empty -> FailedLookup(source,
  MissingCapability(src_depth)); pivot empty -> FailedLookup(*not* source,
  MissingCapability(pivot_depth)); new caps via Mutate rules (source cap with MR5, pivot
  cap with MR2); a NullCap -> IllegalOperation (source checked first).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from functools import cache
from types import MappingProxyType
from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.labels import label_table
from kernel.core.ipc import cancel_badged_sends
from kernel.cspace import cdt
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import derive_cap
from kernel.cspace.derive import has_cancel_send_rights, mask_cap_rights, update_cap_data
from kernel.cspace.lookup import lookup_pivot_slot, lookup_source_slot, lookup_target_slot
from kernel.cspace.restrictions import path_restrictions, weaken
from kernel.model.caps import Cap, EndpointCap, ReplyCap, Rights
from kernel.model.endpoint import Endpoint
from kernel.model.errors import (
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    KernelBug,
    MissingCapability,
    TruncatedMessage,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER
from kernel.objects.deletion import delete, revoke
from kernel.records import dataclass

__all__ = [
    "CNodeCancelBadgedSends",
    "CNodeDelete",
    "CNodeInsert",
    "CNodeInvocation",
    "CNodeMethod",
    "CNodeMove",
    "CNodeRevoke",
    "CNodeRotate",
    "CNodeSaveCaller",
    "cnode_methods",
    "decode_cnode_invocation",
    "decode_mint",
    "perform_cancel_badged_sends",
    "perform_delete",
    "perform_insert",
    "perform_move",
    "perform_revoke",
    "perform_rotate",
    "perform_save_caller",
]


# --- decoded invocations --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class CNodeRevoke:
    target: Slot

    def __init__(self, target: Slot) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "target", target)


@dataclass(frozen=True, slots=True, eq=False)
class CNodeDelete:
    target: Slot

    def __init__(self, target: Slot) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "target", target)


@dataclass(frozen=True, slots=True, eq=False)
class CNodeCancelBadgedSends:
    endpoint: EndpointCap


@dataclass(frozen=True, slots=True, eq=False)
class CNodeInsert:
    """Copy or Mint: ``new_cap`` goes to ``dest`` as a child of ``src``."""

    new_cap: Cap
    src: Slot
    dest: Slot

    def __init__(self, new_cap: Cap, src: Slot, dest: Slot) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "new_cap", new_cap)
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dest", dest)


@dataclass(frozen=True, slots=True, eq=False)
class CNodeMove:
    """Move or Mutate: ``src``'s cap (as ``new_cap``) and tree position go to ``dest``."""

    new_cap: Cap
    src: Slot
    dest: Slot

    def __init__(self, new_cap: Cap, src: Slot, dest: Slot) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "new_cap", new_cap)
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dest", dest)


@dataclass(frozen=True, slots=True, eq=False)
class CNodeRotate:
    """pivot -> dest (as ``new_pivot_cap``), then src -> pivot (as ``new_src_cap``).

    When ``src is dest`` the two caps swap places.
    """

    new_src_cap: Cap
    new_pivot_cap: Cap
    src: Slot
    pivot: Slot
    dest: Slot


@dataclass(frozen=True, slots=True, eq=False)
class CNodeSaveCaller:
    dest: Slot


CNodeInvocation = (CNodeRevoke | CNodeDelete | CNodeCancelBadgedSends | CNodeInsert
                   | CNodeMove | CNodeRotate | CNodeSaveCaller)


# --- decode ---------------------------------------------------------------------------


class CNodeMethod(Enum):
    """The CNode methods, in the order seL4 numbers their labels."""

    REVOKE = "CNodeRevoke"
    DELETE = "CNodeDelete"
    CANCEL_BADGED_SENDS = "CNodeCancelBadgedSends"
    COPY = "CNodeCopy"
    MINT = "CNodeMint"
    MOVE = "CNodeMove"
    MUTATE = "CNodeMutate"
    ROTATE = "CNodeRotate"
    SAVE_CALLER = "CNodeSaveCaller"


# The methods as module constants, compared by identity: on Python 3.11 reading an Enum
# member through its class, or hashing one, costs several times a global's lookup.
_COPY: Final = CNodeMethod.COPY
_MINT: Final = CNodeMethod.MINT
_MOVE: Final = CNodeMethod.MOVE
_MUTATE: Final = CNodeMethod.MUTATE
_REVOKE: Final = CNodeMethod.REVOKE
_DELETE: Final = CNodeMethod.DELETE
_SAVE_CALLER: Final = CNodeMethod.SAVE_CALLER
_CANCEL_BADGED_SENDS: Final = CNodeMethod.CANCEL_BADGED_SENDS
_COPY_LIKE: Final = (_COPY, _MINT, _MOVE, _MUTATE)
"""The methods that put a cap from a source slot into the (empty) target slot."""


@cache
def cnode_methods(arch: Arch, mcs: bool) -> Mapping[int, CNodeMethod]:
    """Label number -> CNode method in one configuration (built once, read-only).

    A method the configuration lacks (SaveCaller under MCS) has no entry, so its name's
    number is whatever follows there: not a CNode label, IllegalOperation.
    """
    labels = label_table(arch, mcs)
    return MappingProxyType({labels[m.value]: m for m in CNodeMethod if m.value in labels})


_READS_TARGET: Final = (_REVOKE, _CANCEL_BADGED_SENDS)
"""CNode methods that leave their target slot as it is (a read-only path allows them)."""


def _ensure_empty(slot: Slot) -> None:
    if not slot.is_empty:
        raise DeleteFirst()


def decode_cnode_invocation(
    kernel: KernelState, slot: Slot, invocation: InvocationArgs
) -> CNodeInvocation:
    """Validate an invocation of the CNode cap in ``slot`` (order in the module docstring).

    Returns the record to perform; raises SyscallError. Changes no state.
    """
    method = cnode_methods(kernel.arch, kernel.config.mcs).get(invocation.label)
    if method is None:
        raise IllegalOperation()
    args, extra = invocation.words, invocation.extra
    if len(args) < 2:
        raise TruncatedMessage()
    dest = lookup_target_slot(kernel, slot.cap, args[0], args[1])
    if (kernel.config.cap_pages and method not in _READS_TARGET
            and path_restrictions(kernel, slot.cap, args[0], args[1])[0]):
        raise IllegalOperation()  # capsule's cap pages: a read-only path (not seL4)

    if method in _COPY_LIKE:
        return _decode_copy_like(kernel, method, args, extra, dest)
    if method is _REVOKE:
        return CNodeRevoke(dest)
    if method is _DELETE:
        return CNodeDelete(dest)
    if method is _SAVE_CALLER:
        _ensure_empty(dest)
        return CNodeSaveCaller(dest)
    if method is _CANCEL_BADGED_SENDS:
        cap = dest.cap
        if not has_cancel_send_rights(cap):
            raise IllegalOperation()
        assert isinstance(cap, EndpointCap)
        return CNodeCancelBadgedSends(cap)
    return _decode_rotate(kernel, extra, args, dest)


def _decode_copy_like(kernel: KernelState, method: CNodeMethod, args: tuple[int, ...],
                      extra: tuple[Slot, ...], dest: Slot) -> CNodeInsert | CNodeMove:
    """The Copy / Mint / Move / Mutate checks, after the target slot was looked up."""
    if len(args) < 4 or not extra:
        raise TruncatedMessage()
    src_depth = args[3]
    _ensure_empty(dest)
    src = lookup_source_slot(kernel, extra[0].cap, args[2], src_depth)
    if src.is_empty:
        raise FailedLookup(True, MissingCapability(bits_left=src_depth))
    read_only = weak = False
    if kernel.config.cap_pages:  # capsule's cap pages (not seL4): the source's path
        read_only, weak = path_restrictions(kernel, extra[0].cap, args[2], src_depth)
    new_cap: Cap
    if method is _COPY:
        if len(args) < 5:
            raise TruncatedMessage()
        new_cap = derive_cap(kernel, src, mask_cap_rights(Rights.from_word(args[4]), src.cap))
    elif method is _MINT:
        if len(args) < 6:
            raise TruncatedMessage()
        masked = mask_cap_rights(Rights.from_word(args[4]), src.cap)
        new_cap = derive_cap(kernel, src, update_cap_data(False, args[5], masked))
    elif method is _MOVE:
        new_cap = src.cap
    else:
        if len(args) < 5:
            raise TruncatedMessage()
        new_cap = update_cap_data(True, args[4], src.cap)
    if method is _COPY or method is _MINT:
        if weak:
            new_cap = weaken(new_cap)
    elif read_only:
        raise IllegalOperation()  # Move / Mutate would empty a slot of a read-only path
    if new_cap.is_null:
        raise IllegalOperation()
    if method is _COPY or method is _MINT:
        return CNodeInsert(new_cap, src, dest)
    return CNodeMove(new_cap, src, dest)


def decode_mint(kernel: KernelState, args: tuple[int, ...], extra: tuple[Slot, ...],
                dest: Slot) -> CNodeInsert:
    """CNode_Mint's checks after its target slot ``dest`` was looked up: ``args`` are
    Mint's words (dest index and depth, src index and depth, rights, badge) and
    ``extra[0]`` the source root. For invocations that mint by CNode_Mint's rules with
    the target named some other way (the checkpoint object's Install)."""
    record = _decode_copy_like(kernel, CNodeMethod.MINT, args, extra, dest)
    assert isinstance(record, CNodeInsert)
    return record


def _decode_rotate(kernel: KernelState, extra: tuple[Slot, ...], args: tuple[int, ...],
                   dest: Slot) -> CNodeRotate:
    """The Rotate-specific checks, after the target slot was looked up."""

    if len(args) < 8 or len(extra) < 2:
        raise TruncatedMessage()
    pivot_new_data, pivot_index, pivot_depth = args[2], args[3], args[4]
    src_new_data, src_index, src_depth = args[5], args[6], args[7]
    pivot_root, src_root = extra[0].cap, extra[1].cap
    src = lookup_source_slot(kernel, src_root, src_index, src_depth)
    pivot = lookup_pivot_slot(kernel, pivot_root, pivot_index, pivot_depth)
    if pivot is src or pivot is dest:
        raise IllegalOperation()
    if src is not dest:
        _ensure_empty(dest)
    if src.is_empty:
        raise FailedLookup(True, MissingCapability(bits_left=src_depth))
    if pivot.is_empty:
        # seL4 reports an empty pivot as a *destination* failure, unlike a failed pivot
        # lookup (which counts as source).
        raise FailedLookup(False, MissingCapability(bits_left=pivot_depth))
    new_src_cap = update_cap_data(True, src_new_data, src.cap)
    new_pivot_cap = update_cap_data(True, pivot_new_data, pivot.cap)
    if new_src_cap.is_null or new_pivot_cap.is_null:
        raise IllegalOperation()
    if kernel.config.cap_pages and (  # capsule's cap pages (not seL4): both slots change
            path_restrictions(kernel, src_root, src_index, src_depth)[0]
            or path_restrictions(kernel, pivot_root, pivot_index, pivot_depth)[0]):
        raise IllegalOperation()
    return CNodeRotate(new_src_cap, new_pivot_cap, src, pivot, dest)


# --- perform --------------------------------------------------------------------------
# One function per record (registered in kernel.entry.dispatch.PERFORMERS); each cannot
# fail and returns the reply words of success, always none.


def perform_insert(kernel: KernelState, inv: CNodeInsert) -> list[int]:
    """Copy / Mint: ``new_cap`` into ``dest`` as a CDT child of ``src``."""
    cdt.insert(inv.new_cap, inv.src, inv.dest)
    return []


def perform_move(kernel: KernelState, inv: CNodeMove) -> list[int]:
    """Move / Mutate: ``src``'s cap (as ``new_cap``) and CDT position to ``dest``."""
    cdt.move(inv.new_cap, inv.src, inv.dest)
    return []


def perform_rotate(kernel: KernelState, inv: CNodeRotate) -> list[int]:
    """Rotate: pivot -> dest, then src -> pivot (a swap when src is dest)."""
    if inv.src is inv.dest:
        cdt.swap(inv.new_src_cap, inv.src, inv.new_pivot_cap, inv.pivot)
    else:
        cdt.move(inv.new_pivot_cap, inv.pivot, inv.dest)
        cdt.move(inv.new_src_cap, inv.src, inv.pivot)
    return []


def perform_revoke(kernel: KernelState, inv: CNodeRevoke) -> list[int]:
    """Revoke: delete every CDT descendant of ``target``."""
    revoke(kernel, inv.target)
    return []


def perform_delete(kernel: KernelState, inv: CNodeDelete) -> list[int]:
    """Delete: empty ``target`` (finalising the object with its last cap)."""
    delete(kernel, inv.target)
    return []


def perform_cancel_badged_sends(kernel: KernelState, inv: CNodeCancelBadgedSends) -> list[int]:
    """CancelBadgedSends: unblock the senders queued with the endpoint cap's badge."""
    ep = kernel.objects.get(inv.endpoint.paddr)
    if isinstance(ep, Endpoint):  # hand-made caps in tests may name nothing
        cancel_badged_sends(kernel, ep, inv.endpoint.badge)
    return []


def perform_save_caller(kernel: KernelState, inv: CNodeSaveCaller) -> list[int]:
    """Non-MCS SaveCaller: move the current thread's caller (reply) cap to ``dest``.

    An empty caller slot leaves everything as it is (still a success).
    """
    assert kernel.current is not None
    caller_slot = kernel.current.slots[CALLER]
    cap = caller_slot.cap
    if isinstance(cap, ReplyCap):
        if not cap.is_master:
            cdt.move(cap, caller_slot, inv.dest)
    elif not cap.is_null:
        raise KernelBug("caller slot holds neither a reply cap nor nothing")
    return []
