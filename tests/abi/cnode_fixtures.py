"""Hand-built CSpace objects for CNode and CDT tests, on top of :class:`System`.

Objects the tests need before retype can make them (extra CNodes, endpoints, threads)
are placed by hand: their memory comes from the largest RAM untyped, bump-allocated and
aligned to size. They are boot-style roots in the CDT (no parent), so the untyped they
sit in is unaffected.
"""

from __future__ import annotations

from kernel.cspace.cdt import insert_root
from kernel.model.caps import Cap, CNodeCap, UntypedCap
from kernel.model.cnode import CNode
from kernel.model.slot import Slot
from kernel.model.tcb import TCB, ThreadState
from tests.abi.support import System

__all__ = ["World", "snapshot"]


class World(System):
    """A booted root task plus a scratch allocator for hand-made objects."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        ram = [s.cap for s in self.slots if isinstance(s.cap, UntypedCap) and not s.cap.is_device]
        biggest = max(ram, key=lambda c: c.size_bits)
        self._next = biggest.paddr
        self._end = biggest.paddr + (1 << biggest.size_bits)

    def alloc(self, size_bits: int) -> int:
        size = 1 << size_bits
        base = (self._next + size - 1) & ~(size - 1)
        assert base + size <= self._end
        self._next = base + size
        return base

    def cnode(self, radix: int) -> CNode:
        node = CNode(self.alloc(radix + 5), radix)
        self.kernel.add_object(node)
        return node

    def cnode_cap(self, radix: int, guard_size: int = 0, guard: int = 0) -> CNodeCap:
        return CNodeCap(self.cnode(radix).paddr, radix, guard_size, guard)

    def tcb(self, priority: int = 10) -> TCB:
        tcb = TCB(self.alloc(self.kernel.abi.tcb_bits), len(self.kernel.abi.user_context), 5)
        self.kernel.add_object(tcb)
        tcb.priority = priority
        tcb.state = ThreadState.RUNNING
        self.kernel.scheduler.enqueue(tcb)
        return tcb

    def put(self, slot: Slot | int, cap: Cap) -> Slot:
        """Store ``cap`` as a CDT root in ``slot`` (a Slot, or a root CNode index)."""
        target = self.slots[slot] if isinstance(slot, int) else slot
        insert_root(target, cap)
        return target


def snapshot(system: System, threads: bool = True) -> list[tuple[object, ...]]:
    """Every slot of every CNode and TCB that is not fresh: cap, links (by identity) and bits, plus each
    thread's state (unless ``threads`` is false). Equal snapshots mean an invocation
    changed no capability state."""
    rows: list[tuple[object, ...]] = []
    for obj in system.kernel.objects.values():
        if isinstance(obj, (CNode, TCB)):
            for slot in obj.slots:
                if slot.is_empty and slot.mdb_prev is None and slot.mdb_next is None \
                        and not (slot.revocable or slot.first_badged):
                    continue  # a fresh slot, whether built or not (CNode slots are lazy)
                rows.append((id(slot), slot.cap, id(slot.mdb_prev), id(slot.mdb_next),
                             slot.revocable, slot.first_badged))
        if threads and isinstance(obj, TCB):
            rows.append((obj.paddr, obj.state))
    return rows
