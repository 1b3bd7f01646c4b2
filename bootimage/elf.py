"""Reading and checking the root task's ELF: the one gate both builder and loader use.

``build_image`` and ``load_image`` both call :func:`read_root_elf`, so an ELF that the
loader would refuse can never be packaged. The ELF is parsed with pyelftools; every
pyelftools failure is converted to :class:`~bootimage.errors.ElfError` here, at the
boundary, and the string enums pyelftools returns are turned into numbers at once.

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

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct import ConstructError
from elftools.elf import enums
from elftools.elf.elffile import ELFFile

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import PAGE_BITS, SLOT_BITS
from kernel.boot import boot_caps
from kernel.config import KernelConfig
from kernel.image import ImageSegment, RootTaskImage

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

# pyelftools reports enum fields by name; these turn the names back into numbers.
_E_TYPE: Mapping[str, int] = enums.ENUM_E_TYPE
_E_MACHINE: Mapping[str, int] = enums.ENUM_E_MACHINE
_P_TYPE: Mapping[str, int] = {**enums.ENUM_P_TYPE_RISCV, **enums.ENUM_P_TYPE_AARCH64}
_SH_TYPE: Mapping[str, int] = {**enums.ENUM_SH_TYPE_RISCV, **enums.ENUM_SH_TYPE_AARCH64}


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
    with _pyelftools_boundary():
        ef = ELFFile(io.BytesIO(elf))
        hdr: Any = ef.header
        e_type = _code(hdr["e_type"], _E_TYPE, "e_type")
        e_machine = _code(hdr["e_machine"], _E_MACHINE, "e_machine")
    if e_type != ET_EXEC:
        raise ElfError(
            f"ELF type is {_name(e_type, _E_TYPE)}, expected ET_EXEC (a statically linked "
            "executable)"
        )
    found = _arch_of(e_machine)
    if arch is not None and arch != found:
        raise WrongArchitecture(claimed_by, arch, found)
    phnum, shnum = _check_tables(hdr, len(elf))
    with _pyelftools_boundary():
        phdrs = [struct_parse(ef.structs.Elf_Phdr, ef.stream, hdr["e_phoff"] + i * PHDR_SIZE)
                 for i in range(phnum)]
        shdrs = [struct_parse(ef.structs.Elf_Shdr, ef.stream, hdr["e_shoff"] + i * SHDR_SIZE)
                 for i in range(shnum)]
        p_types = [_code(p["p_type"], _P_TYPE, "p_type") for p in phdrs]
        sh_types = [_code(s["sh_type"], _SH_TYPE, "sh_type") for s in shdrs]
    segments = _load_segments(
        elf, [p for p, t in zip(phdrs, p_types, strict=True) if t == PT_LOAD], found
    )
    entry: int = hdr["e_entry"]
    _check_placement(segments, entry, found, config)
    symbols = sum(
        s["sh_size"] // s["sh_entsize"]
        for s, t in zip(shdrs, sh_types, strict=True)
        if t == SHT_SYMTAB and s["sh_entsize"]
    )
    return RootElf(RootTaskImage(found, entry, segments), symbols, shnum)


@contextmanager
def _pyelftools_boundary() -> Iterator[None]:
    """Turn pyelftools' parse errors into one ``ElfError`` line.

    pyelftools signals malformed input with ``ELFError`` (``struct_parse`` wraps
    construct's errors in ``ELFParseError``); ``ConstructError`` covers any path that
    does not go through ``struct_parse``. The checks made before each call keep every
    read inside the file, so nothing else is expected; the property tests in
    ``tests/unit/test_bootimage.py`` feed corrupted ELFs through here to hold that.
    """
    try:
        yield
    except (ELFError, ConstructError) as err:
        raise ElfError(f"bad ELF: {err}") from err


def _check_ident(elf: bytes) -> None:
    """Rule 1, on the raw bytes, before pyelftools sees them (its messages are generic)."""
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


def _code(value: object, names: Mapping[str, int], field: str) -> int:
    """The number behind a pyelftools enum field (a name if known, else the number)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value in names:
        return names[value]
    raise ElfError(f"bad ELF: unrecognised {field} {value!r}")


def _name(code: int, names: Mapping[str, int]) -> str:
    return next((n for n, c in names.items() if c == code), str(code))


def _arch_of(e_machine: int) -> Arch:
    """Rule 3: the e_machine must be one of capsule's architectures."""
    try:
        return Arch(e_machine)
    except ValueError:
        raise ElfError(
            f"unsupported ELF machine {_name(e_machine, _E_MACHINE)} ({e_machine}): capsule "
            f"runs riscv64 ({Arch.RISCV64.value}) and aarch64 ({Arch.AARCH64.value})"
        ) from None


def _check_tables(hdr: Any, size: int) -> tuple[int, int]:
    """Rule 4; returns (program header count, section header count)."""
    phnum: int = hdr["e_phnum"]
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
    shnum: int = hdr["e_shnum"]
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


def _load_segments(elf: bytes, phdrs: list[Any], arch: Arch) -> tuple[ImageSegment, ...]:
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
        flags: int = p["p_flags"]
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
