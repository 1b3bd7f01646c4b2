"""Structures a guest can build 10,000 deep, and every tool that walks them (DESIGN.md
decision 9: render, invariants, checkpoint, lookup, delete and revoke walk iteratively).

The CSpace here is what a guest makes with Untyped_Retype and CNode_Copy: a CNode of
2^14 slots (``holder``, in a root CNode slot) holds the caps to DEPTH radix-1 CNodes,
retyped from one untyped, and each of those CNodes holds in slot 0 a copy of the cap to
the next. Through the holder's first slot the CSpace is a chain DEPTH CNodes deep.

Every walk runs under :func:`tests.stack.shallow_stack`, a recursion limit a hundred
frames above the test's own depth: a walk that recursed once per level, as render's did,
raises RecursionError there at once, so these tests also catch, cheaply, a walker made
recursive again.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import WORD_BITS
from kernel.cspace.cdt import derive_cap, descendants, has_children, insert, insert_child
from kernel.cspace.lookup import resolve_address_bits
from kernel.kernel import Kernel
from kernel.model.caps import CNodeCap, EndpointCap, ZombieCap
from kernel.model.cnode import CNode
from kernel.objects.deletion import revoke
from kernel.views.invariants import check_all
from kernel.views.narrow import only_subtree
from kernel.views.render import (
    TEXT_INDENT_LEVELS,
    CNodeView,
    SlotView,
    snapshot,
    to_dot,
    to_json,
    to_json_text,
    to_text,
)
from tests.abi.cnode_fixtures import World
from tests.abi.support import CNODE, System
from tests.fakes import FakeMachine
from tests.stack import shallow_stack

DEPTH = 10_000
HOLDER_RADIX = 14


@dataclass
class Chain:
    system: System
    untyped: int
    """Root CNode slot of the untyped every CNode came from."""
    holder: int
    """Root CNode slot of the cap to the holder CNode."""
    holder_node: CNode
    nodes: list[CNode]
    """The chain, outermost first: ``nodes[i].slots[0]`` names ``nodes[i + 1]``."""

    @property
    def kernel(self) -> Kernel:
        return self.system.kernel


def build_chain(depth: int = DEPTH) -> Chain:
    """The CSpace of the module docstring, made as a guest makes it: objects by real
    Untyped_Retype invocations, the copies by cteInsert of the derived cap (CNode_Copy's
    perform; its decode needs a CPtr to each CNode, which a 4096-slot root cannot hold
    for 10,000)."""
    system = System(Arch.RISCV64, invariants=False)
    kernel = system.kernel
    untyped = system.untyped(22)
    cnode_type = system.otype("seL4_CapTableObject")
    holder = system.free_slots(1)
    assert system.retype(untyped, cnode_type, HOLDER_RADIX, holder, 1).label == 0
    for first in range(0, depth, 256):
        count = min(256, depth - first)
        reply = system.retype(untyped, cnode_type, 1, first, count, node_index=holder,
                              node_depth=WORD_BITS)
        assert reply.label == 0, reply
    holder_node = kernel.objects[system.cap(holder).object_paddr]  # type: ignore[index]
    assert isinstance(holder_node, CNode)
    nodes = [kernel.object_at(holder_node.slots[i].cap.object_paddr or 0, CNode)
             for i in range(depth)]
    for i in range(depth - 1):
        source = holder_node.slots[i + 1]
        insert(derive_cap(kernel, source, source.cap), source, nodes[i].slots[0])
    return Chain(system, untyped, holder, holder_node, nodes)


@pytest.fixture(scope="module")
def chain() -> Chain:
    """One chain for the tests that only read it."""
    return build_chain()


def follow(kernel: Kernel, first: CNode) -> list[int]:
    """The paddrs of the CNodes reached from ``first`` through slot 0, ``first``'s too."""
    paddrs = [first.paddr]
    cap = first.slots[0].cap
    while isinstance(cap, CNodeCap):
        paddrs.append(cap.paddr)
        cap = kernel.object_at(cap.paddr, CNode).slots[0].cap
    return paddrs


def test_the_chain_is_as_deep_as_built(chain: Chain) -> None:
    assert follow(chain.kernel, chain.nodes[0]) == [n.paddr for n in chain.nodes]


