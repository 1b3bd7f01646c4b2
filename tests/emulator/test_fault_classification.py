"""How the machine classifies what Unicorn reports, and the fault each case becomes.

- A Unicorn error that ends ``emu_start`` is the guest's doing exactly when the page walk
  succeeded but no memory region lies behind the physical address (the *_UNMAPPED
  errors): a bus error, delivered as a VMFault with the architecture's bus-error status
  (AArch64: synchronous external abort; RISC-V: access fault). Any other error is the
  emulator's own.
- A pc off the instruction grid is found before anything runs there: AArch64's PC
  alignment fault (a UserException, ESR EC 0x22), while on RISC-V the thread simply runs
  from the even address below.

The machine-level cases boot ``hello``, replace its first instructions and map a 1 GiB
block of physical addresses where capsule's platform has nothing (device memory
outside RAM) at a high virtual address; the root task has no fault handler, so the run
stops with the fault line, which carries seL4's FSR word.
"""

from __future__ import annotations

import struct

import pytest
from unicorn import arm64_const as A
from unicorn import riscv_const as R
from unicorn.unicorn_const import (
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_NOMEM,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_UNMAPPED,
)

from bootimage import build_image, load_image
from emulator.cpu import AArch64Backend, CpuBackend, RiscV64Backend, Trap, TrapKind
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.model.page_tables import translate, write_entry
from kernel.model.paging import Access, VMRights
from tests.conftest import ARCHES


class FakeUc:
    """Just enough of a Unicorn engine for classification: the pc register."""

    def __init__(self, pc_reg: int, pc: int) -> None:
        self.pc_reg, self.pc = pc_reg, pc

    def reg_read(self, reg: int) -> int:
        assert reg == self.pc_reg
        return self.pc


def backend(arch: str) -> CpuBackend:
    return RiscV64Backend() if arch == "riscv64" else AArch64Backend()


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("errno, access", [(UC_ERR_READ_UNMAPPED, Access.READ),
                                           (UC_ERR_WRITE_UNMAPPED, Access.WRITE),
                                           (UC_ERR_FETCH_UNMAPPED, Access.EXECUTE)])
def test_an_access_with_nothing_behind_it_is_a_bus_error(arch: str, errno: int,
                                                         access: Access) -> None:
    cpu = backend(arch)
    trap = cpu.classify_error(FakeUc(cpu.pc_reg, 0x1000), errno)  # type: ignore[arg-type]
    assert trap == Trap(TrapKind.BUS_ERROR, 0x1000, 0x1000, errno, access)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("errno", [UC_ERR_EXCEPTION, UC_ERR_NOMEM])
def test_other_unicorn_errors_are_the_machines_own(arch: str, errno: int) -> None:
    cpu = backend(arch)
    assert cpu.classify_error(FakeUc(cpu.pc_reg, 0x1000), errno) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("arch, pc", [("riscv64", 0x1001), ("aarch64", 0x1002)])
def test_a_failed_fetch_at_a_misaligned_pc_is_the_alignment_first(arch: str, pc: int) -> None:
    """The alignment check comes before the fetch (AArch64; on RISC-V the odd pc is
    never fetched from), so no bus error or instruction fault is reported there."""
    cpu = backend(arch)
    trap = cpu.classify_error(FakeUc(cpu.pc_reg, pc), UC_ERR_FETCH_UNMAPPED)  # type: ignore[arg-type]
    assert trap is not None and (trap.kind, trap.fault_pc) == (TrapKind.PC_ALIGNMENT, pc)


@pytest.mark.parametrize("intno", [AArch64Backend.EXCP_UDEF, AArch64Backend.EXCP_PREFETCH_ABORT])
def test_aarch64_exceptions_at_a_misaligned_pc_are_the_alignment_fault(intno: int) -> None:
    cpu = AArch64Backend()
    assert cpu.classify(FakeUc(A.UC_ARM64_REG_PC, 0x4006), intno).kind is TrapKind.PC_ALIGNMENT  # type: ignore[arg-type]
    assert cpu.classify(FakeUc(A.UC_ARM64_REG_PC, 0x4004), intno).kind is not TrapKind.PC_ALIGNMENT  # type: ignore[arg-type]


