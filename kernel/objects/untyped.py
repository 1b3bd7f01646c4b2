"""Untyped memory: seL4_Untyped_Retype, decoded and performed.

An untyped cap owns ``2^size_bits`` bytes at ``paddr``; its ``free_index`` (in 16-byte
units) marks how much has been handed out. Retype carves objects from the free part,
in order, aligned to their size, and puts their caps into empty slots of a CNode as CDT
children of the untyped (abi/objects.md, "Untyped Retype rules").

Invariants:
- objects created from an untyped lie in ``[paddr + 0, paddr + free_index * 16)``;
- the untyped's bytes above ``free_index * 16`` are zero (non-device);
- an untyped without CDT children owns no live object, so the next retype may reset it:
  free index back to 0, the used part zeroed (seL4's resetUntypedCap).
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import (
    MIN_SCHED_CONTEXT_BITS,
    MIN_UNTYPED_BITS,
    RETYPE_FAN_OUT_LIMIT,
    WORD_BITS,
)
from kernel.abi.labels import label_table
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import has_children, insert_child
from kernel.cspace.lookup import lookup_target_slot
from kernel.model.caps import CNodeCap, UntypedCap
from kernel.model.cnode import CNode
from kernel.model.errors import (
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    InvalidArgument,
    KernelBug,
    MissingCapability,
    NotEnoughMemory,
    RangeError,
    TruncatedMessage,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.retype import (
    Kind,
    ObjectType,
    create_object,
    object_size_bits,
    object_types,
    purge_region,
    zero_phys,
)
from kernel.records import dataclass

__all__ = [
    "RetypeInvocation",
    "decode_untyped_invocation",
    "perform_retype",
    "reset_untyped",
    "untyped_free_bytes",
]

# Read at every retype: module constants, as reading an Enum member through its class
# costs several times a global's lookup (Python 3.11).
_UNTYPED: Final = Kind.UNTYPED
_SCHED_CONTEXT: Final = Kind.SCHED_CONTEXT
_CAP_TABLE: Final = Kind.CAP_TABLE
_FRAME: Final = Kind.FRAME

_RETYPE_ARGS: Final = 6


@dataclass(frozen=True, slots=True)
class RetypeInvocation:
    """A validated Retype, ready to perform (seL4's ``Retype`` record).

    ``start`` is the physical address of the first object (the free pointer aligned up
    to the object size); ``reset`` says the untyped had no children, so it is reset
    before the objects are created.
    """

    untyped_slot: Slot
    reset: bool
    start: int
    otype: ObjectType
    user_size: int
    dest_slots: tuple[Slot, ...]
    is_device: bool

    def __init__(self, untyped_slot: Slot, reset: bool, start: int, otype: ObjectType,
                 user_size: int, dest_slots: tuple[Slot, ...], is_device: bool) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "untyped_slot", untyped_slot)
        object.__setattr__(self, "reset", reset)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "otype", otype)
        object.__setattr__(self, "user_size", user_size)
        object.__setattr__(self, "dest_slots", dest_slots)
        object.__setattr__(self, "is_device", is_device)


def decode_untyped_invocation(
    kernel: KernelState, slot: Slot, invocation: InvocationArgs
) -> RetypeInvocation:
    """Validate an invocation of the untyped cap in ``slot``; return the Retype to perform.

    Checks, in seL4's order (abi/objects.md, "Untyped Retype rules" 1-11): label,
    length and extra cap, type, size, destination CNode, offset and window, empty
    destination slots, free memory, device restrictions. Never changes kernel state.

    Raises: IllegalOperation, TruncatedMessage, InvalidArgument(0|1), RangeError,
    FailedLookup (source=False), DeleteFirst, NotEnoughMemory(bytes available).
    """
    cap = slot.cap
    if not isinstance(cap, UntypedCap):
        raise KernelBug("decode_untyped_invocation on a non-untyped cap")
    if invocation.label != label_table(kernel.arch, kernel.config.mcs)["UntypedRetype"]:
        raise IllegalOperation()
    args, extra = invocation.words, invocation.extra
    if len(args) < _RETYPE_ARGS or not extra:
        raise TruncatedMessage()
    new_type, user_size, node_index, node_depth, node_offset, node_window = args[:_RETYPE_ARGS]
    root = extra[0].cap

    types = object_types(kernel.arch, kernel.tcb_bits, kernel.config.checkpoint_object,
                         kernel.config.cap_pages, kernel.config.mcs)
    if new_type not in types:
        raise InvalidArgument(0)
    otype = types[new_type]
    max_bits = kernel.abi.max_untyped_bits
    obj_bits = object_size_bits(otype, user_size)
    if user_size >= WORD_BITS or obj_bits > max_bits:
        raise RangeError(0, max_bits)
    kind = otype.kind
    if kind is _CAP_TABLE and user_size == 0:
        # A single-slot CNode could make capability lookup loop forever.
        raise InvalidArgument(1)
    if kind is _UNTYPED and user_size < MIN_UNTYPED_BITS:
        raise InvalidArgument(1)
    if kind is _SCHED_CONTEXT and user_size < MIN_SCHED_CONTEXT_BITS:
        raise InvalidArgument(1)

    dest = root if node_depth == 0 else lookup_target_slot(
        kernel, root, node_index, node_depth
    ).cap
    if not isinstance(dest, CNodeCap):
        raise FailedLookup(False, MissingCapability(bits_left=node_depth))
    node_size = 1 << dest.radix
    if node_offset > node_size - 1:
        raise RangeError(0, node_size - 1)
    if node_window < 1 or node_window > RETYPE_FAN_OUT_LIMIT:
        raise RangeError(1, RETYPE_FAN_OUT_LIMIT)
    if node_window > node_size - node_offset:
        raise RangeError(1, node_size - node_offset)
    cnode = kernel.object_at(dest.paddr, CNode)
    dest_slots = cnode.slots.window(node_offset, node_window)
    if any(not s.is_empty for s in dest_slots):
        raise DeleteFirst()

    reset = not has_children(kernel, slot)
    free_index = 0 if reset else cap.free_index
    free_bytes = (1 << cap.size_bits) - (free_index << MIN_UNTYPED_BITS)
    if (free_bytes >> obj_bits) < node_window:
        raise NotEnoughMemory(free_bytes)
    if cap.is_device and kind is not _FRAME and kind is not _UNTYPED:
        raise InvalidArgument(1)
    free_ref = cap.paddr + (free_index << MIN_UNTYPED_BITS)
    start = -(-free_ref >> obj_bits) << obj_bits
    return RetypeInvocation(slot, reset, start, otype, user_size, dest_slots, cap.is_device)


def reset_untyped(kernel: KernelState, slot: Slot) -> None:
    """Give the childless untyped in ``slot`` all its memory back (seL4's resetUntypedCap).

    Zeroes the used part (non-device), drops the state of the dead objects there and
    sets the free index to 0. seL4 may preempt this between 256-byte chunks; capsule
    takes no interrupt inside the kernel, so it always completes at once.
    """
    cap = slot.cap
    assert isinstance(cap, UntypedCap)
    used = cap.free_index << MIN_UNTYPED_BITS
    if used == 0:
        return
    purge_region(kernel, cap.paddr, 1 << cap.size_bits)
    if not cap.is_device:
        zero_phys(kernel.machine, cap.paddr, used)
    slot.cap = cap.with_free_index(0)


def perform_retype(kernel: KernelState, inv: RetypeInvocation) -> list[int]:
    """Create the objects of ``inv`` and their caps; returns the (empty) reply words.

    Postconditions: the untyped's free index is just past the last object; slot
    ``dest_slots[i]`` holds the cap of the object at ``start + i * size`` as a
    revocable, first-badged CDT child of the untyped.
    """
    if inv.reset:
        reset_untyped(kernel, inv.untyped_slot)
    cap = inv.untyped_slot.cap
    assert isinstance(cap, UntypedCap)
    size = 1 << object_size_bits(inv.otype, inv.user_size)
    end = inv.start + len(inv.dest_slots) * size
    # A new untyped covering the whole region leaves the parent full: seL4 computes the
    # free index the same way for every type, so no special case is needed.
    inv.untyped_slot.cap = cap.with_free_index((end - cap.paddr) >> MIN_UNTYPED_BITS)
    for i, dest in enumerate(inv.dest_slots):
        new_cap = create_object(
            kernel, inv.otype, inv.start + i * size, inv.user_size, inv.is_device
        )
        insert_child(inv.untyped_slot, dest, new_cap, revocable=True)
    return []


def untyped_free_bytes(kernel: KernelState) -> dict[int, int]:
    """Free bytes of every untyped in a CNode, by physical address (for leak checks).

    A childless untyped counts as wholly free: its next retype resets it. Where several
    untyped caps share an address (a first child at its parent's base, or a copy), the
    largest region wins, and among equal ones the most free.
    """
    best: dict[int, tuple[int, int]] = {}
    for obj in kernel.objects.values():
        if not isinstance(obj, CNode):
            continue
        for slot in obj.slots:
            cap = slot.cap
            if not isinstance(cap, UntypedCap):
                continue
            free = cap.free_bytes
            if not has_children(kernel, slot):
                free = 1 << cap.size_bits
            key = (cap.size_bits, free)
            if cap.paddr not in best or key > best[cap.paddr]:
                best[cap.paddr] = key
    return {paddr: free for paddr, (_, free) in best.items()}
