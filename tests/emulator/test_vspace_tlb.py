"""What the Unicorn machine throws away when address spaces change or switch.

Unicorn's TLB is not ASID-tagged and holds the installed address space only, so:
a change to another address space's tables costs no flush; a change to the installed
one flushes; switching address spaces flushes once (on RISC-V the SATP write with a new
ASID does it itself, so no second flush), and switching between threads of one address
space flushes nothing. Correctness of the same rules is checked by the guest programs
(vspace_unmap_fault, vspace_readonly_fault, spawn).
"""

from __future__ import annotations

import pytest

from emulator.machine import UnicornMachine
from kernel.abi.arch import Arch


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[UnicornMachine, list[int]]:
    m = UnicornMachine(request.param, 1 << 20)
    flushes: list[int] = []
    real = m.cpu.flush_tlb
    monkeypatch.setattr(m.cpu, "flush_tlb", lambda uc: (flushes.append(1), real(uc)))
    return m, flushes


def test_changes_elsewhere_cost_no_flush(machine: tuple[UnicornMachine, list[int]]) -> None:
    m, flushes = machine
    m.set_address_space(m.ram_base, 1)
    before = len(flushes)
    m.mappings_changed(2)
    assert len(flushes) == before
    m.mappings_changed(1)
    assert len(flushes) == before + 1


def test_switches_flush_once_or_not_at_all(machine: tuple[UnicornMachine, list[int]]) -> None:
    m, flushes = machine
    m.set_address_space(m.ram_base, 1)
    before = len(flushes)
    m.set_address_space(m.ram_base, 1)  # another thread, same address space
    assert len(flushes) == before
    m.set_address_space(m.ram_base + 0x1000, 2)
    # RISC-V: the SATP write with the new ASID flushed; AArch64: our one flush.
    assert len(flushes) == before + (0 if m.arch is Arch.RISCV64 else 1)
    m.set_address_space(m.ram_base + 0x2000, 2)  # a new root under the same ASID
    assert len(flushes) == before + (1 if m.arch is Arch.RISCV64 else 2)
