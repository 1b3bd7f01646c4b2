"""A tiny ELF64 writer for tests: real, valid ET_EXEC files made in Python, no fixtures.

``make_elf`` lays a file out as: file header, program headers, each segment's bytes
(8-byte aligned), then — if ``symbols`` is non-zero — ``.symtab``, ``.strtab``,
``.shstrtab`` and the section header table. Keyword arguments bend single fields so that
tests can make exactly one thing wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EM_AARCH64",
    "EM_RISCV",
    "EM_X86_64",
    "PF_R",
    "PF_W",
    "PF_X",
    "PT_LOAD",
    "PT_NOTE",
    "Seg",
    "make_elf",
    "simple_elf",
]

EM_RISCV, EM_AARCH64, EM_X86_64 = 243, 183, 62
PF_X, PF_W, PF_R = 1, 2, 4
PT_LOAD, PT_NOTE = 1, 4
ET_EXEC = 2
SHT_SYMTAB, SHT_STRTAB = 2, 3

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # 64 bytes
_PHDR = struct.Struct("<IIQQQQQQ")  # 56 bytes
_SHDR = struct.Struct("<IIQQQQIIQQ")  # 64 bytes
_SYM = struct.Struct("<IBBHQQ")  # 24 bytes


@dataclass(frozen=True)
class Seg:
    """A program header: ``data`` at ``vaddr``; ``memsz`` defaults to ``len(data)``."""

    vaddr: int
    data: bytes = b""
    memsz: int | None = None
    flags: int = PF_R | PF_X
    p_type: int = PT_LOAD


def _align(n: int, a: int = 8) -> int:
    return -(-n // a) * a


def make_elf(
    machine: int,
    entry: int,
    segments: Sequence[Seg],
    *,
    symbols: int = 0,
    e_type: int = ET_EXEC,
    ei_class: int = 2,
    ei_data: int = 1,
) -> bytes:
    """A little-endian ELF64 executable with the given program headers.

    ``symbols`` > 0 adds a ``.symtab`` of that many entries (the null symbol included).
    ``ei_class`` / ``ei_data`` only patch the identification bytes (the rest stays
    ELF64 little-endian), which is all a test of the identification check needs.
    """
    phoff = _EHDR.size
    offset = phoff + _PHDR.size * len(segments)
    body = bytearray()
    phdrs = b""
    for seg in segments:
        offset = _align(offset)
        pad = offset - (phoff + _PHDR.size * len(segments)) - len(body)
        body += bytes(pad) + seg.data
        memsz = len(seg.data) if seg.memsz is None else seg.memsz
        phdrs += _PHDR.pack(
            seg.p_type, seg.flags, offset, seg.vaddr, seg.vaddr, len(seg.data), memsz, 0x1000
        )
        offset += len(seg.data)
    image = bytearray(bytes(_EHDR.size) + phdrs + body)
    shoff = shnum = shstrndx = 0
    if symbols:
        image += bytes(_align(len(image)) - len(image))
        symtab_off = len(image)
        image += b"".join(_SYM.pack(0, 0, 0, 0, 0, 0) for _ in range(symbols))
        strtab_off = len(image)
        image += b"\0"
        shstrtab_off = len(image)
        names = b"\0.symtab\0.strtab\0.shstrtab\0"
        image += names
        image += bytes(_align(len(image)) - len(image))
        shoff = len(image)
        image += bytes(_SHDR.size)  # SHN_UNDEF
        image += _SHDR.pack(1, SHT_SYMTAB, 0, 0, symtab_off, symbols * _SYM.size, 2, 1, 8,
                            _SYM.size)
        image += _SHDR.pack(9, SHT_STRTAB, 0, 0, strtab_off, 1, 0, 0, 1, 0)
        image += _SHDR.pack(17, SHT_STRTAB, 0, 0, shstrtab_off, len(names), 0, 0, 1, 0)
        shnum, shstrndx = 4, 3
    ident = b"\x7fELF" + bytes([ei_class, ei_data, 1, 0]) + bytes(8)
    image[: _EHDR.size] = _EHDR.pack(
        ident, e_type, machine, 1, entry, phoff if segments else 0, shoff, 0, _EHDR.size,
        _PHDR.size, len(segments), _SHDR.size, shnum, shstrndx,
    )
    return bytes(image)


def simple_elf(machine: int = EM_RISCV, *, base: int = 0x10000, symbols: int = 0) -> bytes:
    """A typical small program: text at ``base`` (r-x), data plus bss a page above (rw-)."""
    return make_elf(
        machine,
        base + 0x10,
        [
            Seg(base, bytes(range(64)), flags=PF_R | PF_X),
            Seg(base + 0x1000, b"data" * 8, memsz=0x2000, flags=PF_R | PF_W),
        ],
        symbols=symbols,
    )
