"""Per-architecture CPU back ends: registers, MMU set-up and trap classification.

A back end knows how one Unicorn architecture behaves (``../shared/UNICORN.md``): which
register ids make up seL4_UserContext, how to enter user mode under the MMU, how to
install a page-table root, and what each interrupt number means and where the pc is
when the hook sees it. :class:`emulator.machine.UnicornMachine` is written once over
this interface.
"""

from __future__ import annotations

import ctypes
from enum import Enum
from typing import Final

import unicorn.arm64_const as A
import unicorn.riscv_const as R
from unicorn import UC_ARCH_ARM64, UC_ARCH_RISCV, UC_MODE_ARM, UC_MODE_RISCV64, Uc, UcError
from unicorn.unicorn_const import (
    UC_CTL_IO_WRITE,
    UC_CTL_TLB_FLUSH,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_UNMAPPED,
)
from unicorn.unicorn_py3.arch.arm64 import UcRegCP64
from unicorn.unicorn_py3.unicorn import uclib

from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64, Arch, ArchABI
from kernel.model.paging import Access
from kernel.records import dataclass

from .counters import trap_riscv_counters
from .fastregs import RegBatch

__all__ = ["CpuBackend", "RiscV64Backend", "AArch64Backend", "Trap", "TrapKind", "backend_for"]


class TrapKind(Enum):
    SYSCALL = "syscall"
    PAGE_FAULT = "page fault"
    """The translation refused the access (no mapping, or one without the right)."""
    BUS_ERROR = "bus error"
    """The translation allowed the access but nothing answers at the physical address
    (a frame of device memory where the platform has no device): AArch64's synchronous
    external abort, RISC-V's access fault."""
    PC_ALIGNMENT = "pc alignment"
    """The pc is not a multiple of the instruction alignment, found before any
    instruction there ran."""
    ILLEGAL = "illegal instruction"
    FP_ACCESS = "fp access"
    """An FP or SIMD instruction of a thread whose FPU is disabled, where the machine
    emulates the trap (AArch64: EC 0x07)."""
    OTHER = "other exception"


_UNMAPPED: dict[int, Access] = {
    UC_ERR_READ_UNMAPPED: Access.READ,
    UC_ERR_WRITE_UNMAPPED: Access.WRITE,
    UC_ERR_FETCH_UNMAPPED: Access.EXECUTE,
}
"""Unicorn's errors for an access to a physical address outside every memory region,
by the kind of access (its page walk succeeded: a failed walk is an exception)."""


@dataclass(frozen=True, slots=True)
class Trap:
    """A classified exception.

    ``fault_pc`` is the pc of the instruction that trapped (for a syscall: the trap
    instruction); ``resume_pc`` is where execution continues if the kernel just
    returns (for a syscall: the next instruction; for a fault: the instruction itself).
    ``access`` is set for page faults when the cause tells it (RISC-V) and for bus
    errors, else None.
    """

    kind: TrapKind
    fault_pc: int
    resume_pc: int
    cause: int
    access: Access | None = None


