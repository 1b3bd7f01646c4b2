"""Booting the root task as seL4 does (abi/boot.md).

Two physical layouts, chosen by whether the image hands the root task a device tree:

- **seL4's platform layout** (with a device tree: every image the loaders make, as
  capsule is seL4 on qemu-riscv-virt and qemu-arm-virt; an elfloader image brings its
  own): as seL4 16.0.0 lays out the platform (:mod:`kernel.platforms.layout`): the
  kernel image, the device tree and the root task's image from the kernel's load address
  up, the root server's objects in one aligned block as high in RAM as it fits, and the
  untyped list seL4 computes (device regions, the kernel's boot code given back, free
  RAM). The device tree reaches the root task as extra bootinfo.
- **the compact layout** (a RootTaskImage without a device tree, as unit tests build
  them): from the RAM base up, the image's frames, then the root server's objects each
  aligned to its size (root CNode, VSpace root, the image's page tables, ASID pool, IPC
  buffer, bootinfo frame, extra bootinfo, TCB), then every byte left as untyped of
  maximal aligned power-of-two size; physical addresses outside RAM are device
  untypeds, listed first.

Everything boot creates is a real object in RAM: page tables hold real entries, frames
hold the image, the bootinfo frame holds seL4_BootInfo. The caps go into the root CNode
at seL4's slot numbers, then the image paging caps, extra bootinfo frames, (MCS) the
SchedControl caps, image frame caps and untypeds from slot seL4_NumInitialCaps on, in that
order. An MCS kernel also gives the root task its scheduling context (slot 14).
"""

from __future__ import annotations

import struct
from typing import Final

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import (
    ASID_POOL_BITS,
    MIN_SCHED_CONTEXT_BITS,
    MIN_UNTYPED_BITS,
    PAGE_BITS,
    PAGE_TABLE_BITS,
    VSPACE_BITS,
    BootInfoHeaderId,
    InitialCap,
)
from kernel.bootinfo import BootInfo, UntypedDesc
from kernel.core.mcs_sched import set_next_interrupt
from kernel.core.threads import install_thread
from kernel.cspace.cdt import derive_cap, insert_child, insert_root
from kernel.image import RootTaskImage
from kernel.kernel import Kernel
from kernel.model.asid_pool import ASIDPool
from kernel.model.caps import (
    ASIDControlCap,
    ASIDPoolCap,
    Cap,
    CNodeCap,
    DomainCap,
    FrameCap,
    IRQControlCap,
    PageTableCap,
    ThreadCap,
    UntypedCap,
)
from kernel.model.cnode import CNode, cnode_object_bits
from kernel.model.page_tables import write_entry
from kernel.model.paging import VMRights
from kernel.model.platform import model_for
from kernel.model.tcb import TCB, ThreadState
from kernel.objects.asid_pool import register_pool
from kernel.objects.retype import zero_phys
from kernel.objects.sched_context import boot_sched_context, sched_control_caps
from kernel.platforms import platform_for
from kernel.platforms.layout import LayoutError, aligned_blocks, device_untypeds, sel4_layout
from kernel.records import dataclass

__all__ = ["BootError", "BootReport", "boot"]

PAGE: Final = 1 << PAGE_BITS
_HEADER_BYTES: Final = 16
"""sizeof(seL4_BootInfoHeader): id and len, a word each."""
ROOT_ASID: Final = 1
PHYS_TOP: Final = {Arch.RISCV64: 1 << 39, Arch.AARCH64: 1 << 40}
"""End of the physical address space described by device untypeds."""


class BootError(Exception):
    """The image cannot be booted with this configuration (one-line message)."""


@dataclass(frozen=True)
class BootReport:
    """What boot did, for tests and inspection.

    ``reserved`` lists ``(what, paddr, size)`` for every byte of RAM boot kept for the
    root task; ``sum(size) + untyped RAM bytes == ram_size`` always holds. ``root_cnode``
    is the address of the root task's CNode, which the bootinfo's slot regions index.
    """

    reserved: tuple[tuple[str, int, int], ...]
    bootinfo: BootInfo
    bootinfo_vaddr: int
    root_cnode: int

    @property
    def reserved_bytes(self) -> int:
        return sum(size for _, _, size in self.reserved)


