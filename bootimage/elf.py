"""Reading and checking the root task's ELF: the one gate both builder and loader use.

``build_image`` and ``load_image`` both call :func:`read_root_elf`, so an ELF that the
loader would refuse can never be packaged. Only the headers are read (the file header,
the program and section header tables), each with one ``struct`` format: the rules
below are checked before each read, so every read lies inside the file and cannot
fail. Not pyelftools, which the symbol reader and the foreign-image loader use: its
import (DWARF, construct, pdb) cost a start-up more than the rest of the loader; its
tables give the names in this module's messages. ``tests/unit/test_bootimage.py``
checks these reads against pyelftools' on corrupted ELFs.

Rules, checked in this order (each failure is one ``ElfError`` line):

1. Identification: ``\\x7fELF``, ELFCLASS64, ELFDATA2LSB — the guests are 64-bit
   little-endian; the 64-byte file header is present.
2. ``e_type`` is ET_EXEC: capsule has no dynamic loader, the root task is linked static.
3. ``e_machine`` is riscv64 (243) or aarch64 (183), and equals the architecture the image
   header (or the builder's ``arch``) claims — else ``WrongArchitecture``.
4. Tables: ``e_phentsize`` is 56 and the program header table lies inside the file, with
   fewer than 0xffff entries (PN_XNUM is not supported); if there is a section header
   table, ``e_shentsize`` is 64, ``e_shnum`` is not 0 (no extended count) and it lies
   inside the file.
5. Every PT_LOAD: ``p_filesz <= p_memsz``; its file bytes lie inside the file;
   ``[p_vaddr, p_vaddr + p_memsz)`` does not wrap past 2**64 and ends at or below the
   architecture's ``user_top``. Segments with ``p_memsz == 0`` are skipped. Writable and
   executable together is allowed. Other program header types are ignored.
6. There is at least one (non-empty) PT_LOAD segment.
7. No two segments overlap — ``OverlappingSegments``.
8. ``e_entry`` lies inside an executable segment — ``EntryOutsideText``.
9. Boot maps the IPC buffer and the bootinfo frame in the two pages after the image, so
   the page-rounded end of the image plus two pages must not pass ``user_top``.
10. The RAM rule — ``DoesNotFitInRAM``: the kernel needs the image's pages, that is the
    page-rounded span from the lowest segment start to the highest segment end, plus a
    reserve for boot's objects, :func:`boot_reserve`: twice the root CNode (it is
    aligned to its own size) plus 128 KiB for the other root-server objects, and never
    less than :data:`BOOT_RESERVE` (0x40000). Reject if ``span + reserve > ram_size``.
11. The root CNode rule — ``RootCNodeTooSmall``: boot puts the initial caps, a cap for
    each page table and each page of the image and one per device untyped in the root
    CNode (:func:`kernel.boot.boot_caps`); reject if they alone outnumber its slots.
    Both rules look at the headers only, so a huge image is refused before any of its
    pages costs the host anything.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import PAGE_BITS, SLOT_BITS
from kernel.boot import boot_caps
from kernel.config import KernelConfig
from kernel.image import ImageSegment, RootTaskImage
from kernel.records import dataclass

from .errors import (
    DoesNotFitInRAM,
    ElfError,
    EntryOutsideText,
    OverlappingSegments,
    RootCNodeTooSmall,
    WrongArchitecture,
    span,
)

__all__ = ["BOOT_RESERVE", "RootElf", "boot_reserve", "read_root_elf"]

Header = dict[str, int]
"""A file, program or section header: its fields by their ELF names (``e_entry``)."""

BOOT_RESERVE = 0x40000
"""The least RAM kept for boot's objects on top of the image's pages (rule 10)."""


def boot_reserve(config: KernelConfig) -> int:
    """RAM boot needs besides the image's pages, for ``config``'s root CNode size."""
    cnode_bytes = 1 << (config.root_cnode_bits + SLOT_BITS)
    return max(BOOT_RESERVE, 2 * cnode_bytes + 0x20000)

PAGE = 1 << PAGE_BITS
ET_EXEC = 2
PT_LOAD = 1
SHT_SYMTAB = 2
PF_X, PF_W, PF_R = 1, 2, 4
EHDR_SIZE, PHDR_SIZE, SHDR_SIZE = 64, 56, 64
PN_XNUM = 0xFFFF
_ELFCLASS64, _ELFDATA2LSB = 2, 1

# ELF64, little-endian (rule 1): the layouts of the System V ABI's Elf64_Ehdr, Elf64_Phdr
# and Elf64_Shdr, field by field.
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_EHDR_FIELDS = ("e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff",
                "e_flags", "e_ehsize", "e_phentsize", "e_phnum", "e_shentsize", "e_shnum",
                "e_shstrndx")  # after e_ident, which rule 1 has read
_PHDR = struct.Struct("<IIQQQQQQ")
_PHDR_FIELDS = ("p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz",
                "p_memsz", "p_align")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SHDR_FIELDS = ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size",
                "sh_link", "sh_info", "sh_addralign", "sh_entsize")


@dataclass(frozen=True, slots=True)
class RootElf:
    """A root-task ELF that passed every rule in the module docstring."""

    root: RootTaskImage
    symbols: int
    """Entries in the SHT_SYMTAB sections (the null symbol included, as readelf counts)."""
    sections: int
    """Entries in the section header table (0 if there is none)."""


def read_root_elf(
    elf: bytes, config: KernelConfig, arch: Arch | None = None, claimed_by: str = "header"
) -> RootElf:
    """Parse ``elf`` and check it against the rules in the module docstring.

    ``arch``, if given, is the architecture the ELF must be for; ``claimed_by`` names who
    claims it in the ``WrongArchitecture`` message ("header", "the arch argument").
    Precondition: ``config`` is valid (``config.validate()`` passed).

    Raises:
        ElfError (or a subclass): the first rule ``elf`` breaks; never anything else.
    """
    _check_ident(elf)
    hdr = file_header(elf)
    e_type, e_machine = hdr["e_type"], hdr["e_machine"]
    if e_type != ET_EXEC:
        raise ElfError(
            f"ELF type is {_name(e_type, 'e_type')}, expected ET_EXEC (a statically "
            "linked executable)"
        )
    found = _arch_of(e_machine)
    if arch is not None and arch != found:
        raise WrongArchitecture(claimed_by, arch, found)
    phnum, shnum = _check_tables(hdr, len(elf))
    phdrs = program_headers(elf, hdr["e_phoff"], phnum)
    shdrs = section_headers(elf, hdr["e_shoff"], shnum)
    segments = _load_segments(elf, [p for p in phdrs if p["p_type"] == PT_LOAD], found)
    entry = hdr["e_entry"]
    _check_placement(segments, entry, found, config)
    symbols = sum(
        s["sh_size"] // s["sh_entsize"]
        for s in shdrs
        if s["sh_type"] == SHT_SYMTAB and s["sh_entsize"]
    )
    return RootElf(RootTaskImage(found, entry, segments), symbols, shnum)


def file_header(elf: bytes) -> Header:
    """The file header's fields after ``e_ident``. Precondition: ``elf`` passed rule 1
    (64-bit, little-endian, at least ``EHDR_SIZE`` bytes)."""
    return dict(zip(_EHDR_FIELDS, _EHDR.unpack_from(elf)[1:], strict=True))


def program_headers(elf: bytes, offset: int, count: int) -> list[Header]:
    """The ``count`` program headers at ``offset``. Precondition: they lie inside
    ``elf`` (rule 4)."""
    return [dict(zip(_PHDR_FIELDS, _PHDR.unpack_from(elf, offset + i * PHDR_SIZE), strict=True))
            for i in range(count)]


def section_headers(elf: bytes, offset: int, count: int) -> list[Header]:
    """The ``count`` section headers at ``offset``. Precondition: they lie inside
    ``elf`` (rule 4)."""
    return [dict(zip(_SHDR_FIELDS, _SHDR.unpack_from(elf, offset + i * SHDR_SIZE), strict=True))
            for i in range(count)]


def _check_ident(elf: bytes) -> None:
    """Rule 1, on the raw bytes, before any header is read."""
    if elf[:4] != b"\x7fELF":
        raise ElfError(f"not an ELF file (starts with {elf[:4]!r}, expected b'\\x7fELF')")
    ei_class, ei_data = elf[4:5], elf[5:6]  # empty if the file is that short
    if ei_class and ei_class[0] != _ELFCLASS64:
        kind = "32-bit ELF" if ei_class[0] == 1 else f"ELF of unknown class {ei_class[0]}"
        raise ElfError(f"{kind}: capsule runs 64-bit programs only")
    if ei_data and ei_data[0] != _ELFDATA2LSB:
        kind = "big-endian ELF" if ei_data[0] == 2 else f"ELF of unknown data encoding {ei_data[0]}"
        raise ElfError(f"{kind}: capsule runs little-endian programs only")
    if len(elf) < EHDR_SIZE:
        raise ElfError(f"truncated ELF: the file header is {EHDR_SIZE} bytes, file has {len(elf)}")


def _name(code: int, field: str) -> str:
    """The name pyelftools gives ``code`` in the file header's ``field`` (``e_type`` or
    ``e_machine``), or the number if it has none, for a message. Imported here: only a
    refused ELF needs the tables."""
    from elftools.elf import enums

    names: Mapping[str, int] = {"e_type": enums.ENUM_E_TYPE,
                                "e_machine": enums.ENUM_E_MACHINE}[field]
    return next((n for n, c in names.items() if c == code), str(code))


def _arch_of(e_machine: int) -> Arch:
    """Rule 3: the e_machine must be one of capsule's architectures."""
    try:
        return Arch(e_machine)
    except ValueError:
        raise ElfError(
            f"unsupported ELF machine {_name(e_machine, 'e_machine')} ({e_machine}): capsule "
            f"runs riscv64 ({Arch.RISCV64.value}) and aarch64 ({Arch.AARCH64.value})"
        ) from None


