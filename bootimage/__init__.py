"""The capsule boot-image format: build, inspect, load (format in ``FORMAT.md``).

An image is a fixed header, the kernel configuration as JSON and the root task's ELF;
see :mod:`bootimage.format` for the bytes and :mod:`bootimage.elf` for the rules an ELF
must meet. Every failure is an :class:`ImageError` with a one-line message.

Public API::

    build_image(elf: bytes, config: KernelConfig, arch: Arch | None = None) -> bytes
    load_image(data: bytes) -> LoadedImage
    load_image_file(path: str | os.PathLike[str]) -> LoadedImage
    extract_elf(data: bytes) -> bytes
    inspect_image(data: bytes) -> ImageDescription
"""

from __future__ import annotations

from .build import build_image
from .describe import ImageDescription, SegmentInfo, inspect_image
from .elf import BOOT_RESERVE
from .errors import (
    BadChecksum,
    BadConfig,
    DoesNotFitInRAM,
    ElfError,
    EntryOutsideText,
    FormatError,
    ImageError,
    OverlappingSegments,
    RootCNodeTooSmall,
    TruncatedImage,
    UnknownVersion,
    WrongArchitecture,
    WrongMagic,
)
from .format import MAGIC, VERSION
from .load import LoadedImage, extract_elf, load_image, load_image_file

__all__ = [
    "BOOT_RESERVE",
    "MAGIC",
    "VERSION",
    "BadChecksum",
    "BadConfig",
    "DoesNotFitInRAM",
    "ElfError",
    "EntryOutsideText",
    "FormatError",
    "ImageDescription",
    "ImageError",
    "LoadedImage",
    "OverlappingSegments",
    "RootCNodeTooSmall",
    "SegmentInfo",
    "TruncatedImage",
    "UnknownVersion",
    "WrongArchitecture",
    "WrongMagic",
    "build_image",
    "extract_elf",
    "inspect_image",
    "load_image",
    "load_image_file",
]
