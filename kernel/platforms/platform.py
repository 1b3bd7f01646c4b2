"""A platform's facts as plain data (:class:`Platform`), and its device tree."""

from __future__ import annotations

from functools import cache
from importlib import resources

import fdt

from kernel.abi.arch import Arch
from kernel.records import dataclass

__all__ = ["Platform"]


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
    tree = fdt.parse_dts(resources.files("kernel.platforms").joinpath(dts).read_text())
    memory = next(node for node in tree.root.nodes if node.name.startswith("memory"))
    reg = [ram_base >> 32, ram_base & 0xFFFF_FFFF, ram_size >> 32, ram_size & 0xFFFF_FFFF]
    memory.set_property("reg", reg)
    return bytes(tree.to_dtb(version=17, last_comp_version=16))
