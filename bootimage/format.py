"""The capsule boot-image container, format version 1 (byte table in ``FORMAT.md``).

An image is one file: a fixed 72-byte header, the kernel configuration as UTF-8 JSON,
and the root task's ELF, byte for byte as the linker wrote it. All integers are
little-endian; offsets are from the start of the file.

    offset  size  field           value
    0       8     magic           b"CAPSULE\\0"
    8       2     version         1
    10      2     header_size     72
    12      4     arch            root task's ELF e_machine: 243 riscv64, 183 aarch64
    16      4     config_length   bytes of configuration JSON
    20      4     elf_length      bytes of ELF
    24      8     config_offset   where the JSON starts (the writer puts it at 72)
    32      8     elf_offset      where the ELF starts (the writer aligns it to 8)
    40      32    checksum        SHA-256 of the whole file except these 32 bytes
    72      ...   configuration JSON, then zero padding, then the ELF; the ELF ends the file

Reader rules (:func:`unpack`), checked in this order so the message names the first
thing wrong: magic; version (the header's layout depends on it, so nothing after it is
read for another version); ``header_size == 72``; the file holds the whole header; the
configuration and the ELF each lie inside the file (else "truncated"); they come in that
order after the header without overlapping; the file ends exactly where the ELF ends;
the checksum. Only then are the contents interpreted (``bootimage.load``).

This module knows nothing of what the configuration or the ELF mean; it only frames them.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Callable
from typing import Final, Protocol, cast

from kernel.records import dataclass

from .errors import BadChecksum, FormatError, TruncatedImage, UnknownVersion, WrongMagic

__all__ = [
    "CHECKSUM_OFFSET",
    "CHECKSUM_SIZE",
    "ELF_ALIGN",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "Header",
    "RawImage",
    "checksum",
    "pack",
    "unpack",
]

MAGIC = b"CAPSULE\0"
VERSION = 1
HEADER = struct.Struct("<8sHHIIIQQ32s")
HEADER_SIZE = HEADER.size  # 72
CHECKSUM_SIZE = 32
CHECKSUM_OFFSET = HEADER_SIZE - CHECKSUM_SIZE  # 40
ELF_ALIGN = 8
_U32_MAX = (1 << 32) - 1
_PREFIX = struct.Struct("<8sH")  # magic and version: the part every version shares

# Why SHA-256 rather than CRC32: images are files that get copied, downloaded and shipped
# inside the package, and a CRC only catches accidental bit errors, while SHA-256 also
# catches any splice of two images and gives a stable identity to print in `capsule image
# inspect` and to key caches by. It costs 28 more header bytes and one pass of SHA-256
# over a file of a few hundred KiB at load, which is noise next to booting the image.


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded fixed header; field meanings are in the module docstring."""

    version: int
    header_size: int
    arch: int
    """Raw ELF e_machine as stored; ``bootimage.load`` decides whether it is known."""
    config_length: int
    elf_length: int
    config_offset: int
    elf_offset: int
    checksum: bytes

    @property
    def config_end(self) -> int:
        return self.config_offset + self.config_length

    @property
    def elf_end(self) -> int:
        return self.elf_offset + self.elf_length


@dataclass(frozen=True, slots=True)
class RawImage:
    """A container that passed every check of :func:`unpack`; contents not yet interpreted."""

    header: Header
    config: bytes
    elf: bytes


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _sha256_constructor() -> Callable[[], _Hash]:
    """CPython's built-in SHA-256 (module ``_sha256`` on 3.11, ``_sha2`` from 3.12), or
    hashlib's where an interpreter lacks it.

    Not hashlib's first: it loads OpenSSL, which cost a start-up 2.7 ms, more than the
    built-in's slower hashing costs an image (about 3 ms per MiB against 0.6: 11 ms for
    seL4's 3.5 MB sel4test image, over a run of a minute)."""
    for name in ("_sha256", "_sha2", "hashlib"):
        try:
            return cast(Callable[[], _Hash], importlib.import_module(name).sha256)
        except ImportError:
            continue
    raise ImportError("no SHA-256 implementation")


