"""Capture and restore of one component (kernel.component) on the fake machine.

A root task builds a server component with real invocations: its own CNode (guard 60,
so its CPtrs are single-level), a TCB configured with it, a notification, a frame mapped
into the root task's VSpace holding known bytes, an untyped with an endpoint retyped
from it, badged caps and copies of them (a derivation tree), and caps to an endpoint the
root task made (external). Every original cap is moved into the server's CNode, so the
server owns its objects. The component is captured, destroyed (the root task revokes the
untyped it came from), restored from another untyped, and captured again: the second
capture must equal the first, which is the isomorphism under the identity map, cap for
cap (type, rights, badge, guard, watermark, mapping), derivation parent for parent,
frame byte for byte and register for register.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from dataclasses import replace as dc_replace

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import MIN_UNTYPED_BITS, InitialCap
from kernel.component import ComponentError, capture, from_json, restore, to_capdl, to_json
from kernel.component.model import Component
from kernel.core.cancel import cancel_ipc
from kernel.core.ipc import receive
from kernel.core.notifications import send_signal
from kernel.cspace.cdt import descendants, has_children, insert, insert_child, insert_reply_cap
from kernel.cspace.lookup import lookup_slot
from kernel.model.caps import Cap, CNodeCap, EndpointCap, FrameCap, NotificationCap, UntypedCap
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.notification import Notification, NotificationState
from kernel.model.page_tables import translate
from kernel.model.paging import Access
from kernel.model.slot import Slot
from kernel.model.tcb import TCB, ThreadState
from kernel.objects.deletion import delete, revoke
from kernel.objects.page_table import lookup_pt_slot
from kernel.objects.retype import Kind, ObjectType, create_object, object_size_bits, object_types
from kernel.views.invariants import check_all
from tests.abi.support import CNODE, System
from tests.abi.vspace_support import (
    BOOT_POOL,
    FREE_VA,
    VSPACE,
    make,
    page_map,
    pt_map,
    reaches,
    tables_for,
)

RWGP = 0b1111
RW = 0b0011
DATA = b"component frame: kept byte for byte\x00\xff" * 10


@dataclass
class Server:
    s: System
    tcb: TCB
    ep: int
    """Root-CNode slot of the external endpoint (the root task made it)."""
    made_from: int
    """Root-CNode slot of the untyped the server's objects came from."""
    frame_paddr: int


def _op(s: System, label: str, service: int, args: list[int], extra: list[int]) -> None:
    reply = s.call(service, s.label(label), args, extra=extra)
    assert reply.label == 0, (label, reply)


def _server(s: System) -> Server:
    ua = s.ram_untyped(16)
    ep = make(s, s.otype("seL4_EndpointObject"))
    cn, t, n, f, u2 = (s.free_slots(1) for _ in range(5))
    frame_name = "seL4_RISCV_4K_Page" if s.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    for slot, name, size in ((cn, "seL4_CapTableObject", 4), (t, "seL4_TCBObject", 0),
                             (n, "seL4_NotificationObject", 0), (f, frame_name, 0),
                             (u2, "seL4_UntypedObject", 12)):
        assert s.retype(ua, s.otype(name), size, slot, 1).label == 0
    tables_for(s, VSPACE, FREE_VA)
    assert page_map(s, f, VSPACE, FREE_VA).label == 0
    frame = s.cap(f)
    assert isinstance(frame, FrameCap)
    s.machine.write_phys(frame.paddr, DATA)
    # Configure: CSpace = the server CNode with a 60-bit guard, the root task's VSpace,
    # the server's frame as IPC buffer.
    _op(s, "TCBConfigure", t, [0, 60, 0, FREE_VA], [cn, VSPACE, f])
    _op(s, "TCBBindNotification", t, [], [n])
    send_signal(s.kernel, s.kernel.object_at(s.cap(n).object_paddr or 0, Notification), 0x40)
    depth = 4
    _op(s, "CNodeCopy", cn, [1, depth, ep, 64, RWGP], [CNODE])               # external ep
    _op(s, "CNodeMint", cn, [2, depth, ep, 64, RW, 0x11], [CNODE])           # badged, parent outside
    _op(s, "CNodeCopy", cn, [3, depth, 2, depth, RW], [cn])                  # copy of the badged
    # An endpoint retyped from the server's own untyped, and a badged child of it.
    assert s.retype(u2, s.otype("seL4_EndpointObject"), 0, 6, 1,
                    node_index=cn, node_depth=64).label == 0
    _op(s, "CNodeMint", cn, [7, depth, 6, depth, RWGP, 0x22], [cn])
    for dest, src in ((8, t), (9, n), (10, f), (11, u2)):
        _op(s, "CNodeMove", cn, [dest, depth, src, 64], [CNODE])
    _op(s, "CNodeMint", cn, [12, depth, 9, depth, RW, 0x5], [cn])             # badged notification
    _op(s, "CNodeMove", cn, [13, depth, cn, 64], [CNODE])                     # the CNode itself, last
    tcb_cap = s.kernel.objects[s.root.slots[CNODE].cap.paddr]  # type: ignore[attr-defined]
    del tcb_cap
    tcb = next(t for t in s.kernel.threads.values() if t.ctable.cap.paddr != s.root.paddr  # type: ignore[attr-defined]
               and isinstance(t.ctable.cap, CNodeCap))
    tcb.name = "server"
    tcb.priority, tcb.mcp = 100, 50
    tcb.registers = [0x1000 + i for i in range(len(tcb.registers))]
    return Server(s, tcb, ep, ua, frame.paddr)


