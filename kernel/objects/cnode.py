"""CNode invocations (seL4_CNode_*); the object itself is :class:`kernel.model.cnode.CNode`.

Invocations follow the decode/perform split (STYLE.md Synthesis 1):
:func:`decode_cnode_invocation` validates in seL4's order and returns one of the frozen
records below, or raises a :class:`~kernel.model.errors.SyscallError`, changing nothing;
:func:`perform_cnode_invocation` applies a record and cannot fail.

Decode order (every method): label in CNodeRevoke..CNodeSaveCaller else
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

from dataclasses import dataclass
from functools import partial

from kernel.abi.labels import label_table
from kernel.core.ipc import cancel_badged_sends
from kernel.cspace import cdt
from kernel.cspace.arguments import Performer, extra_cap_slots, message_args
from kernel.cspace.cdt import derive_cap
from kernel.cspace.derive import has_cancel_send_rights, mask_cap_rights, update_cap_data
from kernel.cspace.lookup import lookup_pivot_slot, lookup_source_slot, lookup_target_slot
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
from kernel.model.message import MessageInfo
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER
from kernel.objects.deletion import delete, revoke

__all__ = [
    "CNodeCancelBadgedSends",
    "CNodeDelete",
    "CNodeInsert",
    "CNodeInvocation",
    "CNodeMove",
    "CNodeRevoke",
    "CNodeRotate",
    "CNodeSaveCaller",
    "decode_cnode_invocation",
    "perform_cnode_invocation",
]


# --- decoded invocations --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class CNodeRevoke:
    target: Slot


@dataclass(frozen=True, slots=True, eq=False)
class CNodeDelete:
    target: Slot


@dataclass(frozen=True, slots=True, eq=False)
class CNodeCancelBadgedSends:
    endpoint: EndpointCap


@dataclass(frozen=True, slots=True, eq=False)
class CNodeInsert:
    """Copy or Mint: ``new_cap`` goes to ``dest`` as a child of ``src``."""

    new_cap: Cap
    src: Slot
    dest: Slot


@dataclass(frozen=True, slots=True, eq=False)
class CNodeMove:
    """Move or Mutate: ``src``'s cap (as ``new_cap``) and tree position go to ``dest``."""

    new_cap: Cap
    src: Slot
    dest: Slot


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


def _ensure_empty(slot: Slot) -> None:
    if not slot.is_empty:
        raise DeleteFirst()


def decode_cnode_invocation(
    kernel: KernelState, slot: Slot, info: MessageInfo, window: list[int]
) -> Performer:
    """Decode an invocation of the CNode cap in ``slot`` (order in the module docstring).

    Returns the performer; raises SyscallError. Changes no state.
    """
    # Imported here: these modules import this one (for CNode) at load time.

    caller = kernel.current
    assert caller is not None
    labels = label_table(kernel.arch, kernel.config.mcs)
    name = _METHODS.get(info.label - labels["CNodeRevoke"])
    if name is None or info.label > labels[_LAST[kernel.config.mcs]]:
        raise IllegalOperation()
    args = message_args(kernel, caller, info, window)
    if len(args) < 2:
        raise TruncatedMessage()
    dest = lookup_target_slot(kernel, slot.cap, args[0], args[1])
    inv: CNodeInvocation

    if name in ("Copy", "Mint", "Move", "Mutate"):
        extra = extra_cap_slots(kernel, caller, info)
        if len(args) < 4 or not extra:
            raise TruncatedMessage()
        src_depth = args[3]
        _ensure_empty(dest)
        src = lookup_source_slot(kernel, extra[0].cap, args[2], src_depth)
        if src.is_empty:
            raise FailedLookup(True, MissingCapability(bits_left=src_depth))
        new_cap: Cap
        if name == "Copy":
            if len(args) < 5:
                raise TruncatedMessage()
            new_cap = derive_cap(kernel, src, mask_cap_rights(Rights.from_word(args[4]), src.cap))
        elif name == "Mint":
            if len(args) < 6:
                raise TruncatedMessage()
            masked = mask_cap_rights(Rights.from_word(args[4]), src.cap)
            new_cap = derive_cap(kernel, src, update_cap_data(False, args[5], masked))
        elif name == "Move":
            new_cap = src.cap
        else:
            if len(args) < 5:
                raise TruncatedMessage()
            new_cap = update_cap_data(True, args[4], src.cap)
        if new_cap.is_null:
            raise IllegalOperation()
        inv = (CNodeInsert(new_cap, src, dest) if name in ("Copy", "Mint")
               else CNodeMove(new_cap, src, dest))
    elif name == "Revoke":
        inv = CNodeRevoke(dest)
    elif name == "Delete":
        inv = CNodeDelete(dest)
    elif name == "SaveCaller":
        _ensure_empty(dest)
        inv = CNodeSaveCaller(dest)
    elif name == "CancelBadgedSends":
        cap = dest.cap
        if not has_cancel_send_rights(cap):
            raise IllegalOperation()
        assert isinstance(cap, EndpointCap)
        inv = CNodeCancelBadgedSends(cap)
    else:
        inv = _decode_rotate(kernel, extra_cap_slots(kernel, caller, info), args, dest)
    return partial(_perform_and_reply, kernel, inv)


