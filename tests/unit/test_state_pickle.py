"""Kernel state pickles (DESIGN.md decision 7): without the machine, the console and the
observers, with every derivation link, however long the chain, and runs on once
attached to a machine holding the threads' CPU copies."""

from __future__ import annotations

import pickle

import pytest

from kernel.abi.arch import Arch
from kernel.boot import boot
from kernel.config import KernelConfig
from kernel.cspace.cdt import insert_child
from kernel.kernel import Kernel
from kernel.model.caps import CNodeCap, EndpointCap
from kernel.model.cnode import CNode
from kernel.model.slot import Slot
from kernel.views.invariants import check_all
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image

CHAIN = 20_000


def _booted(arch: Arch) -> tuple[Kernel, FakeMachine]:
    config = KernelConfig(ram_size=8 << 20)
    machine = FakeMachine(arch, config.ram_size)
    kernel = Kernel(machine, config, lambda byte: None)
    boot(kernel, make_image(arch))
    return kernel, machine


def _root_cnode(kernel: Kernel) -> CNode:
    assert kernel.current is not None
    cap = kernel.current.ctable.cap
    assert isinstance(cap, CNodeCap)
    node = kernel.objects[cap.paddr]
    assert isinstance(node, CNode)
    return node


def _chain(kernel: Kernel) -> list[Slot]:
    """A derivation chain CHAIN deep in a new CNode: each slot the child of the last."""
    node = CNode(0x7000_0000, 15)
    kernel.add_object(node)
    slots = node.slots.window(0, CHAIN)
    slots[0].cap, slots[0].revocable = EndpointCap(0x7100_0000), True
    for parent, child in zip(slots, slots[1:]):
        insert_child(parent, child, EndpointCap(0x7100_0000), revocable=True)
    return slots


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_booted_kernel_round_trips_without_its_attachments(arch: Arch) -> None:
    kernel, machine = _booted(arch)
    assert kernel.current is not None
    kernel.save_current()
    kernel.exit_observers.append(check_all)
    data = pickle.dumps(kernel)
    copy = pickle.loads(data)
    assert isinstance(copy, Kernel)
    for attachment in ("machine", "console"):
        assert not hasattr(copy, attachment)
    assert copy.exit_observers == [] and copy.syscall_observers == []
    assert copy.syscalls is not None and copy.abi is kernel.abi and copy.paging is kernel.paging
    assert copy.current is not None and copy.current.cpu == kernel.current.cpu
    assert [t.paddr for t in copy.threads.values()] == [t.paddr for t in kernel.threads.values()]
    assert sorted(copy.objects) == sorted(kernel.objects)
    with pytest.raises(ValueError):
        copy.attach(FakeMachine(Arch.AARCH64 if arch is Arch.RISCV64 else Arch.RISCV64, 1 << 20),
                    lambda byte: None)
    other = FakeMachine(arch, machine.ram_size)
    other.ram[:] = machine.ram
    for handle in machine.threads:
        other.import_thread(handle, machine.export_thread(handle))
    copy.attach(other, lambda byte: None)
    check_all(copy)
    assert copy.registers_of(copy.current) == kernel.registers_of(kernel.current)


def test_a_long_derivation_chain_pickles_without_recursion() -> None:
    kernel, _ = _booted(Arch.RISCV64)
    slots = _chain(kernel)
    copy = pickle.loads(pickle.dumps(kernel))
    node = copy.objects[0x7000_0000]
    assert isinstance(node, CNode)
    copied = node.slots.window(0, CHAIN)
    assert copied[0].mdb_prev is None and copied[-1].mdb_next is None
    for before, slot, after in zip(copied, copied[1:], copied[2:]):
        assert slot.mdb_prev is before and slot.mdb_next is after
    assert [s.cap for s in copied] == [s.cap for s in slots]
    # The boot-time derivations elsewhere came back too, every link both ways.
    for obj in copy.objects.values():
        for slot in getattr(obj, "slots", ()):
            assert slot.mdb_next is None or slot.mdb_next.mdb_prev is slot
            assert slot.mdb_prev is None or slot.mdb_prev.mdb_next is slot
    copy.attach(FakeMachine(Arch.RISCV64, 8 << 20), lambda byte: None)
    check_all(copy)


def test_a_slot_pickled_alone_comes_back_unlinked() -> None:
    kernel, _ = _booted(Arch.RISCV64)
    slots = _chain(kernel)
    copy = pickle.loads(pickle.dumps(slots[5]))
    assert (copy.cap, copy.revocable, copy.owner, copy.index) == (
        slots[5].cap, True, slots[5].owner, 5)
    assert copy.mdb_prev is None and copy.mdb_next is None


@pytest.mark.parametrize("arch", list(Arch))
def test_every_attribute_of_the_kernel_is_either_state_or_rebuilt(arch: Arch) -> None:
    """A pickle carries the attributes ``_STATE`` names (a compiled kernel has no
    ``__dict__`` to take them from); everything else must be an attachment or derived,
    so a new attribute is declared one or the other, not silently lost in a checkpoint."""
    kernel, _ = _booted(arch)
    assert not set(Kernel._STATE) & set(Kernel._NOT_STATE)
    assert set(vars(kernel)) == set(Kernel._STATE) | set(Kernel._NOT_STATE)