def _externals(srv: Server) -> dict[str, Slot]:
    return {"client_ep": srv.s.slots[srv.ep], "shared_vspace": srv.s.slots[VSPACE]}


def _descendant_pairs(s: System, tcb: TCB) -> set[tuple[str, str]]:
    """The derivation tree restricted to the server's slots, as the kernel's own
    ``descendants`` walk sees it: (ancestor, descendant) by place (``c<cptr>`` for the
    server's CNode, ``t<index>`` for its TCB's own slots)."""
    found = {f"t{i}": slot for i, slot in enumerate(tcb.slots) if not slot.is_empty}
    for cptr in range(16):
        slot = lookup_slot(s.kernel, tcb, cptr)
        if isinstance(slot, Slot) and not slot.is_empty:
            found[f"c{cptr}"] = slot
    place = {id(slot): name for name, slot in found.items()}
    return {(name, place[id(d)]) for name, slot in found.items()
            for d in descendants(s.kernel, slot) if id(d) in place}


def _destroy(srv: Server) -> None:
    _op(srv.s, "CNodeRevoke", CNODE, [srv.made_from, 64], [])
    assert not srv.tcb.ctable.cap.tag or srv.tcb.ctable.is_empty


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def server(request: pytest.FixtureRequest) -> Server:
    return _server(System(request.param))


def _new_thread(srv: Server, paddr: int) -> TCB:
    tcb = srv.s.kernel.threads[paddr]
    assert tcb.name == "server"
    return tcb


