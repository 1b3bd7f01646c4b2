"""Creating kernel objects in untyped memory: object types, sizes and construction.

This module knows, per architecture, what each retype ``type`` number means and how big
the object is (abi/objects.md, "Object type numbers" and "Size constants"), and how to
bring one object into existence at a physical address: its RAM, its Python state in
``kernel.objects`` (keyed by that address, DESIGN.md decision 2) and the cap naming it.
Validation of a retype request lives in ``kernel.objects.untyped``.

Memory rule (seL4's untyped invariant): the bytes of an untyped region above its free
index are zero. Reset zeroes what lay below the free index
(:func:`kernel.objects.untyped.reset_untyped`), so a
new object always starts on zeroed RAM; objects are zeroed again on creation, which
costs little and keeps the rule local. Device memory is never written: it may not be
RAM at all, and a device frame keeps whatever the device holds.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from functools import cache
from typing import Final

from kernel.abi.arch import Arch, object_type_enum
from kernel.abi.constants import (
    ENDPOINT_BITS,
    HUGE_PAGE_BITS,
    LARGE_PAGE_BITS,
    NOTIFICATION_BITS,
    NOTIFICATION_BITS_MCS,
    PAGE_BITS,
    PAGE_TABLE_BITS,
    REPLY_BITS_MCS,
    SLOT_BITS,
    VSPACE_BITS,
)
from kernel.abi.extensions import (
    CAP_PAGE_BITS,
    CAP_PAGE_OBJECT_NAME,
    CAP_PAGE_OBJECT_TYPE,
    CAP_PAGE_RADIX,
    CHECKPOINT_BITS,
    CHECKPOINT_OBJECT_NAME,
    CHECKPOINT_OBJECT_TYPE,
)
from kernel.machine import Machine
from kernel.model.caps import (
    Cap,
    CapPageCap,
    CheckpointCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ReplyObjectCap,
    SchedContextCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.errors import KernelBug
from kernel.model.notification import Notification
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = [
    "Kind",
    "ObjectType",
    "create_object",
    "object_size_bits",
    "object_types",
    "purge_region",
    "zero_phys",
]

_ZERO_CHUNK: Final = 1 << 18
"""Bytes :func:`zero_phys` reads at a time: a quarter of a megabyte stays in the host's
caches through the copies a read makes, and scans large regions about 1.6 times as
fast as a megabyte at a time (measured on Unicorn 2.1.4)."""
_ZEROS: Final = bytes(_ZERO_CHUNK)
_PAGE: Final = 1 << PAGE_BITS
_ZERO_PAGE: Final = bytes(_PAGE)


class Kind(Enum):
    """What a retype type number creates, independent of its per-arch number."""

    UNTYPED = "Untyped"
    TCB = "TCB"
    ENDPOINT = "Endpoint"
    NOTIFICATION = "Notification"
    CAP_TABLE = "CapTable"
    FRAME = "Frame"
    PAGE_TABLE = "PageTable"
    VSPACE = "VSpace"
    CHECKPOINT = "Checkpoint"
    """capsule's checkpoint object (an extension, not seL4: kernel.abi.extensions)."""
    CAP_PAGE = "CapPage"
    """capsule's capability page (an extension, not seL4: kernel.abi.extensions)."""
    SCHED_CONTEXT = "SchedContext"
    """MCS only; sized by the ``size_bits`` argument, as an untyped."""
    REPLY = "Reply"
    """MCS only."""


# Read at every retype: module constants, as reading an Enum member through its class
# costs several times a global's lookup (Python 3.11).
_UNTYPED: Final = Kind.UNTYPED
_SCHED_CONTEXT: Final = Kind.SCHED_CONTEXT
_CAP_TABLE: Final = Kind.CAP_TABLE


@dataclass(frozen=True, slots=True)
class ObjectType:
    """One retype ``type`` value of an architecture.

    ``fixed_bits`` is the object's log2 size for fixed-size kinds; it is None for
    Untyped, CapTable and SchedContext, whose size comes from the ``size_bits`` argument.
    """

    number: int
    name: str
    kind: Kind
    fixed_bits: int | None

    @property
    def is_frame(self) -> bool:
        return self.kind is Kind.FRAME


def _table(enum: type[IntEnum], kinds: dict[str, tuple[Kind, int | None]]) -> dict[int, ObjectType]:
    return {
        int(member): ObjectType(int(member), member.name, *kinds[member.name])
        for member in enum
        if member.name != "seL4_ObjectTypeCount"
    }


