"""seL4's boot layout on qemu-riscv-virt and qemu-arm-virt (kernel.platforms).

The expected untyped lists are seL4 16.0.0's own, as its bootinfo reported them to a root
task of 19 image pages (RISC-V, 3 GiB) and 20 pages (AArch64, 1 GiB) with a 2^13-slot
root CNode under QEMU: facts about seL4, written here as data.
"""

from __future__ import annotations

import fdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootimage.device_trees import device_tree_template, stale_templates
from kernel.abi.arch import Arch, abi_for
from kernel.platforms import platform_for
from kernel.platforms.layout import LayoutError, aligned_blocks, device_untypeds, sel4_layout

MIN_BITS = 4

RISCV_DEVICES = [
    (0x0, 25), (0x2200000, 21), (0x2400000, 22), (0x2800000, 23), (0x3000000, 24),
    (0x4000000, 26), (0x8000000, 26), (0xC600000, 21), (0xC800000, 23), (0xD000000, 24),
    (0xE000000, 25), (0x10000000, 28), (0x20000000, 29), (0x40000000, 30), (0x80000000, 21),
    (0x140000000, 30), (0x180000000, 31), (0x200000000, 33), (0x400000000, 34),
    (0x800000000, 35), (0x1000000000, 36), (0x2000000000, 37), (0x4000000000, 38),
]
RISCV_RAM = [
    (0x80200000, 13), (0x80202000, 12), (0x80222150, 4), (0x80222160, 5), (0x80222180, 7),
    (0x80222200, 9), (0x80222400, 10), (0x80222800, 11), (0x80236000, 13), (0x80238000, 15),
    (0x80240000, 18), (0x80280000, 19), (0x80300000, 20), (0x80400000, 22), (0x80800000, 23),
    (0x81000000, 24), (0x82000000, 25), (0x84000000, 26), (0x88000000, 27), (0x90000000, 28),
    (0xA0000000, 29), (0xC0000000, 30), (0x100000000, 29), (0x120000000, 28),
    (0x130000000, 27), (0x138000000, 26), (0x13C000000, 25), (0x13E000000, 24),
    (0x13F000000, 23), (0x13F800000, 22), (0x13FC00000, 21), (0x13FE00000, 20),
    (0x13FF00000, 19), (0x13FFC8800, 11), (0x13FFC9000, 12), (0x13FFCA000, 13),
    (0x13FFCC000, 14), (0x13FFD0000, 16), (0x13FFE0000, 17),
]
ARM_DEVICES = [
    (0x0, 27), (0x8001000, 12), (0x8002000, 13), (0x8004000, 14), (0x8008000, 15),
    (0x8011000, 12), (0x8012000, 13), (0x8014000, 14), (0x8018000, 15), (0x8020000, 17),
    (0x8040000, 18), (0x8080000, 19), (0x8100000, 20), (0x8200000, 21), (0x8400000, 22),
    (0x8800000, 23), (0x9000000, 24), (0xA000000, 25), (0xC000000, 26), (0x10000000, 28),
    (0x20000000, 29), (0x80000000, 31), (0x100000000, 32), (0x200000000, 33),
    (0x400000000, 34), (0x800000000, 35), (0x1000000000, 36), (0x2000000000, 37),
    (0x4000000000, 38), (0x8000000000, 39),
]
ARM_RAM = [
    (0x40000000, 16), (0x4023EDE0, 5), (0x4023EE00, 9), (0x40253000, 12), (0x40254000, 14),
    (0x40258000, 15), (0x40260000, 17), (0x40280000, 19), (0x40300000, 20), (0x40400000, 22),
    (0x40800000, 23), (0x41000000, 24), (0x42000000, 25), (0x44000000, 26), (0x48000000, 27),
    (0x50000000, 28), (0x60000000, 28), (0x70000000, 27), (0x78000000, 26), (0x7C000000, 25),
    (0x7E000000, 24), (0x7F000000, 23), (0x7F800000, 22), (0x7FC00000, 21), (0x7FE00000, 20),
    (0x7FF00000, 19), (0x7FFC9800, 11), (0x7FFCA000, 13), (0x7FFCC000, 14), (0x7FFD0000, 16),
    (0x7FFE0000, 17),
]


def rootserver_bytes(tables: int) -> int:
    """seL4's block: root CNode (2^13 slots of 32 bytes), TCB (2^11), ASID pool, IPC
    buffer, bootinfo frame, VSpace root (a page each), extra bootinfo (2^13), tables."""
    return (1 << 18) + (1 << 11) + 4 * 0x1000 + (1 << 13) + tables * 0x1000


@pytest.mark.parametrize(("arch", "ram", "image", "dtb", "tables", "devices", "ram_list"), [
    (Arch.RISCV64, 3 << 30, 19 * 0x1000, 4421, 2, RISCV_DEVICES, RISCV_RAM),
    (Arch.AARCH64, 1 << 30, 20 * 0x1000, 7633, 3, ARM_DEVICES, ARM_RAM),
])
def test_untyped_list_is_sel4s(arch: Arch, ram: int, image: int, dtb: int, tables: int,
                               devices: list[tuple[int, int]],
                               ram_list: list[tuple[int, int]]) -> None:
    layout = sel4_layout(platform_for(arch), ram, image_bytes=image, dtb_bytes=dtb,
                         rootserver_bytes=rootserver_bytes(tables), rootserver_align_bits=18,
                         min_bits=MIN_BITS, max_bits=abi_for(arch).max_untyped_bits)
    assert list(layout.untypeds) == ([(p, b, True) for p, b in devices]
                                     + [(p, b, False) for p, b in ram_list])