def test_capture_destroy_restore_is_the_same_component(server: Server) -> None:
    s = server.s
    before = capture(s.kernel, server.tcb, _externals(server))
    names = {o.name: o.type for o in before.objects}
    assert sorted(names.values()) == sorted(
        ["tcb", "cnode", "notification", "frame", "untyped", "endpoint"])
    assert {e.name: e.type for e in before.externals} == {
        "client_ep": "endpoint", "shared_vspace": s.kernel.platform.vspace_root_type.__name__
        .replace("PageTableCap", "page_table").replace("VSpaceCap", "vspace")}
    old_cptrs = {i: lookup_slot(s.kernel, server.tcb, i).cap  # type: ignore[union-attr]
                 for i in range(16)}
    old_tree = _descendant_pairs(s, server.tcb)
    assert ("c2", "c3") in old_tree and ("c11", "c7") in old_tree
    _destroy(server)
    check_all(s.kernel)
    assert reaches(s, VSPACE, FREE_VA) is None  # the frame went with its cap

    ub = s.ram_untyped(15)
    parent = s.slots[ub]
    parent_cap = parent.cap
    assert isinstance(parent_cap, UntypedCap)
    done = restore(s.kernel, before, parent, _externals(server))
    check_all(s.kernel)
    tcb = _new_thread(server, done.thread)
    assert tcb.paddr != server.tcb.paddr

    after = capture(s.kernel, tcb, _externals(server))
    assert after == before
    assert _descendant_pairs(s, tcb) == old_tree  # seL4's descendants, not capture's parents
    assert to_json(after) == to_json(before)

    # Every CPtr of the server resolves to a cap of the same type, rights, badge, guard.
    for i, old in old_cptrs.items():
        new = lookup_slot(s.kernel, tcb, i).cap  # type: ignore[union-attr]
        assert type(new) is type(old), i
        for field in ("badge", "rights", "guard", "guard_size", "radix", "free_index",
                      "size_bits", "mapped_vaddr"):
            assert getattr(new, field, None) == getattr(old, field, None), (i, field)
        if i in (1, 2, 3):  # caps to the external endpoint: the same object
            assert new.object_paddr == old.object_paddr
        elif old.object_paddr is not None:
            assert new.object_paddr != old.object_paddr  # owned objects: fresh ones
    # The restored objects lie in the new untyped, which is their derivation parent.
    region = range(parent_cap.paddr, parent_cap.paddr + (1 << parent_cap.size_bits))
    for name, paddr in done.objects.items():
        assert paddr in region, name
    assert parent.cap.free_index > 0  # type: ignore[attr-defined]
    children = {id(d) for d in descendants(s.kernel, parent)}
    cnode = lookup_slot(s.kernel, tcb, 13)
    assert isinstance(cnode, Slot) and id(cnode) in children
    # The frame is back, with its bytes, at its address in the shared VSpace.
    new_frame = lookup_slot(s.kernel, tcb, 10).cap  # type: ignore[union-attr]
    assert isinstance(new_frame, FrameCap) and new_frame.paddr != server.frame_paddr
    assert reaches(s, VSPACE, FREE_VA) == new_frame.paddr
    assert s.machine.read_phys(new_frame.paddr, len(DATA)) == DATA
    # The endpoint from the server's own untyped lies inside the restored untyped.
    ut = lookup_slot(s.kernel, tcb, 11).cap  # type: ignore[union-attr]
    inner = lookup_slot(s.kernel, tcb, 6).cap  # type: ignore[union-attr]
    assert isinstance(ut, UntypedCap) and isinstance(inner, EndpointCap)
    assert ut.paddr <= inner.paddr < ut.paddr + (1 << ut.size_bits)
    assert ut.free_index == old_cptrs[11].free_index  # type: ignore[union-attr]
    badged = lookup_slot(s.kernel, tcb, 7)
    ut_slot = lookup_slot(s.kernel, tcb, 11)
    assert isinstance(badged, Slot) and isinstance(ut_slot, Slot)
    assert id(badged) in {id(d) for d in descendants(s.kernel, ut_slot)}
    # The bound notification, with its pending word.
    ntfn = tcb.bound_notification
    assert ntfn is not None and ntfn.paddr == done.objects[by_type(before, "notification")]
    assert (ntfn.word, ntfn.state) == (0x40, NotificationState.ACTIVE)
    # The thread: registers, priority, name, state.
    assert tcb.registers == server.tcb.registers or tcb.registers[0] == 0x1000
    assert (tcb.priority, tcb.mcp, tcb.state) == (100, 50, ThreadState.INACTIVE)
    # And the restored component tears down cleanly.
    _op(s, "CNodeRevoke", CNODE, [ub, 64], [])
    check_all(s.kernel)
    assert reaches(s, VSPACE, FREE_VA) is None


def replace_caps(component: Component, **changes: object) -> Component:
    """``component`` with the cap in its CNode's slot 12 changed (a hand-edited file); no
    cap derives from that one."""
    target = f"{by_type(component, 'cnode')}[12]"
    caps = tuple(dc_replace(cap, **changes) if cap.slot == target else cap  # type: ignore[arg-type]
                 for cap in component.caps)
    return dc_replace(component, caps=caps)