class _PhysAllocator:
    """First-fit, size-aligned allocation from a list of free ``[start, end)`` ranges."""

    def __init__(self, start: int, end: int) -> None:
        self.free: list[tuple[int, int]] = [(start, end)]

    def alloc(self, size_bits: int) -> int:
        size = 1 << size_bits
        for i, (start, end) in enumerate(self.free):
            base = (start + size - 1) & ~(size - 1)
            if base + size <= end:
                pieces = [(start, base), (base + size, end)]
                self.free[i : i + 1] = [(s, e) for s, e in pieces if e > s]
                return base
        raise BootError(f"not enough RAM for the root task's boot objects ({size} bytes)")


def _aligned_blocks(start: int, end: int, max_bits: int) -> list[tuple[int, int]]:
    """Cover ``[start, end)`` with maximal naturally aligned power-of-two blocks."""
    return aligned_blocks(start, end, max_bits)[0]


@dataclass(frozen=True, slots=True)
class _RootObjects:
    """The root server's objects: the sizes (log2 bytes) of its root CNode, TCB and
    extra bootinfo region (0: none), how many page tables its image needs, and the size
    of its scheduling context (0: none; seL4's MCS kernels give it one, last)."""

    cnode_bits: int
    tcb_bits: int
    extra_bits: int
    tables: int
    sched_context_bits: int = 0

    @property
    def total(self) -> int:
        """seL4's calculate_rootserver_size: every object, each a power of two."""
        return ((1 << self.cnode_bits) + (1 << self.tcb_bits) + 4 * PAGE
                + (1 << self.extra_bits if self.extra_bits else 0)
                + self.tables * (1 << PAGE_TABLE_BITS)
                + (1 << self.sched_context_bits if self.sched_context_bits else 0))


@dataclass
class _Placement:
    """Where boot puts the image and each root server object, what RAM it keeps
    (BootReport.reserved) and the untyped list in the order it hands them out."""

    image_paddr: int
    cnode: int
    vspace: int
    tables: list[int]
    asid_pool: int
    ipc: int
    bootinfo: int
    extra: int
    tcb: int
    sched_context: int
    """0 without one (:attr:`_RootObjects.sched_context_bits`)."""
    objects: list[tuple[int, int]]
    """``(paddr, size_bits)`` of every object, for zeroing."""
    reserved: list[tuple[str, int, int]]
    untypeds: list[UntypedDesc]


def _compact_placement(arch: Arch, ram_base: int, ram_end: int, image_bytes: int,
                       sizes: _RootObjects, max_bits: int) -> _Placement:
    """capsule's own layout: the image at the RAM base, each object first-fit and aligned
    to its size after it, untypeds for the device space first, then for free RAM."""
    if image_bytes >= ram_end - ram_base:
        raise BootError("root task image does not fit in RAM")
    reserved = [("root task image", ram_base, image_bytes)]
    objects: list[tuple[int, int]] = []
    alloc = _PhysAllocator(ram_base + image_bytes, ram_end)

    def new(what: str, size_bits: int) -> int:
        paddr = alloc.alloc(size_bits)
        reserved.append((what, paddr, 1 << size_bits))
        objects.append((paddr, size_bits))
        return paddr

    cnode = new("root CNode", sizes.cnode_bits)
    vspace = new("VSpace root", VSPACE_BITS)
    tables = [new("page table", PAGE_TABLE_BITS) for _ in range(sizes.tables)]
    pool = new("ASID pool", ASID_POOL_BITS)
    ipc = new("IPC buffer frame", PAGE_BITS)
    bootinfo = new("bootinfo frame", PAGE_BITS)
    extra = new("extra bootinfo", sizes.extra_bits) if sizes.extra_bits else 0
    tcb = new("root TCB", sizes.tcb_bits)
    sc = new("root scheduling context", sizes.sched_context_bits) if sizes.sched_context_bits else 0
    descs: list[UntypedDesc] = []
    for start, end in ((0, ram_base), (ram_end, PHYS_TOP[arch])):
        descs += [UntypedDesc(p, b, True) for p, b in _aligned_blocks(start, end, max_bits)]
    for start, end in alloc.free:
        descs += [UntypedDesc(p, b, False)
                  for p, b in _aligned_blocks(start, end, max_bits) if b >= MIN_UNTYPED_BITS]
    return _Placement(ram_base, cnode, vspace, tables, pool, ipc, bootinfo, extra, tcb, sc,
                      objects, reserved, descs)