def test_the_snapshot_expands_the_chain_to_its_end(chain: Chain) -> None:
    with shallow_stack():
        snap = snapshot(chain.kernel, "deep")
    view = next(s for s in snap.threads[0].cspace_root.cnode.slots  # type: ignore[union-attr]
                if s.index == chain.holder)
    seen: list[int] = []
    cnode: CNodeView | None = view.cnode
    assert cnode is not None
    first: SlotView = cnode.slots[0]  # the holder's slot 0: the chain's top
    cnode = first.cnode
    while cnode is not None:
        seen.append(cnode.paddr)
        cnode = cnode.slots[0].cnode if cnode.slots else None
    assert seen == [n.paddr for n in chain.nodes]


def test_text_shows_the_deepest_cnode_at_its_level_and_grows_linearly(chain: Chain) -> None:
    with shallow_stack():
        text = to_text(snapshot(chain.kernel))
    deepest = chain.nodes[-1].paddr
    # Root slots are level 1, the holder's level 2, nodes[0]'s level 3: the cap to
    # nodes[-1] sits in nodes[-2]'s slot 0, at level DEPTH + 1.
    pad = "  " * (1 + TEXT_INDENT_LEVELS)
    assert f"\n{pad}(level {DEPTH + 1}) [0]: cnode {deepest:#x} radix=1 " in text
    levels = [int(m) for m in re.findall(r"^ +\(level (\d+)\) \[0\]: cnode ", text, re.M)]
    assert levels == list(range(TEXT_INDENT_LEVELS + 1, DEPTH + 2))
    assert max(len(line) for line in text.splitlines()) < 200
    assert len(text) < 1000 * DEPTH  # indented 2 spaces a level, it would be ~100 MB


def test_json_holds_the_deepest_cnode(chain: Chain) -> None:
    with shallow_stack():
        snap = snapshot(chain.kernel)
        data = to_json(snap)
        text = to_json_text(snap)
    cnode = data["threads"][0]["cspace_root"]["cnode"]
    (holder,) = [s for s in cnode["slots"] if s["index"] == chain.holder]
    cnode = holder["cnode"]["slots"][0]["cnode"]
    paddrs = []
    while cnode is not None:
        paddrs.append(cnode["paddr"])
        cnode = cnode["slots"][0]["cnode"] if cnode["slots"] else None
    assert paddrs == [n.paddr for n in chain.nodes]
    assert f'"paddr": {chain.nodes[-1].paddr},' in text
    assert text.count("{") == text.count("}") and text.count("[") == text.count("]")
    assert max(len(line) for line in text.splitlines()) < 200
    assert len(text) < 5000 * DEPTH


def test_dot_has_a_node_for_the_deepest_cap(chain: Chain) -> None:
    with shallow_stack():
        dot = to_dot(snapshot(chain.kernel))
    last = chain.nodes[-2].slots[0]
    assert f'"{last.owner:#x}[0]" [label="[0] cnode {chain.nodes[-1].paddr:#x} radix=1 ' in dot


def test_narrowing_to_the_deepest_cap_keeps_the_path_to_it(chain: Chain) -> None:
    """The subtree of the cap to the deepest CNode: the CSpace tree keeps the whole
    chain of CNode slots that leads to it (pruned without recursion)."""
    last = chain.nodes[-2].slots[0]
    sid = f"{last.owner:#x}[0]"
    with shallow_stack():
        snap = only_subtree(snapshot(chain.kernel), sid)
        text = to_text(snap)
    assert set(snap.caps) == {sid} and snap.derivation == []
    pad = "  " * (1 + TEXT_INDENT_LEVELS)
    assert f"\n{pad}(level {DEPTH + 1}) [0]: cnode {chain.nodes[-1].paddr:#x} radix=1 " in text
    # one line per level of the path: the holder, then each CNode of the chain
    assert len([line for line in text.splitlines() if "[0]: cnode " in line]) == DEPTH


def test_invariants_hold(chain: Chain) -> None:
    with shallow_stack():
        check_all(chain.kernel)


