"""User-mode counter instructions, emulated with deterministic values.

seL4 users read counters from user mode: ``rdcycle`` / ``rdtime`` / ``rdinstret`` on
RISC-V (seL4 never touches scounteren, and OpenSBI sets it and mcounteren to all ones,
so a thread can always read them), the PMU registers on AArch64 when the kernel was
built with KernelArmExportPMUUser (:mod:`emulator.arm_pmu`). Unicorn would give host
time for both, which differs from run to run, so capsule makes every such instruction
trap (RISC-V: :func:`trap_riscv_counters`; AArch64: PMUSERENR_EL0 stays clear) and
performs it in :meth:`Counters.execute`, on the illegal-instruction path only: no other
instruction pays anything.

Values are functions of the machine's count of guest instructions (``Clock``): on
RISC-V ``instret`` is the instructions the guest retired since boot before the reading
one, ``cycle`` the same number (one instruction per cycle), ``time`` capsule's clock
(timer ticks times ``tick_instructions`` plus the instructions of the current tick,
so it also moves on while every thread sleeps, as time does). The same image gives the
same values in every run.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Final

from unicorn.unicorn_py3.unicorn import uclib

from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from kernel.records import dataclass

from .arm_pmu import ArmPmu, decode_sysreg

__all__ = ["Clock", "Counters", "Outcome", "decode_counter_csr", "trap_riscv_counters"]

CSR_CYCLE: Final = 0xC00
CSR_TIME: Final = 0xC01
CSR_INSTRET: Final = 0xC02
_CSR_COUNTERS_END: Final = 0xC20
"""cycle, time, instret and hpmcounter3..31: the user counter CSRs of RV64."""
ReadReg = Callable[[int], int]
"""Reads general register n of the trapping thread."""
_SYSTEM: Final = 0x73
_CSRRS: Final = 2
_CSRRC: Final = 3
_CSRRSI: Final = 6
_CSRRCI: Final = 7


@dataclass(frozen=True, slots=True)
class Clock:
    """The machine's time when a counter instruction traps: ``retired`` guest
    instructions since boot before it, ``time`` capsule's clock in instructions."""

    retired: int
    time: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """A performed counter instruction: ``value`` goes to register ``rd`` (None: no
    register is written) and the thread continues after the instruction; or, when
    ``syndrome`` is set, the instruction traps to the kernel as a UserException with
    that number (code 0)."""

    rd: int | None = None
    value: int = 0
    syndrome: int | None = None


def decode_counter_csr(word: int) -> tuple[int, int] | None:
    """(CSR, rd) when ``word`` only reads cycle, time or instret (``csrrs``/``csrrc``
    with rs1 x0, ``csrrsi``/``csrrci`` with uimm 0: ``rdcycle`` is ``csrrs rd, cycle,
    x0``); None for anything else, a write to them included (illegal: they are
    read-only), and for hpmcounter3..31, which the virt board's hart does not have
    (OpenSBI: "MHPM Count: 0")."""
    if word & 0x7F != _SYSTEM or (word >> 12) & 7 not in (_CSRRS, _CSRRC, _CSRRSI, _CSRRCI):
        return None
    if (word >> 15) & 0x1F:
        return None
    csr = word >> 20
    if csr not in (CSR_CYCLE, CSR_TIME, CSR_INSTRET):
        return None
    return csr, (word >> 7) & 0x1F


_trapped = False


def trap_riscv_counters() -> None:
    """Make every user counter CSR access illegal in Unicorn's RISC-V CPUs, so that it
    reaches :meth:`Counters.execute` rather than reading host time.

    Unicorn's QEMU lets user mode read them whatever mcounteren/scounteren say, and an
    operation without a predicate is illegal: the predicates of 0xC00..0xC1F are
    cleared (``riscv_set_csr_ops``; process-wide, as the CSR table is, and idempotent).
    Checked at run time by the CSR helper, so translated code needs no flush.
    """
    global _trapped
    if _trapped:
        return
    get_ops, set_ops = uclib.riscv_get_csr_ops_riscv64, uclib.riscv_set_csr_ops_riscv64
    get_ops.argtypes = set_ops.argtypes = [ctypes.c_int, ctypes.c_void_p]
    get_ops.restype = set_ops.restype = None
    ops = (ctypes.c_void_p * 16)()  # riscv_csr_operations: predicate first, <16 pointers
    for csr in range(CSR_CYCLE, _CSR_COUNTERS_END):
        get_ops(csr, ops)
        ops[0] = None
        set_ops(csr, ops)
    _trapped = True


class Counters:
    """The counter instructions of one machine, as its configuration makes them."""

    __slots__ = ("arch", "pmu")

    def __init__(self, arch: Arch, config: KernelConfig) -> None:
        self.arch = arch
        self.pmu = ArmPmu(config.arm_export_pmu_user) if arch is Arch.AARCH64 else None
        """The AArch64 PMU (exported or not); None on RISC-V."""

    def execute(self, word: int, read_reg: ReadReg, clock: Clock) -> Outcome | None:
        """Perform the user instruction ``word`` that trapped as illegal, if it is a
        counter instruction; None if it is not (an ordinary illegal instruction).

        ``read_reg(n)`` gives general register n (x0..x31 / X0..X30; the machine's);
        ``clock`` is the machine's time before the instruction.
        """
        if self.pmu is None:
            decoded = decode_counter_csr(word)
            if decoded is None:
                return None
            csr, rd = decoded
            value = clock.time if csr == CSR_TIME else clock.retired
            return Outcome(rd=rd or None, value=value)
        reg = decode_sysreg(word)
        if reg is None:
            return None
        rt_value = 0 if reg.read or reg.rt == 31 else read_reg(reg.rt)
        result = self.pmu.access(reg, rt_value, clock.retired)
        if result is None:
            return None
        if result.syndrome is not None:
            return Outcome(syndrome=result.syndrome)
        if result.value is None or reg.rt == 31:
            return Outcome()
        return Outcome(rd=reg.rt, value=result.value)

    def export(self, clock: Clock) -> tuple[int, ...]:
        """The counters' state as plain integers (empty on RISC-V, which has none)."""
        return () if self.pmu is None else self.pmu.export(clock.retired)

    def restore(self, state: tuple[int, ...]) -> None:
        """Take up :meth:`export`'s state; ValueError if it is not one."""
        if self.pmu is not None and state:
            self.pmu = ArmPmu.restore(state)
