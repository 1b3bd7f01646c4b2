"""kernel.views.render on the fake machine: boot CSpace, derivation links, JSON and DOT forms."""

from __future__ import annotations

import json
import re

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.views.render import SlotView, Snapshot, slot_id, snapshot, to_dot, to_json, to_text
from tests.abi.support import CNODE, System
from tests.unit.test_boot import booted

D = 64


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def root_view(snap: Snapshot) -> dict[int, SlotView]:
    root = snap.threads[0].cspace_root
    assert root.cnode is not None
    return {s.index: s for s in root.cnode.slots}


def test_boot_cspace_has_initial_caps_at_sel4_slots_with_names(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    snap = snapshot(kernel, "boot")
    (thread,) = snap.threads
    assert (thread.name, thread.state, thread.priority) == ("rootserver", "Running", 255)
    slots = root_view(snap)
    vspace = "page_table" if arch is Arch.RISCV64 else "vspace"
    expected = {
        InitialCap.seL4_CapInitThreadTCB: "thread",
        InitialCap.seL4_CapInitThreadCNode: "cnode",
        InitialCap.seL4_CapInitThreadVSpace: vspace,
        InitialCap.seL4_CapIRQControl: "irq_control",
        InitialCap.seL4_CapASIDControl: "asid_control",
        InitialCap.seL4_CapInitThreadASIDPool: "asid_pool",
        InitialCap.seL4_CapBootInfoFrame: "frame",
        InitialCap.seL4_CapInitThreadIPCBuffer: "frame",
        InitialCap.seL4_CapDomain: "domain",
    }
    for index, kind in expected.items():
        view = slots[index]
        assert view.name == index.name and view.cap is not None and view.cap.type == kind
    for empty in (0, 7, 8, 12, 13, 14, 15):
        assert empty not in slots  # only non-empty slots by default
    root = slots[InitialCap.seL4_CapInitThreadCNode]
    assert root.cap is not None and root.cap.fields["radix"] == 12
    assert root.cap.fields["guard_size"] == 52
    assert root.seen and root.cnode is None  # the cap to itself is not expanded again
    text = to_text(snap)
    assert "[2] seL4_CapInitThreadCNode: cnode" in text and "(shown above)" in text


def test_all_slots_shows_empty_slots(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    slots = root_view(snapshot(kernel, all_slots_too=True))
    assert len(slots) == 1 << 12
    assert slots[0].cap is None and slots[0].name == "seL4_CapNull"


def test_boot_derivation_links_the_thread_slots_to_their_sources(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    snap = snapshot(kernel)
    tcb = kernel.current
    assert tcb is not None
    root = kernel.objects[tcb.ctable.cap.object_paddr]  # type: ignore[index]
    slots = root.slots  # type: ignore[attr-defined]
    pairs = {(link.parent, link.child) for link in snap.derivation}
    assert pairs == {
        (slot_id(kernel, slots[InitialCap.seL4_CapInitThreadCNode]), slot_id(kernel, tcb.ctable)),
        (slot_id(kernel, slots[InitialCap.seL4_CapInitThreadVSpace]), slot_id(kernel, tcb.vtable)),
        (slot_id(kernel, slots[InitialCap.seL4_CapInitThreadIPCBuffer]),
         slot_id(kernel, tcb.ipc_buffer_slot)),
    }


def test_cnode_copy_appears_as_child_in_derivation(arch: Arch) -> None:
    system = System(arch)
    dest = system.free_slots(1)
    tcb = int(InitialCap.seL4_CapInitThreadTCB)
    reply = system.call(CNODE, system.label("CNodeCopy"), [dest, D, tcb, D, 0xF], [CNODE])
    assert reply.label == 0
    snap = snapshot(system.kernel)
    parent, child = slot_id(system.kernel, system.slots[tcb]), slot_id(system.kernel, system.slots[dest])
    assert [link.parent for link in snap.derivation if link.child == child] == [parent]
    copied = root_view(snap)[dest]
    assert copied.cap is not None and copied.cap.type == "thread" and copied.name is None
    lines = to_text(snap).splitlines()
    # A thread cap names its thread (the root server's TCB is the one copied).
    shown = f"thread {copied.cap.paddr:#x} name=rootserver"
    assert copied.cap.fields["name"] == "rootserver"
    at = lines.index(f"  {parent}: {shown}")
    assert lines[at + 1] == f"    {child}: {shown}"


def test_retyped_objects_show_under_their_untyped(arch: Arch) -> None:
    system = System(arch)
    ut = system.untyped(16)
    first = system.free_slots(2)
    assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, first, 1).label == 0
    assert system.retype(ut, system.otype("seL4_CapTableObject"), 2, first + 1, 1).label == 0
    snap = snapshot(system.kernel)
    ut_id = slot_id(system.kernel, system.slots[ut])
    (summary,) = [u for u in snap.untypeds if u.slot == ut_id]
    assert summary.children == 2 and summary.size_bits == 16
    assert summary.free_bytes < 1 << 16
    slots = root_view(snap)
    endpoint, cnode = slots[first].cap, slots[first + 1]
    assert endpoint is not None and endpoint.type == "endpoint" and endpoint.paddr is not None
    assert cnode.cnode is not None and cnode.cnode.radix == 2 and cnode.cnode.slots == []
    types = {(o.type, o.paddr): o.size for o in snap.objects}
    assert types[("Endpoint", endpoint.paddr)] == 16
    assert types[("CNode", cnode.cnode.paddr)] == 4 * 32
    full = root_view(snapshot(system.kernel, all_slots_too=True))[first + 1]
    assert full.cnode is not None and len(full.cnode.slots) == 4


def test_json_round_trips(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    data = to_json(snapshot(kernel, "boot"))
    again = json.loads(json.dumps(data))
    assert again == data
    assert again["threads"][0]["cspace_root"]["cnode"]["radix"] == 12
    assert len(again["derivation"]) == 3


def dot_nodes(dot: str) -> dict[str, str]:
    """Node name -> label of a DOT text (edges and attributes left out)."""
    return dict(re.findall(r'^\s+"([^"]+)" \[label="((?:[^"\\]|\\.)*)"\];$', dot, re.M))


def dot_edges(dot: str) -> set[tuple[str, str]]:
    """The visible edges of a DOT text (not the invisible ones that make columns)."""
    return {(a, b) for a, b, attrs in re.findall(r'^\s+"([^"]+)" -> "([^"]+)"(.*);$', dot, re.M)
            if "invis" not in attrs}


def covered(label: str, sid: str) -> list[str]:
    """The slot ids a node stands for: its own, or those of a run ``[a..b] Nx ...``."""
    run = re.match(r"\[(\d+)\.\.(\d+)\] (\d+)x ", label)
    if run is None:
        return [sid]
    first, last, count = (int(g) for g in run.groups())
    assert count == last - first + 1
    container = sid.split("[", 1)[0]
    return [f"{container}[{i}]" for i in range(first, last + 1)]


def test_dot_is_a_digraph_with_one_edge_per_derivation_link(arch: Arch) -> None:
    system = System(arch)
    dest = system.free_slots(1)
    system.call(CNODE, system.label("CNodeCopy"), [dest, D, 1, D, 0xF], [CNODE])
    snap = snapshot(system.kernel)
    dot = to_dot(snap)
    assert dot.startswith("digraph capsule {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    nodes = dot_nodes(dot)
    node_of = {slot: node for node, label in nodes.items() for slot in covered(label, node)}
    assert set(node_of) == set(snap.caps)  # every cap drawn exactly once
    assert len(node_of) == sum(len(covered(label, node)) for node, label in nodes.items())
    # The boot image's frames (one per page, in consecutive slots) are one node.
    assert any(re.match(r"\[\d+\.\.\d+\] \d+x frame ", label) for label in nodes.values())
    expected = {(node_of[link.parent], node_of[link.child]) for link in snap.derivation}
    assert dot_edges(dot) == expected and len(snap.derivation) == 4
    tcb = system.kernel.current
    assert tcb is not None
    assert f'label="TCB {tcb.name} {tcb.paddr:#x}";' in dot


def test_dot_stacks_a_container_in_columns() -> None:
    """A CNode with more nodes than DOT_COLUMN: invisible edges join node i to i + DOT_COLUMN."""
    from kernel.views.render import DOT_COLUMN

    system = System(Arch.RISCV64)
    ut = system.untyped(16)
    first = system.free_slots(2 * DOT_COLUMN)
    types = ["seL4_EndpointObject", "seL4_NotificationObject"]
    for i in range(2 * DOT_COLUMN):  # alternating types: no runs
        assert system.retype(ut, system.otype(types[i % 2]), 0, first + i, 1).label == 0
    dot = to_dot(snapshot(system.kernel))
    invisible = re.findall(r'^\s+"([^"]+)" -> "([^"]+)" \[style=invis\];$', dot, re.M)
    nodes = list(dot_nodes(dot))
    assert invisible and all(nodes.index(b) - nodes.index(a) == DOT_COLUMN for a, b in invisible)


def test_thread_filter(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    assert [t.name for t in snapshot(kernel, thread="rootserver").threads] == ["rootserver"]
    with pytest.raises(KeyError):
        snapshot(kernel, thread="nobody")
