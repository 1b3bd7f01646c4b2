"""A guest server component captured, destroyed and restored by the host (issue #19).

userland/tests/component.c builds a server with its own CSpace (badged caps, a derivation
tree, a frame of counters, an untyped with an endpoint in it) and two clients that Call
it through an endpoint the root task made. The host runs it to ``component_sync`` (1):
the server is blocked in Recv, the clients wait. It captures the server (naming the
clients' endpoint, the server's IPC-buffer frame and the shared VSpace as external),
lets the guest revoke the untyped the server came from (sync 2), restores the server
from another untyped the guest prepared, and lets the clients call again.

Checked, on both architectures, with the invariant checker after every kernel entry:
every CPtr of the server resolves to a cap of the same type, rights, badge and guard
(external ones to the very same object, owned ones to fresh objects in the restore
untyped); a second capture of the restored server equals the first under the identity
map (the object graph, every cap, the derivation tree restricted to the component, frame
bytes and registers), apart from the blocked-receive the first recorded as Restart; the
frame's bytes are identical through the shared VSpace; and the clients' next calls are
answered with the counters the frame kept (3 and 4), as the guest's output shows.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest

import capsule
from bootimage import build_image
from kernel.component.model import Component
from kernel.cspace.cdt import descendants
from kernel.cspace.lookup import lookup_slot
from kernel.model.slot import Slot
from kernel.views.invariants import check_all, enable_invariant_checks
from tests.conftest import ARCHES
from userland.build import image_config

SERVER_DATA = 0x5000_0000
VSPACE = 3  # seL4_CapInitThreadVSpace
SERVER_SLOTS = range(1, 12)
EXTERNAL_SLOTS = {1, 2, 3}
"""Server CPtrs of caps to the clients' endpoint (component.c's S_EP*)."""


def _boot(guest_elves: dict[str, dict[str, Path]], arch: str) -> capsule.Machine:
    data = build_image(guest_elves[arch]["component"].read_bytes(), image_config("component"))
    machine = capsule.Machine.from_bytes(data)
    enable_invariant_checks(machine.session.kernel)
    return machine


def _info(machine: capsule.Machine) -> tuple[int, int, int, int]:
    """component_info: the clients' endpoint, the IPC-buffer frame cap, the server's
    untyped and the restore untyped (root-task CPtrs)."""
    ep, ipc, server_ut, restore_ut = struct.unpack(
        "<4Q", machine.read(machine.symbol("component_info"), 32, "rootserver"))
    return ep, ipc, server_ut, restore_ut


def _descendant_pairs(machine: capsule.Machine, tcb_paddr: int) -> set[tuple[str, str]]:
    """The derivation tree restricted to the server's slots, by the kernel's own
    ``descendants`` walk: (ancestor, descendant) as ``c<cptr>`` / ``t<TCB slot index>``."""
    kernel = machine.session.kernel
    tcb = kernel.threads[tcb_paddr]
    found = {f"t{i}": slot for i, slot in enumerate(tcb.slots) if not slot.is_empty}
    for cptr in SERVER_SLOTS:
        slot = lookup_slot(kernel, tcb, cptr)
        assert isinstance(slot, Slot)
        found[f"c{cptr}"] = slot
    place = {id(slot): name for name, slot in found.items()}
    return {(name, place[id(d)]) for name, slot in found.items()
            for d in descendants(kernel, slot) if id(d) in place}


def _without_restart_notes(component: Component) -> Component:
    """The component as a restored thread shows it: a thread captured blocked is Restart
    (runnable) once restored, so what it ``was`` and the notes are gone."""
    objects = tuple(replace(o, thread=replace(o.thread, was=None)) if o.thread else o
                    for o in component.objects)
    return replace(component, objects=objects, notes=())


@pytest.mark.parametrize("arch", ARCHES)
def test_a_restored_server_keeps_serving_its_clients(
        guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    machine = _boot(guest_elves, arch)
    sync = capsule.AtAddress(machine.symbol("component_sync"))
    machine.run(until=sync)
    assert "COMP0001 PASS" in machine.output.decode()
    ep, ipc, server_ut, restore_ut = _info(machine)
    external = {"clients_ep": ("rootserver", ep), "ipc_frame": ("rootserver", ipc),
                "root_vspace": ("rootserver", VSPACE)}

    # Capture: the server's slots, its frame, and a refusal without the identity map.
    with pytest.raises(capsule.ComponentError, match="clients_ep|cap outside the component"):
        machine.capture_component("server")
    component = machine.capture_component("server", external=external)
    before = {slot.cptr: slot.cap for slot in machine.cspace("server")}
    assert sorted(before) == list(SERVER_SLOTS)
    old_server = next(t for t in machine.threads if t.name == "server")
    tree = _descendant_pairs(machine, old_server.tcb)
    assert {("c2", "c3"), ("c4", "c5"), ("c8", "c9"), ("c9", "c10"), ("c11", "t0")} <= tree
    frame_before = machine.read(SERVER_DATA, 4096, "rootserver")
    assert frame_before[64:82] == b"the server's frame"
    frame = next(o for o in component.objects if o.type == "frame")
    assert frame.data == frame_before
    server = next(o.thread for o in component.objects if o.thread is not None)
    assert (server.name, server.state, server.was) == ("server", "Restart", "BlockedOnReceive")
    assert {e.name for e in component.externals} == set(external)
    # The file format carries all of it: restore from what the file says.
    component = capsule.component_from_json(capsule.component_to_json(component))

    # Destroy: the guest revokes the untyped the server came from.
    machine.run(until=sync)
    with pytest.raises(capsule.MemoryAccessError):
        machine.read(SERVER_DATA, 8, "rootserver")
    untyped = machine.cap(restore_ut, "rootserver")
    assert untyped is not None and untyped.type == "untyped"

    restored = machine.restore_component(component, untyped=("rootserver", restore_ut),
                                         identities=external)
    check_all(machine.session.kernel)
    new = next(t for t in machine.threads if t.tcb == restored.thread)
    assert (new.name, new.state) == ("server", "Restart")

    # Every CPtr resolves to a cap of the same type, rights, badge and guard.
    after = {slot.cptr: slot.cap for slot in machine.cspace(new)}
    assert sorted(after) == sorted(before)
    base = untyped.object
    size = 1 << int(untyped.fields["size_bits"])  # type: ignore[arg-type]
    for cptr, old in before.items():
        cap = after[cptr]
        assert (cap.type, cap.badge, cap.rights) == (old.type, old.badge, old.rights), cptr
        for field in ("guard", "guard_size", "radix", "size_bits", "free_bytes", "vaddr", "asid",
                      "is_device"):
            assert cap.fields.get(field) == old.fields.get(field), (cptr, field)
        if cptr in EXTERNAL_SLOTS:
            assert cap.object == old.object  # the clients' endpoint itself
        else:
            assert cap.object != old.object and cap.object is not None
            assert base <= cap.object < base + size, cptr  # retyped from the restore untyped

    # The same component under the identity map: objects, caps, derivation, bytes.
    again = machine.capture_component(new, external=external)
    assert again == _without_restart_notes(component)
    assert [c.parent for c in again.caps] == [c.parent for c in component.caps]
    assert _descendant_pairs(machine, restored.thread) == tree
    assert any(c.parent is not None for c in component.caps)
    assert machine.read(SERVER_DATA, 4096, "rootserver") == frame_before

    # The clients keep working with the restored server.
    machine.write(machine.symbol("host_restored"), struct.pack("<Q", 1), "rootserver")
    end = machine.run()
    out = machine.output.decode()
    for client in (1, 2):
        for call in (3, 4):
            assert f"client {client}: badge {client}, call {call}\n" in out
    assert "COMP0002 PASS" in out and "COMP0003 PASS" in out and "verdict: 3 passed, 0 failed" in out
    assert (end.kind, end.status) == (capsule.StopKind.HALT, 0)


@pytest.mark.parametrize("arch", ARCHES)
def test_restore_refuses_an_untyped_too_small_and_changes_nothing(
        guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    machine = _boot(guest_elves, arch)
    sync = capsule.AtAddress(machine.symbol("component_sync"))
    machine.run(until=sync)
    ep, ipc, server_ut, restore_ut = _info(machine)
    external = {"clients_ep": ("rootserver", ep), "ipc_frame": ("rootserver", ipc),
                "root_vspace": ("rootserver", VSPACE)}
    component = machine.capture_component("server", external=external)
    machine.run(until=sync)
    # The clients' endpoint is no untyped; the IPC-buffer frame is no endpoint.
    with pytest.raises(capsule.ComponentError, match="RAM untyped"):
        machine.restore_component(component, untyped=("rootserver", ep), identities=external)
    with pytest.raises(capsule.ComponentError, match="'clients_ep' is a endpoint"):
        machine.restore_component(component, untyped=("rootserver", restore_ut),
                                  identities={**external, "clients_ep": ("rootserver", ipc)})
    assert len(machine.threads) == len({t.tcb for t in machine.threads})
    unused = machine.cap(restore_ut, "rootserver")
    assert unused is not None and unused.fields["free_bytes"] == 1 << 16
    check_all(machine.session.kernel)