def by_type(component: Component, kind: str) -> str:
    """The identity of the component's one object of ``kind``."""
    (name,) = [o.name for o in component.objects if o.type == kind]
    return name


def test_exchanges_with_outside_threads_are_refused(server: Server) -> None:
    s = server.s
    other_slot = make(s, s.otype("seL4_TCBObject"))
    other = s.kernel.object_at(s.cap(other_slot).object_paddr or 0, TCB)
    other.name = "outsider"
    # A thread outside queued on an endpoint the server owns.
    inner = lookup_slot(s.kernel, server.tcb, 6)
    assert isinstance(inner, Slot)
    owned_ep = s.kernel.object_at(inner.cap.object_paddr or 0, Endpoint)
    other.state = ThreadState.RUNNING
    receive(s.kernel, other, owned_ep, True, True)
    with pytest.raises(ComponentError, match=r"thread 'outsider', outside the component, "
                       r"waits on ep_\d+"):
        capture(s.kernel, server.tcb, _externals(server))
    cancel_ipc(s.kernel, other)
    # The server holding the reply cap of an outside caller: it is answering a Call.
    insert_reply_cap(other, server.tcb, True)
    with pytest.raises(ComponentError, match=r"tcb_0.caller holds the reply cap of thread "
                       r"'outsider': the component is answering a Call"):
        capture(s.kernel, server.tcb, _externals(server))


def test_capture_is_deterministic_and_json_round_trips(server: Server) -> None:
    one = capture(server.s.kernel, server.tcb, _externals(server))
    two = capture(server.s.kernel, server.tcb, _externals(server))
    assert to_json(one) == to_json(two)
    assert to_capdl(one) == to_capdl(two)
    assert from_json(to_json(one)) == one
    frame = next(o for o in one.objects if o.type == "frame")
    assert frame.data is not None and frame.data.startswith(DATA)
    with pytest.raises(ComponentError, match="not a capsule-component"):
        from_json("{}")
    with pytest.raises(ComponentError, match="malformed"):
        from_json('{"format": "capsule-component/1"}')


def test_derivation_links_are_captured(server: Server) -> None:
    c = capture(server.s.kernel, server.tcb, _externals(server))
    cnode = next(o.name for o in c.objects if o.type == "cnode")
    by_slot = {cap.slot: cap for cap in c.caps}
    assert by_slot[f"{cnode}[3]"].parent == f"{cnode}[2]"      # copy of a badged cap
    assert by_slot[f"{cnode}[2]"].parent is None               # minted from the root task's
    assert by_slot[f"{cnode}[2]"].badge == 0x11
    assert by_slot[f"{cnode}[6]"].parent == f"{cnode}[11]"     # retyped from the untyped
    assert by_slot[f"{cnode}[7]"].parent == f"{cnode}[6]"
    assert by_slot[f"{cnode}[12]"].parent == f"{cnode}[9]"
    assert by_slot[f"{cnode}[1]"].object == "client_ep"
    ep_inside = next(o for o in c.objects if o.type == "endpoint")
    assert ep_inside.inside == by_slot[f"{cnode}[11]"].object


def test_a_shared_object_not_named_external_is_refused(server: Server) -> None:
    with pytest.raises(ComponentError, match=r"ep_\d+ \(endpoint at 0x[0-9a-f]+.*cap outside"):
        capture(server.s.kernel, server.tcb, {"shared_vspace": server.s.slots[VSPACE]})
    for bad, why in (("ep_3", "form of capture's own"), ("3ep", "not an identifier")):
        with pytest.raises(ComponentError, match=why):
            capture(server.s.kernel, server.tcb, {bad: server.s.slots[server.ep]})


