"""Per-architecture parts of the ABI declaration: object types, sizes, registers.

The two architectures differ in their object-type numbers, their ``seL4_UserContext``
register order and a few sizes; everything else in the ABI is shared
(``kernel.abi.constants``). An :class:`ArchABI` bundles one architecture's facts so that
code is written once against the bundle rather than branching on the architecture.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from kernel.records import dataclass

__all__ = [
    "Arch",
    "ArchABI",
    "ObjectTypeRV64",
    "ObjectTypeAArch64",
    "ObjectTypeRV64MCS",
    "ObjectTypeAArch64MCS",
    "ABI_RISCV64",
    "ABI_AARCH64",
    "abi_for",
    "object_type_enum",
]


class Arch(IntEnum):
    """Guest architectures; the values are the ELF ``e_machine`` numbers."""

    RISCV64 = 243
    AARCH64 = 183

    @property
    def short(self) -> str:
        return {Arch.RISCV64: "riscv64", Arch.AARCH64: "aarch64"}[self]

    @classmethod
    def from_name(cls, name: str) -> Arch:
        for arch in cls:
            if arch.short == name:
                return arch
        raise ValueError(f"unknown architecture {name!r} (expected riscv64 or aarch64)")


class ObjectTypeRV64(IntEnum):
    """seL4_ObjectType for riscv64, non-MCS (retype ``type`` argument)."""

    seL4_UntypedObject = 0
    seL4_TCBObject = 1
    seL4_EndpointObject = 2
    seL4_NotificationObject = 3
    seL4_CapTableObject = 4
    seL4_RISCV_Giga_Page = 5
    seL4_RISCV_4K_Page = 6
    seL4_RISCV_Mega_Page = 7
    seL4_RISCV_PageTableObject = 8
    seL4_ObjectTypeCount = 9


class ObjectTypeAArch64(IntEnum):
    """seL4_ObjectType for aarch64, non-MCS, no hypervisor."""

    seL4_UntypedObject = 0
    seL4_TCBObject = 1
    seL4_EndpointObject = 2
    seL4_NotificationObject = 3
    seL4_CapTableObject = 4
    seL4_ARM_HugePageObject = 5
    seL4_ARM_VSpaceObject = 6
    seL4_ARM_SmallPageObject = 7
    seL4_ARM_LargePageObject = 8
    seL4_ARM_PageTableObject = 9
    seL4_ObjectTypeCount = 10


class ObjectTypeRV64MCS(IntEnum):
    """seL4_ObjectType for riscv64, MCS: SchedContext and Reply follow the generic
    types, and every type after them is moved up by 2."""

    seL4_UntypedObject = 0
    seL4_TCBObject = 1
    seL4_EndpointObject = 2
    seL4_NotificationObject = 3
    seL4_CapTableObject = 4
    seL4_SchedContextObject = 5
    seL4_ReplyObject = 6
    seL4_RISCV_Giga_Page = 7
    seL4_RISCV_4K_Page = 8
    seL4_RISCV_Mega_Page = 9
    seL4_RISCV_PageTableObject = 10
    seL4_ObjectTypeCount = 11


class ObjectTypeAArch64MCS(IntEnum):
    """seL4_ObjectType for aarch64, MCS, no hypervisor (as ``ObjectTypeRV64MCS``)."""

    seL4_UntypedObject = 0
    seL4_TCBObject = 1
    seL4_EndpointObject = 2
    seL4_NotificationObject = 3
    seL4_CapTableObject = 4
    seL4_SchedContextObject = 5
    seL4_ReplyObject = 6
    seL4_ARM_HugePageObject = 7
    seL4_ARM_VSpaceObject = 8
    seL4_ARM_SmallPageObject = 9
    seL4_ARM_LargePageObject = 10
    seL4_ARM_PageTableObject = 11
    seL4_ObjectTypeCount = 12


_OBJECT_TYPES: Final[dict[tuple[Arch, bool], type[IntEnum]]] = {
    (Arch.RISCV64, False): ObjectTypeRV64,
    (Arch.RISCV64, True): ObjectTypeRV64MCS,
    (Arch.AARCH64, False): ObjectTypeAArch64,
    (Arch.AARCH64, True): ObjectTypeAArch64MCS,
}


def object_type_enum(arch: Arch, mcs: bool) -> type[IntEnum]:
    """The seL4_ObjectType numbering of ``arch`` in the non-MCS or MCS configuration."""
    return _OBJECT_TYPES[(arch, mcs)]


@dataclass(frozen=True)
class ArchABI:
    """One architecture's ABI facts.

    Invariants: ``user_context`` lists the registers in seL4_UserContext order; the
    syscall argument registers are the first eight argument registers (a0-a7 / x0-x7) on
    both architectures, so the kernel reads a syscall as one 8-word window.
    """

    arch: Arch
    ram_base: int
    """Physical base of RAM, as on QEMU's virt machine."""
    tcb_bits: int
    """seL4_TCBBits with the FPU (CONFIG_HAVE_FPU), seL4's default and capsule's."""
    tcb_bits_without_fpu: int
    """seL4_TCBBits of a kernel built without the FPU (RISC-V without F and D)."""
    max_untyped_bits: int
    user_top: int
    """First address that user mappings may not reach (exclusive bound)."""
    user_context: tuple[str, ...]
    unknown_syscall_mrs: tuple[str, ...]
    user_exception_mrs: tuple[str, ...]
    c_macro: str
    """The preprocessor symbol the C compiler defines for this architecture."""
    timer_hz: int
    """The platform timer's frequency (TIMER_CLOCK_HZ of seL4's qemu-riscv-virt /
    qemu-arm-virt): MCS time is counted in its ticks, converted from microseconds."""


ABI_RISCV64: Final = ArchABI(
    arch=Arch.RISCV64,
    ram_base=0x8000_0000,
    tcb_bits=11,
    tcb_bits_without_fpu=10,
    max_untyped_bits=38,
    user_top=0x0000_003F_FFFF_F000,
    user_context=(
        "pc", "ra", "sp", "gp", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
        "s9", "s10", "s11", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "t0", "t1",
        "t2", "t3", "t4", "t5", "t6", "tp",
    ),
    unknown_syscall_mrs=(
        "FaultIP", "SP", "RA", "A0", "A1", "A2", "A3", "A4", "A5", "A6", "Syscall",
    ),
    user_exception_mrs=("FaultIP", "SP", "Number", "Code"),
    c_macro="__riscv",
    timer_hz=10_000_000,
)

ABI_AARCH64: Final = ArchABI(
    arch=Arch.AARCH64,
    ram_base=0x4000_0000,
    tcb_bits=11,
    tcb_bits_without_fpu=11,  # seL4 on AArch64 always has the FPU
    max_untyped_bits=47,
    user_top=0x0000_8000_0000_0000,
    user_context=(
        "pc", "sp", "spsr", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8",
        "x16", "x17", "x18", "x29", "x30", "x9", "x10", "x11", "x12", "x13", "x14",
        "x15", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
        "tpidr_el0", "tpidrro_el0",
    ),
    unknown_syscall_mrs=(
        "X0", "X1", "X2", "X3", "X4", "X5", "X6", "X7", "FaultIP", "SP", "LR", "SPSR",
        "Syscall",
    ),
    user_exception_mrs=("FaultIP", "SP", "SPSR", "Number", "Code"),
    c_macro="__aarch64__",
    timer_hz=62_500_000,
)


def abi_for(arch: Arch) -> ArchABI:
    """The ABI bundle of ``arch``."""
    return ABI_RISCV64 if arch is Arch.RISCV64 else ABI_AARCH64
