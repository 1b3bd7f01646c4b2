"""Fault message layouts against abi/errors.md, word by word."""

from __future__ import annotations

import pytest

from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64
from kernel.model.faults import UnknownSyscallFault, UserExceptionFault


def registers(abi, **values: int) -> list[int]:  # type: ignore[no-untyped-def]
    regs = [0] * len(abi.user_context)
    for name, value in values.items():
        regs[abi.user_context.index(name)] = value
    return regs


def test_unknown_syscall_riscv64_layout() -> None:
    regs = registers(ABI_RISCV64, pc=0x1004, sp=0x2000, ra=0x3000,
                     **{f"a{i}": 0x100 + i for i in range(8)})
    fault = UnknownSyscallFault(ip=0x1000, number=-99, registers=regs)
    # FaultIP, SP, RA, A0..A6, Syscall (length 11)
    assert fault.message(ABI_RISCV64) == [
        0x1000, 0x2000, 0x3000, *[0x100 + i for i in range(7)], (1 << 64) - 99]


def test_unknown_syscall_aarch64_layout_lr_is_elr() -> None:
    regs = registers(ABI_AARCH64, pc=0x1004, sp=0x2000, x30=0xDEAD, spsr=0x6000_0000,
                     **{f"x{i}": 0x100 + i for i in range(8)})
    fault = UnknownSyscallFault(ip=0x1000, number=-99, registers=regs)
    # X0..X7, FaultIP, SP, LR (= ELR_EL1: the instruction after the svc), SPSR, Syscall
    assert fault.message(ABI_AARCH64) == [
        *[0x100 + i for i in range(8)], 0x1000, 0x2000, 0x1004, 0x6000_0000, (1 << 64) - 99]


def test_user_exception_layouts() -> None:
    fault = UserExceptionFault(ip=0x1000, number=2, code=0, sp=0x2000, spsr=0x10)
    assert fault.message(ABI_RISCV64) == [0x1000, 0x2000, 2, 0]
    assert fault.message(ABI_AARCH64) == [0x1000, 0x2000, 0x10, 2, 0]


def test_user_exception_entry_reports_the_thread_sp(monkeypatch: pytest.MonkeyPatch) -> None:
    import kernel.kernel as entry
    from kernel.abi.arch import Arch
    from tests.unit.test_boot import booted

    kernel, machine, _ = booted(Arch.AARCH64)
    names = ABI_AARCH64.user_context
    machine.registers[names.index("sp")] = 0x7FF0
    machine.registers[names.index("pc")] = 0x400010
    seen = []
    monkeypatch.setattr(entry, "handle_fault", lambda kernel, tcb, fault: seen.append(fault))
    kernel.user_exception(number=1 << 25, code=0)
    (fault,) = seen
    assert (fault.ip, fault.sp, fault.number) == (0x400010, 0x7FF0, 1 << 25)
