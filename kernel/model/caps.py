"""Capabilities: immutable values naming a kernel object and the rights held over it.

A cap is a frozen dataclass; changing a cap means storing a new value in its slot
(``dataclasses.replace``), as seL4 rewrites a CTE's cap word. Caps name their object by
the physical address untyped retype gave it (DESIGN.md decision 2), never by a Python
reference, so kernel state stays plain data.

Invariants:
- ``NullCap`` is the only cap an empty slot holds.
- ``UntypedCap.free_index`` counts 16-byte units already handed out, 0..2^size_bits/16.
- A ``CNodeCap`` has ``radix >= 1`` and ``radix + guard_size <= 64``.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import MIN_UNTYPED_BITS, CapRights, CapTag
from kernel.records import dataclass

__all__ = [
    "ASIDControlCap",
    "ASIDPoolCap",
    "Cap",
    "CapPageCap",
    "CheckpointCap",
    "CNodeCap",
    "DomainCap",
    "EndpointCap",
    "FrameCap",
    "IRQControlCap",
    "NotificationCap",
    "NullCap",
    "PageTableCap",
    "ReplyCap",
    "ReplyObjectCap",
    "SchedContextCap",
    "SchedControlCap",
    "Rights",
    "ThreadCap",
    "UntypedCap",
    "VSpaceCap",
    "ZombieCap",
    "NULL_CAP",
    "mask_vm_rights",
]


# The seL4_CapRights_t bits as plain ints (kernel.abi.constants.CapRights): decodes read them.
_CAN_WRITE: Final = int(CapRights.seL4_CanWrite)
_CAN_READ: Final = int(CapRights.seL4_CanRead)
_CAN_GRANT: Final = int(CapRights.seL4_CanGrant)
_CAN_GRANT_REPLY: Final = int(CapRights.seL4_CanGrantReply)


@dataclass(frozen=True, slots=True)
class Rights:
    """seL4_CapRights_t: write (bit 0), read (1), grant (2), grant-reply (3); the
    bits are ``kernel.abi.constants.CapRights``."""

    write: bool = True
    read: bool = True
    grant: bool = True
    grant_reply: bool = True

    @staticmethod
    def from_word(word: int) -> Rights:
        return _RIGHTS_BY_WORD[word & _ALL_BITS]

    def to_word(self) -> int:
        return ((_CAN_WRITE if self.write else 0) | (_CAN_READ if self.read else 0)
                | (_CAN_GRANT if self.grant else 0)
                | (_CAN_GRANT_REPLY if self.grant_reply else 0))

    def __and__(self, other: Rights) -> Rights:
        return _RIGHTS_BY_WORD[self.to_word() & other.to_word()]

    def __str__(self) -> str:
        flags = "".join(
            c for c, on in zip("WRGg", (self.write, self.read, self.grant, self.grant_reply))
            if on
        )
        return flags or "-"


ALL_RIGHTS: Final = Rights()

_ALL_BITS: Final = _CAN_WRITE | _CAN_READ | _CAN_GRANT | _CAN_GRANT_REPLY
assert _ALL_BITS == 0b1111  # the table below is indexed by the four bits
_RIGHTS_BY_WORD: Final = tuple(
    Rights(bool(word & _CAN_WRITE), bool(word & _CAN_READ), bool(word & _CAN_GRANT),
           bool(word & _CAN_GRANT_REPLY))
    for word in range(_ALL_BITS + 1))
"""Every Rights value by its word: decodes (Page Map, CNode Copy and Mint) and masks
take one from here rather than building a frozen record each time."""


def mask_vm_rights(vm: Rights, mask: Rights) -> Rights:
    """seL4's maskVMRights, on the (read, write) pair of a frame cap's rights.

    The result is one of kernel-only (neither), read-only or read-write: no mask
    without read leaves any access, because there are no write-only mappings. The
    grant bits of ``vm`` pass through untouched (a frame cap keeps what it was given).
    Used both when a frame cap is copied or minted and when Page Map limits a mapping.
    """
    read = vm.read and mask.read
    write = read and vm.write and mask.write
    return _RIGHTS_BY_WORD[(_CAN_WRITE if write else 0) | (_CAN_READ if read else 0)
                           | (_CAN_GRANT if vm.grant else 0)
                           | (_CAN_GRANT_REPLY if vm.grant_reply else 0)]


@dataclass(frozen=True, slots=True)
class Cap:
    """Base of all caps. ``tag`` is the kernel cap tag seL4_DebugCapIdentify returns."""

    @property
    def tag(self) -> CapTag:
        raise NotImplementedError

    @property
    def is_null(self) -> bool:
        return False

    @property
    def object_paddr(self) -> int | None:
        """The physical address of the object the cap names, if it names one."""
        return None


@dataclass(frozen=True, slots=True)
class NullCap(Cap):
    @property
    def tag(self) -> CapTag:
        return CapTag.null_cap

    @property
    def is_null(self) -> bool:
        return True


NULL_CAP: Final = NullCap()


@dataclass(frozen=True, slots=True)
class UntypedCap(Cap):
    paddr: int
    size_bits: int
    is_device: bool = False
    free_index: int = 0

    def __init__(self, paddr: int, size_bits: int, is_device: bool = False,
                 free_index: int = 0) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "paddr", paddr)
        object.__setattr__(self, "size_bits", size_bits)
        object.__setattr__(self, "is_device", is_device)
        object.__setattr__(self, "free_index", free_index)

    @property
    def tag(self) -> CapTag:
        return CapTag.untyped_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr

    @property
    def free_bytes(self) -> int:
        return (1 << self.size_bits) - (self.free_index << MIN_UNTYPED_BITS)

    def with_free_index(self, free_index: int) -> UntypedCap:
        """This cap with ``free_index`` (``dataclasses.replace``'s result, built directly:
        every retype makes one)."""
        return UntypedCap(self.paddr, self.size_bits, self.is_device, free_index)


@dataclass(frozen=True, slots=True)
class CNodeCap(Cap):
    """A CNode cap. ``read_only`` and ``weak`` are capsule's capability-page extension
    (not seL4; always False without it): no cap may be stored or removed through a
    read-only cap, and caps fetched through a weak one are weakened
    (:func:`kernel.objects.cap_page.weaken`). seL4's CNode caps carry neither."""

    paddr: int
    radix: int
    guard_size: int = 0
    guard: int = 0
    read_only: bool = False
    weak: bool = False

    @property
    def tag(self) -> CapTag:
        return CapTag.cnode_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class CapPageCap(CNodeCap):
    """capsule's capability page (not seL4; ``kernel.abi.extensions``): a CNode of
    ``CAP_PAGE_RADIX`` slots (one 4 KiB page of 32-byte slots) that cspace addressing
    walks as any CNode, and that can be mapped at a page of one VSpace
    (``mapped_asid``/``mapped_vaddr``, as a frame cap), its mapping's own restrictions
    in ``map_read_only``/``map_weak``."""

    mapped_asid: int = 0
    mapped_vaddr: int = 0
    map_read_only: bool = False
    map_weak: bool = False

    @property
    def tag(self) -> CapTag:
        return CapTag.cap_page_cap

    @property
    def is_mapped(self) -> bool:
        return self.mapped_asid != 0


