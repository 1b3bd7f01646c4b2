"""capsule's extensions of the seL4 ABI, declared once: numbers, layouts and methods.

**Not seL4.** Everything here exists only in images whose kernel configuration turns the
extension on (``KernelConfig.checkpoint_object``, ``KernelConfig.cap_pages``,
``KernelConfig.server_backed_cnodes``); with it off, capsule is seL4 16.0.0: the object
type numbers below are invalid ``Untyped_Retype`` types (InvalidArgument 0), the labels
are illegal operations on every object (DESIGN.md decision 10) and no type fault exists.
The kernel (``kernel.objects.checkpoint``, ``kernel.arch.cap_page``,
``kernel.entry.traversal``), the views and the libsel4 generator
(``userland/libsel4/generate.py`` -> ``sel4/gen/capsule_checkpoint.h``,
``sel4/gen/capsule_cap_page.h``, ``sel4/gen/capsule_traversal.h``) all take their numbers
from here.

Capability pages (EROS / Coyotos CapPage): a CNode of :data:`CAP_PAGE_RADIX` = 7 slots
(4 KiB of 32-byte slots, 128 slots), mapped like a page with read-only and weak
attributes, four capability instructions on the VSpace (:class:`CapPageLabel`), and two
type faults (:class:`CapPageFaultLabel`, message words :data:`CAP_PAGE_FAULT_WORDS`);
README "Capability pages" has the contract.

Server-backed CNodes (``KernelConfig.server_backed_cnodes``)
-----------------------------------------------------------
Virtualizable capability-space traversal: :class:`TraversalLabel` (BindServer and
UnbindServer on a CNode cap, and the label of the index request a server receives),
:class:`LookupKind` and :data:`INDEX_REQUEST_WORDS` (the request's words),
:data:`MAX_SERVER_DEPTH`; the kernel side is ``kernel.objects.server_cnode`` (binding)
and ``kernel.entry.traversal`` (suspending a system call on a lookup). Their numbers
are fixed and far above seL4's, like the checkpoint object's.

The checkpoint object
---------------------
Genode's proposal for a user-level checkpointer (RTCR) in seL4 terms: the checkpointer
must *read* a component's capability space (on Fiasco.OC it asks the kernel which
object each capability names) and *put* capabilities back at given slots (Fiasco.OC's
``l4_task_map``). A cap to a checkpoint object authorises the reading; the cspace read is
named by a CNode cap the checkpointer holds, as CNode invocations name slots, so
authority stays capability-based: without a CNode cap to a cspace, no reading of it.

- It is retyped from untyped (:data:`CHECKPOINT_OBJECT_TYPE`), not handed to the root
  task at boot: boot's initial slots and bootinfo are seL4's ABI and stay as they are,
  and a retyped object is revocable and delegable like any other.
- It is 2^:data:`CHECKPOINT_BITS` = 16 bytes, the smallest object untyped memory hands
  out: it holds no state (each invocation names everything it needs, so none is
  preemptible or needs a cursor kept between calls), and only needs an address.
- Its numbers are fixed, the same on both architectures and in every configuration,
  far above seL4's (which number types and labels consecutively, so theirs shift with
  the configuration): a checkpointer binary's constants do not depend on the kernel's.

Slot reading (ReadSlot, NextSlot) replies with :data:`SLOT_WORDS`:
``type`` the cap's tag (seL4's cap tag numbers, ``CapTag``; 0 for an empty slot),
``rights`` its seL4_CapRights_t word (seL4_AllRights for a cap type without rights, which
no mask reduces), ``badge`` (endpoint and notification badge; a CNode cap's guard),
``size_bits`` (log2 size of a frame or untyped; a CNode's radix), ``guard_size``
(CNode), ``flags`` (:class:`CheckpointSlotFlag`), ``object`` (:func:`object_identity`)
and ``mapped_vaddr`` (a mapped frame's or page table's virtual address, else 0).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import PAGE_BITS, SLOT_BITS
from kernel.abi.labels import label_table
from kernel.abi.methods import Method, Param, methods_for

__all__ = [
    "CAP_PAGE_BITS",
    "CAP_PAGE_METHODS",
    "CAP_PAGE_OBJECT_TYPE",
    "CAP_PAGE_RADIX",
    "CapPageAccess",
    "CapPageAttr",
    "CapPageFaultLabel",
    "CapPageLabel",
    "CHECKPOINT_BITS",
    "CHECKPOINT_METHODS",
    "CHECKPOINT_OBJECT_TYPE",
    "CheckpointLabel",
    "CheckpointSlotFlag",
    "IdentityKind",
    "SLOT_WORDS",
    "INDEX_REQUEST_WORDS",
    "MAX_SERVER_DEPTH",
    "LookupKind",
    "TRAVERSAL_METHODS",
    "TraversalLabel",
    "configured_labels",
    "configured_methods",
    "extension_labels",
    "extension_methods",
    "object_identity",
]

CHECKPOINT_OBJECT_TYPE: Final = 0x100
"""``capsule_CheckpointObject``: the Untyped_Retype type number of a checkpoint object."""
CHECKPOINT_OBJECT_NAME: Final = "capsule_CheckpointObject"
CHECKPOINT_BITS: Final = 4
"""log2 of a checkpoint object's size (``capsule_CheckpointBits``)."""


