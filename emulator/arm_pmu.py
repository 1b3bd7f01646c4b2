"""The Arm performance monitors (PMUv3) as EL0 sees them, with deterministic counts.

Unicorn's PMU counts host time (QEMU's cycle counter follows the host clock without
``-icount``), so capsule leaves PMUSERENR_EL0 clear in Unicorn, every EL0 access to a
PMU register traps (UNDEFINED, ``intno`` 1), and the machine hands the instruction to
:meth:`ArmPmu.access`. Nothing is added to the path of any other instruction.

With seL4's CONFIG_EXPORT_PMU_USER (``KernelConfig.arm_export_pmu_user``) the access is
performed on the model below; without it, it is what seL4 makes of it on QEMU's
cortex-a53: a UserException whose number is the ESR_EL1 of a trapped MSR/MRS (EC 0x18)
(:func:`sysreg_trap_syndrome`), as seL4's ``c_handle_undefined_instruction`` passes the
ESR on. PMUSERENR_EL0 itself is readable at EL0 either way.

The model: QEMU's cortex-a53 PMU (PMCR_EL0 reset value 0x41013000: six event counters),
time measured in instructions retired by the guest since boot (``now``):

- the cycle counter (PMCCNTR_EL0, 64 bits) counts one cycle per instruction retired
  (every 64th with PMCR_EL0.D), while PMCR_EL0.E and PMCNTENSET_EL0 bit 31 are set and
  PMCCFILTR_EL0.U (bit 30, "do not count EL0") is clear;
- an event counter (32 bits) counts while PMCR_EL0.E and its enable bit are set and its
  PMEVTYPER's U bit is clear: event 0x08 (INST_RETIRED) and 0x1B (INST_SPEC) count
  instructions, 0x11 (CPU_CYCLES) cycles, 0x00 (SW_INCR) writes to PMSWINC_EL0; any
  other event never happens (no caches, TLBs or branch predictors are modelled);
- PMCR_EL0.P and .C reset the event counters and the cycle counter; overflow flags are
  kept as written (PMOVSSET/CLR), never set by a wrap.

State is plain data (:meth:`ArmPmu.export`/:meth:`ArmPmu.restore`), saved in machine
snapshots: the PMU is the CPU's, not a thread's (seL4 does not switch it).
"""

from __future__ import annotations

from typing import Final

from kernel.records import dataclass

__all__ = ["ArmPmu", "PmuResult", "SysReg", "decode_sysreg", "sysreg_trap_syndrome"]

NUM_COUNTERS: Final = 6
PMCR_RESET: Final = 0x4101_3000
"""IMP 0x41 (Arm), IDCODE 0x01, N = 6 (bits 15:11): QEMU's cortex-a53."""
_PMCR_WRITABLE: Final = 0b1111_1001  # E, D, X, DP, LC (P and C act, read as zero)
_PMCR_E: Final = 1
_PMCR_P: Final = 2
_PMCR_C: Final = 4
_PMCR_D: Final = 8
_CCNT: Final = 31
_ENABLE_MASK: Final = (1 << NUM_COUNTERS) - 1 | 1 << _CCNT
_FILTER_U: Final = 1 << 30
"""PMEVTYPER<n>_EL0.U / PMCCFILTR_EL0.U: do not count at EL0 (where all guest code runs)."""
_TYPER_MASK: Final = 0xFC00_FFFF  # P, U, NSK, NSU, NSH, M, evtCount
_EV_SW_INCR: Final = 0x00
_EV_INST_RETIRED: Final = 0x08
_EV_CPU_CYCLES: Final = 0x11
_EV_INST_SPEC: Final = 0x1B
_CEID0_EVENTS: Final = 1 << _EV_SW_INCR | 1 << _EV_INST_RETIRED | 1 << _EV_CPU_CYCLES | 1 << _EV_INST_SPEC
_M32: Final = (1 << 32) - 1
_M64: Final = (1 << 64) - 1

