"""The decode steps of frame and page-table invocations that both architectures share.

seL4 decodes Page_Map, Page_Unmap, Page_GetAddress, PageTable_Map and PageTable_Unmap
separately per architecture (decodeRISCVFrameInvocation, decodeARMFrameInvocation, ...;
abi/vspace.md), yet most of each decoder is the same on RISC-V and AArch64: the
argument-count check, the VSpace root taken from extra cap 0, the ASID check, the
alignment, user-limit and remap checks, the walk, and the records. Those steps live
here once. What really differs is data in a :class:`VSpaceRules` record that each
``kernel.arch.<arch>.vspace`` module builds: the label names of the methods, which cap type is a
VSpace root, the last user address, the order of Page Map's placement checks (seL4
runs them in a different order, and only RISC-V refuses a valid entry), the attribute
word, extra labels (AArch64 cache maintenance) and whether PageTable_Unmap refuses a
root.

Every function here only reads kernel state and raises ``SyscallError`` variants; the
records it returns (``PageMapInvocation``, ``PageUnmapInvocation``, ...) are the generic
ones of ``kernel.objects.frame`` and ``kernel.objects.page_table``, performed by the
functions there. Labels are found through tables built once per (arch, MCS)
(:func:`methods_by_label`) from each architecture's label names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from enum import Enum
from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import PAGE_BITS, WORD_MASK
from kernel.abi.labels import label_table
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import is_final
from kernel.model.cap_page import covers
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
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.frame import (
    PageGetAddressInvocation,
    PageMapInvocation,
    PageUnmapInvocation,
    cap_vm_rights,
)
from kernel.objects.page_table import (
    PageTableMapInvocation,
    PageTableUnmapInvocation,
    PTSlot,
    lookup_pt_slot,
    vspace_of_asid,
)
from kernel.records import dataclass

__all__ = [
    "FrameMethod",
    "LabelNames",
    "MapRequest",
    "PageTableMethod",
    "VSpaceRules",
    "check_aligned",
    "check_remap",
    "check_user_range",
    "frame_slot",
    "invocation_words",
    "mapped_root",
    "methods_by_label",
    "no_other_labels",
    "root_asid",
]

VSpaceRoot = VSpaceCap | PageTableCap
"""A cap that can name a VSpace root: a VSpace cap on AArch64, a page table on RISC-V."""


class FrameMethod(Enum):
    """The frame methods both architectures have."""

    MAP = "map"
    UNMAP = "unmap"
    GET_ADDRESS = "get_address"


class PageTableMethod(Enum):
    """The page-table methods."""

    MAP = "map"
    UNMAP = "unmap"


LabelNames = tuple[tuple[str, Enum], ...]
"""(label name, method) pairs: an architecture's names of an object's methods."""


_METHOD_TABLES: Final[dict[tuple[int, Arch, bool], tuple[LabelNames, Mapping[int, Enum]]]] = {}
"""The tables :func:`methods_by_label` built, by (id of ``names``, arch, MCS). Keyed by
identity, not by value: hashing the pairs hashes each Enum in Python, several times
the cost of the lookup. Each entry holds its ``names``, so that id is never reused."""


def methods_by_label(arch: Arch, mcs: bool, names: LabelNames) -> Mapping[int, Enum]:
    """Label number -> method for the ``names`` of one configuration; built once per
    (arch, MCS, names), as decoders ask at every invocation. A label not in the result
    is not one of the object's methods. ``names`` is a constant (each new tuple passed
    makes a table)."""
    key = (id(names), arch, mcs)
    found = _METHOD_TABLES.get(key)
    if found is None:
        labels = label_table(arch, mcs)
        found = _METHOD_TABLES[key] = (names, {labels[name]: method for name, method in names})
    return found[1]


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

    def __init__(self, vaddr: int, rights_word: int, attr: int, root: int, asid: int) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "vaddr", vaddr)
        object.__setattr__(self, "rights_word", rights_word)
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "asid", asid)


PlaceFrame = Callable[[KernelState, FrameCap, MapRequest], PTSlot]
"""The architecture's Page Map checks after the ASID (in its own order), returning the
slot the leaf entry goes to."""
OtherFrameMethods = Callable[[KernelState, FrameCap, InvocationArgs, Enum], object]
"""Decoder for an architecture's own frame methods (those of ``frame_labels`` that are
not a :class:`FrameMethod`): returns the invocation record, or raises SyscallError."""


def no_other_labels(kernel: KernelState, cap: FrameCap, args: InvocationArgs,
                    method: Enum) -> object:
    """For architectures whose frames answer only Map, Unmap and GetAddress (their
    ``frame_labels`` name no other method, so this is never reached)."""
    raise KernelBug(f"frame method {method} without a decoder")


@dataclass(frozen=True, slots=True)
class VSpaceRules:
    """What one architecture's frame and page-table decoders do differently, and the
    two decoders built from it (``decode_frame_invocation`` and
    ``decode_page_table_invocation``, each a ``kernel.entry.dispatch.Decoder``).

    ``frame_labels`` / ``page_table_labels`` name the labels of the methods (a frame's
    may include the architecture's own methods, decoded by ``other_frame_labels``);
    ``root_type`` is the cap type of a VSpace root; ``last_user_vaddr`` is the
    inclusive user limit the Map checks compare against; ``place_frame`` runs Page Map's
    checks after the ASID; ``leaf_attributes`` turns Page Map's attribute word into
    (executable, cacheable); ``unmap_refuses_root``: PageTable_Unmap of a table that is
    its ASID's root is RevokeFirst (RISC-V, where roots are page-table caps).
    """

    frame_labels: LabelNames
    page_table_labels: LabelNames
    root_type: type[VSpaceCap] | type[PageTableCap]
    last_user_vaddr: Callable[[KernelState], int]
    place_frame: PlaceFrame
    leaf_attributes: Callable[[int], tuple[bool, bool]]
    other_frame_labels: OtherFrameMethods = no_other_labels
    unmap_refuses_root: bool = False

    def decode_frame_invocation(self, kernel: KernelState, slot: Slot,
                                args: InvocationArgs) -> object:
        """Validate an invocation of the frame cap in ``slot``; return its record.

        A label that is not a frame method: IllegalOperation.
        """
        cap = slot.cap
        if not isinstance(cap, FrameCap):
            raise KernelBug("decode_frame_invocation on a non-frame cap")
        method = methods_by_label(kernel.arch, kernel.config.mcs,
                                  self.frame_labels).get(args.label)
        if method is FrameMethod.MAP:
            return _decode_page_map(self, kernel, slot, cap, args)
        if method is FrameMethod.UNMAP:
            return PageUnmapInvocation(slot)
        if method is FrameMethod.GET_ADDRESS:
            return PageGetAddressInvocation(cap)
        if method is None:
            raise IllegalOperation()
        return self.other_frame_labels(kernel, cap, args, method)

    def decode_page_table_invocation(self, kernel: KernelState, slot: Slot,
                                     args: InvocationArgs) -> object:
        """Validate an invocation of the page-table cap in ``slot``; return its record.

        Unmap: not the final cap (or, with ``unmap_refuses_root``, the ASID's root):
        RevokeFirst. Map (extra cap 0 the root, MR0 vaddr, MR1 attributes, ignored):
        TruncatedMessage (length < 2 or no extra cap); the table already mapped:
        InvalidCapability 0; not a root with an ASID: InvalidCapability 1; vaddr past
        the user limit: InvalidArgument 0; ASID lookup: FailedLookup; other root:
        InvalidCapability 1; the walk reaches the last level or a valid entry:
        DeleteFirst. Any other label: IllegalOperation.
        """
        cap = slot.cap
        if not isinstance(cap, PageTableCap):
            raise KernelBug("decode_page_table_invocation on a non-page-table cap")
        method = methods_by_label(kernel.arch, kernel.config.mcs,
                                  self.page_table_labels).get(args.label)
        if method is PageTableMethod.UNMAP:
            if not is_final(kernel, slot):
                raise RevokeFirst()
            if (self.unmap_refuses_root and cap.is_mapped
                    and find_vspace_for_asid(kernel, cap.mapped_asid) == cap.paddr):
                raise RevokeFirst()
            return PageTableUnmapInvocation(slot)
        if method is not PageTableMethod.MAP:
            raise IllegalOperation()
        return _decode_page_table_map(self, kernel, slot, cap, args)


# --- steps ---------------------------------------------------------------------------


def invocation_words(args: InvocationArgs, count: int) -> tuple[int, ...]:
    """The caller's message words; TruncatedMessage when there are fewer than ``count``."""
    if len(args.words) < count:
        raise TruncatedMessage()
    return args.words


def _words_and_root(args: InvocationArgs, count: int) -> tuple[tuple[int, ...], Cap]:
    """At least ``count`` message words and the cap of extra cap 0, else TruncatedMessage."""
    words = invocation_words(args, count)
    if not args.extra:
        raise TruncatedMessage()
    return words, args.extra[0].cap


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
                     args: InvocationArgs) -> PageMapInvocation:
    """Page Map (extra cap 0 the VSpace root, MR0 vaddr, MR1 rights, MR2 attributes):
    TruncatedMessage, the root (InvalidCapability 1), its ASID (FailedLookup,
    InvalidCapability 1), then the architecture's placement checks."""
    words, root_cap = _words_and_root(args, 3)
    vaddr, rights_word, attr = words[:3]
    root = mapped_root(root_cap, rules.root_type, 1)
    req = MapRequest(vaddr, rights_word, attr, root.paddr, root_asid(kernel, root, 1))
    where = rules.place_frame(kernel, cap, req)
    if kernel.cap_page_maps and covers(kernel.cap_page_maps, req.asid, req.root, vaddr,
                                       1 << cap.size_bits):
        raise DeleteFirst()  # capsule's cap pages (not seL4): one is mapped there
    rights = cap_vm_rights(mask_vm_rights(cap.rights, Rights.from_word(rights_word)))
    executable, cacheable = rules.leaf_attributes(attr)
    entry = kernel.paging.leaf_entry(cap.paddr, where.level, rights, executable, cacheable)
    return PageMapInvocation(slot, cap.mapped_at(req.asid, vaddr), where, entry, req.asid)


def _decode_page_table_map(rules: VSpaceRules, kernel: KernelState, slot: Slot,
                           cap: PageTableCap, args: InvocationArgs) -> PageTableMapInvocation:
    """PageTable Map, in the order given in :meth:`VSpaceRules.decode_page_table_invocation`."""
    words, root_cap = _words_and_root(args, 2)
    if cap.is_mapped:
        raise InvalidCapability(0)
    vaddr = words[0]
    root = mapped_root(root_cap, rules.root_type, 1)
    if vaddr > rules.last_user_vaddr(kernel):
        raise InvalidArgument(0)
    asid = root_asid(kernel, root, 1)
    where = lookup_pt_slot(kernel, root.paddr, vaddr)
    if where.bits_left == PAGE_BITS or kernel.paging.is_valid(where.entry):
        raise DeleteFirst()
    aligned = vaddr & ~((1 << where.bits_left) - 1)
    return PageTableMapInvocation(slot, replace(cap, mapped_asid=asid, mapped_vaddr=aligned),
                                  where)