class CheckpointLabel(IntEnum):
    """Invocation labels of a checkpoint cap (message label; any other is IllegalOperation)."""

    capsule_CheckpointReadSlot = 0x1000
    capsule_CheckpointNextSlot = 0x1001
    capsule_CheckpointInstall = 0x1002


class CheckpointSlotFlag(IntFlag):
    """Bits of a slot reading's ``flags`` word."""

    capsule_SlotHasChildren = 0x1
    """The slot's cap has children in the derivation tree (copies, minted caps, objects)."""
    capsule_SlotIsDevice = 0x2
    """A frame or untyped cap of device memory."""
    capsule_SlotMapped = 0x4
    """A frame, page table or VSpace cap that is mapped (or, a root, has an ASID)."""
    capsule_SlotRevocable = 0x8
    """The slot is a revocable derivation parent (an original, a badged minted cap)."""


class IdentityKind(IntEnum):
    """The low 4 bits of an object identity: which kind of object the address is of.

    Needed because objects of different kinds share addresses (an untyped and the first
    object retyped from it start at the same byte)."""

    capsule_ObjectNone = 0
    capsule_ObjectUntyped = 1
    capsule_ObjectTCB = 2
    capsule_ObjectEndpoint = 3
    capsule_ObjectNotification = 4
    capsule_ObjectCNode = 5
    capsule_ObjectFrame = 6
    capsule_ObjectPageTable = 7
    capsule_ObjectVSpace = 8
    capsule_ObjectASIDPool = 9
    capsule_ObjectCheckpoint = 10
    capsule_ObjectASIDControl = 11
    capsule_ObjectIRQControl = 12
    capsule_ObjectDomain = 13
    capsule_ObjectCapPage = 14


_KIND_BITS: Final = 4


def object_identity(kind: IdentityKind, paddr: int) -> int:
    """The ``object`` word of a slot reading: the object's physical address (16-byte
    aligned at least, the smallest object) with its kind in the low 4 bits.

    Equal for every cap to the same object (a reply cap names its thread, so it has the
    thread's identity) and stable while the object lives; two live objects of one kind
    never share it, except untyped regions nested at one base, which ``size_bits`` tells
    apart. It exposes physical addresses, which seL4 already gives untyped holders
    (bootinfo) and frame holders (Page_GetAddress), to a thread that holds a checkpoint
    cap and a CNode cap; an address confers no authority.
    """
    return (paddr & ~((1 << _KIND_BITS) - 1)) | int(kind)


def _word(name: str) -> Param:
    return Param(name, "seL4_Word")


def _cnode(name: str) -> Param:
    return Param(name, "seL4_CNode", is_cap=True)


SLOT_WORDS: Final[tuple[Param, ...]] = (
    _word("type"), _word("rights"), _word("badge"), _word("size_bits"), _word("guard_size"),
    _word("flags"), _word("object"), _word("mapped_vaddr"),
)
"""A slot reading, MR0.. of the reply (module docstring)."""