# ESR_EL1 of a trapped MSR/MRS/system instruction: EC 0x18, IL set (Arm ARM D17.2.37).
_EC_SYSREG: Final = 0x18 << 26 | 1 << 25
_ESR_UNKNOWN: Final = 1 << 25
"""ESR_EL1 of an UNDEFINED instruction (EC 0, IL): what seL4 passes on for one."""


@dataclass(frozen=True, slots=True)
class SysReg:
    """A decoded MSR (register) / MRS: the register's encoding, the transfer register
    ``rt`` (31: XZR) and the direction."""

    op0: int
    op1: int
    crn: int
    crm: int
    op2: int
    rt: int
    read: bool

    @property
    def key(self) -> tuple[int, int, int, int, int]:
        return (self.op0, self.op1, self.crn, self.crm, self.op2)


def decode_sysreg(word: int) -> SysReg | None:
    """The MSR/MRS of a system register that ``word`` encodes (op0 2 or 3), else None:
    ``1101 0101 00 L 1 op0[0] op1 CRn CRm op2 Rt``."""
    if word & 0xFFD0_0000 != 0xD510_0000:
        return None
    return SysReg(
        op0=2 | (word >> 19) & 1,
        op1=(word >> 16) & 7,
        crn=(word >> 12) & 0xF,
        crm=(word >> 8) & 0xF,
        op2=(word >> 5) & 7,
        rt=word & 0x1F,
        read=bool(word >> 21 & 1),
    )


def sysreg_trap_syndrome(reg: SysReg) -> int:
    """ESR_EL1 of ``reg``'s access trapped to EL1 (EC 0x18): ISS = Op0, Op2, Op1, CRn,
    Rt, CRm, Direction (1 = read)."""
    iss = (
        reg.op0 << 20
        | reg.op2 << 17
        | reg.op1 << 14
        | reg.crn << 10
        | reg.rt << 5
        | reg.crm << 1
        | int(reg.read)
    )
    return _EC_SYSREG | iss


@dataclass(frozen=True, slots=True)
class PmuResult:
    """What an EL0 access to a PMU register does: ``value`` is written to Rt (a read;
    None for a write), or, when ``syndrome`` is set, the access traps to the kernel as a
    UserException with that number (the register is not exported)."""

    value: int | None = None
    syndrome: int | None = None


# (op0, op1, CRn, CRm, op2) of the EL0 PMU registers.
_PMCR: Final = (3, 3, 9, 12, 0)
_PMCNTENSET: Final = (3, 3, 9, 12, 1)
_PMCNTENCLR: Final = (3, 3, 9, 12, 2)
_PMOVSCLR: Final = (3, 3, 9, 12, 3)
_PMSWINC: Final = (3, 3, 9, 12, 4)
_PMSELR: Final = (3, 3, 9, 12, 5)
_PMCEID0: Final = (3, 3, 9, 12, 6)
_PMCEID1: Final = (3, 3, 9, 12, 7)
_PMCCNTR: Final = (3, 3, 9, 13, 0)
_PMXEVTYPER: Final = (3, 3, 9, 13, 1)
_PMXEVCNTR: Final = (3, 3, 9, 13, 2)
_PMUSERENR: Final = (3, 3, 9, 14, 0)
_PMOVSSET: Final = (3, 3, 9, 14, 3)


def is_pmu_register(key: tuple[int, int, int, int, int]) -> bool:
    """Whether ``key`` names a PMU register accessible at EL0 under PMUSERENR_EL0:
    op0 3, op1 3, CRn 9 with CRm 12..14, or CRn 14 with CRm 8..15 (PMEVCNTR<n>,
    PMEVTYPER<n>, PMCCFILTR)."""
    op0, op1, crn, crm, _ = key
    return op0 == 3 and op1 == 3 and ((crn == 9 and 12 <= crm <= 14) or (crn == 14 and crm >= 8))


