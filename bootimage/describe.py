"""Describing a boot image for people (text) and programs (JSON): ``capsule image inspect``.

An image is described only after it passed every check of ``load_image``: the
description is of something that will boot, and a bad image gets the loader's one-line
error instead.
"""

from __future__ import annotations

from typing import Any

from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from kernel.image import ImageSegment
from kernel.records import dataclass

from .format import Header
from .load import check_image

__all__ = ["ImageDescription", "SegmentInfo", "inspect_image"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One loaded segment: ``filesz`` bytes from the ELF, zero-filled up to ``memsz``."""

    vaddr: int
    memsz: int
    filesz: int
    flags: str
    """``rwx`` with ``-`` for a missing permission, as readelf prints them."""

    @classmethod
    def of(cls, seg: ImageSegment) -> SegmentInfo:
        flags = "".join(
            c if on else "-"
            for c, on in zip("rwx", (seg.readable, seg.writable, seg.executable), strict=True)
        )
        return cls(seg.vaddr, seg.memsz, len(seg.data), flags)


@dataclass(frozen=True, slots=True)
class ImageDescription:
    """What ``capsule image inspect`` shows: header fields, configuration, ELF summary."""

    size: int
    """Bytes in the image file."""
    header: Header
    arch: Arch
    config: KernelConfig
    entry: int
    segments: tuple[SegmentInfo, ...]
    symbols: int
    """Entries in the ELF's symbol tables (0 for a stripped ELF)."""
    sections: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; numbers stay numbers, the checksum is hex."""
        h = self.header
        return {
            "size": self.size,
            "header": {
                "version": h.version,
                "header_size": h.header_size,
                "arch": self.arch.short,
                "e_machine": h.arch,
                "config_offset": h.config_offset,
                "config_length": h.config_length,
                "elf_offset": h.elf_offset,
                "elf_length": h.elf_length,
                "sha256": h.checksum.hex(),
            },
            "config": self.config.to_dict(),
            "elf": {
                "entry": self.entry,
                "segments": [
                    {"vaddr": s.vaddr, "memsz": s.memsz, "filesz": s.filesz, "flags": s.flags}
                    for s in self.segments
                ],
                "symbols": self.symbols,
                "sections": self.sections,
            },
        }

    def to_text(self) -> str:
        """A few aligned lines for a terminal, ending in a newline."""
        h = self.header
        config = " ".join(
            f"{k}={_show(v)}" for k, v in self.config.to_dict().items()
        )
        lines = [
            f"format:    capsule image version {h.version}, {self.size} bytes",
            f"arch:      {self.arch.short} (e_machine {h.arch})",
            f"sha256:    {h.checksum.hex()}",
            f"config:    {config}",
            f"           at {h.config_offset:#x}, {h.config_length} bytes",
            f"elf:       at {h.elf_offset:#x}, {h.elf_length} bytes, {self.sections} sections, "
            f"{self.symbols} symbols",
            f"entry:     {self.entry:#x}",
            f"segments:  {len(self.segments)}",
            f"  {'vaddr':<18} {'memsz':<10} {'filesz':<10} flags",
        ]
        lines += [
            f"  {s.vaddr:#018x} {s.memsz:#010x} {s.filesz:#010x} {s.flags}"
            for s in self.segments
        ]
        return "\n".join(lines) + "\n"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value >= 1 << 16:
        return hex(value)
    return str(value)


def inspect_image(data: bytes) -> ImageDescription:
    """Check ``data`` as ``load_image`` does and describe it.

    Raises:
        ImageError (or a subclass): exactly when ``load_image(data)`` would.
    """
    image = check_image(data)
    root = image.elf.root
    return ImageDescription(
        size=len(data),
        header=image.raw.header,
        arch=image.arch,
        config=image.config,
        entry=root.entry,
        segments=tuple(SegmentInfo.of(s) for s in root.segments),
        symbols=image.elf.symbols,
        sections=image.elf.sections,
    )
