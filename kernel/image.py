"""The root task's program as the kernel's boot receives it (already parsed and checked).

``bootimage`` turns an image file into a :class:`RootTaskImage`; the kernel never parses
files itself.
"""

from __future__ import annotations

from kernel.abi.arch import Arch
from kernel.records import dataclass

__all__ = ["ImageSegment", "RootTaskImage"]


@dataclass(frozen=True, slots=True)
class ImageSegment:
    """One loadable segment: ``data`` at ``vaddr``, zero-filled up to ``memsz`` bytes.

    Invariant: ``len(data) <= memsz``.
    """

    vaddr: int
    memsz: int
    data: bytes
    readable: bool
    writable: bool
    executable: bool

    @property
    def end(self) -> int:
        """First address past the segment."""
        return self.vaddr + self.memsz


@dataclass(frozen=True, slots=True)
class RootTaskImage:
    """The root task's ELF reduced to what boot needs.

    Invariants (the loader checks them): segments are sorted by ``vaddr`` and do not
    overlap; ``entry`` lies in an executable segment; every address is below the
    architecture's user top.
    """

    arch: Arch
    entry: int
    segments: tuple[ImageSegment, ...]
    device_tree: bytes | None = None
    """The platform's device tree, handed to the root task as extra bootinfo as seL4 does
    (the loaders give every image its platform's, an elfloader image its own); with one,
    boot lays out memory as seL4 does on the platform. None: no extra bootinfo and
    capsule's compact layout (kernel.boot)."""

    @property
    def start(self) -> int:
        return self.segments[0].vaddr

    @property
    def end(self) -> int:
        return max(s.end for s in self.segments)
