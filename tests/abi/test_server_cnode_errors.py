"""Server-backed CNodes (capsule's extension, not seL4) through seL4_Call on the fake
machine: the error matrix of BindServer / UnbindServer, their effects, and seL4's
behaviour when the extension is off.

Every refused case has a stable ID (VTRAVOP00xx) and asserts the reply label, its
payload words and that no slot anywhere changed and no CNode got bound. Success cases
(01xx) assert the binding. Off cases (02xx): the labels are illegal operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from kernel.abi.extensions import TraversalLabel
from kernel.cspace.cdt import insert
from kernel.model.caps import EndpointCap, NotificationCap, Rights
from kernel.model.cnode import CNode, ServerBinding
from tests.abi.cnode_fixtures import World, snapshot

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
NODE, EP, EP_NO_WRITE, NTFN, EMPTY = range(4000, 4005)
UNTYPED_LIKE = int(InitialCap.seL4_CapInitThreadTCB)  # another object's cap
BIND = int(TraversalLabel.capsule_CNodeBindServer)
UNBIND = int(TraversalLabel.capsule_CNodeUnbindServer)
IL, TM, IC = Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage, Error.seL4_InvalidCapability


def _world(arch: Arch, on: bool = True) -> World:
    w = World(arch, server_backed_cnodes=on)
    w.put(NODE, w.cnode_cap(4))
    ep = w.put(EP, EndpointCap(w.alloc(4)))
    insert(EndpointCap(ep.cap.object_paddr or 0, 0, Rights(write=False)), ep,
           w.slots[EP_NO_WRITE])
    w.put(NTFN, NotificationCap(w.alloc(5)))
    return w


def _node(w: World, slot: int = NODE) -> CNode:
    node = w.kernel.objects[w.slots[slot].cap.object_paddr or 0]
    assert isinstance(node, CNode)
    return node


def _bound(w: World) -> list[CNode]:
    return [o for o in w.kernel.objects.values() if isinstance(o, CNode) and o.server]


@dataclass(frozen=True)
class Case:
    id: str
    cap: int
    label: int
    args: list[int]
    extra: list[int] = field(default_factory=list)
    error: Error = IL
    words: list[int] = field(default_factory=list)


CASES = [
    Case("VTRAVOP0001", NODE, BIND, [], [EP], TM),
    Case("VTRAVOP0002", NODE, BIND, [0x42], [], TM),
    Case("VTRAVOP0003", NODE, BIND, [0x42], [NTFN], IC, [1]),
    Case("VTRAVOP0004", NODE, BIND, [0x42], [EP_NO_WRITE], IC, [1]),
    Case("VTRAVOP0005", NODE, BIND, [0x42], [EMPTY], IC, [1]),
    Case("VTRAVOP0006", NODE, BIND, [0x42], [NODE], IC, [1]),
    Case("VTRAVOP0007", NODE, UNBIND + 1, [0x42], [EP], IL),
    Case("VTRAVOP0008", NODE, BIND - 1, [0x42], [EP], IL),
    # Only a CNode cap binds: another object's cap refuses the label as seL4 would.
    Case("VTRAVOP0009", UNTYPED_LIKE, BIND, [0x42], [EP], IL),
    Case("VTRAVOP0010", UNTYPED_LIKE, UNBIND, [], [], IL),
]


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused(arch: Arch, case: Case) -> None:
    w = _world(arch)
    before = snapshot(w)
    reply = w.call(case.cap, case.label, case.args, case.extra)
    assert (reply.label, reply.words) == (case.error, case.words)
    assert snapshot(w) == before and _bound(w) == []


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_VTRAVOP0101_bind_unbind_and_rebind(arch: Arch) -> None:
    w = _world(arch)
    ep_paddr = w.slots[EP].cap.object_paddr
    assert w.call(NODE, BIND, [0x42], [EP]).label == 0
    assert _node(w).server == ServerBinding(ep_paddr or 0, 0x42)
    assert w.call(NODE, BIND, [7], [EP]).label == 0  # rebinding replaces
    assert _node(w).server == ServerBinding(ep_paddr or 0, 7)
    assert w.call(NODE, UNBIND).label == 0 and _node(w).server is None
    assert w.call(NODE, UNBIND).label == 0 and _node(w).server is None  # stays unbound


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_VTRAVOP0102_the_root_cnode_can_be_bound_too(arch: Arch) -> None:
    w = _world(arch)
    assert w.call(CNODE, BIND, [1], [EP]).label == 0
    assert w.root.server is not None
    # The root task's own lookups through its full root CNode meet no empty slot on the
    # way to its caps: it goes on working (an empty slot would now ask the server).
    assert w.call(CNODE, UNBIND).label == 0 and w.root.server is None


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("label", [BIND, UNBIND], ids=["VTRAVOP0201", "VTRAVOP0202"])
def test_off_the_labels_are_illegal(arch: Arch, label: int) -> None:
    w = _world(arch, on=False)
    before = snapshot(w)
    reply = w.call(NODE, label, [0x42], [EP])
    assert (reply.label, reply.words) == (IL, [])
    assert snapshot(w) == before and _bound(w) == []
