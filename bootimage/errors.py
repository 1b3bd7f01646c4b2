"""Every way a boot image, its configuration or its root-task ELF can be refused.

One exception root, :class:`ImageError` (a ``ValueError``), so that callers — the
``capsule`` CLI above all — catch exactly one type and print one line (DESIGN.md
decision 5). The subclasses name the kinds of problem and carry their facts as fields;
each builds its message from those fields, so the wording lives here, once.

Invariants:
- ``str(err)`` is a single line naming the problem (newlines are folded at construction).
- Nothing in ``bootimage`` lets another exception type escape ``build_image``,
  ``load_image`` or ``inspect_image``: pyelftools, ``struct``, ``json``, UTF-8 and
  :class:`kernel.config.ConfigError` failures are converted where they happen.
"""

from __future__ import annotations

from kernel.abi.arch import Arch

__all__ = [
    "BadChecksum",
    "BadConfig",
    "DoesNotFitInRAM",
    "ElfError",
    "EntryOutsideText",
    "FormatError",
    "ImageError",
    "OverlappingSegments",
    "RootCNodeTooSmall",
    "TruncatedImage",
    "UnknownVersion",
    "WrongArchitecture",
    "WrongMagic",
    "span",
]


def span(start: int, end: int) -> str:
    """``[start,end)`` in hex: how every message names an address range."""
    return f"[{start:#x},{end:#x})"


class ImageError(ValueError):
    """A boot image, kernel configuration or root-task ELF is unacceptable.

    The message is one line; it names the problem and the values involved.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


# -- the container (bootimage.format) ------------------------------------------------------


class FormatError(ImageError):
    """The file is not a well-formed version-1 capsule image container."""


class WrongMagic(FormatError):
    """The first eight bytes are not the image magic."""

    def __init__(self, found: bytes, expected: bytes) -> None:
        self.found = found
        hint = ""
        if found.startswith(b"\x7fELF"):
            hint = "; this is an ELF file: make an image of it with `capsule image build`"
        super().__init__(f"bad image: wrong magic {found!r} (expected {expected!r}){hint}")


class TruncatedImage(FormatError):
    """The file ends before the header does, or before a region the header describes.

    ``what`` is the region ("configuration", "ELF"), or None for the header itself.
    """

    def __init__(self, wanted: int, available: int, what: str | None = None) -> None:
        self.what, self.wanted, self.available = what, wanted, available
        if what is None:
            super().__init__(f"truncated: the header is {wanted} bytes, file has {available}")
        else:
            super().__init__(
                f"truncated: header says {wanted} bytes of {what}, file has {available}"
            )


class UnknownVersion(FormatError):
    """The header's format version is not one this capsule reads."""

    def __init__(self, version: int, supported: int) -> None:
        self.version = version
        super().__init__(
            f"unknown image version {version} (this capsule reads version {supported})"
        )


class BadChecksum(FormatError):
    """The SHA-256 in the header does not match the file's other bytes."""

    def __init__(self) -> None:
        super().__init__("bad checksum")


class BadConfig(ImageError):
    """The kernel configuration is not valid JSON or fails ``KernelConfig`` validation."""


# -- the root task's ELF (bootimage.elf) -----------------------------------------------------


class ElfError(ImageError):
    """The root-task ELF cannot be booted: malformed, unsupported, or does not fit."""


class WrongArchitecture(ElfError):
    """The image header (or the builder's ``--arch``) and the ELF disagree."""

    def __init__(self, claimed_by: str, claimed: Arch, found: Arch) -> None:
        self.claimed, self.found = claimed, found
        super().__init__(
            f"wrong architecture: {claimed_by} says {claimed.short}, ELF is {found.short}"
        )


class DoesNotFitInRAM(ElfError):
    """The image's pages plus the boot reserve exceed the configured RAM."""

    def __init__(self, image_bytes: int, reserve: int, ram_size: int) -> None:
        self.needed, self.ram_size = image_bytes + reserve, ram_size
        super().__init__(
            f"ELF does not fit in RAM: needs {self.needed:#x} bytes ({image_bytes:#x} of "
            f"image pages + {reserve:#x} for boot objects), RAM is {ram_size:#x}"
        )


class RootCNodeTooSmall(ElfError):
    """Boot's caps for the image (initial caps, page tables, image frames, device
    untypeds) alone outnumber the root CNode's slots."""

    def __init__(self, cnode_bits: int, needed: int, image_frames: int) -> None:
        self.slots, self.needed = 1 << cnode_bits, needed
        super().__init__(
            f"root CNode too small: 2^{cnode_bits} slots, boot needs at least {needed} "
            f"({image_frames} of them for the image's pages); raise root_cnode_bits"
        )


class OverlappingSegments(ElfError):
    """Two PT_LOAD segments share an address."""

    def __init__(self, first: tuple[int, int], second: tuple[int, int]) -> None:
        self.first, self.second = first, second
        super().__init__(f"overlapping segments: {span(*first)} and {span(*second)}")


class EntryOutsideText(ElfError):
    """``e_entry`` is not inside any executable PT_LOAD segment."""

    def __init__(self, entry: int, text: tuple[tuple[int, int], ...]) -> None:
        self.entry, self.text = entry, text
        where = ", ".join(span(*t) for t in text) or "none"
        super().__init__(
            f"entry point {entry:#x} outside the text (executable segments: {where})"
        )