def test_riscv_fetch_fault_at_an_odd_pc_is_the_alignment_case() -> None:
    # Unicorn reports a RISC-V exception with pc + 4 (UNICORN.md).
    cpu = RiscV64Backend()
    trap = cpu.classify(FakeUc(R.UC_RISCV_REG_PC, 0x1001 + 4), 12)  # type: ignore[arg-type]
    assert (trap.kind, trap.fault_pc) == (TrapKind.PC_ALIGNMENT, 0x1001)


# --- on the machine ---------------------------------------------------------------------

VA = {"riscv64": 0x20_0000_0000, "aarch64": 0x7F00_0000_0000}
"""A 1 GiB block the image does not use (its own root-table entry on both)."""
DEVICE_PA = {"riscv64": 0x4000_0000, "aarch64": 0x80_0000_0000}
"""1 GiB aligned, outside RAM: no memory region behind it."""

# Instructions, with their address register a1 / x1 = VA + 8.
CODE = {
    ("riscv64", "read"): 0x0005B503,     # ld a0, 0(a1)
    ("riscv64", "write"): 0x00A5B023,    # sd a0, 0(a1)
    ("riscv64", "amo"): 0x00C5B52F,      # amoadd.d a0, a2, (a1)
    ("riscv64", "execute"): 0x00058067,  # jalr x0, 0(a1)
    ("aarch64", "read"): 0xF9400020,     # ldr x0, [x1]
    ("aarch64", "write"): 0xF9000020,    # str x0, [x1]
    ("aarch64", "execute"): 0xD61F0020,  # br x1
}
FSR = {
    # scause: load, store/AMO, instruction access fault.
    ("riscv64", "read"): 5, ("riscv64", "write"): 7, ("riscv64", "amo"): 7,
    ("riscv64", "execute"): 1,
    # ESR: data abort (0x24) / instruction abort (0x20) from EL0, IL, WnR for the store,
    # status 0b010000: synchronous external abort, not on a table walk.
    ("aarch64", "read"): 0x24 << 26 | 1 << 25 | 0x10,
    ("aarch64", "write"): 0x24 << 26 | 1 << 25 | 1 << 6 | 0x10,
    ("aarch64", "execute"): 0x20 << 26 | 1 << 25 | 0x10,
}


def boot_hello(guest_elves, arch: str) -> Session:  # type: ignore[no-untyped-def]
    loaded = load_image(build_image(guest_elves[arch]["hello"].read_bytes(), KernelConfig()))
    return Session.boot(loaded.root, loaded.config, lambda byte: None)


def replace_first_instructions(session: Session, words: list[int]) -> int:
    """Write ``words`` over the root task's first instructions; their address."""
    machine = session.machine
    pc: int = machine.uc.reg_read(machine.cpu.pc_reg)
    code = translate(machine, session.kernel.paging, machine.root, pc, Access.EXECUTE)
    assert code is not None
    machine.write_phys(code, b"".join(struct.pack("<I", w) for w in words))
    machine.flush_translations()
    return pc


def map_device_block(session: Session, arch: str, pa: int | None = None) -> None:
    """Map the 1 GiB of physical addresses at ``pa`` (default DEVICE_PA) at VA."""
    machine, fmt = session.machine, session.kernel.paging
    va, pa = VA[arch], DEVICE_PA[arch] if pa is None else pa
    if arch == "riscv64":
        write_entry(machine, machine.root, fmt.index(0, va),
                    fmt.leaf_entry(pa, 0, VMRights.READ_WRITE, True, False))
    else:
        table = machine.ram_base + machine.ram_size - 0x1000  # unused top of RAM
        machine.write_phys(table, bytes(0x1000))
        write_entry(machine, machine.root, fmt.index(0, va), fmt.table_entry(table))
        write_entry(machine, table, fmt.index(1, va),
                    fmt.leaf_entry(pa, 1, VMRights.READ_WRITE, True, False))
    machine.page_tables_changed()


@pytest.mark.parametrize("arch, access", sorted(CODE))
def test_an_access_to_device_memory_with_nothing_behind_it_is_a_vm_fault(guest_elves,  # type: ignore[no-untyped-def]
                                                                         arch: str,
                                                                         access: str) -> None:
    session = boot_hello(guest_elves, arch)
    map_device_block(session, arch)
    pc = replace_first_instructions(session, [CODE[arch, access]])
    address_reg = R.UC_RISCV_REG_A1 if arch == "riscv64" else A.UC_ARM64_REG_X1
    session.machine.uc.reg_write(address_reg, VA[arch] + 8)
    result = session.run(1_000)
    assert (result.kind, result.status) == ("fault", 3), result.message
    kind = "write" if access == "amo" else access
    fault_pc = VA[arch] + 8 if access == "execute" else pc
    assert (f"VMFault: {kind} at address {VA[arch] + 8:#x} (fsr {FSR[arch, access]:#x}) "
            f"at pc {fault_pc:#x}") in result.message