@dataclass(frozen=True, slots=True)
class ThreadCap(Cap):
    paddr: int

    @property
    def tag(self) -> CapTag:
        return CapTag.thread_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class ZombieCap(Cap):
    """What is left of a CNode (``radix`` set) or TCB (``radix`` None) whose last cap was
    deleted while its container was being destroyed (seL4's Zombie): it sits in the
    object's own first slot, in the derivation tree where that cap was, and keeps the
    object's memory in use until it is itself deleted (by revoking the untyped)."""

    paddr: int
    radix: int | None = None

    @property
    def tag(self) -> CapTag:
        return CapTag.zombie_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class EndpointCap(Cap):
    paddr: int
    badge: int = 0
    rights: Rights = ALL_RIGHTS

    @property
    def tag(self) -> CapTag:
        return CapTag.endpoint_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class NotificationCap(Cap):
    paddr: int
    badge: int = 0
    rights: Rights = ALL_RIGHTS

    @property
    def tag(self) -> CapTag:
        return CapTag.notification_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class ReplyCap(Cap):
    """Non-MCS reply cap: names the TCB waiting for the reply."""

    tcb_paddr: int
    can_grant: bool = True
    is_master: bool = False

    def __init__(self, tcb_paddr: int, can_grant: bool = True, is_master: bool = False) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "tcb_paddr", tcb_paddr)
        object.__setattr__(self, "can_grant", can_grant)
        object.__setattr__(self, "is_master", is_master)

    @property
    def tag(self) -> CapTag:
        return CapTag.reply_cap

    @property
    def object_paddr(self) -> int:
        return self.tcb_paddr


