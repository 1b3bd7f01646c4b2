"""A TCB's saved registers: the machine's copy, changes over it, and the list made
from both only when someone reads it (``kernel.model.tcb``)."""

from __future__ import annotations

from kernel.abi.arch import Arch
from kernel.model.tcb import TCB
from tests.fakes import FakeMachine, FakeSaved


def _tcb() -> TCB:
    return TCB(0x8000_0000, 8, 5)


def test_a_new_thread_has_a_list_and_no_saved_state() -> None:
    tcb = _tcb()
    assert tcb.saved is None and tcb.register_list == [0] * 8
    tcb.set_register(3, 9)
    assert tcb.registers[3] == 9 and tcb.changes == {}


def test_after_a_save_writes_are_changes_until_the_list_is_read() -> None:
    tcb = _tcb()
    tcb.adopt_saved(FakeSaved([1, 2, 3, 4, 5, 6, 7, 8]))
    assert tcb.register_list is None
    tcb.set_register(0, 100)
    tcb.set_register(7, 800)
    assert tcb.register_list is None and tcb.changes == {0: 100, 7: 800}
    assert tcb.registers == [100, 2, 3, 4, 5, 6, 7, 800]
    assert tcb.changes == {}  # folded into the list, which is now the truth
    tcb.set_register(1, 20)
    assert tcb.registers[1] == 20 and tcb.changes == {}


def test_assigning_a_list_replaces_pending_changes() -> None:
    tcb = _tcb()
    tcb.adopt_saved(FakeSaved([0] * 8))
    tcb.set_register(2, 5)
    tcb.registers = [9] * 8
    assert tcb.changes == {} and tcb.registers == [9] * 8


def test_a_new_save_discards_the_old_list() -> None:
    tcb = _tcb()
    tcb.registers = [1] * 8
    tcb.adopt_saved(FakeSaved([2] * 8))
    assert tcb.register_list is None and tcb.registers == [2] * 8


def test_the_fake_machine_loads_what_the_tcb_holds() -> None:
    machine = FakeMachine(Arch.RISCV64, 1 << 16)
    n = len(machine.registers)
    machine.registers = list(range(n))
    tcb = TCB(0x8000_0000, n, 5)
    tcb.adopt_saved(machine.save_thread())
    tcb.set_register(4, 44)
    machine.registers = [0] * n
    machine.load_thread(tcb.saved, tcb.register_list, tcb.changes)
    expected = list(range(n))
    expected[4] = 44
    assert machine.registers == expected