def test_lookup_resolves_the_deepest_addressable_slot(chain: Chain) -> None:
    """A CPtr names 64 levels of radix-1 CNodes at most: all of them, iteratively."""
    with shallow_stack():
        result = resolve_address_bits(chain.kernel, chain.holder_node.slots[0].cap, 0,
                                      WORD_BITS)
    assert result == (chain.nodes[WORD_BITS - 1].slots[0], 0)


def test_a_pickle_round_trip_keeps_the_chain_and_its_links(chain: Chain) -> None:
    kernel = chain.kernel
    with shallow_stack():
        copy = pickle.loads(pickle.dumps(kernel))
    assert isinstance(copy, Kernel)
    nodes = [copy.object_at(n.paddr, CNode) for n in chain.nodes]
    assert follow(copy, nodes[0]) == [n.paddr for n in chain.nodes]
    holder = copy.object_at(chain.holder_node.paddr, CNode)
    for i in range(DEPTH - 1):
        # the copy in nodes[i] is the CDT child of the original in the holder
        assert holder.slots[i + 1].mdb_next is nodes[i].slots[0]
        assert nodes[i].slots[0].mdb_prev is holder.slots[i + 1]
    copy.attach(FakeMachine(Arch.RISCV64, kernel.machine.ram_size), lambda byte: None)
    with shallow_stack():
        check_all(copy)


def assert_all_gone(chain: Chain) -> None:
    """Every CNode of the chain and the holder empty, the untyped childless, the kernel
    consistent."""
    assert all(slot.is_empty for node in chain.nodes for slot in node.slots)
    assert chain.system.slots[chain.holder].is_empty
    assert all(slot.is_empty for slot in chain.holder_node.slots)
    assert not has_children(chain.kernel, chain.system.slots[chain.untyped])
    check_all(chain.kernel)


def test_deleting_the_cap_to_the_holder_leaves_zombies_that_revoking_removes() -> None:
    """CNode_Delete of the last cap to the holder: its originals go (not final: each has
    its copy in the chain), then the cap to the top CNode, final. As on seL4, each CNode
    whose last cap goes with the one above becomes a zombie in its own slot 0 (level by
    level, without recursion), keeping the untyped's memory in use until it is revoked."""
    chain = build_chain()
    system = chain.system
    with shallow_stack():
        reply = system.call(CNODE, system.label("CNodeDelete"), [chain.holder, WORD_BITS])
    assert reply.label == 0
    assert all(node.slots[0].cap == ZombieCap(node.paddr, 1) for node in chain.nodes[1:])
    assert has_children(chain.kernel, system.slots[chain.untyped])
    with shallow_stack():
        check_all(chain.kernel)
        reply = system.call(CNODE, system.label("CNodeRevoke"), [chain.untyped, WORD_BITS])
    assert reply.label == 0
    with shallow_stack():
        assert_all_gone(chain)


def test_revoking_the_untyped_empties_the_whole_chain() -> None:
    chain = build_chain()
    system = chain.system
    with shallow_stack():
        reply = system.call(CNODE, system.label("CNodeRevoke"), [chain.untyped, WORD_BITS])
    assert reply.label == 0
    with shallow_stack():
        assert_all_gone(chain)


def test_a_derivation_chain_as_deep_renders_checks_and_revokes() -> None:
    """DEPTH caps to one endpoint, each the CDT child of the one before (badge-less and
    revocable): the derivation tree is DEPTH deep."""
    world = World(Arch.RISCV64)
    kernel = world.kernel
    node = world.cnode(HOLDER_RADIX)
    slots = node.slots.window(0, DEPTH)
    world.put(slots[0], EndpointCap(world.alloc(4)))
    for parent, child in zip(slots, slots[1:]):
        insert_child(parent, child, parent.cap, revocable=True)
    with shallow_stack():
        text = to_text(snapshot(kernel))
        check_all(kernel)
        assert sum(1 for _ in descendants(kernel, slots[0])) == DEPTH - 1
    pad = "  " * TEXT_INDENT_LEVELS
    assert f"\n{pad}(level {DEPTH}) {node.paddr:#x}[{DEPTH - 1}]: endpoint " in text
    with shallow_stack():
        revoke(kernel, slots[0])
        check_all(kernel)
    assert not slots[0].is_empty and all(s.is_empty for s in slots[1:])
