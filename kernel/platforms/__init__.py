"""The platforms capsule boots as seL4 does on them: qemu-riscv-virt and qemu-arm-virt.

A :class:`Platform` is plain data: where RAM starts, where seL4's loader puts the kernel
image and how much of it is boot-time code, the device frames the kernel keeps for
itself, the top of the device address space, and the platform's device tree (which boot
hands to the root task as extra bootinfo). :mod:`kernel.platforms.layout` turns one into
seL4's boot memory layout for a RAM size.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch

from .platform import Platform
from .qemu_arm_virt import QEMU_ARM_VIRT
from .qemu_riscv_virt import QEMU_RISCV_VIRT

__all__ = ["Platform", "platform_for"]

_PLATFORMS: Final = {Arch.RISCV64: QEMU_RISCV_VIRT, Arch.AARCH64: QEMU_ARM_VIRT}


def platform_for(arch: Arch) -> Platform:
    """The platform capsule boots ``arch`` images as."""
    return _PLATFORMS[arch]
