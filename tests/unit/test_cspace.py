"""CSpace addressing on the fake machine: resolve_address_bits and the CNode-op lookups.

Expected values follow abi/objects.md ("CSpace addressing") and errors.md (lookup
failure fields). Multi-level CSpaces are built by hand (tests/abi/cnode_fixtures.py).
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.cspace.lookup import (
    lookup_pivot_slot,
    lookup_source_slot,
    lookup_target_slot,
    resolve_address_bits,
)
from kernel.model.caps import CNodeCap, EndpointCap, ThreadCap
from kernel.model.cnode import CNode
from kernel.model.errors import DepthMismatch, FailedLookup, GuardMismatch, InvalidRoot, RangeError
from tests.abi.cnode_fixtures import World


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def node_of(w: World, cap: CNodeCap) -> CNode:
    node = w.kernel.objects[cap.paddr]
    assert isinstance(node, CNode)
    return node


def test_root_cnode_resolves_a_plain_slot_number_at_depth_64(world: World) -> None:
    root = world.kernel.current.ctable.cap  # type: ignore[union-attr]
    assert resolve_address_bits(world.kernel, root, 5, 64) == (world.slots[5], 0)


def test_not_a_cnode_is_invalid_root(world: World) -> None:
    assert resolve_address_bits(world.kernel, ThreadCap(0), 5, 64) == InvalidRoot()


@pytest.mark.parametrize(("cptr", "depth", "failure"), [
    (1 << 63, 64, GuardMismatch(bits_left=64, guard_found=0, bits_found=52)),
    (1 << 12, 64, GuardMismatch(bits_left=64, guard_found=0, bits_found=52)),
    (5, 12, GuardMismatch(bits_left=12, guard_found=0, bits_found=52)),  # guard > depth
    (5, 60, DepthMismatch(bits_left=60, bits_found=64)),  # guard fits, level does not
    (0, 52, DepthMismatch(bits_left=52, bits_found=64)),  # exactly the guard
])
def test_root_failures(world: World, cptr: int, depth: int, failure: object) -> None:
    root = world.kernel.current.ctable.cap  # type: ignore[union-attr]
    assert resolve_address_bits(world.kernel, root, cptr, depth) == failure


def two_levels(w: World, l2_guard_size: int = 0, l2_guard: int = 0) -> tuple[CNodeCap, CNode]:
    """Root: 8-bit radix, no guard. Slot 20 -> a 4-bit CNode with the given guard."""
    root = w.cnode_cap(8)
    l2 = w.cnode_cap(4, l2_guard_size, l2_guard)
    w.put(node_of(w, root).slots[20], l2)
    return root, node_of(w, l2)


def test_two_level_lookup(world: World) -> None:
    root, l2 = two_levels(world)
    assert resolve_address_bits(world.kernel, root, (20 << 4) | 9, 12) == (l2.slots[9], 0)
    # 8 bits stop at the CNode cap's own slot
    slot, left = resolve_address_bits(world.kernel, root, 20, 8)  # type: ignore[misc]
    assert left == 0 and isinstance(slot.cap, CNodeCap)


def test_stops_at_a_non_cnode_with_bits_left(world: World) -> None:
    root, l2 = two_levels(world)
    world.put(l2.slots[9], EndpointCap(world.alloc(4)))
    cptr = (((20 << 4) | 9) << 6) | 0x2A  # 6 bits more than the CSpace resolves
    assert resolve_address_bits(world.kernel, root, cptr, 18) == (l2.slots[9], 6)
    # an empty slot is not a CNode either
    assert resolve_address_bits(world.kernel, root, (7 << 4), 12) == (node_of(world, root).slots[7], 4)


def test_guard_at_the_second_level(world: World) -> None:
    root, l2 = two_levels(world, l2_guard_size=3, l2_guard=0b101)
    good = (20 << 7) | (0b101 << 4) | 2
    assert resolve_address_bits(world.kernel, root, good, 15) == (l2.slots[2], 0)
    bad = (20 << 7) | (0b100 << 4) | 2
    assert resolve_address_bits(world.kernel, root, bad, 15) == GuardMismatch(7, 0b101, 3)
    # guard fits in the 2 bits left? no: guard size 3 > 2 bits left
    assert resolve_address_bits(world.kernel, root, 20 << 2, 10) == GuardMismatch(2, 0b101, 3)
    # guard matches but the radix does not fit in what is left
    assert resolve_address_bits(world.kernel, root, (20 << 5) | (0b101 << 2), 13) == \
        DepthMismatch(bits_left=5, bits_found=7)


def test_one_bit_cnode(world: World) -> None:
    root = world.cnode_cap(1)
    node = node_of(world, root)
    assert resolve_address_bits(world.kernel, root, 1, 1) == (node.slots[1], 0)
    assert resolve_address_bits(world.kernel, root, 0, 1) == (node.slots[0], 0)


def test_sixty_four_bit_guard_and_radix(world: World) -> None:
    guard = (1 << 63) - 1  # 63 guard bits of ones and a 1-bit radix
    root = CNodeCap(world.cnode(1).paddr, 1, 63, guard)
    node = node_of(world, root)
    assert resolve_address_bits(world.kernel, root, (guard << 1) | 1, 64) == (node.slots[1], 0)
    assert resolve_address_bits(world.kernel, root, 1, 64) == GuardMismatch(64, guard, 63)


# --- CNode-operation lookups -----------------------------------------------------------

LOOKUPS = [(lookup_target_slot, False), (lookup_source_slot, True), (lookup_pivot_slot, True)]


@pytest.mark.parametrize(("lookup", "was_source"), LOOKUPS, ids=["target", "source", "pivot"])
def test_cnode_op_lookup_errors(world: World, lookup, was_source: bool) -> None:  # type: ignore[no-untyped-def]
    k = world.kernel
    root = k.current.ctable.cap  # type: ignore[union-attr]
    for depth in (0, 65, 1 << 63):
        with pytest.raises(RangeError) as err:
            lookup(k, root, 5, depth)
        assert err.value.words() == [1, 64]
    # the root is checked before the depth
    with pytest.raises(FailedLookup) as failed:
        lookup(k, ThreadCap(0), 5, 0)
    assert (failed.value.was_source, failed.value.failure) == (was_source, InvalidRoot())
    with pytest.raises(FailedLookup) as failed:
        lookup(k, root, 1 << 63, 64)
    assert failed.value.words() == [int(was_source), 4, 64, 0, 52]
    # a lookup that stops early is a depth mismatch with bits_found 0
    two_root, l2 = two_levels(world)
    world.put(l2.slots[9], EndpointCap(world.alloc(4)))
    with pytest.raises(FailedLookup) as failed:
        lookup(k, two_root, ((20 << 4) | 9) << 3, 15)
    assert failed.value.failure == DepthMismatch(bits_left=3, bits_found=0)
    # exact depth: the (possibly empty) slot
    assert lookup(k, two_root, (20 << 4) | 3, 12) is l2.slots[3]
    assert lookup(k, root, 4095, 64) is world.slots[4095]