def _platform_placement(arch: Arch, ram_size: int, image_bytes: int, sizes: _RootObjects,
                        dtb_bytes: int, max_bits: int) -> _Placement:
    """seL4's layout on the arch's platform (:func:`kernel.platforms.layout.sel4_layout`),
    the root server's objects carved from their block in create_rootserver_objects'
    order: the larger of root CNode and VSpace root first, the extra bootinfo region as
    soon as it is the largest left, ASID pool, IPC buffer, bootinfo frame, then the page
    tables and the TCB (smaller than a page table on both architectures), a scheduling
    context last if there is one."""
    align_bits = max(sizes.cnode_bits, VSPACE_BITS, sizes.extra_bits)
    try:
        layout = sel4_layout(platform_for(arch), ram_size, image_bytes=image_bytes,
                             dtb_bytes=dtb_bytes, rootserver_bytes=sizes.total,
                             rootserver_align_bits=align_bits, min_bits=MIN_UNTYPED_BITS,
                             max_bits=max_bits)
    except LayoutError as error:
        raise BootError(str(error)) from None
    at = layout.rootserver_paddr
    objects: list[tuple[int, int]] = []
    extra = 0

    def new(size_bits: int) -> int:
        nonlocal at
        objects.append((at, size_bits))
        at += 1 << size_bits
        return at - (1 << size_bits)

    def maybe_extra(than_bits: int) -> None:
        nonlocal extra
        if sizes.extra_bits and sizes.extra_bits >= than_bits and not extra:
            extra = new(sizes.extra_bits)

    maybe_extra(align_bits)
    if sizes.cnode_bits > VSPACE_BITS:
        cnode = new(sizes.cnode_bits)
        maybe_extra(VSPACE_BITS)
        vspace = new(VSPACE_BITS)
    else:
        vspace = new(VSPACE_BITS)
        maybe_extra(sizes.cnode_bits)
        cnode = new(sizes.cnode_bits)
    maybe_extra(PAGE_BITS)
    pool, ipc, bootinfo = new(ASID_POOL_BITS), new(PAGE_BITS), new(PAGE_BITS)
    tcb = new(sizes.tcb_bits) if sizes.tcb_bits >= PAGE_TABLE_BITS else 0
    tables = [new(PAGE_TABLE_BITS) for _ in range(sizes.tables)]
    if not tcb:
        tcb = new(sizes.tcb_bits)
    sc = new(sizes.sched_context_bits) if sizes.sched_context_bits else 0
    descs = [UntypedDesc(p, b, d) for p, b, d in layout.untypeds]
    return _Placement(layout.image_paddr, cnode, vspace, tables, pool, ipc, bootinfo, extra,
                      tcb, sc, objects, list(layout.reserved), descs)


@dataclass(frozen=True)
class BootCaps:
    """The caps boot puts in the root CNode before the RAM untypeds, counted from the
    image's extent and the configuration alone (no boot needed)."""

    initial: int
    page_tables: int
    image_frames: int
    device_untypeds: int
    extra_frames: int = 0
    sched_controls: int = 0
    """MCS: one SchedControl cap per core."""

    @property
    def total(self) -> int:
        """The slots they fill: boot needs at least this many plus one per RAM untyped."""
        return (self.initial + self.page_tables + self.image_frames + self.device_untypeds
                + self.extra_frames + self.sched_controls)


def extra_bootinfo(device_tree: bytes | None) -> bytes:
    """seL4's extra bootinfo: one chunk, seL4_BootInfoHeader {id FDT, len} and the device
    tree (abi/boot.md, "Extra bootinfo"); empty without a device tree."""
    if device_tree is None:
        return b""
    return struct.pack("<QQ", BootInfoHeaderId.SEL4_BOOTINFO_HEADER_FDT,
                       _HEADER_BYTES + len(device_tree)) + device_tree