def test_blocked_receive_is_captured_as_restart_and_reply_wait_refused(server: Server) -> None:
    s = server.s
    tcb = server.tcb
    tcb.after_syscall = True
    tcb.state = ThreadState.RUNNING
    s.kernel.scheduler.enqueue(tcb)
    endpoint = s.kernel.object_at(s.cap(server.ep).object_paddr or 0, Endpoint)
    bound = tcb.bound_notification
    assert bound is not None  # its pending signal would complete the receive at once
    bound.state, bound.word = NotificationState.IDLE, 0
    receive(s.kernel, tcb, endpoint, True, True)
    assert tcb.state is ThreadState.BLOCKED_ON_RECEIVE
    c = capture(s.kernel, tcb, _externals(server))
    thread = next(o.thread for o in c.objects if o.thread is not None)
    assert (thread.state, thread.was) == ("Restart", "BlockedOnReceive")
    assert thread.registers[0] == 0x1000 - 4 and not thread.after_syscall
    assert any("runs that system call again" in note for note in c.notes)
    # Restored, it is runnable and will re-run its Recv.
    _destroy(server)
    done = restore(s.kernel, c, s.slots[s.ram_untyped(15)], _externals(server))
    new = s.kernel.threads[done.thread]
    assert new.state is ThreadState.RESTART and new.registers[0] == 0x1000 - 4
    check_all(s.kernel)

    other = _server(System(s.arch))
    other.tcb.state = ThreadState.BLOCKED_ON_REPLY
    with pytest.raises(ComponentError, match="waiting for the reply"):
        capture(other.s.kernel, other.tcb, _externals(other))


def test_restore_refusals_change_nothing(server: Server) -> None:
    s = server.s
    c = capture(s.kernel, server.tcb, _externals(server))
    _destroy(server)
    small = s.slots[s.ram_untyped(12)]
    before = small.cap
    with pytest.raises(ComponentError, match="too small"):
        restore(s.kernel, c, small, _externals(server))
    assert small.cap == before and not has_children(s.kernel, small)
    big = s.slots[s.ram_untyped(15)]
    with pytest.raises(ComponentError, match="does not say which existing object"):
        restore(s.kernel, c, big, {"shared_vspace": s.slots[VSPACE]})
    with pytest.raises(ComponentError, match="external 'client_ep' is a endpoint|is a endpoint"):
        restore(s.kernel, c, big, {"client_ep": s.slots[VSPACE], "shared_vspace": s.slots[VSPACE]})
    broken = replace_caps(c, object="nowhere")
    with pytest.raises(ComponentError, match=r"its object 'nowhere' is not declared"):
        restore(s.kernel, broken, big, _externals(server))
    with pytest.raises(ComponentError, match="holds no cap"):
        restore(s.kernel, replace_caps(c, parent="cnode_1[15]"), big, _externals(server))
    with pytest.raises(ComponentError, match="not a slot of an owned cnode"):
        restore(s.kernel, replace_caps(c, index=16), big, _externals(server))
    with pytest.raises(ComponentError, match="a notification cap to client_ep, a endpoint"):
        restore(s.kernel, replace_caps(c, object="client_ep"), big, _externals(server))
    cnode = by_type(c, "cnode")
    cyclic = dc_replace(c, caps=tuple(
        dc_replace(cap, parent=f"{cnode}[3]") if cap.slot == f"{cnode}[2]" else cap
        for cap in c.caps))
    with pytest.raises(ComponentError, match="derivation parents form a cycle"):
        restore(s.kernel, cyclic, big, _externals(server))
    frame = by_type(c, "frame")
    short = dc_replace(c, objects=tuple(dc_replace(o, data=b"x") if o.name == frame else o
                                        for o in c.objects))
    with pytest.raises(ComponentError, match="bytes do not fit a 12-bit frame"):
        restore(s.kernel, short, big, _externals(server))
    with pytest.raises(ComponentError, match="cannot be restored on"):
        restore(s.kernel, Component("sparc", c.thread, c.objects, c.externals, c.caps),
                big, _externals(server))
    assert not has_children(s.kernel, big)
    check_all(s.kernel)