class CpuBackend:
    """What differs between the two Unicorn architectures."""

    abi: ArchABI
    uc_arch: int
    uc_mode: int
    pc_reg: int
    syscall_regs: tuple[int, ...]
    context_regs: tuple[int, ...]
    probe_code: bytes
    """A program that runs ``probe_instructions`` instructions, the last one a syscall,
    in two blocks: the first ends in a jump, so it completes normally (the machine needs
    one block to have done so, see ``UnicornMachine.__init__``)."""
    probe_instructions: int
    probe_register: int
    """The register the probe adds 1 to twice."""
    patched_probe_code: bytes
    """The probe with its first addition made an addition of 0 (the register ends at 1)."""
    load_probe_code: bytes
    """Adds 1 to ``probe_register``, loads from the address in ``load_probe_address``,
    adds 1 again and makes a syscall, in one block (``emulator.exitchecks``)."""
    load_probe_address: int
    syscall_intno: int
    """The interrupt number of the syscall trap (the hot path skips classification)."""
    instruction_alignment: int
    """IALIGN in bytes: instructions start at multiples of it (Unicorn does not check)."""
    fixed_instruction_width: int
    """Every instruction's length in bytes, or 0 when lengths vary (RISC-V's C extension)."""

    def __init__(self) -> None:
        self.uc: Uc | None = None

    def create(self) -> Uc:
        self.uc = Uc(self.uc_arch, self.uc_mode)
        return self.uc

    gpr_ids: tuple[int, ...]
    """Unicorn's ids of general registers 0..31 (x0..x31; X0..X30 and XZR's place)."""

    def read_gpr(self, n: int) -> int:
        """General register ``n`` of the live thread (x0 and XZR read as 0)."""
        assert self.uc is not None
        return int(self.uc.reg_read(self.gpr_ids[n]))

    def write_gpr(self, n: int, value: int) -> None:
        """Set general register ``n`` of the live thread (callers never pass x0/XZR)."""
        assert self.uc is not None
        self.uc.reg_write(self.gpr_ids[n], value)

    def batches(self, uc: Uc) -> tuple[RegBatch, RegBatch]:
        return RegBatch(uc, self.syscall_regs), RegBatch(uc, self.context_regs)

    def enter_user_mode(self, uc: Uc) -> None:
        """Put the CPU at user level under the MMU, with the FPU usable."""
        raise NotImplementedError

    def set_fpu(self, uc: Uc, enabled: bool) -> None:
        """Make the live thread's floating-point (and SIMD) instructions usable or trap."""
        raise NotImplementedError

    fpu_trap_emulated = False
    """Unicorn does not trap FP instructions when the FPU is disabled: the machine must
    look at each instruction itself while such a thread runs."""

    @staticmethod
    def is_fp_instruction(word: int) -> bool:
        """Whether the instruction word is one a disabled FPU traps (emulated back ends)."""
        return False

    def set_address_space(self, uc: Uc, root_paddr: int, asid: int,
                          previous_asid: int | None = None) -> None:
        """Install ``root_paddr`` / ``asid`` and leave no translation of the previous
        address space usable. ``previous_asid`` (None: unknown) lets a back end skip a
        flush the hardware already does when the ASID changes."""
        raise NotImplementedError

    def classify(self, uc: Uc, intno: int) -> Trap:
        raise NotImplementedError

    def classify_error(self, uc: Uc, errno: int) -> Trap | None:
        """The trap behind a Unicorn error that ended ``emu_start``, if the guest caused
        it; None for an error of the emulator itself.

        The guest's are the accesses through a valid mapping to a physical address with
        no memory region behind it. Unicorn has put the pc back on the faulting
        instruction (a data access) or on the address it could not fetch; the
        instruction has not completed, so its registers still give its address.
        """
        access = _UNMAPPED.get(errno)
        if access is None:
            return None
        pc = uc.reg_read(self.pc_reg)
        if access is Access.EXECUTE and pc % self.instruction_alignment:
            return self.misaligned_pc(pc)
        return Trap(TrapKind.BUS_ERROR, pc, pc, errno, access)

    @staticmethod
    def fp_access_trap(pc: int) -> Trap:
        """The trap of an FP instruction at ``pc`` with the FPU disabled (emulated)."""
        return Trap(TrapKind.FP_ACCESS, pc, pc, 0)

    @staticmethod
    def misaligned_pc(pc: int) -> Trap:
        """The trap of a thread whose pc cannot hold an instruction."""
        return Trap(TrapKind.PC_ALIGNMENT, pc, pc, 0, Access.EXECUTE)

    def end_runs_quietly(self, uc: Uc, quiet: bool) -> None:
        """Whether a run's ``until`` ends it without a trap the guest could see. RISC-V:
        always (Unicorn halts there)."""

    @staticmethod
    def flush_tlb(uc: Uc) -> None:
        uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def flush_tlb_page(self, uc: Uc, vaddr: int) -> None:
        """Leave no translation of the 4 KiB page at user ``vaddr`` usable (others may
        stay). The default flushes everything."""
        self.flush_tlb(uc)


