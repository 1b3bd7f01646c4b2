"""The counter instructions' decoding and the Arm PMU model (emulator/counters.py,
emulator/arm_pmu.py), without a guest.

Instruction words are GNU as's encodings (aarch64-linux-gnu-as, riscv64-linux-gnu-as),
written out here; ``now`` is the number of instructions retired before an access.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.arm_pmu import ArmPmu, decode_sysreg, is_pmu_register, sysreg_trap_syndrome
from emulator.counters import Clock, Counters, decode_counter_csr
from kernel.abi.arch import Arch
from kernel.config import KernelConfig

MRS_X3_PMCCNTR = 0xD53B9D03
MSR_PMCR_X5 = 0xD51B9C05
MRS_X0_PMUSERENR = 0xD53B9E00
MSR_PMUSERENR_X7 = 0xD51B9E07
MRS_X2_PMEVCNTR5 = 0xD53BE8A2
MSR_PMEVTYPER2_X1 = 0xD51BEC41
MRS_X4_PMCCFILTR = 0xD53BEFE4
MSR_PMINTENSET_EL1_XZR = 0xD5189E3F
MRS_X9_TPIDR_EL0 = 0xD53BD049

RDCYCLE_A0 = 0xC0002573
RDTIME_T1 = 0xC0102373
RDINSTRET_S2 = 0xC0202973
CSRR_A0_HPMCOUNTER3 = 0xC0302573
CSRW_CYCLE_A0 = 0xC0051073
CSRRSI_A1_CYCLE_0 = 0xC00065F3
CSRRSI_A1_CYCLE_1 = 0xC000E5F3
CSRR_A0_SSTATUS = 0x10002573

ESR_UNDEFINED = 1 << 25


def test_riscv_reads_of_the_three_counters_decode() -> None:
    assert decode_counter_csr(RDCYCLE_A0) == (0xC00, 10)
    assert decode_counter_csr(RDTIME_T1) == (0xC01, 6)
    assert decode_counter_csr(RDINSTRET_S2) == (0xC02, 18)
    assert decode_counter_csr(CSRRSI_A1_CYCLE_0) == (0xC00, 11)


@pytest.mark.parametrize("word", [CSRR_A0_HPMCOUNTER3, CSRW_CYCLE_A0, CSRRSI_A1_CYCLE_1,
                                  CSRR_A0_SSTATUS, 0, 0xFFFF_FFFF])
def test_riscv_writes_missing_counters_and_other_csrs_stay_illegal(word: int) -> None:
    assert decode_counter_csr(word) is None
    assert Counters(Arch.RISCV64, KernelConfig()).execute(word, _no_regs, Clock(5, 9)) is None


def test_riscv_values_come_from_the_clock() -> None:
    counters = Counters(Arch.RISCV64, KernelConfig())
    clock = Clock(retired=1234, time=5678)
    assert counters.execute(RDCYCLE_A0, _no_regs, clock).value == 1234  # type: ignore[union-attr]
    assert counters.execute(RDINSTRET_S2, _no_regs, clock).value == 1234  # type: ignore[union-attr]
    outcome = counters.execute(RDTIME_T1, _no_regs, clock)
    assert outcome is not None and (outcome.rd, outcome.value) == (6, 5678)
    assert counters.execute(0xC0002073, _no_regs, clock).rd is None  # type: ignore[union-attr]  # rd x0


def test_sysreg_decoding_names_the_register() -> None:
    reg = decode_sysreg(MRS_X3_PMCCNTR)
    assert reg is not None and reg.key == (3, 3, 9, 13, 0) and reg.rt == 3 and reg.read
    reg = decode_sysreg(MSR_PMEVTYPER2_X1)
    assert reg is not None and reg.key == (3, 3, 14, 12, 2) and reg.rt == 1 and not reg.read
    assert decode_sysreg(0xD503201F) is None  # nop
    assert decode_sysreg(0xD4000001) is None  # svc #0


def test_which_registers_belong_to_the_pmu() -> None:
    for word in (MRS_X3_PMCCNTR, MSR_PMCR_X5, MRS_X0_PMUSERENR, MRS_X2_PMEVCNTR5,
                 MSR_PMEVTYPER2_X1, MRS_X4_PMCCFILTR):
        reg = decode_sysreg(word)
        assert reg is not None and is_pmu_register(reg.key), hex(word)
    for word in (MSR_PMINTENSET_EL1_XZR, MRS_X9_TPIDR_EL0):
        reg = decode_sysreg(word)
        assert reg is not None and not is_pmu_register(reg.key), hex(word)


def test_trap_syndrome_is_ec_0x18_with_the_iss_fields() -> None:
    reg = decode_sysreg(MRS_X3_PMCCNTR)
    assert reg is not None
    # Op0 3 [21:20], Op2 0, Op1 3 [16:14], CRn 9 [13:10], Rt 3 [9:5], CRm 13 [4:1], read.
    assert sysreg_trap_syndrome(reg) == 0x6230_E47B
    reg = decode_sysreg(MSR_PMCR_X5)
    assert reg is not None
    assert sysreg_trap_syndrome(reg) == 0x18 << 26 | 1 << 25 | 0x30_E4B8


def _no_regs(n: int) -> int:
    raise AssertionError(f"register {n} read")


def _access(pmu: ArmPmu, word: int, now: int, rt_value: int = 0) -> int | None:
    reg = decode_sysreg(word)
    assert reg is not None
    result = pmu.access(reg, rt_value, now)
    assert result is not None and result.syndrome is None
    return result.value


def _write(pmu: ArmPmu, key: tuple[int, int, int, int, int], value: int, now: int) -> None:
    op0, op1, crn, crm, op2 = key
    word = 0xD500_0000 | 1 << 20 | (op0 & 1) << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | 1
    _access(pmu, word, now, value)


def _read(pmu: ArmPmu, key: tuple[int, int, int, int, int], now: int) -> int:
    op0, op1, crn, crm, op2 = key
    word = 0xD520_0000 | 1 << 20 | (op0 & 1) << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5
    value = _access(pmu, word, now)
    assert value is not None
    return value


PMCR, CNTENSET, CNTENCLR = (3, 3, 9, 12, 0), (3, 3, 9, 12, 1), (3, 3, 9, 12, 2)
SWINC, SELR = (3, 3, 9, 12, 4), (3, 3, 9, 12, 5)
CCNTR, XEVTYPER, XEVCNTR = (3, 3, 9, 13, 0), (3, 3, 9, 13, 1), (3, 3, 9, 13, 2)
EVCNTR1, EVTYPER1, CCFILTR = (3, 3, 14, 8, 1), (3, 3, 14, 12, 1), (3, 3, 14, 15, 7)


def test_unexported_pmu_traps_every_register_but_pmuserenr_reads() -> None:
    pmu = ArmPmu(exported=False)
    for word in (MRS_X3_PMCCNTR, MSR_PMCR_X5, MRS_X2_PMEVCNTR5):
        reg = decode_sysreg(word)
        assert reg is not None
        result = pmu.access(reg, 0, 10)
        assert result is not None and result.syndrome == sysreg_trap_syndrome(reg)
    assert _access(pmu, MRS_X0_PMUSERENR, 10) == 0
    assert _access(ArmPmu(exported=True), MRS_X0_PMUSERENR, 10) == 1


@pytest.mark.parametrize("exported", [False, True])
def test_pmuserenr_writes_and_el1_registers_are_undefined_at_el0(exported: bool) -> None:
    pmu = ArmPmu(exported)
    reg = decode_sysreg(MSR_PMUSERENR_X7)
    assert reg is not None
    result = pmu.access(reg, 1, 0)
    assert result is not None and result.syndrome == ESR_UNDEFINED
    reg = decode_sysreg(MSR_PMINTENSET_EL1_XZR)
    assert reg is not None and pmu.access(reg, 0, 0) is None  # not the PMU's: plain UNDEFINED


def test_cycle_counter_counts_only_while_enabled() -> None:
    pmu = ArmPmu(exported=True)
    assert pmu.pmcr >> 11 & 0x1F == 6
    _write(pmu, CNTENSET, 1 << 31, now=100)
    assert _read(pmu, CCNTR, 200) == 0  # PMCR_EL0.E still clear
    _write(pmu, PMCR, 1, now=300)
    assert _read(pmu, CCNTR, 350) == 50
    _write(pmu, CNTENCLR, 1 << 31, now=400)
    assert _read(pmu, CCNTR, 1000) == 100
    _write(pmu, CNTENSET, 1 << 31, now=1000)
    _write(pmu, PMCR, 1 | 4, now=1010)  # C: the cycle counter restarts from 0
    assert _read(pmu, CCNTR, 1030) == 20
    _write(pmu, PMCR, 1 | 8, now=1030)  # D: one count per 64 cycles
    assert _read(pmu, CCNTR, 1030 + 64 * 3 + 10) == 23
    assert _read(pmu, CCNTR, 1030 + 64 * 4) == 24
    _write(pmu, CCFILTR, 1 << 30, now=2000)  # U: EL0 not counted, and all code is EL0
    before = _read(pmu, CCNTR, 2000)
    assert _read(pmu, CCNTR, 9000) == before


def test_event_counters_count_their_events() -> None:
    pmu = ArmPmu(exported=True)
    _write(pmu, PMCR, 1 | 2, now=0)
    _write(pmu, SELR, 0, now=0)
    _write(pmu, XEVTYPER, 0x08, now=0)  # counter 0: INST_RETIRED
    _write(pmu, EVTYPER1, 0x00, now=0)  # counter 1: SW_INCR
    _write(pmu, (3, 3, 14, 12, 2), 0x04, now=0)  # counter 2: L1D_CACHE, never happens
    _write(pmu, CNTENSET, 0b111, now=10)
    _write(pmu, SWINC, 0b10, now=20)
    _write(pmu, SWINC, 0b11, now=25)
    assert _read(pmu, XEVCNTR, 60) == 50  # SEL 0
    assert _read(pmu, EVCNTR1, 60) == 2
    assert _read(pmu, (3, 3, 14, 8, 2), 60) == 0
    _write(pmu, PMCR, 1 | 2, now=70)  # P: event counters to 0
    assert _read(pmu, XEVCNTR, 75) == 5
    _write(pmu, XEVCNTR, 0xFFFF_FFFE, now=75)
    assert _read(pmu, XEVCNTR, 78) == 1  # 32 bits wide
    assert _read(pmu, XEVTYPER, 78) == 0x08
    assert _read(pmu, CCFILTR, 78) == 0


@given(st.lists(st.tuples(st.sampled_from([PMCR, CNTENSET, CNTENCLR, SELR, XEVTYPER,
                                           XEVCNTR, CCNTR, EVTYPER1, CCFILTR, SWINC]),
                          st.integers(0, (1 << 64) - 1), st.integers(0, 50)), max_size=20))
def test_export_and_restore_change_nothing(ops: list[tuple[tuple[int, ...], int, int]]) -> None:
    pmu = ArmPmu(exported=True)
    now = 0
    for key, value, step in ops:
        now += step
        _write(pmu, key, value, now)  # type: ignore[arg-type]
    copy = ArmPmu.restore(pmu.export(now))
    for key in (PMCR, CNTENSET, XEVCNTR, CCNTR, EVCNTR1, XEVTYPER):
        assert _read(copy, key, now + 77) == _read(pmu, key, now + 77)


@pytest.mark.parametrize("state", [(), (1, 2, 3), ("a",) * 21, (1,) * 22])
def test_restore_refuses_what_export_did_not_write(state: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        ArmPmu.restore(state)  # type: ignore[arg-type]
