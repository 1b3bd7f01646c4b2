"""Running what seL4's build system produces, with no conversion step.

Two inputs besides capsule's own images (:mod:`bootimage.load`):

- **A root task's ELF** on its own, booted as seL4 boots it on the platform: with the
  platform's device tree as extra bootinfo and seL4's memory layout
  (:mod:`kernel.platforms`). The configuration is the defaults, with RAM as seL4's
  qemu-riscv-virt and qemu-arm-virt builds describe it (3 GiB and 1 GiB: the device
  tree's /memory; capsule's host memory grows only with what the guest writes) and the
  smallest root CNode, from seL4's default of 2^12 slots up, with room for twice the caps
  boot places (:func:`kernel.boot.boot_caps`).
- **An elfloader image** (``images/<app>-image-<arch>-<platform>``): an ELF (or, on RISC-V,
  OpenSBI with the elfloader as its payload) that carries seL4's kernel, its device tree
  and the root task in a CPIO archive (``newc``). The root task is the archive's first
  ELF after ``kernel.elf``; RAM is the size of the device tree's ``/memory`` node, which
  must start where capsule's platform has RAM, and the device tree is handed to the root
  task as extra bootinfo, as seL4 does. The kernel ELF itself is not run; an AArch64
  kernel built with KernelArmExportPMUUser (or with benchmarks, which export the PMU
  too) is recognised by the instruction that grants EL0 the PMU, and the image's
  configuration then exports it (:func:`kernel_exports_pmu`); an MCS kernel is recognised
  by its symbol table and the image then runs MCS (:func:`kernel_is_mcs`).

Either can be given explicit ``ram_size`` / ``root_cnode_bits``. Every failure is one
:class:`~bootimage.errors.ImageError` line.
"""

from __future__ import annotations

import io
from dataclasses import replace

import fdt

from kernel.abi.arch import Arch, abi_for
from kernel.boot import boot_caps, extra_bootinfo
from kernel.config import ConfigError, KernelConfig
from kernel.platforms import platform_for

from .elf import read_root_elf
from .errors import BadConfig, ImageError
from .format import MAGIC
from .load import LoadedImage, load_image

__all__ = ["QEMU_RAM", "kernel_exports_pmu", "kernel_is_mcs", "load_runnable"]

QEMU_RAM = {Arch.RISCV64: 3 << 30, Arch.AARCH64: 1 << 30}
"""RAM that seL4 16.0.0's qemu-riscv-virt and qemu-arm-virt builds describe in their
device trees (its simulate script gives QEMU 3 GiB and 2 GiB: the kernel on qemu-arm-virt
uses the first gigabyte only)."""

_CPIO_MAGIC = b"070701"
_CPIO_HEADER = 110
_TRAILER = "TRAILER!!!"
_MAX_ENTRIES = 64
"""More entries than an elfloader archive ever holds: a corrupt one ends here."""


def load_runnable(data: bytes, *, ram_size: int | None = None,
                  root_cnode_bits: int | None = None, mcs: bool | None = None) -> LoadedImage:
    """A capsule image, a root task's ELF or an elfloader image, ready to boot.

    ``ram_size`` / ``root_cnode_bits`` / ``mcs`` choose the configuration of an ELF input
    (an elfloader image's kernel says whether it is MCS unless ``mcs`` is given); a
    capsule image carries its own, so giving them with one is an error. ``LoadedImage.version``
    is 0 for the ELF inputs (no capsule image format).
    """
    if data.startswith(MAGIC):
        if ram_size is not None or root_cnode_bits is not None or mcs is not None:
            raise BadConfig("a capsule image carries its own configuration: "
                            "--ram-size, --root-cnode-bits and --mcs are for ELF inputs")
        return load_image(data)
    if not data.startswith(b"\x7fELF"):
        raise ImageError(f"bad image: starts with {data[:8]!r}, neither a capsule image's "
                         f"magic {MAGIC!r} nor an ELF's")
    archive = _archive(data)
    if archive is None:
        return _from_elf(data, ram_size, root_cnode_bits, None, mcs=bool(mcs))
    root = next((body for name, body in archive
                 if name != "kernel.elf" and body.startswith(b"\x7fELF")), None)
    if root is None:
        raise ImageError("elfloader image: its archive holds no root task ELF")
    dtb = next((body for name, body in archive if name.endswith(".dtb")), None)
    kernel = next(body for name, body in archive if name == "kernel.elf")
    return _from_elf(root, ram_size, root_cnode_bits, dtb, kernel_exports_pmu(kernel),
                     kernel_is_mcs(kernel) if mcs is None else mcs)


def kernel_is_mcs(kernel: bytes) -> bool:
    """Whether seL4's kernel ELF ``kernel`` was built with CONFIG_KERNEL_MCS: only an
    MCS kernel has the scheduling-context state ``ksCurSC``, named in its symbol table
    when it keeps one and in the debug kernel's assertion texts when the elfloader's
    copy is stripped. A release kernel with neither is taken for non-MCS."""
    # pyelftools is imported here: loading a capsule image or a bare root task ELF, which
    # do not come here, does not load it.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        symbols = ELFFile(io.BytesIO(kernel)).get_section_by_name(".symtab")
    except ELFError:
        return False
    if isinstance(symbols, SymbolTableSection):
        return bool(symbols.get_symbol_by_name("ksCurSC"))
    return b"ksCurSC" in kernel


