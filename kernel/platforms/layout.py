"""seL4's boot memory layout on a platform, computed (seL4 16.0.0's loader and kernel boot).

Where things land, for a RAM size, a root task image and a device tree:

1. The loader puts the kernel image at the platform's kernel address, the device tree at
   the next page boundary after it, and the root task's image at the next page boundary
   after that (``[kernel][dtb][image]``, each start page-aligned).
2. The kernel's free memory is the usable RAM (from the kernel address to the end of
   RAM) less those three, as ordered ``[start, end)`` regions.
3. The root server's objects take one block of ``rootserver_bytes``, aligned to
   ``2^rootserver_align_bits`` and as high as it fits: in the highest free region whose
   top, less the block, rounded down to the alignment, is still inside it. What lies
   below and above the block stays free.
4. Untypeds, in this order: the device regions (every gap of the physical address space
   below ``device_top`` that is neither usable RAM nor a frame the kernel keeps for its
   own devices), the kernel image's boot part (given back after boot), then the free
   regions in address order. Each region is cut from its start into the largest
   naturally aligned power-of-two blocks (at most ``max_bits``); a block smaller than
   ``min_bits`` is no untyped and its bytes are lost.

The computation is pure: no machine, no kernel state.
"""

from __future__ import annotations

from typing import Final

from kernel.records import dataclass

from .platform import Platform

__all__ = ["BootLayout", "LayoutError", "aligned_blocks", "device_untypeds", "sel4_layout"]

PAGE_BITS: Final = 12


class LayoutError(Exception):
    """The root task, its device tree or its boot objects do not fit (one-line message)."""


@dataclass(frozen=True, slots=True)
class BootLayout:
    """Where boot places things, and the untyped list it reports.

    ``reserved`` is ``(what, paddr, size)`` for every byte of RAM that is no RAM
    untyped (the firmware's, the kernel's, the device tree, the image, the root server
    block, fragments too small for an untyped): with the RAM untypeds' bytes it adds up
    to the RAM size. ``untypeds`` is ``(paddr, size_bits, is_device)`` in seL4's order.
    """

    dtb_paddr: int
    image_paddr: int
    rootserver_paddr: int
    reserved: tuple[tuple[str, int, int], ...]
    untypeds: tuple[tuple[int, int, bool], ...]


def _page_up(value: int) -> int:
    return -(-value >> PAGE_BITS) << PAGE_BITS


def aligned_blocks(start: int, end: int, max_bits: int, min_bits: int = 0
                   ) -> tuple[list[tuple[int, int]], int]:
    """Cut ``[start, end)`` into maximal naturally aligned power-of-two blocks of at most
    ``2^max_bits`` bytes, from its start: the blocks ``(paddr, bits)`` of at least
    ``2^min_bits``, and the bytes lost in smaller ones."""
    blocks, lost = [], 0
    while start < end:
        bits = min((end - start).bit_length() - 1, max_bits)
        if start:
            bits = min(bits, (start & -start).bit_length() - 1)
        if bits >= min_bits:
            blocks.append((start, bits))
        else:
            lost += 1 << bits
        start += 1 << bits
    return blocks, lost


def _subtract(region: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``region`` less the sorted, disjoint ``holes``: the non-empty pieces, in order."""
    pieces, at = [], region[0]
    for start, end in holes:
        if start > at:
            pieces.append((at, min(start, region[1])))
        at = max(at, end)
    if at < region[1]:
        pieces.append((at, region[1]))
    return [(s, e) for s, e in pieces if s < e]


def device_untypeds(platform: Platform, ram_size: int, min_bits: int, max_bits: int
                    ) -> list[tuple[int, int]]:
    """The device untypeds ``(paddr, bits)``: every gap below ``device_top`` that is
    neither the usable RAM nor a device frame the kernel keeps."""
    kept = sorted([*platform.kernel_device_frames,
                   (platform.kernel_paddr, platform.ram_base + ram_size - platform.kernel_paddr)])
    blocks: list[tuple[int, int]] = []
    for start, end in _subtract((0, platform.device_top), [(p, p + s) for p, s in kept]):
        blocks += aligned_blocks(start, end, max_bits, min_bits)[0]
    return blocks


def sel4_layout(platform: Platform, ram_size: int, *, image_bytes: int, dtb_bytes: int,
                rootserver_bytes: int, rootserver_align_bits: int, min_bits: int,
                max_bits: int) -> BootLayout:
    """seL4's layout on ``platform`` with ``ram_size`` bytes of RAM (module docstring).

    Raises:
        LayoutError: the kernel, device tree and image pass the end of RAM, or no free
            region holds the root server block.
    """
    ram_end = platform.ram_base + ram_size
    kernel = (platform.kernel_paddr, platform.kernel_paddr + platform.kernel_image_bytes)
    dtb = (_page_up(kernel[1]), _page_up(kernel[1]) + dtb_bytes)
    image_paddr = _page_up(dtb[1]) if dtb_bytes else kernel[1]
    image = (image_paddr, image_paddr + image_bytes)
    if image[1] > ram_end:
        raise LayoutError(f"the kernel image, device tree and root task image need "
                          f"{image[1] - platform.ram_base:#x} bytes of RAM from its base; "
                          f"RAM has {ram_size:#x}")
    in_ram = [r for r in (kernel, dtb, image) if r[0] < r[1]]
    free = _subtract((platform.kernel_paddr, ram_end), in_ram)

    # The root server block: the highest free region it fits in, as high as it goes.
    align = 1 << rootserver_align_bits
    for i in range(len(free) - 1, -1, -1):
        start, end = free[i]
        block = (end - rootserver_bytes) & ~(align - 1)
        if end - rootserver_bytes >= 0 and block >= start:
            free[i : i + 1] = [(start, block), (block + rootserver_bytes, end)]
            break
    else:
        raise LayoutError(f"no free memory region is big enough for the root server's "
                          f"objects ({rootserver_bytes:#x} bytes aligned to {align:#x})")

    reserved: list[tuple[str, int, int]] = []
    if platform.kernel_paddr > platform.ram_base:
        reserved.append(("firmware", platform.ram_base,
                         platform.kernel_paddr - platform.ram_base))
    boot_end = kernel[0] + platform.kernel_boot_bytes
    reserved.append(("kernel image", boot_end, kernel[1] - boot_end))
    if dtb_bytes:
        reserved.append(("device tree", dtb[0], dtb_bytes))
    reserved.append(("root task image", image[0], image_bytes))
    reserved.append(("root server objects", block, rootserver_bytes))

    untypeds = [(p, b, True) for p, b in device_untypeds(platform, ram_size, min_bits,
                                                          max_bits)]
    for start, end in [(kernel[0], boot_end), *free]:
        blocks, lost = aligned_blocks(start, end, max_bits, min_bits)
        untypeds += [(p, b, False) for p, b in blocks]
        if lost:
            reserved.append(("too small for an untyped", start, lost))
    return BootLayout(dtb[0] if dtb_bytes else 0, image_paddr, block, tuple(reserved),
                      tuple(untypeds))
