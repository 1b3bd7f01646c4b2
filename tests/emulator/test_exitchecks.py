"""Unicorn's exit check after every load and store, and when the machine turns it off
(emulator.exitchecks)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from unicorn import Uc
from unicorn.unicorn_const import UC_HOOK_MEM_READ

from emulator.blockcount import ENABLE_VARIABLE, LIBRARY_NAME
from emulator.cpu import CpuBackend
from emulator.exitchecks import ExitChecks
from emulator.machine import MachineState, UnicornMachine
from emulator.native.build import BuildError, build_block_library
from kernel.abi.arch import Arch
from tests.emulator.engines import NEVER, RAM, engine


def calibrated(arch: Arch) -> tuple[Uc, CpuBackend, int, ExitChecks]:
    uc, cpu, base = engine(arch)
    checks = ExitChecks(uc)
    checks.calibrate(uc, base, cpu.load_probe_code, cpu.probe_register, cpu.load_probe_address)
    return uc, cpu, base, checks


def stopped_after_load(uc: Uc, cpu: CpuBackend, at: int) -> int:
    """Run the load probe at ``at`` with a load hook that asks for a stop: the probe's
    register, 1 if the stop came right after the load, 2 if the block ran on."""
    data = at + 0x100
    uc.mem_write(at, cpu.load_probe_code)
    loads = uc.hook_add(UC_HOOK_MEM_READ, lambda *args: uc.emu_stop(), begin=data, end=data + 7)
    try:
        uc.reg_write(cpu.probe_register, 0)
        uc.reg_write(cpu.load_probe_address, data)
        uc.emu_start(at, NEVER, 0, 0)  # the engine stops at the syscall
        return int(uc.reg_read(cpu.probe_register))
    finally:
        uc.hook_del(loads)


def test_the_switch_is_found_and_the_probe_confirms_it(arch: Arch) -> None:
    uc, cpu, base, checks = calibrated(arch)
    assert checks.available
    assert checks.on  # calibration leaves Unicorn's default
    # ... and its probe leaves no trace: the bytes it used are zero again.
    assert bytes(uc.mem_read(base, 0x100)) == bytes(0x100)


def test_off_a_stop_asked_during_a_load_waits_for_the_block_end(arch: Arch) -> None:
    uc, cpu, base, checks = calibrated(arch)
    at = base + 0x4000
    assert stopped_after_load(uc, cpu, at) == 1
    assert checks.set_on(False)
    uc.ctl_remove_cache(at, at + len(cpu.load_probe_code))
    assert stopped_after_load(uc, cpu, at) == 2
    assert not checks.set_on(False)  # no change
    assert checks.set_on(True)
    uc.ctl_remove_cache(at, at + len(cpu.load_probe_code))
    assert stopped_after_load(uc, cpu, at) == 1


def test_without_the_switch_the_check_stays_on(arch: Arch) -> None:
    uc, cpu, base = engine(arch)
    checks = ExitChecks(uc)
    checks._flag = None  # as when the fields around it are not found
    checks.calibrate(uc, base, cpu.load_probe_code, cpu.probe_register, cpu.load_probe_address)
    assert not checks.available
    assert not checks.set_on(False)
    assert checks.on


def test_a_probe_that_disagrees_leaves_the_check_on(arch: Arch) -> None:
    """Calibrated with a probe that has no load, off and on look alike: not available."""
    uc, cpu, base = engine(arch)
    checks = ExitChecks(uc)
    checks.calibrate(uc, base, cpu.probe_code, cpu.probe_register, cpu.load_probe_address)
    assert not checks.available
    assert not checks.set_on(False)
    assert checks.on


@pytest.fixture(scope="module")
def block_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_block_library(tmp_path_factory.mktemp("native") / LIBRARY_NAME)
    except BuildError as error:
        pytest.skip(f"cannot build the native block hook: {error}")


@pytest.fixture
def counted_by_blocks(block_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENABLE_VARIABLE, str(block_library))


def test_machines_keep_the_check_for_unicorns_counter(arch: Arch, monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setenv(ENABLE_VARIABLE, "0")
    assert UnicornMachine(arch, RAM).exit_checks.on


@pytest.mark.usefixtures("counted_by_blocks")
def test_machines_turn_the_check_off_until_something_needs_it(arch: Arch) -> None:
    machine = UnicornMachine(arch, RAM)
    assert not machine.exit_checks.on
    machine.add_breakpoint(0x1000)
    assert machine.exit_checks.on
    machine.remove_breakpoint(0x1000)
    assert not machine.exit_checks.on
    if machine.cpu.fpu_trap_emulated:
        machine.set_fpu_enabled(False)  # the FP watch is a code hook
        assert machine.exit_checks.on
        machine.set_fpu_enabled(True)
        assert not machine.exit_checks.on
    # A table entry pointing into RAM changes nothing; one pointing outside (a device
    # frame, where nothing answers) turns the check on for good.
    table = machine.ram_base + 0x10000
    machine.write_table_entry(table, 0, machine.paging.table_entry(machine.ram_base + 0x11000))
    assert not machine.exit_checks.on
    machine.write_table_entry(table, 1, machine.paging.table_entry(machine.ram_base + RAM))
    assert machine.exit_checks.on
    machine.add_breakpoint(0x1000)
    machine.remove_breakpoint(0x1000)
    assert machine.exit_checks.on


@pytest.mark.usefixtures("counted_by_blocks")
def test_a_restored_machine_needs_the_check_as_its_original_did(arch: Arch) -> None:
    machine = UnicornMachine(arch, RAM)
    state = machine.export_state()
    assert not state.device_mapped
    assert not UnicornMachine.from_state(state).exit_checks.on
    # A snapshot written before the flag was recorded unpickles as a call without it
    # (kernel.pickling): the check stays on.
    older = MachineState(*[getattr(state, f.name) for f in fields(MachineState)
                           if f.name != "device_mapped"])
    assert UnicornMachine.from_state(older).exit_checks.on
    table = machine.ram_base + 0x10000
    machine.write_table_entry(table, 1, machine.paging.table_entry(machine.ram_base + RAM))
    state = machine.export_state()
    assert state.device_mapped
    assert UnicornMachine.from_state(state).exit_checks.on
