"""What differs between the architectures in kernel behaviour, as data.

The ABI's own differences (object-type numbers, register order, sizes) are
:class:`kernel.abi.arch.ArchABI`; this bundle adds the ones that shape kernel objects and
operations, so that generic code reads a field instead of branching on the architecture:

- the translation-table format the kernel writes (Sv39; AArch64's 4-level 4 KiB granule);
- the cap type of a VSpace root: on RISC-V a top-level page table (a PageTableCap with
  an ASID), on AArch64 a VSpace object of its own (VSpaceCap);
- what a copied frame cap keeps of its mapping: RISC-V clears the mapped address with the
  ASID, AArch64 clears the ASID only (seL4's deriveCap per architecture);
- the status register a thread may not set freely (seL4's sanitiseRegister): AArch64's
  SPSR keeps its NZCV flags and is forced to EL0t; RISC-V has none in its user context.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64, Arch, ArchABI
from kernel.model.caps import Cap, PageTableCap, VSpaceCap
from kernel.model.paging import AARCH64_4K, RV64_SV39, PagingFormat
from kernel.records import dataclass

__all__ = ["ArchModel", "model_for"]


@dataclass(frozen=True, slots=True)
class StatusRegister:
    """A user-context register only some bits of which a thread may choose."""

    index: int
    """Position in seL4_UserContext order."""
    user_bits: int
    """Bits kept from the value a thread asks for."""
    forced_bits: int
    """Bits always set (the user mode the thread stays in)."""

    def sanitise(self, value: int) -> int:
        return (value & self.user_bits) | self.forced_bits


@dataclass(frozen=True, slots=True)
class ArchModel:
    """One architecture's kernel-behaviour facts (see the module docstring)."""

    abi: ArchABI
    paging: PagingFormat
    vspace_root_type: type[PageTableCap] | type[VSpaceCap]
    frame_copy_keeps_vaddr: bool
    status_register: StatusRegister | None

    def vspace_root_cap(self, paddr: int, asid: int) -> Cap:
        """The cap of an assigned VSpace root at ``paddr`` with ``asid``."""
        if self.vspace_root_type is PageTableCap:
            return PageTableCap(paddr, mapped_asid=asid, mapped_vaddr=0)
        return VSpaceCap(paddr, mapped_asid=asid)


RISCV64: Final = ArchModel(
    abi=ABI_RISCV64,
    paging=RV64_SV39,
    vspace_root_type=PageTableCap,
    frame_copy_keeps_vaddr=False,
    status_register=None,
)

AARCH64: Final = ArchModel(
    abi=ABI_AARCH64,
    paging=AARCH64_4K,
    vspace_root_type=VSpaceCap,
    frame_copy_keeps_vaddr=True,
    # NZCV only; PSTATE_USER of a debug kernel: EL0t with FIQs masked (PMODE_FIRQ).
    status_register=StatusRegister(ABI_AARCH64.user_context.index("spsr"), 0xF000_0000, 1 << 6),
)

_MODELS: Final = {Arch.RISCV64: RISCV64, Arch.AARCH64: AARCH64}


def model_for(arch: Arch) -> ArchModel:
    """The kernel-behaviour bundle of ``arch``."""
    return _MODELS[arch]
