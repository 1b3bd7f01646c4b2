"""A platform's facts as plain data (:class:`Platform`), and its device tree.

The device tree is its source (``<platform>.dts``) with /memory's ``reg`` saying the
machine's RAM. Each boot would parse that source and flatten it again; instead the
flattened tree ships beside it (``<platform>.dtb``, made by
:mod:`bootimage.device_trees`: ``make device-trees``) with a placeholder ``reg`` that boot
overwrites: ``reg`` has the same four cells whatever the RAM, so the result is byte for
byte the flattened source (tests/unit/test_platform_layout.py checks both).
"""

from __future__ import annotations

import struct
from functools import cache
from importlib import resources
from typing import Final

from kernel.abi.arch import Arch
from kernel.records import dataclass

__all__ = ["REG_PLACEHOLDER", "Platform", "memory_reg", "template_name"]

_REG: Final = struct.Struct(">4I")
"""/memory's ``reg``: base and size, two 32-bit cells each (#address-cells = 2)."""
REG_PLACEHOLDER: Final = _REG.pack(0xCA95_0000, 0xCA95_0001, 0xCA95_0002, 0xCA95_0003)
"""``reg`` in a shipped ``.dtb``: bytes found nowhere else in it."""


@dataclass(frozen=True, slots=True)
class Platform:
    """One board's facts, as seL4 16.0.0 (a debug, non-MCS build) sees them.

    Invariants: ``ram_base <= kernel_paddr``; ``kernel_boot_bytes <= kernel_image_bytes``,
    both page multiples; device frames are ``(paddr, size)``, sorted, disjoint, below RAM.
    """

    name: str
    arch: Arch
    ram_base: int
    """Where the device tree's /memory starts."""
    kernel_paddr: int
    """Where seL4's usable RAM starts and its loader puts the kernel image (RISC-V: above
    OpenSBI's 2 MiB, which is left to device untypeds)."""
    kernel_image_bytes: int
    """The kernel image's extent in RAM, reserved at boot."""
    kernel_boot_bytes: int
    """Its first part, boot-time code and data, given back as untyped after boot."""
    kernel_device_frames: tuple[tuple[int, int], ...]
    """Device memory the kernel maps for itself: never a user's device untyped."""
    device_top: int
    """End of the physical address space device untypeds describe."""
    dts: str
    """The device tree source's file name in this package."""

    def device_tree(self, ram_size: int) -> bytes:
        """The platform's flattened device tree with ``ram_size`` bytes of RAM."""
        return _device_tree(self.dts, self.ram_base, ram_size)


@cache
def _device_tree(dts: str, ram_base: int, ram_size: int) -> bytes:
    template = resources.files("kernel.platforms").joinpath(template_name(dts)).read_bytes()
    return template.replace(REG_PLACEHOLDER, memory_reg(ram_base, ram_size))


def memory_reg(ram_base: int, ram_size: int) -> bytes:
    """/memory's ``reg`` property value for RAM at ``ram_base`` of ``ram_size`` bytes."""
    return _REG.pack(ram_base >> 32, ram_base & 0xFFFF_FFFF, ram_size >> 32, ram_size & 0xFFFF_FFFF)


def template_name(dts: str) -> str:
    """The file name of the flattened template of the device tree source ``dts``."""
    return dts.removesuffix(".dts") + ".dtb"