def test_where_the_loader_puts_things() -> None:
    # seL4's elfloader log on qemu-riscv-virt: kernel [80200000..80220fff], DTB from
    # 80221000, the root task from 80223000; the root server block where its TCB was
    # (thread 0x...13ffc8400: the TCB object at 0x13ffc8000, the block's last object).
    layout = sel4_layout(platform_for(Arch.RISCV64), 3 << 30, image_bytes=0x13000,
                         dtb_bytes=4421, rootserver_bytes=rootserver_bytes(2),
                         rootserver_align_bits=18, min_bits=MIN_BITS, max_bits=38)
    assert (layout.dtb_paddr, layout.image_paddr) == (0x80221000, 0x80223000)
    assert layout.rootserver_paddr == 0x13FF80000
    assert layout.rootserver_paddr + rootserver_bytes(2) - (1 << 11) == 0x13FFC8000


@pytest.mark.parametrize("arch", [Arch.RISCV64, Arch.AARCH64])
@settings(max_examples=40, deadline=None)
@given(ram_mib=st.integers(16, 4096), image_pages=st.integers(1, 3000),
       dtb=st.sampled_from([0, 4421, 7633]), tables=st.integers(1, 6),
       cnode_bits=st.integers(9, 24))
def test_ram_is_untyped_or_reserved_and_untypeds_are_disjoint(
        arch: Arch, ram_mib: int, image_pages: int, dtb: int, tables: int,
        cnode_bits: int) -> None:
    platform, ram = platform_for(arch), ram_mib << 20
    block = (1 << cnode_bits) + (1 << 11) + 4 * 0x1000 + tables * 0x1000 + (0x2000 if dtb else 0)
    try:
        layout = sel4_layout(platform, ram, image_bytes=image_pages * 0x1000, dtb_bytes=dtb,
                             rootserver_bytes=block, rootserver_align_bits=max(cnode_bits, 13),
                             min_bits=MIN_BITS, max_bits=abi_for(arch).max_untyped_bits)
    except LayoutError:
        return  # too little RAM for the kernel, image and block: boot refuses it
    spans = sorted((p, p + (1 << b)) for p, b, _ in layout.untypeds)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start
    for p, b, device in layout.untypeds:
        assert p % (1 << b) == 0 and b >= MIN_BITS
        in_ram = platform.kernel_paddr <= p < platform.ram_base + ram
        assert in_ram != device
    ram_untyped = sum(1 << b for _, b, device in layout.untypeds if not device)
    assert ram_untyped + sum(size for _, _, size in layout.reserved) == ram
    start, end = layout.rootserver_paddr, layout.rootserver_paddr + block
    assert start % (1 << max(cnode_bits, 13)) == 0 and end <= platform.ram_base + ram
    assert all(p + (1 << b) <= start or p >= end for p, b, _ in layout.untypeds)


def test_a_block_too_big_for_ram_is_refused() -> None:
    with pytest.raises(LayoutError, match="root server"):
        sel4_layout(platform_for(Arch.AARCH64), 16 << 20, image_bytes=0x1000, dtb_bytes=7633,
                    rootserver_bytes=1 << 24, rootserver_align_bits=24, min_bits=4, max_bits=47)
    with pytest.raises(LayoutError, match="root task image need"):
        sel4_layout(platform_for(Arch.RISCV64), 16 << 20, image_bytes=16 << 20, dtb_bytes=0,
                    rootserver_bytes=1 << 12, rootserver_align_bits=12, min_bits=4, max_bits=38)


def test_an_unaligned_start_loses_the_bytes_below_16() -> None:
    # seL4's free region after the device tree starts at 0x80222145.
    blocks, lost = aligned_blocks(0x80222145, 0x80223000, 38, MIN_BITS)
    assert blocks[0] == (0x80222150, 4) and lost == 0x150 - 0x145


@pytest.mark.parametrize(("arch", "length"), [(Arch.RISCV64, 4421), (Arch.AARCH64, 7633)])
def test_device_tree_is_as_long_as_sel4s_and_says_the_ram_size(arch: Arch, length: int) -> None:
    platform = platform_for(arch)
    for ram in (32 << 20, 3 << 30, 4 << 30):
        blob = platform.device_tree(ram)
        assert len(blob) == length  # extraLen = 16 + this, as on seL4
        tree = fdt.parse_dtb(blob)
        memory = next(n for n in tree.root.nodes if n.name.startswith("memory"))
        reg = memory.get_property("reg").data
        assert (reg[0] << 32 | reg[1], reg[2] << 32 | reg[3]) == (platform.ram_base, ram)


def test_shipped_device_trees_are_their_sources_flattened() -> None:
    assert stale_templates() == [], "stale .dtb templates: run make device-trees"
    for arch in Arch:
        platform = platform_for(arch)
        for ram in (32 << 20, 3 << 30, 5 << 32):
            assert platform.device_tree(ram) == device_tree_template(
                platform.dts, platform.ram_base, ram)


def test_device_untypeds_skip_the_frames_the_kernel_keeps() -> None:
    # On qemu-arm-virt the GIC's two pages are the kernel's; the UART stays a user's.
    blocks = device_untypeds(platform_for(Arch.AARCH64), 1 << 30, MIN_BITS, 47)
    covered = [(p, p + (1 << b)) for p, b in blocks]
    for page in (0x8000000, 0x8010000):
        assert not any(s <= page < e for s, e in covered)
    assert any(s <= 0x9000000 < e for s, e in covered)
