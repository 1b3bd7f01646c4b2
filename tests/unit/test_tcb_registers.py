"""A TCB's saved registers: the machine's copy (named by a handle), changes over it,
and the list made from both only when someone asks (``kernel.model.tcb``,
``KernelState.registers_of``); the fake machine's side of the handle protocol."""

from __future__ import annotations

import pickle

import pytest

from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.tcb import TCB
from tests.fakes import FakeMachine


def _world() -> tuple[FakeMachine, Kernel, TCB]:
    machine = FakeMachine(Arch.RISCV64, 1 << 16)
    kernel = Kernel(machine, KernelConfig(), lambda byte: None)
    return machine, kernel, TCB(0x8000_0000, len(machine.registers), 5)


def _saved(machine: FakeMachine, tcb: TCB, words: list[int]) -> None:
    """Save ``words`` (padded with zeros) as ``tcb``'s copy in ``machine``."""
    machine.registers = words + [0] * (len(machine.registers) - len(words))
    tcb.adopt_cpu(machine.save_thread(tcb.cpu))


def test_a_new_thread_has_a_list_and_no_saved_state() -> None:
    _, kernel, tcb = _world()
    assert tcb.cpu == 0 and tcb.register_list is not None
    tcb.set_register(3, 9)
    assert tcb.registers[3] == 9 and tcb.changes == {}
    assert kernel.registers_of(tcb) is tcb.registers


def test_after_a_save_writes_are_changes_until_the_list_is_made() -> None:
    machine, kernel, tcb = _world()
    _saved(machine, tcb, [1, 2, 3, 4, 5, 6, 7, 8])
    assert tcb.register_list is None and tcb.cpu != 0
    tcb.set_register(0, 100)
    tcb.set_register(7, 800)
    assert tcb.register_list is None and tcb.changes == {0: 100, 7: 800}
    with pytest.raises(AssertionError):
        _ = tcb.registers  # the TCB cannot reach the machine's copy by itself
    assert kernel.registers_of(tcb)[:8] == [100, 2, 3, 4, 5, 6, 7, 800]
    assert tcb.changes == {}  # folded into the list, which is now the truth
    tcb.set_register(1, 20)
    assert tcb.registers[1] == 20 and tcb.changes == {}


def test_assigning_a_list_replaces_pending_changes() -> None:
    machine, _, tcb = _world()
    _saved(machine, tcb, [0] * 8)
    tcb.set_register(2, 5)
    tcb.registers = [9] * 8
    assert tcb.changes == {} and tcb.registers == [9] * 8


def test_a_new_save_discards_the_old_list_and_reuses_the_handle() -> None:
    machine, kernel, tcb = _world()
    tcb.registers = [1] * len(machine.registers)
    _saved(machine, tcb, [2] * 8)
    handle = tcb.cpu
    assert tcb.register_list is None and kernel.registers_of(tcb)[:8] == [2] * 8
    _saved(machine, tcb, [3] * 8)
    assert tcb.cpu == handle and list(machine.threads) == [handle]


def test_the_fake_machine_loads_what_the_tcb_holds() -> None:
    machine, _, tcb = _world()
    n = len(machine.registers)
    _saved(machine, tcb, list(range(n)))
    tcb.set_register(4, 44)
    machine.registers = [0] * n
    machine.load_thread(tcb.cpu, tcb.register_list, tcb.changes)
    expected = list(range(n))
    expected[4] = 44
    assert machine.registers == expected


def test_the_fake_machine_exports_imports_and_forgets_threads() -> None:
    machine, _, tcb = _world()
    n = len(machine.registers)
    machine.set_address_space(0x8000_1000, 3)
    _saved(machine, tcb, list(range(n)))
    data = machine.export_thread(tcb.cpu)
    other = FakeMachine(Arch.RISCV64, 1 << 16)
    other.import_thread(tcb.cpu, data)
    other.load_thread(tcb.cpu, None, {})
    assert other.registers == list(range(n)) and (other.root, other.asid) == (0x8000_1000, 3)
    assert other.save_thread(0) != tcb.cpu  # new handles do not collide with imported ones
    machine.forget_thread(tcb.cpu)
    assert machine.threads == {}


def test_a_tcb_pickles_with_its_handle_and_no_machine() -> None:
    machine, _, tcb = _world()
    _saved(machine, tcb, [7] * 8)
    tcb.set_register(1, 11)
    copy = pickle.loads(pickle.dumps(tcb))
    assert (copy.cpu, copy.changes, copy.register_list) == (tcb.cpu, {1: 11}, None)