def _generic(tcb_bits: int, mcs: bool) -> dict[str, tuple[Kind, int | None]]:
    kinds: dict[str, tuple[Kind, int | None]] = {
        "seL4_UntypedObject": (Kind.UNTYPED, None),
        "seL4_TCBObject": (Kind.TCB, tcb_bits),
        "seL4_EndpointObject": (Kind.ENDPOINT, ENDPOINT_BITS),
        "seL4_NotificationObject": (Kind.NOTIFICATION, NOTIFICATION_BITS),
        "seL4_CapTableObject": (Kind.CAP_TABLE, None),
    }
    if mcs:
        kinds |= {
            # An MCS notification also names the scheduling context bound to it.
            "seL4_NotificationObject": (Kind.NOTIFICATION, NOTIFICATION_BITS_MCS),
            "seL4_SchedContextObject": (Kind.SCHED_CONTEXT, None),
            "seL4_ReplyObject": (Kind.REPLY, REPLY_BITS_MCS),
        }
    return kinds


_CHECKPOINT: Final = ObjectType(CHECKPOINT_OBJECT_TYPE, CHECKPOINT_OBJECT_NAME, Kind.CHECKPOINT,
                         CHECKPOINT_BITS)


_CAP_PAGE: Final = ObjectType(CAP_PAGE_OBJECT_TYPE, CAP_PAGE_OBJECT_NAME, Kind.CAP_PAGE,
                       CAP_PAGE_BITS)


@cache
def object_types(arch: Arch, tcb_bits: int, checkpoint: bool = False,
                 cap_pages: bool = False, mcs: bool = False) -> dict[int, ObjectType]:
    """The retype types of ``arch``, by number (0 .. seL4_ObjectTypeCount - 1), for a
    configuration whose TCBs are 2^``tcb_bits`` bytes; with ``checkpoint`` /
    ``cap_pages`` (an extension is on) also capsule's checkpoint object / capability
    page, each at its own number; with ``mcs``, the MCS kernel's numbering (scheduling
    contexts and reply objects at 5 and 6, every later type moved up by 2)."""
    types = _sel4_types(arch, tcb_bits, mcs)
    if checkpoint:
        types = {**types, _CHECKPOINT.number: _CHECKPOINT}
    if cap_pages:
        types = {**types, _CAP_PAGE.number: _CAP_PAGE}
    return types


def _sel4_types(arch: Arch, tcb_bits: int, mcs: bool) -> dict[int, ObjectType]:
    numbering = object_type_enum(arch, mcs)
    if arch is Arch.RISCV64:
        return _table(numbering, {
            **_generic(tcb_bits, mcs),
            "seL4_RISCV_Giga_Page": (Kind.FRAME, HUGE_PAGE_BITS),
            "seL4_RISCV_4K_Page": (Kind.FRAME, PAGE_BITS),
            "seL4_RISCV_Mega_Page": (Kind.FRAME, LARGE_PAGE_BITS),
            "seL4_RISCV_PageTableObject": (Kind.PAGE_TABLE, PAGE_TABLE_BITS),
        })
    return _table(numbering, {
        **_generic(tcb_bits, mcs),
        "seL4_ARM_HugePageObject": (Kind.FRAME, HUGE_PAGE_BITS),
        "seL4_ARM_VSpaceObject": (Kind.VSPACE, VSPACE_BITS),
        "seL4_ARM_SmallPageObject": (Kind.FRAME, PAGE_BITS),
        "seL4_ARM_LargePageObject": (Kind.FRAME, LARGE_PAGE_BITS),
        "seL4_ARM_PageTableObject": (Kind.PAGE_TABLE, PAGE_TABLE_BITS),
    })


def object_size_bits(otype: ObjectType, user_size: int) -> int:
    """log2 of the object's size in bytes (seL4's getObjectSize).

    Untyped and SchedContext: ``user_size``; CapTable: ``user_size + seL4_SlotBits``;
    others fixed.
    """
    kind = otype.kind
    if kind is _UNTYPED or kind is _SCHED_CONTEXT:
        return user_size
    if kind is _CAP_TABLE:
        return user_size + SLOT_BITS
    assert otype.fixed_bits is not None
    return otype.fixed_bits