@dataclass(frozen=True, slots=True)
class FrameCap(Cap):
    """A frame of ``2^size_bits`` bytes; ``mapped_asid``/``mapped_vaddr`` when mapped."""

    paddr: int
    size_bits: int
    rights: Rights = ALL_RIGHTS
    is_device: bool = False
    mapped_asid: int = 0
    mapped_vaddr: int = 0

    def __init__(self, paddr: int, size_bits: int, rights: Rights = ALL_RIGHTS,
                 is_device: bool = False, mapped_asid: int = 0, mapped_vaddr: int = 0) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "paddr", paddr)
        object.__setattr__(self, "size_bits", size_bits)
        object.__setattr__(self, "rights", rights)
        object.__setattr__(self, "is_device", is_device)
        object.__setattr__(self, "mapped_asid", mapped_asid)
        object.__setattr__(self, "mapped_vaddr", mapped_vaddr)

    @property
    def tag(self) -> CapTag:
        return CapTag.frame_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr

    @property
    def is_mapped(self) -> bool:
        return self.mapped_asid != 0

    # Page Map, Unmap and copies of frame caps are frequent: these build the new cap
    # directly, as dataclasses.replace would, for a fraction of its cost.
    def mapped_at(self, asid: int, vaddr: int) -> FrameCap:
        """This cap with the mapping (``asid``, ``vaddr``); (0, 0) for none."""
        return FrameCap(self.paddr, self.size_bits, self.rights, self.is_device, asid, vaddr)

    def with_rights(self, rights: Rights) -> FrameCap:
        """This cap with ``rights``."""
        return FrameCap(self.paddr, self.size_bits, rights, self.is_device, self.mapped_asid,
                        self.mapped_vaddr)


@dataclass(frozen=True, slots=True)
class PageTableCap(Cap):
    """A page table (on RISC-V also a VSpace root once it has an ASID)."""

    paddr: int
    mapped_asid: int = 0
    mapped_vaddr: int = 0

    def __init__(self, paddr: int, mapped_asid: int = 0, mapped_vaddr: int = 0) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "paddr", paddr)
        object.__setattr__(self, "mapped_asid", mapped_asid)
        object.__setattr__(self, "mapped_vaddr", mapped_vaddr)

    @property
    def tag(self) -> CapTag:
        return CapTag.page_table_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr

    @property
    def is_mapped(self) -> bool:
        return self.mapped_asid != 0


@dataclass(frozen=True, slots=True)
class VSpaceCap(Cap):
    """AArch64 top-level translation table (L0)."""

    paddr: int
    mapped_asid: int = 0

    @property
    def tag(self) -> CapTag:
        return CapTag.vspace_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr

    @property
    def is_mapped(self) -> bool:
        return self.mapped_asid != 0


@dataclass(frozen=True, slots=True)
class ASIDControlCap(Cap):
    @property
    def tag(self) -> CapTag:
        return CapTag.asid_control_cap


@dataclass(frozen=True, slots=True)
class ASIDPoolCap(Cap):
    paddr: int
    asid_base: int

    @property
    def tag(self) -> CapTag:
        return CapTag.asid_pool_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class IRQControlCap(Cap):
    @property
    def tag(self) -> CapTag:
        return CapTag.irq_control_cap


@dataclass(frozen=True, slots=True)
class ReplyObjectCap(Cap):
    """MCS reply cap: names a reply object (kernel.model.reply_object)."""

    paddr: int
    can_grant: bool = True

    @property
    def tag(self) -> CapTag:
        return CapTag.reply_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class SchedContextCap(Cap):
    """MCS: names a scheduling context of 2^``size_bits`` bytes."""

    paddr: int
    size_bits: int

    @property
    def tag(self) -> CapTag:
        return CapTag.sched_context_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr


@dataclass(frozen=True, slots=True)
class SchedControlCap(Cap):
    """MCS: the authority to configure scheduling contexts on processor ``core``."""

    core: int = 0

    @property
    def tag(self) -> CapTag:
        return CapTag.sched_control_cap


@dataclass(frozen=True, slots=True)
class DomainCap(Cap):
    @property
    def tag(self) -> CapTag:
        return CapTag.domain_cap


@dataclass(frozen=True, slots=True)
class CheckpointCap(Cap):
    """capsule's checkpoint object (not seL4; ``kernel.abi.extensions``): it reads the
    cspaces its invoker names by CNode caps and installs caps into them. No rights, no
    badge: it is copied as it is."""

    paddr: int

    @property
    def tag(self) -> CapTag:
        return CapTag.checkpoint_cap

    @property
    def object_paddr(self) -> int:
        return self.paddr