@pytest.mark.parametrize("arch", ARCHES)
def test_no_device_address_reaches_memory_the_machine_keeps(guest_elves, arch: str) -> None:  # type: ignore[no-untyped-def]
    """The machine's own page (the root table of "no address space") is outside every
    untyped; the last word below RAM, where it once was, is device memory with nothing
    behind it like the rest."""
    session = boot_hello(guest_elves, arch)
    machine = session.machine
    untypeds = [(u.paddr, u.paddr + (1 << u.size_bits))
                for u in session.report.bootinfo.untyped_list]
    assert not [u for u in untypeds if u[0] <= machine.empty_root < u[1]]
    below_ram = machine.ram_base - (1 << 30)
    map_device_block(session, arch, below_ram)
    load = CODE[arch, "read"]
    replace_first_instructions(session, [load])
    address = VA[arch] + (1 << 30) - 8
    address_reg = R.UC_RISCV_REG_A1 if arch == "riscv64" else A.UC_ARM64_REG_X1
    machine.uc.reg_write(address_reg, address)
    result = session.run(1_000)
    assert f"VMFault: read at address {address:#x} (fsr {FSR[arch, 'read']:#x})" \
        in result.message, result.message


def test_aarch64_a_misaligned_first_pc_runs_nothing(guest_elves) -> None:  # type: ignore[no-untyped-def]
    """Even before any guest instruction ran on the engine, the block at a misaligned pc
    is stopped before it runs: no instruction is counted and x2 is untouched."""
    session = boot_hello(guest_elves, "aarch64")
    pc = replace_first_instructions(session, [0x91000442] * 4)  # add x2, x2, #1
    uc = session.machine.uc
    uc.reg_write(A.UC_ARM64_REG_X2, 0)
    uc.reg_write(A.UC_ARM64_REG_PC, pc + 2)
    result = session.run(1_000)
    assert (result.kind, result.instructions) == ("fault", 0), result.message
    assert f"UserException (number 0x8a000000, code 0x0) at pc {pc + 2:#x}" in result.message
    assert uc.reg_read(A.UC_ARM64_REG_X2) == 0


def test_riscv_an_odd_pc_runs_from_the_even_address_below(guest_elves) -> None:  # type: ignore[no-untyped-def]
    session = boot_hello(guest_elves, "riscv64")
    # addi a2, a2, 1 three times, then the all-zero illegal instruction.
    pc = replace_first_instructions(session, [0x00160613] * 3 + [0])
    uc = session.machine.uc
    uc.reg_write(R.UC_RISCV_REG_A2, 0)
    uc.reg_write(R.UC_RISCV_REG_PC, pc + 5)
    result = session.run(1_000)
    assert f"UserException (number 0x2, code 0x0) at pc {pc + 12:#x}" in result.message
    assert uc.reg_read(R.UC_RISCV_REG_A2) == 2  # the addi at pc + 4 and pc + 8 ran


@pytest.mark.parametrize(("word", "is_fp"), [
    (0x1E622820, True),   # fadd d0, d1, d2       (scalar FP data processing)
    (0x9E670020, True),   # fmov d0, x1           (FP <-> general register)
    (0x4EA11C20, True),   # mov v0.16b, v1.16b    (Advanced SIMD)
    (0xFD400000, True),   # ldr d0, [x0]          (load of an FP register)
    (0x6D400000, True),   # ldp d0, d1, [x0]      (pair load of FP registers)
    (0x91000400, False),  # add x0, x0, #1
    (0xF9400000, False),  # ldr x0, [x0]
    (0x14000000, False),  # b .
    (0xD4000001, False),  # svc #0
])
def test_the_aarch64_fp_instruction_classes(word: int, is_fp: bool) -> None:
    """A64's top-level encoding: op0 (bits 28..25) 0bx111 is FP/SIMD data processing,
    0bx110 a load or store with V = 1 (an FP/SIMD register)."""
    assert AArch64Backend.is_fp_instruction(word) is is_fp
