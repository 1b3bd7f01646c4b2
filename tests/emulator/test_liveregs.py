"""The syscall registers read and written in the CPU state (emulator.liveregs)."""

from __future__ import annotations

import pytest
from unicorn import Uc

from emulator.cpu import CpuBackend, backend_for
from emulator.liveregs import LiveWindow, locate_window
from emulator.machine import UnicornMachine
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


def test_the_window_is_the_registers(arch: Arch) -> None:
    uc, cpu = user_mode_engine(arch)
    regs = cpu.syscall_regs
    before = [11 * (i + 1) for i in range(8)]
    for reg, value in zip(regs, before):
        uc.reg_write(reg, value)
    window = locate_window(uc, regs)
    assert isinstance(window, LiveWindow)
    # Locating leaves the registers as they were.
    assert [uc.reg_read(r) for r in regs] == before
    assert window.read() == before
    window.write([7, 8, 9])
    assert [uc.reg_read(r) for r in regs] == [7, 8, 9, *before[3:]]
    uc.reg_write(regs[7], 2**64 - 1)
    assert window.read()[7] == 2**64 - 1


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
