"""Inputs from seL4's build system (bootimage.foreign): a root task's ELF on its own and an
elfloader image (an ELF carrying a CPIO archive of kernel.elf, kernel.dtb and the root
task). The elfloader images here are made by the test: an ELF segment holding a newc
archive, and a device tree built with the fdt library."""

from __future__ import annotations

import struct
from pathlib import Path

import fdt
import pytest

from bootimage import ImageError, build_image
from bootimage.foreign import QEMU_RAM, load_runnable
from kernel.abi.arch import Arch, abi_for
from kernel.boot import boot, boot_caps
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.caps import FrameCap
from kernel.model.cnode import CNode
from tests.elfgen import EM_AARCH64, EM_RISCV, Seg, make_elf
from tests.fakes import FakeMachine

MACHINES = {Arch.RISCV64: EM_RISCV, Arch.AARCH64: EM_AARCH64}


def cpio(entries: list[tuple[str, bytes]]) -> bytes:
    """A newc archive of ``entries``, with its trailer (as the elfloader's build makes)."""
    out = bytearray()
    for name, body in [*entries, ("TRAILER!!!", b"")]:
        raw = name.encode() + b"\0"
        fields = [0, 0o100644, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += bytes(-len(out) % 4)  # the body starts 4-aligned, as the next header does
        out += body
        out += bytes(-len(out) % 4)
    return bytes(out)


def dtb(base: int, size: int) -> bytes:
    tree = fdt.FDT()
    tree.set_property("#address-cells", 2)
    tree.set_property("#size-cells", 2)
    memory = fdt.Node(f"memory@{base:x}")
    memory.append(fdt.PropWords("reg", base >> 32, base & 0xFFFF_FFFF, size >> 32,
                                size & 0xFFFF_FFFF))
    memory.append(fdt.PropStrings("device_type", "memory"))
    tree.add_item(memory)
    return bytes(tree.to_dtb(version=17))


def elfloader_image(arch: Arch, root: bytes, ram: int, base: int | None = None) -> bytes:
    archive = cpio([("kernel.elf", make_elf(MACHINES[arch], 0x1000, [Seg(0x1000, b"k")])),
                    ("kernel.dtb", dtb(abi_for(arch).ram_base if base is None else base, ram)),
                    ("rootserver", root)])
    return make_elf(MACHINES[arch], 0x10000, [Seg(0x10000, b"\x13" * 16 + archive)])


@pytest.fixture
def hello(guest_elves: dict[str, dict[str, Path]]):  # type: ignore[no-untyped-def]
    return lambda arch: guest_elves[arch.short]["hello"].read_bytes()


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_root_task_elf_gets_qemus_ram_and_a_root_cnode_that_fits(hello, arch: Arch) -> None:
    loaded = load_runnable(hello(arch))
    assert loaded.arch is arch and loaded.elf == hello(arch) and loaded.version == 0
    assert loaded.config.ram_size == QEMU_RAM[arch]
    assert loaded.config.root_cnode_bits == KernelConfig().root_cnode_bits


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_an_elfloader_image_runs_its_root_task_with_its_device_trees_ram(
        hello, arch: Arch) -> None:
    loaded = load_runnable(elfloader_image(arch, hello(arch), 96 << 20))
    assert loaded.elf == hello(arch) and loaded.config.ram_size == 96 << 20


def test_explicit_settings_win_and_a_capsule_image_keeps_its_own(hello) -> None:
    elf = hello(Arch.RISCV64)
    assert load_runnable(elf, ram_size=64 << 20, root_cnode_bits=14).config == KernelConfig(
        ram_size=64 << 20, root_cnode_bits=14)
    image = build_image(elf, KernelConfig())
    with pytest.raises(ImageError, match="carries its own configuration"):
        load_runnable(image, ram_size=64 << 20)


def test_a_large_image_gets_a_root_cnode_with_room() -> None:
    """Boot places a frame cap per image page: 12 MiB of bss needs more than 2^12 slots."""
    elf = make_elf(EM_RISCV, 0x10000, [Seg(0x10000, b"\x13" * 16, memsz=12 << 20)])
    bits = load_runnable(elf).config.root_cnode_bits
    assert 1 << bits >= 2 * (12 << 20) // 4096


@pytest.mark.parametrize(("data", "fragment"), [
    (b"#!/bin/sh\n", "neither a capsule image's magic"),
    (make_elf(EM_RISCV, 0x10000, [Seg(0x10000, b"\x13" * 4 + cpio(
        [("kernel.elf", b"k"), ("kernel.dtb", b"d")]))]), "holds no root task"),
    (make_elf(EM_RISCV, 0x10000, [Seg(0x10000, b"\x13" * 4 + cpio(
        [("kernel.elf", b"k")])[:-40])]), "elfloader image"),
])
def test_bad_inputs_are_one_image_error(data: bytes, fragment: str) -> None:
    with pytest.raises(ImageError, match=fragment) as caught:
        load_runnable(data)
    assert "\n" not in str(caught.value)


def test_a_device_tree_with_ram_elsewhere_is_refused(hello) -> None:
    image = elfloader_image(Arch.RISCV64, hello(Arch.RISCV64), 64 << 20, base=0x4000_0000)
    with pytest.raises(ImageError, match="RAM at 0x40000000 in its device tree"):
        load_runnable(image)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_the_device_tree_reaches_the_root_task_as_extra_bootinfo(hello, arch: Arch) -> None:
    """abi/boot.md, "Extra bootinfo": after the bootinfo frame, a chunk {id 6 (FDT), len
    including the 16-byte header} and the blob; frame caps for the 2^n-byte region in
    extraBIPages, between the image's page tables and its frames."""
    tree = dtb(abi_for(arch).ram_base, 64 << 20)
    loaded = load_runnable(elfloader_image(arch, hello(arch), 64 << 20))
    assert loaded.root.device_tree == tree
    kernel = Kernel(FakeMachine(arch, loaded.config.ram_size), loaded.config, lambda b: None)
    report = boot(kernel, loaded.root)
    info = report.bootinfo
    assert info.extra_len == 16 + len(tree)
    pages = (1 << max(12, (info.extra_len - 1).bit_length())) // 4096
    assert info.extra_pages == (info.user_image_paging[1], info.user_image_paging[1] + pages)
    assert info.user_image_frames[0] == info.extra_pages[1]
    root = kernel.object_at(kernel.current.ctable.cap.paddr, CNode)  # type: ignore[union-attr]
    first = root.slots[info.extra_pages[0]].cap
    assert isinstance(first, FrameCap) and first.mapped_vaddr == report.bootinfo_vaddr + 4096
    chunk = kernel.machine.read_phys(first.paddr, 16 + len(tree))
    assert struct.unpack_from("<QQ", chunk) == (6, 16 + len(tree)) and chunk[16:] == tree
    assert boot_caps(arch, loaded.root.start, loaded.root.end, loaded.config.ram_size,
                     info.extra_len).extra_frames == pages
