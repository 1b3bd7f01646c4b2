"""Capability pages (capsule's extension, **not seL4**; ``kernel.abi.extensions``):
mapping them, the four capability instructions, and type faults.

A capability page is a CNode of ``CAP_PAGE_RADIX`` = 7 slots (128 slots of 32 bytes: one
4 KiB page), so cspace addressing, every CNode invocation, revocation, deletion and the
derivation tree treat its slots as any CNode's. Its cap (``CapPageCap``) may also be
mapped at a page of a VSpace; the mapping writes no page-table entry (data accesses and
fetches there fault, :func:`type_fault_at` makes them type faults) and is recorded in
``kernel.cap_page_maps`` (``kernel.model.cap_page``).

Invocations of a cap-page cap: ``CapPage_Map`` (extra cap 0 the VSpace root, MR0 vaddr,
MR1 attr) and ``CapPage_Unmap``; every other label is a CNode invocation of the page.
Invocations of a VSpace root cap (RISC-V root page table, AArch64 VSpace): ``CapLoad``,
``CapStore``, ``CapExchange`` (MR0 vaddr, extra cap 0 a CNode root, MR1 index, MR2 depth)
and ``CapCopy`` (MR0 dest vaddr, MR1 src vaddr). The capability slot at a vaddr is slot
``(vaddr & 0xfff) >> 5`` of the page mapped at ``vaddr & ~0xfff``.

Check order of the VSpace invocations: TruncatedMessage; the invoked root has an ASID
(InvalidCapability 0); each address, source first: 32-byte aligned (AlignmentError),
then its *type*: no capability page mapped there delivers a ``CapAccessTypeError`` fault
to the caller's fault handler instead of an error reply (type errors take precedence:
the syscall restarts when the handler replies); then access: a store (Store, Copy's
destination, Exchange) through a read-only mapping is IllegalOperation, an Exchange
through a weak mapping too (a moved cap cannot be weakened); then the cspace slot as
CNode_Copy names its source / destination (FailedLookup, RangeError; a read-only path to
a destination IllegalOperation); then an empty source (FailedLookup, MissingCapability
0), a full destination (DeleteFirst), and derivation (RevokeFirst; a cap that cannot be
copied, or that a weak path nulls, IllegalOperation). Load and Copy through a weak
mapping or weak cspace path store the weakened cap (``kernel.cspace.restrictions``).
Loading, storing and copying make the new cap a derivation child of the old one, as
CNode_Copy does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import PAGE_BITS, SLOT_BITS
from kernel.abi.extensions import CapPageAccess, CapPageAttr, CapPageLabel
from kernel.arch.aarch64 import vspace as aarch64_vspace
from kernel.arch.riscv64 import vspace as riscv64_vspace
from kernel.arch.vspace_decode import mapped_root, root_asid
from kernel.core.fault_delivery import handle_fault
from kernel.core.threads import vspace_root_of
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import derive_cap, move, swap
from kernel.cspace.lookup import lookup_source_slot, lookup_target_slot
from kernel.cspace.restrictions import path_restrictions, weaken
from kernel.model.cap_page import CapPageMapping, drop_mapping
from kernel.model.caps import Cap, CapPageCap, PageTableCap, VSpaceCap
from kernel.model.cnode import CNode
from kernel.model.errors import (
    AlignmentError,
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    InvalidArgument,
    InvalidCapability,
    MissingCapability,
    TruncatedMessage,
)
from kernel.model.faults import CapPageTypeFault
from kernel.model.paging import Access, PteKind
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.cnode import CNodeInsert, decode_cnode_invocation
from kernel.objects.page_table import lookup_pt_slot
from kernel.records import dataclass

__all__ = [
    "CapExchange",
    "CapPageMap",
    "CapPageUnmap",
    "CapTypeFaultRaise",
    "VSPACE_LABELS",
    "decode_cap_page_invocation",
    "decode_vspace_cap_invocation",
    "perform_cap_page_map",
    "perform_cap_page_unmap",
    "perform_exchange",
    "perform_type_fault",
    "type_fault_at",
]

_PAGE: Final = 1 << PAGE_BITS
_SLOT: Final = 1 << SLOT_BITS

VSPACE_LABELS: Final = frozenset(int(m) for m in (
    CapPageLabel.capsule_VSpaceCapLoad, CapPageLabel.capsule_VSpaceCapStore,
    CapPageLabel.capsule_VSpaceCapCopy, CapPageLabel.capsule_VSpaceCapExchange))
"""The labels a VSpace root cap answers when the extension is on."""


@dataclass(frozen=True, slots=True)
class CapPageMap:
    """A validated Map: ``new_cap`` (mapped) into ``slot``, ``record`` at ``key``."""

    slot: Slot
    new_cap: CapPageCap
    key: tuple[int, int]
    record: CapPageMapping


@dataclass(frozen=True, slots=True)
class CapPageUnmap:
    """A validated Unmap of the cap in ``slot``."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class CapExchange:
    """A validated Exchange: the caps of ``a`` and ``b`` (either may be empty) swap."""

    a: Slot
    b: Slot


