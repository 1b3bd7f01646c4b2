"""The kernel's writes to guest RAM drop the code translated from it (emulator.translation)."""

from __future__ import annotations

import pytest
from unicorn import Uc, UcError
from unicorn.unicorn_const import UC_ERR_FETCH_UNMAPPED

from emulator.cpu import CpuBackend
from emulator.machine import UnicornMachine
from emulator.translation import TranslationKeeper
from kernel.abi.arch import Arch
from tests.emulator.engines import NEVER, RAM, engine


def run_probe(uc: Uc, cpu: CpuBackend, at: int) -> int:
    uc.reg_write(cpu.probe_register, 0)
    uc.emu_start(at, NEVER, 0, 64)
    return int(uc.reg_read(cpu.probe_register))


def test_unicorn_keeps_stale_code_after_mem_write(arch: Arch) -> None:
    """The premise (Unicorn 2.1.4): without the keeper, code overwritten through
    uc_mem_write still runs as it was. If this fails, Unicorn has fixed it and the
    keeper can go."""
    uc, cpu, base = engine(arch)
    at = base + 0x3000
    uc.mem_write(at, cpu.probe_code)
    assert run_probe(uc, cpu, at) == 2
    uc.mem_write(at, cpu.patched_probe_code)
    assert run_probe(uc, cpu, at) == 2


@pytest.mark.parametrize("routine", ["found", "missing"])
def test_forget_makes_the_new_code_run(arch: Arch, routine: str) -> None:
    uc, cpu, base = engine(arch)
    name = arch.name.lower() if routine == "found" else "no-such-architecture"
    keeper = TranslationKeeper(uc, name, base, RAM)
    keeper.calibrate(cpu.probe_code, cpu.patched_probe_code, cpu.probe_register, (2, 1))
    # With the routine, only the written range is dropped; without, everything is.
    assert keeper.precise is (routine == "found")
    at = base + 0x5000
    uc.mem_write(at, cpu.probe_code)
    keeper.forget(at, len(cpu.probe_code))
    assert run_probe(uc, cpu, at) == 2
    uc.mem_write(at, cpu.patched_probe_code)
    keeper.forget(at, len(cpu.probe_code))
    assert run_probe(uc, cpu, at) == 1
    # The probe left the start of RAM as it found it.
    assert bytes(uc.mem_read(base, len(cpu.probe_code))) == bytes(len(cpu.probe_code))


def test_forget_outside_ram_is_harmless(arch: Arch) -> None:
    uc, cpu, base = engine(arch)
    keeper = TranslationKeeper(uc, arch.name.lower(), base, RAM)
    keeper.calibrate(cpu.probe_code, cpu.patched_probe_code, cpu.probe_register, (2, 1))
    keeper.forget(base + RAM, 0x1000)
    keeper.forget(0, 0x1000)
    keeper.forget(base, 0)


def test_machines_drop_translations_precisely(arch: Arch) -> None:
    assert UnicornMachine(arch, RAM).translations.precise


def test_the_rescan_hooks_cover_every_address_but_ram(arch: Arch) -> None:
    """Every store the guest makes reaches RAM, so none may fall under the hooks (a
    store under one would take QEMU's slow path every time); everything else does."""
    uc, _cpu, base = engine(arch)
    keeper = TranslationKeeper(uc, arch.name.lower(), base, RAM)
    ranges = keeper.skip_rescans()
    assert all(begin <= end for begin, end in ranges)
    covered = sum(end - begin + 1 for begin, end in ranges)
    assert covered == (1 << 64) - RAM
    assert not any(begin <= address <= end for begin, end in ranges
                   for address in (base, base + RAM - 1))
    assert keeper.skip_rescans() == ranges  # a second call adds no hooks
    assert len(keeper._rescan_hooks) == len(ranges)


def test_an_unmapped_fetch_still_fails_under_the_rescan_hooks(arch: Arch) -> None:
    """The hooks handle nothing: a fetch from where nothing is mapped fails as before."""
    uc, cpu, base = engine(arch)
    TranslationKeeper(uc, arch.name.lower(), base, RAM).skip_rescans()
    unmapped = base + RAM + 0x10000
    with pytest.raises(UcError) as raised:
        uc.emu_start(unmapped, NEVER, 0, 16)
    assert raised.value.errno == UC_ERR_FETCH_UNMAPPED


def test_machines_skip_rescans(arch: Arch) -> None:
    """Every machine installs the hooks (that guests' stores to code they run are still
    noticed under them is checked by userland/tests/code_alias.c, CODE0001, whose code
    lies outside RAM's physical range)."""
    machine = UnicornMachine(arch, RAM)
    assert len(machine.translations._rescan_hooks) == 2
