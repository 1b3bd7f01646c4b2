"""Saving and loading a thread on the Unicorn machine (``save_thread``/``load_thread``).

A switch copies the whole CPU state each way: the user registers come back exactly,
the state the register list does not hold (FP registers) comes back too, changes the
kernel made to a saved thread are applied on load, and a saved state that carries
another address space's translation root is adopted with a flush. Saved threads are
named by handles; they leave a machine as bytes and enter another one. Each test runs
with both ways of copying the state.
"""

from __future__ import annotations

import pytest
from unicorn import arm64_const as A
from unicorn import riscv_const as R

from emulator.machine import MachineError, UnicornMachine
from kernel.abi.arch import Arch

FP_REGISTER = {Arch.RISCV64: R.UC_RISCV_REG_F3, Arch.AARCH64: A.UC_ARM64_REG_D3}


COPIES = ("memory copy", "memory copy, registers by API", "API")


@pytest.fixture(params=[(arch, copy) for arch in Arch for copy in COPIES],
                ids=lambda p: f"{p[0].short}-{p[1]}")
def machine(request: pytest.FixtureRequest) -> UnicornMachine:
    """A machine that switches threads by copying the live CPU state and reads and
    writes a saved thread's registers at their words in it; or copies the state but
    goes through Unicorn for the registers (where they cannot be located); or (where
    the state cannot be located) does everything through uc_context_save/restore."""
    arch, copy = request.param
    m = UnicornMachine(arch, 1 << 20)
    assert m._state is not None and m._layout  # located on every platform the suite runs on
    if copy != "memory copy":
        m._layout, m._state_words = (), None
    if copy == "API":
        m._state = None
    return m


def _distinct(m: UnicornMachine, seed: int) -> list[int]:
    """A register file with a different value in every register (pc 4-aligned in RAM)."""
    words = [(seed << 32) | (i * 0x1111) for i in range(len(m.save_context()))]
    words[0] = m.ram_base + 0x1000 + 4 * seed
    if m.arch is Arch.AARCH64:
        # Only NZCV is the thread's; Z and C set, and in a register the machine reads
        # and writes through Unicorn even with the others at their words in the state.
        words[m.cpu.abi.user_context.index("spsr")] = 0x6000_0000
    return words


def test_a_saved_thread_comes_back_exactly(machine: UnicornMachine) -> None:
    m = machine
    first = _distinct(m, 1)
    m.load_context(first)
    m.uc.reg_write(FP_REGISTER[m.arch], 0x4009_21FB_5444_2D18)
    saved = m.save_thread(0)
    assert m.thread_registers(saved) == m.save_context() == first

    m.load_context(_distinct(m, 2))  # another thread runs
    m.uc.reg_write(FP_REGISTER[m.arch], 7)
    m.load_thread(saved, None, {})
    assert m.save_context() == first
    assert m.uc.reg_read(FP_REGISTER[m.arch]) == 0x4009_21FB_5444_2D18


def test_changes_and_lists_go_over_the_saved_state(machine: UnicornMachine) -> None:
    m = machine
    first = _distinct(m, 1)
    m.load_context(first)
    saved = m.save_thread(0)
    m.load_context(_distinct(m, 2))

    m.load_thread(saved, None, {1: 0xAA, 5: 0xBB})
    expected = list(first)
    expected[1], expected[5] = 0xAA, 0xBB
    assert m.save_context() == expected

    # Every register can be changed, those kept apart (AArch64's flags) among them, and
    # a value beyond 64 bits keeps its low 64, as Unicorn's own write does.
    m.load_context(_distinct(m, 2))
    changes = {i: 0x5000 + 8 * i for i in range(len(first))}
    if m.arch is Arch.AARCH64:
        changes[m.cpu.abi.user_context.index("spsr")] = 0x9000_0000
    changes[3] = (1 << 64) | 0x77
    m.load_thread(saved, None, changes)
    expected = [changes[i] for i in range(len(first))]
    expected[3] = 0x77
    assert m.save_context() == expected

    replacement = _distinct(m, 3)
    m.load_thread(saved, replacement, {})
    assert m.save_context() == replacement


def test_saving_under_a_handle_overwrites_that_copy(machine: UnicornMachine) -> None:
    m = machine
    m.load_context(_distinct(m, 1))
    saved = m.save_thread(0)
    second = _distinct(m, 2)
    m.load_context(second)
    assert m.save_thread(saved) == saved and m.thread_registers(saved) == second
    assert m.thread_handles == [saved]
    assert m.save_thread(0) != saved  # 0 asks for a new copy