def _check_tables(hdr: Header, size: int) -> tuple[int, int]:
    """Rule 4; returns (program header count, section header count)."""
    phnum = hdr["e_phnum"]
    if hdr["e_phentsize"] != PHDR_SIZE:
        raise ElfError(f"bad ELF: program header size {hdr['e_phentsize']}, expected {PHDR_SIZE}")
    if phnum == PN_XNUM:
        raise ElfError("bad ELF: extended program header count (PN_XNUM) is not supported")
    if hdr["e_phoff"] + phnum * PHDR_SIZE > size:
        raise ElfError(
            f"truncated ELF: {phnum} program headers at {hdr['e_phoff']:#x} run past the end "
            f"of the file ({size:#x} bytes)"
        )
    if hdr["e_shoff"] == 0:
        return phnum, 0
    shnum = hdr["e_shnum"]
    if hdr["e_shentsize"] != SHDR_SIZE:
        raise ElfError(f"bad ELF: section header size {hdr['e_shentsize']}, expected {SHDR_SIZE}")
    if shnum == 0:
        raise ElfError("bad ELF: extended section count is not supported")
    if hdr["e_shoff"] + shnum * SHDR_SIZE > size:
        raise ElfError(
            f"truncated ELF: {shnum} section headers at {hdr['e_shoff']:#x} run past the end "
            f"of the file ({size:#x} bytes)"
        )
    return phnum, shnum


