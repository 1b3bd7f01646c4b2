"""Page tables as the hardware reads them, written into RAM by the kernel.

Both architectures use 4 KiB tables of 512 eight-byte entries; RV64 walks three levels
(Sv39), AArch64 four (48-bit VA), and the entry bits differ. A :class:`PagingFormat`
captures those differences as data plus a few small encoders, so mapping and walking
are written once (``kernel.model.page_tables``).

Level numbering: level 0 is the root; the last level maps 4 KiB pages (RV64: Sv39;
AArch64: L0..L3 of a 48-bit address space, see ``AARCH64_4K``). ``shifts[i]`` is the lowest
virtual-address bit indexed by a level-i table.

Deferred execute permission (capsule's, invisible to the guest): a leaf that is both
writable and executable is written *without* execute permission and with a bit the
hardware ignores (RV64: RSW bit 8; AArch64: software bit 55) saying that execution is
allowed. The first instruction fetch from it faults; the kernel sees the bit, grants
execution (:meth:`PagingFormat.granted_execute`) and retries the instruction, with no
fault seen by the guest. Why: Unicorn 2.1.4 sends every store to a page whose TLB entry
also allows instruction fetch down QEMU's slow self-modifying-code path, for as long as
the entry lives; stacks, heaps and IPC buffers mapped with seL4's default (executable)
attributes would take that path on every store. Deferred, they never gain execute
permission and stores stay fast. Everything that asks what a leaf allows
(:meth:`PagingFormat.allows`) counts a deferred permission as granted.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from kernel.abi.constants import PAGE_TABLE_INDEX_BITS
from kernel.records import dataclass

__all__ = ["Access", "PagingFormat", "PteKind", "RV64_SV39", "AARCH64_4K", "VMRights"]

# A hardware table is the seL4 page-table object: 2^seL4_PageTableIndexBits entries.
ENTRIES_PER_TABLE: Final = 1 << PAGE_TABLE_INDEX_BITS


class VMRights(Enum):
    """What a user mapping allows (seL4's VM rights)."""

    KERNEL_ONLY = "kernel-only"
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class Access(Enum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"


class PteKind(Enum):
    INVALID = 0
    TABLE = 1
    LEAF = 2


# Every page-table walk decodes entries and every Page Map encodes one: the kinds and
# rights as module constants, as reading an Enum member through its class (or hashing
# one) costs several times a global's lookup (Python 3.11).
_INVALID: Final = PteKind.INVALID
_TABLE: Final = PteKind.TABLE
_LEAF: Final = PteKind.LEAF
_KERNEL_ONLY: Final = VMRights.KERNEL_ONLY
_READ_ONLY: Final = VMRights.READ_ONLY
_READ_WRITE: Final = VMRights.READ_WRITE


@dataclass(frozen=True)
class PagingFormat:
    """One architecture's translation-table format."""

    name: str
    shifts: tuple[int, ...]
    """Lowest VA bit indexed at each level, root first."""
    leaf_levels: frozenset[int]
    """Levels where a leaf (page or block) may sit."""

    @property
    def levels(self) -> int:
        return len(self.shifts)

    @property
    def va_limit(self) -> int:
        """First virtual address the root table cannot reach."""
        return 1 << (self.shifts[0] + PAGE_TABLE_INDEX_BITS)

    def index(self, level: int, vaddr: int) -> int:
        return (vaddr >> self.shifts[level]) & (ENTRIES_PER_TABLE - 1)

    def page_bits_at(self, level: int) -> int:
        return self.shifts[level]

    # The three encoders below are overridden per architecture.
    def table_entry(self, table_paddr: int) -> int:
        raise NotImplementedError

    def leaf_entry(
        self, paddr: int, level: int, rights: VMRights, executable: bool, cacheable: bool
    ) -> int:
        raise NotImplementedError

    def decode(self, entry: int, level: int) -> tuple[PteKind, int]:
        """(kind, physical address of the next table or of the page)."""
        raise NotImplementedError

    def target(self, entry: int) -> int:
        """The physical address a valid entry at any level points to (a table, a page
        or a block); -1 for an invalid entry."""
        raise NotImplementedError

    def allows(self, entry: int, access: Access) -> bool:
        """Whether a valid leaf ``entry`` lets user code perform ``access`` (a deferred
        execute permission counts as granted)."""
        raise NotImplementedError

    def granted_execute(self, entry: int) -> int | None:
        """``entry`` with its deferred execute permission granted, or None if it defers
        none (see the module docstring)."""
        raise NotImplementedError

    def leaf_rights(self, entry: int) -> VMRights:
        """The VM rights a valid leaf ``entry`` grants (seL4's vmRightsFromPTE)."""
        raise NotImplementedError

    @staticmethod
    def is_valid(entry: int) -> bool:
        """The entry's valid bit (bit 0 in both formats): seL4's pte_ptr_get_valid."""
        return bool(entry & 1)


class _Sv39(PagingFormat):
    """RISC-V Sv39 PTE: V R W X U G A D in bits 0-7, PPN from bit 10."""

    V: Final = 1 << 0
    R: Final = 1 << 1
    W: Final = 1 << 2
    X: Final = 1 << 3
    U: Final = 1 << 4
    G: Final = 1 << 5
    A: Final = 1 << 6
    D: Final = 1 << 7
    DEFERRED_X: Final = 1 << 8  # RSW: reserved for software, ignored by the walk

    def table_entry(self, table_paddr: int) -> int:
        return ((table_paddr >> 12) << 10) | self.V

    def leaf_entry(
        self, paddr: int, level: int, rights: VMRights, executable: bool, cacheable: bool
    ) -> int:
        """seL4's makeUserPTE: U, A and D set; R unless kernel-only, W if read-write, X
        if executable. With none of R, W, X the entry is invalid (0): a kernel-only,
        non-executable mapping is no mapping at all. (A kernel-only executable one is
        an execute-only user page, as on seL4.) X on a writable page is deferred (module
        docstring)."""
        read = rights is not _KERNEL_ONLY
        write = rights is _READ_WRITE
        if not (read or write or executable):
            return 0
        bits = self.V | self.A | self.D | self.U
        bits |= (self.R if read else 0) | (self.W if write else 0)
        if executable:
            bits |= self.DEFERRED_X if write else self.X
        return ((paddr >> 12) << 10) | bits

    def decode(self, entry: int, level: int) -> tuple[PteKind, int]:
        if not entry & self.V:
            return _INVALID, 0
        paddr = ((entry >> 10) & ((1 << 44) - 1)) << 12
        if entry & (self.R | self.W | self.X):
            return _LEAF, paddr
        return _TABLE, paddr

    def target(self, entry: int) -> int:
        return ((entry >> 10) & ((1 << 44) - 1)) << 12 if entry & self.V else -1

    def allows(self, entry: int, access: Access) -> bool:
        if not entry & self.U:
            return False
        if access is Access.EXECUTE:
            return bool(entry & (self.X | self.DEFERRED_X))
        return bool(entry & (self.W if access is Access.WRITE else self.R))

    def granted_execute(self, entry: int) -> int | None:
        if not entry & self.DEFERRED_X:
            return None
        return (entry & ~self.DEFERRED_X) | self.X

    def leaf_rights(self, entry: int) -> VMRights:
        if entry & self.W:
            return _READ_WRITE
        return _READ_ONLY if entry & self.R else _KERNEL_ONLY


class _AArch64(PagingFormat):
    """AArch64 stage-1 descriptors, 4 KiB granule.

    Table: bits[1:0] = 0b11. Page (last level): 0b11; block (other levels): 0b01. Leaf
    attributes (seL4's makeUserPagePTE, non-SMP): AttrIndx[4:2] (MAIR index 0 normal
    write-back, 1 device nGnRnE), AP[7:6] (0b01 EL0+EL1 read-write, 0b11 read-only,
    0b00 EL1 only), SH[9:8] = 0b11 for normal memory, 0 for device, AF bit 10, nG bit 11
    (per-ASID), UXN bit 54 from the ExecuteNever attribute.
    """

    ADDR_MASK: Final = ((1 << 48) - 1) & ~0xFFF
    AF: Final = 1 << 10
    NG: Final = 1 << 11
    SH_INNER: Final = 0b11 << 8
    PXN: Final = 1 << 53
    UXN: Final = 1 << 54
    DEFERRED_X: Final = 1 << 55  # reserved for software use, ignored by the walk

    def table_entry(self, table_paddr: int) -> int:
        return (table_paddr & self.ADDR_MASK) | 0b11

    def leaf_entry(
        self, paddr: int, level: int, rights: VMRights, executable: bool, cacheable: bool
    ) -> int:
        kind = 0b11 if level == len(self.shifts) - 1 else 0b01
        attr_index = 0 if cacheable else 1
        ap = 0b00 if rights is _KERNEL_ONLY else 0b01 if rights is _READ_WRITE else 0b11
        bits = kind | attr_index << 2 | ap << 6 | self.AF | self.NG
        bits |= self.SH_INNER if cacheable else 0
        if not executable:
            bits |= self.UXN
        elif rights is _READ_WRITE:
            bits |= self.UXN | self.DEFERRED_X  # deferred: see the module docstring
        return (paddr & self.ADDR_MASK) | bits

    def decode(self, entry: int, level: int) -> tuple[PteKind, int]:
        if not entry & 1:
            return _INVALID, 0
        paddr = entry & self.ADDR_MASK
        if level == len(self.shifts) - 1:
            return (_LEAF, paddr) if entry & 2 else (_INVALID, 0)
        if entry & 2:
            return _TABLE, paddr
        return (_LEAF, paddr) if level in self.leaf_levels else (_INVALID, 0)

    def target(self, entry: int) -> int:
        return entry & self.ADDR_MASK if entry & 1 else -1

    def allows(self, entry: int, access: Access) -> bool:
        # EL0 instruction fetch is governed by UXN alone; data access by AP.
        if access is Access.EXECUTE:
            return not entry & self.UXN or bool(entry & self.DEFERRED_X)
        ap = (entry >> 6) & 0b11
        if ap in (0b00, 0b10):
            return False
        return ap == 0b01 if access is Access.WRITE else True

    def granted_execute(self, entry: int) -> int | None:
        if not entry & self.DEFERRED_X:
            return None
        return entry & ~(self.DEFERRED_X | self.UXN)

    def leaf_rights(self, entry: int) -> VMRights:
        ap = (entry >> 6) & 0b11
        return _READ_WRITE if ap == 0b01 else _READ_ONLY if ap == 0b11 else _KERNEL_ONLY


RV64_SV39: Final[PagingFormat] = _Sv39("sv39", (30, 21, 12), frozenset({0, 1, 2}))
# AArch64 as on seL4's non-hypervisor builds: a 48-bit user address space (T0SZ = 16),
# four levels L0..L3, the VSpace root the L0 table indexing VA bits 47:39. L0 entries are
# tables only; L1 and L2 may hold 1 GiB and 2 MiB blocks, L3 4 KiB pages.
AARCH64_4K: Final[PagingFormat] = _AArch64("aarch64-4k-48bit", (39, 30, 21, 12),
                                    frozenset({1, 2, 3}))