@dataclass(frozen=True, slots=True)
class CapTypeFaultRaise:
    """A capability access found no capability page: deliver ``fault`` to the caller's
    fault handler (the syscall restarts when it replies)."""

    fault: CapPageTypeFault


def _root_type(kernel: KernelState) -> type[VSpaceCap] | type[PageTableCap]:
    return VSpaceCap if kernel.arch is Arch.AARCH64 else PageTableCap


def _last_user_vaddr(kernel: KernelState) -> int:
    rules = aarch64_vspace.RULES if kernel.arch is Arch.AARCH64 else riscv64_vspace.RULES
    return rules.last_user_vaddr(kernel)


# --- Map / Unmap ------------------------------------------------------------------------


def decode_cap_page_invocation(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """Map, Unmap, or (any other label) a CNode invocation of the page.

    Map's order: TruncatedMessage (2 words, 1 extra cap); the root (InvalidCapability 1;
    its ASID: FailedLookup / InvalidCapability 1); the cap already mapped
    (InvalidCapability 0); vaddr page-aligned (AlignmentError) and in the user range
    (InvalidArgument 0); a frame or capability page already there (DeleteFirst).
    """
    cap = slot.cap
    assert isinstance(cap, CapPageCap)
    if args.label == CapPageLabel.capsule_CapPageUnmap:
        return CapPageUnmap(slot)
    if args.label != CapPageLabel.capsule_CapPageMap:
        return decode_cnode_invocation(kernel, slot, args)
    if len(args.words) < 2 or not args.extra:
        raise TruncatedMessage()
    vaddr, attr = args.words[0], args.words[1]
    root = mapped_root(args.extra[0].cap, _root_type(kernel), 1)
    asid = root_asid(kernel, root, 1)
    if cap.is_mapped:
        raise InvalidCapability(0)
    if vaddr & (_PAGE - 1):
        raise AlignmentError()
    if vaddr + _PAGE - 1 > _last_user_vaddr(kernel):
        raise InvalidArgument(0)
    where = lookup_pt_slot(kernel, root.paddr, vaddr)
    if kernel.paging.decode(where.entry, where.level)[0] is PteKind.LEAF \
            or (asid, vaddr) in kernel.cap_page_maps:
        raise DeleteFirst()
    read_only = cap.read_only or bool(attr & CapPageAttr.capsule_CapPageReadOnly)
    weak = cap.weak or bool(attr & CapPageAttr.capsule_CapPageWeak)
    new_cap = replace(cap, mapped_asid=asid, mapped_vaddr=vaddr,
                      map_read_only=read_only, map_weak=weak)
    return CapPageMap(slot, new_cap, (asid, vaddr),
                      CapPageMapping(root.paddr, cap.paddr, read_only, weak))


def perform_cap_page_map(kernel: KernelState, inv: CapPageMap) -> list[int]:
    inv.slot.cap = inv.new_cap
    kernel.cap_page_maps[inv.key] = inv.record
    return []


def perform_cap_page_unmap(kernel: KernelState, inv: CapPageUnmap) -> list[int]:
    cap = inv.slot.cap
    assert isinstance(cap, CapPageCap)
    if cap.is_mapped:
        drop_mapping(kernel.cap_page_maps, cap.mapped_asid, cap.mapped_vaddr, cap.paddr)
        inv.slot.cap = replace(cap, mapped_asid=0, mapped_vaddr=0, map_read_only=False,
                               map_weak=False)
    return []


# --- the capability instructions -----------------------------------------------------


def _current(kernel: KernelState) -> TCB:
    assert kernel.current is not None
    return kernel.current


def _cap_slot(kernel: KernelState, asid: int, root: int, vaddr: int,
              access: CapPageAccess) -> tuple[Slot, CapPageMapping] | CapPageTypeFault:
    """The capability slot at ``vaddr`` and its mapping, or the type fault."""
    if vaddr & (_SLOT - 1):
        raise AlignmentError()
    record = kernel.cap_page_maps.get((asid, vaddr & ~(_PAGE - 1)))
    if record is None or record.root != root:
        return CapPageTypeFault(kernel.current_pc() - 4, vaddr, access, True)
    page = kernel.object_at(record.page, CNode)
    return page.slots[(vaddr & (_PAGE - 1)) >> SLOT_BITS], record


def decode_vspace_cap_invocation(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """CapLoad / CapStore / CapCopy / CapExchange on the VSpace root cap in ``slot``
    (order in the module docstring). Returns a record; raises SyscallError."""
    label, words, extra = args.label, args.words, args.extra
    needs_slot = label != CapPageLabel.capsule_VSpaceCapCopy
    if len(words) < (3 if needs_slot else 2) or (needs_slot and not extra):
        raise TruncatedMessage()
    cap = slot.cap
    if not isinstance(cap, (VSpaceCap, PageTableCap)) or not cap.is_mapped \
            or find_vspace_for_asid(kernel, cap.mapped_asid) != cap.paddr:
        raise InvalidCapability(0)
    asid, root = cap.mapped_asid, cap.paddr
    if label == CapPageLabel.capsule_VSpaceCapCopy:
        return _decode_copy(kernel, asid, root, words[0], words[1])
    load = label == CapPageLabel.capsule_VSpaceCapLoad
    access = CapPageAccess.capsule_AccessCapLoad if load else CapPageAccess.capsule_AccessCapStore
    found = _cap_slot(kernel, asid, root, words[0], access)
    if isinstance(found, CapPageTypeFault):
        return CapTypeFaultRaise(found)
    page_slot, record = found
    exchange = label == CapPageLabel.capsule_VSpaceCapExchange
    if not load and record.read_only:
        raise IllegalOperation()
    if exchange and record.weak:
        raise IllegalOperation()
    node, index, depth = extra[0].cap, words[1], words[2]
    if load:
        dest = lookup_target_slot(kernel, node, index, depth)
        if path_restrictions(kernel, node, index, depth)[0]:
            raise IllegalOperation()
        return _insert(kernel, page_slot, record.weak, dest)
    if exchange:
        other = lookup_target_slot(kernel, node, index, depth)
        read_only, weak = path_restrictions(kernel, node, index, depth)
        if read_only or weak:
            raise IllegalOperation()
        return CapExchange(page_slot, other)
    src = lookup_source_slot(kernel, node, index, depth)
    return _insert(kernel, src, path_restrictions(kernel, node, index, depth)[1], page_slot,
                   depth)


def _decode_copy(kernel: KernelState, asid: int, root: int, dest_vaddr: int,
                 src_vaddr: int) -> object:
    src = _cap_slot(kernel, asid, root, src_vaddr, CapPageAccess.capsule_AccessCapLoad)
    if isinstance(src, CapPageTypeFault):
        return CapTypeFaultRaise(src)
    dest = _cap_slot(kernel, asid, root, dest_vaddr, CapPageAccess.capsule_AccessCapStore)
    if isinstance(dest, CapPageTypeFault):
        return CapTypeFaultRaise(dest)
    if dest[1].read_only:
        raise IllegalOperation()
    return _insert(kernel, src[0], src[1].weak, dest[0])


def _insert(kernel: KernelState, src: Slot, weak: bool, dest: Slot,
            src_depth: int = 0) -> CNodeInsert:
    """CNode_Copy's last checks (all rights): source full (else FailedLookup with
    MissingCapability ``src_depth``: a cspace source's depth, 0 for an address),
    destination empty, derive."""
    if src.is_empty:
        raise FailedLookup(True, MissingCapability(bits_left=src_depth))
    if not dest.is_empty:
        raise DeleteFirst()
    new_cap: Cap = derive_cap(kernel, src, src.cap)
    if weak:
        new_cap = weaken(new_cap)
    if new_cap.is_null:
        raise IllegalOperation()
    return CNodeInsert(new_cap, src, dest)


def perform_exchange(kernel: KernelState, inv: CapExchange) -> list[int]:
    """Swap the two slots' caps and derivation places (a move when one is empty)."""
    a, b = inv.a, inv.b
    if a is b or (a.is_empty and b.is_empty):
        return []
    if a.is_empty:
        move(b.cap, b, a)
    elif b.is_empty:
        move(a.cap, a, b)
    else:
        swap(a.cap, a, b.cap, b)
    return []


def perform_type_fault(kernel: KernelState, inv: CapTypeFaultRaise) -> list[int]:
    """Deliver the type fault to the caller's handler (it is blocked, so no reply)."""
    handle_fault(kernel, _current(kernel), inv.fault)
    return []


# --- type faults of data accesses ------------------------------------------------------


_DATA_ACCESS: Final = {
    Access.READ: CapPageAccess.capsule_AccessDataRead,
    Access.WRITE: CapPageAccess.capsule_AccessDataWrite,
    Access.EXECUTE: CapPageAccess.capsule_AccessExecute,
}


def type_fault_at(kernel: KernelState, tcb: TCB, ip: int, address: int,
                  access: Access) -> CapPageTypeFault | None:
    """The type fault of a data access or fetch by ``tcb`` at ``address`` if a capability
    page is mapped there in its VSpace; None (a missing page: seL4's VM fault) if not."""
    if not kernel.cap_page_maps:
        return None
    root, asid = vspace_root_of(kernel, tcb)
    record = kernel.cap_page_maps.get((asid, address & ~(_PAGE - 1)))
    if record is None or record.root != root:
        return None
    return CapPageTypeFault(ip, address, _DATA_ACCESS[access], False)

