"""Capability-space addressing: seL4's resolveAddressBits and the lookups built on it.

Two families (abi/objects.md, "CSpace addressing"):

- implicit lookups (:func:`lookup_slot`, :func:`lookup_cap`; extra caps in
  :mod:`kernel.cspace.arguments`)
  resolve all 64 bits of a CPtr from a thread's CSpace root and may stop early at a
  non-CNode cap. Their failures are *returned* as
  :class:`~kernel.model.errors.LookupFailure` values: the caller makes them cap faults.
- CNode-operation lookups (:func:`lookup_target_slot`, :func:`lookup_source_slot`,
  :func:`lookup_pivot_slot`) resolve exactly ``depth`` bits from a given root and
  *raise* :class:`~kernel.model.errors.FailedLookup` / :class:`~kernel.model.errors.RangeError`,
  which decode functions let through to the caller's reply. The source and pivot
  lookups set the error's ``was_source`` word, the target lookup clears it.
"""

from __future__ import annotations

from kernel.abi.constants import WORD_BITS
from kernel.cspace.restrictions import in_place
from kernel.model.caps import Cap, CNodeCap
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.errors import (
    LOOKUP_FAILURES,
    DepthMismatch,
    FailedLookup,
    GuardMismatch,
    InvalidRoot,
    KernelBug,
    LookupFailure,
    RangeError,
)
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "ServerLookup",
    "lookup_cap",
    "lookup_pivot_slot",
    "lookup_slot",
    "lookup_source_slot",
    "lookup_target_slot",
    "resolve_address_bits",
]


class ServerLookup(Exception):
    """capsule's server-backed CNodes (not seL4): the lookup met an empty slot of a
    server-backed CNode while the system call could still be suspended
    (``KernelState.lookup_phase`` >= 0). Carries what the index request needs; caught
    by the invocation path (``kernel.entry.traversal``), never elsewhere: a lookup
    outside a suspendable phase does not raise it. Decode functions let it through
    (they change nothing, so the system call can restart from its beginning)."""

    def __init__(self, node: int, endpoint: int, badge: int, address: int, bits_left: int,
                 kind: int, slot: int) -> None:
        super().__init__(f"lookup needs the server of CNode {node:#x}")
        self.node = node
        self.endpoint = endpoint
        self.badge = badge
        self.address = address
        self.bits_left = bits_left
        self.kind = kind
        self.slot = slot


def _ask_server(kernel: KernelState, node: CNode, cptr: int, n_bits: int, index: int) -> None:
    """Raise :class:`ServerLookup` if the empty slot ``index`` of ``node`` (reached with
    ``n_bits`` of ``cptr`` unresolved) is to be resolved by the node's server: the node
    is bound to a live endpoint, the lookup may suspend, and the current thread's
    server did not already deny this very lookup. Otherwise return: the lookup goes on
    as through an ordinary CNode."""
    binding = node.server
    phase = kernel.lookup_phase
    current = kernel.current
    if binding is None or phase < 0 or current is None:
        return
    if not isinstance(kernel.objects.get(binding.endpoint), Endpoint):
        return
    address = cptr & ((1 << n_bits) - 1)
    if (node.paddr, address, n_bits) in current.lookup_denied:
        return
    raise ServerLookup(node.paddr, binding.endpoint, binding.badge, address, n_bits, phase,
                       index)