_new_sha256: Final = _sha256_constructor()


def checksum(data: bytes) -> bytes:
    """SHA-256 of ``data`` without the checksum field (bytes 40..72).

    Precondition: ``len(data) >= HEADER_SIZE``.
    """
    h = _new_sha256()
    h.update(data[:CHECKSUM_OFFSET])
    h.update(data[HEADER_SIZE:])
    return h.digest()


def pack(arch: int, config: bytes, elf: bytes) -> bytes:
    """Frame ``config`` and ``elf`` as a version-1 image in the canonical layout.

    No check is made of what ``config`` and ``elf`` contain: ``bootimage.build_image``
    validates them first. (Tests call this directly to make images that are well framed
    but carry bad contents.)

    Raises:
        FormatError: ``arch`` or a length does not fit its 32-bit header field.
    """
    if not 0 <= arch <= _U32_MAX:
        raise FormatError(f"bad image: architecture number {arch} does not fit in 32 bits")
    for what, blob in (("configuration", config), ("ELF", elf)):
        if len(blob) > _U32_MAX:
            raise FormatError(
                f"{what} of {len(blob)} bytes is too large for a version-{VERSION} image"
            )
    config_offset = HEADER_SIZE
    elf_offset = -(-(config_offset + len(config)) // ELF_ALIGN) * ELF_ALIGN
    padding = bytes(elf_offset - config_offset - len(config))
    fields = (MAGIC, VERSION, HEADER_SIZE, arch, len(config), len(elf), config_offset, elf_offset)
    unsigned = HEADER.pack(*fields, bytes(CHECKSUM_SIZE)) + config + padding + elf
    return HEADER.pack(*fields, checksum(unsigned)) + unsigned[HEADER_SIZE:]


def unpack(data: bytes) -> RawImage:
    """Check the framing of ``data`` (rules in the module docstring) and split it.

    Raises:
        WrongMagic, UnknownVersion, TruncatedImage, BadChecksum, FormatError.
    """
    magic = data[: len(MAGIC)]
    if magic != MAGIC:
        if MAGIC.startswith(magic):
            raise TruncatedImage(HEADER_SIZE, len(data))
        raise WrongMagic(magic, MAGIC)
    if len(data) < _PREFIX.size:
        raise TruncatedImage(HEADER_SIZE, len(data))
    _, version = _PREFIX.unpack_from(data)
    if version != VERSION:
        raise UnknownVersion(version, VERSION)
    if len(data) < HEADER_SIZE:
        raise TruncatedImage(HEADER_SIZE, len(data))
    header = Header(*HEADER.unpack_from(data)[1:])
    if header.header_size != HEADER_SIZE:
        raise FormatError(
            f"bad image: header size {header.header_size}, "
            f"version-{VERSION} headers are {HEADER_SIZE} bytes"
        )
    _check_layout(header, len(data))
    if checksum(data) != header.checksum:
        raise BadChecksum()
    return RawImage(
        header,
        data[header.config_offset : header.config_end],
        data[header.elf_offset : header.elf_end],
    )


def _check_layout(header: Header, size: int) -> None:
    """Both regions inside the file, in order, after the header, the ELF ending the file."""
    for what, offset, length in (
        ("configuration", header.config_offset, header.config_length),
        ("ELF", header.elf_offset, header.elf_length),
    ):
        if offset + length > size:
            raise TruncatedImage(length, max(0, size - offset), what)
    if header.config_offset < HEADER_SIZE or header.elf_offset < header.config_end:
        raise FormatError(
            f"bad image: configuration at [{header.config_offset:#x},{header.config_end:#x}) "
            f"and ELF at [{header.elf_offset:#x},{header.elf_end:#x}) overlap "
            "the header or each other"
        )
    if header.elf_end != size:
        raise FormatError(f"bad image: {size - header.elf_end} bytes after the end of the ELF")