def _load_segments(elf: bytes, phdrs: list[Header], arch: Arch) -> tuple[ImageSegment, ...]:
    """Rules 5 and 6: the checked, non-empty PT_LOAD segments, sorted by address."""
    user_top = abi_for(arch).user_top
    segments = []
    for p in phdrs:
        vaddr, memsz, filesz, offset = p["p_vaddr"], p["p_memsz"], p["p_filesz"], p["p_offset"]
        if filesz > memsz:
            raise ElfError(
                f"bad ELF: segment at {vaddr:#x} has {filesz:#x} bytes in the file but only "
                f"{memsz:#x} in memory"
            )
        if offset + filesz > len(elf):
            raise ElfError(
                f"truncated ELF: segment at {vaddr:#x} wants file bytes "
                f"{span(offset, offset + filesz)}, file has {len(elf):#x}"
            )
        if memsz == 0:
            continue
        if vaddr + memsz > 1 << 64:
            raise ElfError(f"segment at {vaddr:#x} of {memsz:#x} bytes wraps around the address space")
        if vaddr + memsz > user_top:
            raise ElfError(
                f"segment {span(vaddr, vaddr + memsz)} lies above the {arch.short} user "
                f"address limit {user_top:#x}"
            )
        flags = p["p_flags"]
        segments.append(ImageSegment(
            vaddr=vaddr,
            memsz=memsz,
            data=elf[offset : offset + filesz],
            readable=bool(flags & PF_R),
            writable=bool(flags & PF_W),
            executable=bool(flags & PF_X),
        ))
    if not segments:
        raise ElfError("ELF has no PT_LOAD segments: nothing to load")
    return tuple(sorted(segments, key=lambda s: (s.vaddr, s.end)))


def _check_placement(
    segments: tuple[ImageSegment, ...], entry: int, arch: Arch, config: KernelConfig
) -> None:
    """Rules 7 to 10, on segments sorted by address."""
    for a, b in zip(segments, segments[1:], strict=False):
        # Sorted by start, so a segment that overlaps any later one overlaps its successor.
        if b.vaddr < a.end:
            raise OverlappingSegments((a.vaddr, a.end), (b.vaddr, b.end))
    text = tuple((s.vaddr, s.end) for s in segments if s.executable)
    if not any(start <= entry < end for start, end in text):
        raise EntryOutsideText(entry, text)
    start = segments[0].vaddr & ~(PAGE - 1)
    end = -(-max(s.end for s in segments) // PAGE) * PAGE
    user_top = abi_for(arch).user_top
    if end + 2 * PAGE > user_top:
        raise ElfError(
            f"image ends at {end:#x}: no room for the IPC buffer and bootinfo pages below "
            f"the {arch.short} user address limit {user_top:#x}"
        )
    reserve = boot_reserve(config)
    if end - start + reserve > config.ram_size:
        raise DoesNotFitInRAM(end - start, reserve, config.ram_size)
    caps = boot_caps(arch, start, end, config.ram_size, mcs=config.mcs)
    if caps.total > 1 << config.root_cnode_bits:
        raise RootCNodeTooSmall(config.root_cnode_bits, caps.total, caps.image_frames)