def zero_phys(machine: Machine, paddr: int, size: int) -> None:
    """Make ``size`` bytes at ``paddr`` (RAM only) zero, writing only the pages (4 KiB
    pieces counted from ``paddr``) that are not zero already, a run of them per write.

    Guest RAM is memory the host backs only where it was written: writing zeros over
    memory nobody used would make the host back it all (a retype of a 1 GiB untyped, the
    root task's bss). Reading it costs no host memory, so each chunk is read first
    and only its non-zero pages are written (DESIGN.md's host-cost budget)."""
    end = paddr + size
    while paddr < end:
        n = min(_ZERO_CHUNK, end - paddr)
        data = machine.read_phys(paddr, n)
        if data != _ZEROS[:n]:
            # Runs of non-zero pages, each written with one call. A page is compared
            # with a zero page (memcmp, which stops at the first difference), not
            # counted byte by byte.
            run = -1
            for offset in range(0, n, _PAGE):
                page = data[offset : offset + _PAGE]
                if page != (_ZERO_PAGE if len(page) == _PAGE else _ZEROS[: len(page)]):
                    if run < 0:
                        run = offset
                elif run >= 0:
                    machine.write_phys(paddr + run, _ZEROS[: offset - run])
                    run = -1
            if run >= 0:
                machine.write_phys(paddr + run, _ZEROS[: n - run])
        paddr += n


def purge_region(kernel: KernelState, base: int, size: int) -> None:
    """Forget the Python state of every object in ``[base, base + size)``.

    Called when an untyped without children is reset: nothing can name those objects
    any more (every cap to them descended from the untyped). Raises KernelBug if a
    thread there could still run, which would mean its deletion did not suspend it.
    """
    for obj in kernel.remove_objects_in(base, size):
        if isinstance(obj, TCB):
            if obj is kernel.current or obj.state.runnable:
                raise KernelBug(f"retype over the live thread {obj.name}")
            kernel.machine.forget_thread(obj.cpu)  # the machine's copy dies with it


def create_object(
    kernel: KernelState, otype: ObjectType, paddr: int, user_size: int, is_device: bool
) -> Cap:
    """Bring one object of ``otype`` into existence at ``paddr`` and return its cap.

    Preconditions (checked by the decoder): ``paddr`` is aligned to the object's size,
    the range lies inside an untyped owned by the caller, and a device untyped only
    creates frames and untypeds. KernelState objects get their state in ``kernel.objects``;
    a TCB also joins ``kernel.threads`` (Inactive, priority 0, a full time slice).
    """
    bits = object_size_bits(otype, user_size)
    if otype.kind is _UNTYPED:
        # Zero already (the untyped invariant); a new untyped starts with free index 0.
        return UntypedCap(paddr, user_size, is_device, free_index=0)
    if not is_device:
        zero_phys(kernel.machine, paddr, 1 << bits)
    match otype.kind:
        case Kind.FRAME:
            return FrameCap(paddr, bits, is_device=is_device)
        case Kind.PAGE_TABLE:
            return PageTableCap(paddr)
        case Kind.VSPACE:
            return VSpaceCap(paddr)
        case Kind.TCB:
            tcb = TCB(paddr, len(kernel.abi.user_context), kernel.config.time_slice_ticks)
            kernel.add_object(tcb)
            return ThreadCap(paddr)
        case Kind.ENDPOINT:
            kernel.add_object(Endpoint(paddr))
            return EndpointCap(paddr)
        case Kind.NOTIFICATION:
            kernel.add_object(Notification(paddr))
            return NotificationCap(paddr)
        case Kind.CAP_TABLE:
            kernel.add_object(CNode(paddr, user_size))
            return CNodeCap(paddr, user_size)
        case Kind.SCHED_CONTEXT:
            kernel.add_object(SchedContext(paddr, user_size))
            return SchedContextCap(paddr, user_size)
        case Kind.REPLY:
            kernel.add_object(ReplyObject(paddr))
            return ReplyObjectCap(paddr)
        case Kind.CHECKPOINT:
            return CheckpointCap(paddr)  # stateless: its cap and its (zeroed) memory
        case Kind.CAP_PAGE:
            kernel.add_object(CNode(paddr, CAP_PAGE_RADIX))
            return CapPageCap(paddr, CAP_PAGE_RADIX)
    raise KernelBug(f"create_object: unknown kind {otype.kind}")