class ArmPmu:
    """The PMU of one CPU; ``exported`` is CONFIG_EXPORT_PMU_USER.

    Counters run against ``now``, the instructions the guest retired since boot, passed
    to every call; a counter that counts is stored as (value, start), its value at
    ``now`` being ``value + (now - start)``.
    """

    __slots__ = (
        "exported",
        "pmcr",
        "enabled",
        "overflow",
        "select",
        "types",
        "values",
        "cycle_filter",
        "cycles",
        "cycle_rest",
        "_since",
    )

    def __init__(self, exported: bool) -> None:
        self.exported = exported
        self.pmcr = PMCR_RESET
        self.enabled = 0
        self.overflow = 0
        self.select = 0
        self.types = [0] * NUM_COUNTERS
        self.values = [0] * NUM_COUNTERS
        self.cycle_filter = 0
        self.cycles = 0
        self.cycle_rest = 0
        """Cycles not yet counted while PMCR_EL0.D divides by 64."""
        self._since = 0
        """The ``now`` up to which ``values`` and ``cycles`` are settled."""

    # --- state ------------------------------------------------------------------------------

    def export(self, now: int) -> tuple[int, ...]:
        """The state as plain integers, settled at ``now`` (for :meth:`restore`)."""
        self._settle(now)
        return (
            int(self.exported),
            self.pmcr,
            self.enabled,
            self.overflow,
            self.select,
            self.cycle_filter,
            self.cycles,
            self.cycle_rest,
            self._since,
            *self.types,
            *self.values,
        )

    @classmethod
    def restore(cls, state: tuple[int, ...]) -> ArmPmu:
        """The PMU :meth:`export` described; ValueError if ``state`` is not such a tuple."""
        if len(state) != 9 + 2 * NUM_COUNTERS or not all(isinstance(v, int) for v in state):
            raise ValueError("not an Arm PMU state")
        pmu = cls(bool(state[0]))
        (
            pmu.pmcr,
            pmu.enabled,
            pmu.overflow,
            pmu.select,
            pmu.cycle_filter,
            pmu.cycles,
            pmu.cycle_rest,
            pmu._since,
        ) = state[1:9]
        pmu.types = list(state[9 : 9 + NUM_COUNTERS])
        pmu.values = list(state[9 + NUM_COUNTERS :])
        return pmu

    # --- counting ---------------------------------------------------------------------------

    def _counts(self, index: int) -> int:
        """What counter ``index`` counts per instruction retired now (0 or 1)."""
        if not self.pmcr & _PMCR_E or not self.enabled >> index & 1:
            return 0
        event = self.types[index]
        if event & _FILTER_U:
            return 0
        return int(event & 0xFFFF in (_EV_INST_RETIRED, _EV_INST_SPEC, _EV_CPU_CYCLES))

    def _cycles_count(self) -> bool:
        return bool(self.pmcr & _PMCR_E and self.enabled >> _CCNT & 1 and not self.cycle_filter & _FILTER_U)

    def _settle(self, now: int) -> None:
        """Bring every counter up to ``now`` before the configuration changes."""
        ran = max(0, now - self._since)
        if ran:
            for index in range(NUM_COUNTERS):
                if self._counts(index):
                    self.values[index] = (self.values[index] + ran) & _M32
            if self._cycles_count():
                # PMCR_EL0.D: one count every 64 cycles; the rest waits for more.
                if self.pmcr & _PMCR_D:
                    ticks, self.cycle_rest = divmod(self.cycle_rest + ran, 64)
                    self.cycles = (self.cycles + ticks) & _M64
                else:
                    self.cycles = (self.cycles + ran) & _M64
        self._since = now

    def _event_value(self, index: int, now: int) -> int:
        self._settle(now)
        return self.values[index]

    # --- the registers ----------------------------------------------------------------------

    def access(self, reg: SysReg, rt_value: int, now: int) -> PmuResult | None:
        """Perform the EL0 access ``reg`` (``rt_value``: Rt's value, for a write) with
        ``now`` instructions retired before it; None if ``reg`` is no PMU register
        (the instruction is UNDEFINED for some other reason)."""
        key = reg.key
        if not is_pmu_register(key):
            return None
        if key == _PMUSERENR:
            if reg.read:
                return PmuResult(value=int(self.exported))
            return PmuResult(syndrome=_ESR_UNKNOWN)  # read-only at EL0: UNDEFINED
        if not self.exported:
            return PmuResult(syndrome=sysreg_trap_syndrome(reg))
        if reg.read:
            return PmuResult(value=self._read(key, now))
        self._write(key, rt_value, now)
        return PmuResult()

    def _read(self, key: tuple[int, int, int, int, int], now: int) -> int:
        if key == _PMCR:
            return self.pmcr
        if key in (_PMCNTENSET, _PMCNTENCLR):
            return self.enabled
        if key in (_PMOVSSET, _PMOVSCLR):
            return self.overflow
        if key == _PMSELR:
            return self.select
        if key == _PMCEID0:
            return _CEID0_EVENTS
        if key in (_PMCEID1, _PMSWINC):
            return 0
        if key == _PMCCNTR:
            self._settle(now)
            return self.cycles
        index = self._index(key)
        if index is None:
            return 0
        if _is_typer(key):
            return self.cycle_filter if index == _CCNT else self.types[index]
        return self._event_value(index, now) if index < NUM_COUNTERS else 0

    def _index(self, key: tuple[int, int, int, int, int]) -> int | None:
        """The counter a PMXEV*/PMEV* register names (31: the cycle counter's filter);
        None past the implemented counters."""
        if key in (_PMXEVTYPER, _PMXEVCNTR):
            index = self.select & 0x1F
        else:
            index = (key[3] & 3) << 3 | key[4]
        return index if index < NUM_COUNTERS or index == _CCNT else None

    def _write(self, key: tuple[int, int, int, int, int], value: int, now: int) -> None:
        self._settle(now)
        if key == _PMCR:
            if value & _PMCR_P:
                self.values = [0] * NUM_COUNTERS
            if value & _PMCR_C:
                self.cycles = 0
            self.pmcr = self.pmcr & ~_PMCR_WRITABLE | value & _PMCR_WRITABLE
        elif key == _PMCNTENSET:
            self.enabled |= value & _ENABLE_MASK
        elif key == _PMCNTENCLR:
            self.enabled &= ~value
        elif key == _PMOVSSET:
            self.overflow |= value & _ENABLE_MASK
        elif key == _PMOVSCLR:
            self.overflow &= ~value
        elif key == _PMSELR:
            self.select = value & 0x1F
        elif key == _PMSWINC:
            for n in range(NUM_COUNTERS):
                if (
                    value >> n & 1
                    and self.pmcr & _PMCR_E
                    and self.enabled >> n & 1
                    and self.types[n] & 0xFFFF == _EV_SW_INCR
                ):
                    self.values[n] = (self.values[n] + 1) & _M32
        elif key == _PMCCNTR:
            self.cycles = value & _M64
        else:
            index = self._index(key)
            if index is None:
                return
            if _is_typer(key):
                if index == _CCNT:
                    self.cycle_filter = value & _TYPER_MASK
                else:
                    self.types[index] = value & _TYPER_MASK
            elif index < NUM_COUNTERS:
                self.values[index] = value & _M32


def _is_typer(key: tuple[int, int, int, int, int]) -> bool:
    """PMXEVTYPER_EL0, PMEVTYPER<n>_EL0 or PMCCFILTR_EL0 (CRn 14, CRm 12..15)."""
    return key == _PMXEVTYPER or (key[2] == 14 and key[3] >= 12)
