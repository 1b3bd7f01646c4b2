"""qemu-arm-virt (QEMU's ``virt`` machine, a Cortex-A53) as seL4 16.0.0 boots on it."""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch

from .platform import Platform

__all__ = ["QEMU_ARM_VIRT"]

QEMU_ARM_VIRT: Final = Platform(
    arch=Arch.AARCH64,
    name="qemu-arm-virt",
    ram_base=0x4000_0000,
    kernel_paddr=0x4000_0000,
    # A debug seL4 16.0.0 kernel image with its boot page tables: 2292 KiB, of which
    # 64 KiB are boot code.
    kernel_image_bytes=0x23_D000,
    kernel_boot_bytes=0x1_0000,
    # The GIC's distributor and CPU interface pages. The UART the kernel prints with
    # stays available to users, as seL4 marks it.
    kernel_device_frames=((0x800_0000, 0x1000), (0x801_0000, 0x1000)),
    device_top=1 << 40,
    dts="qemu_arm_virt.dts",
)
