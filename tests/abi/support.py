"""Invoking caps from tests on the fake machine, as the root task would.

:class:`System` boots the root task on a :class:`~tests.fakes.FakeMachine` and offers
``call``: it marshals an invocation exactly as libsel4 does (MR0-MR3 in registers, MR4+
and the extra-cap CPtrs in the root thread's IPC buffer), traps with seL4_Call and
returns the reply's label and words.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from kernel.abi.arch import Arch, object_type_enum
from kernel.abi.constants import IPC_BUFFER, InitialCap, Syscall
from kernel.abi.labels import label_table
from kernel.boot import BootReport, boot
from kernel.config import KernelConfig
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from kernel.kernel import Kernel
from kernel.model.caps import Cap, UntypedCap
from kernel.model.cnode import CNode, SlotTable
from kernel.model.message import MessageInfo
from kernel.views.invariants import enable_invariant_checks
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
MSG_WORD = IPC_BUFFER.offset("msg") // 8
CAPS_WORD = IPC_BUFFER.offset("caps_or_badges") // 8


@dataclass(frozen=True)
class Reply:
    label: int
    words: list[int]


class System:
    """A booted root task; ``slots`` is its root CNode.

    Unless ``invariants`` is false, every kernel entry ends with the invariant checks.
    """

    def __init__(self, arch: Arch, ram_size: int = 8 << 20, invariants: bool = True,
                 fastpath: bool = True, num_domains: int = 1,
                 checkpoint_object: bool = False, cap_pages: bool = False,
                 server_backed_cnodes: bool = False, mcs: bool = False) -> None:
        self.arch = arch
        cfg = KernelConfig(ram_size=ram_size, fastpath=fastpath, num_domains=num_domains,
                           checkpoint_object=checkpoint_object, cap_pages=cap_pages,
                           server_backed_cnodes=server_backed_cnodes, mcs=mcs)
        self.machine = FakeMachine(arch, cfg.ram_size)
        self.kernel = Kernel(self.machine, cfg, lambda byte: None)
        self.report: BootReport = boot(self.kernel, make_image(arch))
        if invariants:
            enable_invariant_checks(self.kernel)
        root = self.kernel.objects[self.kernel.current.ctable.cap.paddr]  # type: ignore[union-attr]
        assert isinstance(root, CNode)
        self.root = root
        self.labels = label_table(arch, mcs)
        self.types = object_type_enum(arch, mcs)
        self._next_free = self.report.bootinfo.empty[0]
        self._carved: dict[int, int] = {}

    @property
    def slots(self) -> SlotTable:
        return self.root.slots

    def cap(self, index: int) -> Cap:
        return self.slots[index].cap

    def otype(self, name: str) -> int:
        """The type number of ``name`` (e.g. ``"seL4_TCBObject"``) on this arch."""
        return int(self.types[name])

    def label(self, name: str) -> int:
        return self.labels[name]

    def untyped(self, size_bits: int, device: bool = False) -> int:
        """Slot of the first boot untyped of exactly ``size_bits`` (and device-ness)."""
        start, end = self.report.bootinfo.untyped
        for index in range(start, end):
            cap = self.slots[index].cap
            if isinstance(cap, UntypedCap) and cap.size_bits == size_bits \
                    and cap.is_device == device:
                return index
        raise LookupError(f"no boot untyped of {size_bits} bits (device={device})")

    def ram_untyped(self, size_bits: int) -> int:
        """Slot of a RAM untyped of exactly ``size_bits`` with nothing retyped from it yet
        (on the first call for that size): the first boot untyped of that size if boot
        made one, else a child retyped once from the largest boot RAM untyped.

        Which sizes boot leaves in the gaps between the root task's objects depends on
        those objects (AArch64's four translation levels make one more page table than
        RISC-V's three), so tests that only need "a small untyped" ask here.
        """
        if size_bits in self._carved:
            return self._carved[size_bits]
        try:
            slot = self.untyped(size_bits)
        except LookupError:
            start, end = self.report.bootinfo.untyped
            ram = [i for i in range(start, end) if isinstance(self.slots[i].cap, UntypedCap)
                   and not self.slots[i].cap.is_device]  # type: ignore[attr-defined]
            parent = max(ram, key=lambda i: self.slots[i].cap.size_bits)  # type: ignore[attr-defined]
            slot = self.free_slots(1)
            reply = self.retype(parent, self.otype("seL4_UntypedObject"), size_bits, slot, 1)
            assert reply.label == 0, reply
        self._carved[size_bits] = slot
        return slot

    def free_slots(self, count: int) -> int:
        """First of ``count`` consecutive empty slots never handed out before."""
        first = self._next_free
        self._next_free += count
        assert all(self.slots[i].is_empty for i in range(first, first + count))
        return first

    # --- invoking --------------------------------------------------------------------

    def ipc_paddr(self) -> int:
        current = self.kernel.current
        assert current is not None
        paddr = ipc_buffer_paddr(self.kernel, current, for_write=True)
        assert paddr is not None
        return paddr

    def call(self, cptr: int, label: int, args: Sequence[int] = (),
             extra: Sequence[int] = (), length: int | None = None) -> Reply:
        """seL4_Call ``cptr`` with ``label``, message words ``args`` and extra caps."""
        base = self.ipc_paddr()
        words = list(args)
        if len(words) > 4:
            self.machine.write_phys(base + 8 * (MSG_WORD + 4),
                                    struct.pack(f"<{len(words) - 4}Q", *words[4:]))
        if extra:
            self.machine.write_phys(base + 8 * CAPS_WORD,
                                    struct.pack(f"<{len(extra)}Q", *extra))
        n = len(words) if length is None else length
        info = MessageInfo(label, 0, len(extra), n).to_word()
        regs = (words + [0, 0, 0, 0])[:4]
        self.machine.syscall_args(Syscall.seL4_SysCall, cptr, info, *regs)
        self.kernel.syscall()
        window = self.machine.read_syscall_window()
        reply = MessageInfo.from_word(window[1])
        out = window[2 : 2 + min(reply.length, 4)]
        if reply.length > 4:
            raw = self.machine.read_phys(base + 8 * (MSG_WORD + 4), 8 * (reply.length - 4))
            out += list(struct.unpack(f"<{reply.length - 4}Q", raw))
        return Reply(reply.label, out)

    def retype(self, untyped: int, otype: int, size_bits: int, offset: int, count: int,
               root: int = CNODE, node_index: int = 0, node_depth: int = 0,
               length: int | None = None) -> Reply:
        """seL4_Untyped_Retype(untyped, otype, size_bits, root, index, depth, offset, n)."""
        return self.call(
            untyped, self.label("UntypedRetype"),
            [otype, size_bits, node_index, node_depth, offset, count],
            extra=[root], length=length,
        )

    def make_pool(self, untyped: int, index: int, depth: int = 64,
                  root: int = CNODE) -> Reply:
        label = "RISCVASIDControlMakePool" if self.arch is Arch.RISCV64 \
            else "ARMASIDControlMakePool"
        return self.call(int(InitialCap.seL4_CapASIDControl), self.label(label),
                         [index, depth], extra=[untyped, root])

    def assign(self, pool: int, vspace: int) -> Reply:
        label = "RISCVASIDPoolAssign" if self.arch is Arch.RISCV64 else "ARMASIDPoolAssign"
        return self.call(pool, self.label(label), [], extra=[vspace])

    @property
    def vspace_type(self) -> int:
        """The type whose objects become VSpace roots: RISC-V page table, ARM VSpace."""
        name = "seL4_RISCV_PageTableObject" if self.arch is Arch.RISCV64 \
            else "seL4_ARM_VSpaceObject"
        return self.otype(name)