def kernel_exports_pmu(kernel: bytes) -> bool:
    """Whether seL4's AArch64 kernel ELF ``kernel`` gives EL0 the PMU: it then holds
    ``msr pmuserenr_el0, xN`` (``check_export_pmu``, compiled in only with
    CONFIG_EXPORT_PMU_USER or CONFIG_ENABLE_BENCHMARKS; no other code of seL4's AArch64
    kernel writes PMUSERENR_EL0). Instructions are 4-byte aligned words."""
    for rt in range(31):
        word = (_MSR_PMUSERENR | rt).to_bytes(4, "little")
        at = kernel.find(word)
        while at >= 0:
            if at % 4 == 0:
                return True
            at = kernel.find(word, at + 1)
    return False


_MSR_PMUSERENR = 0xD51B_9E00
"""``msr pmuserenr_el0, x0``: op0 3, op1 3, CRn 9, CRm 14, op2 0; Rt in bits 4:0."""


def _from_elf(elf: bytes, ram_size: int | None, root_cnode_bits: int | None,
              dtb: bytes | None, export_pmu: bool = False, mcs: bool = False) -> LoadedImage:
    probe = read_root_elf(elf, KernelConfig(ram_size=1 << 32))
    arch = probe.root.arch
    if ram_size is None:
        ram_size = _dtb_ram(dtb, arch) if dtb is not None else QEMU_RAM[arch]
    if dtb is None:
        dtb = platform_for(arch).device_tree(ram_size)
    if root_cnode_bits is None:
        needed = boot_caps(arch, probe.root.start, probe.root.end, ram_size,
                           len(extra_bootinfo(dtb)), mcs=mcs).total
        root_cnode_bits = max(KernelConfig().root_cnode_bits, (2 * needed - 1).bit_length())
    try:
        config = replace(KernelConfig(), ram_size=ram_size, root_cnode_bits=root_cnode_bits,
                         arm_export_pmu_user=export_pmu and arch is Arch.AARCH64,
                         mcs=mcs).validate()
    except ConfigError as error:
        raise BadConfig(f"bad kernel configuration: {error}") from None
    root = replace(read_root_elf(elf, config, arch).root, device_tree=dtb)
    return LoadedImage(arch, config, root, elf, 0)


def _archive(data: bytes) -> list[tuple[str, bytes]] | None:
    """The CPIO (newc) archive that starts with ``kernel.elf``, if ``data`` holds one:
    its entries in order, up to the trailer."""
    at = data.find(_CPIO_MAGIC)
    while at >= 0:
        if _name_at(data, at) == "kernel.elf":
            return _entries(data, at)
        at = data.find(_CPIO_MAGIC, at + 1)
    return None


def _name_at(data: bytes, at: int) -> str | None:
    try:
        size = int(data[at + 94 : at + 102], 16)
    except ValueError:
        return None
    raw = data[at + _CPIO_HEADER : at + _CPIO_HEADER + size]
    return raw[:-1].decode("latin-1") if raw.endswith(b"\0") else None


def _entries(data: bytes, at: int) -> list[tuple[str, bytes]]:
    """The entries from the header at ``at`` on; newc aligns each name's end and each
    body's end to 4 bytes from the archive's start."""
    start = at
    entries: list[tuple[str, bytes]] = []
    for _ in range(_MAX_ENTRIES):
        if data[at : at + 6] != _CPIO_MAGIC:
            raise ImageError(f"elfloader image: broken archive entry at offset {at:#x}")
        try:
            file_size = int(data[at + 54 : at + 62], 16)
            name_size = int(data[at + 94 : at + 102], 16)
        except ValueError:
            raise ImageError(f"elfloader image: broken archive header at {at:#x}") from None
        name = _name_at(data, at)
        if name is None:
            raise ImageError(f"elfloader image: broken archive name at {at:#x}")
        body_at = start + _align4(at + _CPIO_HEADER + name_size - start)
        if name == _TRAILER:
            return entries
        body = data[body_at : body_at + file_size]
        if len(body) != file_size:
            raise ImageError(f"elfloader image: archive entry {name!r} is truncated")
        entries.append((name, body))
        at = start + _align4(body_at + file_size - start)
    raise ImageError(f"elfloader image: no end to its archive in {_MAX_ENTRIES} entries")


def _align4(offset: int) -> int:
    return -(-offset // 4) * 4


def _dtb_ram(dtb: bytes, arch: Arch) -> int:
    """The size of the device tree's RAM, which must start at the platform's RAM base."""
    try:
        tree = fdt.parse_dtb(dtb)
        cells = (tree.get_property("#address-cells").value,
                 tree.get_property("#size-cells").value)
        memory = next(node for node in tree.root.nodes if node.name.startswith("memory"))
        words = memory.get_property("reg").data
    except Exception as error:  # fdt raises plain exceptions on bad input
        raise ImageError(f"elfloader image: cannot read its device tree ({error})") from None
    base = _cells(words[: cells[0]])
    size = _cells(words[cells[0] : cells[0] + cells[1]])
    if base != abi_for(arch).ram_base:
        raise ImageError(f"elfloader image: RAM at {base:#x} in its device tree; capsule's "
                         f"{arch.short} platform has RAM at {abi_for(arch).ram_base:#x}")
    return size


def _cells(words: list[int]) -> int:
    value = 0
    for word in words:
        value = value << 32 | word
    return value