_CKPT: Final = "capsule_Checkpoint"

CHECKPOINT_METHODS: Final[tuple[Method, ...]] = (
    Method(_CKPT, "ReadSlot", CheckpointLabel.capsule_CheckpointReadSlot.name,
           (_cnode("root"), _word("index"), Param("depth", "seL4_Uint8")),
           outputs=SLOT_WORDS),
    Method(_CKPT, "NextSlot", CheckpointLabel.capsule_CheckpointNextSlot.name,
           (_cnode("root"), _word("node_index"), Param("node_depth", "seL4_Uint8"),
            _word("start")),
           outputs=(_word("index"), *SLOT_WORDS)),
    Method(_CKPT, "Install", CheckpointLabel.capsule_CheckpointInstall.name,
           (_cnode("dest_root"), _word("dest_index"), Param("dest_depth", "seL4_Uint8"),
            _cnode("src_root"), _word("src_index"), Param("src_depth", "seL4_Uint8"),
            Param("rights", "seL4_CapRights_t"), _word("badge"))),
)
"""The checkpoint cap's libsel4 stubs (``capsule_Checkpoint_<name>``):

- ``ReadSlot(root, index, depth)``: the slot ``index``/``depth`` names from the CNode
  cap ``root`` (as a CNode operation's target), read (:data:`SLOT_WORDS`).
- ``NextSlot(root, node_index, node_depth, start)``: in the CNode named as
  Untyped_Retype names its destination (``node_depth`` 0: ``root`` itself), the first
  non-empty slot at or after ``start``: its ``index``, then its reading; ``index`` is
  the CNode's slot count when there is none.
- ``Install(dest_root, dest_index, dest_depth, src_root, src_index, src_depth, rights,
  badge)``: CNode_Mint's rules and errors, the destination named through the extra cap
  ``dest_root``: a derived copy of the source cap, rights masked, badge (or a CNode's
  guard data) applied, in the empty target slot, as a derivation child of the source.
  seL4's CNode_Mint invoked on the target CNode cap does the same; Install is the
  counterpart of Fiasco.OC's ``l4_task_map`` that RTCR is written against, so that a
  checkpointer's restore uses one interface with the reads. It confers nothing new: it
  needs the very caps Mint needs, and the checkpoint cap besides.
"""


# --- capability pages (EROS / Coyotos CapPage) --------------------------------------------

CAP_PAGE_OBJECT_TYPE: Final = 0x101
"""``capsule_CapPageObject``: the Untyped_Retype type number of a capability page."""
CAP_PAGE_OBJECT_NAME: Final = "capsule_CapPageObject"
CAP_PAGE_BITS: Final = PAGE_BITS
"""log2 of a capability page's size: one 4 KiB frame (``capsule_CapPageBits``)."""
CAP_PAGE_RADIX: Final = PAGE_BITS - SLOT_BITS
"""log2 of its slot count: 4096 / 32-byte slots = 128 slots (``capsule_CapPageRadix``)."""


class CapPageLabel(IntEnum):
    """Invocation labels of the capability-page extension: Map and Unmap on a cap-page
    cap, the four capability instructions on a VSpace root cap (seL4_RISCV_PageTable
    root / seL4_ARM_VSpace). Any other extension label is IllegalOperation."""

    capsule_CapPageMap = 0x1010
    capsule_CapPageUnmap = 0x1011
    capsule_VSpaceCapLoad = 0x1018
    capsule_VSpaceCapStore = 0x1019
    capsule_VSpaceCapCopy = 0x101A
    capsule_VSpaceCapExchange = 0x101B


class CapPageAttr(IntFlag):
    """Bits of CapPage_Map's ``attr`` word: how the mapping restricts access to the page.
    They add to the cap's own (a cap page cap minted without seL4_CanWrite is read-only,
    without seL4_CanGrant weak)."""

    capsule_CapPageReadOnly = 0x1
    """No capability may be stored into the page through this mapping."""
    capsule_CapPageWeak = 0x2
    """A capability loaded through this mapping is weakened (EROS's sensory keys)."""


