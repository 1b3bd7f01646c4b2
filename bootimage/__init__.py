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

from typing import TYPE_CHECKING

from .build import build_image
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

if TYPE_CHECKING:
    from .describe import ImageDescription, SegmentInfo, inspect_image

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

_DESCRIBE = frozenset({"ImageDescription", "SegmentInfo", "inspect_image"})
"""The inspector's names: imported from :mod:`bootimage.describe` when first used
(``capsule image inspect``), so that loading or building an image does not load it."""


def __getattr__(name: str) -> object:
    if name not in _DESCRIBE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .describe import ImageDescription, SegmentInfo, inspect_image

    globals().update(ImageDescription=ImageDescription, SegmentInfo=SegmentInfo,
                     inspect_image=inspect_image)
    return globals()[name]
