"""CNode objects: 2^radix capability slots (object size 2^(radix + seL4_SlotBits)).

A CNode's slots exist in Python only once something reaches them (:class:`SlotTable`):
a slot nobody has looked at is empty and unlinked, which is what a fresh slot is, so
it need not be built. Host memory then grows with the slots a guest uses, not with the
radix it asks for (the host-cost budget in DESIGN.md).

Their invocations are :mod:`kernel.objects.cnode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import final

from mypy_extensions import mypyc_attr

from kernel.abi.constants import SLOT_BITS
from kernel.model.slot import Slot
from kernel.pickling import Persistent
from kernel.records import dataclass

__all__ = ["CNode", "ServerBinding", "SlotTable", "cnode_object_bits"]


@dataclass(frozen=True, slots=True)
class ServerBinding:
    """A server-backed CNode's server: the endpoint (by address) and the badge its index
    requests carry. The binding holds no reference that keeps the endpoint alive: it is
    in force while an Endpoint object still lives at ``endpoint`` (a lookup checks),
    and a CNode whose endpoint was deleted behaves as an ordinary one."""

    endpoint: int
    badge: int


def cnode_object_bits(radix: int) -> int:
    """log2 of a CNode's size in bytes."""
    return radix + SLOT_BITS


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class SlotTable(Persistent):
    """The ``size`` slots of a CNode at ``owner``, each built on first access.

    ``table[i]`` (``0 <= i < size``) is always the same :class:`Slot` object, with
    ``index == i``; indexing builds it if it did not exist. Iterating yields only the
    slots built so far, in index order: every other slot is empty and unlinked, so a
    walk looking for caps or links loses nothing and costs what the guest has used.
    :meth:`every` yields all ``size`` slots for displays that show empty ones too.
    """

    __slots__ = ("owner", "size", "_built")

    def __init__(self, owner: int, size: int) -> None:
        self.owner = owner
        self.size = size
        self._built: dict[int, Slot] = {}

    def __getitem__(self, index: int) -> Slot:
        slot = self._built.get(index)
        if slot is None:
            if not 0 <= index < self.size:
                raise IndexError(f"slot {index} outside a CNode of {self.size} slots")
            slot = self._built[index] = Slot(self.owner, index)
        return slot

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Slot]:
        built = self._built
        for index in sorted(built):
            yield built[index]

    @property
    def built(self) -> int:
        """How many slots exist in Python (the host's cost of this CNode)."""
        return len(self._built)

    def first_full(self, start: int) -> Slot | None:
        """The non-empty slot of the lowest index ``>= start``, or None. One pass over
        the built slots (an unbuilt slot is empty), without building any."""
        best: Slot | None = None
        for index, slot in self._built.items():
            if index >= start and not slot.is_empty and (best is None or index < best.index):
                best = slot
        return best

    def window(self, start: int, count: int) -> tuple[Slot, ...]:
        """Slots ``start .. start + count - 1`` (built as needed); IndexError at the
        first index outside the CNode, as indexing gives."""
        built, owner, size = self._built, self.owner, self.size
        slots = []
        for index in range(start, start + count):  # __getitem__, inlined: retype's windows
            slot = built.get(index)
            if slot is None:
                if not 0 <= index < size:
                    raise IndexError(f"slot {index} outside a CNode of {size} slots")
                slot = built[index] = Slot(owner, index)
            slots.append(slot)
        return tuple(slots)

    def every(self) -> Iterator[Slot]:
        """All ``size`` slots in index order: built ones, and a detached empty slot for
        each one not built (for displays; never link or store into those)."""
        built = self._built
        for index in range(self.size):
            slot = built.get(index)
            yield slot if slot is not None else Slot(self.owner, index)

    def __getstate__(self) -> tuple[int, int, list[Slot]]:
        # Every built slot, empty ones too: something else may hold one (a lookup's
        # result), and it must come back as the table's own object.
        return (self.owner, self.size, list(self._built.values()))

    def __setstate__(self, state: tuple[int, int, list[Slot]]) -> None:
        self.owner, self.size, slots = state
        self._built = {slot.index: slot for slot in slots}


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class CNode(Persistent):
    """A CNode at ``paddr`` with ``2^radix`` slots (``slots``, built on first access)."""

    __slots__ = ("paddr", "radix", "slots", "server")

    def __init__(self, paddr: int, radix: int) -> None:
        self.paddr = paddr
        self.radix = radix
        self.slots = SlotTable(paddr, 1 << radix)
        self.server: ServerBinding | None = None
        """capsule's server-backed CNodes (not seL4; ``KernelConfig.server_backed_cnodes``):
        the endpoint and badge of the server asked when a lookup meets an empty slot
        here, the slots being its cache; None for an ordinary CNode (always, with the
        extension off)."""