class RiscV64Backend(CpuBackend):
    """RV64 in U-mode under Sv39. Unicorn reports the scause number as ``intno``."""

    abi = ABI_RISCV64
    uc_arch: int = UC_ARCH_RISCV
    uc_mode: int = UC_MODE_RISCV64
    pc_reg: int = R.UC_RISCV_REG_PC
    syscall_regs = tuple(getattr(R, f"UC_RISCV_REG_A{i}") for i in range(8))
    context_regs = tuple(getattr(R, f"UC_RISCV_REG_{n.upper()}") for n in ABI_RISCV64.user_context)
    # addi a0, a0, 1 ; addi a0, a0, 1 ; j .+4 ; ecall
    probe_code = bytes.fromhex("13051500" "13051500" "6f004000" "73000000")
    probe_instructions = 4
    probe_register: int = R.UC_RISCV_REG_A0
    patched_probe_code = bytes.fromhex("13050500" "13051500" "6f004000" "73000000")
    # addi a0, a0, 1 ; ld a1, 0(a2) ; addi a0, a0, 1 ; ecall
    load_probe_code = bytes.fromhex("13051500" "83350600" "13051500" "73000000")
    load_probe_address: int = R.UC_RISCV_REG_A2
    gpr_ids = tuple(getattr(R, f"UC_RISCV_REG_X{i}") for i in range(32))

    def create(self) -> Uc:
        trap_riscv_counters()  # the counters read deterministic values (emulator.counters)
        return super().create()

    ECALL_U: Final = 8
    syscall_intno = ECALL_U
    # With the C extension instructions are 2-byte aligned: jalr clears bit 0 of its
    # target and every other jump offset is even, so only the kernel can give a thread
    # an odd pc (WriteRegisters, a fault reply), and sepc[0] is always zero (privileged
    # spec): the thread resumes at pc & ~1. Instruction-address-misaligned (scause 0)
    # never arises.
    instruction_alignment = 2
    fixed_instruction_width = 0
    ILLEGAL_INSTRUCTION: Final = 2
    PAGE_FAULTS: Final = {12: Access.EXECUTE, 13: Access.READ, 15: Access.WRITE}
    ACCESS_FAULTS: Final = {1: Access.EXECUTE, 5: Access.READ, 7: Access.WRITE}

    def enter_user_mode(self, uc: Uc) -> None:
        self.set_fpu(uc, True)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 0)

    # mstatus.FS: Off makes every F/D instruction illegal; seL4 gives a thread whose FPU
    # is enabled the Clean state at each return to user mode (set_tcb_fs_state).
    MSTATUS_FS: Final = 3 << 13
    MSTATUS_FS_CLEAN: Final = 2 << 13

    def set_fpu(self, uc: Uc, enabled: bool) -> None:
        """Let the live thread use the F and D extensions, or make them trap."""
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)  # mstatus is writable from M mode only
        status = uc.reg_read(R.UC_RISCV_REG_MSTATUS) & ~self.MSTATUS_FS
        uc.reg_write(R.UC_RISCV_REG_MSTATUS, status | (self.MSTATUS_FS_CLEAN if enabled else 0))
        uc.reg_write(R.UC_RISCV_REG_PRIV, 0)

    def set_address_space(self, uc: Uc, root_paddr: int, asid: int,
                          previous_asid: int | None = None) -> None:
        satp = (8 << 60) | (asid << 44) | (root_paddr >> 12)
        # SATP is writable only from M/S mode (UNICORN.md): raise PRIV around the write.
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        uc.reg_write(R.UC_RISCV_REG_SATP, satp)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 0)
        # A SATP write flushes Unicorn's TLB itself when the ASID field changes
        # (UNICORN.md; measured again: without a second flush the next space's code ran,
        # never the previous one's). Only a new root under the same ASID needs ours.
        if previous_asid is None or previous_asid == asid:
            self.flush_tlb(uc)

    def classify(self, uc: Uc, intno: int) -> Trap:
        # Unicorn has already added 4 to pc for every exception (UNICORN.md).
        pc = uc.reg_read(R.UC_RISCV_REG_PC) - 4
        if intno == self.ECALL_U:
            return Trap(TrapKind.SYSCALL, pc, pc + 4, intno)
        if pc % self.instruction_alignment:
            # A fetch at an odd pc failed before any instruction there ran.
            return self.misaligned_pc(pc)
        if intno in self.PAGE_FAULTS:
            return Trap(TrapKind.PAGE_FAULT, pc, pc, intno, self.PAGE_FAULTS[intno])
        if intno in self.ACCESS_FAULTS:
            return Trap(TrapKind.PAGE_FAULT, pc, pc, intno, self.ACCESS_FAULTS[intno])
        if intno == self.ILLEGAL_INSTRUCTION:
            return Trap(TrapKind.ILLEGAL, pc, pc, intno)
        return Trap(TrapKind.OTHER, pc, pc, intno)


