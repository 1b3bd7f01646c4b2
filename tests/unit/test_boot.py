"""Boot on the fake machine: caps at seL4's slots, bootinfo layout, memory accounting."""

from __future__ import annotations

import struct

import pytest

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import BOOTINFO, MIN_UNTYPED_BITS, InitialCap
from kernel.boot import BootError, boot
from kernel.config import KernelConfig
from kernel.image import ImageSegment, RootTaskImage
from kernel.kernel import Kernel
from kernel.model.caps import (
    ASIDControlCap,
    ASIDPoolCap,
    CNodeCap,
    DomainCap,
    FrameCap,
    IRQControlCap,
    PageTableCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.page_tables import translate
from kernel.model.paging import Access
from tests.fakes import FakeMachine

ENTRY = {Arch.RISCV64: 0x10000, Arch.AARCH64: 0x400000}


def make_image(arch: Arch) -> RootTaskImage:
    base = ENTRY[arch]
    text = ImageSegment(base, 0x1800, b"\x13" * 0x1800, True, False, True)
    data = ImageSegment(base + 0x2000, 0x3000, b"DATA", True, True, False)
    return RootTaskImage(arch, base, (text, data))


def booted(arch: Arch, **config: int) -> tuple[Kernel, FakeMachine, object]:
    cfg = KernelConfig(ram_size=8 << 20, **config)
    machine = FakeMachine(arch, cfg.ram_size)
    kernel = Kernel(machine, cfg, lambda byte: None)
    report = boot(kernel, make_image(arch))
    return kernel, machine, report


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def root_slots(kernel: Kernel) -> list:
    cap = kernel.current.ctable.cap
    node = kernel.objects[cap.paddr]
    assert isinstance(node, CNode)
    return node.slots


def test_initial_caps_at_sel4_slots(arch: Arch) -> None:
    kernel, _, _ = booted(arch)
    slots = root_slots(kernel)
    expected = {
        InitialCap.seL4_CapInitThreadTCB: ThreadCap,
        InitialCap.seL4_CapInitThreadCNode: CNodeCap,
        InitialCap.seL4_CapInitThreadVSpace: PageTableCap if arch is Arch.RISCV64 else VSpaceCap,
        InitialCap.seL4_CapIRQControl: IRQControlCap,
        InitialCap.seL4_CapASIDControl: ASIDControlCap,
        InitialCap.seL4_CapInitThreadASIDPool: ASIDPoolCap,
        InitialCap.seL4_CapBootInfoFrame: FrameCap,
        InitialCap.seL4_CapInitThreadIPCBuffer: FrameCap,
        InitialCap.seL4_CapDomain: DomainCap,
    }
    for slot, cls in expected.items():
        assert isinstance(slots[slot].cap, cls), slot
    for empty in (0, 7, 8, 12, 13, 14, 15):
        assert slots[empty].is_empty
    cnode = slots[InitialCap.seL4_CapInitThreadCNode].cap
    assert (cnode.radix, cnode.guard_size, cnode.guard) == (12, 52, 0)


def test_bootinfo_regions_describe_the_slots(arch: Arch) -> None:
    kernel, machine, report = booted(arch)
    info = report.bootinfo
    slots = root_slots(kernel)
    assert info.user_image_paging[0] == 16
    assert info.user_image_paging[1] == info.user_image_frames[0]
    assert info.user_image_frames[1] == info.untyped[0]
    assert info.untyped[1] == info.empty[0]
    assert info.empty[1] == 1 << 12
    for i in range(*info.user_image_paging):
        assert isinstance(slots[i].cap, PageTableCap)
    # Six image pages: 0x1800 of text rounds to 2 pages, the data segment 3 more at +0x2000.
    assert info.user_image_frames[1] - info.user_image_frames[0] == 5
    for i, desc in zip(range(*info.untyped), info.untyped_list):
        cap = slots[i].cap
        assert isinstance(cap, UntypedCap)
        assert (cap.paddr, cap.size_bits, cap.is_device) == (desc.paddr, desc.size_bits, desc.is_device)
        # Boot untypeds start full: the first retype resets them.
        assert cap.free_index == 1 << (cap.size_bits - MIN_UNTYPED_BITS)
    for i in range(*info.empty):
        assert slots[i].is_empty


def test_bootinfo_frame_bytes_follow_sel4_layout(arch: Arch) -> None:
    kernel, machine, report = booted(arch)
    frame = kernel.objects  # noqa: F841 - readability
    paddr = translate(machine, kernel.paging, machine.root, report.bootinfo_vaddr, Access.READ)
    assert paddr is not None
    raw = machine.read_phys(paddr, BOOTINFO.size)
    word = lambda name: struct.unpack_from("<Q", raw, BOOTINFO.offset(name))[0]  # noqa: E731
    assert word("ipcBuffer") == report.bootinfo.ipc_buffer == report.bootinfo_vaddr - 0x1000
    assert word("numNodes") == 1
    assert word("initThreadCNodeSizeBits") == 12
    start, end = struct.unpack_from("<QQ", raw, BOOTINFO.offset("untyped"))
    assert (start, end) == report.bootinfo.untyped
    first = BOOTINFO.offset("untypedList")
    paddr0, bits0, dev0 = struct.unpack_from("<QBB", raw, first)
    d0 = report.bootinfo.untyped_list[0]
    assert (paddr0, bits0, bool(dev0)) == (d0.paddr, d0.size_bits, d0.is_device)


def test_untyped_ram_plus_boot_reservations_is_all_ram(arch: Arch) -> None:
    kernel, machine, report = booted(arch)
    ram = sum(1 << d.size_bits for d in report.bootinfo.untyped_list if not d.is_device)
    assert ram + report.reserved_bytes == machine.ram_size
    # The reservations are exactly the image pages and the root server's objects.
    sizes = {what: size for what, _, size in report.reserved}
    assert sizes["root CNode"] == 1 << (12 + 5)
    assert sizes["root TCB"] == 1 << abi_for(arch).tcb_bits
    assert sizes["root task image"] == 5 * 0x1000


def test_untypeds_are_aligned_and_disjoint(arch: Arch) -> None:
    _, machine, report = booted(arch)
    spans = []
    for d in report.bootinfo.untyped_list:
        assert d.paddr % (1 << d.size_bits) == 0
        spans.append((d.paddr, d.paddr + (1 << d.size_bits)))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start
    # Device untypeds come first in the list, RAM after.
    kinds = [d.is_device for d in report.bootinfo.untyped_list]
    assert kinds == sorted(kinds, reverse=True)


def test_image_is_mapped_and_loaded(arch: Arch) -> None:
    kernel, machine, report = booted(arch)
    base = ENTRY[arch]
    text = translate(machine, kernel.paging, machine.root, base, Access.EXECUTE)
    data = translate(machine, kernel.paging, machine.root, base + 0x2000, Access.WRITE)
    assert text is not None and data is not None
    assert machine.read_phys(text, 1) == b"\x13"
    assert machine.read_phys(data, 4) == b"DATA"
    # bss beyond the file contents is zero, and nothing past the bootinfo page is mapped.
    assert machine.read_phys(data + 4, 4) == bytes(4)
    past_bootinfo = report.bootinfo_vaddr + 0x1000
    assert translate(machine, kernel.paging, machine.root, past_bootinfo, Access.READ) is None


def test_root_thread_registers(arch: Arch) -> None:
    kernel, machine, report = booted(arch)
    regs = machine.registers
    names = abi_for(arch).user_context
    assert regs[names.index("pc")] == ENTRY[arch]
    arg = "a0" if arch is Arch.RISCV64 else "x0"
    assert regs[names.index(arg)] == report.bootinfo_vaddr
    assert regs[names.index("sp")] == 0
    assert kernel.current.priority == 255 and kernel.current.name == "rootserver"


def test_root_cnode_too_small_is_a_boot_error() -> None:
    cfg = KernelConfig(ram_size=8 << 20, root_cnode_bits=4)
    machine = FakeMachine(Arch.RISCV64, cfg.ram_size)
    kernel = Kernel(machine, cfg, lambda byte: None)
    with pytest.raises(BootError, match="root CNode too small"):
        boot(kernel, make_image(Arch.RISCV64))
