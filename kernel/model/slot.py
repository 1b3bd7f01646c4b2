"""Capability slots (seL4's CTE): a cap plus its place in the derivation tree.

The derivation tree is kept as seL4 keeps it: a doubly linked list in depth-first order
(``mdb_prev`` / ``mdb_next``) plus ``revocable`` and ``first_badged`` bits; the parent
relation is derived from that order by ``kernel.cspace.cdt``. Links are references to other
slots (plain data: no Unicorn state, no closures).

Invariant: an empty slot (``NullCap``) has no links and both bits clear.

Pickling. A slot pickles *without* its links: pickle would follow ``mdb_next`` from
slot to slot, one level of recursion each, and a derivation chain can be tens of
thousands long. :class:`kernel.model.state.KernelState` pickles the links of all its
slots as one flat list and puts them back on load; a slot pickled on its own comes
back unlinked.
"""

from __future__ import annotations

from typing import final

from mypy_extensions import mypyc_attr

from kernel.model.caps import NULL_CAP, Cap
from kernel.pickling import Persistent

__all__ = ["Slot"]


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class Slot(Persistent):
    """One capability slot. ``owner`` and ``index`` say where it lives, for display."""

    __slots__ = ("cap", "mdb_prev", "mdb_next", "revocable", "first_badged", "owner", "index")

    def __init__(self, owner: int, index: int) -> None:
        self.cap: Cap = NULL_CAP
        self.mdb_prev: Slot | None = None
        self.mdb_next: Slot | None = None
        self.revocable = False
        self.first_badged = False
        self.owner = owner
        """Physical address of the CNode or TCB that contains this slot."""
        self.index = index

    @property
    def is_empty(self) -> bool:
        return self.cap.is_null

    def __getstate__(self) -> tuple[Cap, bool, bool, int, int]:
        # No links: see the module docstring. int(): the index may be an IntEnum member
        # (a boot-time slot named by InitialCap), which the compiled kernel stores as an int.
        return (self.cap, self.revocable, self.first_badged, self.owner, int(self.index))

    def __setstate__(self, state: tuple[Cap, bool, bool, int, int]) -> None:
        self.cap, self.revocable, self.first_badged, self.owner, self.index = state
        self.mdb_prev = self.mdb_next = None

    def __repr__(self) -> str:
        return f"Slot({self.owner:#x}[{self.index}]={self.cap!r})"