def resolve_address_bits(
    kernel: KernelState, node_cap: Cap, cptr: int, n_bits: int, final_empty_ok: bool = False
) -> tuple[Slot, int] | LookupFailure:
    """Resolve the top ``n_bits`` of ``cptr`` starting at ``node_cap``.

    Returns the slot reached and the number of bits left unresolved (non-zero when the
    walk stopped at a cap that is not a CNode), or the failure (abi/objects.md, "CSpace
    addressing"). Precondition: ``0 <= n_bits <= 64``.

    Raises:
        ServerLookup: only with the server-backed CNode extension, when the walk meets
            an empty slot of a server-backed CNode during a suspendable phase (see
            :func:`_ask_server`); with ``final_empty_ok``, an empty slot where the
            walk ends (a CNode operation's destination) is a result, not a question.
    """
    if not isinstance(node_cap, CNodeCap):
        return InvalidRoot()
    cap = node_cap
    objects = kernel.objects
    while True:
        radix, guard_bits = cap.radix, cap.guard_size
        level = radix + guard_bits
        if guard_bits > n_bits or (
            (cptr >> (n_bits - guard_bits)) & ((1 << guard_bits) - 1) != cap.guard
        ):
            return GuardMismatch(bits_left=n_bits, guard_found=cap.guard, bits_found=guard_bits)
        if level > n_bits:
            return DepthMismatch(bits_left=n_bits, bits_found=level)
        index = (cptr >> (n_bits - level)) & ((1 << radix) - 1)
        node = objects.get(cap.paddr)  # KernelState.object_at, inlined: once per level
        if not isinstance(node, CNode):
            raise KernelBug(f"no CNode at {cap.paddr:#x}")
        slot = node.slots[index]
        if node.server is not None and slot.is_empty and not (final_empty_ok
                                                              and n_bits == level):
            _ask_server(kernel, node, cptr, n_bits, index)
        if n_bits == level:
            return slot, 0
        n_bits -= level
        found = slot.cap
        if not isinstance(found, CNodeCap):
            return slot, n_bits
        cap = found


def lookup_slot(kernel: KernelState, tcb: TCB, cptr: int) -> Slot | LookupFailure:
    """An implicit lookup: all 64 bits of ``cptr`` from ``tcb``'s CSpace root.

    With capsule's capability pages (not seL4), a cap reached through a weak path that
    weakening would change is not usable in place: the slot yielded is then empty
    (:func:`kernel.cspace.restrictions.in_place`)."""
    result = resolve_address_bits(kernel, tcb.ctable.cap, cptr, WORD_BITS)
    if isinstance(result, tuple):
        if kernel.config.cap_pages:
            return in_place(kernel, tcb.ctable.cap, cptr, result[0])
        return result[0]
    return result


def lookup_cap(kernel: KernelState, tcb: TCB, cptr: int) -> Cap | LookupFailure:
    """The cap ``cptr`` names in ``tcb``'s CSpace (a NullCap for an empty slot)."""
    result = lookup_slot(kernel, tcb, cptr)
    if isinstance(result, Slot):
        return result.cap
    return result



def _lookup_for_cnode_op(
    kernel: KernelState, root: Cap, index: int, depth: int, is_source: bool
) -> Slot:
    """seL4's lookupSlotForCNodeOp: resolve exactly ``depth`` bits of ``index``.

    Check order: root is a CNode (InvalidRoot), then 1 <= depth <= 64 (RangeError),
    then resolution; a lookup that stops early at a non-CNode cap with bits left is a
    DepthMismatch with ``bits_found`` 0. The slot returned may be empty.
    """
    if not isinstance(root, CNodeCap):
        raise FailedLookup(is_source, InvalidRoot())
    if not 1 <= depth <= WORD_BITS:
        raise RangeError(1, WORD_BITS)
    result = resolve_address_bits(kernel, root, index, depth, final_empty_ok=not is_source)
    if isinstance(result, LOOKUP_FAILURES):
        raise FailedLookup(is_source, result)
    slot, bits_left = result
    if bits_left:
        raise FailedLookup(is_source, DepthMismatch(bits_left=bits_left, bits_found=0))
    return slot


def lookup_target_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The destination / target slot of a CNode operation (``was_source`` = 0).

    Raises:
        FailedLookup: root not a CNode, or resolution failed or stopped early.
        RangeError(1, 64): ``depth`` outside 1..64.
    """
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=False)


def lookup_source_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The source slot of a CNode operation (``was_source`` = 1); raises as above."""
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=True)


def lookup_pivot_slot(kernel: KernelState, root: Cap, index: int, depth: int) -> Slot:
    """The pivot slot of CNode Rotate: seL4 reports its failures as source ones."""
    return _lookup_for_cnode_op(kernel, root, index, depth, is_source=True)
