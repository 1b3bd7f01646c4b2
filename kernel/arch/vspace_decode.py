"""The decode steps of frame and page-table invocations that both architectures share.

seL4 decodes Page_Map, Page_Unmap, Page_GetAddress, PageTable_Map and PageTable_Unmap
separately per architecture (decodeRISCVFrameInvocation, decodeARMFrameInvocation, ...;
abi/vspace.md), yet most of each decoder is the same on RISC-V and AArch64: the
argument-count check, the VSpace root taken from extra cap 0, the ASID check, the
alignment, user-limit and remap checks, the walk, and the performers. Those steps live
here once. What really differs is data in a :class:`VSpaceRules` record that each
``kernel.arch.<arch>.vspace`` module builds: the label names, which cap type is a
VSpace root, the last user address, the order of Page Map's placement checks (seL4
runs them in a different order, and only RISC-V refuses a valid entry), the attribute
word, extra labels (AArch64 cache maintenance) and whether PageTable_Unmap refuses a
root.

Every function here only reads kernel state and raises ``SyscallError`` variants; the
performers it returns are the generic ones of ``kernel.objects.frame`` and
``kernel.objects.page_table``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from kernel.abi.constants import PAGE_BITS, WORD_MASK
from kernel.abi.labels import label_table
from kernel.cspace.arguments import Performer, extra_cap_slots, message_args
from kernel.cspace.cdt import is_final
from kernel.model.caps import Cap, FrameCap, PageTableCap, Rights, VSpaceCap, mask_vm_rights
from kernel.model.errors import (
    AlignmentError,
    DeleteFirst,
    FailedLookup,
    IllegalOperation,
    InvalidArgument,
    InvalidCapability,
    KernelBug,
    MissingCapability,
    RevokeFirst,
    TruncatedMessage,
)
from kernel.model.message import MessageInfo
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.frame import (
    PageMapInvocation,
    cap_vm_rights,
    perform_get_address,
    perform_page_map,
    perform_page_unmap,
)
from kernel.objects.page_table import (
    PageTableMapInvocation,
    PTSlot,
    lookup_pt_slot,
    perform_page_table_map,
    perform_page_table_unmap,
    vspace_of_asid,
)

__all__ = [
    "MapRequest",
    "VSpaceRules",
    "check_aligned",
    "check_remap",
    "check_user_range",
    "frame_slot",
    "invocation_words",
    "mapped_root",
    "no_other_labels",
    "root_asid",
]

VSpaceRoot = VSpaceCap | PageTableCap
"""A cap that can name a VSpace root: a VSpace cap on AArch64, a page table on RISC-V."""


@dataclass(frozen=True, slots=True)
class MapRequest:
    """Page Map's arguments once the shared checks passed: the VSpace root at ``root``
    resolves from ``asid``; ``vaddr``, ``rights_word`` and ``attr`` are MR0-MR2 as
    given (not yet checked)."""

    vaddr: int
    rights_word: int
    attr: int
    root: int
    asid: int


PlaceFrame = Callable[[KernelState, FrameCap, MapRequest], PTSlot]
"""The architecture's Page Map checks after the ASID (in its own order), returning the
slot the leaf entry goes to."""
FrameLabels = Callable[[KernelState, FrameCap, MessageInfo, list[int]], "Performer"]
"""Decoder for the frame labels other than Map / Unmap / GetAddress."""


def no_other_labels(kernel: KernelState, cap: FrameCap, info: MessageInfo,
                    window: list[int]) -> Performer:
    """For architectures whose frames answer only Map, Unmap and GetAddress."""
    raise IllegalOperation()


@dataclass(frozen=True, slots=True)
class VSpaceRules:
    """What one architecture's frame and page-table decoders do differently, and the
    two decoders built from it (``decode_frame_invocation`` and
    ``decode_page_table_invocation``, each a ``kernel.entry.invocation.Decoder``).

    ``label_prefix`` names the labels (``<prefix>PageMap``, ``<prefix>PageTableUnmap``,
    ...); ``root_type`` is the cap type of a VSpace root; ``last_user_vaddr`` is the
    inclusive user limit the Map checks compare against; ``place_frame`` runs Page Map's
    checks after the ASID; ``leaf_attributes`` turns Page Map's attribute word into
    (executable, cacheable); ``other_frame_labels`` decodes any other frame label (or
    raises IllegalOperation); ``unmap_refuses_root``: PageTable_Unmap of a table that is
    its ASID's root is RevokeFirst (RISC-V, where roots are page-table caps).
    """

    label_prefix: str
    root_type: type[VSpaceCap] | type[PageTableCap]
    last_user_vaddr: Callable[[KernelState], int]
    place_frame: PlaceFrame
    leaf_attributes: Callable[[int], tuple[bool, bool]]
    other_frame_labels: FrameLabels = no_other_labels
    unmap_refuses_root: bool = False

    def decode_frame_invocation(self, kernel: KernelState, slot: Slot, info: MessageInfo,
                                window: list[int]) -> Performer:
        """Validate an invocation of the frame cap in ``slot``; return its performer."""
        cap = slot.cap
        if not isinstance(cap, FrameCap):
            raise KernelBug("decode_frame_invocation on a non-frame cap")
        labels = label_table(kernel.arch, kernel.config.mcs)
        if info.label == labels[self.label_prefix + "PageMap"]:
            return _decode_page_map(self, kernel, slot, cap, info, window)
        if info.label == labels[self.label_prefix + "PageUnmap"]:
            return lambda: perform_page_unmap(kernel, slot)
        if info.label == labels[self.label_prefix + "PageGetAddress"]:
            return lambda: perform_get_address(cap)
        return self.other_frame_labels(kernel, cap, info, window)

    def decode_page_table_invocation(self, kernel: KernelState, slot: Slot, info: MessageInfo,
                                     window: list[int]) -> Performer:
        """Validate an invocation of the page-table cap in ``slot``; return its performer.

        Unmap: not the final cap (or, with ``unmap_refuses_root``, the ASID's root):
        RevokeFirst. Map (extra cap 0 the root, MR0 vaddr, MR1 attributes, ignored):
        TruncatedMessage (length < 2 or no extra cap); the table already mapped:
        InvalidCapability 0; not a root with an ASID: InvalidCapability 1; vaddr past
        the user limit: InvalidArgument 0; ASID lookup: FailedLookup; other root:
        InvalidCapability 1; the walk reaches the last level or a valid entry:
        DeleteFirst.
        """
        cap = slot.cap
        if not isinstance(cap, PageTableCap):
            raise KernelBug("decode_page_table_invocation on a non-page-table cap")
        labels = label_table(kernel.arch, kernel.config.mcs)
        if info.label == labels[self.label_prefix + "PageTableUnmap"]:
            if not is_final(kernel, slot):
                raise RevokeFirst()
            if (self.unmap_refuses_root and cap.is_mapped
                    and find_vspace_for_asid(kernel, cap.mapped_asid) == cap.paddr):
                raise RevokeFirst()
            return lambda: perform_page_table_unmap(kernel, slot)
        if info.label != labels[self.label_prefix + "PageTableMap"]:
            raise IllegalOperation()
        return _decode_page_table_map(self, kernel, slot, cap, info, window)


# --- steps ---------------------------------------------------------------------------


def invocation_words(kernel: KernelState, info: MessageInfo, window: list[int],
                     count: int) -> list[int]:
    """The caller's message words; TruncatedMessage when there are fewer than ``count``."""
    current = kernel.current
    assert current is not None
    args = message_args(kernel, current, info, window)
    if len(args) < count:
        raise TruncatedMessage()
    return args


def _words_and_root(kernel: KernelState, info: MessageInfo, window: list[int],
                    count: int) -> tuple[list[int], Cap]:
    """At least ``count`` message words and the cap of extra cap 0, else TruncatedMessage."""
    args = invocation_words(kernel, info, window, count)
    assert kernel.current is not None
    extra = extra_cap_slots(kernel, kernel.current, info)
    if not extra:
        raise TruncatedMessage()
    return args, extra[0].cap


def mapped_root(cap: Cap, root_type: type[VSpaceCap] | type[PageTableCap],
                index: int) -> VSpaceRoot:
    """``cap`` as a root with an ASID; InvalidCapability(``index``) otherwise."""
    if not isinstance(cap, root_type) or not cap.is_mapped:
        raise InvalidCapability(index)
    return cap


def root_asid(kernel: KernelState, root: VSpaceRoot, index: int) -> int:
    """The ASID of the mapped ``root``: FailedLookup if it does not resolve,
    InvalidCapability(``index``) if it resolves to another root."""
    asid = root.mapped_asid
    if vspace_of_asid(kernel, asid) != root.paddr:
        raise InvalidCapability(index)
    return asid


def check_aligned(cap: FrameCap, vaddr: int) -> None:
    """AlignmentError unless ``vaddr`` is aligned to the frame's size."""
    if vaddr & ((1 << cap.size_bits) - 1):
        raise AlignmentError()


def check_user_range(cap: FrameCap, vaddr: int, last_user_vaddr: int) -> None:
    """InvalidArgument 0 when the frame's last byte at ``vaddr`` (64-bit arithmetic) is
    past ``last_user_vaddr``."""
    if (vaddr + (1 << cap.size_bits) - 1) & WORD_MASK > last_user_vaddr:
        raise InvalidArgument(0)


def check_remap(cap: FrameCap, req: MapRequest) -> None:
    """A mapped frame may only be mapped again at the same place (a remap):
    another ASID is InvalidCapability 1, another vaddr InvalidArgument 0."""
    if cap.mapped_asid != req.asid:
        raise InvalidCapability(1)
    if cap.mapped_vaddr != req.vaddr:
        raise InvalidArgument(0)


def frame_slot(kernel: KernelState, cap: FrameCap, req: MapRequest) -> PTSlot:
    """The walk's slot for ``req.vaddr``; FailedLookup(MissingCapability(bits left))
    when it stops at another size than the frame's."""
    where = lookup_pt_slot(kernel, req.root, req.vaddr)
    if where.bits_left != cap.size_bits:
        raise FailedLookup(False, MissingCapability(where.bits_left))
    return where



# --- decoders ------------------------------------------------------------------------


def _decode_page_map(rules: VSpaceRules, kernel: KernelState, slot: Slot, cap: FrameCap,
                     info: MessageInfo, window: list[int]) -> Performer:
    """Page Map (extra cap 0 the VSpace root, MR0 vaddr, MR1 rights, MR2 attributes):
    TruncatedMessage, the root (InvalidCapability 1), its ASID (FailedLookup,
    InvalidCapability 1), then the architecture's placement checks."""
    args, root_cap = _words_and_root(kernel, info, window, 3)
    vaddr, rights_word, attr = args[:3]
    root = mapped_root(root_cap, rules.root_type, 1)
    req = MapRequest(vaddr, rights_word, attr, root.paddr, root_asid(kernel, root, 1))
    where = rules.place_frame(kernel, cap, req)
    rights = cap_vm_rights(mask_vm_rights(cap.rights, Rights.from_word(rights_word)))
    executable, cacheable = rules.leaf_attributes(attr)
    entry = kernel.paging.leaf_entry(cap.paddr, where.level, rights, executable, cacheable)
    inv = PageMapInvocation(slot, replace(cap, mapped_asid=req.asid, mapped_vaddr=vaddr),
                            where, entry, req.asid)
    return lambda: perform_page_map(kernel, inv)


def _decode_page_table_map(rules: VSpaceRules, kernel: KernelState, slot: Slot,
                           cap: PageTableCap, info: MessageInfo,
                           window: list[int]) -> Performer:
    """PageTable Map, in the order given in :meth:`VSpaceRules.decode_page_table_invocation`."""
    args, root_cap = _words_and_root(kernel, info, window, 2)
    if cap.is_mapped:
        raise InvalidCapability(0)
    vaddr = args[0]
    root = mapped_root(root_cap, rules.root_type, 1)
    if vaddr > rules.last_user_vaddr(kernel):
        raise InvalidArgument(0)
    asid = root_asid(kernel, root, 1)
    where = lookup_pt_slot(kernel, root.paddr, vaddr)
    if where.bits_left == PAGE_BITS or kernel.paging.is_valid(where.entry):
        raise DeleteFirst()
    aligned = vaddr & ~((1 << where.bits_left) - 1)
    inv = PageTableMapInvocation(slot, replace(cap, mapped_asid=asid, mapped_vaddr=aligned),
                                 where)
    return lambda: perform_page_table_map(kernel, inv)