def _parse_capdl(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]], set[tuple[str, str]]]:
    """objects: name -> type; caps: container -> {slot: object}; cdt: (parent, child)."""
    objects: dict[str, str] = {}
    caps: dict[str, dict[str, str]] = {}
    cdt: set[tuple[str, str]] = set()
    section = None
    container = None
    parents: list[str] = []
    for raw in text.splitlines():
        line = raw.split("--")[0].strip()
        if not line:
            continue
        if line in ("objects {", "caps {", "cdt {"):
            section = line.split()[0]
            continue
        if section == "objects":
            m = re.fullmatch(r"(\w+) = (\w+)(?: \(.*\))?(?: \{)?", line)
            if m:
                objects[m.group(1)] = m.group(2)
        elif section == "caps":
            m = re.fullmatch(r"(\w+) \{", line)
            if m:
                container = m.group(1)
                caps[container] = {}
                continue
            m = re.fullmatch(r"(\w+): (\w+)(?: \(.*\))?", line)
            if m and container is not None:
                caps[container][m.group(1)] = m.group(2)
        elif section == "cdt":
            m = re.fullmatch(r"(\(\w+, \w+\))( \{)?", line)
            if m:
                if parents:
                    cdt.add((parents[-1], m.group(1)))
                if m.group(2):
                    parents.append(m.group(1))
            elif line == "}" and parents:
                parents.pop()
    return objects, caps, cdt


def test_capdl_text_states_the_objects_caps_and_cdt(server: Server) -> None:
    c = capture(server.s.kernel, server.tcb, _externals(server))
    text = to_capdl(c)
    assert text.splitlines()[1] == ("arch riscv" if server.s.arch is Arch.RISCV64
                                    else "arch aarch64")
    objects, caps, cdt = _parse_capdl(text)
    capdl_type = {"tcb": "tcb", "cnode": "cnode", "endpoint": "ep", "notification": "notification",
                  "frame": "frame", "untyped": "ut", "page_table": "pt", "vspace": "pgd"}
    assert objects == {**{o.name: capdl_type[o.type] for o in c.objects},
                       **{e.name: capdl_type[e.type] for e in c.externals}}
    tcb_names = ("cspace", "vspace", "reply", "caller", "ipc_buffer_slot")
    expected: dict[str, dict[str, str]] = {}
    for cap in c.caps:
        slot = tcb_names[cap.index] if cap.in_tcb else hex(cap.index)
        expected.setdefault(cap.container, {})[slot] = cap.object
    assert caps == expected
    ref = {cap.slot: f"({cap.container}, {cap.index if cap.in_tcb else hex(cap.index)})"
           for cap in c.caps}
    assert cdt == {(ref[cap.parent], ref[cap.slot]) for cap in c.caps if cap.parent is not None}
    assert cdt  # the server has a derivation tree
    ut = next(o.name for o in c.objects if o.type == "untyped")
    assert re.search(rf"{ut} = ut \(12 bits\) \{{\n\s+ep_\d+ = ep\n\s+\}}", text)
    badged = next(cap for cap in c.caps if cap.badge == 0x11)
    assert f"{badged.index:#x}: client_ep (RW, badge: 0x11)" in text