class CapPageFaultLabel(IntEnum):
    """Fault labels of type errors (not seL4's fault numbers): the message is four words,
    ``FaultIP``, ``Addr`` (the faulting address), ``Access`` (:class:`CapPageAccess`) and
    ``Expected`` (0: a data page was expected, 1: a capability page)."""

    capsule_Fault_DataAccessTypeError = 0x1020
    """A data load, store or instruction fetch at a capability page."""
    capsule_Fault_CapAccessTypeError = 0x1021
    """A capability load or store (VSpace_Cap*) at an address where no capability page
    is mapped: a data frame, or nothing."""


class CapPageAccess(IntEnum):
    """The ``Access`` word of a type fault."""

    capsule_AccessDataRead = 0
    capsule_AccessDataWrite = 1
    capsule_AccessExecute = 2
    capsule_AccessCapLoad = 3
    capsule_AccessCapStore = 4


CAP_PAGE_FAULT_WORDS: Final = ("FaultIP", "Addr", "Access", "Expected")
"""The words of a type fault's message, in order."""


def _vspace(name: str) -> Param:
    return Param(name, "seL4_CPtr", is_cap=True)


_VS: Final = "capsule_VSpace"

CAP_PAGE_METHODS: Final[tuple[Method, ...]] = (
    Method("capsule_CapPage", "Map", CapPageLabel.capsule_CapPageMap.name,
           (_vspace("vspace"), _word("vaddr"), _word("attr"))),
    Method("capsule_CapPage", "Unmap", CapPageLabel.capsule_CapPageUnmap.name, ()),
    Method(_VS, "CapLoad", CapPageLabel.capsule_VSpaceCapLoad.name,
           (_word("vaddr"), _cnode("root"), _word("index"), Param("depth", "seL4_Uint8"))),
    Method(_VS, "CapStore", CapPageLabel.capsule_VSpaceCapStore.name,
           (_word("vaddr"), _cnode("root"), _word("index"), Param("depth", "seL4_Uint8"))),
    Method(_VS, "CapCopy", CapPageLabel.capsule_VSpaceCapCopy.name,
           (_word("dest_vaddr"), _word("src_vaddr"))),
    Method(_VS, "CapExchange", CapPageLabel.capsule_VSpaceCapExchange.name,
           (_word("vaddr"), _cnode("root"), _word("index"), Param("depth", "seL4_Uint8"))),
)
"""The capability-page stubs (``capsule_CapPage_<name>``, ``capsule_VSpace_<name>``):

- ``CapPage_Map(vspace, vaddr, attr)``: map the invoked cap page at the page-aligned
  ``vaddr`` of ``vspace`` (a VSpace root with an ASID) with :class:`CapPageAttr`.
- ``CapPage_Unmap()``: remove the invoked cap's mapping (nothing if unmapped).
- ``VSpace_CapLoad(vaddr, root, index, depth)``: copy the capability at ``vaddr`` (a
  slot of the cap page mapped there) into the empty slot ``index``/``depth`` of ``root``
  as a derivation child, weakened if the path was weak.
- ``VSpace_CapStore(vaddr, root, index, depth)``: copy the capability in the slot into
  the empty capability slot at ``vaddr`` (refused through a read-only path).
- ``VSpace_CapCopy(dest_vaddr, src_vaddr)``: copy between two mapped addresses.
- ``VSpace_CapExchange(vaddr, root, index, depth)``: swap the capability at ``vaddr``
  with the one in the slot (both may be empty).
"""


# --- server-backed CNodes (virtualizable capability-space traversal) -------------------


class TraversalLabel(IntEnum):
    """Labels of capsule's server-backed CNodes (``KernelConfig.server_backed_cnodes``).

    ``capsule_CNodeBindServer`` / ``capsule_CNodeUnbindServer`` are invocations of a
    CNode cap; ``capsule_IndexRequest`` is the label of the message a server receives
    when a lookup needs it (a kernel-made message, like a fault's). 0x1030 up: clear of
    the checkpoint object's 0x1000 and of the capability pages' 0x1010..0x1021 (their
    invocation and type-fault labels), so that no two extensions share a number."""

    capsule_CNodeBindServer = 0x1030
    capsule_CNodeUnbindServer = 0x1031
    capsule_IndexRequest = 0x1038


