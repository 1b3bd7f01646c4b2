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
import unicorn.arm64_const as A
from unicorn.unicorn_const import UC_HOOK_INTR, UC_PROT_ALL

from emulator.cpu import backend_for
from emulator.machine import UnicornMachine
from kernel.abi.arch import Arch
from kernel.model.paging import AARCH64_4K, VMRights


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


def test_dropping_one_aarch64_page_keeps_the_other_pages() -> None:
    """The one-page flush (an unmap's) drops that page alone: another page's stale entry
    still translates until its own flush. Unicorn's ARM engine defaults to 1 KiB pages,
    under which every 4 KiB page counts as large and any one-page flush drops the whole
    TLB; emulator.cpu asks for 4 KiB."""
    cpu = backend_for(Arch.AARCH64)
    uc = cpu.create()
    assert uc.ctl_get_page_size() == 4096
    base = cpu.abi.ram_base
    uc.mem_map(base, 1 << 20, UC_PROT_ALL)
    uc.hook_add(UC_HOOK_INTR, lambda uc, intno, data: uc.emu_stop())
    cpu.enter_user_mode(uc)
    fmt = AARCH64_4K
    tables = [base + 0x1000 * level for level in range(4)]  # L0..L3, all indexing VA 0
    for parent, child in zip(tables, tables[1:]):
        uc.mem_write(parent, fmt.table_entry(child).to_bytes(8, "little"))
    code, first, second = base + 0x10000, base + 0x11000, base + 0x12000
    uc.mem_write(code, bytes.fromhex("200040f9" "010000d4"))  # ldr x0, [x1]; svc #0
    uc.mem_write(first, (1).to_bytes(8, "little"))
    uc.mem_write(second, (2).to_bytes(8, "little"))

    def leaf(index: int, paddr: int, executable: bool) -> None:
        rights = VMRights.READ_ONLY if executable else VMRights.READ_WRITE
        entry = fmt.leaf_entry(paddr, 3, rights, executable, True)
        uc.mem_write(tables[3] + 8 * index, entry.to_bytes(8, "little"))

    leaf(1, code, True)
    leaf(2, first, False)  # read at VA 0x2000
    leaf(3, first, False)  # VA 0x3000: only ever flushed
    cpu.set_address_space(uc, tables[0], 1)

    def load() -> int:
        uc.reg_write(A.UC_ARM64_REG_X1, 0x2000)
        uc.emu_start(0x1000, 0xFFFF_FFFF_FFFF_FFFF, 0, 2)
        return int(uc.reg_read(A.UC_ARM64_REG_X0))

    assert load() == 1
    leaf(2, second, False)  # remapped with no flush: the TLB still holds the old frame
    cpu.flush_tlb_page(uc, 0x3000)
    assert load() == 1
    cpu.flush_tlb_page(uc, 0x2000)
    assert load() == 2
