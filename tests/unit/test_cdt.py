"""The capability derivation tree: insert, move, swap, delete, revoke and the parent rules."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.cspace.cdt import (
    descendants,
    first_child,
    has_children,
    insert,
    insert_child,
    is_final,
    is_mdb_parent_of,
    move,
    swap,
)
from kernel.model.caps import EndpointCap, NotificationCap, ThreadCap, UntypedCap, ZombieCap
from kernel.model.cnode import CNode
from kernel.model.errors import KernelBug
from kernel.model.slot import Slot
from kernel.model.tcb import ThreadState
from kernel.objects.deletion import delete, revoke
from kernel.views.invariants import check_all
from tests.abi.cnode_fixtures import World


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


def chain(first: Slot) -> list[Slot]:
    out: list[Slot] = []
    node: Slot | None = first
    while node is not None:
        out.append(node)
        node = node.mdb_next
    return out


def test_insert_places_the_child_right_after_its_source(world: World) -> None:
    s = world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    insert(ep.cap, ep, s[4001])
    insert(EndpointCap(ep.cap.paddr, badge=3), ep, s[4002])  # type: ignore[attr-defined]
    assert chain(ep) == [ep, s[4002], s[4001]]
    assert not s[4001].revocable and s[4002].revocable and s[4002].first_badged
    check_all(world.kernel)


def test_insert_into_a_full_slot_is_a_kernel_bug(world: World) -> None:
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    with pytest.raises(KernelBug):
        insert(ep.cap, ep, world.slots[1])


def test_badge_parent_rules(world: World) -> None:
    k, s = world.kernel, world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    insert(EndpointCap(ep.cap.paddr, badge=5), ep, s[4001])  # type: ignore[attr-defined]
    insert(s[4001].cap, s[4001], s[4002])  # copy of the badged cap
    assert is_mdb_parent_of(k, ep, s[4001])  # badge 0: parent of everything derived
    assert is_mdb_parent_of(k, s[4001], s[4002])  # same badge, not first-badged
    assert list(descendants(k, ep)) == [s[4001], s[4002]]
    # a cap of the same badge that starts its own badge run is not a child
    s[4002].first_badged = True
    assert not is_mdb_parent_of(k, s[4001], s[4002])
    # the other badge does not belong to badge 5
    ntfn = world.put(4010, NotificationCap(world.alloc(5), badge=1))
    insert(NotificationCap(ntfn.cap.paddr, badge=2), ntfn, s[4011])  # type: ignore[attr-defined]
    assert not is_mdb_parent_of(k, ntfn, s[4011])


def test_untyped_children_and_has_children(world: World) -> None:
    k, s = world.kernel, world.slots
    base = world.alloc(12)
    ut = world.put(4000, UntypedCap(base, 12, free_index=256))
    insert_child(ut, s[4001], EndpointCap(base), revocable=True)
    insert_child(ut, s[4002], NotificationCap(base + 32), revocable=True)
    assert has_children(k, ut) and first_child(k, ut) is s[4002]
    delete(k, s[4002])
    assert has_children(k, ut)
    delete(k, s[4001])  # the last child goes: the untyped may reset
    assert not has_children(k, ut) and first_child(k, ut) is None


def test_untyped_copy_marks_the_source_full(world: World) -> None:
    ut = world.put(4000, UntypedCap(world.alloc(12), 12))
    insert(ut.cap, ut, world.slots[4001])
    assert ut.cap.free_index == 256  # type: ignore[attr-defined]
    assert world.slots[4001].revocable and has_children(world.kernel, ut)


def test_move_keeps_position_and_bits(world: World) -> None:
    s = world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    insert(EndpointCap(ep.cap.paddr, badge=1), ep, s[4001])  # type: ignore[attr-defined]
    insert(s[4001].cap, s[4001], s[4002])
    move(s[4001].cap, s[4001], s[4005])
    assert chain(ep) == [ep, s[4005], s[4002]]
    assert s[4005].revocable and s[4005].first_badged
    assert s[4001].is_empty and not s[4001].revocable and s[4001].mdb_next is None
    check_all(world.kernel)


@pytest.mark.parametrize("order", ["adjacent", "reverse-adjacent", "apart"])
def test_swap(world: World, order: str) -> None:
    s = world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    for i in (4001, 4002, 4003):
        insert(ep.cap, ep, s[i])
    a, b = {"adjacent": (s[4003], s[4002]), "reverse-adjacent": (s[4002], s[4003]),
            "apart": (s[4003], s[4001])}[order]
    before = chain(ep)
    cap_a, cap_b = a.cap, b.cap
    a.revocable = True  # to see the bits travel
    swap(cap_a, a, cap_b, b)
    expected = [b if x is a else a if x is b else x for x in before]
    assert chain(ep) == expected
    assert b.revocable and not a.revocable
    assert (a.cap, b.cap) == (cap_b, cap_a)
    b.revocable = False
    check_all(world.kernel)


def test_delete_propagates_first_badged(world: World) -> None:
    s = world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    insert(EndpointCap(ep.cap.paddr, badge=4), ep, s[4001])  # type: ignore[attr-defined]
    insert(s[4001].cap, s[4001], s[4002])
    delete(world.kernel, s[4001])
    assert s[4002].first_badged and chain(ep) == [ep, s[4002]]


def test_is_final_looks_at_copies(world: World) -> None:
    k, s = world.kernel, world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    assert is_final(k, ep)
    insert(ep.cap, ep, s[4001])
    assert not is_final(k, ep) and not is_final(k, s[4001])


def test_revoke_deletes_grandchildren_and_spares_siblings(world: World) -> None:
    k, s = world.kernel, world.slots
    ep = world.put(4000, EndpointCap(world.alloc(4)))
    other = world.put(4009, EndpointCap(world.alloc(4)))
    insert(ep.cap, ep, s[4001])
    insert(s[4001].cap, s[4001], s[4002])
    # link the unrelated cap after ep's subtree, as a later sibling would be
    s[4002].mdb_next, other.mdb_prev = other, s[4002]
    revoke(k, ep)
    assert s[4001].is_empty and s[4002].is_empty
    assert ep.mdb_next is other and other.mdb_prev is ep and not other.is_empty


def test_final_cnode_delete_is_recursive_and_survives_cycles(world: World) -> None:
    k = world.kernel
    outer = world.put(4000, world.cnode_cap(2))
    outer_node = k.objects[outer.cap.paddr]  # type: ignore[attr-defined]
    assert isinstance(outer_node, CNode)
    inner = world.put(outer_node.slots[1], world.cnode_cap(2))
    inner_node = k.objects[inner.cap.paddr]  # type: ignore[attr-defined]
    world.put(inner_node.slots[0], EndpointCap(world.alloc(4)))
    insert(inner.cap, inner, inner_node.slots[3])  # the inner CNode holds a cap to itself
    delete(k, outer)
    assert all(x.is_empty for x in outer_node.slots)
    # the inner CNode is not final (it holds its own cap): its contents survive
    assert not inner_node.slots[0].is_empty
    check_all(k)


def test_deep_cnode_chain_deletes_without_recursion(world: World) -> None:
    k = world.kernel
    top = world.put(4000, world.cnode_cap(1))
    node = k.objects[top.cap.paddr]  # type: ignore[attr-defined]
    nodes = [node]
    for _ in range(3000):
        slot = world.put(node.slots[0], world.cnode_cap(1))
        node = k.objects[slot.cap.paddr]  # type: ignore[attr-defined]
        nodes.append(node)
    delete(k, top)
    # As seL4: each CNode whose last cap went with the one above is a zombie in its own
    # slot 0 (iteratively, 3000 deep); the top one's slot 0 passed them all on, now empty.
    assert nodes[0].slots[0].is_empty
    assert all(n.slots[0].cap == ZombieCap(n.paddr, 1) for n in nodes[1:])
    check_all(k)


def test_final_tcb_delete_suspends_the_thread(world: World) -> None:
    k = world.kernel
    tcb = world.tcb()
    cap_slot = world.put(4000, ThreadCap(tcb.paddr))
    world.put(tcb.slots[0], world.cnode_cap(2))
    delete(k, cap_slot)
    assert tcb.state is ThreadState.INACTIVE and tcb.paddr not in k.scheduler.queued
    assert all(x.is_empty for x in tcb.slots) and k.threads.get(tcb.paddr) is tcb
    check_all(k)