def test_a_forgotten_thread_is_gone(machine: UnicornMachine) -> None:
    m = machine
    saved = m.save_thread(0)
    m.forget_thread(saved)
    m.forget_thread(0)  # ignored
    assert m.thread_handles == []
    with pytest.raises(MachineError):
        m.load_thread(saved, None, {})


def test_an_exported_thread_runs_on_in_another_machine(machine: UnicornMachine) -> None:
    m = machine
    first = _distinct(m, 1)
    m.load_context(first)
    m.uc.reg_write(FP_REGISTER[m.arch], 0x4009_21FB_5444_2D18)
    m.set_address_space(m.ram_base, 5)
    saved = m.save_thread(0)
    data = m.export_thread(saved)
    other = UnicornMachine(m.arch, 1 << 20)
    other.import_thread(saved, data)
    other.load_thread(saved, None, {})
    assert other.save_context() == first
    assert other.uc.reg_read(FP_REGISTER[m.arch]) == 0x4009_21FB_5444_2D18
    assert (other.root, other.asid) == (m.ram_base, 5)
    assert other.export_thread(saved) == data  # nothing of the engine in the bytes
    assert other.save_thread(0) > saved
    with pytest.raises(MachineError):
        other.import_thread(saved, data[:-1])


def test_the_live_cpu_state_moves_between_machines(machine: UnicornMachine) -> None:
    m = machine
    first = _distinct(m, 1)
    m.load_context(first)
    m.set_address_space(m.ram_base, 2)
    other = UnicornMachine(m.arch, 1 << 20)
    other.import_cpu(m.export_cpu())
    assert other.save_context() == first and (other.root, other.asid) == (m.ram_base, 2)
    assert m.thread_handles == [] and other.thread_handles == []


def test_loading_a_state_saved_in_another_space_adopts_that_space(
        machine: UnicornMachine, monkeypatch: pytest.MonkeyPatch) -> None:
    m = machine
    flushes: list[int] = []
    real = m.cpu.flush_tlb
    monkeypatch.setattr(m.cpu, "flush_tlb", lambda uc: (flushes.append(1), real(uc)))
    m.set_address_space(m.ram_base, 1)
    saved = m.save_thread(0)
    m.set_address_space(m.ram_base + 0x1000, 2)
    before = len(flushes)
    m.load_thread(saved, None, {})
    # The copy put the first root back into the CPU: the machine knows, and the TLB
    # entries of the second space are gone.
    assert (m.root, m.asid) == (m.ram_base, 1)
    assert len(flushes) == before + 1
    m.load_thread(saved, None, {})  # same space again: nothing to flush
    assert len(flushes) == before + 1


def test_a_thread_that_never_ran_starts_with_clear_fp_state(machine: UnicornMachine) -> None:
    m = machine
    m.uc.reg_write(FP_REGISTER[m.arch], 0x1234)  # left by the thread that ran before
    registers = _distinct(m, 4)
    m.load_thread(0, registers, {})
    assert m.save_context() == registers
    assert m.uc.reg_read(FP_REGISTER[m.arch]) == 0


def test_the_window_read_twice_in_an_entry_sees_every_write(machine: UnicornMachine) -> None:
    # read_syscall_window keeps a copy within a kernel entry: writes through the
    # machine must never leave it stale, and callers may not change it by mutation.
    m = machine
    m.load_context(_distinct(m, 1))
    first = m.read_syscall_window()
    first[0] = 0xDEAD  # a caller's edit of its list changes nothing
    assert m.read_syscall_window()[0] != 0xDEAD
    m.write_syscall_window([5, 6])
    assert m.read_syscall_window()[:2] == [5, 6]
    m.load_context(_distinct(m, 2))
    assert m.read_syscall_window() == [_distinct(m, 2)[i] for i in _window_positions(m)]
    saved = m.save_thread(0)
    m.load_context(_distinct(m, 3))
    m.read_syscall_window()
    m.load_thread(saved, None, {})
    assert m.read_syscall_window() == [_distinct(m, 2)[i] for i in _window_positions(m)]


def _window_positions(m: UnicornMachine) -> list[int]:
    names = m.cpu.abi.user_context
    prefix = "a" if m.arch is Arch.RISCV64 else "x"
    return [names.index(f"{prefix}{i}") for i in range(8)]