def _decode_rotate(kernel: KernelState, extra: list[Slot], args: list[int],
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
    return CNodeRotate(new_src_cap, new_pivot_cap, src, pivot, dest)


_METHODS: dict[int, str] = dict(enumerate((
    "Revoke", "Delete", "CancelBadgedSends", "Copy", "Mint", "Move", "Mutate", "Rotate",
    "SaveCaller",
)))
"""CNode methods by offset from the CNodeRevoke label (they are numbered in a row)."""

_LAST = {False: "CNodeSaveCaller", True: "CNodeRotate"}
"""The last CNode label: SaveCaller does not exist in the MCS configuration."""


# --- perform --------------------------------------------------------------------------


def perform_cnode_invocation(kernel: KernelState, inv: CNodeInvocation) -> None:
    """Apply a decoded CNode invocation. Cannot fail."""

    match inv:
        case CNodeInsert(new_cap, src, dest):
            cdt.insert(new_cap, src, dest)
        case CNodeMove(new_cap, src, dest):
            cdt.move(new_cap, src, dest)
        case CNodeRotate(new_src_cap, new_pivot_cap, src, pivot, dest):
            if src is dest:
                cdt.swap(new_src_cap, src, new_pivot_cap, pivot)
            else:
                cdt.move(new_pivot_cap, pivot, dest)
                cdt.move(new_src_cap, src, pivot)
        case CNodeRevoke(target):
            revoke(kernel, target)
        case CNodeDelete(target):
            delete(kernel, target)
        case CNodeSaveCaller(dest):
            _save_caller(kernel, dest)
        case CNodeCancelBadgedSends(endpoint):

            ep = kernel.objects.get(endpoint.paddr)
            if isinstance(ep, Endpoint):  # hand-made caps in tests may name nothing
                cancel_badged_sends(kernel, ep, endpoint.badge)


def _save_caller(kernel: KernelState, dest: Slot) -> None:
    """Non-MCS SaveCaller: move the current thread's caller (reply) cap to ``dest``.

    An empty caller slot leaves everything as it is (still a success).
    """

    assert kernel.current is not None
    caller_slot = kernel.current.slots[CALLER]
    cap = caller_slot.cap
    if isinstance(cap, ReplyCap):
        if not cap.is_master:
            cdt.move(cap, caller_slot, dest)
    elif not cap.is_null:
        raise KernelBug("caller slot holds neither a reply cap nor nothing")


def _perform_and_reply(kernel: KernelState, inv: CNodeInvocation) -> list[int] | None:
    """Perform, then answer an empty success reply if the caller still runs.

    A caller that suspended itself (deleting the last cap to its own TCB) gets no
    reply, as on seL4, where only a thread still in Restart state is answered.
    """
    caller = kernel.current
    perform_cnode_invocation(kernel, inv)
    if caller is None or not caller.state.runnable:
        return None
    return []