def extra_bootinfo_bits(extra_len: int) -> int:
    """log2 of the region seL4 maps for ``extra_len`` bytes of extra bootinfo after the
    bootinfo frame: the power of two that holds them, at least a page (0: none)."""
    return 0 if extra_len == 0 else max(PAGE_BITS, (extra_len - 1).bit_length())


def boot_caps(arch: Arch, image_start: int, image_end: int, ram_size: int,
              extra_len: int = 0, mcs: bool = False) -> BootCaps:
    """What boot will place for a root task whose segments span ``[image_start,
    image_end)`` on ``arch`` with ``ram_size`` bytes of RAM (the same computation
    :func:`boot` makes, done first so that a root CNode too small is refused before any
    per-page work)."""
    abi, fmt = abi_for(arch), model_for(arch).paging
    v_start = image_start & ~(PAGE - 1)
    extra_size = 1 << extra_bootinfo_bits(extra_len) if extra_len else 0
    # The IPC buffer, the bootinfo frame, then the extra bootinfo region: a frame each.
    v_end = ((image_end + PAGE - 1) & ~(PAGE - 1)) + 2 * PAGE + extra_size
    tables = sum(((v_end - 1) >> fmt.shifts[level - 1]) - (v_start >> fmt.shifts[level - 1]) + 1
                 for level in range(1, fmt.levels))
    ram_end = abi.ram_base + ram_size
    if extra_len:  # seL4's platform layout
        devices = len(device_untypeds(platform_for(arch), ram_size, MIN_UNTYPED_BITS,
                                      abi.max_untyped_bits))
    else:
        devices = len(_aligned_blocks(0, abi.ram_base, abi.max_untyped_bits)) + len(
            _aligned_blocks(ram_end, PHYS_TOP[arch], abi.max_untyped_bits))
    image_frames = (((image_end + PAGE - 1) & ~(PAGE - 1)) - v_start) // PAGE
    return BootCaps(int(InitialCap.seL4_NumInitialCaps), tables, image_frames, devices,
                    -(-extra_len // PAGE), len(sched_control_caps()) if mcs else 0)


def boot(kernel: Kernel, image: RootTaskImage) -> BootReport:
    """Create the root task of ``image`` on ``kernel`` and make it the current thread."""
    machine, config, abi, fmt = kernel.machine, kernel.config, kernel.abi, kernel.paging
    ram_base, ram_end = machine.ram_base, machine.ram_base + machine.ram_size

    # -- virtual layout: image pages, then IPC buffer, bootinfo, extra bootinfo -----------
    v_start = image.start & ~(PAGE - 1)
    v_image_end = (image.end + PAGE - 1) & ~(PAGE - 1)
    ipc_vaddr, bootinfo_vaddr = v_image_end, v_image_end + PAGE
    extra = extra_bootinfo(image.device_tree)
    extra_size = 1 << extra_bootinfo_bits(len(extra)) if extra else 0
    extra_vaddr = bootinfo_vaddr + PAGE
    # seL4 maps the pages the extra bootinfo covers, in a 2^n region of virtual space.
    extra_pages = -(-len(extra) // PAGE)
    v_end = extra_vaddr + extra_size
    if v_end > min(abi.user_top, fmt.va_limit):
        raise BootError("root task image reaches past the user address limit")
    if not config.fpu and kernel.arch is Arch.AARCH64:
        raise BootError("an AArch64 kernel always has the FPU (fpu must be true)")
    needed = boot_caps(kernel.arch, image.start, image.end, machine.ram_size, len(extra),
                       config.mcs)
    if needed.total > 1 << config.root_cnode_bits:
        raise BootError(f"root CNode too small: {1 << config.root_cnode_bits} slots, boot "
                        f"needs at least {needed.total}")

    # -- physical placement: the image, the root server's objects, the untypeds ---------
    image_bytes = v_image_end - v_start
    cnode_bits = config.root_cnode_bits
    table_keys = [(level, n << fmt.shifts[level - 1])
                  for level in range(1, fmt.levels)
                  for n in range(v_start >> fmt.shifts[level - 1],
                                 ((v_end - 1) >> fmt.shifts[level - 1]) + 1)]
    sizes = _RootObjects(cnode_object_bits(cnode_bits), kernel.tcb_bits,
                         extra_bootinfo_bits(len(extra)), len(table_keys),
                         MIN_SCHED_CONTEXT_BITS if config.mcs else 0)
    if image.device_tree is not None:
        place = _platform_placement(kernel.arch, machine.ram_size, image_bytes, sizes,
                                    len(image.device_tree), abi.max_untyped_bits)
    else:
        place = _compact_placement(kernel.arch, ram_base, ram_end, image_bytes, sizes,
                                   abi.max_untyped_bits)
    reserved = place.reserved
    image_paddr = place.image_paddr
    zero_phys(machine, image_paddr, image_bytes)
    for seg in image.segments:
        machine.write_phys(image_paddr + seg.vaddr - v_start, seg.data)
    for paddr, size_bits in place.objects:
        zero_phys(machine, paddr, 1 << size_bits)

    cnode = CNode(place.cnode, cnode_bits)
    kernel.add_object(cnode)
    vspace_root = place.vspace
    tables = dict(zip(table_keys, place.tables, strict=True))
    pool = ASIDPool(place.asid_pool, asid_base=0)
    pool.roots[ROOT_ASID] = vspace_root
    register_pool(kernel, pool)
    ipc_paddr, bootinfo_paddr, extra_paddr = place.ipc, place.bootinfo, place.extra
    if extra:
        machine.write_phys(extra_paddr, extra)
    tcb = TCB(place.tcb, len(abi.user_context), config.time_slice_ticks)
    kernel.add_object(tcb)  # the first thread

    # -- page tables: link the tables, map every page ------------------------------------
    def table_of(level: int, vaddr: int) -> int:
        if level == 0:
            return vspace_root
        span_bits = fmt.shifts[level - 1]
        return tables[(level, (vaddr >> span_bits) << span_bits)]

    for (level, base), paddr in tables.items():
        write_entry(machine, table_of(level - 1, base), fmt.index(level - 1, base),
                    fmt.table_entry(paddr))
    last = fmt.levels - 1

    def map_page(vaddr: int, paddr: int) -> None:
        # seL4 maps the whole root image read-write and executable; so do we.
        entry = fmt.leaf_entry(paddr, last, VMRights.READ_WRITE, executable=True, cacheable=True)
        write_entry(machine, table_of(last, vaddr), fmt.index(last, vaddr), entry)

    for v in range(v_start, v_image_end, PAGE):
        map_page(v, image_paddr + v - v_start)
    map_page(ipc_vaddr, ipc_paddr)
    map_page(bootinfo_vaddr, bootinfo_paddr)
    for offset in range(0, extra_pages * PAGE, PAGE):
        map_page(extra_vaddr + offset, extra_paddr + offset)
    machine.page_tables_changed()

    # -- caps ------------------------------------------------------------------------------
    slots = cnode.slots

    def put(index: int, cap: Cap) -> None:
        insert_root(slots[index], cap)

    root_cnode_cap = CNodeCap(cnode.paddr, cnode_bits, guard_size=64 - cnode_bits, guard=0)
    vspace_cap = kernel.platform.vspace_root_cap(vspace_root, ROOT_ASID)
    put(InitialCap.seL4_CapInitThreadTCB, ThreadCap(tcb.paddr))
    put(InitialCap.seL4_CapInitThreadCNode, root_cnode_cap)
    put(InitialCap.seL4_CapInitThreadVSpace, vspace_cap)
    put(InitialCap.seL4_CapIRQControl, IRQControlCap())
    put(InitialCap.seL4_CapASIDControl, ASIDControlCap())
    put(InitialCap.seL4_CapInitThreadASIDPool, ASIDPoolCap(pool.paddr, asid_base=0))
    put(InitialCap.seL4_CapBootInfoFrame,
        FrameCap(bootinfo_paddr, PAGE_BITS, mapped_asid=ROOT_ASID, mapped_vaddr=bootinfo_vaddr))
    put(InitialCap.seL4_CapInitThreadIPCBuffer,
        FrameCap(ipc_paddr, PAGE_BITS, mapped_asid=ROOT_ASID, mapped_vaddr=ipc_vaddr))
    put(InitialCap.seL4_CapDomain, DomainCap())
    if config.mcs:
        put(InitialCap.seL4_CapInitThreadSC, boot_sched_context(kernel, place.sched_context, tcb))

    next_slot = int(InitialCap.seL4_NumInitialCaps)

    def region(caps: list[Cap]) -> tuple[int, int]:
        nonlocal next_slot
        start = next_slot
        if start + len(caps) > len(slots):
            raise BootError(
                f"root CNode too small: {len(slots)} slots, boot needs more than {start + len(caps)}"
            )
        for cap in caps:
            put(next_slot, cap)
            next_slot += 1
        return start, next_slot

    paging_region = region([
        PageTableCap(paddr, mapped_asid=ROOT_ASID, mapped_vaddr=base)
        for (_, base), paddr in sorted(tables.items())
    ])
    # seL4's order: the image's page tables, the extra bootinfo frames, the image frames.
    extra_region = region([
        FrameCap(extra_paddr + offset, PAGE_BITS, mapped_asid=ROOT_ASID,
                 mapped_vaddr=extra_vaddr + offset)
        for offset in range(0, extra_pages * PAGE, PAGE)
    ]) if extra else (0, 0)
    # MCS: the SchedControl caps come next, before the image frames.
    sched_control_region = region(sched_control_caps()) if config.mcs else None
    frames_region = region([
        FrameCap(image_paddr + v - v_start, PAGE_BITS, mapped_asid=ROOT_ASID, mapped_vaddr=v)
        for v in range(v_start, v_image_end, PAGE)
    ])

    # -- untypeds, in the placement's order ------------------------------------------
    descs = place.untypeds
    untyped_region = region([
        # Boot untypeds start "full": the first retype resets (and zeroes) them.
        UntypedCap(d.paddr, d.size_bits, d.is_device, free_index=1 << (d.size_bits - MIN_UNTYPED_BITS))
        for d in descs
    ])

    info = BootInfo(
        ipc_buffer=ipc_vaddr,
        cnode_size_bits=cnode_bits,
        empty=(next_slot, len(slots)),
        user_image_frames=frames_region,
        user_image_paging=paging_region,
        untyped=untyped_region,
        untyped_list=descs,
        extra_len=len(extra),
        extra_pages=extra_region,
        schedcontrol=sched_control_region,
    )
    machine.write_phys(bootinfo_paddr, info.encode())

    # -- the root thread -----------------------------------------------------------------
    insert_child(slots[InitialCap.seL4_CapInitThreadCNode], tcb.ctable, root_cnode_cap, False)
    insert_child(slots[InitialCap.seL4_CapInitThreadVSpace], tcb.vtable, vspace_cap, False)
    # As seL4's create_initial_thread: the TCB holds a derived copy of the IPC buffer
    # cap, which is not the mapping; deleting it cannot unmap the root task's buffer.
    ipc_slot = slots[InitialCap.seL4_CapInitThreadIPCBuffer]
    insert_child(ipc_slot, tcb.ipc_buffer_slot, derive_cap(kernel, ipc_slot, ipc_slot.cap),
                 False)
    tcb.ipc_buffer = ipc_vaddr
    tcb.name = "rootserver"
    tcb.priority = tcb.mcp = 255
    regs = [0] * len(abi.user_context)
    regs[kernel.reg_index["pc"]] = image.entry
    regs[kernel.window_index[0]] = bootinfo_vaddr  # a0 / x0
    tcb.registers = regs
    tcb.state = ThreadState.RUNNING
    install_thread(kernel, tcb)
    if kernel.mcs is not None:  # time is charged to the root task's context from now on
        kernel.mcs.sc = tcb.sched_context
        set_next_interrupt(kernel)
    return BootReport(tuple(reserved), info, bootinfo_vaddr, cnode.paddr)
