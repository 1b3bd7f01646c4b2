"""What a faulting instruction tried to do: the address and kind of its access.

Unicorn does not expose stval / FAR_EL1 (UNICORN.md), so the address of a data fault is
recomputed from the instruction: capstone decodes it and gives the base register,
index register and displacement of its memory operand, whose values are still in the
registers (the instruction did not complete). Pre/post-indexed forms compute the same
address before writeback. Instructions whose address cannot be recomputed this way
report address 0 and say so in ``exact``.
"""

from __future__ import annotations

from typing import Any

import capstone
from capstone import arm64_const as CA
from capstone import riscv_const as CR
from unicorn import Uc

from kernel.abi.arch import Arch
from kernel.model.paging import Access
from kernel.records import dataclass

__all__ = ["DataAccess", "Decoder"]


@dataclass(frozen=True, slots=True)
class DataAccess:
    address: int
    access: Access
    exact: bool


class Decoder:
    """Decodes one faulting instruction per call; the capstone handle is reused."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        if arch is Arch.RISCV64:
            self.cs = capstone.Cs(
                capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC
            )
        else:
            self.cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        self.cs.detail = True

    def data_access(self, uc: Uc, code: bytes, pc: int, hint: Access | None) -> DataAccess:
        """The access made by the instruction ``code`` at ``pc`` (registers from ``uc``)."""
        insn = next(self.cs.disasm(code, pc, 1), None)
        if insn is None:
            return DataAccess(0, hint or Access.READ, False)
        if self.arch is Arch.RISCV64 and insn.mnemonic.startswith(("amo", "lr.", "sc.")):
            # Capstone gives the address of the A extension's instructions as a plain
            # register, their last operand. An AMO faults as a store/AMO access whichever
            # half failed (the privileged spec); Unicorn's AMO reads first and says so.
            address = self._reg_value(uc, insn, insn.operands[-1].value.reg)
            access = Access.READ if insn.mnemonic.startswith("lr.") else Access.WRITE
            return DataAccess(address, access, True)
        mem_type = CR.RISCV_OP_MEM if self.arch is Arch.RISCV64 else CA.ARM64_OP_MEM
        for op in insn.operands:
            if op.type == mem_type:
                address = self._operand_address(uc, insn, op)
                access = hint or self._access_kind(insn)
                return DataAccess(address & ((1 << 64) - 1), access, True)
        ops = insn.operands
        if (self.arch is Arch.RISCV64 and insn.mnemonic.startswith("c.") and len(ops) == 3
                and [o.type for o in ops] == [CR.RISCV_OP_REG, CR.RISCV_OP_IMM,
                                              CR.RISCV_OP_REG]):
            # Capstone gives compressed loads and stores (c.ld, c.sd, c.lwsp, ...) as
            # register, displacement, base register rather than a memory operand.
            address = self._reg_value(uc, insn, ops[2].value.reg) + ops[1].value.imm
            return DataAccess(address & ((1 << 64) - 1), hint or self._access_kind(insn), True)
        return DataAccess(0, hint or self._access_kind(insn), False)

    def _operand_address(self, uc: Uc, insn: capstone.CsInsn, op: Any) -> int:
        mem = op.mem
        base = self._reg_value(uc, insn, mem.base)
        address = base + mem.disp
        if self.arch is Arch.AARCH64 and mem.index:
            index = self._reg_value(uc, insn, mem.index)
            shift = op.shift.value if op.shift.type == CA.ARM64_SFT_LSL else 0
            address += index << shift
        return int(address)

    def _reg_value(self, uc: Uc, insn: capstone.CsInsn, reg: int) -> int:
        if not reg:
            return 0
        name = insn.reg_name(reg)
        if self.arch is Arch.RISCV64:
            import unicorn.riscv_const as R

            return int(uc.reg_read(getattr(R, f"UC_RISCV_REG_{name.upper()}")))
        import unicorn.arm64_const as A

        if name in ("sp", "wsp"):
            return int(uc.reg_read(A.UC_ARM64_REG_SP))
        if name.startswith("w"):
            return int(uc.reg_read(getattr(A, f"UC_ARM64_REG_X{name[1:]}"))) & 0xFFFF_FFFF
        return int(uc.reg_read(getattr(A, f"UC_ARM64_REG_{name.upper()}")))

    @staticmethod
    def _access_kind(insn: capstone.CsInsn) -> Access:
        # Only AArch64 needs this (RISC-V's cause number tells loads from stores): every
        # AArch64 store mnemonic starts with "st" (str, stp, stur, stlr, stxr, ...).
        return Access.WRITE if insn.mnemonic.startswith("st") else Access.READ
