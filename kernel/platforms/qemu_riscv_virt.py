"""qemu-riscv-virt (QEMU's ``virt`` machine, one rv64 hart) as seL4 16.0.0 boots on it."""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch

from .platform import Platform

__all__ = ["QEMU_RISCV_VIRT"]

MIB: Final = 1 << 20

QEMU_RISCV_VIRT: Final = Platform(
    arch=Arch.RISCV64,
    name="qemu-riscv-virt",
    ram_base=0x8000_0000,
    # OpenSBI keeps the first 2 MiB of RAM; the kernel's window starts above it.
    kernel_paddr=0x8020_0000,
    # A debug seL4 16.0.0 kernel image: 132 KiB, of which 12 KiB are boot code.
    kernel_image_bytes=0x2_1000,
    kernel_boot_bytes=0x3000,
    # The CLINT and the PLIC, which the kernel maps with 2 MiB pages.
    kernel_device_frames=(
        (0x200_0000, 2 * MIB),
        (0xC00_0000, 2 * MIB), (0xC20_0000, 2 * MIB), (0xC40_0000, 2 * MIB),
    ),
    device_top=1 << 39,
    dts="qemu_riscv_virt.dts",
)
