"""The syscall registers, the whole CPU state a switch copies, and each user register
within that state, read and written where the emulated CPU keeps them (emulator.liveregs)."""

from __future__ import annotations

import struct

import pytest
from unicorn import Uc
from unicorn import arm64_const as A
from unicorn import riscv_const as R
from unicorn.unicorn_py3.unicorn import uclib

from emulator.cpu import CpuBackend, backend_for
from emulator.liveregs import _MAGIC, LiveWindow, locate_registers, locate_state, locate_window
from emulator.machine import SavedCpu, UnicornMachine
from kernel.abi.arch import Arch


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def user_mode_engine(arch: Arch) -> tuple[Uc, CpuBackend]:
    cpu = backend_for(arch)
    uc = cpu.create()
    uc.mem_map(cpu.abi.ram_base, 1 << 20)
    cpu.enter_user_mode(uc)
    return uc, cpu


def engine_with_registers(arch: Arch, values: list[int]) -> tuple[Uc, tuple[int, ...]]:
    """A user-mode engine whose syscall registers hold ``values``, and their ids."""
    uc, cpu = user_mode_engine(arch)
    regs = tuple(cpu.syscall_regs)
    for reg, value in zip(regs, values):
        uc.reg_write(reg, value)
    return uc, regs


def test_the_window_is_the_registers(arch: Arch) -> None:
    before = [11 * (i + 1) for i in range(8)]
    uc, regs = engine_with_registers(arch, before)
    window = locate_window(uc, regs)
    assert isinstance(window, LiveWindow)
    # Locating leaves the registers as they were.
    assert [uc.reg_read(r) for r in regs] == before
    assert window.read() == before
    window.write([7, 8, 9])
    assert [uc.reg_read(r) for r in regs] == [7, 8, 9, *before[3:]]
    uc.reg_write(regs[7], 2**64 - 1)
    assert window.read()[7] == 2**64 - 1
    # Stored modulo 2**64, as uc_reg_write takes a 64-bit register.
    window.write([-1, 2**64 | 5])
    assert [uc.reg_read(r) for r in regs[:2]] == [2**64 - 1, 5]


def test_a_second_engine_finds_its_own_window(arch: Arch) -> None:
    first, cpu = user_mode_engine(arch)
    second, _ = user_mode_engine(arch)
    a = locate_window(first, cpu.syscall_regs)
    b = locate_window(second, cpu.syscall_regs)
    assert a is not None and b is not None
    a.write([1] * 8)
    b.write([2] * 8)
    assert first.reg_read(cpu.syscall_regs[0]) == 1
    assert second.reg_read(cpu.syscall_regs[0]) == 2


def test_registers_that_are_not_consecutive_are_refused(arch: Arch) -> None:
    uc, cpu = user_mode_engine(arch)
    assert locate_window(uc, tuple(reversed(cpu.syscall_regs))) is None
    assert locate_window(uc, cpu.syscall_regs[:4]) is None
    with pytest.raises(ValueError):
        LiveWindow(0).write([0] * 9)


def test_machines_use_the_window(arch: Arch) -> None:
    machine = UnicornMachine(arch, 8 << 20)
    machine.write_syscall_window([5, 6, 7, 8, 9, 10, 11, 12])
    assert machine.read_syscall_window() == [5, 6, 7, 8, 9, 10, 11, 12]
    assert isinstance(machine._syscall_window, LiveWindow)
    assert machine.uc.reg_read(machine.cpu.syscall_regs[4]) == 9


def _saved_state(machine: UnicornMachine) -> bytes:
    """The CPU state as uc_context_save copies it."""
    saved = SavedCpu(machine.uc, machine._context_batch)
    assert uclib.uc_context_save(machine.uc._uch, saved.pointer) == 0
    return bytes(saved.view)


def test_the_live_state_is_the_state_unicorn_saves_and_restores(arch: Arch) -> None:
    machine = UnicornMachine(arch, 8 << 20)
    assert machine._state is not None
    words = [0x7E57_0000_0000_0000 | i for i in range(8)]
    machine.write_syscall_window(words)
    assert bytes(machine._state) == _saved_state(machine)
    # A state copied in is what the API then reads.
    window_at = bytes(machine._state).find(b"".join(w.to_bytes(8, "little") for w in words))
    changed = bytearray(machine._state)
    changed[window_at : window_at + 8] = (99).to_bytes(8, "little")
    machine._state[:] = changed
    assert machine.uc.reg_read(machine.cpu.syscall_regs[0]) == 99
    assert _saved_state(machine) == bytes(changed)


def test_a_state_that_does_not_verify_is_refused(arch: Arch) -> None:
    before = [3 * (i + 1) for i in range(8)]
    uc, regs = engine_with_registers(arch, before)
    window = locate_window(uc, regs)
    assert window is not None
    # No magic values in the "saved" bytes: nothing to count back from.
    assert locate_state(uc, regs, window, lambda: memoryview(bytes(4096))) is None
    # The magic values at an offset the live memory does not agree with.
    shifted = bytes(8) + struct.pack("<8Q", *_MAGIC) + bytes(4096)
    assert locate_state(uc, regs, window, lambda: memoryview(shifted)) is None
    assert [uc.reg_read(r) for r in regs] == before  # left as they were


def test_each_user_register_has_its_word_in_the_state(arch: Arch) -> None:
    machine = UnicornMachine(arch, 8 << 20)
    state = machine._state
    assert state is not None
    uc, regs = machine.uc, machine.cpu.context_regs
    for i, reg in enumerate(regs):
        uc.reg_write(reg, 0x1000 + 8 * i)  # 8-aligned: a valid pc and sp
    before = bytes(state)
    layout = locate_registers(uc, regs, state)
    assert bytes(state) == before  # locating leaves the state as it was
    names = machine.cpu.abi.user_context
    unlocated = [names[i] for i, word in enumerate(layout) if word < 0]
    # AArch64 keeps its condition flags as four fields: no one word is the register.
    assert unlocated == ([] if arch is Arch.RISCV64 else ["spsr"])
    words = state.cast("Q")
    for i, (reg, word) in enumerate(zip(regs, layout)):
        if word < 0:
            continue
        assert words[word] == uc.reg_read(reg) == 0x1000 + 8 * i
        words[word] = 0x2000 + 8 * i
        assert uc.reg_read(reg) == 0x2000 + 8 * i
    assert len(set(word for word in layout if word >= 0)) == len(regs) - len(unlocated)


def test_a_register_whose_write_changes_no_one_word_is_not_located(arch: Arch) -> None:
    machine = UnicornMachine(arch, 8 << 20)
    assert machine._state is not None
    # Between pc and a syscall register, both located, one whose write does more than
    # store the value in a word: RISC-V's privilege level goes through a mode change,
    # AArch64's condition flags are four fields.
    outside = {Arch.RISCV64: R.UC_RISCV_REG_PRIV, Arch.AARCH64: A.UC_ARM64_REG_NZCV}[arch]
    layout = locate_registers(machine.uc, [machine.cpu.pc_reg, outside,
                                           machine.cpu.syscall_regs[0]], machine._state)
    assert layout[0] >= 0 and layout[1] == -1 and layout[2] >= 0