def test_capture_reads_without_changing_state(server: Server) -> None:
    s = server.s
    before = to_json(capture(s.kernel, server.tcb, _externals(server)))
    check_all(s.kernel)
    assert to_json(capture(s.kernel, server.tcb, _externals(server))) == before
    assert MIN_UNTYPED_BITS == 4 and int(InitialCap.seL4_CapInitThreadVSpace) == VSPACE
    assert isinstance(s.cap(server.ep), EndpointCap)
    assert not isinstance(s.cap(server.ep), NotificationCap)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_component_with_its_own_vspace(arch: Arch) -> None:
    s = System(arch)
    ua = s.ram_untyped(16)
    cn, t, vs, f = (s.free_slots(1) for _ in range(4))
    frame_name = "seL4_RISCV_4K_Page" if arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    pt_name = "seL4_RISCV_PageTableObject" if arch is Arch.RISCV64 else "seL4_ARM_PageTableObject"
    for slot, otype, size in ((cn, s.otype("seL4_CapTableObject"), 4),
                              (t, s.otype("seL4_TCBObject"), 0), (vs, s.vspace_type, 0),
                              (f, s.otype(frame_name), 0)):
        assert s.retype(ua, otype, size, slot, 1).label == 0
    assert s.assign(BOOT_POOL, vs).label == 0
    tables = []
    while lookup_pt_slot(s.kernel, s.cap(vs).object_paddr or 0, FREE_VA).bits_left > 12:
        pt = s.free_slots(1)
        assert s.retype(ua, s.otype(pt_name), 0, pt, 1).label == 0
        assert pt_map(s, pt, vs, FREE_VA).label == 0
        tables.append(pt)
    assert page_map(s, f, vs, FREE_VA, rights=RW).label == 0
    s.machine.write_phys(s.cap(f).object_paddr or 0, DATA)
    _op(s, "TCBConfigure", t, [0, 60, 0, FREE_VA], [cn, vs, f])
    for dest, src in enumerate([t, vs, f, *tables], start=1):
        _op(s, "CNodeMove", cn, [dest, 4, src, 64], [CNODE])
    _op(s, "CNodeMove", cn, [15, 4, cn, 64], [CNODE])
    tcb = next(x for x in s.kernel.threads.values() if x.vtable.cap.object_paddr
               not in (None, s.cap(VSPACE).object_paddr) and not x.vtable.is_empty)
    c = capture(s.kernel, tcb)
    assert not c.externals
    mapped = [cap for cap in c.caps if cap.mapping is not None]
    assert {cap.mapping.level for cap in mapped if cap.mapping} >= {-1, len(tables)}
    # capDL states the mapping as table contents: root -> ... -> the frame, one entry a level.
    objects, caps, _ = _parse_capdl(to_capdl(c))
    node = next(cap.object for cap in c.caps if cap.mapping and cap.mapping.level == -1)
    levels = 0
    while objects[node] in ("pt", "pgd"):
        (node,) = caps[node].values()
        levels += 1
    assert objects[node] == "frame" and levels == s.kernel.paging.levels
    assert re.search(rf"^    0x[0-9a-f]+: {node} \(RW\)( -- executable)?$", to_capdl(c), re.M)
    _op(s, "CNodeRevoke", CNODE, [ua, 64], [])
    check_all(s.kernel)
    with pytest.raises(ComponentError, match="needs an ASID pool"):
        restore(s.kernel, c, s.slots[s.ram_untyped(15)])
    done = restore(s.kernel, c, s.slots[s.ram_untyped(15)], asid_pool=s.slots[BOOT_POOL])
    check_all(s.kernel)
    new = s.kernel.threads[done.thread]
    assert capture(s.kernel, new) == c
    root = new.vtable.cap
    frame = lookup_slot(s.kernel, new, 3).cap  # type: ignore[union-attr]
    assert isinstance(frame, FrameCap) and frame.mapped_asid == root.mapped_asid  # type: ignore[attr-defined]
    assert translate(s.machine, s.kernel.paging, root.object_paddr or 0, FREE_VA,
                     Access.WRITE) == frame.object_paddr  # type: ignore[union-attr]
    assert s.machine.read_phys(frame.object_paddr or 0, len(DATA)) == DATA
    assert list(done.asids.values()) == [root.mapped_asid]  # type: ignore[union-attr]
    # A mapping made through a cap outside the component is refused at capture.
    extra = make(s, s.otype(frame_name))
    copy = lookup_index(s, new, 2)
    assert page_map(s, extra, copy, FREE_VA + 0x1000).label == 0
    with pytest.raises(ComponentError, match=r"(vspace|pt)_\d+ \(\w+ at 0x[0-9a-f]+, reached by "
                       r"tcb_0.vtable\) has a cap outside the component"):
        capture(s.kernel, new)
    delete(s.kernel, s.slots[copy])
    with pytest.raises(ComponentError, match="through no cap of the component"):
        capture(s.kernel, new)


def lookup_index(s: System, tcb: TCB, cptr: int) -> int:
    """A root-CNode slot holding a copy of the cap at ``cptr`` in ``tcb``'s CSpace."""
    slot = lookup_slot(s.kernel, tcb, cptr)
    assert isinstance(slot, Slot)
    dest = s.free_slots(1)
    insert(slot.cap, slot, s.slots[dest])
    return dest


