"""seL4's zombies (finaliseSlot / reduceZombie): a CNode or TCB whose last cap goes while
its container is destroyed is left as a zombie in its own first slot, still a child of its
untyped, until the untyped is revoked.

The scenario: CNode A (from untyped UA) holds the last cap to CNode B (from untyped UB) in
its slot 1. B holds two copies of an endpoint cap, in slots 0 and 2. Deleting the last cap
to A destroys A; B becomes a zombie in B[0] (B[0]'s copy is deleted in A[1] instead) and
B[2] keeps its copy. UB still has a child, so a retype from it does not reset it.
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.cspace.cdt import has_children
from kernel.model.caps import CNodeCap, ThreadCap, UntypedCap, ZombieCap
from kernel.model.cnode import CNode
from kernel.model.tcb import TCB, ThreadState
from kernel.views.invariants import check_all
from tests.abi.support import CNODE, System

RADIX = 4


def _copy(s: System, node: int, index: int, depth: int, src: int) -> None:
    reply = s.call(node, s.label("CNodeCopy"), [index, depth, src, 64, 0xF], extra=[CNODE])
    assert reply.label == 0, reply


def _cnode(s: System, untyped: int) -> tuple[int, CNode]:
    slot = s.free_slots(1)
    assert s.retype(untyped, s.otype("seL4_CapTableObject"), RADIX, slot, 1).label == 0
    return slot, s.kernel.object_at(s.cap(slot).object_paddr, CNode)  # type: ignore[arg-type]


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def s(request: pytest.FixtureRequest) -> System:
    return System(request.param)


def _world(s: System) -> tuple[int, int, CNode, CNode, int]:
    """A, B and the endpoint as the module docstring says; returns (UB, A's slot, A, B,
    the endpoint's slot)."""
    ua, ub = s.ram_untyped(13), s.ram_untyped(12)
    a_slot, a = _cnode(s, ua)
    b_slot, b = _cnode(s, ub)
    ep = s.free_slots(1)
    assert s.retype(ub, s.otype("seL4_EndpointObject"), 0, ep, 1).label == 0
    _copy(s, b_slot, 0, RADIX, ep)
    _copy(s, b_slot, 2, RADIX, ep)
    move = s.call(a_slot, s.label("CNodeMove"), [1, RADIX, b_slot, 64], extra=[CNODE])
    assert move.label == 0, move
    return ub, a_slot, a, b, ep


def test_deleting_the_container_leaves_a_zombie_in_the_first_slot(s: System) -> None:
    ub, a_slot, a, b, ep = _world(s)
    assert s.call(CNODE, s.label("CNodeDelete"), [a_slot, 64]).label == 0
    assert b.slots[0].cap == ZombieCap(b.paddr, RADIX)
    assert b.slots[2].cap == s.cap(ep)  # B's other slots are not touched
    assert a.slots[1].is_empty  # B[0]'s copy went through A[1] and was deleted there
    assert has_children(s.kernel, s.slots[ub])  # B's memory is still in use
    check_all(s.kernel)


def test_a_retype_from_that_untyped_does_not_reset_it(s: System) -> None:
    ub, a_slot, _, _, ep = _world(s)
    assert s.call(CNODE, s.label("CNodeDelete"), [a_slot, 64]).label == 0
    assert s.call(CNODE, s.label("CNodeDelete"), [ep, 64]).label == 0
    cap = s.cap(ub)
    assert isinstance(cap, UntypedCap)
    free_before = cap.free_bytes
    slot = s.free_slots(1)
    assert s.retype(ub, s.otype("seL4_EndpointObject"), 0, slot, 1).label == 0
    after = s.cap(ub)
    assert isinstance(after, UntypedCap) and after.free_bytes == free_before - 16


def test_revoking_the_untyped_deletes_the_zombie_and_what_it_kept(s: System) -> None:
    ub, a_slot, _, b, ep = _world(s)
    assert s.call(CNODE, s.label("CNodeDelete"), [a_slot, 64]).label == 0
    assert s.call(CNODE, s.label("CNodeRevoke"), [ub, 64]).label == 0
    assert b.slots[0].is_empty and b.slots[2].is_empty and s.slots[ep].is_empty
    assert not has_children(s.kernel, s.slots[ub])
    check_all(s.kernel)


def test_a_thread_whose_last_cap_goes_with_its_container_is_stopped_and_a_zombie(
        s: System) -> None:
    a_slot, a = _cnode(s, s.ram_untyped(13))
    t = s.free_slots(1)
    assert s.retype(s.ram_untyped(12), s.otype("seL4_TCBObject"), 0, t, 1).label == 0
    tcb = s.kernel.object_at(s.cap(t).object_paddr, TCB)  # type: ignore[arg-type]
    assert isinstance(s.cap(t), ThreadCap)
    move = s.call(a_slot, s.label("CNodeMove"), [3, RADIX, t, 64], extra=[CNODE])
    assert move.label == 0, move
    assert s.call(CNODE, s.label("CNodeDelete"), [a_slot, 64]).label == 0
    assert tcb.state is ThreadState.INACTIVE
    assert tcb.slots[0].cap == ZombieCap(tcb.paddr)
    check_all(s.kernel)


def test_a_cnode_that_holds_a_cap_to_itself_outlives_its_container(s: System) -> None:
    """The container's cap to it is not the last one (its own slot 0 holds another), so
    destroying the container deletes that cap only: the CNode stays whole, unreachable,
    until its untyped is revoked (as on seL4)."""
    outer_slot, outer = _cnode(s, s.ram_untyped(13))
    inner_untyped = s.ram_untyped(12)
    inner_slot, inner = _cnode(s, inner_untyped)
    _copy(s, inner_slot, 0, RADIX, inner_slot)
    move = s.call(outer_slot, s.label("CNodeMove"), [5, RADIX, inner_slot, 64], extra=[CNODE])
    assert move.label == 0, move
    assert s.call(CNODE, s.label("CNodeDelete"), [outer_slot, 64]).label == 0
    assert isinstance(inner.slots[0].cap, CNodeCap) and outer.slots[5].is_empty
    check_all(s.kernel)
    assert s.call(CNODE, s.label("CNodeRevoke"), [inner_untyped, 64]).label == 0
    assert inner.slots[0].is_empty and not has_children(s.kernel, s.slots[inner_untyped])
