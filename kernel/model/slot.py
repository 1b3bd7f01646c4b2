"""Capability slots (seL4's CTE): a cap plus its place in the derivation tree.

The derivation tree is kept as seL4 keeps it: a doubly linked list in depth-first order
(``mdb_prev`` / ``mdb_next``) plus ``revocable`` and ``first_badged`` bits; the parent
relation is derived from that order by ``kernel.cspace.cdt``. Links are references to other
slots (plain data: no Unicorn state, no closures).

Invariant: an empty slot (``NullCap``) has no links and both bits clear.
"""

from __future__ import annotations

from kernel.model.caps import NULL_CAP, Cap

__all__ = ["Slot"]


class Slot:
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

    def __repr__(self) -> str:
        return f"Slot({self.owner:#x}[{self.index}]={self.cap!r})"