class LookupKind(IntEnum):
    """Which lookup of a system call an index request is for (its ``kind`` word)."""

    capsule_LookupInvokedCap = 0
    """The cap a Send / NBSend / Call invokes."""
    capsule_LookupExtraCap = 1
    """One of the extra caps of the message (``caps_or_badges``)."""
    capsule_LookupReceiveEndpoint = 2
    """The endpoint or notification of a Recv / NBRecv."""
    capsule_LookupOperationSlot = 3
    """A slot an invocation names by (root, index, depth): CNode and Untyped operations."""
    capsule_LookupReceiveSlot = 4
    """The receive slot (receiveCNode / Index / Depth of the IPC buffer) of a Recv /
    NBRecv that finds a sender waiting, looked up before the receive commits."""


INDEX_REQUEST_WORDS: Final[tuple[Param, ...]] = (
    _word("address"), _word("bits_left"), _word("kind"), _word("slot"),
)
"""MR0..MR3 of an index request: ``address`` the unresolved low ``bits_left`` bits of
the capability address where the lookup reached the server-backed node (the node's
guard and index bits first), ``kind`` a :class:`LookupKind`, ``slot`` the index of the
empty slot of the node the lookup met. The badge word is the binding's badge."""

MAX_SERVER_DEPTH: Final = 4
"""How many lookups, each waiting on a server, may be nested: a server that, while
answering (its caller slot holding the reply to a suspended lookup), suspends on a
lookup itself, and so on. A lookup that would nest deeper, or that would ask a server
already in the chain, is refused (answered as a denial)."""

_CNODE: Final = "capsule_CNode"

TRAVERSAL_METHODS: Final[tuple[Method, ...]] = (
    Method(_CNODE, "BindServer", TraversalLabel.capsule_CNodeBindServer.name,
           (Param("endpoint", "seL4_CPtr", is_cap=True), _word("badge"))),
    Method(_CNODE, "UnbindServer", TraversalLabel.capsule_CNodeUnbindServer.name, ()),
)
"""Stubs invoked on a CNode cap (``capsule_CNode_<name>``):

- ``BindServer(endpoint, badge)``: the CNode becomes server-backed: a lookup that meets
  one of its empty slots asks the server on ``endpoint`` (a cap with the Write right)
  with ``badge`` (label ``capsule_IndexRequest``, :data:`INDEX_REQUEST_WORDS`).
- ``UnbindServer()``: an ordinary CNode again.
"""


def extension_labels(checkpoint: bool, cap_pages: bool = False,
                     traversal: bool = False) -> dict[str, int]:
    """Label name -> number of the extensions a configuration turns on (invocation
    labels and fault labels)."""
    labels = {m.name: int(m) for m in CheckpointLabel} if checkpoint else {}
    if cap_pages:
        labels.update({m.name: int(m) for m in CapPageLabel})
    if traversal:
        labels.update({m.name: int(m) for m in TraversalLabel})
    return labels


def extension_methods(checkpoint: bool, cap_pages: bool = False,
                      traversal: bool = False) -> tuple[Method, ...]:
    """The libsel4 methods of the extensions a configuration turns on."""
    return (*(CHECKPOINT_METHODS if checkpoint else ()),
            *(CAP_PAGE_METHODS if cap_pages else ()),
            *(TRAVERSAL_METHODS if traversal else ()))


def configured_labels(arch: Arch, mcs: bool, checkpoint: bool, cap_pages: bool = False,
                      traversal: bool = False) -> dict[str, int]:
    """Label name -> number in a configuration: seL4's, then its extensions' (for the
    views, which name every label the kernel answers)."""
    return {**label_table(arch, mcs), **extension_labels(checkpoint, cap_pages, traversal)}


def configured_methods(arch: Arch, mcs: bool, checkpoint: bool, cap_pages: bool = False,
                       traversal: bool = False) -> tuple[Method, ...]:
    """The libsel4 methods of a configuration: seL4's, then its extensions'."""
    return (*methods_for(arch, mcs), *extension_methods(checkpoint, cap_pages, traversal))