def test_a_deep_component_walks_without_recursion() -> None:
    """A thread whose CSpace is a chain of 3,000 CNodes: capture, the formats, deletion
    and restore all work with explicit work lists (DESIGN.md decision 9)."""
    s = System(Arch.RISCV64)
    kernel = s.kernel
    made_from = s.slots[s.ram_untyped(20)]
    types = object_types(kernel.arch, kernel.tcb_bits)
    cnode_type = next(t for t in types.values() if t.kind is Kind.CAP_TABLE)
    tcb_type = next(t for t in types.values() if t.kind is Kind.TCB)
    first = made_from.cap
    assert isinstance(first, UntypedCap)
    free = first.paddr

    def carve(otype: ObjectType, user_size: int) -> Cap:
        nonlocal free
        bits = object_size_bits(otype, user_size)
        start = -(-free >> bits) << bits
        free = start + (1 << bits)
        made_from.cap = dc_replace(made_from.cap, free_index=(free - first.paddr) >> 4)
        return create_object(kernel, otype, start, user_size, False)

    n = 3000
    thread_cap = carve(tcb_type, 0)
    nodes = [carve(cnode_type, 1) for _ in range(n)]
    tables = [kernel.object_at(cap.object_paddr or 0, CNode) for cap in nodes]
    for i in range(1, n):
        insert_child(made_from, tables[i - 1].slots[0], nodes[i], True)
    insert_child(made_from, tables[-1].slots[0], thread_cap, True)
    insert_child(made_from, tables[-1].slots[1], nodes[0], True)
    tcb = kernel.object_at(thread_cap.object_paddr or 0, TCB)
    tcb.name = "deep"
    insert(nodes[0], tables[-1].slots[1], tcb.ctable)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        c = capture(kernel, tcb)
        assert len(c.objects) == n + 1 and len(c.caps) == n + 2
        assert from_json(to_json(c)) == c
        assert to_capdl(c).count(" = cnode (1 bits)") == n
        revoke(kernel, made_from)
        done = restore(kernel, c, s.slots[s.ram_untyped(19)])
        assert capture(kernel, kernel.threads[done.thread]) == c
    finally:
        sys.setrecursionlimit(limit)
    check_all(kernel)


def test_two_restored_copies_from_one_untyped(server: Server) -> None:
    """Restore twice from one untyped: the second goes above the first's watermark (the
    untyped has children then, so it is not reset), and both copies are whole."""
    s = server.s
    c = capture(s.kernel, server.tcb, _externals(server))
    frame_cptr = 10
    _destroy(server)
    source = s.slots[s.ram_untyped(16)]
    first = restore(s.kernel, c, source, _externals(server))
    watermark = source.cap.free_index  # type: ignore[attr-defined]
    frame = lookup_slot(s.kernel, s.kernel.threads[first.thread], frame_cptr).cap  # type: ignore[union-attr]
    assert isinstance(frame, FrameCap)
    # The second copy cannot map its frame where the first one's is.
    with pytest.raises(ComponentError, match="already mapped at 0x40000000"):
        restore(s.kernel, c, source, _externals(server))
    assert source.cap.free_index == watermark  # type: ignore[attr-defined]
    delete(s.kernel, lookup_slot(s.kernel, s.kernel.threads[first.thread], frame_cptr))  # type: ignore[arg-type]
    second = restore(s.kernel, c, source, _externals(server))
    check_all(s.kernel)
    assert source.cap.free_index > watermark  # type: ignore[attr-defined]
    assert set(first.objects.values()).isdisjoint(second.objects.values())
    assert capture(s.kernel, s.kernel.threads[second.thread], _externals(server)) == c


def test_an_mcs_kernel_is_refused_until_its_objects_have_records(server: Server) -> None:
    kernel = server.s.kernel
    kernel.config = dc_replace(kernel.config, mcs=True)
    with pytest.raises(ComponentError, match="MCS kernel are not captured yet"):
        capture(kernel, server.tcb, _externals(server))