_TLBI_VA_MASK: Final = (1 << 44) - 1
"""A TLBI operand's VA[55:12] field."""


def _cp(crn: int, crm: int, op0: int, op1: int, op2: int, value: int) -> tuple[int, ...]:
    return (crn, crm, op0, op1, op2, value)


class AArch64Backend(CpuBackend):
    """AArch64 at EL0 with the stage-1 MMU, 48-bit VA, 4 KiB granule."""

    abi = ABI_AARCH64
    uc_arch: int = UC_ARCH_ARM64
    uc_mode: int = UC_MODE_ARM
    pc_reg: int = A.UC_ARM64_REG_PC
    syscall_regs = tuple(getattr(A, f"UC_ARM64_REG_X{i}") for i in range(8))
    context_regs = tuple(
        {
            "pc": A.UC_ARM64_REG_PC,
            "sp": A.UC_ARM64_REG_SP,
            "spsr": A.UC_ARM64_REG_NZCV,  # at EL0 only the condition flags are state
            "tpidr_el0": A.UC_ARM64_REG_TPIDR_EL0,
            "tpidrro_el0": A.UC_ARM64_REG_TPIDRRO_EL0,
        }.get(name) or getattr(A, f"UC_ARM64_REG_{name.upper()}")
        for name in ABI_AARCH64.user_context
    )
    # add x0, x0, #1 ; add x0, x0, #1 ; b .+4 ; svc #0
    probe_code = bytes.fromhex("00040091" "00040091" "01000014" "010000d4")
    probe_instructions = 4
    probe_register: int = A.UC_ARM64_REG_X0
    patched_probe_code = bytes.fromhex("00000091" "00040091" "01000014" "010000d4")
    # add x0, x0, #1 ; ldr x1, [x2] ; add x0, x0, #1 ; svc #0
    load_probe_code = bytes.fromhex("00040091" "410040f9" "00040091" "010000d4")
    load_probe_address: int = A.UC_ARM64_REG_X2
    gpr_ids = (*(getattr(A, f"UC_ARM64_REG_X{i}") for i in range(31)), A.UC_ARM64_REG_XZR)

    EXCP_UDEF: Final = 1
    EXCP_SWI: Final = 2
    syscall_intno = EXCP_SWI
    instruction_alignment = 4
    fixed_instruction_width = 4
    EXCP_PREFETCH_ABORT: Final = 3
    EXCP_DATA_ABORT: Final = 4

    # TCR_EL1: T0SZ = 16 (48-bit VA, four levels: see kernel.model.paging.AARCH64_4K),
    # IRGN0/ORGN0 write-back, SH0 inner shareable, TG0 = 4 KiB, EPD1 = 1,
    # TG1 = 0b10 (4 KiB; 0b00 is reserved and breaks every fetch), IPS = 40 bits,
    # AS = 1 (16-bit ASIDs).
    TCR: Final = 16 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 30 | 2 << 32 | 1 << 36
    # SCR_EL3.RW and HCR_EL2.RW: the levels below EL3 / EL2 run AArch64. Unicorn resets
    # both to 0, and QEMU then walks the EL1&0 tables with AArch32 LPAE rules: a 32-bit
    # VA with T0SZ taken modulo 8 (measured on Unicorn 2.1.4: without these, T0SZ 25
    # faulted every access at 2^31 and above, and a fetch at 0x7f00_0000_0000 through a
    # 4-level table set at T0SZ 16 was a prefetch abort; with them, that fetch runs).
    SCR_EL3_RW = 1 << 10
    HCR_EL2_RW = 1 << 31
    # MDCR_EL3.TPM: every PMU register access below EL3 traps, PMUSERENR_EL0's EL0 read
    # included (which PMUSERENR_EL0.EN alone leaves to the hardware), so that all of
    # them reach emulator.arm_pmu as UNDEFINED (intno 1; measured on Unicorn 2.1.4),
    # whose counts are deterministic where Unicorn's follow the host clock.
    MDCR_EL3_TPM = 1 << 6
    MAIR: Final = 0xFF | 0x00 << 8  # attr 0: normal write-back; attr 1: device nGnRnE
    SCTLR: Final = 1 << 0 | 1 << 2 | 1 << 12  # M, C, I
    SCTLR_NTWI: Final = 1 << 16
    CPACR_FPEN: Final = 3 << 20

    PAGE_SIZE: Final = 4096

    def create(self) -> Uc:
        # Unicorn 2.1.4 builds its ARM targets for ARMv5's 1 KiB pages unless told
        # otherwise before the first mapping (QEMU picks 4 KiB for v7 and later, which
        # Unicorn left out). With 1 KiB its soft TLB holds each 4 KiB guest page as a
        # "large" page, so dropping one page (flush_tlb_page) dropped the whole TLB,
        # and translated blocks chain directly only within 1 KiB, so most jumps went
        # through the block lookup. The granule is 4 KiB (TCR below), so nothing
        # smaller is ever mapped.
        uc = super().create()
        uc.ctl_set_page_size(self.PAGE_SIZE)
        return uc

    def __init__(self) -> None:
        super().__init__()
        self._sctlr_plain = UcRegCP64(1, 0, 3, 0, 0, self.SCTLR)
        self._sctlr_quiet = UcRegCP64(1, 0, 3, 0, 0, self.SCTLR | self.SCTLR_NTWI)
        # TLBI VAAE1 (op0 1, op1 0, CRn 8, CRm 7, op2 3): see flush_tlb_page.
        self._tlbi_page = UcRegCP64(8, 7, 1, 0, 3, 0)

    def enter_user_mode(self, uc: Uc) -> None:
        # Order matters (UNICORN.md): PSTATE before the last CP_REG write, SCTLR last.
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 1, 3, 6, 0, self.SCR_EL3_RW))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 1, 3, 4, 0, self.HCR_EL2_RW))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 3, 3, 6, 1, self.MDCR_EL3_TPM))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(2, 0, 3, 0, 2, self.TCR))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(10, 2, 3, 0, 0, self.MAIR))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 0, 3, 0, 2, self.CPACR_FPEN))
        uc.reg_write(A.UC_ARM64_REG_PSTATE, 0)  # EL0t
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 0, 3, 0, 0, self.SCTLR))
        self.flush_tlb(uc)

    def end_runs_quietly(self, uc: Uc, quiet: bool) -> None:
        """Unicorn ends an AArch64 run at its ``until`` with a WFI, which traps from EL0
        unless SCTLR_EL1.nTWI is set; set, it halts the run there. Set only for such runs:
        a guest's own WFI traps to the kernel, as with seL4. (Through the C API: it runs
        twice for each block a tick splits, and the binding's register write costs
        several times the write.)"""
        register = self._sctlr_quiet if quiet else self._sctlr_plain
        status = uclib.uc_reg_write(uc._uch, A.UC_ARM64_REG_CP_REG, ctypes.byref(register))
        if status:
            raise UcError(status)

    def set_fpu(self, uc: Uc, enabled: bool) -> None:
        """CPACR_EL1.FPEN: FP and SIMD usable at EL0, or trapped to EL1 (EC 0x07)."""
        uc.reg_write(A.UC_ARM64_REG_CP_REG, _cp(1, 0, 3, 0, 2, self.CPACR_FPEN if enabled else 0))

    # Measured on Unicorn 2.1.4: FP and SIMD instructions run at EL0 whatever CPACR_EL1,
    # CPTR_EL2 and CPTR_EL3 say, even after an eret; the register is kept (for the
    # thread's state) and the trap is emulated by the machine.
    fpu_trap_emulated = True

    @staticmethod
    def is_fp_instruction(word: int) -> bool:
        """A64's top-level encoding (op0, bits 28..25): 0b x111 is scalar FP and Advanced
        SIMD data processing, 0b x110 a load or store of an FP/SIMD register (V = 1)."""
        return (word >> 25) & 0b111 in (0b111, 0b110)

    def set_address_space(self, uc: Uc, root_paddr: int, asid: int,
                          previous_asid: int | None = None) -> None:
        # The named TTBR0_EL1 write never flushes; the CP_REG write flushes on an ASID
        # change but costs more than this write plus a flush (UNICORN.md). Unicorn's
        # TLB is not ASID-tagged, so every switch of address space flushes once.
        uc.reg_write(A.UC_ARM64_REG_TTBR0_EL1, asid << 48 | root_paddr)
        self.flush_tlb(uc)

    def flush_tlb_page(self, uc: Uc, vaddr: int) -> None:
        # seL4's own TLBI VAAE1 (the page, any ASID), written as a system register:
        # Unicorn 2.1.4's CP_REG write calls the instruction's handler, QEMU's
        # tlbi_aa64_vae1_write, which drops the page's entries in the EL1&0 regime and
        # the cached block lookups that may start in it (tb_flush_jmp_cache). Through
        # the C API, as sel4test unmaps a page every 10,000 instructions or so.
        register = self._tlbi_page
        register.val = (vaddr >> 12) & _TLBI_VA_MASK
        status = uclib.uc_reg_write(uc._uch, A.UC_ARM64_REG_CP_REG, ctypes.byref(register))
        if status:
            raise UcError(status)

    def classify(self, uc: Uc, intno: int) -> Trap:
        pc = uc.reg_read(A.UC_ARM64_REG_PC)
        if intno == self.EXCP_SWI:
            return Trap(TrapKind.SYSCALL, pc - 4, pc, intno)
        if pc % self.instruction_alignment:
            # The architecture checks the pc's alignment before fetching (ahead of any
            # instruction abort there); Unicorn does not, and a fetch fault at the
            # misaligned pc or the undefined word read there means the fetch was tried.
            return self.misaligned_pc(pc)
        if intno == self.EXCP_DATA_ABORT:
            return Trap(TrapKind.PAGE_FAULT, pc, pc, intno)
        if intno == self.EXCP_PREFETCH_ABORT:
            return Trap(TrapKind.PAGE_FAULT, pc, pc, intno, Access.EXECUTE)
        if intno == self.EXCP_UDEF:
            return Trap(TrapKind.ILLEGAL, pc, pc, intno)
        return Trap(TrapKind.OTHER, pc, pc, intno)


def backend_for(arch: Arch) -> CpuBackend:
    return RiscV64Backend() if arch is Arch.RISCV64 else AArch64Backend()
