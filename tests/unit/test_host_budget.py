"""The host-cost budget (DESIGN.md): a kernel entry's host work is bounded by the work
seL4 does for it, and host memory grows with what the guest uses.

These tests grow the system and check what an operation touches (objects scanned,
slots built), never wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.boot import boot
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.notification import Notification
from kernel.model.tcb import TCB
from kernel.views.invariants import check_all
from tests.abi.support import CNODE, System
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image


class _NoScan(dict[Any, Any]):
    """A dict that fails any walk over all of its entries (lookups by key still work)."""

    def _scan(self) -> NoReturn:
        raise AssertionError("a kernel entry walked over every entry")

    def __iter__(self) -> Iterator[Any]:
        self._scan()

    def keys(self) -> NoReturn:  # type: ignore[override]
        self._scan()

    def values(self) -> NoReturn:  # type: ignore[override]
        self._scan()

    def items(self) -> NoReturn:  # type: ignore[override]
        self._scan()


def _cnode_in(s: System, radix: int) -> tuple[int, CNode]:
    """Retype a CNode of ``radix`` into a fresh root slot; its slot and object."""
    slot = s.free_slots(1)
    reply = s.retype(s.ram_untyped(radix + 5), s.otype("seL4_CapTableObject"), radix, slot, 1)
    assert reply.label == 0, reply
    cap = s.cap(slot)
    node = s.kernel.objects[cap.object_paddr]  # type: ignore[index]
    assert isinstance(node, CNode)
    return slot, node


def _grow(s: System, endpoints: int) -> None:
    """Make ``endpoints`` more live endpoints (256 per retype, into a CNode of their own)."""
    node_slot, _ = _cnode_in(s, 12)
    untyped = s.ram_untyped(16)
    for first in range(0, endpoints, 256):
        reply = s.retype(untyped, s.otype("seL4_EndpointObject"), 0, first, 256,
                         node_index=node_slot, node_depth=64)
        assert reply.label == 0, reply


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("kind", ["seL4_EndpointObject", "seL4_TCBObject"])
def test_an_untyped_reset_touches_only_its_own_objects(arch: Arch, kind: str) -> None:
    """Retype-then-delete on a small untyped, with 4,096 other endpoints alive: no
    kernel entry of the cycle walks the whole object store or thread table."""
    s = System(arch, ram_size=16 << 20, invariants=False)
    _grow(s, 4096)
    before = len(s.kernel.objects)
    small, dest = s.ram_untyped(12), s.free_slots(1)
    store, threads = s.kernel.objects, s.kernel.threads
    guarded_store, guarded_threads = _NoScan(store), _NoScan(threads)
    s.kernel.objects, s.kernel.threads = guarded_store, guarded_threads
    made: list[object] = []
    for otype in (kind, "seL4_NotificationObject", kind):
        assert s.retype(small, s.otype(otype), 0, dest, 1).label == 0
        made.append(s.kernel.objects[s.cap(dest).object_paddr])  # type: ignore[index]
        assert s.call(CNODE, s.label("CNodeDelete"), [dest, 64]).label == 0
    store.clear(), threads.clear()
    store.update(dict.items(guarded_store)), threads.update(dict.items(guarded_threads))
    s.kernel.objects, s.kernel.threads = store, threads
    expected = Endpoint if kind == "seL4_EndpointObject" else TCB
    assert [type(o) for o in made] == [expected, Notification, expected]
    assert made[0] is not made[2]  # the reset forgot the first object: a new one was made
    assert len(s.kernel.objects) == before + 1  # the last one, still in its untyped
    check_all(s.kernel)


def test_the_reset_removes_exactly_the_region() -> None:
    """Objects just below and just above the reset region survive it."""
    s = System(Arch.RISCV64, invariants=False)
    kernel = s.kernel
    base = 0x8040_0000
    for paddr in (base - 0x10, base, base + 0x10, base + 0xFF0, base + 0x1000):
        kernel.add_object(Endpoint(paddr))
    removed = kernel.remove_objects_in(base, 0x1000)
    assert [o.paddr for o in removed] == [base, base + 0x10, base + 0xFF0]
    assert base - 0x10 in kernel.objects and base + 0x1000 in kernel.objects
    assert kernel.addresses_consistent()


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_large_cnode_costs_only_the_slots_used(arch: Arch) -> None:
    """A radix-16 CNode (65,536 slots) builds no slot until one is reached; copying a
    cap into its last slot builds that one; deleting the CNode empties it."""
    s = System(arch, ram_size=16 << 20)
    node_slot, node = _cnode_in(s, 16)
    assert len(node.slots) == 1 << 16 and node.slots.built == 0
    # Invoked on the new CNode itself: its index 0xFFFF at depth 16, from the root's TCB cap.
    reply = s.call(node_slot, s.label("CNodeCopy"),
                   [0xFFFF, 16, InitialCap.seL4_CapInitThreadTCB, 64, 0xF], extra=[CNODE])
    assert reply.label == 0, reply
    assert node.slots.built <= 2 and not node.slots[0xFFFF].is_empty
    assert s.call(CNODE, s.label("CNodeDelete"), [node_slot, 64]).label == 0
    assert node.paddr in s.kernel.objects and node.slots[0xFFFF].is_empty


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_huge_root_cnode_builds_only_the_boot_slots(arch: Arch) -> None:
    cfg = KernelConfig(ram_size=64 << 20, root_cnode_bits=20)
    kernel = Kernel(FakeMachine(arch, cfg.ram_size), cfg, lambda byte: None)
    report = boot(kernel, make_image(arch))
    assert kernel.current is not None
    root = kernel.object_at(kernel.current.ctable.cap.paddr, CNode)
    assert len(root.slots) == 1 << 20
    built = list(root.slots)
    assert all(not slot.is_empty for slot in built)  # the boot caps, nothing else
    assert len(built) == root.slots.built < report.bootinfo.empty[0]
    check_all(kernel)
